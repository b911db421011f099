//! The labelers: [`SdfLabeler`] (SDFLabel) and [`GeometryLabeler`] (the geometry-only baseline),
//! behind the [`Labeler`] trait, and what they share: the ground plane, the frustums, the label of
//! a fitted shape.

use crate::config::{AutolabelConfig, InitMethod};
use crate::error::{PipelineError, Result};
use crate::frame::{FrameInput, StageTimer};
use css::infer::{PixelMask, Request};
use css::{CssModel, Prediction};
use deepsdf::ShapePrior;
use deepsdf::surface::{SurfaceConfig, extract_surface};
use detection::Detection;
use geom::Camera;
use geom::{Box3d, Intrinsics};
use kitti::Object;
use nalgebra::{Matrix3x4, Matrix4, Point3, Unit, Vector3};
use optim::confidence::{Evidence, confidence};
use optim::{Fit, GroundPlane, ObjectState, Observation, Optimiser, View};
use pose::frustum::{Frustum, extract_frustum};
use pose::ground::Plane;
use pose::ransac::{Solver, estimate};
use render::{CropCamera, Surfels};
use std::time::Instant;

/// One 3D label and what it was made from.
#[derive(Clone, Debug)]
pub struct LabelledObject {
    /// Index of its detection in the frame's (filtered) detections.
    pub detection_index: usize,
    /// The KITTI label, scored.
    pub label: Object,
    /// What the score was computed from.
    pub evidence: Evidence,
    /// How it was made: `sdf`, `sdf-box-init`, `geometry`, or `box-fallback` (the optimisation
    /// failed and the geometric box was kept).
    pub method: &'static str,
    /// Surface points of its shape, rect frame, m (empty for box labels).
    pub surface_rect: Vec<[f32; 3]>,
    /// Their NOCS colours.
    pub nocs: Vec<[f32; 3]>,
    /// The fitted pose and shape (SDF labels).
    pub state: Option<ObjectState>,
    /// Seconds spent on this object alone (frustum, initialisation, optimisation, box).
    pub seconds: f64,
}

/// An object that got no label, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectFailure {
    /// Index of its detection.
    pub detection_index: usize,
    /// The error.
    pub message: String,
}

/// A labeler's output for one frame.
#[derive(Clone, Debug)]
pub struct FrameLabels {
    /// The labels.
    pub objects: Vec<LabelledObject>,
    /// The detections that got none.
    pub failures: Vec<ObjectFailure>,
    /// The ground plane the labels stand on, rect frame.
    pub ground: GroundPlane,
    /// Whether it was fitted to the LIDAR points (otherwise it is a level road 1.65 m below the
    /// camera).
    pub ground_fitted: bool,
}

impl FrameLabels {
    fn on(scene: &Scene) -> Self {
        FrameLabels {
            objects: Vec::new(),
            failures: Vec::new(),
            ground: scene.ground_rect,
            ground_fitted: scene.ground_velo.is_some(),
        }
    }
}

/// Turns a frame's detections into 3D labels.
pub trait Labeler: Send + Sync {
    /// Short name for logs and reports.
    fn name(&self) -> &str;
    /// The shape prior's decoder, for labelers whose labels carry a shape (meshes are decoded
    /// with it); none by default.
    fn decoder(&self) -> Option<&deepsdf::Decoder> {
        None
    }
    /// Whether the labeler reads the LIDAR sweep (the monocular labeler does not: its frames are
    /// loaded without one).
    fn needs_lidar(&self) -> bool {
        true
    }
    /// Labels `detections` of `frame`, timing its stages in `timer`.
    fn label_frame(
        &self,
        frame: &FrameInput,
        detections: &[Detection],
        timer: &mut StageTimer,
    ) -> Result<FrameLabels>;
}

/// Camera height over a level road when no ground plane can be fitted (KITTI's), m.
const DEFAULT_CAMERA_HEIGHT_M: f64 = 1.65;

/// The frame's geometry shared by every object: points, transforms, ground.
struct Scene {
    points_velo: Vec<Point3<f64>>,
    rect_from_velo: Matrix4<f64>,
    image_from_rect: Matrix3x4<f64>,
    ground_velo: Option<Plane>,
    ground_rect: GroundPlane,
    sensor_rect: Vector3<f64>,
}

