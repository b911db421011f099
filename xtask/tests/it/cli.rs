//! The `cargo xtask` commands as a user runs them.

use std::path::Path;
use std::process::Command;

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

#[test]
fn eval_on_the_bundled_example_writes_table_json_and_plots() {
    let out = tempfile::tempdir().unwrap();
    let json_path = out.path().join("ap.json");
    let plots = out.path().join("plots");
    let output = xtask()
        .args(["eval", "--json"])
        .arg(&json_path)
        .arg("--plots")
        .arg(&plots)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("Car") && table.contains("R40"), "{table}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    for class in ["Car", "Pedestrian", "Cyclist"] {
        for set in ["strict", "loose"] {
            for metric in ["bbox", "bev", "3d", "aos"] {
                for kind in ["R11", "R40"] {
                    let v = json[class][set][metric][kind]
                        .as_array()
                        .unwrap_or_else(|| panic!("{class}/{set}/{metric}/{kind}"));
                    assert_eq!(v.len(), 3);
                    assert!(v.iter().all(|x| (0.0..=100.0).contains(&x.as_f64().unwrap())));
                }
            }
        }
    }
    // The example's detector is decent: Car 2D AP is high, 3D AP at 0.7 clearly lower.
    let bbox = json["Car"]["strict"]["bbox"]["R40"][1].as_f64().unwrap();
    let ap3d = json["Car"]["strict"]["3d"]["R40"][1].as_f64().unwrap();
    assert!(bbox > 50.0 && ap3d < bbox, "{bbox} {ap3d}");

    let pngs = std::fs::read_dir(&plots).unwrap().count();
    assert_eq!(pngs, 3 * 2 * 4, "class × overlap set × (bbox, bev, 3d, aos)");
    let png = std::fs::read(plots.join("car_3d_strict.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn eval_with_a_split_and_a_missing_prediction_file() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/eval-example");
    let split = dir.path().join("val.txt");
    std::fs::write(&split, "000000\n000001\n000002\n").unwrap();
    let pred = dir.path().join("pred");
    std::fs::create_dir_all(&pred).unwrap();
    std::fs::copy(example.join("pred/000001.txt"), pred.join("000001.txt")).unwrap();
    let output = xtask()
        .args(["eval", "--gt"])
        .arg(example.join("gt"))
        .arg("--pred")
        .arg(&pred)
        .arg("--split")
        .arg(&split)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("over 3 frames"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("2 of 3 frames have no prediction file"));
}

#[test]
fn eval_reports_every_malformed_file_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (gt, pred) = (dir.path().join("gt"), dir.path().join("pred"));
    std::fs::create_dir_all(&gt).unwrap();
    std::fs::create_dir_all(&pred).unwrap();
    let good = "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n";
    std::fs::write(gt.join("000000.txt"), good).unwrap();
    std::fs::write(gt.join("000001.txt"), format!("{good}Car 0.00 0 1.0\n")).unwrap();
    std::fs::write(
        pred.join("000000.txt"),
        good.replace("46.70", "nan").replace('\n', " 0.9\n"),
    )
    .unwrap();
    let output = xtask()
        .args(["eval", "--gt"])
        .arg(&gt)
        .arg("--pred")
        .arg(&pred)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2 of 2 frames could not be read"), "{stderr}");
    assert!(
        stderr.contains("gt/000001.txt:2: expected 15 or 16 fields, found 4"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pred/000000.txt:1: field `z` is not finite"),
        "{stderr}"
    );
}

#[test]
fn gen_eval_set_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        let status = xtask()
            .args(["gen-eval-set", "--seed", "3", "--frames", "5", "--out"])
            .arg(dir.path().join(name))
            .status()
            .unwrap();
        assert!(status.success());
    }
    for sub in ["gt", "pred"] {
        for i in 0..5 {
            let f = format!("{sub}/{i:06}.txt");
            assert_eq!(
                std::fs::read(dir.path().join("a").join(&f)).unwrap(),
                std::fs::read(dir.path().join("b").join(&f)).unwrap()
            );
        }
    }
}

