//! Pose estimation tests: 100 seeded trials per solver with σ = 2 cm noise and 50 % outliers,
//! recovered within 3 cm, 1° and 1 % scale; the adaptive iteration count; the ground plane; and
//! degenerate inputs as typed errors. The baseline box fit is in `boxfit`.
#![allow(clippy::unwrap_used, reason = "tests")]

mod boxfit;

use nalgebra::{Point3, Rotation3, Vector3};
use pose::ground::{GroundConfig, fit_ground_plane};
use pose::ransac::{RansacConfig, Solver, estimate, needed_iterations};
use pose::{PoseError, Similarity};
use rand::{RngExt, SeedableRng, rngs::StdRng};

fn gauss(rng: &mut StdRng) -> f64 {
    rng.sample(rand_distr::StandardNormal)
}

/// `n` correspondences of a car-sized model under `truth`, σ-noisy, with a share `outliers`
/// replaced by random points in the scene. The model is in canonical units (half a car's size)
/// for similarity trials and in metres (× 2.75) for rigid ones, so the car is car-sized in both.
fn trial(
    rng: &mut StdRng,
    truth: &Similarity,
    n: usize,
    outliers: f64,
) -> (Vec<Point3<f64>>, Vec<Point3<f64>>) {
    let mut src = Vec::new();
    let mut dst = Vec::new();
    let size = if truth.scale == 1.0 { 2.75 } else { 1.0 };
    for _ in 0..n {
        let p = Point3::new(
            rng.random_range(-0.35..0.35),
            rng.random_range(-0.28..0.28),
            rng.random_range(-0.8..0.8),
        ) * size;
        let q = if rng.random_bool(outliers) {
            Point3::from(
                truth.translation
                    + Vector3::new(
                        rng.random_range(-4.0..4.0),
                        rng.random_range(-2.0..2.0),
                        rng.random_range(-4.0..4.0),
                    ),
            )
        } else {
            truth.apply(&p) + Vector3::new(gauss(rng), gauss(rng), gauss(rng)) * 0.02
        };
        src.push(p);
        dst.push(q);
    }
    (src, dst)
}

fn run_trials(
    solver: &dyn Fn(&Rotation3<f64>) -> Solver,
    rotation: &dyn Fn(&mut StdRng) -> Rotation3<f64>,
    rigid: bool,
) {
    let mut rng = StdRng::seed_from_u64(42);
    let mut worst = (0.0f64, 0.0f64, 0.0f64);
    for t in 0..100 {
        let truth = Similarity {
            rotation: rotation(&mut rng),
            translation: Vector3::new(
                rng.random_range(-10.0..10.0),
                rng.random_range(0.5..2.0),
                rng.random_range(5.0..40.0),
            ),
            scale: if rigid { 1.0 } else { rng.random_range(2.4..3.1) },
        };
        let (src, dst) = trial(&mut rng, &truth, 200, 0.5);
        let config = RansacConfig {
            seed: t,
            ..RansacConfig::default()
        };
        let got = estimate(&src, &dst, solver(&truth.rotation), &config)
            .unwrap()
            .model;
        let dt = (got.translation - truth.translation).norm();
        let dr = got.rotation_angle_to(&truth.rotation).to_degrees();
        let ds = (got.scale / truth.scale - 1.0).abs();
        worst = (worst.0.max(dt), worst.1.max(dr), worst.2.max(ds));
        assert!(
            dt < 0.03 && dr < 1.0 && ds < 0.01,
            "trial {t}: {dt:.4} m, {dr:.3}°, scale {ds:.4}"
        );
    }
    eprintln!(
        "worst of 100: {:.4} m, {:.3}°, scale {:.4}",
        worst.0, worst.1, worst.2
    );
}

fn any_rotation(rng: &mut StdRng) -> Rotation3<f64> {
    Rotation3::from_euler_angles(
        rng.random_range(-3.1..3.1),
        rng.random_range(-1.5..1.5),
        rng.random_range(-3.1..3.1),
    )
}

#[test]
fn similarity_ransac_recovers_100_noisy_transforms_with_half_outliers() {
    run_trials(&|_| Solver::Similarity, &any_rotation, false);
}

