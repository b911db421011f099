//! `cargo xtask train-css`: generates clean-domain synthetic frames, cuts car crops with exact
//! NOCS, mask and latent targets, trains the CSS network (seeded, resumable from its checkpoint) and
//! writes `data/weights/css.safetensors` with its metadata and the loss curves.

use crate::plot::{Curve, training_curves};
use anyhow::{Context, bail};
use css::config::CssConfig;
use css::data::generate_crops;
use css::train::{Losses, fine_tune, train};
use deepsdf::ShapePrior;
use plotters::style::RGBColor;
use sim::frame::FrameConfig;
use sim::{Domain, ShapeLibrary};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Settings (default: configs/css.toml in the repository).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output weights (default: data/weights/css.safetensors). The loss curves go next to it
    /// (`<stem>_loss.png`), the checkpoint too (`<stem>.ckpt.safetensors`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The shape prior whose latents are the targets (default: data/weights/deepsdf.safetensors).
    #[arg(long)]
    prior: Option<PathBuf>,
    /// Override the number of optimisation steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Override the number of generated training frames.
    #[arg(long)]
    frames: Option<usize>,
    /// Start from these trained weights instead of seeded ones: every variable of the same name
    /// and shape is taken, the rest (a new head) is seeded.
    #[arg(long)]
    init: Option<PathBuf>,
}

/// Reads the settings file (every key optional).
pub fn load_config(path: &Path) -> anyhow::Result<CssConfig> {
    crate::load_toml(path, "CSS settings")
}

