//! Seeded random KITTI label sets: ground truth shaped like KITTI's (classes, distances, occlusion,
//! truncation, DontCare regions, neighbour classes) and noisy scored detections of it (localisation
//! and orientation noise, misses, duplicates, class confusions, false positives). Used by tests,
//! benches and `cargo xtask gen-eval-set`, which writes such sets for comparison with the C++ devkit.

use crate::label::{Object, ObjectType};
use geom::{Box2d, Box3d, Calib, Camera, Real, Size3, alpha_from_rotation_y};
use nalgebra::Point3;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::f64::consts::PI;

/// Image size of the reference calibration, px.
pub const IMAGE_SIZE_PX: (Real, Real) = (1242.0, 375.0);

/// Parameters of a random label set.
#[derive(Clone, Debug)]
pub struct LabelSetConfig {
    /// Frames to generate.
    pub frames: usize,
    /// Mean objects per frame (DontCare included).
    pub mean_objects: Real,
    /// Probability that a ground-truth object is detected.
    pub recall: Real,
    /// Mean false positives per frame.
    pub mean_false_positives: Real,
    /// Localisation noise scale (1 = a decent LIDAR detector).
    pub noise: Real,
}

impl Default for LabelSetConfig {
    fn default() -> Self {
        Self {
            frames: 100,
            mean_objects: 8.0,
            recall: 0.85,
            mean_false_positives: 1.5,
            noise: 1.0,
        }
    }
}

/// Ground truth and detections of one frame.
#[derive(Clone, Debug)]
pub struct GeneratedFrame {
    /// Ground-truth objects.
    pub gt: Vec<Object>,
    /// Scored detections.
    pub det: Vec<Object>,
}

fn normal(rng: &mut StdRng) -> Real {
    rng.sample(rand_distr::StandardNormal)
}

fn poisson(rng: &mut StdRng, mean: Real) -> usize {
    let limit = (-mean).exp();
    let mut k = 0;
    let mut p: Real = rng.random();
    while p > limit {
        k += 1;
        p *= rng.random::<Real>();
    }
    k
}

fn pick_kind(rng: &mut StdRng) -> ObjectType {
    let r: Real = rng.random();
    let table = [
        (0.58, ObjectType::Car),
        (0.66, ObjectType::Van),
        (0.79, ObjectType::Pedestrian),
        (0.86, ObjectType::Cyclist),
        (0.88, ObjectType::PersonSitting),
        (0.91, ObjectType::Truck),
        (0.93, ObjectType::Tram),
        (0.95, ObjectType::Misc),
    ];
    table
        .into_iter()
        .find(|(p, _)| r < *p)
        .map(|(_, k)| k)
        .unwrap_or(ObjectType::DontCare)
}

fn size_of(kind: &ObjectType, rng: &mut StdRng) -> Size3 {
    let (h, w, l) = match kind {
        ObjectType::Car => (1.53, 1.63, 3.88),
        ObjectType::Van => (2.2, 1.9, 5.1),
        ObjectType::Truck => (3.2, 2.6, 10.0),
        ObjectType::Tram => (3.5, 2.6, 16.0),
        ObjectType::Pedestrian | ObjectType::PersonSitting => (1.76, 0.66, 0.84),
        ObjectType::Cyclist => (1.74, 0.6, 1.76),
        _ => (1.5, 1.0, 1.5),
    };
    let j = |rng: &mut StdRng, v: Real| (v * (1.0 + 0.08 * normal(rng))).max(0.2);
    Size3::new(j(rng, h), j(rng, w), j(rng, l))
}

/// The KITTI fields derived from a 3D box: its projected, clipped 2D box and truncation; `None` when it
/// is behind the camera or outside the image.
fn image_fields(b: &Box3d, calib: &Calib) -> Option<(Box2d, Real)> {
    let full = b.project_to_image(calib, Camera::Cam2)?;
    let (w, h) = IMAGE_SIZE_PX;
    let clipped = full.clipped(w, h);
    if clipped.area() <= 0.0 {
        return None;
    }
    Some((
        clipped,
        (1.0 - clipped.area() / full.area().max(1e-9)).clamp(0.0, 1.0),
    ))
}

fn ground_truth_object(rng: &mut StdRng, calib: &Calib) -> Option<Object> {
    let kind = pick_kind(rng);
    if kind == ObjectType::DontCare {
        let (w, h) = IMAGE_SIZE_PX;
        let (l, t) = (rng.random_range(0.0..w - 60.0), rng.random_range(120.0..h - 40.0));
        let bbox = Box2d::new(
            l,
            t,
            l + rng.random_range(10.0..120.0),
            t + rng.random_range(8.0..50.0),
        );
        let b3 = Box3d::new(
            Point3::new(-1000.0, -1000.0, -1000.0),
            Size3::new(-1.0, -1.0, -1.0),
            -10.0,
        );
        return Some(Object {
            kind,
            truncated: -1.0,
            occluded: -1,
            alpha_rad: -10.0,
            bbox,
            box3d: b3,
            score: None,
        });
    }
    let z = rng.random_range(4.0..75.0);
    let x = rng.random_range(-0.75..0.75) * z + normal(rng);
    let size = size_of(&kind, rng);
    let b3 = Box3d::new(
        Point3::new(x, 1.65 + 0.15 * normal(rng), z),
        size,
        rng.random_range(-PI..PI),
    );
    let (bbox, truncated) = image_fields(&b3, calib)?;
    let occluded = match rng.random::<Real>() {
        r if r < 0.55 => 0,
        r if r < 0.8 => 1,
        r if r < 0.95 => 2,
        _ => 3,
    };
    Some(Object {
        kind,
        truncated: (truncated * 100.0).round() / 100.0,
        occluded,
        alpha_rad: alpha_from_rotation_y(b3.rotation_y_rad, x, z),
        bbox,
        box3d: b3,
        score: None,
    })
}

