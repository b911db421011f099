//! Training and evaluation crops from the synthetic world, with their targets, and the augmentation.
//!
//! A crop is a square window around a car's 2D box (the box's longer side plus a margin), resampled
//! to `store_size` pixels. Its targets come from the frame's exact geometry: every pixel of the car
//! is back-projected from its depth into the rect frame, taken into the car's model frame with the
//! true pose, then into the DeepSDF canonical frame of that shape (bounding-box centre, metres per
//! unit) and NOCS = (p + 1)/2; the mask is the car's own pixels; the latent is the prior's code of
//! that shape (fitted to the shape's surface when the prior did not learn it). Normals (for the
//! relighting augmentation) come from the camera geometry.
//!
//! A crop also keeps its 2D box as camera rays ([`BoxRays`]): a resampled crop has lost where the
//! box sat in the image and how large it was, which is what tells a car's metric size (a car on
//! the road at the box's bottom ray has a known distance), so the network reads them beside the
//! pixels ([`box_features`]).

use crate::error::{CssError, Result};
use deepsdf::ShapePrior;
use deepsdf::fit::{FitConfig, fit_latent};
use deepsdf::samples::{Normalisation, surface_samples, unit_to_nocs};
use geom::{Box2d, Camera, Intrinsics};
use image::RgbImage;
use nalgebra::{Matrix3, Matrix4, Point3, Vector3};
use rand::{RngExt, rngs::StdRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sim::ShapeLibrary;
use sim::frame::{Frame, FrameConfig, frame_seed, generate_frame};
use sim::scene::ShapeRef;
use std::collections::BTreeMap;

/// Which cars become crops, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CropConfig {
    /// Side of a stored crop, px (augmentation resamples it to the network's input).
    pub store_size: usize,
    /// Margin around the box's longer side (0.15: the window is 15 % larger).
    pub margin: f64,
    /// Cars with a smaller box height are skipped, px.
    pub min_box_height_px: f64,
    /// Cars with a smaller visible fraction are skipped.
    pub min_visible_fraction: f64,
    /// Cars cut off by the image border more than this are skipped.
    pub max_truncation: f64,
}

impl Default for CropConfig {
    fn default() -> Self {
        CropConfig {
            store_size: 80,
            margin: 0.15,
            min_box_height_px: 20.0,
            min_visible_fraction: 0.4,
            max_truncation: 0.3,
        }
    }
}

/// How the targets of a latent head that scores the prior's codes are made
/// ([`PriorShapes`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShapeWeightConfig {
    /// Marching resolution of the prior's decoded shapes.
    pub resolution: usize,
    /// Surface samples per shape (k-d tree side).
    pub samples: usize,
    /// Of which this many are measured against the other shape.
    pub queries: usize,
    /// Softmax temperature over the Chamfer distances, m.
    pub temperature_m: f32,
}

impl Default for ShapeWeightConfig {
    fn default() -> Self {
        ShapeWeightConfig {
            resolution: 32,
            samples: 8000,
            queries: 400,
            temperature_m: 0.01,
        }
    }
}

/// The prior's training shapes, decoded and sampled once (centred on their boxes, in metres), to
/// score how close each is to a given car: the targets of a latent head that scores the prior's
/// codes ([`crate::model::ModelConfig::latent_codes`]). The score is the Chamfer distance in metres,
/// so it counts a wrong size as much as a wrong silhouette, which a distance between codes does
/// not.
pub struct PriorShapes {
    sides: Vec<Option<deepsdf::chamfer::PointSide>>,
    config: ShapeWeightConfig,
}

