//! The monocular labeler end to end on the synthetic frames, from a copy of the set without LIDAR
//! (and without ground truth): labels well above chance in BEV, a missing depth map reported as
//! the object's frame failure naming the file, the true depth refused unless allowed.

use super::{FRAMES, car_ap, dataset, weights};
use deepsdf::ShapePrior;
use deepsdf::texture::MaterialAtlas;
use detection::FileDetector;
use kitti::eval::{Metric, OverlapSet};
use kitti::{KittiDataset, Split};
use pipeline::run::{RunOptions, label_path};
use pipeline::{AutolabelConfig, Method, MonoLabeler};
use std::path::Path;

fn camera_only_copy(to: &Path) {
    let (dir, _) = dataset();
    for folder in ["image_2", "calib", "detection_2", "mono_depth_2"] {
        let from = dir.path().join("training").join(folder);
        let dest = to.join("training").join(folder);
        std::fs::create_dir_all(&dest).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dest.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn the_mono_labeler_labels_cars_from_camera_and_depth_alone() {
    let (_, ids) = dataset();
    let copy = tempfile::tempdir().unwrap();
    camera_only_copy(copy.path());
    // One frame loses its depth map: that frame fails, the others are labelled.
    let broken = &ids[FRAMES - 1];
    std::fs::remove_file(copy.path().join(format!("training/mono_depth_2/{broken}.png"))).unwrap();
    let mut config =
        AutolabelConfig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/mono.toml"))
            .unwrap();
    assert_eq!(config.method, Method::Mono);
    config.mono.iterations = 30;
    let data = KittiDataset::open(copy.path()).unwrap();
    let split_dir = data.split_dir(Split::Training);
    let refused = depth::DepthConfig {
        folder: "depth_2".into(),
        ..config.depth.clone()
    };
    assert!(matches!(
        depth::open(&split_dir, &refused),
        Err(depth::DepthError::GroundTruth { .. })
    ));
    let prior = ShapePrior::load(&weights("deepsdf.safetensors")).unwrap();
    let atlas = MaterialAtlas::load(&weights("texture.json")).unwrap();
    let source = depth::open(&split_dir, &config.depth).unwrap();
    let labeler = MonoLabeler::new(config.clone(), prior, atlas, source).unwrap();
    let extent = labeler.mean_extent_m();
    assert!(
        extent[2] > 3.0 && extent[2] < 5.0 && extent[0] > 1.3 && extent[0] < 2.1,
        "{extent:?}"
    );
    let out = tempfile::tempdir().unwrap();
    let detector = FileDetector::new(copy.path().join("training/detection_2"));
    let summary = pipeline::run(
        &data,
        Split::Training,
        ids,
        &detector,
        &labeler,
        &config,
        &RunOptions {
            out: out.path().to_path_buf(),
            overwrite: false,
            shard: None,
        },
        &|| {},
        &|_| Ok(()),
    )
    .unwrap();
    assert_eq!(summary.frames_labelled, FRAMES - 1, "{summary:?}");
    assert_eq!(summary.methods.get("mono").copied().unwrap_or(0), summary.objects);
    assert!(summary.objects >= 8, "{summary:?}");
    let failure = summary.failures.iter().find(|f| &f.frame == broken).unwrap();
    assert!(failure.message.contains(&format!("{broken}.png")), "{failure:?}");
    let labelled: Vec<String> = ids.iter().filter(|id| *id != broken).cloned().collect();
    assert!(!label_path(out.path(), broken).exists());
    let bbox = car_ap(out.path(), &labelled, Metric::Bbox, OverlapSet::Strict);
    let bev_loose = car_ap(out.path(), &labelled, Metric::Bev, OverlapSet::Loose);
    eprintln!("mono: Car AP R40 moderate 2D {bbox:.1}, BEV @0.5 {bev_loose:.1}");
    assert!(bbox > 15.0, "2D AP {bbox:.1}");
    assert!(
        bev_loose >= 0.25 * bbox,
        "BEV AP @0.5 {bev_loose:.1} vs 2D {bbox:.1}"
    );
}

#[test]
fn the_mono_configs_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mono = AutolabelConfig::load(&root.join("mono.toml")).unwrap();
    assert_eq!(mono.method, Method::Mono);
    assert_eq!((mono.mono.lr, mono.mono.beta1, mono.mono.beta2), (0.03, 0.5, 0.9));
    let mut count = 0;
    for e in std::fs::read_dir(root.join("ablations")).unwrap() {
        let path = e.unwrap().path();
        let config = AutolabelConfig::load(&path).unwrap();
        assert_eq!(config.method, Method::Mono, "{}", path.display());
        assert_ne!(config, mono, "{} changes nothing", path.display());
        count += 1;
    }
    assert!(count >= 4);
}
