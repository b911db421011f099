//! End-to-end tests of the autolabeler on a few synthetic frames: AP well above chance, better
//! than the geometry baseline, no ground truth read, resume, shards, and a broken frame reported
//! while the others are labelled.
#![allow(clippy::unwrap_used, reason = "tests")]

mod mono;

use css::CssModel;
use deepsdf::ShapePrior;
use detection::FileDetector;
use kitti::eval::{Class, Metric, OverlapSet, evaluate};
use kitti::{KittiDataset, Split};
use pipeline::run::{RunOptions, RunSummary, Shard, label_path};
use pipeline::{AutolabelConfig, GeometryLabeler, Labeler, Method, SdfLabeler};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const FRAMES: usize = 6;

fn weights(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/weights")
        .join(name)
}

/// A small synthetic set (target domain), generated once per test binary; ground truth moved
/// aside into `gt/` so that the autolabeler cannot read it.
fn dataset() -> &'static (tempfile::TempDir, Vec<String>) {
    static DATA: OnceLock<(tempfile::TempDir, Vec<String>)> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        sim::dataset::create_layout(root).unwrap();
        let library = sim::ShapeLibrary::procedural(2020, 1000);
        let config = sim::frame::FrameConfig::default();
        let ids: Vec<String> = (0..FRAMES).map(sim::dataset::frame_id).collect();
        for (i, id) in ids.iter().enumerate() {
            let seed = sim::frame::frame_seed(4242, i as u64);
            let frame = sim::frame::generate_frame(&library, &config, seed);
            sim::dataset::write_frame(root, id, seed, &frame).unwrap();
        }
        let training = root.join("training");
        std::fs::create_dir_all(root.join("gt")).unwrap();
        for folder in ["label_2", "instance_2", "depth_2", "objects_2"] {
            std::fs::rename(training.join(folder), root.join("gt").join(folder)).unwrap();
        }
        (dir, ids)
    })
}

fn sdf_labeler(config: &AutolabelConfig) -> SdfLabeler {
    let prior = ShapePrior::load(&weights("deepsdf.safetensors")).unwrap();
    let css = CssModel::load(&weights("css.safetensors")).unwrap();
    SdfLabeler::new(config.clone(), prior, css).unwrap()
}

fn label(
    labeler: &dyn Labeler,
    config: &AutolabelConfig,
    out: &Path,
    ids: &[String],
    shard: Option<Shard>,
) -> RunSummary {
    let (dir, _) = dataset();
    let data = KittiDataset::open(dir.path()).unwrap();
    let detector = FileDetector::new(dir.path().join("training/detection_2"));
    pipeline::run(
        &data,
        Split::Training,
        ids,
        &detector,
        labeler,
        config,
        &RunOptions {
            out: out.to_path_buf(),
            overwrite: false,
            shard,
        },
        &|| {},
        &|_| Ok(()),
    )
    .unwrap()
}

/// Car AP R40, moderate, for `metric` and `set`.
fn car_ap(out: &Path, ids: &[String], metric: Metric, set: OverlapSet) -> f64 {
    let (dir, _) = dataset();
    let frames: Vec<kitti::eval::FrameLabels> = ids
        .iter()
        .map(|id| kitti::eval::FrameLabels {
            id: id.clone(),
            gt: kitti::label::read_labels(&dir.path().join(format!("gt/label_2/{id}.txt"))).unwrap(),
            det: kitti::label::read_labels(&label_path(out, id)).unwrap(),
        })
        .collect();
    let report = evaluate(&frames).unwrap();
    report.class(Class::Car).unwrap().set(set).metric(metric).r40()[1]
}