impl PriorShapes {
    /// Decodes and samples every training code of `prior` (a code that decodes to nothing gets
    /// weight 0 in [`PriorShapes::weights`]).
    pub fn new(prior: &ShapePrior, config: &ShapeWeightConfig) -> Result<Self> {
        let mpu = prior.meta.metres_per_unit;
        let sides = prior
            .latents
            .par_iter()
            .enumerate()
            .map(|(i, z)| -> Result<Option<deepsdf::chamfer::PointSide>> {
                let unit = deepsdf::surface::decode_mesh(
                    &prior.decoder,
                    &deepsdf::decoder::normalised(z),
                    config.resolution,
                )?;
                if unit.triangles.is_empty() {
                    return Ok(None);
                }
                let centred = Normalisation {
                    centre_model_m: [0.0; 3],
                    metres_per_unit: mpu,
                }
                .mesh_to_model_m(&unit);
                let (points, _) = surface_samples(&centred, config.samples, i as u64)?;
                Ok(Some(deepsdf::chamfer::PointSide::new(&points, config.queries)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PriorShapes {
            sides,
            config: config.clone(),
        })
    }

    /// Number of shapes (the prior's training codes).
    pub fn len(&self) -> usize {
        self.sides.len()
    }

    /// Whether the prior has no training codes.
    pub fn is_empty(&self) -> bool {
        self.sides.is_empty()
    }

    /// Probabilities over the prior's shapes, softmax(−Chamfer / temperature), for a car whose
    /// mesh is `mesh_model_m` (model frame, metres; compared centred on its box, as the prior's
    /// canonical frame is). `seed` draws its surface samples.
    pub fn weights(&self, mesh_model_m: &sim::TriMesh, seed: u64) -> Result<Vec<f32>> {
        let norm = Normalisation::for_mesh(mesh_model_m, 1.0)?;
        let centred = norm.mesh_to_unit(mesh_model_m);
        let (points, _) = surface_samples(&centred, self.config.samples, seed)?;
        let side = deepsdf::chamfer::PointSide::new(&points, self.config.queries)?;
        let d: Vec<f64> = self
            .sides
            .iter()
            .map(|s| s.as_ref().map_or(f64::INFINITY, |s| s.chamfer_to(&side)))
            .collect();
        let best = d.iter().copied().fold(f64::INFINITY, f64::min);
        if !best.is_finite() {
            return Err(CssError::Empty("no decodable shape in the prior".into()));
        }
        let t = f64::from(self.config.temperature_m.max(1e-6));
        let e: Vec<f64> = d.iter().map(|x| (-(x - best) / t).exp()).collect();
        let sum: f64 = e.iter().sum();
        Ok(e.iter().map(|x| (x / sum) as f32).collect())
    }
}

/// Fills every crop's [`Crop::shape_weights`] from its library shape (once per shape).
pub fn attach_shape_weights(crops: &mut [Crop], library: &ShapeLibrary, shapes: &PriorShapes) -> Result<()> {
    let mut indices: Vec<usize> = crops.iter().map(|c| c.shape_index).collect();
    indices.sort_unstable();
    indices.dedup();
    let weights: BTreeMap<usize, Vec<f32>> = indices
        .par_iter()
        .map(|&i| -> Result<(usize, Vec<f32>)> {
            let mesh = library
                .shape(i)
                .ok_or_else(|| CssError::InvalidInput(format!("no library shape {i}")))?;
            Ok((i, shapes.weights(&mesh, i as u64)?))
        })
        .collect::<Result<_>>()?;
    for c in crops {
        c.shape_weights = weights[&c.shape_index].clone();
    }
    Ok(())
}

/// A 2D box as normalised camera coordinates, `((u − cx)/fx, (v − cy)/fy)` of its left, top, right
/// and bottom edges: the tangents of its rays, independent of the image's resolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxRays {
    /// Left edge, (u − cx)/fx.
    pub left: f32,
    /// Top edge, (v − cy)/fy.
    pub top: f32,
    /// Right edge.
    pub right: f32,
    /// Bottom edge.
    pub bottom: f32,
}

/// Number of [`box_features`].
pub const BOX_FEATURES: usize = 4;

impl BoxRays {
    /// The rays of `bbox` (KITTI pixel-centre extents, so the box covers half a pixel more on
    /// every side) under `k`.
    pub fn new(bbox: &Box2d, k: &Intrinsics) -> Self {
        BoxRays {
            left: ((bbox.left - 0.5 - k.cx) / k.fx) as f32,
            top: ((bbox.top - 0.5 - k.cy) / k.fy) as f32,
            right: ((bbox.right + 0.5 - k.cx) / k.fx) as f32,
            bottom: ((bbox.bottom + 0.5 - k.cy) / k.fy) as f32,
        }
    }

    /// The box seen in a mirrored image (a horizontal flip about the principal point).
    pub fn mirrored(&self) -> Self {
        BoxRays {
            left: -self.right,
            right: -self.left,
            ..*self
        }
    }
}

/// What the network reads about a box besides its pixels: for a car standing on a road below the
/// camera, the bottom ray's slope `b` sets the distance (∝ 1/b), so ln(height/b) and ln(width/b)
/// are its metric height and width in units of the camera's height, up to the road's slope; with
/// the box centre's horizontal ray (the viewing angle) and ln b itself. Bottom rays at or above the
/// horizon are clamped to 0.02.
pub fn box_features(rays: &BoxRays) -> [f32; BOX_FEATURES] {
    let b = rays.bottom.max(0.02);
    let h = (rays.bottom - rays.top).max(1e-4);
    let w = (rays.right - rays.left).max(1e-4);
    [(h / b).ln(), (w / b).ln(), (rays.left + rays.right) / 2.0, b.ln()]
}

/// One car crop with its targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Crop {
    /// Side, px.
    pub size: usize,
    /// RGB, row-major.
    pub image: Vec<[u8; 3]>,
    /// NOCS × 65535 (meaningful where `mask`).
    pub nocs: Vec<[u16; 3]>,
    /// The car's own pixels.
    pub mask: Vec<bool>,
    /// The pixels whose NOCS is known, where they are fewer than `mask`'s (`None`: every `mask`
    /// pixel). A crop made from an autolabel takes its mask from the detector and its NOCS from
    /// the label's rendering, which need not cover all of the car.
    pub nocs_mask: Option<Vec<bool>>,
    /// Camera-frame unit normal × 127 of whatever each pixel sees (zero for sky).
    pub normal: Vec<[i8; 3]>,
    /// The shape's DeepSDF code (unit length).
    pub latent: Vec<f32>,
    /// Weight of this crop's latent loss: 1 for a true shape's code; less (0: none) for a code
    /// that is itself an estimate whose errors the network should not learn (the curriculum's
    /// `fine_tune.target_latent_weight` sets it for autolabels' crops).
    pub latent_weight: f32,
    /// The car's 2D box (its label's) as rays.
    pub rays: BoxRays,
    /// The shape's index in the library.
    pub shape_index: usize,
    /// Frame index and label line it came from.
    pub source: (usize, usize),
    /// How close each of the prior's training shapes is to this car's, as target probabilities of
    /// a latent head that scores the prior's codes ([`PriorShapes::weights`]); empty when not
    /// computed (such a crop adds nothing to that loss).
    pub shape_weights: Vec<f32>,
}

/// The square crop window around a KITTI box (pixel-centre extents `left..=right`): centred on it,
/// side = (longer side + 1 px) × (1 + `margin`), in continuous image coordinates (see
/// [`geom::Intrinsics::cropped`]).
pub fn crop_window(bbox: &Box2d, margin: f64) -> Box2d {
    let side = ((bbox.right - bbox.left).max(bbox.bottom - bbox.top) + 1.0) * (1.0 + margin);
    let (cx, cy) = ((bbox.left + bbox.right) / 2.0, (bbox.top + bbox.bottom) / 2.0);
    Box2d::new(cx - side / 2.0, cy - side / 2.0, cx + side / 2.0, cy + side / 2.0)
}

/// The image position (continuous, pixel centres at integers) of crop pixel `(i, j)`'s centre.
pub fn crop_to_image(window: &Box2d, size: usize, i: f64, j: f64) -> (f64, f64) {
    (
        window.left + (i + 0.5) * window.width() / size as f64,
        window.top + (j + 0.5) * window.height() / size as f64,
    )
}

/// The crop `window` of `image` resampled to `size × size` (bilinear, pixel centres as
/// [`crop_to_image`]), planar RGB in [0, 1]: the networks' image input.
pub fn planar_rgb(image: &RgbImage, window: &Box2d, size: usize) -> Vec<f32> {
    let n = size * size;
    let mut planar = vec![0.0f32; 3 * n];
    for j in 0..size {
        for i in 0..size {
            let (u, v) = crop_to_image(window, size, i as f64, j as f64);
            let rgb = sample_rgb(image, u, v);
            for k in 0..3 {
                planar[k * n + j * size + i] = rgb[k] / 255.0;
            }
        }
    }
    planar
}

/// Bilinear RGB sample (0 outside the image).
pub fn sample_rgb(image: &RgbImage, u: f64, v: f64) -> [f32; 3] {
    let (w, h) = (i64::from(image.width()), i64::from(image.height()));
    let (u0, v0) = (u.floor(), v.floor());
    let (fu, fv) = ((u - u0) as f32, (v - v0) as f32);
    let px = |x: i64, y: i64| -> [f32; 3] {
        if x < 0 || y < 0 || x >= w || y >= h {
            [0.0; 3]
        } else {
            image.get_pixel(x as u32, y as u32).0.map(f32::from)
        }
    };
    let (x0, y0) = (u0 as i64, v0 as i64);
    let (a, b, c, d) = (px(x0, y0), px(x0 + 1, y0), px(x0, y0 + 1), px(x0 + 1, y0 + 1));
    std::array::from_fn(|k| {
        (1.0 - fv) * ((1.0 - fu) * a[k] + fu * b[k]) + fv * ((1.0 - fu) * c[k] + fu * d[k])
    })
}

/// The DeepSDF codes of library shapes: the prior's own for shapes it learned, fitted to 2,000
/// surface points of the mesh for the others (cached).
pub struct LatentTargets<'a> {
    prior: &'a ShapePrior,
    library: &'a ShapeLibrary,
    cache: BTreeMap<usize, Vec<f32>>,
}

