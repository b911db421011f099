//! `cargo xtask gen-data`: a synthetic KITTI-layout dataset (images, LIDAR, labels, instance and
//! depth maps, per-object shapes and poses, simulated detections and monocular depth). The same
//! arguments give byte-identical files; an interrupted run resumes where it stopped.

use anyhow::{Context, bail};
use rayon::prelude::*;
use sim::dataset::{DatasetSpec, LibrarySpec};
use sim::frame::{FrameConfig, frame_seed, generate_frame};
use sim::{Domain, ShapeLibrary};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Seed of the default procedural car library.
pub const DEFAULT_LIBRARY_SEED: u64 = 2020;
/// Size of the default procedural car library.
pub const DEFAULT_LIBRARY_SIZE: usize = 1000;

#[derive(clap::Args)]
pub struct Args {
    /// Output folder (KITTI layout). Default: `data/synthetic` in the repository.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Number of frames.
    #[arg(long, default_value_t = 100)]
    frames: usize,
    /// Dataset seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Visual domain of the images: `clean` (flat CAD-like renders) or `target` (varied, noisy).
    #[arg(long, default_value = "target")]
    domain: Domain,
    /// A folder of OBJ car meshes (metres, +y up, +z forward) to use instead of procedural cars.
    #[arg(long)]
    car_models: Option<PathBuf>,
    /// Seed of the procedural car library.
    #[arg(long, default_value_t = DEFAULT_LIBRARY_SEED)]
    library_seed: u64,
    /// Number of procedural car shapes.
    #[arg(long, default_value_t = DEFAULT_LIBRARY_SIZE)]
    library_size: usize,
    /// A TOML file overriding generator settings (see `configs/sim.toml`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replace a dataset made with other settings instead of refusing.
    #[arg(long)]
    overwrite: bool,
}

/// Loads the generator settings: defaults, overridden by `path`, domain from the command line.
pub fn load_config(path: Option<&Path>, domain: Domain) -> anyhow::Result<FrameConfig> {
    let mut config = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("{}: invalid generator settings", p.display()))?
        }
        None => FrameConfig::default(),
    };
    config.domain = domain;
    Ok(config)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::root().join("data/synthetic"));
    let config = load_config(args.config.as_deref(), args.domain)?;
    let (library, library_spec) = match &args.car_models {
        Some(dir) => {
            let lib =
                ShapeLibrary::from_obj_dir(dir).with_context(|| format!("loading {}", dir.display()))?;
            let names = (0..lib.len()).filter_map(|i| lib.name(i)).collect();
            let spec = LibrarySpec::ObjDir {
                path: dir.clone(),
                names,
            };
            (lib, spec)
        }
        None => (
            ShapeLibrary::procedural(args.library_seed, args.library_size),
            LibrarySpec::Procedural {
                seed: args.library_seed,
                count: args.library_size,
            },
        ),
    };
    let spec = DatasetSpec {
        generator: format!("sim {}", env!("CARGO_PKG_VERSION")),
        seed: args.seed,
        frames: args.frames,
        library: library_spec,
        config,
    };
    generate(&out, &spec, &library, args.overwrite)
}

