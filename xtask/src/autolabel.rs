//! `cargo xtask autolabel`: the product. From images, LIDAR, calibration and 2D detections to
//! scored KITTI 3D labels, evaluated when ground truth exists, with pictures and a report.
//!
//! With no argument it runs the embedded default: it generates (or reuses) the synthetic
//! validation set `data/synthetic-val` (seed 1000, `--frames` frames, target domain), labels it
//! with the committed weights and `configs/default.toml`, evaluates and prints a summary.

use anyhow::{Context, bail};
use detection::{Detector, FileDetector};
use kitti::eval::{Class, Metric, OverlapSet, evaluate};
use kitti::{KittiDataset, Split};
use pipeline::config::Method;
use pipeline::run::{FrameOutcome, RunOptions, RunSummary, Shard, label_path};
use pipeline::{AutolabelConfig, GeometryLabeler, Labeler, MonoLabeler, SdfLabeler};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Seed of the embedded default validation set (never used for training).
pub const DEFAULT_VAL_SEED: u64 = 1000;
/// Frames of the embedded default validation set.
pub const DEFAULT_VAL_FRAMES: usize = 200;

#[derive(clap::Args)]
pub struct Args {
    /// A KITTI-layout folder (with `training/`), real KITTI included. Default: the synthetic
    /// validation set `data/synthetic-val`, generated on first use.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Frames: a split file, or `all`. Default: `ImageSets/val.txt` when present, else all
    /// (every frame of the embedded default).
    #[arg(long)]
    split: Option<String>,
    /// The detection files (`<id>.txt` + optional `.png`/`.json` masks). Default:
    /// `training/detection_2` (the simulated detector's output in a synthetic set); for real
    /// frames make them with `cargo xtask make-detections`.
    #[arg(long)]
    detections: Option<PathBuf>,
    /// Output folder. Default: `<data>/autolabel` (`data/autolabel` for the embedded default).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Settings (TOML). Default: `configs/default.toml`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Labeler: `sdf` (the method), `geometry` (the baseline) or `mono` (the monocular mode);
    /// overrides the config.
    #[arg(long)]
    method: Option<String>,
    /// Frames: how many the embedded default generates (default 200); with `--data`, the first N
    /// of the split.
    #[arg(long)]
    frames: Option<usize>,
    /// Seed of the run (RANSAC); overrides the config.
    #[arg(long)]
    seed: Option<u64>,
    /// Label only this shard of the frames, `i/N`.
    #[arg(long)]
    shard: Option<String>,
    /// Label frames again even when their labels exist (otherwise the run resumes).
    #[arg(long)]
    overwrite: bool,
    /// Write an OBJ mesh per object under `meshes/`.
    #[arg(long)]
    meshes: bool,
    /// Skip the pictures.
    #[arg(long)]
    no_viz: bool,
}

/// Peak resident memory of this process, MB (Linux; None elsewhere).
pub fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn resolve_config(args: &Args) -> anyhow::Result<(AutolabelConfig, PathBuf)> {
    let path = crate::repo_path(&args.config, "configs/default.toml");
    let mut config = AutolabelConfig::load(&path)?;
    if let Some(m) = &args.method {
        config.method = match m.as_str() {
            "sdf" => Method::Sdf,
            "geometry" => Method::Geometry,
            "mono" => Method::Mono,
            other => bail!("--method {other}: expected sdf, geometry or mono"),
        };
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if args.meshes {
        config.output.meshes = true;
    }
    if args.no_viz {
        config.output.viz = false;
    }
    Ok((config, path))
}

fn weights_path(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        crate::root().join(p)
    }
}

/// The learned refinement when the config enables it.
fn load_refiner(config: &AutolabelConfig) -> anyhow::Result<Option<refine::Refiner>> {
    if !config.refine.enabled {
        return Ok(None);
    }
    let path = weights_path(Path::new(&config.refine.weights));
    let refiner = refine::Refiner::load(&path, config.refine.clone())
        .with_context(|| format!("loading the refinement network {}", path.display()))?;
    tracing::info!("poses refined by {} after each fit", path.display());
    Ok(Some(refiner))
}

/// The embedded default dataset: generated on first use, reused after.
fn default_dataset(frames: usize) -> anyhow::Result<PathBuf> {
    let out = crate::root().join("data/synthetic-val");
    let (library, library_spec) = crate::gen_data::procedural_library(
        crate::gen_data::DEFAULT_LIBRARY_SEED,
        crate::gen_data::DEFAULT_LIBRARY_SIZE,
    );
    let config = crate::gen_data::load_config(None, sim::Domain::Target)?;
    let spec = crate::gen_data::dataset_spec(DEFAULT_VAL_SEED, frames, library_spec, config);
    crate::gen_data::generate(&out, &spec, &library, false)?;
    Ok(out)
}

