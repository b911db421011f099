//! `cargo xtask train-refine`: generates target-domain synthetic frames, cuts car crops with their
//! true poses, trains the correspondence network of the learned refinement (seeded, resumable from
//! its checkpoint) and writes `data/weights/refine.safetensors` with its metadata and loss curves.

use crate::plot::training_curves;
use anyhow::{Context, bail};
use deepsdf::ShapePrior;
use plotters::style::RGBColor;
use refine::config::RefineSettings;
use refine::data::{generate_crops, shapes_of};
use refine::train::{Losses, train};
use sim::frame::FrameConfig;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Settings (default: configs/refine.toml in the repository).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output weights (default: data/weights/refine.safetensors). The loss curves go next to it
    /// (`<stem>_loss.png`), the checkpoint too (`<stem>.ckpt.safetensors`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The shape prior (default: data/weights/deepsdf.safetensors).
    #[arg(long)]
    prior: Option<PathBuf>,
    /// Override the number of optimisation steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Override the number of generated training frames.
    #[arg(long)]
    frames: Option<usize>,
    /// Override the seed of the weights and batches.
    #[arg(long)]
    seed: Option<u64>,
    /// Fine-tune these weights instead of starting from seeded ones (the architecture is theirs).
    #[arg(long)]
    init: Option<PathBuf>,
}

/// Reads the settings file (every key optional).
pub fn load_config(path: &Path) -> anyhow::Result<RefineSettings> {
    crate::load_toml(path, "refinement settings")
}

/// The median IoU of the true-pose rendering's mask (> ½) with the car's own visible pixels over
/// the first 100 crops: the prior's shape under the label's pose lands on the image's car (occluded
/// cars score lower).
fn mask_agreement(
    crops: &[refine::data::RefineCrop],
    shapes: &std::collections::BTreeMap<usize, render::Surfels>,
    render_config: &render::RenderConfig,
) -> anyhow::Result<f64> {
    let mut ious = Vec::new();
    for c in crops.iter().take(100) {
        let Some(s) = shapes.get(&c.shape_index) else {
            continue;
        };
        let img = render::render(&c.camera, &c.true_pose, s, render_config)?;
        let (mut inter, mut union) = (0usize, 0usize);
        for (m, o) in img.mask.iter().zip(&c.object_mask) {
            let r = *m > 0.5;
            inter += usize::from(r && *o);
            union += usize::from(r || *o);
        }
        ious.push(inter as f64 / union.max(1) as f64);
    }
    ious.sort_by(f64::total_cmp);
    Ok(ious.get(ious.len() / 2).copied().unwrap_or(0.0))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config_path = crate::repo_path(&args.config, "configs/refine.toml");
    let mut config = load_config(&config_path)?;
    if let Some(s) = args.steps {
        config.train.steps = s;
    }
    if let Some(f) = args.frames {
        config.data.frames = f;
    }
    if let Some(s) = args.seed {
        config.train.seed = s;
    }
    let out = crate::repo_path(&args.out, "data/weights/refine.safetensors");
    let prior_path = crate::repo_path(&args.prior, "data/weights/deepsdf.safetensors");
    let prior = ShapePrior::load(&prior_path)
        .with_context(|| format!("loading the shape prior {}", prior_path.display()))?;

    let start = Instant::now();
    let frames_bar = crate::progress_bar(config.data.frames, "frames", "{msg} (eta {eta})");
    let crops = generate_crops(
        &prior,
        &FrameConfig::default(),
        config.net.input_size,
        &config.data,
        &|n| frames_bar.inc(n as u64),
    )?;
    frames_bar.finish_and_clear();
    if crops.is_empty() {
        bail!("no crops: every car was filtered out");
    }
    let shapes = shapes_of(&prior, &crops, &config.data.surface)?;
    let data_s = start.elapsed().as_secs_f64();
    tracing::info!(
        "{} crops of {} shapes from {} frames in {data_s:.0} s",
        crops.len(),
        shapes.len(),
        config.data.frames
    );

    let alignment = mask_agreement(&crops, &shapes, &config.data.render)?;
    tracing::info!(
        "the true-pose rendering covers the car's own pixels with a median IoU of {alignment:.3} (first 100 crops)"
    );

    let stem = out
        .file_stem()
        .map_or("refine".into(), |s| s.to_string_lossy().into_owned());
    let checkpoint = out.with_file_name(format!("{stem}.ckpt.safetensors"));
    let bar = crate::progress_bar(config.train.steps, "train-refine", "{msg} (eta {eta})");
    let train_start = Instant::now();
    let init = match &args.init {
        Some(p) => {
            let (tensors, meta) = refine::net::load_tensors(p, &candle_core::Device::Cpu)
                .with_context(|| format!("loading {}", p.display()))?;
            if meta.net != config.net {
                bail!(
                    "{} has another architecture than the settings' [net]",
                    p.display()
                );
            }
            Some(tensors)
        }
        None => None,
    };
    let trained = train(
        init.as_ref(),
        &crops,
        &shapes,
        &config.net,
        &config.data.render,
        &config.train,
        Some(&checkpoint),
        &mut |step, l: &Losses| {
            bar.set_position(step as u64);
            if step % 10 == 0 {
                bar.set_message(format!(
                    "field {:.3} ({:.2} px) visibility {:.3}",
                    l.field, l.field_px, l.visibility
                ));
            }
            true
        },
    )?;
    bar.finish_and_clear();
    let train_s = train_start.elapsed().as_secs_f64();
    let mean = |f: fn(&Losses) -> f32| crate::mean_of_last(&trained.history, 100, f);
    let record = serde_json::json!({
        "config": &config,
        "init": args.init.as_ref().map(|p| p.display().to_string()),
        "prior": prior_path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "crops": crops.len(),
        "shapes": shapes.len(),
        "data_seconds": data_s,
        "true_pose_mask_iou_median": alignment,
        "train_seconds": train_s,
        "samples_per_second": trained.samples_per_s,
        "parameters": refine::net::parameter_count(&trained.varmap),
        "final_losses_mean_of_last_100": {
            "field": mean(|l| l.field), "field_px": mean(|l| l.field_px),
            "visibility": mean(|l| l.visibility),
        },
    });
    refine::net::save(&out, &trained.varmap, &config.net, record)?;

    let png = out.with_file_name(format!("{stem}_loss.png"));
    training_curves(
        &png,
        "Correspondence-field training",
        &trained.history,
        config.train.steps,
        50,
        &[
            (
                "field smooth-L1 (visible cells, 4 px units)",
                RGBColor(30, 90, 200),
                &|l: &Losses| f64::from(l.field),
            ),
            (
                "field mean |error| / 4 px",
                RGBColor(30, 150, 60),
                &|l: &Losses| f64::from(l.field_px / 4.0),
            ),
            (
                "visibility cross-entropy",
                RGBColor(200, 60, 30),
                &|l: &Losses| f64::from(l.visibility),
            ),
        ],
    )?;
    tracing::info!(
        "trained on {} crops: data {data_s:.0} s, training {train_s:.0} s ({:.1} samples/s); wrote {} and {}",
        crops.len(),
        trained.samples_per_s,
        out.display(),
        png.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_holds_the_defaults() {
        let config = load_config(&crate::root().join("configs/refine.toml")).unwrap();
        assert_eq!(config, RefineSettings::default());
    }
}