impl<'a> LatentTargets<'a> {
    /// Targets for `library`'s shapes under `prior` (whose shape `i` must be library shape `i`).
    pub fn new(prior: &'a ShapePrior, library: &'a ShapeLibrary) -> Self {
        LatentTargets {
            prior,
            library,
            cache: BTreeMap::new(),
        }
    }

    /// Makes sure the codes of `indices` are known (fits the missing ones in parallel).
    pub fn prepare(&mut self, indices: &[usize]) -> Result<()> {
        let missing: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|i| *i >= self.prior.latents.len() && !self.cache.contains_key(i))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let fitted: Vec<(usize, Vec<f32>)> = missing
            .par_iter()
            .map(|&i| {
                let mesh = self
                    .library
                    .shape(i)
                    .ok_or_else(|| CssError::InvalidInput(format!("no library shape {i}")))?;
                let norm = Normalisation::for_mesh(&mesh, self.prior.meta.metres_per_unit)?;
                let (points, _) = surface_samples(&mesh, 2000, 0x5EED ^ i as u64)?;
                let obs: Vec<[f32; 3]> = points.iter().map(|p| norm.to_unit(*p)).collect();
                let fit = fit_latent(
                    &self.prior.decoder,
                    &obs,
                    &self.prior.latents,
                    &FitConfig::default(),
                )?;
                Ok((i, fit.latent))
            })
            .collect::<Result<_>>()?;
        self.cache.extend(fitted);
        Ok(())
    }

    /// The latent size.
    pub fn dim(&self) -> usize {
        self.prior.decoder.config.latent_dim
    }

    /// The unit code of shape `i` (after [`LatentTargets::prepare`] for shapes the prior lacks).
    pub fn get(&self, i: usize) -> Option<Vec<f32>> {
        let z = if i < self.prior.latents.len() {
            &self.prior.latents[i]
        } else {
            self.cache.get(&i)?
        };
        Some(deepsdf::decoder::normalised(z))
    }
}

