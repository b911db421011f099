//! The monocular mode's optimiser (MonoDR, METHODS.md §2): one object's pose, size, shape and
//! colours from a single image, its instance mask and a monocular depth map — no LIDAR.
//!
//! **State** ([`MonoState`], ROI-10D style): the projected centroid's offset from the 2D box centre
//! (as fractions of the box width and height), the centroid's camera depth (as ln depth), yaw about
//! the camera's vertical, ln scale (the shape's size; [`MonoWeights::dims`] ties the resulting
//! dimensions to the mean), the shape code (on the unit sphere) and a colour palette (one colour
//! per material of [`deepsdf::texture::MaterialAtlas`], the trained part of the texture).
//!
//! **Losses** (each with its analytic gradient; finite-difference checks in the tests):
//! - `Lp` pixel: `Σ |m·I − Ĉ| / (3 Σ m)` over the crop, `I` the image, `m` the detection mask
//!   (background masked out), `Ĉ` the rendered colour over a black background.
//! - `Lb` box: `max(1 − IoU(detection box, rendered box) − t_b, 0)`, the rendered box spanned by the
//!   projected surface points (clipped to the image); its gradient flows to the extreme points.
//! - `Lm` mask: `1 − soft IoU(rendered silhouette, detection mask)`.
//! - `Ld` depth: `Σ I_F·Î_F·|D − D̂| / Σ I_F` with `I_F` the masked pixels with a depth, `Î_F` the
//!   rendered coverage above ½ (held fixed), `D̂` the rendered depth (coverage divided out): the
//!   gradient flows through the rendered depth only, never into the depth map.
//! - `Ldim`: `Σ |s·extent − mean extent|` over the three axes, metres; the extent's gradient flows
//!   to the extreme surface points (and so to the code).
//! - `Lg` ground contact (ours, off by default): `(h/σ)²` of the lowest surface point's height
//!   above the road plane fitted to the depth map.
//! - the code prior `‖z − z̄‖²`. MonoDR's hypersphere regulariser `L_h` spreads a *batch* of codes
//!   over the sphere; it belongs to training the prior (`deepsdf::train`'s uniformity term). For one
//!   object it only says "stay on the sphere", which the optimiser enforces by projection.
//!
//! **Optimiser** ([`MonoOptimiser`]): Adam (α = 0.03, β = (0.5, 0.9)) on every parameter, the shape
//! decoded again after every code step; a few probed starting yaws; every `escape_every`
//! iterations the **rotation escape** scores yaw ± 15°, the flipped yaw and one uniform random yaw
//! (seeded) and jumps to the best if it beats the current loss; the best iterate is kept.

use crate::adam::Adam;
use crate::error::{OptimError, Result};
use crate::losses::Shape;
use crate::state::{ObjectState, level_rotation, level_rotation_derivative, v3};
use deepsdf::Decoder;
use deepsdf::surface::{SurfaceConfig, extract_surface};
use deepsdf::texture::{MATERIALS, MaterialAtlas};
use geom::{Box2d, Intrinsics};
use nalgebra::{Matrix3, Vector3};
use render::{CropCamera, ImageGrad, Pose, RenderConfig, Surfels};
use serde::{Deserialize, Serialize};

/// Loss weights of the monocular mode (MonoDR's defaults; 0 switches a term off).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonoWeights {
    /// λp, the pixel (RGB) term.
    pub pixel: f64,
    /// λb, the 2D box term.
    pub bbox: f64,
    /// λm, the silhouette term.
    pub mask: f64,
    /// λd, the depth term.
    pub depth: f64,
    /// λdim, the dimension term.
    pub dims: f64,
    /// The code prior (keeps the code near the mean on the sphere).
    pub latent: f64,
    /// Ground contact (ours, not MonoDR's): `(h/σ)²`, h the height of the shape's lowest point
    /// above the road plane fitted to the depth map, when the view has one.
    pub ground: f64,
}

impl Default for MonoWeights {
    fn default() -> Self {
        MonoWeights {
            pixel: 1.0,
            bbox: 1.0,
            mask: 1.0,
            depth: 0.2,
            dims: 0.1,
            latent: 0.01,
            ground: 0.0,
        }
    }
}