#[test]
fn the_sdf_labeler_beats_the_baseline_without_reading_ground_truth() {
    let (_, ids) = dataset();
    let mut config = AutolabelConfig::default();
    config.output.meshes = true;
    let out = tempfile::tempdir().unwrap();
    let summary = label(&sdf_labeler(&config), &config, out.path(), ids, None);
    assert_eq!(summary.frames_labelled, FRAMES);
    assert!(summary.objects >= 10, "{summary:?}");
    // A mesh per label, in the rect frame: inside its label's box grown by 20 cm.
    let labels = kitti::label::read_labels(&label_path(out.path(), &ids[0])).unwrap();
    for (k, label) in labels.iter().enumerate() {
        let text = std::fs::read_to_string(out.path().join(format!("meshes/{}_{k:02}.obj", ids[0]))).unwrap();
        let b = &label.box3d;
        let c = b.center_rect();
        let reach = (b.size.length_m.hypot(b.size.width_m) + b.size.height_m) / 2.0 + 0.2;
        let vertices: Vec<[f64; 3]> = text
            .lines()
            .filter_map(|l| l.strip_prefix("v "))
            .map(|l| {
                let v: Vec<f64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
                [v[0], v[1], v[2]]
            })
            .collect();
        assert!(vertices.len() > 100);
        for v in vertices {
            let d = ((v[0] - c.x).powi(2) + (v[1] - c.y).powi(2) + (v[2] - c.z).powi(2)).sqrt();
            assert!(d < reach, "vertex {v:?} is {d:.2} m from its box centre");
        }
    }
    // The detector misses cars (small, occluded ones most), so AP is measured against what the
    // same labels reach in 2D (their boxes are the detections'): the 3D boxes must keep most of it.
    let bbox = car_ap(out.path(), ids, Metric::Bbox, OverlapSet::Strict);
    let bev = car_ap(out.path(), ids, Metric::Bev, OverlapSet::Strict);
    let bev_loose = car_ap(out.path(), ids, Metric::Bev, OverlapSet::Loose);
    let base_config = AutolabelConfig {
        method: Method::Geometry,
        ..config.clone()
    };
    let base_out = tempfile::tempdir().unwrap();
    label(
        &GeometryLabeler::new(base_config.clone()),
        &base_config,
        base_out.path(),
        ids,
        None,
    );
    let base_bev = car_ap(base_out.path(), ids, Metric::Bev, OverlapSet::Strict);
    eprintln!(
        "Car AP R40 moderate: 2D {bbox:.1}; BEV sdf {bev:.1} (@0.5 {bev_loose:.1}), geometry {base_bev:.1}"
    );
    assert!(bbox > 15.0, "2D AP {bbox:.1}");
    assert!(
        bev_loose >= 0.75 * bbox,
        "BEV AP @0.5 {bev_loose:.1} vs 2D {bbox:.1}"
    );
    assert!(bev >= 0.5 * bbox, "BEV AP @0.7 {bev:.1} vs 2D {bbox:.1}");
    assert!(bev > base_bev + 5.0, "sdf {bev:.1} vs geometry {base_bev:.1}");
    // Resume: a second run labels nothing.
    let again = label(&sdf_labeler(&config), &config, out.path(), ids, None);
    assert_eq!((again.frames_labelled, again.frames_skipped), (0, FRAMES));
}

#[test]
fn shards_split_the_frames_and_a_broken_frame_is_reported() {
    let (dir, ids) = dataset();
    let config = AutolabelConfig {
        method: Method::Geometry,
        ..AutolabelConfig::default()
    };
    // A copy of the set with one truncated sweep and one missing calibration.
    let broken = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    };
    for folder in ["image_2", "velodyne", "calib", "detection_2"] {
        copy(
            &dir.path().join("training").join(folder),
            &broken.path().join("training").join(folder),
        );
    }
    let bin = broken.path().join(format!("training/velodyne/{}.bin", ids[1]));
    let bytes = std::fs::read(&bin).unwrap();
    std::fs::write(&bin, &bytes[..bytes.len() - 3]).unwrap();
    std::fs::remove_file(broken.path().join(format!("training/calib/{}.txt", ids[2]))).unwrap();
    let data = KittiDataset::open(broken.path()).unwrap();
    let detector = FileDetector::new(broken.path().join("training/detection_2"));
    let labeler = GeometryLabeler::new(config.clone());
    let out = tempfile::tempdir().unwrap();
    let mut total = 0;
    for index in 0..2 {
        let s = pipeline::run(
            &data,
            Split::Training,
            ids,
            &detector,
            &labeler,
            &config,
            &RunOptions {
                out: out.path().to_path_buf(),
                overwrite: false,
                shard: Some(Shard { index, count: 2 }),
            },
            &|| {},
            &|_| Ok(()),
        )
        .unwrap();
        assert_eq!(s.frames_other_shards, FRAMES / 2);
        total += s.frames_labelled;
        let frame_failures: Vec<&str> = s
            .failures
            .iter()
            .filter(|f| f.detection.is_none())
            .map(|f| f.message.as_str())
            .collect();
        match index {
            // Frames 0, 2, 4: frame 2 has no calibration.
            0 => assert!(
                frame_failures.len() == 1 && frame_failures[0].contains(&format!("{}.txt", ids[2])),
                "{frame_failures:?}"
            ),
            // Frames 1, 3, 5: frame 1's sweep is truncated.
            _ => assert!(
                frame_failures.len() == 1 && frame_failures[0].contains(&format!("{}.bin", ids[1])),
                "{frame_failures:?}"
            ),
        }
    }
    assert_eq!(total, FRAMES - 2);
    assert!(!label_path(out.path(), &ids[1]).exists());
    assert!(label_path(out.path(), &ids[3]).exists());
}

#[test]
fn the_shipped_configs_parse_and_default_toml_is_the_default() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let default = AutolabelConfig::load(&root.join("default.toml")).unwrap();
    assert_eq!(default, AutolabelConfig::default());
    let lidar = AutolabelConfig::load(&root.join("lidar.toml")).unwrap();
    assert_eq!(lidar.method, Method::Sdf);
    let err = AutolabelConfig::parse("[optim]\niterations = 3\n[oops]\n", Path::new("x.toml")).unwrap_err();
    assert!(err.to_string().contains("x.toml"), "{err}");
}

#[test]
fn shard_specs_parse() {
    assert_eq!("1/4".parse::<Shard>().unwrap(), Shard { index: 1, count: 4 });
    assert!("4/4".parse::<Shard>().is_err());
    assert!("0/0".parse::<Shard>().is_err());
    assert!("x".parse::<Shard>().is_err());
}