fn matrix4(m: &[[f64; 4]; 4]) -> Matrix4<f64> {
    Matrix4::from_fn(|r, c| m[r][c])
}

/// The crops of one generated frame (cars of library shapes that pass `config`'s filters). The
/// true shape is the frame's own copy of the mesh (scenes place library meshes unchanged).
pub fn crops_of_frame(
    frame: &Frame,
    frame_index: usize,
    latents: &LatentTargets<'_>,
    metres_per_unit: f32,
    config: &CropConfig,
) -> Result<Vec<Crop>> {
    let (k, cam_from_rect) = Intrinsics::from_projection(&frame.calib.image_from_rect(Camera::Cam2));
    let rect_from_velo = frame.calib.rect_from_velo();
    let rot_rect_from_velo: Matrix3<f64> = rect_from_velo.fixed_view::<3, 3>(0, 0).into_owned();
    let geo = &frame.geometry;
    let (gw, gh) = (geo.width as i64, geo.height as i64);
    let mut out = Vec::new();
    for ann in &frame.annotations {
        let ShapeRef::Library { index, .. } = &ann.shape else {
            continue;
        };
        if ann.kind != "Car" {
            continue;
        }
        let Some(label) = frame.labels.get(ann.line) else {
            continue;
        };
        let b = &label.bbox;
        if b.bottom - b.top < config.min_box_height_px
            || ann.visible_fraction < config.min_visible_fraction
            || ann.truncation > config.max_truncation
        {
            continue;
        }
        // Without a target code (evaluation does not fit them) the latent is all zeros.
        let latent = latents.get(*index).unwrap_or_else(|| vec![0.0; latents.dim()]);
        let object = frame
            .scene
            .objects
            .get(ann.object_index)
            .ok_or_else(|| CssError::InvalidInput(format!("no scene object {}", ann.object_index)))?;
        let norm = Normalisation::for_mesh(&object.mesh, metres_per_unit)?;
        let model_from_rect = matrix4(&ann.rect_from_model)
            .try_inverse()
            .ok_or_else(|| CssError::InvalidInput("singular object pose".into()))?;
        let window = crop_window(b, config.margin);
        let s = config.store_size;
        let mut crop = Crop {
            size: s,
            image: Vec::with_capacity(s * s),
            nocs: Vec::with_capacity(s * s),
            mask: Vec::with_capacity(s * s),
            nocs_mask: None,
            normal: Vec::with_capacity(s * s),
            latent,
            latent_weight: 1.0,
            rays: BoxRays::new(b, &k),
            shape_index: *index,
            source: (frame_index, ann.line),
            shape_weights: Vec::new(),
        };
        for j in 0..s {
            for i in 0..s {
                let (u, v) = crop_to_image(&window, s, i as f64, j as f64);
                crop.image
                    .push(sample_rgb(&frame.image, u, v).map(|c| c.round().clamp(0.0, 255.0) as u8));
                let (x, y) = (u.round() as i64, v.round() as i64);
                let inside = x >= 0 && y >= 0 && x < gw && y < gh;
                let g = (y * gw + x) as usize;
                let mine = inside && geo.object[g] as usize == ann.object_index;
                let mut nocs = [0u16; 3];
                if mine {
                    let z = f64::from(geo.depth_m[g]);
                    let p_cam = k.ray(x as f64, y as f64) * z;
                    let p_rect = Point3::from(p_cam - cam_from_rect);
                    let p_model = model_from_rect.transform_point(&p_rect);
                    let unit = norm.to_unit([p_model.x as f32, p_model.y as f32, p_model.z as f32]);
                    nocs = unit_to_nocs(unit).map(|c| (c.clamp(0.0, 1.0) * 65535.0).round() as u16);
                }
                crop.nocs.push(nocs);
                crop.mask.push(mine);
                let n = if inside {
                    let nv = geo.normal_velo[g];
                    let nr = rot_rect_from_velo
                        * Vector3::new(f64::from(nv[0]), f64::from(nv[1]), f64::from(nv[2]));
                    [nr.x, nr.y, nr.z].map(|c| (c * 127.0).round().clamp(-127.0, 127.0) as i8)
                } else {
                    [0; 3]
                };
                crop.normal.push(n);
            }
        }
        if crop.mask.iter().filter(|m| **m).count() >= 16 {
            out.push(crop);
        }
    }
    Ok(out)
}

