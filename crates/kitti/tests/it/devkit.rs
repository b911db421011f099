//! Our evaluator against numbers recorded from the official C++ devkit (see tests/data/devkit).

use kitti::eval::{FrameLabels, evaluate};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/devkit")
}

fn load(set: &Path) -> Vec<FrameLabels> {
    let ids = kitti::dataset::list_ids(&set.join("gt"), "txt").unwrap();
    ids.iter()
        .map(|id| {
            let gt = kitti::label::read_labels(&set.join("gt").join(format!("{id}.txt"))).unwrap();
            let pred_path = set.join("pred").join(format!("{id}.txt"));
            let det = if pred_path.exists() {
                kitti::label::read_labels(&pred_path).unwrap()
            } else {
                vec![]
            };
            FrameLabels {
                id: id.clone(),
                gt,
                det,
            }
        })
        .collect()
}

/// Compares every `CLASS METRIC R11|R40 e m h` line of the devkit's output with our JSON.
fn check(set_name: &str) {
    let set = fixtures().join(set_name);
    let json = evaluate(&load(&set)).unwrap().to_json();
    let mut compared = 0;
    for (file, key) in [("devkit_strict.txt", "strict"), ("devkit_loose.txt", "loose")] {
        let text = std::fs::read_to_string(set.join(file)).unwrap();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (class, metric, kind) = (f[0], f[1], f[2]);
            let ours = &json[class][key][metric][kind];
            for (d, want) in f[3..6].iter().enumerate() {
                let want: f64 = want.parse().unwrap();
                let got = ours[d]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{set_name} {class} {key} {metric} {kind}: missing"));
                // The devkit prints 4 decimals; the protocol's bar is 0.01 AP.
                assert!(
                    (got - want).abs() <= 1e-4 + 1e-9,
                    "{set_name} {class} {key} {metric} {kind}[{d}]: ours {got} devkit {want}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 100, "{set_name}: only {compared} values compared");
}

#[test]
fn matches_the_devkit_on_set_a() {
    check("set_a");
}

#[test]
fn matches_the_devkit_with_tied_scores_and_missing_prediction_files() {
    check("set_b");
}