fn prepare(frame: &FrameInput, config: &AutolabelConfig, timer: &mut StageTimer) -> Scene {
    let points_velo: Vec<Point3<f64>> = frame
        .points_velo
        .iter()
        .map(|p| Point3::new(f64::from(p.x), f64::from(p.y), f64::from(p.z)))
        .collect();
    let rect_from_velo = frame.calib.rect_from_velo();
    let image_from_rect = frame.calib.image_from_rect(Camera::Cam2);
    let g = &config.ground;
    let ground_velo = timer.time("ground", || {
        let candidates: Vec<Point3<f64>> = points_velo
            .iter()
            .filter(|p| {
                p.z <= g.max_height_m
                    && p.x > 0.0
                    && p.x < g.max_range_m
                    && p.coords.iter().all(|v| v.is_finite())
            })
            .copied()
            .collect();
        let step = candidates.len().div_ceil(g.max_points.max(1)).max(1);
        let sample: Vec<Point3<f64>> = candidates.into_iter().step_by(step).collect();
        let fit = pose::ground::GroundConfig {
            seed: config.seed,
            ..g.fit.clone()
        };
        match pose::ground::fit_ground_plane(&sample, &fit) {
            Ok((plane, _)) => Some(plane),
            Err(e) => {
                tracing::warn!(frame = %frame.id, "no ground plane ({e}); assuming a level road");
                None
            }
        }
    });
    let ground_rect = match &ground_velo {
        Some(plane) => plane_to_rect(plane, &rect_from_velo),
        None => GroundPlane::level(DEFAULT_CAMERA_HEIGHT_M),
    };
    let sensor_rect = rect_from_velo.transform_point(&Point3::origin()).coords;
    Scene {
        points_velo,
        rect_from_velo,
        image_from_rect,
        ground_velo,
        ground_rect,
        sensor_rect,
    }
}

/// A plane of the Velodyne frame in the rect frame.
fn plane_to_rect(plane: &Plane, rect_from_velo: &Matrix4<f64>) -> GroundPlane {
    let n_velo = plane.normal.into_inner();
    let on_plane = Point3::from(-n_velo * plane.offset);
    let rot = rect_from_velo.fixed_view::<3, 3>(0, 0).into_owned();
    let n_rect = Unit::new_normalize(rot * n_velo);
    let p_rect = rect_from_velo.transform_point(&on_plane);
    GroundPlane {
        up_rect: n_rect,
        offset_m: -n_rect.dot(&p_rect.coords),
    }
}

fn rect_plane(ground: &GroundPlane) -> Plane {
    Plane {
        normal: ground.up_rect,
        offset: ground.offset_m,
    }
}

struct MaskRef<'a>(&'a detection::Mask);

impl PixelMask for MaskRef<'_> {
    fn contains(&self, u: i64, v: i64) -> bool {
        u >= 0
            && v >= 0
            && u <= i64::from(u32::MAX)
            && v <= i64::from(u32::MAX)
            && self.0.contains(u as u32, v as u32)
    }
}

fn frustum_of(scene: &Scene, det: &Detection, config: &AutolabelConfig) -> Result<Frustum> {
    let mask_fn = det
        .mask
        .as_ref()
        .map(|m| move |u: i64, v: i64| u >= 0 && v >= 0 && m.contains(u as u32, v as u32));
    let mask_dyn: Option<&dyn Fn(i64, i64) -> bool> =
        mask_fn.as_ref().map(|f| f as &dyn Fn(i64, i64) -> bool);
    let with_mask = extract_frustum(
        &scene.points_velo,
        &scene.rect_from_velo,
        &scene.image_from_rect,
        &det.bbox,
        mask_dyn,
        scene.ground_velo.as_ref(),
        &config.frustum,
    );
    match with_mask {
        // A mask that misses the car's points (boundary errors on a small object) falls back to
        // the box.
        Err(pose::PoseError::EmptyFrustum(_)) if mask_dyn.is_some() => Ok(extract_frustum(
            &scene.points_velo,
            &scene.rect_from_velo,
            &scene.image_from_rect,
            &det.bbox,
            None,
            scene.ground_velo.as_ref(),
            &config.frustum,
        )?),
        other => Ok(other?),
    }
}