/// Settings of the monocular optimiser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonoConfig {
    /// Loss weights.
    pub weights: MonoWeights,
    /// Iterations per object (MonoDR: 150).
    pub iterations: usize,
    /// Adam step α (every parameter).
    pub lr: f64,
    /// Adam β₁.
    pub beta1: f64,
    /// Adam β₂.
    pub beta2: f64,
    /// The box term's margin t_b.
    pub box_margin: f64,
    /// The code takes a step (and the shape is decoded again) every this many iterations; 0 never.
    pub shape_every: usize,
    /// Starting yaws probed (evenly spaced; 1 = the initial yaw only).
    pub yaw_starts: usize,
    /// Iterations of each probe.
    pub probe_iterations: usize,
    /// Rotation escape every this many iterations (1 = every step, as MonoDR; 0 = off).
    pub escape_every: usize,
    /// The escape's small turn, degrees.
    pub escape_step_deg: f64,
    /// Ground contact scale σ, m.
    pub ground_sigma_m: f64,
    /// Crop resolution: pixels along the longer side of the crop window.
    pub crop_px: usize,
    /// The crop window is the detection box grown by this fraction of its size on every side.
    pub crop_margin: f64,
    /// The starting centroid lies this fraction of the mean horizontal extent behind the median
    /// depth of the mask (the visible surface is the near side).
    pub depth_behind_fraction: f64,
    /// Starting colours of glass, tyres and lamps (sRGB in [0, 1]); the paint starts at the mask's
    /// median colour.
    pub initial_palette: [[f32; 3]; 3],
    /// A label box whose bottom lies less than this above the road plane of the depth map is
    /// extended down to the road (the labeler's post-processing), m; 0 never.
    pub snap_to_road_m: f64,
    /// Renderer settings.
    pub render: RenderConfig,
    /// Surface extraction.
    pub surface: SurfaceConfig,
}

impl Default for MonoConfig {
    fn default() -> Self {
        MonoConfig {
            weights: MonoWeights::default(),
            iterations: 60,
            lr: 0.03,
            beta1: 0.5,
            beta2: 0.9,
            box_margin: 0.1,
            shape_every: 3,
            yaw_starts: 4,
            probe_iterations: 6,
            escape_every: 3,
            escape_step_deg: 15.0,
            ground_sigma_m: 0.1,
            crop_px: 40,
            crop_margin: 0.1,
            depth_behind_fraction: 0.25,
            initial_palette: [[0.08, 0.09, 0.11], [0.05, 0.05, 0.05], [0.7, 0.7, 0.7]],
            snap_to_road_m: 0.3,
            render: RenderConfig::default(),
            surface: SurfaceConfig::default(),
        }
    }
}

/// What one object is fitted to: the detection's crop resampled to the crop camera's grid.
#[derive(Clone, Debug, PartialEq)]
pub struct MonoView {
    /// Camera of the crop grid (camera frame).
    pub camera: CropCamera,
    /// The full image's intrinsics (camera frame).
    pub intrinsics: Intrinsics,
    /// The rect origin in the camera frame (camera = rect + this), m.
    pub cam_from_rect_m: Vector3<f64>,
    /// The full image's size (width, height), px.
    pub image_size_px: (f64, f64),
    /// The detection box, image px.
    pub bbox: Box2d,
    /// Image colour per crop pixel (sRGB in [0, 1]), row-major.
    pub rgb: Vec<[f32; 3]>,
    /// Detection mask per crop pixel (the covered fraction), row-major.
    pub mask: Vec<f32>,
    /// Monocular depth per crop pixel, m (0 = none), row-major.
    pub depth_m: Vec<f32>,
    /// The road plane (rect frame), when one was fitted to the depth map.
    pub road: Option<crate::GroundPlane>,
}

impl MonoView {
    fn validate(&self) -> Result<()> {
        let n = self.camera.pixels();
        if self.rgb.len() != n || self.mask.len() != n || self.depth_m.len() != n {
            return Err(OptimError::InvalidInput(format!(
                "mono view maps of {}, {} and {} values for a {}×{} crop",
                self.rgb.len(),
                self.mask.len(),
                self.depth_m.len(),
                self.camera.width,
                self.camera.height
            )));
        }
        let finite = self
            .rgb
            .iter()
            .flatten()
            .chain(&self.mask)
            .chain(&self.depth_m)
            .all(|v| v.is_finite());
        if !(finite && self.bbox.width() > 0.0 && self.bbox.height() > 0.0) {
            return Err(OptimError::InvalidInput(format!(
                "mono view: non-finite values or an empty box {:?}",
                self.bbox
            )));
        }
        Ok(())
    }

    fn box_centre(&self) -> (f64, f64) {
        (
            (self.bbox.left + self.bbox.right) / 2.0,
            (self.bbox.top + self.bbox.bottom) / 2.0,
        )
    }
}

