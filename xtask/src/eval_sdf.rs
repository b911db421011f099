//! `cargo xtask eval-sdf`: how well the shape prior represents cars, in metres.
//!
//! - **train**: the decoded meshes of training shapes (their learned latents) against the true meshes.
//! - **held-out**: procedural cars the prior never saw (library indices from `train_shapes` on): a
//!   latent is fitted to 2,000 surface samples with 1 cm Gaussian noise, then decoded and compared.
//!
//! Distances are symmetric Chamfer distances in metres: 20,000 surface samples of each mesh, each
//! measured by its exact distance to the other mesh's surface, the two directional means averaged
//! (not squared). The decoded mesh is marching tetrahedra on a 64³ grid with its vertices projected
//! onto the zero set. A latent that decodes to no surface is counted in `empty_decodes` and left out
//! of the means (which are `null` if nothing decodes). Also draws a PNG grid of decoded shapes
//! and an interpolation between two latents.

use crate::train_sdf::SdfConfig;
use anyhow::Context;
use deepsdf::chamfer::mesh_chamfer_m;
use deepsdf::fit::{FitConfig, fit_latent};
use deepsdf::prior::ShapePrior;
use deepsdf::samples::{Normalisation, surface_samples};
use deepsdf::surface::decode_mesh;
use image::{Rgb, RgbImage};
use rand::{SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use sim::{ShapeLibrary, TriMesh};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The prior (default: data/weights/deepsdf.safetensors).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Training shapes to evaluate (evenly spread over the training set).
    #[arg(long, default_value_t = 16)]
    train_shapes: usize,
    /// Held-out shapes to fit and evaluate.
    #[arg(long, default_value_t = 16)]
    heldout_shapes: usize,
    /// Grid resolution of the decoded meshes (cells per axis over [−1, 1]³).
    #[arg(long, default_value_t = 64)]
    resolution: usize,
    /// The PNG grid of decoded shapes (default: next to the weights, `<stem>_shapes.png`).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Also write every evaluated decoded mesh (model frame, metres) as OBJ and PLY into this folder:
    /// `train_<index>.{obj,ply}`, `heldout_<index>.{obj,ply}`.
    #[arg(long)]
    meshes: Option<PathBuf>,
}

/// Noise of the held-out observations, m.
const OBSERVATION_NOISE_M: f64 = 0.01;
/// Observations per held-out shape.
const OBSERVATIONS: usize = 2000;
/// Surface samples per mesh for the Chamfer distance.
const CHAMFER_SAMPLES: usize = 20_000;