#[test]
fn rigid_ransac_recovers_100_noisy_transforms_with_half_outliers() {
    run_trials(&|_| Solver::Rigid, &any_rotation, true);
}

#[test]
fn yaw_ransac_recovers_100_noisy_transforms_with_half_outliers() {
    // Cars on a road: rotations about the camera's vertical (y down in rect, so −y is up).
    run_trials(
        &|_| Solver::Yaw(-Vector3::y_axis()),
        &|rng| Rotation3::from_axis_angle(&Vector3::y_axis(), rng.random_range(-3.1..3.1)),
        false,
    );
}

#[test]
fn the_iteration_count_adapts_to_the_inlier_ratio() {
    assert!((needed_iterations(0.99, 0.5, 4) - 71.4).abs() < 0.5);
    assert_eq!(needed_iterations(0.99, 1.0, 4), 1.0);
    assert!(needed_iterations(0.99, 0.0, 4).is_infinite());
    // With no outliers RANSAC stops after a handful of hypotheses.
    let mut rng = StdRng::seed_from_u64(1);
    let truth = Similarity {
        rotation: any_rotation(&mut rng),
        translation: Vector3::new(1.0, 2.0, 20.0),
        scale: 2.75,
    };
    let (src, dst) = trial(&mut rng, &truth, 100, 0.0);
    let c = estimate(&src, &dst, Solver::Similarity, &RansacConfig::default()).unwrap();
    assert!(c.iterations < 10, "{} iterations", c.iterations);
    assert!(c.inliers.len() > 95);
}

#[test]
fn degenerate_inputs_give_typed_errors() {
    let line: Vec<Point3<f64>> = (0..20).map(|i| Point3::new(0.1 * i as f64, 0.0, 0.0)).collect();
    let r = estimate(&line, &line, Solver::Similarity, &RansacConfig::default());
    assert!(matches!(r, Err(PoseError::NoConsensus { .. })), "{r:?}");
    let three: Vec<Point3<f64>> = line[..3].to_vec();
    let r = estimate(&three, &three, Solver::Rigid, &RansacConfig::default());
    assert!(
        matches!(r, Err(PoseError::NotEnoughPoints { got: 3, need: 4 })),
        "{r:?}"
    );
    let r = estimate(&line, &line[..5], Solver::Rigid, &RansacConfig::default());
    assert!(matches!(r, Err(PoseError::InvalidInput(_))));
}

#[test]
fn the_ground_plane_is_found_under_cars_and_walls() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut pts = Vec::new();
    // A road sloping 3 % along x at z = −1.73 m (Velodyne frame), 2 cm noise …
    for _ in 0..3000 {
        let (x, y) = (rng.random_range(2.0..50.0), rng.random_range(-10.0..10.0));
        pts.push(Point3::new(x, y, -1.73 + 0.03 * x + 0.02 * gauss(&mut rng)));
    }
    // … car roofs and bonnets (horizontal, 1.5 m up), and a wall.
    for _ in 0..1500 {
        pts.push(Point3::new(
            rng.random_range(5.0..20.0),
            rng.random_range(2.0..4.0),
            -0.2,
        ));
    }
    for _ in 0..1500 {
        pts.push(Point3::new(
            rng.random_range(2.0..50.0),
            10.5,
            rng.random_range(-1.7..3.0),
        ));
    }
    let (plane, inliers) = fit_ground_plane(&pts, &GroundConfig::default()).unwrap();
    let want = Vector3::new(-0.03, 0.0, 1.0).normalize();
    assert!(plane.normal.dot(&want) > 0.9999, "{:?}", plane.normal);
    assert!((plane.distance(&Point3::new(10.0, 0.0, -1.73 + 0.3))).abs() < 0.02);
    assert!(
        inliers.len() > 2800 && inliers.len() < 3300,
        "{} inliers",
        inliers.len()
    );
    let r = fit_ground_plane(&[Point3::new(0.0, 0.0, 0.0); 2], &GroundConfig::default());
    assert!(r.is_err());
}

