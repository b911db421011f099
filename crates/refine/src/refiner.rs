//! The refinement stage: render the shape at the current pose, let the network predict the
//! correspondence field against the image crop, turn every rendered cell into a 2D–3D pair (its
//! surface point X and the target `u* = π(pose·X) + f`, weighted by the predicted visibility),
//! solve for the pose ([`crate::solve`]), and repeat. The field plays the part of the rasteriser's
//! backward pass: a per-pixel image-space gradient, propagated analytically to the pose through the
//! projection Jacobian of the rendered surface points.

use crate::data::nocs_surfels;
use crate::error::{RefineError, Result};
use crate::field::{cell_points, render_features};
use crate::geometry::{project, to_camera};
use crate::net::{FIELD_SCALE_PX, RefineNet, load};
use crate::solve::{Correspondence, SolveConfig, SolveReport, solve};
use candle_core::{Device, Tensor};
use render::{CropCamera, Pose, RenderConfig, Surfels, render};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Settings of the refinement stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefineConfig {
    /// Whether a pipeline runs the stage.
    pub enabled: bool,
    /// The network's weights (relative paths from the repository root).
    pub weights: String,
    /// Render → predict → solve rounds.
    pub iterations: usize,
    /// Cells whose predicted visibility is below this are not used.
    pub min_visibility: f64,
    /// The pose solver.
    pub solve: SolveConfig,
    /// Renderer settings.
    pub render: RenderConfig,
}

impl Default for RefineConfig {
    fn default() -> Self {
        RefineConfig {
            enabled: false,
            weights: "data/weights/refine.safetensors".into(),
            iterations: 4,
            min_visibility: 0.5,
            solve: SolveConfig::default(),
            render: RenderConfig::default(),
        }
    }
}

/// The image side of one refinement: the crop's camera and its planar RGB in [0, 1]
/// (`[3, S, S]`, S the network's input size).
#[derive(Clone, Debug, PartialEq)]
pub struct CropInput {
    /// Camera of the crop.
    pub camera: CropCamera,
    /// Planar RGB.
    pub rgb: Vec<f32>,
}

/// One round's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoundReport {
    /// Cells used.
    pub pairs: usize,
    /// Mean predicted field length over the used cells, crop px.
    pub mean_field_px: f64,
    /// The solver's report.
    pub solve: SolveReport,
}

/// A refined pose and what each round did.
#[derive(Clone, Debug, PartialEq)]
pub struct Refinement {
    /// The refined pose.
    pub pose: Pose,
    /// One per round run (rounds stop early when too few cells are usable).
    pub rounds: Vec<RoundReport>,
}

/// Where the correspondences of a round come from.
pub trait FieldSource {
    /// Per output cell (row-major over the half-resolution grid): the predicted field (crop px) and
    /// the weight of the cell, for the rendering `image` of `pose` against `crop`.
    fn field(&self, crop: &CropInput, image: &render::Image, pose: &Pose) -> Result<Vec<([f32; 2], f64)>>;
}

/// The learned field source.
pub struct Refiner {
    net: RefineNet,
    config: RefineConfig,
}

impl std::fmt::Debug for Refiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refiner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Refiner {
    /// A refiner with a network in memory.
    pub fn new(net: RefineNet, config: RefineConfig) -> Self {
        Refiner { net, config }
    }

    /// A refiner with the weights of `path`.
    pub fn load(path: &Path, config: RefineConfig) -> Result<Self> {
        let (net, _, _) = load(path, &Device::Cpu)?;
        Ok(Refiner { net, config })
    }

    /// Its settings.
    pub fn config(&self) -> &RefineConfig {
        &self.config
    }

    /// The network's input side, px.
    pub fn input_size(&self) -> usize {
        self.net.config.input_size
    }

    /// Refines `pose` of the shape `surfels` (canonical frame; recoloured with their NOCS here)
    /// against `crop`.
    pub fn refine(&self, crop: &CropInput, surfels: &Surfels, pose: &Pose) -> Result<Refinement> {
        refine_with(self, &self.config, crop, surfels, pose)
    }
}

impl FieldSource for Refiner {
    fn field(&self, crop: &CropInput, image: &render::Image, _pose: &Pose) -> Result<Vec<([f32; 2], f64)>> {
        let s = self.net.config.input_size;
        if crop.camera.width != s || crop.camera.height != s || crop.rgb.len() != 3 * s * s {
            return Err(RefineError::InvalidInput(format!(
                "crop {}×{} with {} values, the network reads {s}×{s}",
                crop.camera.width,
                crop.camera.height,
                crop.rgb.len()
            )));
        }
        let dev = Device::Cpu;
        let img = Tensor::from_vec(crop.rgb.clone(), (1, 3, s, s), &dev)?;
        let features = render_features(image);
        let channels = features.len() / (s * s);
        let ren = Tensor::from_vec(features, (1, channels, s, s), &dev)?;
        let out = self.net.forward(&img, &ren)?;
        let field: Vec<f32> = out.field.flatten_all()?.to_vec1()?;
        let logit: Vec<f32> = out.visibility_logit.flatten_all()?.to_vec1()?;
        let t = logit.len();
        Ok((0..t)
            .map(|k| {
                let w = 1.0 / (1.0 + (-f64::from(logit[k])).exp());
                ([field[k] * FIELD_SCALE_PX, field[t + k] * FIELD_SCALE_PX], w)
            })
            .collect())
    }
}

/// The refinement loop with any field source (the network, or the true field in tests).
pub fn refine_with(
    source: &dyn FieldSource,
    config: &RefineConfig,
    crop: &CropInput,
    surfels: &Surfels,
    pose: &Pose,
) -> Result<Refinement> {
    let nocs = nocs_surfels(&surfels.positions, &surfels.normals);
    let mut current = *pose;
    let mut rounds = Vec::new();
    for _ in 0..config.iterations {
        let image = render(&crop.camera, &current, &nocs, &config.render)?;
        let points = cell_points(&image);
        let field = source.field(crop, &image, &current)?;
        if field.len() != points.len() {
            return Err(RefineError::InvalidInput(format!(
                "a field of {} cells for {} rendered cells",
                field.len(),
                points.len()
            )));
        }
        let mut pairs = Vec::new();
        let mut length = 0.0;
        for (x, (f, w)) in points.iter().zip(&field) {
            let Some(x) = x else { continue };
            if *w < config.min_visibility {
                continue;
            }
            let Some(uv) = project(&crop.camera, &to_camera(&current, x)) else {
                continue;
            };
            length += f64::from(f[0]).hypot(f64::from(f[1]));
            pairs.push(Correspondence {
                point_unit: *x,
                target_px: [uv.x + f64::from(f[0]), uv.y + f64::from(f[1])],
                weight: *w,
            });
        }
        if pairs.len() < 8 {
            tracing::debug!(pairs = pairs.len(), "too few usable cells: refinement stops");
            break;
        }
        let (next, report) = solve(&crop.camera, &current, &pairs, &config.solve)?;
        rounds.push(RoundReport {
            pairs: pairs.len(),
            mean_field_px: length / pairs.len() as f64,
            solve: report,
        });
        current = next;
    }
    Ok(Refinement {
        pose: current,
        rounds,
    })
}
