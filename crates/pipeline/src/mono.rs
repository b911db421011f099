//! The monocular labeler (MonoDR, METHODS.md §2): cars labelled from one camera image, the
//! detections' instance masks and a monocular depth map — no LIDAR is read.
//!
//! Per frame: the depth map from the configured [`depth::DepthSource`] (`mono_depth_2` by default).
//! Per detection: its crop (the box grown by `mono.crop_margin`, resampled to `mono.crop_px` along
//! the longer side: image colour bilinear, mask as the covered fraction of 3 × 3 sub-samples, the
//! box itself when the detection has no mask, depth at the nearest pixel), the start of
//! [`optim::mono::MonoOptimiser::initial_state`] (centroid behind the mask's median depth), the
//! fit, optionally the learned refinement of its pose ([`refine`], `refine.enabled`: a square crop
//! around the detection box at the network's input size, the fitted shape's surface, yaw and
//! translation refined, scale kept), the tight upright box of the fitted shape on a level road,
//! and the confidence (`confidence.model = "mono_dr"` in `configs/mono.toml`: MonoDR's c3D).

use crate::config::AutolabelConfig;
use crate::error::{PipelineError, Result};
use crate::frame::{FrameInput, StageTimer};
use crate::labeler::{FrameLabels, Labeler, LabelledObject, ObjectFailure, box_consistency, label_of};
use deepsdf::ShapePrior;
use deepsdf::surface::{SurfaceConfig, extract_surface};
use deepsdf::texture::MaterialAtlas;
use depth::{DepthMap, DepthSource};
use detection::Detection;
use geom::{Box2d, Box3d, Camera, Intrinsics};
use image::RgbImage;
use nalgebra::{Point3, Vector3};
use optim::GroundPlane;
use optim::confidence::{Evidence, confidence};
use optim::mono::{MonoOptimiser, MonoState, MonoView};
use render::CropCamera;
use std::time::Instant;

/// Camera height over the level road the labels stand on, m (KITTI's).
const CAMERA_HEIGHT_M: f64 = 1.65;
/// Depth assumed for an object whose mask has no depth value, m.
const FALLBACK_DEPTH_M: f64 = 30.0;

/// MonoDR: shape prior, material atlas and depth source.
pub struct MonoLabeler {
    config: AutolabelConfig,
    prior: ShapePrior,
    atlas: MaterialAtlas,
    depth: Box<dyn DepthSource>,
    mean_latent: Vec<f32>,
    start_latent: Vec<f32>,
    mean_extent_m: [f64; 3],
    refiner: Option<refine::Refiner>,
}