/// One object's parameters in the monocular mode.
#[derive(Clone, Debug, PartialEq)]
pub struct MonoState {
    /// Yaw (KITTI rotation_y: level ground, camera y down), rad.
    pub yaw_rad: f64,
    /// Offset of the projected centroid from the box centre, in box widths and heights.
    pub offset_box: [f64; 2],
    /// ln of the centroid's camera depth (m).
    pub log_depth: f64,
    /// ln of metres per canonical unit.
    pub log_scale: f64,
    /// Shape code (unit norm).
    pub latent: Vec<f32>,
    /// One colour per material (body, window, wheel, light), sRGB.
    pub palette: [[f32; 3]; MATERIALS],
}

impl MonoState {
    /// The centroid (the canonical origin) in the camera frame, m.
    pub fn centroid_cam(&self, view: &MonoView) -> Vector3<f64> {
        let k = &view.intrinsics;
        let (cu, cv) = view.box_centre();
        let u = cu + self.offset_box[0] * view.bbox.width();
        let v = cv + self.offset_box[1] * view.bbox.height();
        k.ray(u, v) * self.log_depth.exp()
    }

    /// The renderer's pose (camera frame).
    pub fn pose(&self, view: &MonoView) -> Pose {
        Pose {
            rotation: level_rotation(self.yaw_rad).cast::<f32>(),
            translation_m: self.centroid_cam(view).cast::<f32>(),
            scale: self.log_scale.exp() as f32,
        }
    }

    /// The same pose as the LIDAR optimiser's state (rect frame, level ground).
    pub fn to_object_state(&self, view: &MonoView) -> ObjectState {
        ObjectState {
            yaw_rad: self.yaw_rad,
            translation_rect_m: self.centroid_cam(view) - view.cam_from_rect_m,
            scale: self.log_scale.exp(),
            latent: self.latent.clone(),
        }
    }

    fn finite(&self) -> bool {
        self.yaw_rad.is_finite()
            && self.offset_box.iter().all(|v| v.is_finite())
            && self.log_depth.is_finite()
            && self.log_scale.is_finite()
            && self.latent.iter().all(|v| v.is_finite())
            && self.palette.iter().flatten().all(|v| v.is_finite())
    }
}

/// Loss terms (weighted) and their sum.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MonoTerms {
    /// λp·Lp.
    pub pixel: f64,
    /// λb·Lb.
    pub bbox: f64,
    /// λm·Lm.
    pub mask: f64,
    /// λd·Ld.
    pub depth: f64,
    /// λdim·Ldim.
    pub dims: f64,
    /// The code prior.
    pub latent: f64,
    /// Ground contact.
    pub ground: f64,
    /// The sum.
    pub total: f64,
}

/// Unweighted residuals of a state, for the confidence and reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MonoDiagnostics {
    /// IoU of the rendered (α > ½) and detected (m > ½) silhouettes.
    pub silhouette_iou: f64,
    /// The soft silhouette loss Lm (unweighted).
    pub mask_loss: f64,
    /// IoU of the rendered box with the detection box.
    pub box_iou: f64,
    /// Mean absolute depth difference where both the mask and the rendering cover, m.
    pub depth_error_m: f64,
}

/// The gradient of the total loss.
#[derive(Clone, Debug, PartialEq)]
pub struct MonoGradient {
    /// ∂L/∂yaw.
    pub yaw: f64,
    /// ∂L/∂offset_box.
    pub offset_box: [f64; 2],
    /// ∂L/∂ln depth.
    pub log_depth: f64,
    /// ∂L/∂ln scale.
    pub log_scale: f64,
    /// ∂L/∂z (through the surface points' Jacobians, atlas weights held fixed, plus the prior).
    pub latent: Vec<f64>,
    /// ∂L/∂palette.
    pub palette: [[f64; 3]; MATERIALS],
}

/// Everything the losses need besides the state.
pub struct MonoProblem<'a> {
    /// The evidence.
    pub view: &'a MonoView,
    /// Where the materials are.
    pub atlas: &'a MaterialAtlas,
    /// The mean code (code prior).
    pub mean_latent: &'a [f32],
    /// The mean car's extent along canonical x (width), y (height), z (length), m.
    pub mean_extent_m: [f64; 3],
    /// Settings.
    pub config: &'a MonoConfig,
}

/// A decoded shape with its per-point material weights.
pub struct MonoShape {
    /// Surface, Jacobians.
    pub shape: Shape,
    /// Material probabilities per point.
    pub materials: Vec<[f32; MATERIALS]>,
}

impl MonoShape {
    /// Weights `shape`'s points with `atlas`.
    pub fn new(shape: Shape, atlas: &MaterialAtlas) -> Self {
        let materials = shape
            .surfels
            .positions
            .iter()
            .map(|p| atlas.weights(*p))
            .collect();
        MonoShape { shape, materials }
    }