/// Generates `frames` frames (`frame_seed(seed, i)`) and returns their crops, in frame order. With
/// `fit_latents`, cars whose shape the prior did not learn get a fitted target code (training);
/// otherwise their latent is zero (evaluation, which compares decoded shapes with the true mesh).
#[allow(clippy::too_many_arguments, reason = "one call site per command")]
pub fn generate_crops(
    library: &ShapeLibrary,
    prior: &ShapePrior,
    frame_config: &FrameConfig,
    seed: u64,
    frames: usize,
    config: &CropConfig,
    fit_latents: bool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Crop>> {
    // Frames are large (image, geometry buffers, LIDAR sweep): generate, crop and drop them in
    // chunks, so memory stays at a chunk's worth whatever the frame count.
    const CHUNK: usize = 24;
    let mut latents = LatentTargets::new(prior, library);
    let mut crops = Vec::new();
    for first in (0..frames).step_by(CHUNK) {
        let generated: Vec<Frame> = (first..(first + CHUNK).min(frames))
            .into_par_iter()
            .map(|i| {
                let f = generate_frame(library, frame_config, frame_seed(seed, i as u64));
                progress(1);
                f
            })
            .collect();
        if fit_latents {
            let shapes: Vec<usize> = generated
                .iter()
                .flat_map(|f| f.annotations.iter())
                .filter_map(|a| match &a.shape {
                    ShapeRef::Library { index, .. } if a.kind == "Car" => Some(*index),
                    _ => None,
                })
                .collect();
            latents.prepare(&shapes)?;
        }
        let per_frame: Vec<Vec<Crop>> = generated
            .par_iter()
            .enumerate()
            .map(|(k, f)| crops_of_frame(f, first + k, &latents, prior.meta.metres_per_unit, config))
            .collect::<Result<_>>()?;
        crops.extend(per_frame.into_iter().flatten());
    }
    Ok(crops)
}

/// Augmentation settings (applied consistently to the input and its targets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentConfig {
    /// Random resized crop: the sampled window's side is this to 1 times the stored crop's.
    pub min_scale: f64,
    /// Largest rotation, degrees.
    pub max_rotation_deg: f64,
    /// Probability of a horizontal flip (NOCS x mirrored).
    pub flip_probability: f64,
    /// Brightness, contrast and saturation jitter (± fraction).
    pub colour_jitter: f32,
    /// Probability of relighting from the normals (ambient, diffuse, specular).
    pub relight_probability: f64,
    /// Noise on the box edges the network reads ([`box_features`]), as a fraction of the box's
    /// size (σ): a detector's boxes are not the labels'.
    pub box_jitter: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            min_scale: 0.75,
            max_rotation_deg: 10.0,
            flip_probability: 0.5,
            colour_jitter: 0.2,
            relight_probability: 0.5,
            box_jitter: 0.04,
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all (evaluation).
    pub fn none() -> Self {
        AugmentConfig {
            min_scale: 1.0,
            max_rotation_deg: 0.0,
            flip_probability: 0.0,
            colour_jitter: 0.0,
            relight_probability: 0.0,
            box_jitter: 0.0,
        }
    }
}