#[test]
fn the_frustum_keeps_the_car_and_drops_ground_background_and_outside_points() {
    use geom::{Box2d, Calib, Camera};
    use pose::frustum::{FrustumConfig, extract_frustum};
    let calib = Calib::kitti_reference();
    let (rect_from_velo, image_from_rect) = (calib.rect_from_velo(), calib.image_from_rect(Camera::Cam2));
    let velo_from_rect = calib.velo_from_rect();
    let to_velo = |p: Point3<f64>| velo_from_rect.transform_point(&p);
    let mut rng = StdRng::seed_from_u64(9);
    let mut pts = Vec::new();
    let mut car = Vec::new();
    // A car-sized box of points 12 m ahead (rect frame: y down, ground at y = 1.65 m), above the
    // 20 cm ground margin (its lowest 20 cm would go with the road).
    for _ in 0..300 {
        car.push(pts.len());
        pts.push(to_velo(Point3::new(
            rng.random_range(-0.9..0.9),
            rng.random_range(0.2..1.4),
            rng.random_range(11.0..13.0),
        )));
    }
    // A wall behind it, 25 m ahead, filling the same view.
    for _ in 0..200 {
        pts.push(to_velo(Point3::new(
            rng.random_range(-3.0..3.0),
            rng.random_range(-1.0..1.6),
            25.0,
        )));
    }
    // The road.
    for _ in 0..500 {
        pts.push(to_velo(Point3::new(
            rng.random_range(-4.0..4.0),
            1.65,
            rng.random_range(5.0..30.0),
        )));
    }
    // The car's box in the image: project its 3D extent.
    let corners: Vec<[f64; 2]> = [
        (-0.9, 0.2, 11.0),
        (0.9, 1.6, 11.0),
        (-0.9, 0.2, 13.0),
        (0.9, 1.6, 13.0),
    ] // the box reaches the ground
    .iter()
    .map(|&(x, y, z)| {
        calib
            .project_rect_to_image(Camera::Cam2, &Point3::new(x, y, z))
            .unwrap()
    })
    .collect();
    let bbox = Box2d::enclosing(corners).unwrap();
    let ground_velo = {
        let (plane, _) = fit_ground_plane(&pts, &GroundConfig::default()).unwrap();
        plane
    };
    let f = extract_frustum(
        &pts,
        &rect_from_velo,
        &image_from_rect,
        &bbox,
        None,
        Some(&ground_velo),
        &FrustumConfig::default(),
    )
    .unwrap();
    let kept: std::collections::BTreeSet<usize> = f.indices.iter().copied().collect();
    let car_kept = car.iter().filter(|i| kept.contains(i)).count();
    assert!(car_kept > 280, "{car_kept} of 300 car points kept");
    assert_eq!(kept.len(), car_kept, "only car points are kept");
    assert!(f.points_rect.iter().all(|p| p.z > 10.9 && p.z < 13.1));
    // A mask that excludes everything empties the frustum: a typed error.
    let none = |_: i64, _: i64| false;
    let r = extract_frustum(
        &pts,
        &rect_from_velo,
        &image_from_rect,
        &bbox,
        Some(&none),
        None,
        &FrustumConfig::default(),
    );
    assert!(matches!(r, Err(PoseError::EmptyFrustum(_))), "{r:?}");
}

#[test]
fn nocs_correspondences_find_the_nearest_model_point() {
    use pose::correspond::nocs_correspondences;
    let mut rng = StdRng::seed_from_u64(4);
    let model: Vec<[f32; 3]> = (0..2000)
        .map(|_| {
            [
                rng.random_range(0.0..1.0),
                rng.random_range(0.0..1.0),
                rng.random_range(0.0..1.0),
            ]
        })
        .collect();
    // Observations: model points 0, 10, 20, … with a little noise, and one far away.
    let mut observed: Vec<[f32; 3]> = (0..100).map(|k| model[k * 10].map(|v| v + 1e-4)).collect();
    observed.push([5.0, 5.0, 5.0]);
    observed.push([f32::NAN, 0.0, 0.0]);
    let pairs = nocs_correspondences(&observed, &model, 0.05).unwrap();
    assert_eq!(pairs.len(), 100);
    assert!(pairs.iter().all(|&(i, m)| m == i * 10));
}