    fn surfels(&self, palette: &[[f32; 3]; MATERIALS]) -> Surfels {
        let s = &self.shape.surfels;
        Surfels {
            positions: s.positions.clone(),
            normals: s.normals.clone(),
            colours: self
                .materials
                .iter()
                .map(|w| std::array::from_fn(|ch| (0..MATERIALS).map(|m| w[m] * palette[m][ch]).sum()))
                .collect(),
        }
    }
}

/// ∂IoU(a, b)/∂(b.left, b.top, b.right, b.bottom), and the IoU.
fn iou_and_gradient(a: &Box2d, b: &Box2d) -> (f64, [f64; 4]) {
    let iw = a.right.min(b.right) - a.left.max(b.left);
    let ih = a.bottom.min(b.bottom) - a.top.max(b.top);
    let (bw, bh) = (b.right - b.left, b.bottom - b.top);
    let union = a.width() * a.height() + bw * bh - iw.max(0.0) * ih.max(0.0);
    if iw <= 0.0 || ih <= 0.0 || union <= 0.0 {
        return (0.0, [0.0; 4]);
    }
    let inter = iw * ih;
    let d_inter = [
        if b.left > a.left { -ih } else { 0.0 },
        if b.top > a.top { -iw } else { 0.0 },
        if b.right < a.right { ih } else { 0.0 },
        if b.bottom < a.bottom { iw } else { 0.0 },
    ];
    let d_area = [-bh, -bw, bh, bw];
    let g = std::array::from_fn(|k| {
        let d_union = d_area[k] - d_inter[k];
        (d_inter[k] * union - inter * d_union) / (union * union)
    });
    (inter / union, g)
}

/// Accumulated gradient with respect to the renderer's pose, the points and the colours.
struct RawGrad {
    rotation: Matrix3<f64>,
    translation: Vector3<f64>,
    scale: f64,
    points: Vec<Vector3<f64>>,
    colours: Vec<Vector3<f64>>,
}

