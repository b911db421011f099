//! `cargo xtask curriculum`: the self-improving annotation loop (the `curriculum` crate) on the
//! synthetic world. Generates (or reuses) an unlabelled `target`-domain training set and the
//! validation set under `--out`, evaluates the committed CSS network (round 0), then per round:
//! autolabels the training set, verifies and accepts labels easy to hard, fine-tunes the network on
//! their rendered targets plus clean synthetic crops, and evaluates the new network on the
//! validation set. Every round is written to `<out>/round_<k>/` (`round.json` last, so a finished
//! round is never redone); `<out>/rounds.json`, `<out>/ap_by_round.png` and `<out>/report.md` sum
//! them up.

use crate::plot::{Series, line_chart};
use anyhow::{Context, bail};
use css::CssModel;
use css::data::{Crop, generate_crops};
use curriculum::round::{Candidate, label_frames, precision};
use curriculum::{CurriculumConfig, config::FineTuneConfig};
use detection::FileDetector;
use kitti::eval::{Class, Metric, OverlapSet, evaluate};
use kitti::{KittiDataset, Split};
use pipeline::{AutolabelConfig, SdfLabeler};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sim::frame::FrameConfig;
use sim::{Domain, ShapeLibrary};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Annotation rounds after round 0 (default: the config's).
    #[arg(long)]
    rounds: Option<usize>,
    /// Output folder (default: data/curriculum).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Curriculum settings (default: configs/curriculum.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Autolabeler settings (default: configs/default.toml).
    #[arg(long)]
    autolabel_config: Option<PathBuf>,
    /// Override the number of unlabelled training frames.
    #[arg(long)]
    train_frames: Option<usize>,
    /// Override the number of validation frames.
    #[arg(long)]
    val_frames: Option<usize>,
    /// Override the fine-tuning steps per round.
    #[arg(long)]
    steps: Option<usize>,
    /// Override the clean synthetic frames mixed into fine-tuning.
    #[arg(long)]
    synthetic_frames: Option<usize>,
}

/// One round as `rounds.json` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RoundSummary {
    round: usize,
    accepted: usize,
    accepted_precision: Option<f64>,
    car_bev_r40_moderate: f64,
    car_3d_r40_moderate: f64,
}

/// One round in full (`round_<k>/round.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RoundRecord {
    #[serde(flatten)]
    summary: RoundSummary,
    /// The network this round ends with.
    weights: PathBuf,
    /// FNV-1a hash of that file's bytes.
    weights_hash: String,
    /// The network that labelled this round's training frames (None for round 0).
    labelled_with: Option<PathBuf>,
    /// Its hash.
    labelled_with_hash: Option<String>,
    /// Labels of the training frames, verified ones, and rejections by reason.
    labels: usize,
    verified: usize,
    rejections: serde_json::Value,
    /// Precision of the accepted labels at BEV IoU 0.5 too.
    accepted_precision_bev_05: Option<f64>,
    seconds: f64,
}

fn fnv1a(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Ok(format!("{h:016x}"))
}

fn load_config(path: &Path) -> anyhow::Result<CurriculumConfig> {
    let config: CurriculumConfig = crate::load_toml(path, "curriculum settings")?;
    config.validate()?;
    Ok(config)
}

fn ensure_set(dir: &Path, seed: u64, frames: usize, library: &ShapeLibrary) -> anyhow::Result<KittiDataset> {
    let (_, library_spec) = crate::gen_data::procedural_library(
        crate::gen_data::DEFAULT_LIBRARY_SEED,
        crate::gen_data::DEFAULT_LIBRARY_SIZE,
    );
    let frame_config = crate::gen_data::load_config(None, Domain::Target)?;
    let spec = crate::gen_data::dataset_spec(seed, frames, library_spec, frame_config);
    crate::gen_data::generate(dir, &spec, library, false)?;
    Ok(KittiDataset::open(dir)?)
}