fn detection_of(gt: &Object, rng: &mut StdRng, noise: Real, calib: &Calib) -> Option<Object> {
    let b = &gt.box3d;
    let z = b.bottom_center_rect.z;
    let sigma = noise * (0.04 + 0.006 * z);
    let loc = b.bottom_center_rect
        + nalgebra::Vector3::new(
            sigma * normal(rng),
            0.3 * sigma * normal(rng),
            1.5 * sigma * normal(rng),
        );
    let s = |v: Real, rng: &mut StdRng| (v * (1.0 + 0.05 * noise * normal(rng))).max(0.1);
    let size = Size3::new(
        s(b.size.height_m, rng),
        s(b.size.width_m, rng),
        s(b.size.length_m, rng),
    );
    let mut ry = b.rotation_y_rad + 0.08 * noise * normal(rng);
    if rng.random::<Real>() < 0.06 {
        ry += PI;
    }
    let ry = geom::normalize_angle(ry);
    let b3 = Box3d::new(loc, size, ry);
    let (bbox, _) = image_fields(&b3, calib)?;
    let kind = match (&gt.kind, rng.random::<Real>() < 0.05) {
        (ObjectType::Car, true) => ObjectType::Van,
        (ObjectType::Van, true) => ObjectType::Car,
        (ObjectType::Pedestrian, true) => ObjectType::Cyclist,
        (ObjectType::Cyclist, true) => ObjectType::Pedestrian,
        (ObjectType::PersonSitting, _) => ObjectType::Pedestrian,
        (k, _) => k.clone(),
    };
    // Confidence falls with distance and with the localisation error, plus noise.
    let err = (loc - b.bottom_center_rect).norm();
    let score = 1.0 / (1.0 + (-(2.5 - 0.03 * z - 2.0 * err + 0.8 * normal(rng))).exp());
    Some(Object {
        kind,
        truncated: 0.0,
        occluded: 0,
        alpha_rad: alpha_from_rotation_y(ry, loc.x, loc.z),
        bbox,
        box3d: b3,
        score: Some(score),
    })
}

fn false_positive(rng: &mut StdRng, calib: &Calib) -> Option<Object> {
    let kind = [
        ObjectType::Car,
        ObjectType::Car,
        ObjectType::Pedestrian,
        ObjectType::Cyclist,
    ][rng.random_range(0..4)]
    .clone();
    let z = rng.random_range(5.0..60.0);
    let x = rng.random_range(-0.7..0.7) * z;
    let b3 = Box3d::new(
        Point3::new(x, 1.7, z),
        size_of(&kind, rng),
        rng.random_range(-PI..PI),
    );
    let (bbox, _) = image_fields(&b3, calib)?;
    Some(Object {
        kind,
        truncated: 0.0,
        occluded: 0,
        alpha_rad: alpha_from_rotation_y(b3.rotation_y_rad, x, z),
        bbox,
        box3d: b3,
        score: Some(rng.random_range(0.02..0.6)),
    })
}

/// Generates a random label set, deterministic for a given `seed` and configuration.
pub fn generate_label_set(config: &LabelSetConfig, seed: u64) -> Vec<GeneratedFrame> {
    let calib = Calib::kitti_reference();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..config.frames)
        .map(|_| {
            let n = poisson(&mut rng, config.mean_objects);
            let gt: Vec<Object> = (0..n)
                .filter_map(|_| ground_truth_object(&mut rng, &calib))
                .collect();
            let mut det = Vec::new();
            for g in gt.iter().filter(|g| g.kind != ObjectType::DontCare) {
                if rng.random::<Real>() < config.recall
                    && let Some(d) = detection_of(g, &mut rng, config.noise, &calib)
                {
                    det.push(d);
                    if rng.random::<Real>() < 0.05
                        && let Some(mut dup) = detection_of(g, &mut rng, 2.0 * config.noise, &calib)
                    {
                        dup.score = dup.score.map(|s| 0.5 * s);
                        det.push(dup);
                    }
                }
            }
            for _ in 0..poisson(&mut rng, config.mean_false_positives) {
                det.extend(false_positive(&mut rng, &calib));
            }
            // Detectors write in arbitrary order; the devkit's matching depends on file order.
            for i in (1..det.len()).rev() {
                det.swap(i, rng.random_range(0..=i));
            }
            GeneratedFrame { gt, det }
        })
        .collect()
}