/// The loss of `state` with its decoded `shape`, and with `with_gradient` its gradient.
pub fn evaluate(
    problem: &MonoProblem<'_>,
    state: &MonoState,
    shape: &MonoShape,
    with_gradient: bool,
) -> Result<(MonoTerms, MonoDiagnostics, Option<MonoGradient>)> {
    let view = problem.view;
    let cfg = problem.config;
    let w = &cfg.weights;
    let pose = state.pose(view);
    let rot = level_rotation(state.yaw_rad);
    let s = state.log_scale.exp();
    let t = state.centroid_cam(view);
    let surfels = shape.surfels(&state.palette);
    let n_pts = surfels.len();
    let mut terms = MonoTerms::default();
    let mut diag = MonoDiagnostics::default();
    let mut raw = RawGrad {
        rotation: Matrix3::zeros(),
        translation: Vector3::zeros(),
        scale: 0.0,
        points: vec![Vector3::zeros(); n_pts],
        colours: vec![Vector3::zeros(); n_pts],
    };

    // Rendered terms: pixel, mask, depth.
    let image = render::render(&view.camera, &pose, &surfels, &cfg.render)?;
    let npx = view.camera.pixels();
    let mut img_grad = ImageGrad::zeros(view.camera.width, view.camera.height);
    let msum: f64 = view.mask.iter().map(|&m| f64::from(m)).sum::<f64>().max(1.0);
    let (mut inter, mut union) = (0.0f64, 0.0f64);
    let (mut hard_i, mut hard_u) = (0usize, 0usize);
    let mut pixel = 0.0;
    let depth_pixels = view
        .mask
        .iter()
        .zip(&view.depth_m)
        .filter(|(m, d)| **m > 0.5 && **d > 0.0)
        .count();
    let nd = depth_pixels.max(1) as f64;
    let (mut depth_sum, mut depth_abs, mut depth_n) = (0.0, 0.0, 0usize);
    for u in 0..npx {
        let m = f64::from(view.mask[u]);
        let a = f64::from(image.mask[u]);
        inter += a * m;
        union += a + m - a * m;
        hard_i += usize::from(a > 0.5 && m > 0.5);
        hard_u += usize::from(a > 0.5 || m > 0.5);
        for ch in 0..3 {
            let d = f64::from(image.colour[u][ch]) - m * f64::from(view.rgb[u][ch]);
            pixel += d.abs();
            if with_gradient && w.pixel > 0.0 {
                img_grad.colour[u][ch] += (w.pixel * d.signum() / (3.0 * msum)) as f32;
            }
        }
        let obs = f64::from(view.depth_m[u]);
        if m > 0.5 && obs > 0.0 && a > 0.5 {
            let dz = f64::from(image.depth_m[u]);
            let rendered = dz / a;
            let r = rendered - obs;
            depth_sum += r.abs();
            depth_abs += r.abs();
            depth_n += 1;
            if with_gradient && w.depth > 0.0 {
                let g = w.depth * r.signum() / nd;
                img_grad.depth_m[u] += (g / a) as f32;
                img_grad.mask[u] -= (g * dz / (a * a)) as f32;
            }
        }
    }
    terms.pixel = w.pixel * pixel / (3.0 * msum);
    terms.depth = w.depth * depth_sum / nd;
    let union = union.max(1e-9);
    diag.mask_loss = 1.0 - inter / union;
    terms.mask = w.mask * diag.mask_loss;
    diag.silhouette_iou = if hard_u > 0 {
        hard_i as f64 / hard_u as f64
    } else {
        0.0
    };
    diag.depth_error_m = if depth_n > 0 {
        depth_abs / depth_n as f64
    } else {
        f64::NAN
    };
    if with_gradient {
        if w.mask > 0.0 {
            for u in 0..npx {
                let m = f64::from(view.mask[u]);
                let d = -(m * union - inter * (1.0 - m)) / (union * union);
                img_grad.mask[u] += (w.mask * d) as f32;
            }
        }
        let sg = render::backward(&view.camera, &pose, &surfels, &cfg.render, &image, &img_grad)?;
        raw.rotation += sg.pose.rotation.cast::<f64>();
        raw.translation += sg.pose.translation_m.cast::<f64>();
        raw.scale += f64::from(sg.pose.scale);
        for (i, (gp, gc)) in sg.positions.iter().zip(&sg.colours).enumerate() {
            raw.points[i] += v3(gp);
            raw.colours[i] += v3(gc);
        }
    }

    // Box: the projected surface points' extent, clipped to the image.
    let k = &view.intrinsics;
    let (img_w, img_h) = view.image_size_px;
    let mut ext = [
        (f64::INFINITY, 0usize),
        (f64::INFINITY, 0),
        (f64::NEG_INFINITY, 0),
        (f64::NEG_INFINITY, 0),
    ];
    let mut cams = Vec::with_capacity(n_pts);
    for (i, p) in surfels.positions.iter().enumerate() {
        let q = rot * v3(p) * s + t;
        cams.push(q);
        if q.z <= 1e-3 {
            continue;
        }
        let (u, v) = (k.fx * q.x / q.z + k.cx, k.fy * q.y / q.z + k.cy);
        if u < ext[0].0 {
            ext[0] = (u, i);
        }
        if v < ext[1].0 {
            ext[1] = (v, i);
        }
        if u > ext[2].0 {
            ext[2] = (u, i);
        }
        if v > ext[3].0 {
            ext[3] = (v, i);
        }
    }
    if ext.iter().all(|e| e.0.is_finite()) {
        let limits = [
            (0.0, img_w - 1.0),
            (0.0, img_h - 1.0),
            (0.0, img_w - 1.0),
            (0.0, img_h - 1.0),
        ];
        let clipped: [f64; 4] = std::array::from_fn(|j| ext[j].0.clamp(limits[j].0, limits[j].1));
        let rendered = Box2d::new(clipped[0], clipped[1], clipped[2], clipped[3]);
        let (iou, d_iou) = iou_and_gradient(&view.bbox, &rendered);
        diag.box_iou = iou;
        let lb = 1.0 - iou - cfg.box_margin;
        if lb > 0.0 {
            terms.bbox = w.bbox * lb;
            if with_gradient && w.bbox > 0.0 {
                for j in 0..4 {
                    let inside = ext[j].0 > limits[j].0 && ext[j].0 < limits[j].1;
                    if !inside || d_iou[j] == 0.0 {
                        continue;
                    }
                    let g = -w.bbox * d_iou[j];
                    let i = ext[j].1;
                    let q = cams[i];
                    // ∂u/∂q or ∂v/∂q.
                    let dq = if j % 2 == 0 {
                        Vector3::new(k.fx / q.z, 0.0, -k.fx * q.x / (q.z * q.z))
                    } else {
                        Vector3::new(0.0, k.fy / q.z, -k.fy * q.y / (q.z * q.z))
                    } * g;
                    let p = v3(&surfels.positions[i]);
                    raw.translation += dq;
                    raw.rotation += dq * (p * s).transpose();
                    raw.scale += dq.dot(&(rot * p));
                    raw.points[i] += rot.transpose() * dq * s;
                }
            }
        }
    } else {
        terms.bbox = w.bbox * (1.0 - cfg.box_margin).max(0.0);
    }

    // Dimensions: the extent of the surface along each canonical axis.
    if w.dims > 0.0 {
        let mut sum = 0.0;
        for axis in 0..3 {
            let (mut lo, mut hi) = ((f32::INFINITY, 0usize), (f32::NEG_INFINITY, 0usize));
            for (i, p) in surfels.positions.iter().enumerate() {
                if p[axis] < lo.0 {
                    lo = (p[axis], i);
                }
                if p[axis] > hi.0 {
                    hi = (p[axis], i);
                }
            }
            let extent = f64::from(hi.0 - lo.0);
            let d = s * extent - problem.mean_extent_m[axis];
            sum += d.abs();
            if with_gradient {
                let g = w.dims * d.signum();
                // ∂/∂ln s of s·extent is s·extent; the points move the extent directly.
                raw.scale += g * extent;
                raw.points[hi.1][axis] += g * s;
                raw.points[lo.1][axis] -= g * s;
            }
        }
        terms.dims = w.dims * sum;
    }

    // Ground contact: the lowest surface point (min canonical y; model up is −y of the camera at
    // every yaw) on the road.
    if w.ground > 0.0
        && let Some(road) = &view.road
        && let Some((lowest, p)) = surfels
            .positions
            .iter()
            .enumerate()
            .min_by(|a, b| a.1[1].total_cmp(&b.1[1]))
    {
        let p = v3(p);
        let q_rect = rot * p * s + t - view.cam_from_rect_m;
        let up = road.up_rect.into_inner();
        let h = road.height_m(&q_rect);
        let sigma2 = cfg.ground_sigma_m * cfg.ground_sigma_m;
        terms.ground = w.ground * h * h / sigma2;
        if with_gradient {
            let g = up * (2.0 * w.ground * h / sigma2);
            raw.translation += g;
            raw.rotation += g * (p * s).transpose();
            raw.scale += g.dot(&(rot * p));
            raw.points[lowest] += rot.transpose() * g * s;
        }
    }

    // Code prior.
    let dim = state.latent.len();
    let mut latent_direct = vec![0.0; dim];
    if w.latent > 0.0 && problem.mean_latent.len() == dim {
        let mut sum = 0.0;
        for (kk, (z, m)) in state.latent.iter().zip(problem.mean_latent).enumerate() {
            let d = f64::from(z - m);
            sum += d * d;
            latent_direct[kk] = 2.0 * w.latent * d;
        }
        terms.latent = w.latent * sum;
    }
    terms.total =
        terms.pixel + terms.bbox + terms.mask + terms.depth + terms.dims + terms.latent + terms.ground;
    if !with_gradient {
        return Ok((terms, diag, None));
    }

    // Chain to the parameters.
    let drot = level_rotation_derivative(state.yaw_rad);
    let (cu, cv) = view.box_centre();
    let u = cu + state.offset_box[0] * view.bbox.width();
    let v = cv + state.offset_box[1] * view.bbox.height();
    let z = state.log_depth.exp();
    let ray = k.ray(u, v);
    let mut latent = latent_direct;
    let jac = &shape.shape.jacobian;
    if jac.len() == n_pts {
        for (gp, j) in raw.points.iter().zip(jac) {
            for r in 0..3 {
                for (kk, gk) in latent.iter_mut().enumerate() {
                    *gk += gp[r] * f64::from(j[r * dim + kk]);
                }
            }
        }
    }
    let mut palette = [[0.0; 3]; MATERIALS];
    for (gc, mw) in raw.colours.iter().zip(&shape.materials) {
        for (m, pm) in palette.iter_mut().enumerate() {
            for ch in 0..3 {
                pm[ch] += f64::from(mw[m]) * gc[ch];
            }
        }
    }
    let grad = MonoGradient {
        yaw: raw.rotation.component_mul(&drot).sum(),
        offset_box: [
            raw.translation.x * z * view.bbox.width() / k.fx,
            raw.translation.y * z * view.bbox.height() / k.fy,
        ],
        log_depth: raw.translation.dot(&(ray * z)),
        log_scale: raw.scale * s,
        latent,
        palette,
    };
    Ok((terms, diag, Some(grad)))
}

