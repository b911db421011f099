//! One synthetic frame end to end: scene → sensors (camera, LIDAR) → ground truth (labels, instance
//! and depth maps, per-object shape and pose) → simulated detector and monocular depth.
//!
//! Every random choice derives from the frame seed through fixed salts, so a frame is the same
//! whatever else is generated, and the visual [`Domain`] changes only the image (the scene, LIDAR,
//! labels and simulated sensors do not depend on it).

use crate::bvh::Bvh;
use crate::camera::{CameraGeometry, ObjectCoverage, render_geometry};
use crate::car::splitmix64;
use crate::detector::{ClutterView, Detection, DetectorModel, DetectorTruth, detect};
use crate::domain::Domain;
use crate::library::ShapeLibrary;
use crate::lidar::{LidarModel, LidarScan, scan};
use crate::mono_depth::{MonoDepthModel, simulate_mono_depth};
use crate::scene::{ObjectClass, Scene, SceneConfig, ShapeRef, generate_scene};
use crate::shade::{Lighting, shade};
use geom::{Box2d, Box3d, Calib, Camera, Size3, alpha_from_rotation_y};
use image::RgbImage;
use kitti::image::{DepthMap, InstanceMap};
use kitti::{Object, ObjectType};
use nalgebra::{Matrix4, Point3, Vector3};
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// KITTI's colour image size.
pub const KITTI_IMAGE_SIZE: (u32, u32) = (1242, 375);

/// Everything that shapes a generated frame besides its seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameConfig {
    /// Visual domain of the image.
    pub domain: Domain,
    /// Image width, px.
    pub width: u32,
    /// Image height, px.
    pub height: u32,
    /// Scene generation.
    pub scene: SceneConfig,
    /// The LIDAR.
    pub lidar: LidarModel,
    /// The simulated 2D detector.
    pub detector: DetectorModel,
    /// The simulated monocular depth network.
    pub mono_depth: MonoDepthModel,
    /// Labelled objects with fewer visible pixels than this are not labelled at all (like the
    /// unlabelled specks of real KITTI).
    pub min_visible_pixels: u32,
    /// Labelled objects whose box centre is nearer than this in front of the camera (rect z) are
    /// labelled `DontCare` (a car beside the camera is only a truncated sliver), m.
    pub min_label_depth_m: f64,
}

impl Default for FrameConfig {
    fn default() -> Self {
        FrameConfig {
            domain: Domain::default(),
            width: KITTI_IMAGE_SIZE.0,
            height: KITTI_IMAGE_SIZE.1,
            scene: SceneConfig::default(),
            lidar: LidarModel::default(),
            detector: DetectorModel::default(),
            mono_depth: MonoDepthModel::default(),
            min_visible_pixels: 20,
            min_label_depth_m: 1.0,
        }
    }
}

/// KITTI occlusion level from the visible fraction `v` (visible pixels / pixels the object would cover
/// inside the image with nothing in front): 0 fully visible (v ≥ 0.9), 1 partly occluded
/// (0.5 ≤ v < 0.9), 2 largely occluded (0.1 ≤ v < 0.5), 3 unknown, barely visible (v < 0.1).
pub fn occlusion_level(visible_fraction: f64) -> i32 {
    if visible_fraction >= 0.9 {
        0
    } else if visible_fraction >= 0.5 {
        1
    } else if visible_fraction >= 0.1 {
        2
    } else {
        3
    }
}

/// Ground truth of one label line beyond what `label_2` holds: the shape and exact pose needed to
/// render NOCS targets, and the measured visibility.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectAnnotation {
    /// The label line (0-based); its instance id is `line + 1`.
    pub line: usize,
    /// The scene object index.
    pub object_index: usize,
    /// The KITTI type written (`DontCare` for objects too far or too cut off to label).
    pub kind: String,
    /// What the object is.
    pub class: ObjectClass,
    /// Where its shape came from.
    pub shape: ShapeRef,
    /// Model frame → rect camera frame, row-major 4×4 (rigid; meshes are metric).
    pub rect_from_model: [[f64; 4]; 4],
    /// Model frame → Velodyne frame, row-major 4×4.
    pub velo_from_model: [[f64; 4]; 4],
    /// Model-frame bounding-box extents of the mesh (length z, width x, height y), m.
    pub model_dims_lwh_m: [f64; 3],
    /// Base colour (linear RGB).
    pub colour_rgb: [f32; 3],
    /// Visible pixels / in-image silhouette pixels.
    pub visible_fraction: f64,
    /// Share of the silhouette outside the image.
    pub truncation: f64,
    /// Visible pixels in `image_2`.
    pub visible_pixels: u32,
    /// LIDAR returns on the object.
    pub lidar_points: usize,
    /// Horizontal distance from the Velodyne, m.
    pub distance_m: f64,
}