/// A tiny synthetic KITTI frame `000007` under `root`: a grey 1242×375 image, the reference
/// calibration, a car and a DontCare label, a LIDAR grid on the ground and one 2D detection.
/// Returns the car.
fn write_synthetic_frame(root: &Path) -> kitti::Object {
    let training = root.join("training");
    let image = image::RgbImage::from_pixel(1242, 375, image::Rgb([80, 80, 80]));
    kitti::image::write_rgb_png(&training.join("image_2/000007.png"), &image).unwrap();
    kitti::calib::write_calib(
        &training.join("calib/000007.txt"),
        &geom::Calib::kitti_reference(),
    )
    .unwrap();
    let labels = training.join("label_2/000007.txt");
    kitti::io::write_atomic(
        &labels,
        b"Car 0.00 0 -1.65 560.00 160.00 720.00 260.00 1.50 1.60 3.90 1.00 1.65 12.00 -1.57\n\
          DontCare -1 -1 -10 100.00 150.00 200.00 200.00 -1 -1 -1 -1000 -1000 -1000 -10\n",
    )
    .unwrap();
    let points: Vec<kitti::velodyne::VeloPoint> = (0..400)
        .map(|i| kitti::velodyne::VeloPoint {
            x: 5.0 + (i / 20) as f32 * 2.0,
            y: -10.0 + (i % 20) as f32,
            z: -1.7,
            intensity: 0.3,
        })
        .collect();
    kitti::velodyne::write_velodyne(&training.join("velodyne/000007.bin"), &points).unwrap();
    kitti::io::write_atomic(
        &training.join("detection_2/000007.txt"),
        b"Car -1 -1 -10 900.00 200.00 1000.00 260.00 -1 -1 -1 -1000 -1000 -1000 -10 0.8000\n",
    )
    .unwrap();
    kitti::label::read_labels(&labels).unwrap().remove(0)
}

#[test]
fn show_frame_draws_image_and_birds_eye_panels() {
    let dir = tempfile::tempdir().unwrap();
    let car = write_synthetic_frame(dir.path());
    let output = xtask()
        .arg("show-frame")
        .arg(dir.path())
        .arg("000007")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let png = dir.path().join("show/000007.png");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        png.display().to_string()
    );
    let shown = image::open(&png).unwrap().to_rgb8();
    // The camera image over a square bird's-eye panel as wide as the image.
    assert_eq!(shown.dimensions(), (1242, 375 + 1242));

    // The middle of the car's rear bottom edge (corners 2 and 3 face the camera) is car green.
    let calib = geom::Calib::kitti_reference();
    let c = car.box3d.corners_rect();
    let mid = (c[2].coords + c[3].coords) / 2.0;
    let [u, v] = calib
        .project_rect_to_image(geom::Camera::Cam2, &mid.into())
        .unwrap();
    assert_eq!(shown.get_pixel(u as u32, v as u32).0, [0, 230, 0]);
    // The DontCare region's top edge is grey.
    assert_eq!(shown.get_pixel(150, 150).0, [150, 150, 150]);
    // LIDAR points on the ground below the car land in the image, coloured by depth (the image is grey).
    let coloured = (290..375)
        .flat_map(|y| (0..1242).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = shown.get_pixel(x, y).0;
            p[0] != p[1] || p[1] != p[2]
        })
        .count();
    assert!(coloured > 100, "{coloured}");
}

