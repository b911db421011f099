//! `cargo xtask train-texture`: fits the monocular mode's material atlas (where paint, glass,
//! tyres and lamps sit on a car, `deepsdf::texture`) on the training shapes of the car library and
//! writes `data/weights/texture.json`. Seconds on two cores; the same seed gives the same file.

use anyhow::Context;
use deepsdf::texture::{AtlasConfig, MaterialAtlas};
use rayon::prelude::*;
use sim::ShapeLibrary;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Output file. Default: `data/weights/texture.json`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the surface samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Library shapes `0..N` (the shape prior's training shapes; default 400).
    #[arg(long, default_value_t = 400)]
    shapes: usize,
    /// Grid cells per axis over the canonical cube.
    #[arg(long, default_value_t = 16)]
    cells: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let start = Instant::now();
    let library = ShapeLibrary::procedural(
        crate::gen_data::DEFAULT_LIBRARY_SEED,
        crate::gen_data::DEFAULT_LIBRARY_SIZE,
    );
    let n = args.shapes.min(library.len());
    let meshes: Vec<sim::mesh::TriMesh> = (0..n).into_par_iter().filter_map(|i| library.shape(i)).collect();
    let config = AtlasConfig {
        cells: args.cells,
        seed: args.seed,
        ..AtlasConfig::default()
    };
    let atlas = MaterialAtlas::fit(&meshes, &config)?;
    let out = args
        .out
        .unwrap_or_else(|| crate::root().join("data/weights/texture.json"));
    atlas
        .save(&out)
        .with_context(|| format!("writing {}", out.display()))?;
    tracing::info!(
        "material atlas of {} shapes ({} cells per axis; frequencies body/window/wheel/light {:?}) in {:.1} s → {}",
        meshes.len(),
        atlas.cells,
        atlas.frequencies,
        start.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
