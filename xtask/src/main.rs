//! `cargo xtask`: the project's one entry point. One module per subcommand; paths default to the
//! repository root (found from `CARGO_MANIFEST_DIR`), so the commands work from any directory.

mod autolabel;
mod autolabel_viz;
mod curriculum;
mod draw;
mod eval;
mod eval_css;
mod eval_refine;
mod eval_sdf;
mod gen_data;
mod gen_eval_set;
mod make_detections;
mod plot;
mod show_frame;
mod train_css;
mod train_refine;
mod train_sdf;
mod train_texture;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "autolabel: 3D labels from 2D detections, LIDAR and images"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Autolabel(autolabel::Args),
    /// KITTI 3D object evaluation (official devkit protocol): AP R11/R40 for 2D, AOS, BEV and 3D.
    Eval(eval::Args),
    /// Writes a seeded random KITTI label set (ground truth + noisy scored detections), e.g. to compare
    /// `cargo xtask eval` with the official C++ devkit.
    GenEvalSet(gen_eval_set::Args),
    /// Generates a synthetic KITTI-layout dataset: images, LIDAR, labels, instance and depth maps,
    /// shapes and poses, simulated 2D detections and monocular depth.
    GenData(gen_data::Args),
    /// Writes detection files (score 1.0, masks from instance_2 when present) from the true 2D boxes of
    /// label_2: for real KITTI frames, and the oracle row of the benchmarks.
    MakeDetections(make_detections::Args),
    /// Draws one KITTI-layout frame as a PNG to look at: the camera image with projected LIDAR points,
    /// 3D label boxes, DontCare regions and 2D detections, over a bird's-eye view of points and boxes.
    ShowFrame(show_frame::Args),
    /// Trains the DeepSDF shape prior on the car library → data/weights/deepsdf.safetensors.
    TrainSdf(train_sdf::Args),
    /// Evaluates the shape prior: Chamfer distance of training and held-out cars, in metres.
    EvalSdf(eval_sdf::Args),
    /// Trains the CSS network (NOCS, mask, shape latent) on synthetic crops → data/weights/css.safetensors.
    TrainCss(train_css::Args),
    /// Evaluates the CSS network on held-out synthetic crops: mask IoU, NOCS error, latent Chamfer.
    EvalCss(eval_css::Args),
    /// The self-improving loop: autolabel unlabelled target-domain frames, accept verified labels
    /// easy to hard, fine-tune the CSS network on them, round after round → <out>/rounds.json.
    Curriculum(curriculum::Args),
    /// Trains the learned refinement's correspondence network on synthetic crops →
    /// data/weights/refine.safetensors.
    TrainRefine(train_refine::Args),
    /// Evaluates the learned refinement on held-out synthetic cars from perturbed starts, against the
    /// hand-crafted render-and-compare refinement: rotation and translation errors before and after.
    EvalRefine(eval_refine::Args),
    /// Fits the monocular mode's material atlas on the car library → data/weights/texture.json.
    TrainTexture(train_texture::Args),
}

/// A progress bar: `{spinner} <label> [elapsed] [bar] pos/len <tail>` (tail in indicatif's template
/// syntax, e.g. `"steps, loss {msg} (eta {eta})"`).
pub fn progress_bar(len: usize, label: &str, tail: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {label} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {tail}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `path` if given, else `default` relative to the repository root (the commands' default files).
pub fn repo_path(path: &Option<PathBuf>, default: &str) -> PathBuf {
    path.clone().unwrap_or_else(|| root().join(default))
}

/// A TOML settings file as `T` (every key optional where `T` has serde defaults); `what` names the
/// settings in the error ("CSS settings").
pub fn load_toml<T: serde::de::DeserializeOwned>(path: &std::path::Path, what: &str) -> anyhow::Result<T> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: invalid {what}", path.display()))
}

/// The mean of `f` over the last `n` entries of a training history.
pub fn mean_of_last<T>(history: &[T], n: usize, f: impl Fn(&T) -> f32) -> f64 {
    let tail = &history[history.len().saturating_sub(n)..];
    tail.iter().map(|x| f64::from(f(x))).sum::<f64>() / tail.len().max(1) as f64
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Autolabel(args) => autolabel::run(args),
        Command::Eval(args) => eval::run(args),
        Command::GenEvalSet(args) => gen_eval_set::run(args),
        Command::GenData(args) => gen_data::run(args),
        Command::MakeDetections(args) => make_detections::run(args),
        Command::ShowFrame(args) => show_frame::run(args),
        Command::TrainSdf(args) => train_sdf::run(args),
        Command::EvalSdf(args) => eval_sdf::run(args),
        Command::TrainCss(args) => train_css::run(args),
        Command::EvalCss(args) => eval_css::run(args),
        Command::Curriculum(args) => curriculum::run(args),
        Command::TrainTexture(args) => train_texture::run(args),
        Command::TrainRefine(args) => train_refine::run(args),
        Command::EvalRefine(args) => eval_refine::run(args),
    }
}
