//! `cargo xtask eval`: the KITTI evaluation of a prediction directory against a ground-truth one.

use anyhow::{Context, bail};
use kitti::eval::{FrameLabels, evaluate};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Ground-truth `label_2` directory (default: the bundled example, data/eval-example/gt).
    #[arg(long)]
    gt: Option<PathBuf>,
    /// Prediction directory, KITTI label files with a score (default: data/eval-example/pred).
    /// A frame without a file has no detections.
    #[arg(long)]
    pred: Option<PathBuf>,
    /// Split file with the frame ids to evaluate (default: every `*.txt` in the ground-truth directory).
    #[arg(long)]
    split: Option<PathBuf>,
    /// Write AP values (percent) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw precision–recall curves (PNG per class, metric and overlap set) into this directory.
    #[arg(long)]
    plots: Option<PathBuf>,
}

/// Reads ground truth and predictions of every frame; reports every bad file, not only the first.
/// A frame without a prediction file has no detections; a warning says how many there were.
pub fn load_frames(gt_dir: &Path, pred_dir: &Path, ids: &[String]) -> anyhow::Result<Vec<FrameLabels>> {
    let results: Vec<Result<(FrameLabels, bool), kitti::KittiError>> = ids
        .par_iter()
        .map(|id| {
            let gt = kitti::label::read_labels(&gt_dir.join(format!("{id}.txt")))?;
            let pred_path = pred_dir.join(format!("{id}.txt"));
            let has_pred = pred_path.exists();
            let det = if has_pred {
                kitti::label::read_labels(&pred_path)?
            } else {
                Vec::new()
            };
            Ok((
                FrameLabels {
                    id: id.clone(),
                    gt,
                    det,
                },
                has_pred,
            ))
        })
        .collect();
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| format!("  {e}")))
        .collect();
    if !errors.is_empty() {
        bail!(
            "{} of {} frames could not be read:\n{}",
            errors.len(),
            ids.len(),
            errors.join("\n")
        );
    }
    let frames: Vec<(FrameLabels, bool)> = results.into_iter().filter_map(Result::ok).collect();
    let missing = frames.iter().filter(|(_, has_pred)| !has_pred).count();
    if missing > 0 {
        tracing::warn!(
            "{missing} of {} frames have no prediction file (counted as no detections)",
            ids.len()
        );
    }
    Ok(frames.into_iter().map(|(f, _)| f).collect())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let example = crate::root().join("data/eval-example");
    let gt_dir = args.gt.unwrap_or_else(|| example.join("gt"));
    let pred_dir = args.pred.unwrap_or_else(|| example.join("pred"));
    let ids = match &args.split {
        Some(split) => kitti::split::read_split(split)?,
        None => kitti::dataset::list_ids(&gt_dir, "txt")
            .with_context(|| format!("listing {}", gt_dir.display()))?,
    };
    if ids.is_empty() {
        bail!("no frames to evaluate in {}", gt_dir.display());
    }
    if !pred_dir.is_dir() {
        bail!("prediction directory {} does not exist", pred_dir.display());
    }
    let start = std::time::Instant::now();
    let frames = load_frames(&gt_dir, &pred_dir, &ids)?;
    let report = evaluate(&frames)?;
    tracing::info!(
        "evaluated {} frames in {:.2} s",
        frames.len(),
        start.elapsed().as_secs_f64()
    );
    #[allow(clippy::print_stdout, reason = "the table is the command's output")]
    {
        println!("{}", report.table());
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        kitti::io::write_atomic(path, text.as_bytes())?;
        tracing::info!("wrote {}", path.display());
    }
    if let Some(dir) = &args.plots {
        let n = crate::plot::precision_recall_curves(&report, dir)?;
        tracing::info!("wrote {n} precision–recall plots to {}", dir.display());
    }
    Ok(())
}
