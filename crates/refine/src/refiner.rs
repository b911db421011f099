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
    /// Also predict on the mirrored pair (image and rendering flipped left-right, the rendering's
    /// NOCS x and normal x mirrored) and average the two fields (test-time augmentation).
    pub flip_average: bool,
    /// Extra renderings per round at poses jittered about the current one (0: none). Every
    /// rendering's cells give 2D–3D pairs, pooled into one solve, so errors of the field that
    /// change with the rendering average out (test-time augmentation in the network's own domain).
    pub jitter_renders: usize,
    /// Their turn about the camera's vertical, degrees (spread on a circle with the shift).
    pub jitter_yaw_deg: f64,
    /// Their sideways shift (camera x), as a fraction of the object's depth.
    pub jitter_shift_fraction: f64,
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
            flip_average: false,
            jitter_renders: 0,
            jitter_yaw_deg: 3.0,
            jitter_shift_fraction: 0.01,
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
        let n = s * s;
        let mut rgb = crop.rgb.clone();
        let mut features = render_features(image);
        let channels = features.len() / n;
        let b = if self.config.flip_average {
            rgb.extend(mirrored_planes(&crop.rgb, s));
            let mut m = mirrored_planes(&features, s);
            // The mirror image of the rendered car: NOCS x → 1 − x where rendered (colour is
            // premultiplied by the mask), camera-frame normal x → −x.
            for p in 0..n {
                m[p] = m[6 * n + p] - m[p];
                m[3 * n + p] = -m[3 * n + p];
            }
            features.extend(m);
            2
        } else {
            1
        };
        let img = Tensor::from_vec(rgb, (b, 3, s, s), &dev)?;
        let ren = Tensor::from_vec(features, (b, channels, s, s), &dev)?;
        let out = self.net.forward(&img, &ren)?;
        let field: Vec<f32> = out.field.flatten_all()?.to_vec1()?;
        let logit: Vec<f32> = out.visibility_logit.flatten_all()?.to_vec1()?;
        let t = logit.len() / b;
        let side = (t as f64).sqrt().round() as usize;
        let visibility = |l: f32| 1.0 / (1.0 + (-f64::from(l)).exp());
        Ok((0..t)
            .map(|k| {
                let (mut fx, mut fy) = (field[k], field[t + k]);
                let mut w = visibility(logit[k]);
                if b == 2 {
                    // The mirrored pair's cell of this one, its field turned back (x negated).
                    let m = (k / side) * side + side - 1 - k % side;
                    fx = 0.5 * (fx - field[2 * t + m]);
                    fy = 0.5 * (fy + field[3 * t + m]);
                    w = 0.5 * (w + visibility(logit[t + m]));
                }
                ([fx * FIELD_SCALE_PX, fy * FIELD_SCALE_PX], w)
            })
            .collect())
    }
}

/// Planar `[C, S, S]` values mirrored left-right (every row reversed).
fn mirrored_planes(planar: &[f32], side: usize) -> Vec<f32> {
    planar
        .chunks(side)
        .flat_map(|row| row.iter().rev().copied())
        .collect()
}