#[test]
fn pnp_recovers_poses_from_pixels_with_outliers() {
    use pose::pnp::{PnpConfig, pnp};
    let k = geom::Intrinsics {
        fx: 721.5,
        fy: 721.5,
        cx: 609.6,
        cy: 172.9,
    };
    let mut rng = StdRng::seed_from_u64(11);
    for trial_index in 0..30 {
        let truth_r = Rotation3::from_axis_angle(&Vector3::y_axis(), rng.random_range(-3.1..3.1))
            * Rotation3::from_euler_angles(rng.random_range(-0.05..0.05), 0.0, rng.random_range(-0.05..0.05));
        let truth_t = Vector3::new(
            rng.random_range(-6.0..6.0),
            rng.random_range(1.0..1.8),
            rng.random_range(8.0..30.0),
        );
        let (mut model, mut pixels) = (Vec::new(), Vec::new());
        for _ in 0..150 {
            let x = Point3::new(
                rng.random_range(-0.9..0.9),
                rng.random_range(-1.5..0.0),
                rng.random_range(-2.2..2.2),
            );
            let c = truth_r * x.coords + truth_t;
            let mut p = k.project(&Point3::from(c)).unwrap();
            if rng.random_bool(0.3) {
                p = [
                    p[0] + rng.random_range(-80.0..80.0),
                    p[1] + rng.random_range(-40.0..40.0),
                ];
            } else {
                p = [p[0] + 0.5 * gauss(&mut rng), p[1] + 0.5 * gauss(&mut rng)];
            }
            model.push(x);
            pixels.push(p);
        }
        let mut cfg = PnpConfig::default();
        cfg.ransac.seed = trial_index;
        let got = pnp(&model, &pixels, &k, &cfg).unwrap().model;
        let dr = got.rotation_angle_to(&truth_r).to_degrees();
        let dt = (got.translation - truth_t).norm() / truth_t.norm();
        assert!(
            dr < 1.0 && dt < 0.02,
            "trial {trial_index}: {dr:.3}°, {:.2} % of the distance",
            100.0 * dt
        );
    }
    let few: Vec<Point3<f64>> = (0..5).map(|i| Point3::new(i as f64, 0.0, 1.0)).collect();
    let r = pnp(&few, &[[0.0, 0.0]; 5], &k, &PnpConfig::default());
    assert!(matches!(r, Err(PoseError::NotEnoughPoints { .. })), "{r:?}");
}

#[test]
fn pnp_with_depth_recovers_a_similarity_from_back_projected_pixels() {
    use pose::pnp::pose_from_depth;
    use pose::ransac::{RansacConfig, Solver};
    let k = geom::Intrinsics {
        fx: 721.5,
        fy: 721.5,
        cx: 609.6,
        cy: 172.9,
    };
    let mut rng = StdRng::seed_from_u64(12);
    let truth_r = Rotation3::from_axis_angle(&Vector3::y_axis(), 0.8);
    let truth_t = Vector3::new(2.0, 1.5, 15.0);
    let scale = 2.75;
    let (mut model, mut pixels, mut depths) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..200 {
        let x = Point3::new(
            rng.random_range(-0.35..0.35),
            rng.random_range(-0.3..0.3),
            rng.random_range(-0.8..0.8),
        );
        let c = truth_r * x.coords * scale + truth_t;
        let p = k.project(&Point3::from(c)).unwrap();
        // 0.2 % depth noise, every fourth depth an outlier, one pixel without depth.
        let d = if i % 4 == 0 {
            c.z + rng.random_range(-5.0..5.0)
        } else {
            c.z * (1.0 + 0.002 * gauss(&mut rng))
        };
        model.push(x);
        pixels.push(p);
        depths.push(if i == 7 { f64::NAN } else { d });
    }
    let cfg = RansacConfig {
        inlier_threshold: 0.15,
        ..RansacConfig::default()
    };
    let got = pose_from_depth(&model, &pixels, &depths, &k, Solver::Similarity, &cfg)
        .unwrap()
        .model;
    assert!(got.rotation_angle_to(&truth_r).to_degrees() < 1.0);
    assert!((got.translation - truth_t).norm() < 0.1, "{:?}", got.translation);
    assert!((got.scale / scale - 1.0).abs() < 0.02, "{}", got.scale);
    let bad = pose_from_depth(&model, &pixels, &depths[..3], &k, Solver::Similarity, &cfg);
    assert!(matches!(bad, Err(PoseError::InvalidInput(_))));
}