/// The KITTI label of a 3D box for a detection (its class and 2D box).
pub(crate) fn label_of(box3d: Box3d, det: &Detection, score: f64) -> Object {
    Object {
        kind: det.kind.clone(),
        truncated: -1.0,
        occluded: -1,
        alpha_rad: box3d.alpha_rad(),
        bbox: det.bbox,
        box3d,
        score: Some(score),
    }
}

/// IoU of the box's projection (clipped to the image) with the detection box, and the share of the
/// projection outside the detection box.
pub(crate) fn box_consistency(box3d: &Box3d, det: &Detection, frame: &FrameInput) -> (f64, f64) {
    let (w, h) = frame.image_size();
    match box3d.project_to_image(&frame.calib, Camera::Cam2) {
        Some(b) => {
            let clipped = b.clipped(f64::from(w) - 1.0, f64::from(h) - 1.0);
            let area = clipped.area().max(1e-9);
            let outside = (area - clipped.intersection_area(&det.bbox)).max(0.0) / area;
            (clipped.iou(&det.bbox), outside)
        }
        None => (0.0, 1.0),
    }
}

fn lidar_evidence(points: &[Point3<f64>], box3d: &Box3d) -> (usize, usize, f64) {
    // Points inside the box grown by 20 cm, and their RMS distance to the box surface.
    let rot = box3d.rect_from_object_rotation().inverse();
    let c = box3d.center_rect();
    let half = Vector3::new(
        box3d.size.length_m / 2.0,
        box3d.size.height_m / 2.0,
        box3d.size.width_m / 2.0,
    );
    let mut inliers = 0;
    let mut sq = 0.0;
    for p in points {
        let q = rot * (p - c);
        let outside = Vector3::new(q.x.abs() - half.x, q.y.abs() - half.y, q.z.abs() - half.z);
        if outside.max() <= 0.2 {
            inliers += 1;
            // Distance to the nearest face (inside) or to the box (just outside).
            let d = if outside.max() <= 0.0 {
                -outside.max()
            } else {
                outside.map(|v| v.max(0.0)).norm()
            };
            sq += d * d;
        }
    }
    let rms = if inliers > 0 {
        (sq / inliers as f64).sqrt()
    } else {
        0.0
    };
    (points.len(), inliers, rms)
}

/// The geometry-only baseline: a ground-aligned minimum-area box around each frustum, scored with
/// the detection score.
pub struct GeometryLabeler {
    config: AutolabelConfig,
}

impl GeometryLabeler {
    /// A baseline labeler with `config`'s ground, frustum and box-fit settings.
    pub fn new(config: AutolabelConfig) -> Self {
        GeometryLabeler { config }
    }
}

fn box_label(
    scene: &Scene,
    frame: &FrameInput,
    det: &Detection,
    frustum: &Frustum,
    config: &AutolabelConfig,
) -> Result<(Box3d, Evidence)> {
    let box3d = pose::boxfit::fit_box(
        &frustum.points_rect,
        &rect_plane(&scene.ground_rect),
        &config.init.box_fit,
    )?;
    let (box_iou, box_protrusion) = box_consistency(&box3d, det, frame);
    let (lidar_points, lidar_inliers, lidar_rms_m) = lidar_evidence(&frustum.points_rect, &box3d);
    Ok((
        box3d,
        Evidence {
            detection_score: det.score,
            box_iou,
            box_protrusion,
            silhouette_iou: None,
            lidar_points,
            lidar_inliers,
            lidar_rms_m,
        },
    ))
}

impl Labeler for GeometryLabeler {
    fn name(&self) -> &str {
        "geometry"
    }

    fn label_frame(
        &self,
        frame: &FrameInput,
        detections: &[Detection],
        timer: &mut StageTimer,
    ) -> Result<FrameLabels> {
        let scene = prepare(frame, &self.config, timer);
        let mut out = FrameLabels::on(&scene);
        for (i, det) in detections.iter().enumerate() {
            let start = Instant::now();
            let result = timer
                .time("frustum", || frustum_of(&scene, det, &self.config))
                .and_then(|f| timer.time("box_fit", || box_label(&scene, frame, det, &f, &self.config)));
            match result {
                Ok((box3d, evidence)) => out.objects.push(LabelledObject {
                    detection_index: i,
                    label: label_of(box3d, det, det.score),
                    evidence,
                    method: "geometry",
                    surface_rect: Vec::new(),
                    nocs: Vec::new(),
                    state: None,
                    seconds: start.elapsed().as_secs_f64(),
                }),
                Err(e) => out.failures.push(ObjectFailure {
                    detection_index: i,
                    message: e.to_string(),
                }),
            }
        }
        Ok(out)
    }
}