/// One network-ready sample: planar RGB in [0, 1] (`S × S`, the input size) and targets (`T × T`,
/// the output size).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// `[3, S, S]`.
    pub input: Vec<f32>,
    /// `[3, T, T]`.
    pub nocs: Vec<f32>,
    /// `[T, T]`, 0 or 1.
    pub mask: Vec<f32>,
    /// `[T, T]`, 1 where the NOCS target is known ([`Crop::nocs_mask`]).
    pub nocs_mask: Vec<f32>,
    /// The unit code.
    pub latent: Vec<f32>,
    /// The crop's [`Crop::latent_weight`].
    pub latent_weight: f32,
    /// The crop's [`Crop::shape_weights`] (empty when it has none).
    pub shape_weights: Vec<f32>,
    /// The box the network reads ([`box_features`]).
    pub box_features: [f32; BOX_FEATURES],
}

/// Resamples `crop` to `size × size` (targets to `target_size × target_size`, over the same
/// window) under a random similarity (resized crop, rotation, flip) and jitters its colours, all
/// drawn from `rng`.
pub fn augment(
    crop: &Crop,
    size: usize,
    target_size: usize,
    config: &AugmentConfig,
    rng: &mut StdRng,
) -> Sample {
    let s = crop.size as f64;
    let scale = if config.min_scale < 1.0 {
        rng.random_range(config.min_scale..=1.0)
    } else {
        1.0
    };
    let side = s * scale;
    let slack = s - side;
    let (ox, oy) = if slack > 0.0 {
        (rng.random_range(0.0..=slack), rng.random_range(0.0..=slack))
    } else {
        (0.0, 0.0)
    };
    let angle = if config.max_rotation_deg > 0.0 {
        rng.random_range(-config.max_rotation_deg..=config.max_rotation_deg)
            .to_radians()
    } else {
        0.0
    };
    let flip = rng.random_bool(config.flip_probability.clamp(0.0, 1.0));
    let (sin, cos) = angle.sin_cos();
    let (cx, cy) = (ox + side / 2.0, oy + side / 2.0);
    let jitter = |rng: &mut StdRng| {
        if config.colour_jitter > 0.0 {
            1.0 + rng.random_range(-config.colour_jitter..=config.colour_jitter)
        } else {
            1.0
        }
    };
    let (brightness, contrast, saturation) = (jitter(rng), jitter(rng), jitter(rng));
    let relight = rng.random_bool(config.relight_probability.clamp(0.0, 1.0));
    let light = {
        let (az, el): (f32, f32) = (
            rng.random_range(0.0..std::f32::consts::TAU),
            rng.random_range(0.2..1.2),
        );
        Vector3::new(az.cos() * el.cos(), -el.sin(), az.sin() * el.cos())
    };
    let (ambient, diffuse, specular): (f32, f32, f32) = (
        rng.random_range(0.4..0.8),
        rng.random_range(0.3..0.8),
        rng.random_range(0.0..0.4),
    );

    let rays = {
        let r = if flip { crop.rays.mirrored() } else { crop.rays };
        let (w, h) = (r.right - r.left, r.bottom - r.top);
        let sigma = config.box_jitter as f32;
        let mut noise = |size: f32| {
            if sigma > 0.0 {
                // Uniform with the given standard deviation: √3 σ half-width.
                rng.random_range(-1.0f32..=1.0) * 3f32.sqrt() * sigma * size
            } else {
                0.0
            }
        };
        BoxRays {
            left: r.left + noise(w),
            top: r.top + noise(h),
            right: r.right + noise(w),
            bottom: r.bottom + noise(h),
        }
    };
    let n = size * size;
    let tn = target_size * target_size;
    let mut out = Sample {
        input: vec![0.0; 3 * n],
        nocs: vec![0.0; 3 * tn],
        mask: vec![0.0; tn],
        nocs_mask: vec![0.0; tn],
        latent: crop.latent.clone(),
        latent_weight: crop.latent_weight,
        shape_weights: crop.shape_weights.clone(),
        box_features: box_features(&rays),
    };
    let at = |x: i64, y: i64| -> Option<usize> {
        (x >= 0 && y >= 0 && x < crop.size as i64 && y < crop.size as i64)
            .then(|| y as usize * crop.size + x as usize)
    };
    // Output pixel (i, j) of a `grid`-sided map → stored-crop coordinates: offset from the window's
    // centre (flipped first), rotated, scaled.
    let source = |i: usize, j: usize, grid: usize| {
        let mut dx = (i as f64 + 0.5) / grid as f64 - 0.5;
        let dy = (j as f64 + 0.5) / grid as f64 - 0.5;
        if flip {
            dx = -dx;
        }
        let (rx, ry) = (cos * dx - sin * dy, sin * dx + cos * dy);
        (cx + rx * side - 0.5, cy + ry * side - 0.5)
    };
    for j in 0..size {
        for i in 0..size {
            let (sx, sy) = source(i, j, size);
            // Colour: bilinear over the stored crop.
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
            let px = |x: i64, y: i64| {
                at(x, y).map_or([0.0f32; 3], |k| crop.image[k].map(|c| f32::from(c) / 255.0))
            };
            let (a, b, c, d) = (
                px(x0 as i64, y0 as i64),
                px(x0 as i64 + 1, y0 as i64),
                px(x0 as i64, y0 as i64 + 1),
                px(x0 as i64 + 1, y0 as i64 + 1),
            );
            let mut rgb: [f32; 3] = std::array::from_fn(|k| {
                (1.0 - fy) * ((1.0 - fx) * a[k] + fx * b[k]) + fy * ((1.0 - fx) * c[k] + fx * d[k])
            });
            if relight && let Some(k) = at(sx.round() as i64, sy.round() as i64) {
                let nv = crop.normal[k].map(|c| f32::from(c) / 127.0);
                let nvec = Vector3::new(nv[0], nv[1], nv[2]);
                if nvec.norm_squared() > 0.25 {
                    let lambert = nvec.dot(&light).max(0.0);
                    // Viewer along −z: the mirror direction's z component.
                    let refl = light - nvec * (2.0 * nvec.dot(&light));
                    let spec = refl.z.max(0.0).powi(16) * specular;
                    rgb = rgb.map(|c| c * (ambient + diffuse * lambert) + spec);
                }
            }
            let grey = (rgb[0] + rgb[1] + rgb[2]) / 3.0;
            let rgb = rgb.map(|c| {
                let c = grey + (c - grey) * saturation;
                ((c - 0.5) * contrast + 0.5) * brightness
            });
            let p = j * size + i;
            for (k, c) in rgb.iter().enumerate() {
                out.input[k * n + p] = c.clamp(0.0, 1.0);
            }
        }
    }
    // Targets: nearest stored pixel.
    for j in 0..target_size {
        for i in 0..target_size {
            let (sx, sy) = source(i, j, target_size);
            if let Some(k) = at(sx.round() as i64, sy.round() as i64)
                && crop.mask[k]
            {
                let p = j * target_size + i;
                out.mask[p] = 1.0;
                if crop.nocs_mask.as_ref().is_some_and(|m| !m[k]) {
                    continue;
                }
                out.nocs_mask[p] = 1.0;
                let nc = crop.nocs[k].map(|c| f32::from(c) / 65535.0);
                out.nocs[p] = if flip { 1.0 - nc[0] } else { nc[0] };
                out.nocs[tn + p] = nc[1];
                out.nocs[2 * tn + p] = nc[2];
            }
        }
    }
    out
}