/// A training callback that moves `bar` and shows the losses every 10 steps.
pub fn step_progress(bar: &indicatif::ProgressBar) -> impl FnMut(usize, &Losses) -> bool + '_ {
    move |step, l: &Losses| {
        bar.set_position(step as u64);
        if step % 10 == 0 {
            bar.set_message(format!(
                "nocs {:.4} mask {:.4} latent {:.4} code {:.3}",
                l.nocs, l.mask, l.latent, l.code
            ));
        }
        true
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config_path = crate::repo_path(&args.config, "configs/css.toml");
    let mut config = load_config(&config_path)?;
    if let Some(s) = args.steps {
        config.train.steps = s;
    }
    if let Some(f) = args.frames {
        config.data.frames = f;
    }
    let out = crate::repo_path(&args.out, "data/weights/css.safetensors");
    let prior_path = crate::repo_path(&args.prior, "data/weights/deepsdf.safetensors");
    let prior = ShapePrior::load(&prior_path)
        .with_context(|| format!("loading the shape prior {}", prior_path.display()))?;
    if prior.decoder.config.latent_dim != config.model.latent_dim {
        bail!(
            "the prior's latent has {} dimensions, the network's {}: set model.latent_dim",
            prior.decoder.config.latent_dim,
            config.model.latent_dim
        );
    }
    let library = ShapeLibrary::procedural(config.data.library_seed, config.data.library_size);
    let frame_config = FrameConfig {
        domain: Domain::Clean,
        ..FrameConfig::default()
    };
    let start = Instant::now();
    let frames_bar = crate::progress_bar(config.data.frames, "frames", "{msg} (eta {eta})");
    let mut crops = generate_crops(
        &library,
        &prior,
        &frame_config,
        config.data.seed,
        config.data.frames,
        &config.data.crop,
        true,
        &|n| frames_bar.inc(n as u64),
    )?;
    frames_bar.finish_and_clear();
    let data_s = start.elapsed().as_secs_f64();
    tracing::info!(
        "{} crops from {} frames in {data_s:.0} s",
        crops.len(),
        config.data.frames
    );
    if crops.is_empty() {
        bail!("no crops: every car was filtered out");
    }
    let k = config.model.latent_codes;
    if k > 0 {
        if k != prior.latents.len() {
            bail!(
                "model.latent_codes is {k} but the prior has {} training codes",
                prior.latents.len()
            );
        }
        let started = Instant::now();
        let shapes = css::data::PriorShapes::new(&prior, &config.data.shape_weights)?;
        css::data::attach_shape_weights(&mut crops, &library, &shapes)?;
        tracing::info!(
            "shape weights of {} crops against {k} prior shapes in {:.0} s",
            crops.len(),
            started.elapsed().as_secs_f64()
        );
    }
    // Seeded weights, or --init's under a possibly new head; a code head gets the prior's codes.
    let init = if args.init.is_some() || k > 0 {
        let device = candle_core::Device::Cpu;
        let tensors = match &args.init {
            Some(p) => {
                css::weights::load_tensors(p, &device)
                    .with_context(|| format!("loading {}", p.display()))?
                    .0
            }
            None => Default::default(),
        };
        let (varmap, fresh) = css::weights::warm_start(&config.model, &tensors, config.train.seed, &device)?;
        if args.init.is_some() {
            tracing::info!(
                "starting from {}; seeded: {fresh:?}",
                args.init
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string())
            );
        }
        if k > 0 {
            let codes: Vec<f32> = prior
                .latents
                .iter()
                .flat_map(|z| deepsdf::decoder::normalised(z))
                .collect();
            css::model::set_latent_codes(&varmap, &codes)?;
        }
        Some(css::weights::variables(&varmap)?)
    } else {
        None
    };

    let stem = out
        .file_stem()
        .map_or("css".into(), |s| s.to_string_lossy().into_owned());
    let checkpoint = out.with_file_name(format!("{stem}.ckpt.safetensors"));
    let steps_bar = crate::progress_bar(config.train.steps, "train-css", "{msg} (eta {eta})");
    let space = css::train::ShapeSpace::when_needed(&prior, &config.train)?;
    if let Some(space) = &space {
        tracing::info!("shape-space loss over {} surface points", space.pool_size());
    }
    let train_start = Instant::now();
    let trained = match &init {
        Some(init) => fine_tune(
            &crops,
            &config.model,
            init,
            &config.train,
            space.as_ref(),
            Some(&checkpoint),
            &mut step_progress(&steps_bar),
        )?,
        None => train(
            &crops,
            &config.model,
            &config.train,
            space.as_ref(),
            Some(&checkpoint),
            &mut step_progress(&steps_bar),
        )?,
    };
    steps_bar.finish_and_clear();
    let train_s = train_start.elapsed().as_secs_f64();
    let mean = |f: fn(&Losses) -> f32| crate::mean_of_last(&trained.history, 100, f);
    let record = serde_json::json!({
        "config": &config,
        "prior": prior_path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "init": args.init.as_ref().map(|p| p.display().to_string()),
        "crops": crops.len(),
        "data_seconds": data_s,
        "train_seconds": train_s,
        "samples_per_second": trained.samples_per_s,
        "final_losses_mean_of_last_100": {
            "nocs": mean(|l| l.nocs), "mask": mean(|l| l.mask), "latent": mean(|l| l.latent),
            "code": mean(|l| l.code), "sdf": mean(|l| l.sdf)
        },
    });
    css::weights::save(&out, &trained.varmap, &config.model, record)?;

    let png = out.with_file_name(format!("{stem}_loss.png"));
    let mut curves: Vec<Curve<'_, Losses>> = vec![
        ("NOCS L1 (in mask)", RGBColor(30, 90, 200), &|l| f64::from(l.nocs)),
        ("mask cross-entropy", RGBColor(200, 60, 30), &|l| {
            f64::from(l.mask)
        }),
        ("latent squared distance", RGBColor(30, 150, 60), &|l| {
            f64::from(l.latent)
        }),
    ];
    if config.model.latent_codes > 0 {
        curves.push(("code-score cross-entropy", RGBColor(140, 60, 160), &|l| {
            f64::from(l.code)
        }));
    }
    if config.train.sdf_weight > 0.0 {
        curves.push(("shape-space SDF L1", RGBColor(200, 150, 20), &|l| {
            f64::from(l.sdf)
        }));
    }
    training_curves(
        &png,
        "CSS training",
        &trained.history,
        config.train.steps,
        50,
        &curves,
    )?;
    tracing::info!(
        "trained on {} crops: data {data_s:.0} s, training {train_s:.0} s ({:.1} crops/s); wrote {} and {}",
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
        let config = load_config(&crate::root().join("configs/css.toml")).unwrap();
        assert_eq!(config, CssConfig::default());
    }

    /// The committed network `data/weights/<file>` and the training config it records.
    fn committed(file: &str) -> (css::CssModel, serde_json::Value) {
        let model = css::CssModel::load(&crate::root().join("data/weights").join(file)).unwrap();
        let recorded = model
            .meta
            .as_ref()
            .and_then(|m| m.training.get("config"))
            .cloned()
            .unwrap();
        (model, recorded)
    }

    /// `cargo xtask train-css` with the shipped settings must be the command that made the
    /// committed weights: the network and training settings recorded in them are the defaults.
    #[test]
    fn the_committed_network_was_trained_with_the_shipped_settings() {
        let (model, recorded) = committed("css.safetensors");
        let shipped = CssConfig::default();
        let recorded_model: css::model::ModelConfig =
            serde_json::from_value(recorded["model"].clone()).unwrap();
        assert_eq!(recorded_model, shipped.model);
        assert_eq!(model.net.config, shipped.model);
        let recorded_train: css::train::TrainConfig =
            serde_json::from_value(recorded["train"].clone()).unwrap();
        assert_eq!(recorded_train, shipped.train);
        assert_eq!(recorded["data"]["frames"], serde_json::json!(shipped.data.frames));
        assert_eq!(recorded["data"]["seed"], serde_json::json!(shipped.data.seed));
    }

    /// The shape-space variant's three fine-tuning configs change only training settings, and
    /// the committed variant was trained with the last one.
    #[test]
    fn the_shape_space_variant_was_trained_with_its_shipped_configs() {
        let shipped = CssConfig::default();
        let steps: Vec<CssConfig> = (1..=3)
            .map(|i| load_config(&crate::root().join(format!("configs/css_sdf/step{i}.toml"))).unwrap())
            .collect();
        for step in &steps {
            assert_eq!(step.model, shipped.model);
            assert_eq!(step.data, shipped.data);
            assert!(step.train.sdf_weight > 0.0);
        }
        let (model, recorded) = committed("css_sdf.safetensors");
        let recorded_train: css::train::TrainConfig =
            serde_json::from_value(recorded["train"].clone()).unwrap();
        assert_eq!(recorded_train, steps[2].train);
        assert_eq!(model.net.config, shipped.model);
    }

    #[test]
    fn moving_average_over_a_window() {
        let s = crate::plot::moving_average(&[1.0, 3.0, 5.0, 7.0], 2);
        assert_eq!(s, vec![(1.0, 1.0), (2.0, 2.0), (3.0, 4.0), (4.0, 6.0)]);
    }
}