/// Labels `ids` of `dataset` with the network at `weights` and evaluates them: Car BEV and 3D AP
/// R40 @0.7, moderate.
fn evaluate_network(
    dataset: &KittiDataset,
    ids: &[String],
    weights: &Path,
    autolabel: &AutolabelConfig,
    out: &Path,
) -> anyhow::Result<(f64, f64)> {
    let labeler = labeler(autolabel, weights)?;
    let detector = FileDetector::new(dataset.split_dir(Split::Training).join("detection_2"));
    let bar = crate::progress_bar(ids.len(), "evaluate", "frames (eta {eta})");
    let summary = pipeline::run(
        dataset,
        Split::Training,
        ids,
        &detector,
        &labeler,
        autolabel,
        &pipeline::RunOptions {
            out: out.to_path_buf(),
            overwrite: true,
            shard: None,
        },
        &|| bar.inc(1),
        &|_| Ok(()),
    )?;
    bar.finish_and_clear();
    if !summary.failures.is_empty() {
        tracing::warn!("{} failures labelling {}", summary.failures.len(), out.display());
    }
    let gt = dataset.split_dir(Split::Training).join("label_2");
    let frames = crate::eval::load_frames(&gt, &out.join("label_2"), ids)?;
    let report = evaluate(&frames)?;
    let car = report
        .class(Class::Car)
        .context("the evaluation has no Car results")?;
    let ap = |m: Metric| car.set(OverlapSet::Strict).metric(m).r40()[1];
    Ok((ap(Metric::Bev), ap(Metric::ThreeD)))
}

fn labeler(autolabel: &AutolabelConfig, weights: &Path) -> anyhow::Result<SdfLabeler> {
    let prior = deepsdf::ShapePrior::load(&crate::root().join(&autolabel.weights.deepsdf))?;
    let css = CssModel::load(weights).with_context(|| format!("loading {}", weights.display()))?;
    Ok(SdfLabeler::new(autolabel.clone(), prior, css)?)
}

