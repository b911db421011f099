//! `cargo xtask eval-refine`: the learned refinement on held-out synthetic cars (frames of another
//! seed than training) from starts perturbed with the documented distribution
//! (`[train.perturbation]` of configs/refine.toml), against a hand-crafted render-and-compare
//! refinement from the same starts: `optim::mono`'s pixel, box and silhouette losses through the
//! renderer's analytic backward pass (depth, dimension, code and ground terms off; shape fixed to
//! the same code; no yaw probes, no rotation escape: a local refiner like ours).
//! A third row runs the hand-crafted refinement from the learned one's poses.
//! Errors: rotation = |heading difference| (KITTI rotation_y), translation = distance of the
//! object's canonical origin, m.

use crate::train_refine::load_config;
use anyhow::{Context, bail};
use deepsdf::ShapePrior;
use deepsdf::texture::MaterialAtlas;
use optim::mono::{MonoConfig, MonoOptimiser, MonoView, MonoWeights};
use pipeline::run::median;
use rand::{SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use refine::data::{DataConfig, RefineCrop, generate_crops, shapes_of};
use refine::geometry::{angle_between, yaw_of};
use refine::{CropInput, Refiner};
use render::{Pose, Surfels};
use serde::Serialize;
use sim::frame::FrameConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Settings (default: configs/refine.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The network (default: the stage's `weights` of the settings).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The shape prior (default: data/weights/deepsdf.safetensors).
    #[arg(long)]
    prior: Option<PathBuf>,
    /// The material atlas of the hand-crafted refiner's pixel loss (default: data/weights/texture.json).
    #[arg(long)]
    texture: Option<PathBuf>,
    /// Frames to generate (target domain).
    #[arg(long, default_value_t = 120)]
    frames: usize,
    /// Seed of the evaluation frames (must differ from the training frames').
    #[arg(long, default_value_t = 9011)]
    seed: u64,
    /// Iterations of the hand-crafted refiner.
    #[arg(long, default_value_t = 60)]
    baseline_iterations: usize,
    /// Skip the hand-crafted refinement (to compare settings of the learned one quickly).
    #[arg(long)]
    no_baseline: bool,
    /// Print the results as JSON (instead of a table).
    #[arg(long)]
    json: bool,
    /// Also write the JSON here (default: data/weights/refine_eval.json).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Errors of one method over the crops.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub method: String,
    pub objects: usize,
    pub median_rotation_deg: f64,
    pub median_translation_m: f64,
    /// Median of the translation error across the viewing ray (camera x, y), m.
    pub median_lateral_m: f64,
    pub accuracy_5deg_10cm: f64,
    pub accuracy_15deg_30cm: f64,
    pub median_rotation_reduction: f64,
    pub seconds_per_object: f64,
}

/// (rotation °, translation m, lateral m) of `pose` against `truth`.
fn errors(pose: &Pose, truth: &Pose) -> (f64, f64, f64) {
    let d = (pose.translation_m - truth.translation_m).cast::<f64>();
    (
        angle_between(yaw_of(pose), yaw_of(truth)).to_degrees(),
        d.norm(),
        d.x.hypot(d.y),
    )
}

fn summarise(method: &str, errs: &[(f64, f64, f64)], start_median_rot: f64, seconds: f64) -> Summary {
    let n = errs.len().max(1) as f64;
    let acc = |deg: f64, m: f64| errs.iter().filter(|e| e.0 < deg && e.1 < m).count() as f64 / n;
    let rot = median(&errs.iter().map(|e| e.0).collect::<Vec<_>>());
    Summary {
        method: method.into(),
        objects: errs.len(),
        median_rotation_deg: rot,
        median_translation_m: median(&errs.iter().map(|e| e.1).collect::<Vec<_>>()),
        median_lateral_m: median(&errs.iter().map(|e| e.2).collect::<Vec<_>>()),
        accuracy_5deg_10cm: acc(5.0, 0.1),
        accuracy_15deg_30cm: acc(15.0, 0.3),
        median_rotation_reduction: 1.0 - rot / start_median_rot,
        seconds_per_object: seconds / n,
    }
}

/// The crop as `optim::mono`'s view: the image at the crop's grid, the car's own pixels as the
/// detection mask, no depth.
fn mono_view(crop: &RefineCrop) -> MonoView {
    let n = crop.camera.pixels();
    MonoView {
        camera: crop.camera,
        intrinsics: crop.intrinsics,
        cam_from_rect_m: crop.cam_from_rect_m,
        image_size_px: crop.image_size_px,
        bbox: crop.bbox,
        rgb: (0..n)
            .map(|p| [crop.rgb[p], crop.rgb[n + p], crop.rgb[2 * n + p]])
            .collect(),
        mask: crop.object_mask.iter().map(|m| f32::from(u8::from(*m))).collect(),
        depth_m: vec![0.0; n],
        road: None,
    }
}

/// The hand-crafted refinement of `start`.
fn handcrafted(
    optimiser: &MonoOptimiser<'_>,
    crop: &RefineCrop,
    latent: &[f32],
    start: &Pose,
) -> anyhow::Result<Pose> {
    let view = mono_view(crop);
    let t = start.translation_m.cast::<f64>();
    let mut init = optimiser.initial_state(&view, f64::from(start.scale), yaw_of(start), t.z);
    let k = &crop.intrinsics;
    let (u, v) = (k.fx * t.x / t.z + k.cx, k.fy * t.y / t.z + k.cy);
    let (cu, cv) = (
        (crop.bbox.left + crop.bbox.right) / 2.0,
        (crop.bbox.top + crop.bbox.bottom) / 2.0,
    );
    init.offset_box = [(u - cu) / crop.bbox.width(), (v - cv) / crop.bbox.height()];
    init.log_depth = t.z.ln();
    init.latent = latent.to_vec();
    let fit = optimiser.fit(&view, &init, 0)?;
    Ok(fit.state.pose(&view))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config_path = crate::repo_path(&args.config, "configs/refine.toml");
    let settings = load_config(&config_path)?;
    let weights = args
        .weights
        .clone()
        .unwrap_or_else(|| crate::root().join(&settings.stage.weights));
    let prior_path = crate::repo_path(&args.prior, "data/weights/deepsdf.safetensors");
    let texture_path = crate::repo_path(&args.texture, "data/weights/texture.json");
    let prior = ShapePrior::load(&prior_path).with_context(|| format!("loading {}", prior_path.display()))?;
    let atlas =
        MaterialAtlas::load(&texture_path).with_context(|| format!("loading {}", texture_path.display()))?;
    let refiner = Refiner::load(&weights, settings.stage.clone())
        .with_context(|| format!("loading {}", weights.display()))?;
    if args.seed == settings.data.seed {
        bail!("--seed {} is the training frames' seed: pick another", args.seed);
    }
    let data = DataConfig {
        seed: args.seed,
        frames: args.frames,
        ..settings.data.clone()
    };
    let began = Instant::now();
    let crops = generate_crops(
        &prior,
        &FrameConfig::default(),
        refiner.input_size(),
        &data,
        &|_| (),
    )?;
    if crops.is_empty() {
        bail!("no evaluation crops");
    }
    let shapes: BTreeMap<usize, Surfels> = shapes_of(&prior, &crops, &data.surface)?;
    tracing::info!(
        "{} held-out crops of {} shapes from {} frames (seed {}) in {:.0} s",
        crops.len(),
        shapes.len(),
        args.frames,
        args.seed,
        began.elapsed().as_secs_f64()
    );
    let perturbation = &settings.train.perturbation;
    let starts: Vec<Pose> = crops
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut rng = StdRng::seed_from_u64(args.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            perturbation.apply(&c.true_pose, &mut rng)
        })
        .collect();
    let surfels_of = |c: &RefineCrop| -> anyhow::Result<&Surfels> {
        shapes
            .get(&c.shape_index)
            .with_context(|| format!("no surfels of shape {}", c.shape_index))
    };

    // (a) the learned refinement.
    let t0 = Instant::now();
    let learned: Vec<Pose> = crops
        .par_iter()
        .zip(&starts)
        .map(|(c, start)| -> anyhow::Result<Pose> {
            let input = CropInput {
                camera: c.camera,
                rgb: c.rgb.clone(),
            };
            Ok(refiner.refine(&input, surfels_of(c)?, start)?.pose)
        })
        .collect::<anyhow::Result<_>>()?;
    let learned_s = t0.elapsed().as_secs_f64();

    // (b) the hand-crafted render-and-compare refinement.
    let mono = MonoConfig {
        weights: MonoWeights {
            pixel: 1.0,
            bbox: 1.0,
            mask: 1.0,
            depth: 0.0,
            dims: 0.0,
            latent: 0.0,
            ground: 0.0,
        },
        iterations: args.baseline_iterations,
        shape_every: 0,
        yaw_starts: 1,
        escape_every: 0,
        surface: data.surface.clone(),
        render: settings.stage.render.clone(),
        ..MonoConfig::default()
    };
    let mean_latent = prior.mean_latent();
    let optimiser = MonoOptimiser::new(&prior.decoder, &atlas, &mean_latent, [1.8, 1.5, 4.2], &mono);
    let t1 = Instant::now();
    let polish = |from: &[Pose]| -> anyhow::Result<Vec<Pose>> {
        crops
            .par_iter()
            .zip(from)
            .map(|(c, start)| {
                let latent = prior
                    .latents
                    .get(c.shape_index)
                    .with_context(|| format!("no code of shape {}", c.shape_index))?;
                handcrafted(&optimiser, c, latent, start)
            })
            .collect()
    };
    let baseline: Vec<Pose> = if args.no_baseline {
        Vec::new()
    } else {
        polish(&starts)?
    };
    let baseline_s = t1.elapsed().as_secs_f64();
    // (c) both: the learned refinement's poses polished by the hand-crafted one.
    let t2 = Instant::now();
    let both: Vec<Pose> = if args.no_baseline {
        Vec::new()
    } else {
        polish(&learned)?
    };
    let both_s = t2.elapsed().as_secs_f64() + learned_s;

    let err = |poses: &[Pose]| -> Vec<(f64, f64, f64)> {
        poses
            .iter()
            .zip(&crops)
            .map(|(p, c)| errors(p, &c.true_pose))
            .collect()
    };
    let (e0, e1, e2, e3) = (err(&starts), err(&learned), err(&baseline), err(&both));
    let start_rot = median(&e0.iter().map(|e| e.0).collect::<Vec<_>>());
    let mut rows = vec![
        summarise("start (perturbed)", &e0, start_rot, 0.0),
        summarise("learned (GCF)", &e1, start_rot, learned_s),
    ];
    if !args.no_baseline {
        rows.push(summarise(
            "hand-crafted (mono pixel+box+silhouette)",
            &e2,
            start_rot,
            baseline_s,
        ));
        rows.push(summarise("learned, then hand-crafted", &e3, start_rot, both_s));
    }
    let report = serde_json::json!({
        "frames": args.frames,
        "seed": args.seed,
        "crops": crops.len(),
        "perturbation": perturbation,
        "stage": settings.stage,
        "baseline": mono,
        "results": rows,
    });
    let out = crate::repo_path(&args.out, "data/weights/refine_eval.json");
    kitti::io::write_atomic(&out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)?
    } else {
        let mut t = format!(
            "{} held-out cars, starts: yaw ~ U(±{}°), x, y ~ N(0, {} m / {} m), depth ×(1 + N(0, {})), scale ×exp(N(0, {}))\n",
            crops.len(),
            perturbation.yaw_deg,
            perturbation.lateral_m,
            perturbation.vertical_m,
            perturbation.depth_fraction,
            perturbation.scale_fraction
        );
        t.push_str(&format!(
            "{:<42} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>8}\n",
            "method", "rot med°", "trans m", "lat m", "5°/10cm", "15°/30cm", "rot red.", "s/obj"
        ));
        for r in &rows {
            t.push_str(&format!(
                "{:<42} {:>9.2} {:>9.3} {:>9.3} {:>9.3} {:>10.3} {:>8.0}% {:>8.3}\n",
                r.method,
                r.median_rotation_deg,
                r.median_translation_m,
                r.median_lateral_m,
                r.accuracy_5deg_10cm,
                r.accuracy_15deg_30cm,
                100.0 * r.median_rotation_reduction,
                r.seconds_per_object
            ));
        }
        t
    };
    #[allow(clippy::print_stdout, reason = "the command's output")]
    {
        println!("{text}");
    }
    Ok(())
}