/// The label box of a fitted shape and its surface in the rect frame.
struct ShapeBox {
    box3d: Box3d,
    surface_rect: Vec<[f32; 3]>,
    nocs: Vec<[f32; 3]>,
}

/// SDFLabel: CSS network → shape → pose initialisation → render-and-compare optimisation.
pub struct SdfLabeler {
    config: AutolabelConfig,
    prior: ShapePrior,
    css: CssModel,
    mean_latent: Vec<f32>,
    refiner: Option<refine::Refiner>,
}

/// `pose` (camera frame) of the shape `surface_latent` refined by `refiner` against the square crop
/// around `bbox` (the training crops' window) of `image`.
pub(crate) fn refine_in_crop(
    refiner: &refine::Refiner,
    image: &image::RgbImage,
    k: &Intrinsics,
    bbox: &geom::Box2d,
    surfels: &Surfels,
    pose: &render::Pose,
) -> Result<render::Pose> {
    let size = refiner.input_size();
    let window = css::data::crop_window(bbox, 0.15);
    let input = refine::CropInput {
        camera: CropCamera::new(&k.cropped(&window, size, size), size, size),
        rgb: css::data::planar_rgb(image, &window, size),
    };
    let out = refiner
        .refine(&input, surfels, pose)
        .map_err(|e| PipelineError::InvalidInput(format!("refinement: {e}")))?;
    let t = out.pose.translation_m;
    if !(t.z > 1.0 && t.iter().all(|v| v.is_finite())) {
        return Err(PipelineError::InvalidInput(format!(
            "refinement left the camera's view: {t:?}"
        )));
    }
    tracing::debug!(rounds = ?out.rounds, "pose refined");
    Ok(out.pose)
}

impl SdfLabeler {
    /// A labeler with a loaded shape prior and CSS network.
    pub fn new(config: AutolabelConfig, prior: ShapePrior, css: CssModel) -> Result<Self> {
        if css.net.config.latent_dim != prior.latent_dim() {
            return Err(PipelineError::InvalidInput(format!(
                "the CSS network predicts codes of {} values, the shape prior takes {}",
                css.net.config.latent_dim,
                prior.latent_dim()
            )));
        }
        let mean_latent = prior.mean_latent();
        Ok(SdfLabeler {
            config,
            prior,
            css,
            mean_latent,
            refiner: None,
        })
    }

    /// The labeler with the learned refinement after every fit (camera-frame yaw and translation
    /// refined against the detection's crop; load it from `config.refine.weights` when
    /// `config.refine.enabled`).
    pub fn with_refiner(mut self, refiner: refine::Refiner) -> Self {
        self.refiner = Some(refiner);
        self
    }

    /// `fit`'s state refined by the learned refinement (yaw about the ground normal read back from
    /// the refined heading).
    fn refine_fit(
        &self,
        refiner: &refine::Refiner,
        frame: &FrameInput,
        det: &Detection,
        fit: &mut Fit,
        ground: &GroundPlane,
    ) -> Result<()> {
        let (k, cam_from_rect) = Intrinsics::from_projection(&frame.calib.image_from_rect(Camera::Cam2));
        let shape = extract_surface(
            &self.prior.decoder,
            &fit.state.latent,
            &self.config.optim.surface,
            false,
        )?;
        let surfels = Surfels {
            positions: shape.points,
            normals: shape.normals,
            colours: shape.nocs,
        };
        let pose = render::Pose {
            rotation: fit.state.rotation(ground).cast(),
            translation_m: (fit.state.translation_rect_m + cam_from_rect).cast(),
            scale: fit.state.scale as f32,
        };
        let refined = refine_in_crop(refiner, &frame.image, &k, &det.bbox, &surfels, &pose)?;
        fit.state.yaw_rad = ObjectState::yaw_of(&refined.rotation.cast(), ground);
        fit.state.translation_rect_m = refined.translation_m.cast::<f64>() - cam_from_rect;
        Ok(())
    }

