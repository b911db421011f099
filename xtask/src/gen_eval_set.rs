//! `cargo xtask gen-eval-set`: a seeded random label set in KITTI files, `OUT/gt/*.txt` and
//! `OUT/pred/*.txt`, with `OUT/ImageSets/all.txt`.

use anyhow::Context;
use kitti::testing::{LabelSetConfig, generate_label_set};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of frames.
    #[arg(long, default_value_t = 200)]
    frames: usize,
    /// Localisation noise of the detections (1 = a decent LIDAR detector).
    #[arg(long, default_value_t = 1.0)]
    noise: f64,
    /// Mean objects per frame.
    #[arg(long, default_value_t = 8.0)]
    mean_objects: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = LabelSetConfig {
        frames: args.frames,
        noise: args.noise,
        mean_objects: args.mean_objects,
        ..Default::default()
    };
    let frames = generate_label_set(&config, args.seed);
    let mut ids = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let id = format!("{i:06}");
        kitti::label::write_labels(&args.out.join("gt").join(format!("{id}.txt")), &f.gt)?;
        kitti::label::write_labels(&args.out.join("pred").join(format!("{id}.txt")), &f.det)?;
        ids.push(id);
    }
    kitti::split::write_split(&args.out.join("ImageSets/all.txt"), &ids).context("writing the split")?;
    let (n_gt, n_det): (usize, usize) = frames
        .iter()
        .fold((0, 0), |(g, d), f| (g + f.gt.len(), d + f.det.len()));
    tracing::info!(
        "wrote {} frames ({n_gt} ground-truth objects, {n_det} detections) to {}",
        frames.len(),
        args.out.display()
    );
    Ok(())
}