#[test]
fn show_frame_names_a_missing_calibration_file() {
    let dir = tempfile::tempdir().unwrap();
    write_synthetic_frame(dir.path());
    std::fs::remove_file(dir.path().join("training/calib/000007.txt")).unwrap();
    let out = dir.path().join("frame.png");
    let output = xtask()
        .arg("show-frame")
        .arg(dir.path())
        .args(["000007", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("training/calib/000007.txt"), "{stderr}");
    assert!(!out.exists());
}

/// Every file under `root` (relative path → bytes), `show/` excluded.
fn tree(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel.starts_with("show") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// `gen-data` with the test settings (3 frames, seed 5, 20 library shapes) into `out`.
fn gen_data_command(out: &Path) -> Command {
    let mut cmd = xtask();
    cmd.args([
        "gen-data",
        "--frames",
        "3",
        "--seed",
        "5",
        "--library-size",
        "20",
        "--out",
    ])
    .arg(out);
    cmd
}

fn gen_data(out: &Path, extra: &[&str]) -> std::process::Output {
    gen_data_command(out).args(extra).output().unwrap()
}

#[test]
fn gen_data_is_byte_identical_whatever_the_threads_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let out = gen_data(&a, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = gen_data_command(&b)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files = tree(&a);
    for folder in sim::dataset::FOLDERS {
        assert!(
            files
                .keys()
                .any(|k| k.starts_with(&format!("training/{folder}/000002"))),
            "no {folder}"
        );
    }
    assert!(files.contains_key("ImageSets/train.txt") && files.contains_key("dataset.json"));
    assert!(files == tree(&b), "two runs with the same arguments differ");

    // An interrupted run (frame 1 incomplete) is completed to the same bytes.
    std::fs::remove_file(b.join("training/objects_2/000001.json")).unwrap();
    std::fs::remove_file(b.join("training/image_2/000001.png")).unwrap();
    let out = gen_data(&b, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming"));
    assert!(files == tree(&b), "the resumed run differs");

    // Another domain changes the images, not the labels.
    let c = dir.path().join("c");
    let out = gen_data(&c, &["--domain", "clean"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let clean = tree(&c);
    assert_eq!(
        clean["training/label_2/000000.txt"],
        files["training/label_2/000000.txt"]
    );
    assert_ne!(
        clean["training/image_2/000000.png"],
        files["training/image_2/000000.png"]
    );

    // The frame can be looked at.
    let out = xtask().arg("show-frame").arg(&a).arg("000000").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(a.join("show/000000.png").is_file());
}

#[test]
fn gen_data_refuses_to_mix_settings_unless_told_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = gen_data(dir.path(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = gen_data(dir.path(), &["--domain", "clean"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--overwrite"));
    let out = gen_data(dir.path(), &["--domain", "clean", "--overwrite"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec = sim::dataset::read_spec(dir.path()).unwrap();
    assert_eq!(spec.config.domain, sim::Domain::Clean);
}

#[test]
fn gen_data_uses_a_folder_of_obj_cars() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let lib = sim::ShapeLibrary::procedural(3, 2);
    for i in 0..2 {
        sim::obj::write_obj(&lib.shape(i).unwrap(), &models.join(format!("my_car_{i}.obj"))).unwrap();
    }
    let out = xtask()
        .args(["gen-data", "--frames", "2", "--out"])
        .arg(dir.path().join("data"))
        .arg("--car-models")
        .arg(&models)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut names = std::collections::BTreeSet::new();
    for id in ["000000", "000001"] {
        let ann = sim::dataset::read_annotations(&dir.path().join("data"), id).unwrap();
        for o in ann.objects {
            if let sim::scene::ShapeRef::Library { name, .. } = o.shape {
                names.insert(name);
            }
        }
    }
    assert!(
        !names.is_empty() && names.iter().all(|n| n.starts_with("my_car_")),
        "{names:?}"
    );
}

#[test]
fn train_sdf_then_eval_sdf_on_a_tiny_prior() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("tiny.safetensors");
    let out = xtask()
        .args([
            "train-sdf",
            "--shapes",
            "3",
            // 20 steps left the 4 × 64 decoder decoding to nothing (no zero crossing yet).
            "--steps",
            "60",
            "--latent-dim",
            "3",
            "--out",
        ])
        .arg(&weights)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(weights.is_file() && dir.path().join("tiny_loss.png").is_file());
    let prior = deepsdf::ShapePrior::load(&weights).unwrap();
    assert_eq!((prior.latents.len(), prior.latent_dim()), (3, 3));

    let json = dir.path().join("sdf.json");
    let out = xtask()
        .args([
            "eval-sdf",
            "--train-shapes",
            "2",
            "--heldout-shapes",
            "1",
            "--resolution",
            "24",
            "--weights",
        ])
        .arg(&weights)
        .arg("--json")
        .arg(&json)
        .arg("--meshes")
        .arg(dir.path().join("meshes"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let decoded = sim::obj::read_obj(&dir.path().join("meshes/heldout_0003.obj")).unwrap();
    assert!(decoded.is_watertight());
    let written: Vec<String> = std::fs::read_dir(dir.path().join("meshes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        written
            .iter()
            .any(|n| n.starts_with("train_") && n.ends_with(".ply")),
        "{written:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["heldout_shapes"], 1);
    for key in ["train_chamfer_m", "heldout_chamfer_m"] {
        let d = v[key].as_f64().unwrap();
        assert!(d.is_finite() && d > 0.0, "{key} = {d}");
    }
    assert!(dir.path().join("tiny_shapes.png").is_file());
}

#[test]
fn train_css_then_eval_css_on_a_tiny_network() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("css.toml");
    std::fs::write(
        &config,
        "[model]\ninput_size = 32\nwidths = [8, 16, 32]\ngroups = 4\n[data]\nframes = 3\n[train]\nsteps = 4\nbatch_size = 4\ncheckpoint_every = 2\n",
    )
    .unwrap();
    let weights = dir.path().join("tiny.safetensors");
    let out = xtask()
        .args(["train-css", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&weights)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(weights.is_file() && dir.path().join("tiny_loss.png").is_file());
    assert!(dir.path().join("tiny.ckpt.safetensors").is_file());
    let model = css::CssModel::load(&weights).unwrap();
    assert_eq!(model.input_size(), 32);

    let json = dir.path().join("css.json");
    let out = xtask()
        .args([
            "eval-css",
            "--frames",
            "2",
            "--chamfer-crops",
            "2",
            "--domain",
            "target",
            "--weights",
        ])
        .arg(&weights)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["mask_iou", "nocs_err", "latent_chamfer_m"] {
        let x = v[key].as_f64().unwrap_or(f64::NAN);
        assert!(x.is_finite() && x >= 0.0, "{key} = {x}");
    }
    assert!(v["mask_iou"].as_f64().unwrap() <= 1.0);
    assert!(v["crops"].as_u64().unwrap() > 0);
    assert_eq!(v["domain"], "target");
    // The training frames' seed is refused for evaluation.
    let out = xtask()
        .args(["eval-css", "--seed", "1", "--weights"])
        .arg(&weights)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// A tiny KITTI layout under `root` with `label_2` and `instance_2` for frames 000000–000002 of a
/// 40 × 30 image. Frame 000000: Car (instance 1, with one stray pixel right of its box), DontCare
/// (2), Pedestrian (3), Truck (4), Cyclist (5). Frames 000001 and 000002: no objects.
fn write_labelled_frames(root: &Path) {
    let training = root.join("training");
    let lines = [
        "Car 0.00 0 -1.65 2.00 3.00 12.00 10.00 1.50 1.60 3.90 1.00 1.65 12.00 -1.57",
        "DontCare -1 -1 -10 20.00 0.00 30.00 5.00 -1 -1 -1 -1000 -1000 -1000 -10",
        "Pedestrian 0.00 1 0.20 15.00 8.00 19.00 25.00 1.70 0.60 0.80 -2.00 1.60 15.00 0.10",
        "Truck 0.00 0 1.00 30.00 10.00 38.00 20.00 3.00 2.50 8.00 4.00 1.70 30.00 1.50",
        "Cyclist 0.50 2 -0.40 25.00 20.00 33.50 29.00 1.70 0.60 1.80 3.00 1.60 20.00 -0.30",
    ];
    kitti::io::write_atomic(
        &training.join("label_2/000000.txt"),
        format!("{}\n", lines.join("\n")).as_bytes(),
    )
    .unwrap();
    let mut map = kitti::image::InstanceMap::new(40, 30);
    let mut fill = |id: u16, x0: u32, x1: u32, y0: u32, y1: u32| {
        for y in y0..y1 {
            for x in x0..x1 {
                map.ids[(y * 40 + x) as usize] = id;
            }
        }
    };
    fill(1, 3, 12, 4, 10);
    fill(1, 14, 15, 5, 6); // outside the car's box (columns 2–12): clipped off
    fill(2, 21, 29, 1, 4);
    fill(3, 16, 19, 9, 25);
    fill(4, 31, 37, 11, 19);
    fill(5, 26, 33, 21, 29);
    kitti::image::write_instance_png(&training.join("instance_2/000000.png"), &map).unwrap();
    for id in ["000001", "000002"] {
        kitti::io::write_atomic(&training.join(format!("label_2/{id}.txt")), b"").unwrap();
        kitti::image::write_instance_png(
            &training.join(format!("instance_2/{id}.png")),
            &kitti::image::InstanceMap::new(40, 30),
        )
        .unwrap();
    }
}

#[test]
fn make_detections_from_labels_and_instance_maps() {
    use detection::Detector;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kitti");
    write_labelled_frames(&root);
    let ids = dir.path().join("val.txt");
    std::fs::write(&ids, "000000\n000001\n").unwrap();
    let out = xtask()
        .args(["make-detections", "--data"])
        .arg(&root)
        .arg("--ids")
        .arg(&ids)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = root.join("training/detection_gt_2");
    assert!(!folder.join("000002.txt").exists(), "not in the split file");

    let detector = detection::FileDetector::new(&folder);
    assert_eq!(detector.name(), "detection_gt_2");
    let dets = detector.detect("000000", (40, 30)).unwrap();
    let kinds: Vec<&str> = dets.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, ["Car", "Pedestrian", "Cyclist"]);
    assert!(dets.iter().all(|d| d.score == 1.0));
    assert_eq!(dets[0].bbox, geom::Box2d::new(2.0, 3.0, 12.0, 10.0));
    assert_eq!(dets[2].bbox, geom::Box2d::new(25.0, 20.0, 33.5, 29.0));
    let areas: Vec<usize> = dets.iter().map(|d| d.mask.as_ref().unwrap().area_px()).collect();
    // Car 9 × 6 (the stray pixel clipped), pedestrian 3 × 16, cyclist 7 × 8.
    assert_eq!(areas, [54, 48, 56]);
    let car = dets[0].mask.as_ref().unwrap();
    assert!(car.contains(3, 4) && car.contains(11, 9) && !car.contains(14, 5));
    assert!(detector.detect("000001", (40, 30)).unwrap().is_empty());

    // Every frame of label_2 without --ids; a frame without its instance map fails, naming it.
    std::fs::remove_file(root.join("training/instance_2/000002.png")).unwrap();
    let out = xtask()
        .args(["make-detections", "--data"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 of 3 frames failed") && stderr.contains("instance_2/000002.png"),
        "{stderr}"
    );

    // Without instance_2: box-only files, no mask file.
    std::fs::remove_dir_all(root.join("training/instance_2")).unwrap();
    let box_only = dir.path().join("boxes");
    let out = xtask()
        .args(["make-detections", "--data"])
        .arg(&root)
        .arg("--out")
        .arg(&box_only)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dets = detection::FileDetector::new(&box_only)
        .detect("000000", (40, 30))
        .unwrap();
    assert_eq!(dets.len(), 3);
    assert!(dets.iter().all(|d| d.mask.is_none()));
    assert!(!box_only.join("000000.png").exists() && box_only.join("000002.txt").is_file());
}

#[test]
fn make_detections_on_real_kitti_frames() {
    use detection::Detector;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kitti-sample");
    if !root.is_dir() {
        println!(
            "note: {} not found; skipping make-detections on real KITTI frames",
            root.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = xtask()
        .args(["make-detections", "--data"])
        .arg(&root)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ds = kitti::KittiDataset::open(&root).unwrap();
    let detector = detection::FileDetector::new(dir.path());
    let ids = ds.frame_ids(kitti::Split::Training).unwrap();
    assert!(!ids.is_empty());
    let mut total = 0;
    for id in &ids {
        let image = ds.image_2(kitti::Split::Training, id).unwrap();
        let dets = detector.detect(id, image.dimensions()).unwrap();
        let wanted: Vec<kitti::Object> = ds
            .labels(kitti::Split::Training, id)
            .unwrap()
            .into_iter()
            .filter(|o| {
                matches!(
                    o.kind,
                    kitti::ObjectType::Car
                        | kitti::ObjectType::Van
                        | kitti::ObjectType::Pedestrian
                        | kitti::ObjectType::Cyclist
                )
            })
            .collect();
        assert_eq!(dets.len(), wanted.len(), "{id}");
        for (d, o) in dets.iter().zip(&wanted) {
            assert_eq!((&d.kind, d.bbox, d.score), (&o.kind, o.bbox, 1.0), "{id}");
            assert!(d.mask.is_none(), "{id}: real KITTI has no instance maps");
        }
        total += dets.len();
    }
    assert!(total > 0);
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, ids.len(), "one .txt per frame, no mask files");
}

#[test]
fn curriculum_runs_two_tiny_rounds_and_labels_each_with_the_last_network() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("cur");
    let run = || {
        xtask()
            .args([
                "curriculum",
                "--rounds",
                "2",
                "--train-frames",
                "4",
                "--val-frames",
                "2",
                "--steps",
                "2",
                "--synthetic-frames",
                "2",
                "--out",
            ])
            .arg(&out_dir)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let rounds = read(&out_dir.join("rounds.json"));
    let rounds = rounds.as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    for (k, r) in rounds.iter().enumerate() {
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "accepted",
                "accepted_precision",
                "car_3d_r40_moderate",
                "car_bev_r40_moderate",
                "round"
            ]
        );
        assert_eq!(r["round"], k);
        for key in ["car_bev_r40_moderate", "car_3d_r40_moderate"] {
            let ap = r[key].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&ap), "{key} {ap}");
        }
    }
    assert_eq!(rounds[0]["accepted"], 0);
    assert!(rounds[0]["accepted_precision"].is_null());
    // Accepted labels are written, and each round labels with the network the last one made.
    let accepted = read(&out_dir.join("round_1/accepted.json"));
    assert_eq!(
        accepted.as_array().unwrap().len() as u64,
        rounds[1]["accepted"].as_u64().unwrap()
    );
    assert!(rounds[1]["accepted"].as_u64().unwrap() > 0, "{rounds:?}");
    let p = rounds[1]["accepted_precision"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    let record = |k: usize| read(&out_dir.join(format!("round_{k}/round.json")));
    let (r0, r1, r2) = (record(0), record(1), record(2));
    // Round 0 starts from the curriculum's own initial network, not the autolabeler's default.
    assert!(
        r0["weights"]
            .as_str()
            .unwrap()
            .ends_with("data/weights/css.safetensors"),
        "{r0}"
    );
    assert_eq!(r1["labelled_with"], r0["weights"]);
    assert_eq!(r2["labelled_with"], r1["weights"]);
    assert_eq!(r2["labelled_with_hash"], r1["weights_hash"]);
    assert_ne!(r1["weights_hash"], r0["weights_hash"]);
    assert_ne!(r2["weights_hash"], r1["weights_hash"]);
    assert!(out_dir.join("ap_by_round.png").is_file() && out_dir.join("report.md").is_file());
    // Finished rounds are not redone.
    let before = std::fs::read(out_dir.join("round_2/round.json")).unwrap();
    let again = run();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read(out_dir.join("round_2/round.json")).unwrap(), before);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already done"));
}

/// `train-refine` on a handful of frames writes weights, a loss curve and a checkpoint that a longer
/// run resumes from; `eval-refine` scores those weights on frames of another seed.
#[test]
fn train_refine_resumes_and_eval_refine_reports_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("refine.safetensors");
    let train = |steps: &str| {
        let output = xtask()
            .args(["train-refine", "--frames", "6", "--steps", steps, "--out"])
            .arg(&weights)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    train("2");
    assert!(weights.is_file());
    assert!(dir.path().join("refine_loss.png").is_file());
    assert!(dir.path().join("refine.ckpt.safetensors").is_file());
    // The same settings again: the run resumes from the checkpoint (which is already done).
    let log = train("2");
    assert!(log.contains("resuming from"), "{log}");

    let json = dir.path().join("eval.json");
    let output = xtask()
        .args([
            "eval-refine",
            "--frames",
            "4",
            "--seed",
            "77",
            "--baseline-iterations",
            "5",
            "--json",
            "--weights",
        ])
        .arg(&weights)
        .arg("--out")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = report["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{report}");
    for row in rows {
        assert!(row["objects"].as_u64().unwrap() > 0, "{row}");
        assert!(row["median_rotation_deg"].as_f64().unwrap().is_finite(), "{row}");
    }
    // The start's rotation error comes from the documented ±25° yaw.
    assert!(rows[0]["median_rotation_deg"].as_f64().unwrap() <= 25.0);
    // The training seed's frames are refused.
    let output = xtask()
        .args(["eval-refine", "--seed", "11", "--weights"])
        .arg(&weights)
        .output()
        .unwrap();
    assert!(!output.status.success());
}