/// The poses rendered in one round: `pose` itself, then [`RefineConfig::jitter_renders`] poses
/// spread evenly on the ellipse (± `jitter_yaw_deg`, ± `jitter_shift_fraction` × depth sideways)
/// about it, so that the jitters cancel in the mean.
fn jittered(pose: &Pose, config: &RefineConfig) -> Vec<Pose> {
    let k = config.jitter_renders;
    let depth_m = f64::from(pose.translation_m.z).abs();
    std::iter::once(*pose)
        .chain((0..k).map(|i| {
            let a = std::f64::consts::TAU * (i as f64 + 0.5) / k as f64;
            let mut delta = [0.0; crate::geometry::PARAMS];
            delta[0] = config.jitter_yaw_deg.to_radians() * a.cos();
            delta[1] = config.jitter_shift_fraction * depth_m * a.sin();
            crate::geometry::apply_update(pose, &delta)
        }))
        .collect()
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
        let mut pairs = Vec::new();
        let mut length = 0.0;
        for view in jittered(&current, config) {
            let image = render(&crop.camera, &view, &nocs, &config.render)?;
            let points = cell_points(&image);
            let field = source.field(crop, &image, &view)?;
            if field.len() != points.len() {
                return Err(RefineError::InvalidInput(format!(
                    "a field of {} cells for {} rendered cells",
                    field.len(),
                    points.len()
                )));
            }
            for (x, (f, w)) in points.iter().zip(&field) {
                let Some(x) = x else { continue };
                if *w < config.min_visibility {
                    continue;
                }
                let Some(uv) = project(&crop.camera, &to_camera(&view, x)) else {
                    continue;
                };
                length += f64::from(f[0]).hypot(f64::from(f[1]));
                pairs.push(Correspondence {
                    point_unit: *x,
                    target_px: [uv.x + f64::from(f[0]), uv.y + f64::from(f[1])],
                    weight: *w,
                });
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{NetConfig, build};

    /// A pseudo-random value in [0, 1) for index `i`.
    fn hash01(i: usize, salt: u64) -> f32 {
        let x = (i as u64 ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((x >> 40) as f32) / (1u64 << 24) as f32
    }

    /// `image` seen in a mirror: rows reversed, NOCS x and camera-frame normal x mirrored.
    fn mirrored_image(image: &render::Image) -> render::Image {
        let s = image.width;
        let flip = |k: usize| (k / s) * s + s - 1 - k % s;
        let mut out = image.clone();
        for k in 0..s * s {
            let f = flip(k);
            out.mask[k] = image.mask[f];
            out.colour[k] = image.colour[f];
            out.colour[k][0] = image.mask[f] - image.colour[f][0];
            out.normal[k] = image.normal[f];
            out.normal[k][0] = -image.normal[f][0];
        }
        out
    }

    /// The flip-averaged field is mirror-equivariant for any weights: the field of the mirrored
    /// pair is the mirrored field (cells mirrored, x negated), which checks the cell indexing and
    /// the signs of the averaging.
    #[test]
    fn the_flip_averaged_field_of_a_mirrored_pair_is_the_mirrored_field() {
        let s = 16;
        let config = NetConfig {
            input_size: s,
            stream_widths: [4, 4, 8, 8],
            fuse_width: 8,
            decoder_widths: [8, 4],
            groups: 2,
        };
        let (net, _) = build(&config, 5, &Device::Cpu).expect("net");
        let refiner = Refiner::new(
            net,
            RefineConfig {
                flip_average: true,
                ..RefineConfig::default()
            },
        );
        let n = s * s;
        let mask: Vec<f32> = (0..n).map(|k| hash01(k, 1)).collect();
        let image = render::Image {
            width: s,
            height: s,
            colour: (0..n)
                .map(|k| std::array::from_fn(|c| mask[k] * hash01(3 * k + c, 2)))
                .collect(),
            normal: (0..n)
                .map(|k| std::array::from_fn(|c| 2.0 * hash01(3 * k + c, 3) - 1.0))
                .collect(),
            mask,
            ..render::Image::default()
        };
        let camera = CropCamera {
            fx: 50.0,
            fy: 50.0,
            cx: 7.5,
            cy: 7.5,
            width: s,
            height: s,
        };
        let rgb: Vec<f32> = (0..3 * n).map(|k| hash01(k, 4)).collect();
        let crop = CropInput {
            camera,
            rgb: rgb.clone(),
        };
        let mirrored = CropInput {
            camera,
            rgb: mirrored_planes(&rgb, s),
        };
        let pose = Pose {
            rotation: nalgebra::Matrix3::identity(),
            translation_m: nalgebra::Vector3::new(0.0, 0.0, 10.0),
            scale: 1.0,
        };
        let a = refiner.field(&crop, &image, &pose).expect("field");
        let b = refiner
            .field(&mirrored, &mirrored_image(&image), &pose)
            .expect("mirrored field");
        let t = s / 2;
        assert_eq!(a.len(), t * t);
        let mut largest = 0.0f32;
        for (k, &(fb, wb)) in b.iter().enumerate() {
            let m = (k / t) * t + t - 1 - k % t;
            let (fa, wa) = a[m];
            largest = largest.max(fa[0].abs());
            assert!(
                (fb[0] + fa[0]).abs() < 1e-4,
                "cell {k}: x {} vs {}",
                fb[0],
                -fa[0]
            );
            assert!((fb[1] - fa[1]).abs() < 1e-4, "cell {k}: y {} vs {}", fb[1], fa[1]);
            assert!((wb - wa).abs() < 1e-5, "cell {k}: visibility {wb} vs {wa}");
        }
        assert!(largest > 1e-3, "the field must not vanish: {largest}");
        // Without the averaging the network alone is not equivariant (so the check can fail).
        let plain = Refiner::new(
            build(&config, 5, &Device::Cpu).expect("net").0,
            RefineConfig::default(),
        );
        let (pa, pb) = (
            plain.field(&crop, &image, &pose).expect("field"),
            plain
                .field(&mirrored, &mirrored_image(&image), &pose)
                .expect("field"),
        );
        let gap = (0..t * t)
            .map(|k| (pb[k].0[0] + pa[(k / t) * t + t - 1 - k % t].0[0]).abs())
            .fold(0.0f32, f32::max);
        assert!(gap > 1e-4, "a plain network is not mirror-equivariant: {gap}");
    }
}