/// The outcome of fitting one object.
#[derive(Clone, Debug)]
pub struct MonoFit {
    /// The best state.
    pub state: MonoState,
    /// Its loss terms.
    pub terms: MonoTerms,
    /// Its residuals.
    pub diagnostics: MonoDiagnostics,
    /// The starting state's loss (after the yaw probes).
    pub initial_loss: f64,
    /// Rotation escapes taken.
    pub escapes: usize,
    /// Times the shape was decoded.
    pub decodes: usize,
}

const POSE_PARAMS: usize = 5 + 3 * MATERIALS;

fn pose_vector(g: &MonoGradient) -> Vec<f64> {
    let mut v = vec![g.yaw, g.offset_box[0], g.offset_box[1], g.log_depth, g.log_scale];
    v.extend(g.palette.iter().flatten());
    v
}

fn apply_pose_step(state: &mut MonoState, step: &[f64]) {
    state.yaw_rad += step[0];
    state.offset_box[0] += step[1];
    state.offset_box[1] += step[2];
    state.log_depth += step[3];
    state.log_scale += step[4];
    for (k, c) in state.palette.iter_mut().flatten().enumerate() {
        *c = (*c + step[5 + k] as f32).clamp(0.0, 1.0);
    }
}

fn normalise(z: &mut [f32]) {
    let n = z.iter().map(|v| v * v).sum::<f32>().sqrt();
    if n > 1e-12 {
        z.iter_mut().for_each(|v| *v /= n);
    }
}