pub fn run(args: Args) -> anyhow::Result<()> {
    let weights = crate::repo_path(&args.weights, "data/weights/deepsdf.safetensors");
    let prior = ShapePrior::load(&weights)?;
    let config: SdfConfig = serde_json::from_value(prior.meta.training["config"].clone())
        .context("the weights' metadata lacks the training config")?;
    let library = ShapeLibrary::procedural(
        config.library.seed,
        config.library.train_shapes + args.heldout_shapes,
    );
    let n_train = prior.latents.len();
    let k = args.train_shapes.clamp(1, n_train);
    let train_ids: Vec<usize> = (0..k).map(|i| i * n_train / k).collect();

    if let Some(dir) = &args.meshes {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // `None`: the latent decodes to no surface at all (reported, not averaged).
    let chamfer =
        |z: &[f32], truth: &TriMesh, norm: &Normalisation, name: String| -> anyhow::Result<Option<f64>> {
            let decoded = decode_mesh(&prior.decoder, z, args.resolution)?;
            if decoded.triangles.is_empty() {
                return Ok(None);
            }
            let metres = norm.mesh_to_model_m(&decoded);
            if let Some(dir) = &args.meshes {
                sim::obj::write_obj(&metres, &dir.join(format!("{name}.obj")))?;
                sim::ply::write_ply(&metres, &dir.join(format!("{name}.ply")))?;
            }
            let seed = name
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
            Ok(Some(mesh_chamfer_m(&metres, truth, CHAMFER_SAMPLES, seed)?))
        };
    let train_d: Vec<Option<f64>> = train_ids
        .par_iter()
        .map(|&i| {
            let truth = library.shape(i).context("missing training shape")?;
            let norm = Normalisation::for_mesh(&truth, prior.meta.metres_per_unit)?;
            chamfer(&prior.latents[i], &truth, &norm, format!("train_{i:04}"))
        })
        .collect::<anyhow::Result<_>>()?;

    let heldout: Vec<(usize, Option<f64>, Vec<f32>)> = (0..args.heldout_shapes)
        .into_par_iter()
        .map(|j| {
            let i = config.library.train_shapes + j;
            let truth = library.shape(i).context("missing held-out shape")?;
            let norm = Normalisation::for_mesh(&truth, prior.meta.metres_per_unit)?;
            let (points, _) = surface_samples(&truth, OBSERVATIONS, 1000 + i as u64)?;
            let mut rng = StdRng::seed_from_u64(i as u64);
            let noise = Normal::new(0.0, OBSERVATION_NOISE_M)?;
            let obs: Vec<[f32; 3]> = points
                .iter()
                .map(|p| norm.to_unit(p.map(|v| v + noise.sample(&mut rng) as f32)))
                .collect();
            let fit = fit_latent(&prior.decoder, &obs, &prior.latents, &FitConfig::default())?;
            let d = chamfer(&fit.latent, &truth, &norm, format!("heldout_{i:04}"))?;
            Ok((i, d, fit.latent))
        })
        .collect::<anyhow::Result<_>>()?;

    let mean = |v: &[Option<f64>]| {
        let ok: Vec<f64> = v.iter().flatten().copied().collect();
        (!ok.is_empty()).then(|| ok.iter().sum::<f64>() / ok.len() as f64)
    };
    let heldout_d: Vec<Option<f64>> = heldout.iter().map(|h| h.1).collect();
    let empty = train_d.iter().chain(&heldout_d).filter(|d| d.is_none()).count();
    if empty > 0 {
        tracing::warn!("{empty} latents decode to no surface; they are left out of the means");
    }
    let json = serde_json::json!({
        "train_chamfer_m": mean(&train_d),
        "heldout_chamfer_m": mean(&heldout_d),
        "heldout_shapes": heldout.len(),
        "empty_decodes": empty,
        "train_shapes_evaluated": train_ids.len(),
        "train_chamfer_per_shape_m": train_d,
        "heldout_chamfer_per_shape_m": heldout_d,
        "latent_dim": prior.latent_dim(),
        "weights": weights,
    });
    let text = serde_json::to_string_pretty(&json)?;
    if let Some(path) = &args.json {
        kitti::io::write_atomic(path, format!("{text}\n").as_bytes())?;
    }
    let png = args.png.clone().unwrap_or_else(|| {
        weights.with_file_name(format!(
            "{}_shapes.png",
            weights
                .file_stem()
                .map_or("deepsdf".into(), |s| s.to_string_lossy())
        ))
    });
    draw_grid(&prior, &train_ids, &heldout, args.resolution.min(48), &png)?;
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(
        &mut stdout,
        format!("{text}\nshapes: {}\n", png.display()).as_bytes(),
    )?;
    Ok(())
}

/// Spherical interpolation between unit vectors.
fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let dot = a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>().clamp(-1.0, 1.0);
    let omega = dot.acos();
    if omega < 1e-4 {
        return a.to_vec();
    }
    let (sa, sb) = (
        ((1.0 - t) * omega).sin() / omega.sin(),
        (t * omega).sin() / omega.sin(),
    );
    a.iter().zip(b).map(|(x, y)| sa * x + sb * y).collect()
}

