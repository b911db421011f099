//! Training and evaluation samples from the synthetic world.
//!
//! A **crop** is a car of a generated frame: the square window around its label box (the CSS
//! crops' window, [`css::data::crop_window`]) resampled to the network's input size, the crop
//! camera, the car's own pixels in it, and its true pose as the renderer's similarity (DeepSDF
//! canonical frame → camera frame). Only cars whose shape the prior learned are used, so that the
//! rendered surface is the prior's own code of that very shape.
//!
//! A **sample** renders that shape under a **perturbed** pose ([`Perturbation`]) and pairs the
//! rendering (NOCS, normals, mask) with the image crop and the true correspondence field
//! ([`crate::field::true_field`]).

use crate::error::{RefineError, Result};
use crate::field::{cell_points, render_features, true_field};
use crate::geometry::apply_update;
use css::data::{CropConfig, crop_to_image, crop_window, planar_rgb};
use deepsdf::ShapePrior;
use deepsdf::samples::{Normalisation, unit_to_nocs};
use deepsdf::surface::{SurfaceConfig, extract_surface};
use geom::{Camera, Intrinsics};
use nalgebra::{Matrix3, Matrix4, Vector3};
use rand::{RngExt, rngs::StdRng};
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use render::{CropCamera, Pose, RenderConfig, Surfels, render};
use serde::{Deserialize, Serialize};
use sim::ShapeLibrary;
use sim::frame::{Frame, FrameConfig, frame_seed, generate_frame};
use sim::scene::ShapeRef;
use std::collections::BTreeMap;

/// The perturbation of a true pose that a sample (and an evaluation start) is rendered under.
/// Yaw turns about the camera's vertical through the object's origin; lateral and vertical shifts
/// move it along the camera's x and y; the depth error scales the whole translation (the object
/// slides along its viewing ray); the scale error multiplies the size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Perturbation {
    /// Yaw error ~ U(−this, +this), degrees.
    pub yaw_deg: f64,
    /// Camera-x shift ~ N(0, this²), m.
    pub lateral_m: f64,
    /// Camera-y shift ~ N(0, this²), m.
    pub vertical_m: f64,
    /// Relative depth error ~ N(0, this²).
    pub depth_fraction: f64,
    /// Relative scale error: scale × exp(N(0, this²)).
    pub scale_fraction: f64,
}

impl Default for Perturbation {
    fn default() -> Self {
        Perturbation {
            yaw_deg: 25.0,
            lateral_m: 0.25,
            vertical_m: 0.25,
            depth_fraction: 0.05,
            scale_fraction: 0.04,
        }
    }
}

impl Perturbation {
    /// Every spread multiplied by `factor` (smaller starts, for fine-tuning near convergence).
    pub fn scaled(&self, factor: f64) -> Self {
        Perturbation {
            yaw_deg: self.yaw_deg * factor,
            lateral_m: self.lateral_m * factor,
            vertical_m: self.vertical_m * factor,
            depth_fraction: self.depth_fraction * factor,
            scale_fraction: self.scale_fraction * factor,
        }
    }

    /// `pose` perturbed with draws from `rng`.
    pub fn apply(&self, pose: &Pose, rng: &mut StdRng) -> Pose {
        let gauss = |rng: &mut StdRng, sigma: f64| {
            if sigma > 0.0 {
                Normal::new(0.0, sigma).map_or(0.0, |n| n.sample(rng))
            } else {
                0.0
            }
        };
        let yaw = if self.yaw_deg > 0.0 {
            rng.random_range(-self.yaw_deg..=self.yaw_deg).to_radians()
        } else {
            0.0
        };
        let dx = gauss(rng, self.lateral_m);
        let dy = gauss(rng, self.vertical_m);
        let depth = 1.0 + gauss(rng, self.depth_fraction);
        let ls = gauss(rng, self.scale_fraction);
        let moved = apply_update(pose, &[yaw, dx, dy, 0.0, ls]);
        Pose {
            translation_m: (moved.translation_m.cast::<f64>() * depth.max(0.5)).cast(),
            ..moved
        }
    }
}

/// Where the crops come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Seed of the generated frames (evaluation uses another).
    pub seed: u64,
    /// Frames generated.
    pub frames: usize,
    /// Seed of the procedural car library (the one the shape prior was trained on).
    pub library_seed: u64,
    /// Size of the car library.
    pub library_size: usize,
    /// Which cars become crops (the CSS crops' filters; `store_size` is ignored: crops are
    /// stored at the network's input size).
    pub crop: CropConfig,
    /// Surface extraction of the shapes.
    pub surface: SurfaceConfig,
    /// Renderer settings.
    pub render: RenderConfig,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            seed: 11,
            frames: 400,
            library_seed: 2020,
            library_size: 1000,
            crop: CropConfig::default(),
            surface: SurfaceConfig::default(),
            render: RenderConfig::default(),
        }
    }
}

