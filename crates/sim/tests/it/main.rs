//! End-to-end checks of generated frames: LIDAR against labels, 2D boxes against instance masks,
//! occlusion levels, evaluation of the ground truth against itself, determinism and domains.

use geom::{Box3d, Calib};
use kitti::eval::{Class, FrameLabels, OverlapSet, evaluate};
use kitti::{Object, ObjectType};
use nalgebra::{Point3, Rotation3, Vector3};
use rayon::prelude::*;
use sim::frame::{Frame, FrameConfig, frame_seed, generate_frame, occlusion_level};
use sim::{Domain, ShapeLibrary};
use std::sync::OnceLock;

/// Default frames, generated once for every test of this binary. Enough of them that each KITTI
/// difficulty has more than 40 cars: the devkit's AP samples precision at one threshold per ground
/// truth, so with 40 or fewer even a perfect detector scores below 100.
fn frames() -> &'static [Frame] {
    static FRAMES: OnceLock<Vec<Frame>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let lib = ShapeLibrary::procedural(2020, 200);
        let config = FrameConfig::default();
        (0..36u64)
            .into_par_iter()
            .map(|i| generate_frame(&lib, &config, frame_seed(1, i)))
            .collect()
    })
}

/// Point `p_rect` in the box's own frame: x along the heading, y down (0 at the bottom), z lateral.
fn in_box_frame(b: &Box3d, p_rect: &Point3<f64>) -> Vector3<f64> {
    let r = Rotation3::from_axis_angle(&Vector3::y_axis(), b.rotation_y_rad);
    r.inverse() * (p_rect - b.bottom_center_rect)
}

/// How far `p_rect` lies outside the box (0 inside), m.
fn outside_by_m(b: &Box3d, p_rect: &Point3<f64>) -> f64 {
    let q = in_box_frame(b, p_rect);
    let s = &b.size;
    let dx = (q.x.abs() - s.length_m / 2.0).max(0.0);
    let dz = (q.z.abs() - s.width_m / 2.0).max(0.0);
    let dy = (q.y - 0.0).max(0.0).max(-s.height_m - q.y);
    (dx * dx + dy * dy + dz * dz).sqrt()
}

fn is_labelled_car(l: &Object) -> bool {
    l.kind == ObjectType::Car
}