/// A generated frame in memory.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The world.
    pub scene: Scene,
    /// Calibration (that of a real KITTI frame).
    pub calib: Calib,
    /// The lighting the image was shaded with.
    pub lighting: Lighting,
    /// `image_2`.
    pub image: RgbImage,
    /// The camera's geometry buffers (depth, object ids, normals).
    pub geometry: CameraGeometry,
    /// Per scene object: visible and silhouette pixel counts.
    pub coverage: Vec<ObjectCoverage>,
    /// The Velodyne sweep, with the object each point hit.
    pub scan: LidarScan,
    /// `label_2` lines (labelled objects first, `DontCare` last).
    pub labels: Vec<Object>,
    /// One per label line.
    pub annotations: Vec<ObjectAnnotation>,
    /// `instance_2`: pixel = label line + 1.
    pub instance: InstanceMap,
    /// `depth_2`: dense rect-frame depth (0 = sky).
    pub depth: DepthMap,
    /// The simulated detector's output.
    pub detections: Vec<Detection>,
    /// The simulated monocular depth network's output.
    pub mono_depth: DepthMap,
}

fn rows(m: &Matrix4<f64>) -> [[f64; 4]; 4] {
    std::array::from_fn(|r| std::array::from_fn(|c| m[(r, c)]))
}

/// Salts that separate the random streams of a frame.
mod salt {
    pub const LIDAR: u64 = 0x11DA;
    pub const LIGHT: u64 = 0x116E;
    pub const SHADE: u64 = 0x5AADE;
    pub const DETECT: u64 = 0xDE7EC7;
    pub const DEPTH: u64 = 0xDE9;
}

/// The seed of frame `index` of a dataset generated with `seed`.
pub fn frame_seed(seed: u64, index: u64) -> u64 {
    splitmix64(seed ^ splitmix64(index.wrapping_add(0xF4A3E)))
}

/// Generates one frame from its seed.
pub fn generate_frame(library: &ShapeLibrary, config: &FrameConfig, seed: u64) -> Frame {
    let sub = |s: u64| splitmix64(seed ^ s);
    let calib = Calib::kitti_reference();
    let camera = Camera::Cam2;
    let scene = {
        let _span = tracing::debug_span!("scene").entered();
        generate_scene(library, &config.scene, seed)
    };
    let world = scene.world_mesh();

    let (geometry, coverage, lighting, image) = {
        let _span = tracing::debug_span!("camera").entered();
        let (geometry, coverage) =
            render_geometry(&scene, &world, &calib, camera, config.width, config.height);
        let lighting = Lighting::sample(config.domain, &mut StdRng::seed_from_u64(sub(salt::LIGHT)));
        let image = shade(&geometry, &scene, &calib, camera, &lighting, sub(salt::SHADE));
        (geometry, coverage, lighting, image)
    };

    let scan = {
        let _span = tracing::debug_span!("lidar").entered();
        let bvh = Bvh::build(&world);
        scan(&config.lidar, &scene, &world, &bvh, sub(salt::LIDAR))
    };
    let mut points_per_object = vec![0usize; scene.objects.len()];
    for &o in &scan.object {
        if let Some(n) = points_per_object.get_mut(o as usize) {
            *n += 1;
        }
    }

    let (labels, annotations) = annotate(&scene, &calib, &coverage, &points_per_object, config);
    let mut line_of_object = vec![0u16; scene.objects.len()];
    for a in &annotations {
        line_of_object[a.object_index] = (a.line + 1).min(u16::MAX as usize) as u16;
    }
    let instance = InstanceMap {
        width: config.width,
        height: config.height,
        ids: geometry
            .object
            .iter()
            .map(|&o| line_of_object.get(o as usize).copied().unwrap_or(0))
            .collect(),
    };
    let depth = DepthMap {
        width: config.width,
        height: config.height,
        depth_m: geometry
            .depth_m
            .iter()
            .map(|&d| if d.is_finite() && d > 0.0 { d } else { 0.0 })
            .collect(),
    };

    let visible_fraction: Vec<f64> = annotations.iter().map(|a| a.visible_fraction).collect();
    let clutter: Vec<ClutterView> = scene
        .objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o.class.label_type().is_none())
        .filter_map(|(i, o)| {
            let bbox = coverage[i].visible_box?;
            let t = o.velo_from_model.translation.vector;
            Some(ClutterView {
                class: o.class,
                bbox,
                distance_m: t.x.hypot(t.y),
            })
        })
        .collect();
    let truth = DetectorTruth {
        instance: &instance,
        labels: &labels,
        visible_fraction: &visible_fraction,
        clutter: &clutter,
    };
    let detections = {
        let _span = tracing::debug_span!("detector").entered();
        detect(&config.detector, &truth, sub(salt::DETECT))
    };
    let mono_depth = {
        let _span = tracing::debug_span!("mono_depth").entered();
        simulate_mono_depth(&config.mono_depth, &depth, sub(salt::DEPTH))
    };

    Frame {
        scene,
        calib,
        lighting,
        image,
        geometry,
        coverage,
        scan,
        labels,
        annotations,
        instance,
        depth,
        detections,
        mono_depth,
    }
}