/// One car: the image crop, its camera, its own pixels, and its true pose.
#[derive(Clone, Debug, PartialEq)]
pub struct RefineCrop {
    /// Planar RGB in [0, 1], `[3, S, S]`.
    pub rgb: Vec<f32>,
    /// The crop's camera (S × S).
    pub camera: CropCamera,
    /// The car's own pixels (nothing in front), row-major.
    pub object_mask: Vec<bool>,
    /// Canonical frame → camera frame.
    pub true_pose: Pose,
    /// The shape's index in the library (and in the prior's codes).
    pub shape_index: usize,
    /// Frame index and label line.
    pub source: (usize, usize),
    /// The car's label box, image px.
    pub bbox: geom::Box2d,
    /// The full image's intrinsics.
    pub intrinsics: Intrinsics,
    /// The rect origin in the camera frame (camera = rect + this), m.
    pub cam_from_rect_m: Vector3<f64>,
    /// The full image's size (width, height), px.
    pub image_size_px: (f64, f64),
}

/// The crops of one frame (cars of shapes the prior learned, passing `config.crop`'s filters).
pub fn crops_of_frame(
    frame: &Frame,
    frame_index: usize,
    prior: &ShapePrior,
    size: usize,
    config: &DataConfig,
) -> Result<Vec<RefineCrop>> {
    let (k, cam_from_rect) = Intrinsics::from_projection(&frame.calib.image_from_rect(Camera::Cam2));
    let geo = &frame.geometry;
    let (gw, gh) = (geo.width as i64, geo.height as i64);
    let filter = &config.crop;
    let mut out = Vec::new();
    for ann in &frame.annotations {
        let ShapeRef::Library { index, .. } = &ann.shape else {
            continue;
        };
        if ann.kind != "Car" || *index >= prior.latents.len() {
            continue;
        }
        let Some(label) = frame.labels.get(ann.line) else {
            continue;
        };
        let b = &label.bbox;
        if b.bottom - b.top < filter.min_box_height_px
            || ann.visible_fraction < filter.min_visible_fraction
            || ann.truncation > filter.max_truncation
        {
            continue;
        }
        let object = frame.scene.objects.get(ann.object_index).ok_or_else(|| {
            RefineError::InvalidInput(format!(
                "frame {frame_index}: no scene object {}",
                ann.object_index
            ))
        })?;
        let norm = Normalisation::for_mesh(&object.mesh, prior.meta.metres_per_unit)?;
        let m = Matrix4::from_fn(|r, c| ann.rect_from_model[r][c]);
        let rot: Matrix3<f64> = m.fixed_view::<3, 3>(0, 0).into_owned();
        let t_rect: Vector3<f64> = m.fixed_view::<3, 1>(0, 3).into_owned();
        let centre = Vector3::from(norm.centre_model_m.map(f64::from));
        let true_pose = Pose {
            rotation: rot.cast(),
            translation_m: (rot * centre + t_rect + cam_from_rect).cast(),
            scale: norm.metres_per_unit,
        };
        let window = crop_window(b, filter.margin);
        let camera = CropCamera::new(&k.cropped(&window, size, size), size, size);
        let mut object_mask = Vec::with_capacity(size * size);
        for j in 0..size {
            for i in 0..size {
                let (u, v) = crop_to_image(&window, size, i as f64, j as f64);
                let (x, y) = (u.round() as i64, v.round() as i64);
                let inside = x >= 0 && y >= 0 && x < gw && y < gh;
                object_mask.push(inside && geo.object[(y * gw + x) as usize] as usize == ann.object_index);
            }
        }
        if object_mask.iter().filter(|m| **m).count() < 16 {
            continue;
        }
        out.push(RefineCrop {
            rgb: planar_rgb(&frame.image, &window, size),
            camera,
            object_mask,
            true_pose,
            shape_index: *index,
            source: (frame_index, ann.line),
            bbox: *b,
            intrinsics: k,
            cam_from_rect_m: cam_from_rect,
            image_size_px: (gw as f64, gh as f64),
        });
    }
    Ok(out)
}

