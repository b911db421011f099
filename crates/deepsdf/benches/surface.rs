//! Surface extraction speed with the committed prior (`data/weights/deepsdf.safetensors`, or the
//! file named by `DEEPSDF_WEIGHTS`): points with normals, and points with their latent Jacobian.
#![allow(clippy::unwrap_used, reason = "bench set-up")]

use criterion::{Criterion, criterion_group, criterion_main};
use deepsdf::ShapePrior;
use deepsdf::surface::{SurfaceConfig, extract_surface};
use std::path::PathBuf;

fn bench_surface(c: &mut Criterion) {
    let path = std::env::var_os("DEEPSDF_WEIGHTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/weights/deepsdf.safetensors"),
        PathBuf::from,
    );
    let prior = ShapePrior::load(&path).unwrap();
    let z = prior.latents[0].clone();
    let config = SurfaceConfig::default();
    let n = extract_surface(&prior.decoder, &z, &config, false).unwrap().len();
    eprintln!("{} surface points per extraction", n);
    let mut g = c.benchmark_group("deepsdf");
    g.bench_function("extract_surface", |b| {
        b.iter(|| extract_surface(&prior.decoder, &z, &config, false).unwrap())
    });
    g.bench_function("extract_surface_with_jacobian", |b| {
        b.iter(|| extract_surface(&prior.decoder, &z, &config, true).unwrap())
    });
    // A denser extraction, ~3,000 points (the figure).
    let dense = SurfaceConfig {
        coarse_cells: 11,
        ..SurfaceConfig::default()
    };
    let n = extract_surface(&prior.decoder, &z, &dense, false).unwrap().len();
    eprintln!("{} surface points per dense extraction", n);
    g.bench_function("extract_surface_dense", |b| {
        b.iter(|| extract_surface(&prior.decoder, &z, &dense, false).unwrap())
    });
    g.bench_function("extract_surface_dense_with_jacobian", |b| {
        b.iter(|| extract_surface(&prior.decoder, &z, &dense, true).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_surface);
criterion_main!(benches);
