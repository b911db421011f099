//! `cargo xtask eval-css`: the CSS network on held-out synthetic crops (frames it never saw, either
//! domain): mask IoU, NOCS error inside the true mask, and the Chamfer distance between the shape
//! decoded from the predicted latent and the true mesh.

use anyhow::Context;
use css::CssModel;
use css::data::{AugmentConfig, augment, generate_crops};
use deepsdf::ShapePrior;
use deepsdf::chamfer::MeshSide;
use deepsdf::samples::Normalisation;
use deepsdf::surface::decode_mesh;
use rand::{SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use sim::frame::FrameConfig;
use sim::{Domain, ShapeLibrary};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The network (default: data/weights/css.safetensors).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The shape prior (default: data/weights/deepsdf.safetensors).
    #[arg(long)]
    prior: Option<PathBuf>,
    /// Visual domain of the evaluation frames.
    #[arg(long, default_value = "clean")]
    domain: Domain,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Frames to generate (their seeds never overlap the training frames').
    #[arg(long, default_value_t = 200)]
    frames: usize,
    /// Seed of the evaluation frames.
    #[arg(long, default_value_t = 9001)]
    seed: u64,
    /// Crops whose decoded shape is compared with the true mesh (evenly spread; 0: all).
    #[arg(long, default_value_t = 150)]
    chamfer_crops: usize,
    /// Also report two diagnostics of the latent: the predicted shape stretched to the true box
    /// (what is left once the size is right) and the best of the prior's own codes per crop (the
    /// floor of picking a training shape).
    #[arg(long)]
    oracles: bool,
    /// Average each crop's reading with the mirrored crop's (`CssModel::run_flip_averaged`).
    #[arg(long)]
    flip_average: bool,
    /// Score the network on its own training frames (the seed recorded in the weights, instead of
    /// `--seed`): a diagnostic of under- or overfitting, not a held-out result.
    #[arg(long)]
    training_frames: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let weights = crate::repo_path(&args.weights, "data/weights/css.safetensors");
    let prior_path = crate::repo_path(&args.prior, "data/weights/deepsdf.safetensors");
    let model = CssModel::load(&weights).with_context(|| format!("loading {}", weights.display()))?;
    let prior = ShapePrior::load(&prior_path).with_context(|| format!("loading {}", prior_path.display()))?;
    let (data, trained_seed) = match model.meta.as_ref().and_then(|m| m.training.get("config")) {
        Some(c) => (
            serde_json::from_value::<css::config::CssConfig>(c.clone())
                .unwrap_or_default()
                .data,
            c.pointer("/data/seed").and_then(|s| s.as_u64()),
        ),
        None => (css::config::DataConfig::default(), None),
    };
    let seed = if args.training_frames {
        trained_seed.context("--training-frames: the weights do not record their training seed")?
    } else {
        anyhow::ensure!(
            trained_seed != Some(args.seed),
            "--seed {} is the training frames' seed: pick another (or --training-frames)",
            args.seed
        );
        args.seed
    };
    let library = ShapeLibrary::procedural(data.library_seed, data.library_size);
    let frame_config = FrameConfig {
        domain: args.domain,
        ..FrameConfig::default()
    };
    let crops = generate_crops(
        &library,
        &prior,
        &frame_config,
        seed,
        args.frames,
        &data.crop,
        false,
        &|_| (),
    )?;
    anyhow::ensure!(!crops.is_empty(), "no evaluation crops");
    let (s, t) = (model.input_size(), model.output_size());
    let samples: Vec<_> = crops
        .par_iter()
        .map(|c| augment(c, s, t, &AugmentConfig::none(), &mut StdRng::seed_from_u64(0)))
        .collect();
    let inputs: Vec<f32> = samples.iter().flat_map(|x| x.input.iter().copied()).collect();
    let started = std::time::Instant::now();
    let boxes: Vec<_> = samples.iter().map(|x| x.box_features).collect();
    let (nocs, mask, latents) = if args.flip_average {
        model.run_flip_averaged(&inputs, &boxes, samples.len())?
    } else {
        model.run(&inputs, &boxes, samples.len())?
    };
    let infer_ms = started.elapsed().as_secs_f64() * 1000.0 / samples.len() as f64;
    let l = model.net.config.latent_dim;
    let (mut ious, mut errs) = (Vec::new(), Vec::new());
    for (k, smp) in samples.iter().enumerate() {
        let (mut inter, mut union, mut err, mut count) = (0usize, 0usize, 0.0f64, 0usize);
        for p in 0..t * t {
            let truth = smp.mask[p] > 0.5;
            let pred = mask[k * t * t + p] > 0.5;
            inter += usize::from(truth && pred);
            union += usize::from(truth || pred);
            if truth {
                for c in 0..3 {
                    err += f64::from((nocs[k * 3 * t * t + c * t * t + p] - smp.nocs[c * t * t + p]).abs());
                }
                count += 3;
            }
        }
        ious.push(if union > 0 {
            inter as f64 / union as f64
        } else {
            1.0
        });
        if count > 0 {
            errs.push(err / count as f64);
        }
    }
    let step = if args.chamfer_crops == 0 {
        1
    } else {
        crops.len().div_ceil(args.chamfer_crops).max(1)
    };
    let picked: Vec<usize> = (0..crops.len()).step_by(step).collect();
    let mpu = prior.meta.metres_per_unit;
    // Baseline: the same crops all given one typical car, the medoid of the prior's unit codes (the
    // code nearest to all others), to show what the predicted latents add over "an average car".
    let units: Vec<Vec<f32>> = prior
        .latents
        .iter()
        .map(|z| deepsdf::decoder::normalised(z))
        .collect();
    let spread = |a: &Vec<f32>| -> f32 {
        units
            .iter()
            .map(|b| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>())
            .sum()
    };
    let typical_code = units
        .iter()
        .min_by(|a, b| spread(a).total_cmp(&spread(b)))
        .context("the prior has no latents")?;
    let typical_mesh = decode_mesh(&prior.decoder, typical_code, 32)?;
    // Diagnostics (`--oracles`): the prior's training shapes, sampled once, to find the nearest
    // to each true car (the argmax of the code-scoring head's targets).
    let prior_shapes = if args.oracles {
        Some(css::data::PriorShapes::new(
            &prior,
            &css::data::ShapeWeightConfig::default(),
        )?)
    } else {
        None
    };
    // Per picked crop: the predicted shape's Chamfer (NaN when it decodes to nothing), the typical
    // car's and, with `--oracles`, the diagnostics (size-aligned, nearest prior shape, NOCS fit).
    let per_crop: Vec<[f64; 5]> = picked
        .par_iter()
        .map(|&k| -> anyhow::Result<[f64; 5]> {
            let truth = library
                .shape(crops[k].shape_index)
                .context("missing library shape")?;
            let norm = Normalisation::for_mesh(&truth, mpu)?;
            // The true shape's side is built once for every comparison.
            let truth_side = MeshSide::new(&truth, 2000, k as u64)?;
            let chamfer_m = |mesh_model_m: &sim::TriMesh| -> anyhow::Result<f64> {
                if mesh_model_m.triangles.is_empty() {
                    return Ok(f64::NAN);
                }
                Ok(MeshSide::new(mesh_model_m, 2000, k as u64)?.chamfer_to(&truth_side))
            };
            let chamfer = |mesh_unit: &sim::TriMesh| chamfer_m(&norm.mesh_to_model_m(mesh_unit));
            let baseline = chamfer(&typical_mesh)?;
            let latent = &latents[k * l..(k + 1) * l];
            let decoded = decode_mesh(&prior.decoder, latent, 32)?;
            let predicted = chamfer(&decoded)?;
            let Some(shapes) = &prior_shapes else {
                return Ok([predicted, baseline, f64::NAN, f64::NAN, f64::NAN]);
            };
            // The predicted shape stretched to the true box.
            let mut stretched = norm.mesh_to_model_m(&decoded);
            if let (Some((lo, hi)), Some((dlo, dhi))) = (truth.bounds(), stretched.bounds()) {
                for v in &mut stretched.vertices {
                    for a in 0..3 {
                        let t = (v[a] - dlo[a]) / (dhi[a] - dlo[a]).max(1e-6);
                        v[a] = lo[a] + t * (hi[a] - lo[a]);
                    }
                }
            }
            // The nearest of the prior's training shapes.
            let weights = shapes.weights(&truth, 1)?;
            let nearest = (0..weights.len())
                .max_by(|&i, &j| weights[i].total_cmp(&weights[j]))
                .context("the prior has no shapes")?;
            // The code fitted to the predicted NOCS inside the predicted mask (the visible surface
            // in canonical units), started from the predicted code or a training code.
            let observations: Vec<[f32; 3]> = (0..t * t)
                .filter(|&p| mask[k * t * t + p] > 0.5)
                .map(|p| std::array::from_fn(|c| 2.0 * nocs[k * 3 * t * t + c * t * t + p] - 1.0))
                .collect();
            let nocs_fit = if observations.len() >= 10 {
                let mut starts = vec![latent.to_vec()];
                starts.extend(units.iter().cloned());
                let fit = deepsdf::fit::fit_latent(
                    &prior.decoder,
                    &observations,
                    &starts,
                    &deepsdf::fit::FitConfig {
                        candidates: starts.len(),
                        ..Default::default()
                    },
                )?;
                chamfer(&decode_mesh(&prior.decoder, &fit.latent, 32)?)?
            } else {
                f64::NAN
            };
            Ok([
                predicted,
                baseline,
                chamfer_m(&stretched)?,
                chamfer(&decode_mesh(&prior.decoder, &units[nearest], 32)?)?,
                nocs_fit,
            ])
        })
        .collect::<anyhow::Result<_>>()?;
    let column = |i: usize| -> Vec<f64> { per_crop.iter().map(|c| c[i]).collect() };
    let (chamfers, baseline) = (column(0), column(1));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let empty = chamfers.iter().filter(|d| d.is_nan()).count();
    let finite: Vec<f64> = chamfers.iter().copied().filter(|d| d.is_finite()).collect();
    let mut report = serde_json::json!({
        "mask_iou": mean(&ious),
        "nocs_err": mean(&errs),
        "latent_chamfer_m": mean(&finite),
        "crops": crops.len(),
        "domain": args.domain.name(),
        "frames": args.frames,
        "seed": seed,
        "training_frames": args.training_frames,
        "chamfer_crops": picked.len(),
        "typical_car_chamfer_m": mean(&baseline),
        "empty_decodes": empty,
        "inference_ms_per_crop_batch16": infer_ms,
        "weights": weights.display().to_string(),
        "flip_average": args.flip_average,
    });
    if args.oracles {
        let fin = |v: Vec<f64>| -> Vec<f64> { v.into_iter().filter(|d| d.is_finite()).collect() };
        report["oracle_size_aligned_chamfer_m"] = mean(&fin(column(2))).into();
        report["oracle_best_prior_code_chamfer_m"] = mean(&fin(column(3))).into();
        report["prior_codes"] = units.len().into();
        report["nocs_fitted_code_chamfer_m"] = mean(&fin(column(4))).into();
    }
    let text = serde_json::to_string_pretty(&report)?;
    #[allow(clippy::print_stdout, reason = "the JSON is the command's output")]
    {
        println!("{text}");
    }
    if let Some(p) = &args.json {
        kitti::io::write_atomic(p, format!("{text}\n").as_bytes())?;
    }
    Ok(())
}