    /// The first pose: NOCS ↔ LIDAR RANSAC, or the geometric box.
    fn initialise(
        &self,
        scene: &Scene,
        frustum: &Frustum,
        prediction: &Prediction,
        surface: &Surfels,
        seed: u64,
    ) -> Result<(ObjectState, &'static str)> {
        let cfg = &self.config.init;
        if cfg.method == InitMethod::NocsRansac
            && let Some(state) = self.nocs_ransac(scene, frustum, prediction, surface, seed)
        {
            return Ok((state, "sdf"));
        }
        let box3d = pose::boxfit::fit_box(
            &frustum.points_rect,
            &rect_plane(&scene.ground_rect),
            &cfg.box_fit,
        )?;
        let lowest = surface
            .positions
            .iter()
            .map(|p| p[1])
            .fold(f32::INFINITY, f32::min);
        let scale = self.config.optim.scale_prior;
        let up = scene.ground_rect.up_rect.into_inner();
        // The canonical origin sits −lowest units above the ground; the visible points are the
        // near side, so start half a car width farther along the line of sight.
        let centre = box3d.bottom_center_rect.coords + up * (-f64::from(lowest) * scale);
        let away = (centre - scene.sensor_rect).normalize() * (box3d.size.width_m / 4.0);
        Ok((
            ObjectState {
                yaw_rad: box3d.rotation_y_rad,
                translation_rect_m: centre + away,
                scale,
                latent: prediction.latent.clone(),
            },
            "sdf-box-init",
        ))
    }

