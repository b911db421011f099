//! `cargo xtask train-sdf`: trains the DeepSDF shape prior on the car shape library (or a folder of
//! OBJ cars) and writes `data/weights/deepsdf.safetensors` with its metadata, plus the loss curve.

use crate::plot::{Series, line_chart};
use anyhow::{Context, bail};
use deepsdf::prior::{FORMAT, PriorMetadata, ShapePrior};
use deepsdf::samples::{Normalisation, SampleConfig, SdfSamples, sample_sdf};
use deepsdf::train::{TrainConfig, train};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sim::ShapeLibrary;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which shapes the prior learns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LibraryConfig {
    /// Seed of the procedural library (the one `gen-data` places in scenes by default).
    pub seed: u64,
    /// Shapes `0..train_shapes` are learned; higher indices are never seen (held out by `eval-sdf`).
    pub train_shapes: usize,
}

impl Default for LibraryConfig {
    fn default() -> Self {
        LibraryConfig {
            seed: crate::gen_data::DEFAULT_LIBRARY_SEED,
            train_shapes: 400,
        }
    }
}

/// `configs/deepsdf.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SdfConfig {
    /// Canonical frame scale, metres per unit.
    pub metres_per_unit: f32,
    /// Training shapes.
    pub library: LibraryConfig,
    /// SDF sampling per shape.
    pub sampling: SampleConfig,
    /// Training.
    pub train: TrainConfig,
}

impl Default for SdfConfig {
    fn default() -> Self {
        SdfConfig {
            metres_per_unit: deepsdf::samples::DEFAULT_METRES_PER_UNIT,
            library: LibraryConfig::default(),
            sampling: SampleConfig::default(),
            train: TrainConfig::default(),
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Settings (default: configs/deepsdf.toml in the repository).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output weights (default: data/weights/deepsdf.safetensors). The loss curve goes next to it
    /// (`<stem>_loss.png`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Train on a folder of OBJ cars (metres, +y up, +z forward) instead of the procedural library.
    #[arg(long)]
    car_models: Option<PathBuf>,
    /// Override the number of optimisation steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Override the number of training shapes.
    #[arg(long)]
    shapes: Option<usize>,
    /// Override the latent size.
    #[arg(long)]
    latent_dim: Option<usize>,
}

/// Reads the settings file (every key optional).
pub fn load_config(path: &Path) -> anyhow::Result<SdfConfig> {
    crate::load_toml(path, "shape-prior settings")
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config_path = crate::repo_path(&args.config, "configs/deepsdf.toml");
    let mut config = load_config(&config_path)?;
    if let Some(s) = args.steps {
        config.train.steps = s;
    }
    if let Some(n) = args.shapes {
        config.library.train_shapes = n;
    }
    if let Some(d) = args.latent_dim {
        config.train.decoder.latent_dim = d;
    }
    let out = crate::repo_path(&args.out, "data/weights/deepsdf.safetensors");
    let (library, source) = match &args.car_models {
        Some(dir) => (
            ShapeLibrary::from_obj_dir(dir).with_context(|| format!("loading {}", dir.display()))?,
            serde_json::json!({"obj_dir": dir}),
        ),
        None => (
            ShapeLibrary::procedural(config.library.seed, config.library.train_shapes),
            serde_json::json!({"procedural": {"seed": config.library.seed, "count": config.library.train_shapes}}),
        ),
    };
    let n = library.len().min(config.library.train_shapes);
    if n == 0 {
        bail!("no training shapes");
    }
    let start = Instant::now();
    let samples = sample_library(&library, n, &config)?;
    let sampled_s = start.elapsed().as_secs_f64();
    tracing::info!("sampled {n} shapes in {sampled_s:.1} s");

    let bar = crate::progress_bar(config.train.steps, "train-sdf", "steps, loss {msg} (eta {eta})");
    let train_start = Instant::now();
    let trained = train(&samples, &config.train, |step, loss| {
        if step % 10 == 0 {
            bar.set_message(format!("{loss:.5}"));
        }
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let train_s = train_start.elapsed().as_secs_f64();

    let names = (0..n)
        .map(|i| library.name(i).unwrap_or_else(|| format!("shape_{i}")))
        .collect();
    let prior = ShapePrior {
        decoder: trained.decoder,
        latents: trained.latents,
        meta: PriorMetadata {
            format: FORMAT.into(),
            decoder: config.train.decoder.clone(),
            metres_per_unit: config.metres_per_unit,
            shape_names: names,
            training: serde_json::json!({
                "config": &config,
                "library": source,
                "final_loss": trained.losses.last().map(|l| l.loss),
                "final_sdf_l1_units": trained.losses.last().map(|l| l.sdf_l1),
            }),
        },
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    prior.save(&out)?;
    let curve: Vec<(f64, f64)> = trained.losses.iter().map(|l| (l.step as f64, l.sdf_l1)).collect();
    let y_max = curve.iter().map(|p| p.1).fold(1e-6, f64::max);
    let png = out.with_file_name(format!(
        "{}_loss.png",
        out.file_stem().map_or("deepsdf".into(), |s| s.to_string_lossy())
    ));
    line_chart(
        &png,
        "DeepSDF training: clamped L1 of the SDF",
        ("step", "mean |f − s| (canonical units)"),
        (0.0..config.train.steps.max(1) as f64, 0.0..y_max * 1.05),
        &[Series {
            label: format!(
                "latent {}, {}×{}",
                config.train.decoder.latent_dim, config.train.decoder.depth, config.train.decoder.width
            ),
            points: &curve,
            color: plotters::style::RGBColor(30, 90, 200),
        }],
    )?;
    tracing::info!(
        "trained on {n} shapes: sampling {sampled_s:.0} s, training {train_s:.0} s ({} steps, final L1 {:.4} units); wrote {} and {}",
        config.train.steps,
        trained.losses.last().map_or(f64::NAN, |l| l.sdf_l1),
        out.display(),
        png.display()
    );
    Ok(())
}

/// SDF samples of shapes `0..n` of `library`, in parallel, deterministic.
pub fn sample_library(
    library: &ShapeLibrary,
    n: usize,
    config: &SdfConfig,
) -> anyhow::Result<Vec<SdfSamples>> {
    let bar = crate::progress_bar(n, "sampling SDFs", "shapes");
    let samples = (0..n)
        .into_par_iter()
        .map(|i| {
            let mesh = library.shape(i).with_context(|| format!("shape {i} missing"))?;
            let norm = Normalisation::for_mesh(&mesh, config.metres_per_unit)?;
            let s = sample_sdf(&mesh, &norm, &config.sampling, config.train.seed ^ i as u64)
                .with_context(|| format!("sampling shape {i}"))?;
            bar.inc(1);
            Ok(s)
        })
        .collect::<anyhow::Result<Vec<_>>>();
    bar.finish_and_clear();
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_holds_the_defaults() {
        let config = load_config(&crate::root().join("configs/deepsdf.toml")).unwrap();
        assert_eq!(config, SdfConfig::default());
    }
}
