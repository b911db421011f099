//! Evaluation speed at the KITTI val size (3,769 frames, ~8 objects each): the in-memory evaluation,
//! and the whole job as `cargo xtask eval` does it (read 2 × 3,769 label files, then evaluate).
#![allow(clippy::unwrap_used, reason = "bench set-up")]

use criterion::{Criterion, criterion_group, criterion_main};
use kitti::eval::{FrameLabels, evaluate};
use kitti::testing::{LabelSetConfig, generate_label_set};
use rayon::prelude::*;

const VAL_FRAMES: usize = 3769;

fn bench_eval(c: &mut Criterion) {
    let config = LabelSetConfig {
        frames: VAL_FRAMES,
        mean_objects: 8.0,
        ..Default::default()
    };
    let frames: Vec<FrameLabels> = generate_label_set(&config, 42)
        .into_iter()
        .enumerate()
        .map(|(i, f)| FrameLabels {
            id: format!("{i:06}"),
            gt: f.gt,
            det: f.det,
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    for f in &frames {
        kitti::label::write_labels(&dir.path().join("gt").join(format!("{}.txt", f.id)), &f.gt).unwrap();
        kitti::label::write_labels(&dir.path().join("pred").join(format!("{}.txt", f.id)), &f.det).unwrap();
    }

    let mut group = c.benchmark_group("kitti_eval_val_3769_frames");
    group.sample_size(10);
    group.bench_function("evaluate_in_memory", |b| b.iter(|| evaluate(&frames).unwrap()));
    group.bench_function("read_files_and_evaluate", |b| {
        b.iter(|| {
            let ids = kitti::dataset::list_ids(&dir.path().join("gt"), "txt").unwrap();
            let loaded: Vec<FrameLabels> = ids
                .par_iter()
                .map(|id| FrameLabels {
                    id: id.clone(),
                    gt: kitti::label::read_labels(&dir.path().join("gt").join(format!("{id}.txt"))).unwrap(),
                    det: kitti::label::read_labels(&dir.path().join("pred").join(format!("{id}.txt")))
                        .unwrap(),
                })
                .collect();
            evaluate(&loaded).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_eval);
criterion_main!(benches);