    fn nocs_ransac(
        &self,
        scene: &Scene,
        frustum: &Frustum,
        prediction: &Prediction,
        surface: &Surfels,
        seed: u64,
    ) -> Option<ObjectState> {
        let cfg = &self.config.init;
        let t = prediction.size;
        let w = &prediction.window;
        let mut observed = Vec::new();
        let mut observed_rect = Vec::new();
        for (px, p) in frustum.pixels.iter().zip(&frustum.points_rect) {
            let i = ((px[0] - w.left) / w.width() * t as f64 - 0.5).round();
            let j = ((px[1] - w.top) / w.height() * t as f64 - 0.5).round();
            if i < 0.0 || j < 0.0 || i >= t as f64 || j >= t as f64 {
                continue;
            }
            let k = j as usize * t + i as usize;
            if prediction.mask_prob[k] > cfg.min_mask_prob {
                observed.push(prediction.nocs[k]);
                observed_rect.push(*p);
            }
        }
        let pairs =
            pose::correspond::nocs_correspondences(&observed, &surface.colours, cfg.max_nocs_distance)
                .ok()?;
        // The yaw solver rotates about the ground normal only, so the model points are first
        // turned into the rect frame at yaw 0 (model up onto the ground normal).
        let base = scene.ground_rect.tilt().matrix() * optim::state::level_rotation(0.0);
        let src: Vec<Point3<f64>> = pairs
            .iter()
            .map(|&(_, m)| Point3::from(base * Vector3::from(surface.positions[m].map(f64::from))))
            .collect();
        let dst: Vec<Point3<f64>> = pairs.iter().map(|&(o, _)| observed_rect[o]).collect();
        let ransac = pose::ransac::RansacConfig {
            seed,
            ..cfg.ransac.clone()
        };
        let consensus = match estimate(&src, &dst, Solver::Yaw(scene.ground_rect.up_rect), &ransac) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(
                    observed = observed.len(),
                    pairs = pairs.len(),
                    "no NOCS pose: {e}"
                );
                return None;
            }
        };
        let sim = consensus.model;
        // The network's NOCS shrink towards the mean (a regression to the middle), so the
        // similarity's scale is biased low; the prior's scale is known (the code carries the
        // size), so keep the rotation and place the inliers' centroids with that scale.
        let s0 = self.config.optim.scale_prior;
        if !(sim.scale > 0.25 * s0 && sim.scale < 2.0 * s0) || consensus.inliers.is_empty() {
            tracing::debug!(
                scale = sim.scale,
                inliers = consensus.inliers.len(),
                "NOCS pose rejected: scale"
            );
            return None;
        }
        let n = consensus.inliers.len() as f64;
        let c_src = consensus
            .inliers
            .iter()
            .fold(Vector3::zeros(), |a, &i| a + src[i].coords)
            / n;
        let c_dst = consensus
            .inliers
            .iter()
            .fold(Vector3::zeros(), |a, &i| a + dst[i].coords)
            / n;
        let translation = c_dst - sim.rotation * c_src * s0;
        Some(ObjectState {
            yaw_rad: ObjectState::yaw_of(&(sim.rotation.matrix() * base), &scene.ground_rect),
            translation_rect_m: translation,
            scale: s0,
            latent: prediction.latent.clone(),
        })
    }

    fn view_of(&self, frame: &FrameInput, prediction: &Prediction) -> View {
        let (k, cam_from_rect) = Intrinsics::from_projection(&frame.calib.image_from_rect(Camera::Cam2));
        let t = prediction.size;
        let crop = k.cropped(&prediction.window, t, t);
        View {
            camera: CropCamera::new(&crop, t, t),
            cam_from_rect_m: cam_from_rect,
            nocs: prediction.nocs.clone(),
            mask_prob: prediction.mask_prob.clone(),
        }
    }

    /// The label box of a fitted shape: the tight upright box of its surface (decoded one level
    /// finer) in the rect frame.
    fn shape_box(&self, fit: &Fit, ground: &GroundPlane) -> Result<ShapeBox> {
        let fine = SurfaceConfig {
            levels: self.config.optim.surface.levels + 1,
            ..self.config.optim.surface.clone()
        };
        let surface = extract_surface(&self.prior.decoder, &fit.state.latent, &fine, false)?;
        let pts: Vec<Point3<f64>> = surface
            .points
            .iter()
            .map(|p| Point3::from(fit.state.to_rect(ground, p)))
            .collect();
        let heading = fit.state.rotation(ground) * Vector3::z();
        let box3d = Box3d::tight_upright(&pts, &heading)
            .ok_or_else(|| PipelineError::InvalidInput("the fitted shape has no extent".into()))?;
        let rect: Vec<[f32; 3]> = pts.iter().map(|p| [p.x as f32, p.y as f32, p.z as f32]).collect();
        Ok(ShapeBox {
            box3d,
            surface_rect: rect,
            nocs: surface.nocs,
        })
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the object's evidence, each from another stage"
    )]
    fn label_object(
        &self,
        frame: &FrameInput,
        scene: &Scene,
        det: &Detection,
        frustum: &Frustum,
        prediction: &Prediction,
        index: usize,
        timer: &mut StageTimer,
    ) -> Result<LabelledObject> {
        let start = Instant::now();
        let seed = self.config.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let optimiser = Optimiser::new(&self.prior.decoder, &self.mean_latent, &self.config.optim);
        // Decoded once, with Jacobians: the initialisation matches NOCS against it and the
        // optimisation starts from it.
        let shape = timer.time("init", || optimiser.decode(&prediction.latent, true))?;
        let (init, method) = timer.time("init", || {
            self.initialise(scene, frustum, prediction, &shape.surfels, seed)
        })?;
        let observation = Observation {
            lidar_rect: frustum.points_rect.iter().map(|p| p.coords).collect(),
            sensor_rect: scene.sensor_rect,
            ground: scene.ground_rect,
            view: Some(self.view_of(frame, prediction)),
        };
        // NOCS correspondences tell front from back (LIDAR hardly does: cars are nearly
        // symmetric), so only the given turns of the RANSAC yaw are tried; the box
        // initialisation tries evenly spaced yaws.
        let offsets: Vec<f64> = if method == "sdf" {
            self.config
                .init
                .ransac_yaw_offsets_deg
                .iter()
                .map(|d| d.to_radians())
                .collect()
        } else {
            self.config.optim.yaw_start_offsets()
        };
        let mut fit = timer.time("optim", || {
            optimiser.fit_decoded(&observation, &init, &offsets, shape)
        })?;
        if let Some(refiner) = &self.refiner {
            let ground = scene.ground_rect;
            if let Err(e) = timer.time("refine", || {
                self.refine_fit(refiner, frame, det, &mut fit, &ground)
            }) {
                tracing::warn!("refinement failed, the fit is kept: {e}");
            }
        }
        let ShapeBox {
            box3d,
            surface_rect,
            nocs,
        } = timer.time("box", || self.shape_box(&fit, &scene.ground_rect))?;
        tracing::debug!(
            method,
            points = frustum.points_rect.len(),
            init_t = ?init.translation_rect_m.as_slice(),
            init_yaw = init.yaw_rad,
            init_scale = init.scale,
            fit_t = ?fit.state.translation_rect_m.as_slice(),
            fit_yaw = fit.state.yaw_rad,
            fit_scale = fit.state.scale,
            initial_loss = fit.initial_loss,
            terms = ?fit.terms,
            iterations = fit.iterations,
            lidar_points = fit.diagnostics.lidar_points,
            lidar_inliers = fit.diagnostics.lidar_inliers,
            box_x = box3d.bottom_center_rect.x,
            box_z = box3d.bottom_center_rect.z,
            "object fitted"
        );
        let (box_iou, box_protrusion) = box_consistency(&box3d, det, frame);
        let evidence = Evidence {
            detection_score: det.score,
            box_iou,
            box_protrusion,
            silhouette_iou: fit.diagnostics.silhouette_iou,
            lidar_points: fit.diagnostics.lidar_points,
            lidar_inliers: fit.diagnostics.lidar_inliers,
            lidar_rms_m: fit.diagnostics.lidar_rms_m,
        };
        let score = confidence(&evidence, &self.config.confidence);
        tracing::debug!(
            ?evidence,
            score,
            box_x = box3d.bottom_center_rect.x,
            box_z = box3d.bottom_center_rect.z,
            length_m = box3d.size.length_m,
            "object scored"
        );
        Ok(LabelledObject {
            detection_index: index,
            label: label_of(box3d, det, score),
            evidence,
            method,
            surface_rect,
            nocs,
            state: Some(fit.state),
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

impl Labeler for SdfLabeler {
    fn name(&self) -> &str {
        "sdf"
    }

    fn decoder(&self) -> Option<&deepsdf::Decoder> {
        Some(&self.prior.decoder)
    }

    fn label_frame(
        &self,
        frame: &FrameInput,
        detections: &[Detection],
        timer: &mut StageTimer,
    ) -> Result<FrameLabels> {
        let scene = prepare(frame, &self.config, timer);
        let mut out = FrameLabels::on(&scene);
        // Frustums first: detections without LIDAR points are not worth a network pass.
        let mut frustums = Vec::new();
        for (i, det) in detections.iter().enumerate() {
            match timer.time("frustum", || frustum_of(&scene, det, &self.config)) {
                Ok(f) => frustums.push((i, f)),
                Err(e) => out.failures.push(ObjectFailure {
                    detection_index: i,
                    message: e.to_string(),
                }),
            }
        }
        if frustums.is_empty() {
            return Ok(out);
        }
        let masks: Vec<Option<MaskRef<'_>>> = frustums
            .iter()
            .map(|(i, _)| detections[*i].mask.as_ref().map(MaskRef))
            .collect();
        let requests: Vec<Request<'_>> = frustums
            .iter()
            .zip(&masks)
            .map(|((i, _), m)| Request {
                bbox: detections[*i].bbox,
                mask: m.as_ref().map(|m| m as &dyn PixelMask),
            })
            .collect();
        let (k, _) = Intrinsics::from_projection(&frame.calib.image_from_rect(Camera::Cam2));
        let predictions = timer.time("css", || {
            self.css
                .predict_with(&frame.image, &k, &requests, &self.config.css)
        })?;
        for ((i, frustum), prediction) in frustums.iter().zip(&predictions) {
            let det = &detections[*i];
            let span = tracing::debug_span!("object", frame = %frame.id, detection = i);
            let _enter = span.enter();
            match self.label_object(frame, &scene, det, frustum, prediction, *i, timer) {
                Ok(obj) => out.objects.push(obj),
                Err(e) => {
                    // Keep the geometric box (scored down) rather than lose the object.
                    let start = Instant::now();
                    match box_label(&scene, frame, det, frustum, &self.config) {
                        Ok((box3d, evidence)) => {
                            tracing::debug!("optimisation failed ({e}); keeping the geometric box");
                            let score = 0.1 * confidence(&evidence, &self.config.confidence);
                            out.objects.push(LabelledObject {
                                detection_index: *i,
                                label: label_of(box3d, det, score),
                                evidence,
                                method: "box-fallback",
                                surface_rect: Vec::new(),
                                nocs: Vec::new(),
                                state: None,
                                seconds: start.elapsed().as_secs_f64(),
                            });
                        }
                        Err(_) => out.failures.push(ObjectFailure {
                            detection_index: *i,
                            message: e.to_string(),
                        }),
                    }
                }
            }
        }
        Ok(out)
    }
}