/// Draws decoded shapes: a row of training shapes, a row of held-out fits, a row interpolating
/// between two training latents.
fn draw_grid(
    prior: &ShapePrior,
    train_ids: &[usize],
    heldout: &[(usize, Option<f64>, Vec<f32>)],
    resolution: usize,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    const COLS: usize = 6;
    const TILE: (u32, u32) = (220, 140);
    let mut rows: Vec<Vec<Vec<f32>>> = Vec::new();
    rows.push(
        train_ids
            .iter()
            .take(COLS)
            .map(|&i| prior.latents[i].clone())
            .collect(),
    );
    rows.push(heldout.iter().take(COLS).map(|h| h.2.clone()).collect());
    if let (Some(&a), Some(&b)) = (train_ids.first(), train_ids.last()) {
        let (za, zb) = (&prior.latents[a], &prior.latents[b]);
        rows.push(
            (0..COLS)
                .map(|k| slerp(za, zb, k as f32 / (COLS - 1) as f32))
                .collect(),
        );
    }
    let tiles: Vec<Vec<RgbImage>> = rows
        .iter()
        .map(|row| {
            row.par_iter()
                .map(|z| Ok(render_tile(&decode_mesh(&prior.decoder, z, resolution)?, TILE)))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect::<anyhow::Result<_>>()?;
    let mut img = RgbImage::from_pixel(
        TILE.0 * COLS as u32,
        TILE.1 * tiles.len() as u32,
        Rgb([255, 255, 255]),
    );
    for (r, row) in tiles.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            image::imageops::overlay(
                &mut img,
                tile,
                (c as u32 * TILE.0) as i64,
                (r as u32 * TILE.1) as i64,
            );
        }
    }
    kitti::image::write_rgb_png(path, &img)?;
    Ok(())
}

/// A flat-shaded orthographic view (from the front-left, slightly above) of a canonical-units mesh.
fn render_tile(mesh: &TriMesh, (w, h): (u32, u32)) -> RgbImage {
    let mut img = RgbImage::from_pixel(w, h, Rgb([245, 245, 245]));
    let mut zbuf = vec![f32::INFINITY; (w * h) as usize];
    // View: rotate about y by 35°, then tilt down by 20°.
    let (sy, cy) = 35f32.to_radians().sin_cos();
    let (sx, cx) = 20f32.to_radians().sin_cos();
    let view = |p: &nalgebra::Point3<f32>| {
        let x = cy * p.x + sy * p.z;
        let z = -sy * p.x + cy * p.z;
        let y = cx * p.y - sx * z;
        let d = -(sx * p.y + cx * z); // distance along the viewing direction: smaller is nearer
        (x, y, d)
    };
    let scale = w.min(h * 2) as f32 * 0.45;
    let light = nalgebra::Vector3::new(0.4f32, 0.8, 0.45).normalize();
    for t in 0..mesh.triangles.len() {
        let n = mesh.normal(t);
        let shade = 0.25 + 0.75 * n.dot(&light).max(0.0);
        let colour = Rgb([
            (70.0 + 150.0 * shade) as u8,
            (80.0 + 140.0 * shade) as u8,
            (120.0 + 130.0 * shade) as u8,
        ]);
        let c = mesh.corners(t).map(|p| {
            let (x, y, d) = view(&p);
            (w as f32 / 2.0 + x * scale, h as f32 * 0.6 - y * scale, d)
        });
        let (min_x, max_x) = (
            c.iter().map(|p| p.0).fold(f32::MAX, f32::min),
            c.iter().map(|p| p.0).fold(f32::MIN, f32::max),
        );
        let (min_y, max_y) = (
            c.iter().map(|p| p.1).fold(f32::MAX, f32::min),
            c.iter().map(|p| p.1).fold(f32::MIN, f32::max),
        );
        let area = (c[1].0 - c[0].0) * (c[2].1 - c[0].1) - (c[2].0 - c[0].0) * (c[1].1 - c[0].1);
        if area.abs() < 1e-9 {
            continue;
        }
        for py in (min_y.floor().max(0.0) as u32)..=(max_y.ceil().min(h as f32 - 1.0).max(0.0) as u32) {
            for px in (min_x.floor().max(0.0) as u32)..=(max_x.ceil().min(w as f32 - 1.0).max(0.0) as u32) {
                let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
                let e = |a: (f32, f32, f32), b: (f32, f32, f32)| {
                    (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0)
                };
                let (w0, w1, w2) = (e(c[1], c[2]) / area, e(c[2], c[0]) / area, e(c[0], c[1]) / area);
                if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                    continue;
                }
                let depth = w0 * c[0].2 + w1 * c[1].2 + w2 * c[2].2;
                let i = (py * w + px) as usize;
                if depth < zbuf[i] {
                    zbuf[i] = depth;
                    img.put_pixel(px, py, colour);
                }
            }
        }
    }
    img
}