/// Label lines and annotations for every labelled-class object with enough visible pixels:
/// proper labels first (scene order), then `DontCare` lines.
fn annotate(
    scene: &Scene,
    calib: &Calib,
    coverage: &[ObjectCoverage],
    points_per_object: &[usize],
    config: &FrameConfig,
) -> (Vec<Object>, Vec<ObjectAnnotation>) {
    let rect_from_velo = calib.rect_from_velo();
    let mut proper = Vec::new();
    let mut dont_care = Vec::new();
    for (i, o) in scene.objects.iter().enumerate() {
        let Some(kind) = o.class.label_type() else {
            continue;
        };
        let cov = &coverage[i];
        let Some(bbox) = cov.visible_box else {
            continue;
        };
        if cov.visible_pixels < config.min_visible_pixels {
            continue;
        }
        let velo_from_model = o.velo_from_model.to_homogeneous();
        let rect_from_model = rect_from_velo * velo_from_model;
        let vertices_rect: Vec<Point3<f64>> = o
            .mesh
            .vertices
            .iter()
            .map(|v| rect_from_model.transform_point(&Point3::new(v.x as f64, v.y as f64, v.z as f64)))
            .collect();
        let heading = rect_from_model.transform_vector(&Vector3::z());
        let Some(box3d) = Box3d::tight_upright(&vertices_rect, &heading) else {
            tracing::warn!(
                "object {i}: no label box (empty or non-finite mesh, or a vertical heading); not labelled"
            );
            continue;
        };
        let visible_fraction = if cov.silhouette_pixels_in_image > 0 {
            (cov.visible_pixels as f64 / cov.silhouette_pixels_in_image as f64).min(1.0)
        } else {
            0.0
        };
        let truncation = if cov.silhouette_pixels_extended > 0 {
            (1.0 - cov.silhouette_pixels_in_image as f64 / cov.silhouette_pixels_extended as f64)
                .clamp(0.0, 1.0)
        } else {
            1.0
        };
        let c = box3d.bottom_center_rect;
        let is_dont_care = o.dont_care || c.z < config.min_label_depth_m;
        let label = if is_dont_care {
            dont_care_label(bbox)
        } else {
            Object {
                kind: kind.clone(),
                truncated: (truncation * 100.0).round() / 100.0,
                occluded: occlusion_level(visible_fraction),
                alpha_rad: alpha_from_rotation_y(box3d.rotation_y_rad, c.x, c.z),
                bbox,
                box3d,
                score: None,
            }
        };
        let t = o.velo_from_model.translation.vector;
        let dims = o.mesh.dims();
        let annotation = ObjectAnnotation {
            line: 0,
            object_index: i,
            kind: label.kind.as_str().to_string(),
            class: o.class,
            shape: o.shape.clone(),
            rect_from_model: rows(&rect_from_model),
            velo_from_model: rows(&velo_from_model),
            model_dims_lwh_m: [dims.length_m as f64, dims.width_m as f64, dims.height_m as f64],
            colour_rgb: o.colour_rgb,
            visible_fraction,
            truncation,
            visible_pixels: cov.visible_pixels,
            lidar_points: points_per_object[i],
            distance_m: t.x.hypot(t.y),
        };
        if is_dont_care {
            dont_care.push((label, annotation));
        } else {
            proper.push((label, annotation));
        }
    }
    proper
        .into_iter()
        .chain(dont_care)
        .enumerate()
        .map(|(line, (label, mut a))| {
            a.line = line;
            (label, a)
        })
        .unzip()
}

fn dont_care_label(bbox: Box2d) -> Object {
    Object {
        kind: ObjectType::DontCare,
        truncated: -1.0,
        occluded: -1,
        alpha_rad: -10.0,
        bbox,
        box3d: Box3d::new(
            Point3::new(-1000.0, -1000.0, -1000.0),
            Size3 {
                height_m: -1.0,
                width_m: -1.0,
                length_m: -1.0,
            },
            -10.0,
        ),
        score: None,
    }
}
