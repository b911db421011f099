//! Settings of the curriculum (`configs/curriculum.toml`).

use serde::{Deserialize, Serialize};

/// Everything a curriculum run needs besides the autolabeler's own settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CurriculumConfig {
    /// Round 0's network (relative to the repository root): the CSS network trained on clean
    /// synthetic crops that the rounds fine-tune. It is not the autolabeler's `weights.css`, so the
    /// autolabeler's default network can change without changing the curriculum's start.
    pub initial_css: std::path::PathBuf,
    /// Annotation rounds after round 0 (the network trained on clean synthetic crops only).
    pub rounds: usize,
    /// Fraction of a round's verified labels it accepts, easiest first, per round (round 1 first;
    /// the last value holds for later rounds).
    pub budget: Vec<f64>,
    /// The checks a label must pass.
    pub verify: VerifyConfig,
    /// How hard a label is (the acceptance order).
    pub difficulty: DifficultyConfig,
    /// How the targets of an accepted label are made.
    pub targets: TargetConfig,
    /// Fine-tuning of the CSS network each round.
    pub fine_tune: FineTuneConfig,
    /// The frames.
    pub data: DataConfig,
}

impl Default for CurriculumConfig {
    fn default() -> Self {
        CurriculumConfig {
            initial_css: std::path::PathBuf::from("data/weights/css.safetensors"),
            rounds: 4,
            budget: vec![0.5, 0.75, 1.0],
            verify: VerifyConfig::default(),
            difficulty: DifficultyConfig::default(),
            targets: TargetConfig::default(),
            fine_tune: FineTuneConfig::default(),
            data: DataConfig::default(),
        }
    }
}

impl CurriculumConfig {
    /// The budget of round `round` (1-based), in [0, 1].
    pub fn budget_of(&self, round: usize) -> f64 {
        let i = round.saturating_sub(1).min(self.budget.len().saturating_sub(1));
        self.budget.get(i).copied().unwrap_or(1.0).clamp(0.0, 1.0)
    }
}

/// Checks made on every label without ground truth: its score, the agreement of its projection
/// with the detection, the LIDAR evidence, the silhouette and a plausible car size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// Least confidence (the label's score).
    pub min_score: f64,
    /// Least IoU of the projected 3D box with the detection box.
    pub min_box_iou: f64,
    /// Fewest LIDAR points in the fit.
    pub min_lidar_points: usize,
    /// Least fraction of those within the cut-off of the surface.
    pub min_explained: f64,
    /// Largest RMS residual of the inliers, m.
    pub max_lidar_rms_m: f64,
    /// Least IoU of the rendered and the predicted silhouettes.
    pub min_silhouette_iou: f64,
    /// Plausible car lengths, m.
    pub length_m: [f64; 2],
    /// Plausible widths, m.
    pub width_m: [f64; 2],
    /// Plausible heights, m.
    pub height_m: [f64; 2],
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            min_score: 0.3,
            min_box_iou: 0.7,
            min_lidar_points: 30,
            min_explained: 0.9,
            max_lidar_rms_m: 0.08,
            min_silhouette_iou: 0.6,
            length_m: [3.0, 5.5],
            width_m: [1.4, 2.1],
            height_m: [1.2, 2.0],
        }
    }
}

/// Difficulty = distance / `distance_scale_m` + `occlusion_weight` × (1 − visible fraction) +
/// `truncation_weight` if the box touches the image border.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DifficultyConfig {
    /// Distance that adds 1, m.
    pub distance_scale_m: f64,
    /// Weight of the hidden fraction (the detection's mask against the rendered silhouette).
    pub occlusion_weight: f64,
    /// Added for a box within `border_px` of the image border.
    pub truncation_weight: f64,
    /// See `truncation_weight`, px.
    pub border_px: f64,
}

impl Default for DifficultyConfig {
    fn default() -> Self {
        DifficultyConfig {
            distance_scale_m: 40.0,
            occlusion_weight: 1.0,
            truncation_weight: 1.0,
            border_px: 2.0,
        }
    }
}

