//! Reads the real KITTI frames in `../shared/kitti-sample` when that folder exists.

use geom::Camera;
use kitti::{KittiDataset, Split};
use std::path::Path;

#[test]
fn reads_real_kitti_frames() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kitti-sample");
    if !root.is_dir() {
        println!(
            "note: {} not found; skipping the real-KITTI read test",
            root.display()
        );
        return;
    }
    let ds = KittiDataset::open(&root).unwrap();
    let ids = ds.frame_ids(Split::Training).unwrap();
    assert_eq!(ids, vec!["000000", "000001", "000002"]);
    for id in &ids {
        let labels = ds.labels(Split::Training, id).unwrap();
        assert!(!labels.is_empty());
        // Labels are written with two decimals: our writer reproduces the file byte for byte.
        let text = std::fs::read_to_string(ds.path(Split::Training, kitti::Modality::Label2, id)).unwrap();
        assert_eq!(kitti::label::format_labels(&labels), text, "{id}");

        let calib = ds.calib(Split::Training, id).unwrap();
        let calib_text =
            std::fs::read_to_string(ds.path(Split::Training, kitti::Modality::Calib, id)).unwrap();
        // (KITTI calib files end with an extra blank line.)
        assert_eq!(
            kitti::calib::format_calib(&calib).trim_end(),
            calib_text.trim_end(),
            "{id}"
        );

        let image = ds.image_2(Split::Training, id).unwrap();
        assert!(
            matches!((image.width(), image.height()), (1242, 375) | (1224, 370)),
            "{id}"
        );

        let points = ds.velodyne(Split::Training, id).unwrap();
        assert!(points.len() > 10_000, "{id}: {}", points.len());
        // A large share of the LIDAR points in front of the car land inside the image.
        let (w, h) = (image.width() as f64, image.height() as f64);
        let in_image = points
            .iter()
            .filter(|p| p.x > 2.0)
            .filter_map(|p| {
                let rect = calib.velo_to_rect(&nalgebra::Point3::new(p.x as f64, p.y as f64, p.z as f64));
                calib.project_rect_to_image(Camera::Cam2, &rect).ok()
            })
            .filter(|[u, v]| (0.0..w).contains(u) && (0.0..h).contains(v))
            .count();
        assert!(in_image > 5_000, "{id}: {in_image}");

        // Each labelled car's 3D box projects close to its annotated 2D box.
        for o in labels
            .iter()
            .filter(|o| o.kind == kitti::ObjectType::Car && o.truncated == 0.0 && o.occluded == 0)
        {
            let projected = o.box3d.project_to_image(&calib, Camera::Cam2).unwrap();
            assert!(
                projected.iou(&o.bbox) > 0.7,
                "{id}: {projected:?} vs {:?}",
                o.bbox
            );
        }
    }
    // Frame 000000 is 1224×370, not 1242×375.
    assert_eq!(
        ds.image_2(Split::Training, "000000").unwrap().dimensions(),
        (1224, 370)
    );
}