impl MonoLabeler {
    /// A labeler with a loaded shape prior, atlas and depth source. The mean car's extent (the
    /// dimension term's target) is the mean code's shape at the prior's scale.
    pub fn new(
        config: AutolabelConfig,
        prior: ShapePrior,
        atlas: MaterialAtlas,
        depth: Box<dyn DepthSource>,
    ) -> Result<Self> {
        let mean_latent = prior.mean_latent();
        // The dimension target and the starting shape: the mean extent of (up to 50 of) the
        // prior's training shapes as the extraction sees them, and the training code nearest to
        // it. (The mean *code* decodes to a blob about 0.8 m shorter than the average car.)
        let scale = config.optim.scale_prior;
        let stride = prior.latents.len().div_ceil(50).max(1);
        let mut extents = Vec::new();
        for latent in prior.latents.iter().step_by(stride) {
            let surface = extract_surface(&prior.decoder, latent, &config.mono.surface, false)?;
            if surface.is_empty() {
                continue;
            }
            let e: [f64; 3] = std::array::from_fn(|axis| {
                let (lo, hi) = surface
                    .points
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), p| {
                        (lo.min(p[axis]), hi.max(p[axis]))
                    });
                f64::from(hi - lo) * scale
            });
            extents.push((latent.clone(), e));
        }
        if extents.is_empty() {
            return Err(PipelineError::InvalidInput(
                "the shape prior's training codes decode to no surface".into(),
            ));
        }
        let n = extents.len() as f64;
        let mean_extent_m: [f64; 3] =
            std::array::from_fn(|axis| extents.iter().map(|(_, e)| e[axis]).sum::<f64>() / n);
        let distance = |e: &[f64; 3]| (0..3).map(|a| (e[a] - mean_extent_m[a]).abs()).sum::<f64>();
        let start_latent = extents
            .iter()
            .min_by(|a, b| distance(&a.1).total_cmp(&distance(&b.1)))
            .map(|(z, _)| z.clone())
            .unwrap_or_else(|| mean_latent.clone());
        tracing::info!(
            "monocular mode: mean car {:.2} m wide, {:.2} m high, {:.2} m long (the dimension term's target)",
            mean_extent_m[0],
            mean_extent_m[1],
            mean_extent_m[2]
        );
        Ok(MonoLabeler {
            config,
            prior,
            atlas,
            depth,
            mean_latent,
            start_latent,
            mean_extent_m,
            refiner: None,
        })
    }

    /// The labeler with the learned refinement after every fit (load it from
    /// `config.refine.weights` when `config.refine.enabled`).
    pub fn with_refiner(mut self, refiner: refine::Refiner) -> Self {
        self.refiner = Some(refiner);
        self
    }

    /// `state`'s pose refined against the detection's square crop: yaw, offset and depth are
    /// replaced, scale and shape kept.
    fn refine_state(
        &self,
        refiner: &refine::Refiner,
        frame: &FrameInput,
        det: &Detection,
        view: &MonoView,
        state: &mut MonoState,
    ) -> Result<()> {
        let surface = extract_surface(
            &self.prior.decoder,
            &state.latent,
            &self.config.mono.surface,
            false,
        )?;
        let surfels = render::Surfels {
            positions: surface.points,
            normals: surface.normals,
            colours: surface.nocs,
        };
        let k = view.intrinsics;
        let refined = crate::labeler::refine_in_crop(
            refiner,
            &frame.image,
            &k,
            &det.bbox,
            &surfels,
            &state.pose(view),
        )?;
        let t = refined.translation_m.cast::<f64>();
        let [u, v] = k.project(&Point3::from(t)).ok_or_else(|| {
            PipelineError::InvalidInput(format!("refinement left the camera's view: {t:?}"))
        })?;
        let b = &view.bbox;
        state.yaw_rad = refine::geometry::yaw_of(&refined);
        state.offset_box = [
            (u - (b.left + b.right) / 2.0) / b.width(),
            (v - (b.top + b.bottom) / 2.0) / b.height(),
        ];
        state.log_depth = t.z.ln();
        Ok(())
    }

    /// The mean car's extent along canonical x (width), y (height), z (length), m.
    pub fn mean_extent_m(&self) -> [f64; 3] {
        self.mean_extent_m
    }

    /// Rescales `map` so that the road plane fitted to it (pixels below the horizon, outside every
    /// detection box, nearer than `depth.road_max_depth_m`) lies `depth.camera_height_m` below the
    /// camera, then, when `depth.road_correction` is on, corrects it region by region by that plane
    /// ([`depth::correct_by_road`]). Leaves the map as it is (with a warning) when no plane is found
    /// or the factor is implausible (outside 0.7–1.4).
    fn rescale(
        &self,
        frame: &FrameInput,
        detections: &[Detection],
        map: &mut DepthMap,
    ) -> Option<GroundPlane> {
        let cfg = &self.config.depth;
        let (k, cam_from_rect) = Intrinsics::from_projection(&frame.calib.image_from_rect(Camera::Cam2));
        let (w, h) = frame.image_size();
        // Pixels inside a detection box (a car is not road), marked once: the road correction asks
        // for every pixel below the horizon.
        let mut boxed = vec![false; w as usize * h as usize];
        for b in detections.iter().map(|d| &d.bbox) {
            if ![b.left, b.top, b.right, b.bottom].iter().all(|x| x.is_finite()) {
                continue;
            }
            let (u0, v0) = (b.left.ceil().max(0.0) as usize, b.top.ceil().max(0.0) as usize);
            let (u1, v1) = (
                b.right.floor().min(f64::from(w) - 1.0),
                b.bottom.floor().min(f64::from(h) - 1.0),
            );
            if u1 < 0.0 || v1 < 0.0 {
                continue;
            }
            for v in v0..=v1 as usize {
                for u in u0..=u1 as usize {
                    boxed[v * w as usize + u] = true;
                }
            }
        }
        let in_a_box = |u: u32, v: u32| boxed[v as usize * w as usize + u as usize];
        let mut points = Vec::new();
        let first_row = (k.cy.max(0.0) as u32 + 5).min(h);
        for v in (first_row..h).step_by(3) {
            for u in (0..w).step_by(3) {
                if in_a_box(u, v) {
                    continue;
                }
                let (uf, vf) = (f64::from(u), f64::from(v));
                let Some(d) = map.get(u, v) else { continue };
                let d = f64::from(d);
                if d < cfg.road_max_depth_m {
                    points.push(Point3::from(k.ray(uf, vf) * d));
                }
            }
        }
        let fit = pose::ground::GroundConfig {
            up_hint: -Vector3::y(),
            threshold_m: 0.15,
            seed: self.config.seed,
            ..self.config.ground.fit.clone()
        };
        let plane = match pose::ground::fit_ground_plane(&points, &fit) {
            Ok((plane, inliers)) if inliers.len() >= 50 => plane,
            Ok(_) | Err(_) => {
                tracing::warn!(frame = %frame.id, "no road plane in the depth map; depth left unscaled");
                return None;
            }
        };
        let factor = cfg.camera_height_m / plane.offset.abs().max(1e-6);
        if !(0.7..=1.4).contains(&factor) {
            tracing::warn!(frame = %frame.id, factor, "implausible depth scale; depth left unscaled");
            return None;
        }
        tracing::debug!(frame = %frame.id, factor, "depth rescaled to the camera height");
        map.depth_m.iter_mut().for_each(|d| *d *= factor as f32);
        let n = plane.normal.into_inner();
        // What the one scale leaves, region by region: the road's log error spread around it.
        let local = depth::correct_by_road(
            map,
            &k,
            &n,
            plane.offset * factor,
            &in_a_box,
            &cfg.road_correction,
        );
        if local.corrected_pixels > 0 {
            tracing::debug!(frame = %frame.id, road_pixels = local.road_pixels, mean_abs_log = local.mean_abs_log, "depth corrected by the road");
        }
        // The plane in the rect frame after scaling (camera frame = rect + cam_from_rect).
        let up = if n.y < 0.0 { n } else { -n };
        let offset_cam = plane.offset * factor * if n.y < 0.0 { 1.0 } else { -1.0 };
        Some(GroundPlane {
            up_rect: nalgebra::Unit::new_normalize(up),
            offset_m: offset_cam + up.dot(&cam_from_rect),
        })
    }

    fn label_object(
        &self,
        frame: &FrameInput,
        depth_map: &DepthMap,
        road: Option<&GroundPlane>,
        det: &Detection,
        index: usize,
        timer: &mut StageTimer,
    ) -> Result<LabelledObject> {
        let start = Instant::now();
        let cfg = &self.config.mono;
        let mut view = timer.time("crop", || {
            crop_view(frame, depth_map, det, cfg.crop_px, cfg.crop_margin)
        })?;
        view.road = road.copied();
        let optimiser = MonoOptimiser::new(
            &self.prior.decoder,
            &self.atlas,
            &self.mean_latent,
            self.mean_extent_m,
            cfg,
        );
        let mut init = optimiser.initial_state(&view, self.config.optim.scale_prior, 0.0, FALLBACK_DEPTH_M);
        init.latent.clone_from(&self.start_latent);
        let seed = self.config.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut fit = timer.time("optim", || optimiser.fit(&view, &init, seed))?;
        if let Some(refiner) = &self.refiner {
            let mut refined = fit.state.clone();
            match timer.time("refine", || {
                self.refine_state(refiner, frame, det, &view, &mut refined)
            }) {
                Ok(()) => fit.state = refined,
                Err(e) => tracing::warn!("refinement failed, the fit is kept: {e}"),
            }
        }
        let ground = GroundPlane::level(CAMERA_HEIGHT_M);
        let state = fit.state.to_object_state(&view);
        let (box3d, surface_rect, nocs) = timer.time("box", || -> Result<_> {
            let fine = SurfaceConfig {
                levels: cfg.surface.levels + 1,
                ..cfg.surface.clone()
            };
            let surface = extract_surface(&self.prior.decoder, &state.latent, &fine, false)?;
            let pts: Vec<Point3<f64>> = surface
                .points
                .iter()
                .map(|p| Point3::from(state.to_rect(&ground, p)))
                .collect();
            let heading = state.rotation(&ground) * Vector3::z();
            let box3d = Box3d::tight_upright(&pts, &heading)
                .ok_or_else(|| PipelineError::InvalidInput("the fitted shape has no extent".into()))?;
            let rect: Vec<[f32; 3]> = pts.iter().map(|p| [p.x as f32, p.y as f32, p.z as f32]).collect();
            Ok((box3d, rect, surface.nocs))
        })?;
        tracing::debug!(
            init_depth_m = init.log_depth.exp(),
            fit_depth_m = fit.state.log_depth.exp(),
            fit_yaw = fit.state.yaw_rad,
            fit_scale = fit.state.log_scale.exp(),
            initial_loss = fit.initial_loss,
            terms = ?fit.terms,
            escapes = fit.escapes,
            "object fitted (mono)"
        );
        // Cars stand on the road: a box whose bottom floats a little above the road plane of the
        // depth map (the extracted surface misses the thin tyre bottoms) is extended down to it.
        let mut box3d = box3d;
        if let Some(plane) = road {
            let gap_m = plane.height_m(&box3d.bottom_center_rect.coords);
            if gap_m > 0.0 && gap_m < self.config.mono.snap_to_road_m {
                box3d.bottom_center_rect.y += gap_m;
                box3d.size.height_m += gap_m;
            }
        }
        let (box_iou, box_protrusion) = box_consistency(&box3d, det, frame);
        let evidence = Evidence {
            detection_score: det.score,
            box_iou,
            box_protrusion,
            silhouette_iou: Some(fit.diagnostics.silhouette_iou),
            lidar_points: 0,
            lidar_inliers: 0,
            lidar_rms_m: 0.0,
        };
        let score = confidence(&evidence, &self.config.confidence);
        Ok(LabelledObject {
            detection_index: index,
            label: label_of(box3d, det, score),
            evidence,
            method: "mono",
            surface_rect,
            nocs,
            state: Some(state),
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// Bilinear sample of `image` at continuous pixel `(u, v)` (centres at integers), clamped, in
/// [0, 1].
fn bilinear(image: &RgbImage, u: f64, v: f64) -> [f32; 3] {
    let (w, h) = (image.width() as f64, image.height() as f64);
    let u = u.clamp(0.0, w - 1.0);
    let v = v.clamp(0.0, h - 1.0);
    let (u0, v0) = (u.floor(), v.floor());
    let (fu, fv) = ((u - u0) as f32, (v - v0) as f32);
    let (x0, y0) = (u0 as u32, v0 as u32);
    let (x1, y1) = ((x0 + 1).min(image.width() - 1), (y0 + 1).min(image.height() - 1));
    let px = |x: u32, y: u32| image.get_pixel(x, y).0.map(|c| f32::from(c) / 255.0);
    let (a, b, c, d) = (px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1));
    std::array::from_fn(|ch| {
        let top = a[ch] * (1.0 - fu) + b[ch] * fu;
        let bottom = c[ch] * (1.0 - fu) + d[ch] * fu;
        top * (1.0 - fv) + bottom * fv
    })
}

/// The evidence of detection `det` resampled to its crop grid.
fn crop_view(
    frame: &FrameInput,
    depth_map: &DepthMap,
    det: &Detection,
    crop_px: usize,
    margin: f64,
) -> Result<MonoView> {
    let b = &det.bbox;
    if !(b.width() > 0.0 && b.height() > 0.0) {
        return Err(PipelineError::InvalidInput(format!(
            "frame {}: detection box {b:?} is empty",
            frame.id
        )));
    }
    let (k, cam_from_rect_m) = Intrinsics::from_projection(&frame.calib.image_from_rect(Camera::Cam2));
    // Pixel extents (inclusive centres) widened by half a pixel, then by the margin.
    let window = Box2d::new(
        b.left - 0.5 - margin * b.width(),
        b.top - 0.5 - margin * b.height(),
        b.right + 0.5 + margin * b.width(),
        b.bottom + 0.5 + margin * b.height(),
    );
    let crop_px = crop_px.max(8);
    let (w, h) = if window.width() >= window.height() {
        (
            crop_px,
            ((crop_px as f64 * window.height() / window.width()).round() as usize).max(4),
        )
    } else {
        (
            ((crop_px as f64 * window.width() / window.height()).round() as usize).max(4),
            crop_px,
        )
    };
    let camera = CropCamera::new(&k.cropped(&window, w, h), w, h);
    let (sx, sy) = (window.width() / w as f64, window.height() / h as f64);
    let (img_w, img_h) = frame.image_size();
    let inside = |u: f64, v: f64| -> bool {
        let (x, y) = (u.round(), v.round());
        if x < 0.0 || y < 0.0 || x >= f64::from(img_w) || y >= f64::from(img_h) {
            return false;
        }
        match &det.mask {
            Some(m) => m.contains(x as u32, y as u32),
            None => x >= b.left && x <= b.right && y >= b.top && y <= b.bottom,
        }
    };
    let n = w * h;
    let (mut rgb, mut mask, mut depth_m) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for j in 0..h {
        for i in 0..w {
            let u = window.left + (i as f64 + 0.5) * sx;
            let v = window.top + (j as f64 + 0.5) * sy;
            rgb.push(bilinear(&frame.image, u, v));
            let mut covered = 0;
            for sj in [-1.0, 0.0, 1.0] {
                for si in [-1.0, 0.0, 1.0] {
                    covered += usize::from(inside(u + si * sx / 3.0, v + sj * sy / 3.0));
                }
            }
            mask.push(covered as f32 / 9.0);
            let (x, y) = (u.round(), v.round());
            let d = if x >= 0.0 && y >= 0.0 {
                depth_map.get(x as u32, y as u32).unwrap_or(0.0)
            } else {
                0.0
            };
            depth_m.push(d);
        }
    }
    Ok(MonoView {
        camera,
        intrinsics: k,
        cam_from_rect_m,
        image_size_px: (f64::from(img_w), f64::from(img_h)),
        bbox: *b,
        rgb,
        mask,
        depth_m,
        road: None,
    })
}

impl Labeler for MonoLabeler {
    fn name(&self) -> &str {
        "mono"
    }

    fn decoder(&self) -> Option<&deepsdf::Decoder> {
        Some(&self.prior.decoder)
    }

    fn needs_lidar(&self) -> bool {
        false
    }

    fn label_frame(
        &self,
        frame: &FrameInput,
        detections: &[Detection],
        timer: &mut StageTimer,
    ) -> Result<FrameLabels> {
        let mut out = FrameLabels {
            objects: Vec::new(),
            failures: Vec::new(),
            ground: GroundPlane::level(CAMERA_HEIGHT_M),
            ground_fitted: false,
        };
        if detections.is_empty() {
            return Ok(out);
        }
        let mut depth_map = timer.time("depth", || {
            self.depth.depth(&frame.id, &frame.calib, frame.image_size())
        })?;
        let road = if self.config.depth.camera_height_m > 0.0 {
            timer.time("depth_scale", || self.rescale(frame, detections, &mut depth_map))
        } else {
            None
        };
        for (i, det) in detections.iter().enumerate() {
            let span = tracing::debug_span!("object", frame = %frame.id, detection = i);
            let _enter = span.enter();
            match self.label_object(frame, &depth_map, road.as_ref(), det, i, timer) {
                Ok(obj) => out.objects.push(obj),
                Err(e) => out.failures.push(ObjectFailure {
                    detection_index: i,
                    message: e.to_string(),
                }),
            }
        }
        Ok(out)
    }
}