/// Fine-tunes the network at `from` on `target` crops (each `repeat` times) and `synthetic` ones;
/// `prior`'s training codes are the anchor of `centre_target_latents`, its decoder the shape
/// space of a network trained with the shape-space loss.
fn fine_tune(
    from: &Path,
    target: &[&Crop],
    synthetic: &[Crop],
    prior: &deepsdf::ShapePrior,
    config: &FineTuneConfig,
    out: &Path,
    record: serde_json::Value,
) -> anyhow::Result<()> {
    let model = CssModel::load(from)?;
    let mut targets: Vec<Crop> = target
        .iter()
        .map(|c| Crop {
            latent_weight: config.target_latent_weight,
            ..(*c).clone()
        })
        .collect();
    if config.centre_target_latents {
        curriculum::targets::centre_latents(&mut targets, &prior.latents);
    }
    let mut crops: Vec<Crop> = synthetic.to_vec();
    for _ in 1..config.target_repeat.max(1) {
        crops.extend(targets.iter().cloned());
    }
    crops.extend(targets);
    let base = model
        .meta
        .as_ref()
        .and_then(|m| m.training.get("config"))
        .and_then(|c| c.get("train"))
        .and_then(|t| serde_json::from_value::<css::train::TrainConfig>(t.clone()).ok())
        .unwrap_or_default();
    let train = css::train::TrainConfig {
        seed: config.seed,
        steps: config.steps,
        batch_size: config.batch_size,
        lr: config.lr,
        checkpoint_every: 0,
        ..base
    };
    let bar = crate::progress_bar(train.steps, "fine-tune", "{msg} (eta {eta})");
    let tensors = css::weights::variables(&model.varmap)?;
    let space = css::train::ShapeSpace::when_needed(prior, &train)?;
    let trained = css::train::fine_tune(
        &crops,
        &model.net.config,
        &tensors,
        &train,
        space.as_ref(),
        None,
        &mut crate::train_css::step_progress(&bar),
    )?;
    bar.finish_and_clear();
    let record = json!({ "fine_tune": record, "train": train, "crops": crops.len() });
    css::weights::save(out, &trained.varmap, &model.net.config, record)?;
    Ok(())
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    kitti::io::write_atomic(path, text.as_bytes())?;
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config_path = crate::repo_path(&args.config, "configs/curriculum.toml");
    let mut config = load_config(&config_path)?;
    if let Some(r) = args.rounds {
        config.rounds = r;
    }
    if let Some(n) = args.train_frames {
        config.data.train_frames = n;
    }
    if let Some(n) = args.val_frames {
        config.data.val_frames = n;
    }
    if let Some(n) = args.steps {
        config.fine_tune.steps = n;
    }
    if let Some(n) = args.synthetic_frames {
        config.fine_tune.synthetic_frames = n;
    }
    let autolabel_path = crate::repo_path(&args.autolabel_config, "configs/default.toml");
    let mut autolabel = AutolabelConfig::load(&autolabel_path)?;
    autolabel.output.viz = false;
    let out = crate::repo_path(&args.out, "data/curriculum");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    write_json(
        &out.join("config.json"),
        &json!({ "curriculum": &config, "autolabel": &autolabel }),
    )?;

    let (library, _) = crate::gen_data::procedural_library(
        crate::gen_data::DEFAULT_LIBRARY_SEED,
        crate::gen_data::DEFAULT_LIBRARY_SIZE,
    );
    let train_set = ensure_set(
        &out.join("target-train"),
        config.data.train_seed,
        config.data.train_frames,
        &library,
    )?;
    let val_set = ensure_set(
        &out.join("target-val"),
        crate::autolabel::DEFAULT_VAL_SEED,
        config.data.val_frames,
        &library,
    )?;
    let mut train_ids = train_set.frame_ids(Split::Training)?;
    train_ids.truncate(config.data.train_frames);
    let mut val_ids = val_set.frame_ids(Split::Training)?;
    val_ids.truncate(config.data.val_frames);
    if train_ids.is_empty() || val_ids.is_empty() {
        bail!("no frames: --train-frames and --val-frames must be positive");
    }

    let mut synthetic: Option<Vec<Crop>> = None;
    let prior = deepsdf::ShapePrior::load(&crate::root().join(&autolabel.weights.deepsdf))?;
    let mut records: Vec<RoundRecord> = Vec::new();
    for round in 0..=config.rounds {
        let dir = out.join(format!("round_{round}"));
        let record_path = dir.join("round.json");
        if record_path.is_file() {
            let text = std::fs::read_to_string(&record_path)?;
            let record: RoundRecord =
                serde_json::from_str(&text).with_context(|| format!("reading {}", record_path.display()))?;
            tracing::info!("round {round} already done ({})", record_path.display());
            records.push(record);
            continue;
        }
        std::fs::create_dir_all(&dir)?;
        let started = std::time::Instant::now();
        let span = tracing::info_span!("round", round);
        let _enter = span.enter();
        let (weights, labelled_with, accepted_count, prec, prec05, labels, verified, rejections) =
            if round == 0 {
                let weights = crate::root().join(&config.initial_css);
                (weights, None, 0, None, None, 0, 0, json!({}))
            } else {
                let previous = records
                    .last()
                    .context("round 0's record is missing")?
                    .weights
                    .clone();
                let labeler = labeler(&autolabel, &previous)?;
                let detector = FileDetector::new(train_set.split_dir(Split::Training).join("detection_2"));
                let bar = crate::progress_bar(train_ids.len(), "autolabel", "frames (eta {eta})");
                let labelled = label_frames(
                    &train_set,
                    &train_ids,
                    &detector,
                    &labeler,
                    &autolabel,
                    &config,
                    &dir.join("train_labels"),
                    &|| bar.inc(1),
                )?;
                bar.finish_and_clear();
                let accepted = labelled.accepted(config.budget_of(round));
                let verified = labelled.candidates.iter().filter(|c| c.verdict.is_ok()).count();
                let prec = precision(&train_set, &accepted, 0.7)?;
                let prec05 = precision(&train_set, &accepted, 0.5)?;
                let listing: Vec<_> = accepted
                    .iter()
                    .map(|c: &&Candidate| {
                        json!({
                            "frame": c.frame,
                            "detection": c.detection_index,
                            "difficulty": c.difficulty(),
                            "label": c.label.to_line(),
                        })
                    })
                    .collect();
                write_json(&dir.join("accepted.json"), &listing)?;
                tracing::info!(
                    "round {round}: {} labels, {verified} verified, {} accepted (precision @0.7 {:?})",
                    labelled.candidates.len(),
                    accepted.len(),
                    prec
                );
                let crops: Vec<&Crop> = accepted
                    .iter()
                    .filter_map(|c| c.verdict.as_ref().ok().map(|(_, crop)| crop))
                    .collect();
                if synthetic.is_none() {
                    let model = CssModel::load(&previous)?;
                    let crop_config = css::data::CropConfig {
                        margin: model.margin(),
                        ..css::data::CropConfig::default()
                    };
                    let frame_config = FrameConfig {
                        domain: Domain::Clean,
                        ..FrameConfig::default()
                    };
                    let bar = crate::progress_bar(config.fine_tune.synthetic_frames, "clean crops", "frames");
                    synthetic = Some(generate_crops(
                        &library,
                        &prior,
                        &frame_config,
                        config.fine_tune.synthetic_seed,
                        config.fine_tune.synthetic_frames,
                        &crop_config,
                        true,
                        &|n| bar.inc(n as u64),
                    )?);
                    bar.finish_and_clear();
                }
                let weights = dir.join("css.safetensors");
                fine_tune(
                    &previous,
                    &crops,
                    synthetic.as_deref().unwrap_or_default(),
                    &prior,
                    &config.fine_tune,
                    &weights,
                    json!({ "round": round, "from": previous, "accepted": crops.len() }),
                )?;
                let rejections: serde_json::Value = serde_json::to_value(
                    labelled
                        .rejections
                        .iter()
                        .map(|(r, n)| {
                            (
                                serde_json::to_value(r)
                                    .ok()
                                    .and_then(|v| v.as_str().map(String::from))
                                    .unwrap_or_default(),
                                *n,
                            )
                        })
                        .collect::<std::collections::BTreeMap<String, usize>>(),
                )?;
                (
                    weights,
                    Some(previous),
                    accepted.len(),
                    prec,
                    prec05,
                    labelled.candidates.len(),
                    verified,
                    rejections,
                )
            };
        let (bev, three_d) =
            evaluate_network(&val_set, &val_ids, &weights, &autolabel, &dir.join("val_labels"))?;
        tracing::info!("round {round}: Car AP R40 @0.7 moderate: BEV {bev:.2}, 3D {three_d:.2}");
        let record = RoundRecord {
            summary: RoundSummary {
                round,
                accepted: accepted_count,
                accepted_precision: prec,
                car_bev_r40_moderate: bev,
                car_3d_r40_moderate: three_d,
            },
            weights_hash: fnv1a(&weights)?,
            labelled_with_hash: labelled_with.as_deref().map(fnv1a).transpose()?,
            weights,
            labelled_with,
            labels,
            verified,
            rejections,
            accepted_precision_bev_05: prec05,
            seconds: started.elapsed().as_secs_f64(),
        };
        write_json(&record_path, &record)?;
        records.push(record);
    }
    summarise(&out, &records)
}

