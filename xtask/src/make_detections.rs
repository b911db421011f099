//! `cargo xtask make-detections`: detection files (the `detection` crate's format) from the true 2D
//! boxes of `label_2`, for real KITTI frames, which come without detector output, and for the oracle
//! row of the benchmarks. Masks come from `instance_2` (written by our simulator) when it exists.

use anyhow::{Context, bail};
use detection::{Detection, Mask, MaskFormat, PixelWindow, write_detections};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// KITTI-layout root (holds `<split>/label_2`, and `<split>/instance_2` for masks).
    #[arg(long)]
    data: PathBuf,
    /// Split folder under the root.
    #[arg(long, default_value = "training", value_parser = ["training", "testing"])]
    split: String,
    /// Output folder. Default: `<data>/<split>/detection_gt_2`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Split file with the frame ids (default: every `label_2/*.txt`).
    #[arg(long)]
    ids: Option<PathBuf>,
}

/// Writes the detections of frame `id` into `out`; returns how many.
fn make_frame(labels_dir: &Path, instance_dir: Option<&Path>, out: &Path, id: &str) -> anyhow::Result<usize> {
    let labels = kitti::label::read_labels(&labels_dir.join(format!("{id}.txt")))?;
    let targets = labels
        .iter()
        .enumerate()
        .filter(|(_, o)| detection::is_detected_type(&o.kind));
    let box_only = |o: &kitti::Object| Detection {
        kind: o.kind.clone(),
        bbox: o.bbox,
        score: 1.0,
        mask: None,
    };
    let Some(instance_dir) = instance_dir else {
        let dets: Vec<Detection> = targets.map(|(_, o)| box_only(o)).collect();
        // The image size only sizes mask files; there are none.
        write_detections(out, id, (0, 0), &dets, MaskFormat::BoxOnly)?;
        return Ok(dets.len());
    };
    let map = kitti::image::read_instance_png(&instance_dir.join(format!("{id}.png")))?;
    let mut dets = Vec::new();
    for (index, o) in targets {
        // Instance pixel value = label line index + 1.
        let value = u16::try_from(index + 1)
            .with_context(|| format!("{id}: label line {} has no 16-bit instance id", index + 1))?;
        // The mask is cut to the box's pixel window, where the format wants it.
        let mask = match PixelWindow::of_box(&o.bbox, map.width, map.height) {
            Some(window) => Mask::from_fn(window, |x, y| map.get(x, y) == value),
            None => Mask::empty(),
        };
        dets.push(Detection {
            mask: Some(mask),
            ..box_only(o)
        });
    }
    write_detections(out, id, (map.width, map.height), &dets, MaskFormat::Png)?;
    Ok(dets.len())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let split_dir = args.data.join(&args.split);
    let labels_dir = split_dir.join("label_2");
    if !labels_dir.is_dir() {
        bail!(
            "{}: no such folder (the true boxes come from label_2)",
            labels_dir.display()
        );
    }
    let instance_dir = split_dir.join("instance_2");
    let instance_dir = instance_dir.is_dir().then_some(instance_dir);
    let out = args.out.unwrap_or_else(|| split_dir.join("detection_gt_2"));
    let ids = match &args.ids {
        Some(path) => kitti::split::read_split(path)?,
        None => kitti::dataset::list_ids(&labels_dir, "txt")?,
    };
    let bar = crate::progress_bar(ids.len(), "make-detections", "frames ({per_sec}, eta {eta})");
    let results: Vec<anyhow::Result<usize>> = ids
        .par_iter()
        .map(|id| {
            let result = make_frame(&labels_dir, instance_dir.as_deref(), &out, id);
            bar.inc(1);
            result
        })
        .collect();
    bar.finish_and_clear();
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| format!("  {e:#}")))
        .collect();
    if !errors.is_empty() {
        bail!(
            "{} of {} frames failed:\n{}",
            errors.len(),
            ids.len(),
            errors.join("\n")
        );
    }
    let count: usize = results.into_iter().filter_map(Result::ok).sum();
    let masks = match &instance_dir {
        Some(dir) => format!("masks from {}", dir.display()),
        None => "box-only: no instance_2 folder".to_owned(),
    };
    tracing::info!(
        "{} frames, {count} detections ({masks}) → {}",
        ids.len(),
        out.display()
    );
    Ok(())
}