#[test]
fn unoccluded_near_cars_have_lidar_points_inside_their_boxes() {
    let mut checked = 0;
    for (fi, f) in frames().iter().enumerate() {
        let points_rect: Vec<Point3<f64>> = f
            .scan
            .points
            .iter()
            .map(|p| {
                f.calib
                    .velo_to_rect(&Point3::new(p.x as f64, p.y as f64, p.z as f64))
            })
            .collect();
        for (line, l) in f.labels.iter().enumerate() {
            if !is_labelled_car(l) || l.occluded != 0 || l.box3d.bottom_center_rect.z > 40.0 {
                continue;
            }
            let inside = points_rect
                .iter()
                .filter(|p| outside_by_m(&l.box3d, p) == 0.0)
                .count();
            assert!(
                inside >= 20,
                "frame {fi} line {line}: only {inside} points in an unoccluded car at {:.1} m",
                l.box3d.bottom_center_rect.z
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 24,
        "only {checked} unoccluded cars closer than 40 m in the test frames"
    );
}

#[test]
fn no_car_point_lies_outside_its_box_beyond_the_range_noise() {
    // 5 σ of the range noise: a Gaussian exceeds it once in ~1.7 million points.
    let tolerance_m = 5.0 * FrameConfig::default().lidar.range_noise_sigma_m;
    let mut checked = 0;
    for (fi, f) in frames().iter().enumerate() {
        for a in &f.annotations {
            let label = &f.labels[a.line];
            if label.kind == ObjectType::DontCare {
                continue;
            }
            for (p, &o) in f.scan.points.iter().zip(&f.scan.object) {
                if o as usize != a.object_index {
                    continue;
                }
                let p_rect = f
                    .calib
                    .velo_to_rect(&Point3::new(p.x as f64, p.y as f64, p.z as f64));
                let d = outside_by_m(&label.box3d, &p_rect);
                assert!(
                    d <= tolerance_m,
                    "frame {fi} line {}: a point lies {d:.3} m outside the box",
                    a.line
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "only {checked} object points checked");
}

#[test]
fn every_2d_box_is_the_extent_of_its_visible_instance_mask() {
    for (fi, f) in frames().iter().enumerate() {
        let w = f.instance.width as usize;
        let n = f.labels.len();
        let mut ext = vec![(usize::MAX, usize::MAX, 0usize, 0usize, 0u32); n];
        for (i, &id) in f.instance.ids.iter().enumerate() {
            if id == 0 {
                continue;
            }
            let e = &mut ext[id as usize - 1];
            let (x, y) = (i % w, i / w);
            *e = (e.0.min(x), e.1.min(y), e.2.max(x), e.3.max(y), e.4 + 1);
        }
        for (line, (l, e)) in f.labels.iter().zip(&ext).enumerate() {
            assert!(e.4 > 0, "frame {fi} line {line}: no instance pixels");
            let b = &l.bbox;
            assert_eq!(
                (b.left, b.top, b.right, b.bottom),
                (e.0 as f64, e.1 as f64, e.2 as f64, e.3 as f64),
                "frame {fi} line {line}"
            );
            assert_eq!(
                f.annotations[line].visible_pixels, e.4,
                "frame {fi} line {line}: pixel count"
            );
        }
    }
}

#[test]
fn occlusion_levels_agree_with_visible_fractions() {
    let mut levels = [0usize; 4];
    for f in frames() {
        assert_eq!(f.labels.len(), f.annotations.len());
        for (line, (l, a)) in f.labels.iter().zip(&f.annotations).enumerate() {
            assert_eq!(a.line, line);
            if l.kind == ObjectType::DontCare {
                continue;
            }
            assert!((0.0..=1.0).contains(&a.visible_fraction));
            assert_eq!(l.occluded, occlusion_level(a.visible_fraction));
            // The visible fraction is what the coverage says.
            let c = &f.coverage[a.object_index];
            assert_eq!(a.visible_pixels, c.visible_pixels);
            assert!(c.visible_pixels <= c.silhouette_pixels_in_image);
            assert!(c.silhouette_pixels_in_image <= c.silhouette_pixels_extended);
            assert!((l.truncated - a.truncation).abs() <= 0.005 + 1e-9);
            levels[l.occluded as usize] += 1;
        }
    }
    // A street scene has unoccluded and occluded objects.
    assert!(levels[0] > 0 && levels[1] + levels[2] > 0, "levels {levels:?}");
}

#[test]
fn ground_truth_evaluated_against_itself_scores_100_ap() {
    let input: Vec<FrameLabels> = frames()
        .iter()
        .enumerate()
        .map(|(i, f)| FrameLabels {
            id: format!("{i:06}"),
            gt: f.labels.clone(),
            det: f
                .labels
                .iter()
                .filter(|l| l.kind != ObjectType::DontCare)
                .map(|l| Object {
                    score: Some(1.0),
                    ..l.clone()
                })
                .collect(),
        })
        .collect();
    let report = evaluate(&input).unwrap();
    let car = report.class(Class::Car).expect("cars in the test frames");
    assert!(
        car.n_gt.iter().all(|&n| n > 40),
        "too few cars for a perfect AP: {:?}",
        car.n_gt
    );
    for set in OverlapSet::ALL {
        let s = car.set(set);
        for (name, m) in s.rows() {
            for (d, (r11, r40)) in m.r11().iter().zip(m.r40()).enumerate() {
                if car.n_gt[d] == 0 {
                    continue;
                }
                assert!((r11 - 100.0).abs() < 1e-9, "{name} difficulty {d}: R11 {r11}");
                assert!(
                    (r40 - 100.0).abs() < 1e-9,
                    "{name} difficulty {d}: R40 {r40} ({} gt)",
                    car.n_gt[d]
                );
            }
        }
    }
}

#[test]
fn labels_are_kitti_like() {
    let mut cars = 0;
    for f in frames() {
        for l in &f.labels {
            if l.kind == ObjectType::DontCare {
                continue;
            }
            let c = l.box3d.bottom_center_rect;
            assert!(c.z > 0.9 && c.z < 82.0, "depth {}", c.z);
            // Boxes stand on the road (their bottom is at most a few cm off it, from the road's tilt).
            let bottom_velo = f.calib.rect_to_velo(&c);
            let above_m = bottom_velo.z - f.scene.ground.height_m(bottom_velo.x, bottom_velo.y);
            assert!(above_m.abs() < 0.15, "box bottom {above_m:.3} m off the road");
            assert!(
                l.bbox.left >= 0.0 && l.bbox.right <= 1241.0 && l.bbox.top >= 0.0 && l.bbox.bottom <= 374.0
            );
            if l.kind == ObjectType::Car {
                cars += 1;
                let s = l.box3d.size;
                assert!(
                    s.length_m > 2.5 && s.length_m < 6.0 && s.width_m > 1.2 && s.height_m > 1.0,
                    "{s:?}"
                );
            }
        }
    }
    assert!(cars >= 100, "{cars} cars in 36 frames");
}

#[test]
fn the_domain_changes_only_the_image() {
    let lib = ShapeLibrary::procedural(2020, 50);
    let seed = frame_seed(3, 0);
    let target = generate_frame(
        &lib,
        &FrameConfig {
            domain: Domain::Target,
            ..Default::default()
        },
        seed,
    );
    let clean = generate_frame(
        &lib,
        &FrameConfig {
            domain: Domain::Clean,
            ..Default::default()
        },
        seed,
    );
    assert_eq!(target.labels, clean.labels);
    assert_eq!(target.scan.points, clean.scan.points);
    assert_eq!(target.instance, clean.instance);
    assert_eq!(target.detections.len(), clean.detections.len());
    assert_ne!(target.image, clean.image);
}

#[test]
fn calibration_is_a_real_kitti_frame() {
    let f = &frames()[0];
    assert_eq!(f.calib, Calib::kitti_reference());
    assert_eq!((f.image.width(), f.image.height()), (1242, 375));
    // A 64-beam sweep of a street: on the order of 100k returns.
    assert!(
        f.scan.points.len() > 60_000 && f.scan.points.len() < 256_000,
        "{}",
        f.scan.points.len()
    );
}