fn summarise(out: &Path, records: &[RoundRecord]) -> anyhow::Result<()> {
    let summaries: Vec<&RoundSummary> = records.iter().map(|r| &r.summary).collect();
    write_json(&out.join("rounds.json"), &summaries)?;
    let bev: Vec<(f64, f64)> = summaries
        .iter()
        .map(|s| (s.round as f64, s.car_bev_r40_moderate))
        .collect();
    let three_d: Vec<(f64, f64)> = summaries
        .iter()
        .map(|s| (s.round as f64, s.car_3d_r40_moderate))
        .collect();
    let top = bev.iter().chain(&three_d).map(|p| p.1).fold(10.0, f64::max);
    line_chart(
        &out.join("ap_by_round.png"),
        "Curriculum: Car AP R40 @0.7 moderate on the validation set",
        ("round", "AP"),
        (-0.2..(records.len().max(2) - 1) as f64 + 0.2, 0.0..top * 1.1),
        &[
            Series {
                label: "BEV".into(),
                points: &bev,
                color: plotters::style::RGBColor(30, 90, 200),
            },
            Series {
                label: "3D".into(),
                points: &three_d,
                color: plotters::style::RGBColor(200, 60, 30),
            },
        ],
    )?;
    let mut md = String::from(
        "# Curriculum report\n\n| round | accepted | precision @0.7 (@0.5) | verified / labels | BEV AP | 3D AP | seconds |\n|---|---|---|---|---|---|---|\n",
    );
    for r in records {
        let s = &r.summary;
        let p = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{:.1} %", 100.0 * v));
        md.push_str(&format!(
            "| {} | {} | {} ({}) | {} / {} | {:.2} | {:.2} | {:.0} |\n",
            s.round,
            s.accepted,
            p(s.accepted_precision),
            p(r.accepted_precision_bev_05),
            r.verified,
            r.labels,
            s.car_bev_r40_moderate,
            s.car_3d_r40_moderate,
            r.seconds
        ));
    }
    md.push_str("\n![AP by round](ap_by_round.png)\n");
    kitti::io::write_atomic(&out.join("report.md"), md.as_bytes())?;
    #[allow(clippy::print_stdout, reason = "the summary is the command's output")]
    {
        println!("{md}");
    }
    Ok(())
}