/// A tiny deterministic generator for the escape's random yaws (SplitMix64).
struct SplitMix(u64);

impl SplitMix {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Fits objects in the monocular mode with one decoder, atlas and configuration.
pub struct MonoOptimiser<'a> {
    decoder: &'a Decoder,
    atlas: &'a MaterialAtlas,
    mean_latent: &'a [f32],
    mean_extent_m: [f64; 3],
    config: &'a MonoConfig,
}

impl<'a> MonoOptimiser<'a> {
    /// An optimiser; `mean_extent_m` is the mean car's extent (canonical x, y, z), m.
    pub fn new(
        decoder: &'a Decoder,
        atlas: &'a MaterialAtlas,
        mean_latent: &'a [f32],
        mean_extent_m: [f64; 3],
        config: &'a MonoConfig,
    ) -> Self {
        MonoOptimiser {
            decoder,
            atlas,
            mean_latent,
            mean_extent_m,
            config,
        }
    }

    /// Decodes `latent` (with Jacobians) and weights its points with the atlas.
    pub fn decode(&self, latent: &[f32]) -> Result<MonoShape> {
        let surface = extract_surface(self.decoder, latent, &self.config.surface, true)?;
        Ok(MonoShape::new(Shape::new(surface)?, self.atlas))
    }

    fn problem<'b>(&'b self, view: &'b MonoView) -> MonoProblem<'b> {
        MonoProblem {
            view,
            atlas: self.atlas,
            mean_latent: self.mean_latent,
            mean_extent_m: self.mean_extent_m,
            config: self.config,
        }
    }

    /// The MonoDR start: offsets 0, the centroid behind the median depth of the mask (the mean
    /// depth when the view has no depth), scale and code the prior's means, paint the mask's median
    /// colour, the given yaw.
    pub fn initial_state(
        &self,
        view: &MonoView,
        scale: f64,
        yaw_rad: f64,
        fallback_depth_m: f64,
    ) -> MonoState {
        let cfg = self.config;
        let mut depths: Vec<f32> = view
            .mask
            .iter()
            .zip(&view.depth_m)
            .filter(|(m, d)| **m > 0.5 && **d > 0.0)
            .map(|(_, d)| *d)
            .collect();
        let surface_m = if depths.is_empty() {
            fallback_depth_m
        } else {
            let mid = depths.len() / 2;
            f64::from(*depths.select_nth_unstable_by(mid, f32::total_cmp).1)
        };
        let horizontal = (self.mean_extent_m[0] + self.mean_extent_m[2]) / 2.0;
        let depth_m = (surface_m + cfg.depth_behind_fraction * horizontal).max(1.0);
        let paint: [f32; 3] = std::array::from_fn(|ch| {
            let mut v: Vec<f32> = view
                .mask
                .iter()
                .zip(&view.rgb)
                .filter(|(m, _)| **m > 0.5)
                .map(|(_, c)| c[ch])
                .collect();
            if v.is_empty() {
                0.5
            } else {
                let mid = v.len() / 2;
                *v.select_nth_unstable_by(mid, f32::total_cmp).1
            }
        });
        let p = cfg.initial_palette;
        let mut latent = self.mean_latent.to_vec();
        normalise(&mut latent);
        MonoState {
            yaw_rad,
            offset_box: [0.0, 0.0],
            log_depth: depth_m.ln(),
            log_scale: scale.ln(),
            latent,
            palette: [paint, p[0], p[1], p[2]],
        }
    }

