//! The depth sources on small files: values round-trip, sizes and ground truth are checked, LIDAR
//! points land on the pixels they project to with the nearest depth.
#![allow(clippy::unwrap_used, reason = "tests")]

use depth::{DepthConfig, DepthError, DepthKind, DepthMap, DepthSource, PngDepth, median_depth_m, open};
use geom::{Calib, Camera};
use kitti::velodyne::VeloPoint;
use nalgebra::Point3;

fn split_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["mono_depth_2", "depth_2", "velodyne"] {
        std::fs::create_dir_all(dir.path().join(f)).unwrap();
    }
    dir
}

#[test]
fn png_depth_round_trips_and_checks_the_size() {
    let dir = split_dir();
    let mut map = DepthMap::new(8, 4);
    map.set(2, 1, 12.5);
    map.set(7, 3, 80.0);
    kitti::image::write_depth_png(&dir.path().join("mono_depth_2/000003.png"), &map).unwrap();
    let source = open(dir.path(), &DepthConfig::default()).unwrap();
    let calib = Calib::kitti_reference();
    let read = source.depth("000003", &calib, (8, 4)).unwrap();
    assert_eq!(read.get(2, 1), Some(12.5));
    assert_eq!(read.get(7, 3), Some(80.0));
    assert_eq!(read.get(0, 0), None);
    match source.depth("000003", &calib, (9, 4)) {
        Err(DepthError::Size { path, found_w: 8, .. }) => assert!(path.ends_with("000003.png")),
        other => panic!("{other:?}"),
    }
    // A missing file is an error naming it.
    let err = PngDepth::new(dir.path().join("mono_depth_2"))
        .depth("000004", &calib, (8, 4))
        .unwrap_err();
    assert!(err.to_string().contains("000004.png"), "{err}");
}

#[test]
fn ground_truth_is_refused_unless_allowed() {
    let dir = split_dir();
    let gt = DepthConfig {
        folder: "depth_2".into(),
        ..DepthConfig::default()
    };
    assert!(matches!(
        open(dir.path(), &gt),
        Err(DepthError::GroundTruth { .. })
    ));
    let allowed = DepthConfig {
        allow_ground_truth: true,
        ..gt
    };
    assert!(open(dir.path(), &allowed).is_ok());
    let missing = DepthConfig {
        folder: "nowhere".into(),
        ..DepthConfig::default()
    };
    assert!(matches!(
        open(dir.path(), &missing),
        Err(DepthError::MissingFolder(_))
    ));
}

#[test]
fn lidar_points_project_to_their_pixels_nearest_first() {
    let dir = split_dir();
    let calib = Calib::kitti_reference();
    // Two points on one ray of camera 2 (the far one first), one behind the camera.
    let (_, cam_from_rect) = geom::Intrinsics::from_projection(&calib.image_from_rect(Camera::Cam2));
    let rect_near = Point3::new(1.0, 0.5, 10.0);
    let rect_far = Point3::from((rect_near.coords + cam_from_rect) * 2.0 - cam_from_rect);
    let velo = |p: &Point3<f64>| {
        let q = calib.rect_to_velo(p);
        VeloPoint {
            x: q.x as f32,
            y: q.y as f32,
            z: q.z as f32,
            intensity: 0.5,
        }
    };
    let behind = velo(&Point3::new(0.0, 0.0, -5.0));
    let points = vec![velo(&rect_far), velo(&rect_near), behind];
    kitti::velodyne::write_velodyne(&dir.path().join("velodyne/000000.bin"), &points).unwrap();
    let config = DepthConfig {
        source: DepthKind::Lidar,
        folder: "velodyne".into(),
        ..DepthConfig::default()
    };
    let source = open(dir.path(), &config).unwrap();
    let map = source.depth("000000", &calib, (1242, 375)).unwrap();
    let [u, v] = calib
        .project_rect_to_image(Camera::Cam2, &rect_near)
        .unwrap()
        .map(f64::round);
    let d = map.get(u as u32, v as u32).unwrap();
    // Camera-2 depth differs from rect z by P2's tiny z offset only.
    assert!((d - 10.0).abs() < 0.01, "{d}");
    let valid = map.depth_m.iter().filter(|&&d| d > 0.0).count();
    assert_eq!(valid, 1);
}

#[test]
fn the_median_ignores_pixels_without_depth() {
    let mut map = DepthMap::new(4, 1);
    map.set(0, 0, 3.0);
    map.set(1, 0, 9.0);
    map.set(2, 0, 5.0);
    let all = (0..4).map(|x| (x, 0));
    assert_eq!(median_depth_m(&map, all), Some(5.0));
    assert_eq!(median_depth_m(&map, std::iter::once((3, 0))), None);
}