/// Generates (or completes) the dataset `spec` under `out`.
pub fn generate(
    out: &Path,
    spec: &DatasetSpec,
    library: &ShapeLibrary,
    overwrite: bool,
) -> anyhow::Result<()> {
    let spec_path = out.join("dataset.json");
    if spec_path.exists() {
        let existing = sim::dataset::read_spec(out);
        let same_but_frames = existing.as_ref().is_ok_and(|e| {
            DatasetSpec {
                frames: spec.frames,
                ..e.clone()
            } == *spec
        });
        if !same_but_frames {
            if !overwrite {
                bail!(
                    "{} holds a dataset made with other settings; choose another --out or pass --overwrite",
                    out.display()
                );
            }
            for folder in ["training", "ImageSets"] {
                let p = out.join(folder);
                if p.exists() {
                    std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
                }
            }
        }
    }
    sim::dataset::create_layout(out)?;
    sim::dataset::write_json(&spec_path, spec)?;

    let todo: Vec<usize> = (0..spec.frames)
        .filter(|&i| !sim::dataset::frame_complete(out, &sim::dataset::frame_id(i)))
        .collect();
    let skipped = spec.frames - todo.len();
    if skipped > 0 {
        tracing::info!("{skipped} frames already complete in {}, resuming", out.display());
    }
    let bar = crate::progress_bar(todo.len(), "gen-data", "frames ({per_sec}, eta {eta})");
    let start = Instant::now();
    let results: Vec<(String, anyhow::Result<FrameStats>)> = todo
        .par_iter()
        .map(|&i| {
            let id = sim::dataset::frame_id(i);
            let _span = tracing::info_span!("frame", id = %id).entered();
            let seed = frame_seed(spec.seed, i as u64);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                generate_frame(library, &spec.config, seed)
            }))
            .map_err(|_| anyhow::anyhow!("frame generation panicked"))
            .and_then(|frame| {
                sim::dataset::write_frame(out, &id, seed, &frame)?;
                Ok(FrameStats::of(&frame))
            });
            bar.inc(1);
            (id, result)
        })
        .collect();
    bar.finish_and_clear();
    sim::dataset::write_splits(out, spec.seed, spec.frames)?;

    let elapsed = start.elapsed().as_secs_f64();
    let mut total = FrameStats::default();
    let mut failures = Vec::new();
    for (id, r) in results {
        match r {
            Ok(s) => total.add(&s),
            Err(e) => failures.push(format!("frame {id}: {e:#}")),
        }
    }
    tracing::info!(
        "wrote {} frames to {} in {elapsed:.1} s ({:.2} frames/s): {} Car, {} Van, {} Pedestrian, {} Cyclist, {} DontCare labels, {:.0} LIDAR points per frame",
        total.frames,
        out.display(),
        total.frames as f64 / elapsed.max(1e-9),
        total.cars,
        total.vans,
        total.pedestrians,
        total.cyclists,
        total.dont_care,
        total.points as f64 / total.frames.max(1) as f64,
    );
    if !failures.is_empty() {
        bail!("{} frames failed:\n{}", failures.len(), failures.join("\n"));
    }
    Ok(())
}

#[derive(Default)]
struct FrameStats {
    frames: usize,
    cars: usize,
    vans: usize,
    pedestrians: usize,
    cyclists: usize,
    dont_care: usize,
    points: usize,
}

impl FrameStats {
    fn of(frame: &sim::frame::Frame) -> Self {
        let count = |k: &str| frame.labels.iter().filter(|l| l.kind.as_str() == k).count();
        FrameStats {
            frames: 1,
            cars: count("Car"),
            vans: count("Van"),
            pedestrians: count("Pedestrian"),
            cyclists: count("Cyclist"),
            dont_care: count("DontCare"),
            points: frame.scan.points.len(),
        }
    }

    fn add(&mut self, o: &FrameStats) {
        self.frames += o.frames;
        self.cars += o.cars;
        self.vans += o.vans;
        self.pedestrians += o.pedestrians;
        self.cyclists += o.cyclists;
        self.dont_care += o.dont_care;
        self.points += o.points;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_holds_the_defaults() {
        let path = crate::root().join("configs/sim.toml");
        let config = load_config(Some(&path), Domain::default()).unwrap();
        assert_eq!(config, FrameConfig::default());
    }

    #[test]
    fn a_partial_config_overrides_only_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[lidar]\nazimuth_step_deg = 0.18\n").unwrap();
        let config = load_config(Some(&path), Domain::Clean).unwrap();
        assert_eq!(config.lidar.azimuth_step_deg, 0.18);
        assert_eq!(
            config.lidar.beam_elevations_deg,
            FrameConfig::default().lidar.beam_elevations_deg
        );
        assert_eq!(config.domain, Domain::Clean);
        std::fs::write(&path, "[lidar]\nazimuth_step_deg = \"wide\"\n").unwrap();
        let err = load_config(Some(&path), Domain::Clean).unwrap_err();
        assert!(format!("{err:#}").contains("c.toml"), "{err:#}");
    }
}