fn frame_ids(dataset: &KittiDataset, split: Option<&str>, embedded: bool) -> anyhow::Result<Vec<String>> {
    let val = dataset.root().join("ImageSets/val.txt");
    Ok(match split {
        Some("all") => dataset.frame_ids(Split::Training)?,
        Some(file) => kitti::split::read_split(Path::new(file))?,
        None if !embedded && val.is_file() => kitti::split::read_split(&val)?,
        None => dataset.frame_ids(Split::Training)?,
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (config, config_path) = resolve_config(&args)?;
    let embedded = args.data.is_none();
    let frames = args.frames.or(embedded.then_some(DEFAULT_VAL_FRAMES));
    let root = match (&args.data, frames) {
        (Some(d), _) => d.clone(),
        (None, n) => default_dataset(n.unwrap_or(DEFAULT_VAL_FRAMES))?,
    };
    let dataset = KittiDataset::open(&root)?;
    let mut ids = frame_ids(&dataset, args.split.as_deref(), embedded)?;
    if let Some(n) = frames {
        ids.truncate(n);
    }
    if ids.is_empty() {
        bail!("no frames to label in {}", root.display());
    }
    let out = args.out.clone().unwrap_or_else(|| {
        if embedded {
            crate::root().join("data/autolabel")
        } else {
            root.join("autolabel")
        }
    });
    let det_dir = args
        .detections
        .clone()
        .unwrap_or_else(|| dataset.split_dir(Split::Training).join("detection_2"));
    if !det_dir.is_dir() {
        bail!(
            "no detections in {}: pass --detections, or make them from true 2D boxes with `cargo xtask make-detections --data {}`",
            det_dir.display(),
            root.display()
        );
    }
    let shard = args
        .shard
        .as_deref()
        .map(str::parse::<Shard>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(out.join("label_2")).with_context(|| format!("creating {}", out.display()))?;
    let resolved = config.to_toml()?;
    kitti::io::write_atomic(&out.join("config.toml"), resolved.as_bytes())?;

    let detector = FileDetector::new(det_dir.clone());
    let labeler: Box<dyn Labeler> = match config.method {
        Method::Sdf => {
            let prior = deepsdf::ShapePrior::load(&weights_path(&config.weights.deepsdf))?;
            let css = css::CssModel::load(&weights_path(&config.weights.css))?;
            let labeler = SdfLabeler::new(config.clone(), prior, css)?;
            match load_refiner(&config)? {
                Some(refiner) => Box::new(labeler.with_refiner(refiner)),
                None => Box::new(labeler),
            }
        }
        Method::Geometry => Box::new(GeometryLabeler::new(config.clone())),
        Method::Mono => {
            let prior = deepsdf::ShapePrior::load(&weights_path(&config.weights.deepsdf))?;
            let atlas = deepsdf::texture::MaterialAtlas::load(&weights_path(&config.weights.texture))?;
            let depth = depth::open(&dataset.split_dir(Split::Training), &config.depth)?;
            tracing::info!("monocular mode: depth from {}", depth.name());
            let labeler = MonoLabeler::new(config.clone(), prior, atlas, depth)?;
            match load_refiner(&config)? {
                Some(refiner) => Box::new(labeler.with_refiner(refiner)),
                None => Box::new(labeler),
            }
        }
    };
    tracing::info!(
        "labelling {} frames of {} with {} ({}), detections from {}, into {}",
        ids.len(),
        root.display(),
        labeler.name(),
        config_path.display(),
        detector.name(),
        out.display()
    );
    let bar = crate::progress_bar(ids.len(), "autolabel", "frames ({per_sec}, eta {eta})");
    let viz_dir = out.join("viz");
    let sink = |outcome: &FrameOutcome<'_>| -> Result<(), String> {
        if !config.output.viz {
            return Ok(());
        }
        crate::autolabel_viz::write_frame_viz(&viz_dir, outcome, &dataset).map_err(|e| format!("{e:#}"))
    };
    let summary = pipeline::run(
        &dataset,
        Split::Training,
        &ids,
        &detector,
        labeler.as_ref(),
        &config,
        &RunOptions {
            out: out.clone(),
            overwrite: args.overwrite,
            shard,
        },
        &|| bar.inc(1),
        &sink,
    )?;
    bar.finish_and_clear();
    report(&dataset, &ids, &out, &config, &summary, labeler.name(), &root)
}

/// Evaluates (when ground truth exists), writes `metrics.json` and `report.md`, prints a summary.
fn report(
    dataset: &KittiDataset,
    ids: &[String],
    out: &Path,
    config: &AutolabelConfig,
    summary: &RunSummary,
    method: &str,
    root: &Path,
) -> anyhow::Result<()> {
    let gt_dir = dataset.split_dir(Split::Training).join("label_2");
    let labelled: Vec<String> = ids
        .iter()
        .filter(|id| label_path(out, id).is_file())
        .cloned()
        .collect();
    let mut metrics = serde_json::Map::new();
    let mut table = String::new();
    if gt_dir.is_dir() && !labelled.is_empty() {
        let frames = crate::eval::load_frames(&gt_dir, &out.join("label_2"), &labelled)?;
        let report = evaluate(&frames)?;
        if let serde_json::Value::Object(m) = report.to_json() {
            metrics.extend(m);
        }
        if let Some(car) = report.class(Class::Car) {
            table.push_str("| Car AP R40 (easy / moderate / hard) | @0.7 | @0.5 |\n|---|---|---|\n");
            for metric in Metric::ALL {
                let cell = |set: OverlapSet| {
                    let v = car.set(set).metric(metric).r40();
                    format!("{:.2} / {:.2} / {:.2}", v[0], v[1], v[2])
                };
                table.push_str(&format!(
                    "| {} | {} | {} |\n",
                    metric.key(),
                    cell(OverlapSet::Strict),
                    cell(OverlapSet::Loose)
                ));
            }
        }
    }
    let median = summary.median_seconds_per_object();
    metrics.insert(
        "timing".into(),
        json!({
            "frames": summary.frames_labelled,
            "objects": summary.object_seconds.len(),
            "total_seconds": summary.total_seconds,
            "median_seconds_per_object": median,
            "median_seconds_per_frame": summary.median_seconds_per_frame(),
            "stage_seconds": summary.stage_seconds,
        }),
    );
    metrics.insert("peak_memory_mb".into(), json!(peak_memory_mb()));
    metrics.insert("method".into(), json!(method));
    metrics.insert("seed".into(), json!(config.seed));
    metrics.insert("labels_by_method".into(), json!(summary.methods));
    metrics.insert(
        "failures".into(),
        json!(
            summary
                .failures
                .iter()
                .map(|f| json!({"frame": f.frame, "detection": f.detection, "message": f.message}))
                .collect::<Vec<_>>()
        ),
    );
    metrics.insert("frames_evaluated".into(), json!(labelled.len()));
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(metrics))?;
    kitti::io::write_atomic(&out.join("metrics.json"), text.as_bytes())?;

    let mut md = format!(
        "# Autolabel report\n\nData: `{}` ({} frames evaluated). Method: `{method}`, seed {}. \
         Labelled in this run: {} frames ({} skipped as done), {} labels; {} failures.\n\n",
        root.display(),
        labelled.len(),
        config.seed,
        summary.frames_labelled,
        summary.frames_skipped,
        summary.objects,
        summary.failures.len()
    );
    if !table.is_empty() {
        md.push_str(&table);
        md.push('\n');
    }
    md.push_str(&format!(
        "Timing: median {median:.3} s per object, {:.1} s in all; stages (s, summed over workers): {}\n\n",
        summary.total_seconds,
        summary
            .stage_seconds
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(mb) = peak_memory_mb() {
        md.push_str(&format!("Peak memory: {mb:.0} MB.\n\n"));
    }
    if !summary.failures.is_empty() {
        md.push_str("## Failures\n\n");
        for f in summary.failures.iter().take(50) {
            let det = f.detection.map(|d| format!(" detection {d}")).unwrap_or_default();
            md.push_str(&format!("- frame {}{det}: {}\n", f.frame, f.message));
        }
        if summary.failures.len() > 50 {
            md.push_str(&format!(
                "- … and {} more (metrics.json has them all)\n",
                summary.failures.len() - 50
            ));
        }
        md.push('\n');
    }
    if config.output.viz {
        md.push_str("## Pictures\n\n");
        for id in labelled.iter().take(6) {
            md.push_str(&format!("![{id}](viz/{id}.png)\n"));
        }
    }
    kitti::io::write_atomic(&out.join("report.md"), md.as_bytes())?;
    #[allow(clippy::print_stdout, reason = "the summary is the command's output")]
    {
        println!(
            "autolabel: {} labels in {} frames, {} failures",
            summary.objects,
            summary.frames_labelled,
            summary.failures.len()
        );
        if !table.is_empty() {
            println!("{table}");
        }
        println!(
            "median {median:.3} s per object, {:.3} s per frame (one worker); outputs in {}",
            summary.median_seconds_per_frame(),
            out.display()
        );
    }
    if !summary.failures.is_empty() {
        tracing::warn!(
            "{} failures (listed in {})",
            summary.failures.len(),
            out.join("report.md").display()
        );
    }
    Ok(())
}