    /// Fits one object from `init`; `seed` drives the escape's random yaws.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn fit(&self, view: &MonoView, init: &MonoState, seed: u64) -> Result<MonoFit> {
        let cfg = self.config;
        view.validate()?;
        if !init.finite() || init.latent.len() != self.decoder.config.latent_dim {
            return Err(OptimError::InvalidInput(format!("mono start {init:?}")));
        }
        let problem = self.problem(view);
        let mut state = init.clone();
        normalise(&mut state.latent);
        let mut shape = self.decode(&state.latent)?;
        let mut decodes = 1;
        let mut rng = SplitMix(seed ^ 0xD1B5_4A32_D192_ED03);

        // Starting yaw: short probes from evenly spaced yaws, the lowest loss wins.
        let starts = cfg.yaw_starts.max(1);
        let mut best_start: Option<(f64, MonoState)> = None;
        for k in 0..starts {
            let mut candidate = state.clone();
            candidate.yaw_rad = init.yaw_rad + std::f64::consts::TAU * k as f64 / starts as f64;
            if starts > 1 {
                let mut adam = Adam::new(POSE_PARAMS);
                for _ in 0..cfg.probe_iterations {
                    let (_, _, grad) = evaluate(&problem, &candidate, &shape, true)?;
                    let Some(g) = grad else { break };
                    let step = adam.step_uniform(&pose_vector(&g), cfg.lr, cfg.beta1, cfg.beta2);
                    apply_pose_step(&mut candidate, &step);
                }
            }
            let (terms, _, _) = evaluate(&problem, &candidate, &shape, false)?;
            if best_start.as_ref().is_none_or(|(l, _)| terms.total < *l) {
                best_start = Some((terms.total, candidate));
            }
        }
        if let Some((_, s)) = best_start {
            state = s;
        }
        let (initial, initial_diag, _) = evaluate(&problem, &state, &shape, false)?;
        let initial_loss = initial.total;
        let mut best = (initial_loss, state.clone(), initial, initial_diag);
        let mut adam = Adam::new(POSE_PARAMS);
        let dim = state.latent.len();
        let mut code_adam = Adam::new(dim);
        let mut escapes = 0;
        let step_rad = cfg.escape_step_deg.to_radians();
        for it in 0..cfg.iterations {
            let (terms, diag, grad) = evaluate(&problem, &state, &shape, true)?;
            if terms.total < best.0 {
                best = (terms.total, state.clone(), terms.clone(), diag);
            }
            // Rotation escape: a turn either way, the flip, one random yaw.
            if cfg.escape_every > 0 && it % cfg.escape_every == cfg.escape_every - 1 {
                let random = (rng.next_unit() * 2.0 - 1.0) * std::f64::consts::PI;
                let mut jump: Option<(f64, f64)> = None;
                for yaw in [
                    state.yaw_rad + step_rad,
                    state.yaw_rad - step_rad,
                    state.yaw_rad + std::f64::consts::PI,
                    random,
                ] {
                    let candidate = MonoState {
                        yaw_rad: yaw,
                        ..state.clone()
                    };
                    let (t, _, _) = evaluate(&problem, &candidate, &shape, false)?;
                    if t.total < terms.total && jump.is_none_or(|(l, _)| t.total < l) {
                        jump = Some((t.total, yaw));
                    }
                }
                if let Some((_, yaw)) = jump {
                    state.yaw_rad = yaw;
                    escapes += 1;
                    adam.reset(0);
                    continue;
                }
            }
            let Some(g) = grad else { break };
            let step = adam.step_uniform(&pose_vector(&g), cfg.lr, cfg.beta1, cfg.beta2);
            apply_pose_step(&mut state, &step);
            if cfg.shape_every > 0 && it % cfg.shape_every == cfg.shape_every - 1 {
                let dz = code_adam.step_uniform(&g.latent, cfg.lr, cfg.beta1, cfg.beta2);
                for (z, d) in state.latent.iter_mut().zip(dz) {
                    *z += d as f32;
                }
                normalise(&mut state.latent);
                shape = self.decode(&state.latent)?;
                decodes += 1;
            }
            if !state.finite() {
                return Err(OptimError::InvalidInput(format!(
                    "the mono fit diverged: {state:?}"
                )));
            }
        }
        let (terms, diag, _) = evaluate(&problem, &state, &shape, false)?;
        if terms.total < best.0 {
            best = (terms.total, state, terms, diag);
        }
        let (_, state, terms, diagnostics) = best;
        Ok(MonoFit {
            state,
            terms,
            diagnostics,
            initial_loss,
            escapes,
            decodes,
        })
    }
}