/// Generates `config.frames` frames (`frame_seed(config.seed, i)`, `frame_config`'s domain) in
/// chunks and returns their crops in frame order.
pub fn generate_crops(
    prior: &ShapePrior,
    frame_config: &FrameConfig,
    size: usize,
    config: &DataConfig,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<RefineCrop>> {
    const CHUNK: usize = 16;
    let library = ShapeLibrary::procedural(config.library_seed, config.library_size);
    let mut crops = Vec::new();
    for first in (0..config.frames).step_by(CHUNK) {
        let per_frame: Vec<Vec<RefineCrop>> = (first..(first + CHUNK).min(config.frames))
            .into_par_iter()
            .map(|i| {
                let frame = generate_frame(&library, frame_config, frame_seed(config.seed, i as u64));
                let c = crops_of_frame(&frame, i, prior, size, config);
                progress(1);
                c
            })
            .collect::<Result<_>>()?;
        crops.extend(per_frame.into_iter().flatten());
    }
    Ok(crops)
}

/// NOCS-coloured surfels of `latent`'s surface (the refinement renders NOCS).
pub fn shape_surfels(prior: &ShapePrior, latent: &[f32], surface: &SurfaceConfig) -> Result<Surfels> {
    let s = extract_surface(&prior.decoder, latent, surface, false)?;
    Ok(Surfels {
        positions: s.points,
        normals: s.normals,
        colours: s.nocs,
    })
}

/// Surfels at `points` with `normals`, coloured by their NOCS.
pub fn nocs_surfels(points: &[[f32; 3]], normals: &[[f32; 3]]) -> Surfels {
    Surfels {
        positions: points.to_vec(),
        normals: normals.to_vec(),
        colours: points.iter().map(|p| unit_to_nocs(*p)).collect(),
    }
}

/// The surfels of every shape `crops` use, by library index (extracted in parallel).
pub fn shapes_of(
    prior: &ShapePrior,
    crops: &[RefineCrop],
    surface: &SurfaceConfig,
) -> Result<BTreeMap<usize, Surfels>> {
    let indices: std::collections::BTreeSet<usize> = crops.iter().map(|c| c.shape_index).collect();
    let indices: Vec<usize> = indices.into_iter().collect();
    let shapes: Vec<(usize, Surfels)> = indices
        .par_iter()
        .map(|&i| {
            let z = prior
                .latents
                .get(i)
                .ok_or_else(|| RefineError::InvalidInput(format!("the prior has no shape {i}")))?;
            Ok((i, shape_surfels(prior, z, surface)?))
        })
        .collect::<Result<_>>()?;
    Ok(shapes.into_iter().collect())
}

/// One network-ready sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Image, `[3, S, S]`.
    pub image: Vec<f32>,
    /// Rendering, `[crate::field::RENDER_CHANNELS, S, S]`.
    pub rendering: Vec<f32>,
    /// True field in crop px, `[2, T, T]`.
    pub field_px: Vec<f32>,
    /// Rendered cells, `[T, T]`, 0 or 1.
    pub rendered: Vec<f32>,
    /// Visible cells, `[T, T]`, 0 or 1.
    pub visible: Vec<f32>,
}

/// Renders `crop`'s shape under a pose perturbed by `perturbation` (drawn from `rng`) and pairs
/// it with the image and the true field.
pub fn make_sample(
    crop: &RefineCrop,
    surfels: &Surfels,
    perturbation: &Perturbation,
    render_config: &RenderConfig,
    rng: &mut StdRng,
) -> Result<Sample> {
    let start = perturbation.apply(&crop.true_pose, rng);
    sample_at(crop, surfels, &start, render_config)
}

/// [`make_sample`] from a given rendered pose.
pub fn sample_at(
    crop: &RefineCrop,
    surfels: &Surfels,
    rendered_pose: &Pose,
    render_config: &RenderConfig,
) -> Result<Sample> {
    let cam = &crop.camera;
    let image = render(cam, rendered_pose, surfels, render_config)?;
    let truth = render(cam, &crop.true_pose, surfels, render_config)?;
    let points = cell_points(&image);
    let field = true_field(
        cam,
        &points,
        rendered_pose,
        &crop.true_pose,
        &truth,
        Some(&crop.object_mask),
    );
    let t = points.len();
    let mut field_px = vec![0.0f32; 2 * t];
    for (k, o) in field.offset_px.iter().enumerate() {
        field_px[k] = o[0];
        field_px[t + k] = o[1];
    }
    let flag = |v: &[bool]| v.iter().map(|b| f32::from(u8::from(*b))).collect::<Vec<f32>>();
    Ok(Sample {
        image: crop.rgb.clone(),
        rendering: render_features(&image),
        field_px,
        rendered: flag(&field.rendered),
        visible: flag(&field.visible),
    })
}

/// Checks that a crop has the size the network reads.
pub fn check_size(crop: &RefineCrop, size: usize) -> Result<()> {
    let n = size * size;
    if crop.camera.width != size
        || crop.camera.height != size
        || crop.rgb.len() != 3 * n
        || crop.object_mask.len() != n
    {
        return Err(RefineError::InvalidInput(format!(
            "crop {:?} is {}×{}, the network reads {size}×{size}",
            crop.source, crop.camera.width, crop.camera.height
        )));
    }
    Ok(())
}