/// Rendering an accepted label into a training crop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetConfig {
    /// Side of the stored crop, px (the CSS training crops').
    pub store_size: usize,
    /// Margin of the crop window around the detection box (the CSS network's).
    pub margin: f64,
    /// Surface extraction of the label's shape.
    pub surface: deepsdf::surface::SurfaceConfig,
    /// The surfel renderer.
    pub render: render::RenderConfig,
    /// Crops whose rendered mask has fewer pixels are dropped.
    pub min_mask_pixels: usize,
    /// The mask target is the detection's own mask (where it has one), not the rendered
    /// silhouette cut by it; NOCS stays known only where the rendering covers the car. A label a
    /// little short renders a silhouette short of the car's ends, and a network that learns it
    /// predicts short masks, whose silhouette loss shortens the next round's labels. On by
    /// default (BENCHMARKS.md, "Curriculum"); off, the mask target is the rendered silhouette.
    pub mask_from_detection: bool,
}

impl Default for TargetConfig {
    fn default() -> Self {
        let crop = css::data::CropConfig::default();
        TargetConfig {
            store_size: crop.store_size,
            margin: crop.margin,
            surface: deepsdf::surface::SurfaceConfig {
                levels: deepsdf::surface::SurfaceConfig::default().levels + 1,
                ..deepsdf::surface::SurfaceConfig::default()
            },
            render: render::RenderConfig::default(),
            min_mask_pixels: 16,
            mask_from_detection: true,
        }
    }
}

/// Fine-tuning the CSS network on accepted target crops and clean synthetic ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FineTuneConfig {
    /// Steps per round.
    pub steps: usize,
    /// Adam learning rate (the CSS schedule halves it at 60 % and 85 %).
    pub lr: f64,
    /// Crops per step.
    pub batch_size: usize,
    /// Each accepted target crop counts this many times in the mix.
    pub target_repeat: usize,
    /// Weight of an accepted crop's latent loss (the synthetic crops' is 1). The labels' codes are
    /// a little short, and learning them makes the next round's labels shorter still; but with
    /// weight 0 (the latent head learns true synthetic codes only) round 1 fell to BEV 67.16,
    /// below round 0, against 72.27 with 1 (BENCHMARKS.md, "Curriculum"): the head's domain gap
    /// matters more than the drift.
    pub target_latent_weight: f32,
    /// Shift the accepted crops' codes together so that their mean is the shape prior's mean code
    /// ([`crate::targets::centre_latents`]): what the labels share in error (they are a little
    /// short) is not learned, what tells them apart is. Off: on the embedded default it slowed the
    /// drift in length by a third but ended round 3 at BEV 72.65 against 74.78 without it
    /// (BENCHMARKS.md, "Curriculum").
    pub centre_target_latents: bool,
    /// Clean synthetic frames whose crops join the mix (so the network keeps what it knew).
    pub synthetic_frames: usize,
    /// Their seed (not the CSS training frames', not the evaluation's).
    pub synthetic_seed: u64,
    /// Seed of the batches.
    pub seed: u64,
}

impl Default for FineTuneConfig {
    fn default() -> Self {
        FineTuneConfig {
            steps: 1000,
            lr: 5e-4,
            batch_size: 16,
            target_repeat: 2,
            target_latent_weight: 1.0,
            centre_target_latents: false,
            synthetic_frames: 200,
            synthetic_seed: 11,
            seed: 5,
        }
    }
}

/// The frames of the loop: an unlabelled `target`-domain training set, and the validation set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Target-domain frames autolabelled each round.
    pub train_frames: usize,
    /// Their seed (neither the validation set's nor any training set's).
    pub train_seed: u64,
    /// Frames of the validation set evaluated after each round.
    pub val_frames: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            train_frames: 400,
            train_seed: 3000,
            val_frames: 200,
        }
    }
}
