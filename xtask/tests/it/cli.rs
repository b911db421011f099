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
