//! Auto-decoder training: the decoder's weights and one latent code per shape are optimised together
//! (DeepSDF) on SDF samples, with a clamped L1 loss, a code regulariser and a hypersphere uniformity
//! term (MonoDR).
//!
//! Loss per step, over a batch of `shapes_per_batch` shapes × `points_per_shape` samples:
//!
//! ```text
//! L = mean |clamp_s(f(ẑ, x)) − clamp(s, ±δ)|                         clamped L1 (δ = clamp_units)
//!   + code_reg_weight · mean (|c| − 1)²                                raw codes stay near the sphere
//!   + uniformity_weight · log mean_{i≠j} exp(−t · |ẑᵢ − ẑⱼ|²)           codes spread over the sphere
//! ```
//!
//! where `clamp_s` clamps the prediction at ±δ only where the target is saturated on that side,
//! `c` is a shape's raw code and `ẑ = c / |c|` what the decoder sees. Everything is seeded:
//! weights and codes from our own generator (candle's CPU generator cannot be seeded), batches from
//! a `StdRng`, so the same config and samples give the same weights.

use crate::decoder::{Decoder, DecoderConfig};
use crate::error::{DeepSdfError, Result};
use crate::samples::SdfSamples;
use candle_core::{D, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// Training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Decoder size.
    pub decoder: DecoderConfig,
    /// Seed of the weights, codes and batches.
    pub seed: u64,
    /// Optimisation steps.
    pub steps: usize,
    /// Shapes per batch.
    pub shapes_per_batch: usize,
    /// Samples per shape per batch.
    pub points_per_shape: usize,
    /// Adam learning rate of the decoder weights (first half of the steps; then halved at 50 % and
    /// again at 75 %).
    pub lr_decoder: f64,
    /// Adam learning rate of the codes (same schedule).
    pub lr_latent: f64,
    /// δ of the clamped L1 loss, canonical units.
    pub clamp_units: f32,
    /// Weight of the code regulariser.
    pub code_reg_weight: f64,
    /// Weight of the uniformity term.
    pub uniformity_weight: f64,
    /// Temperature t of the uniformity term.
    pub uniformity_t: f64,
    /// Standard deviation of the initial raw codes around a random unit vector's direction.
    pub code_init_sigma: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            decoder: DecoderConfig::default(),
            seed: 0,
            steps: 8000,
            shapes_per_batch: 16,
            points_per_shape: 512,
            lr_decoder: 2e-3,
            lr_latent: 5e-3,
            clamp_units: 0.1,
            code_reg_weight: 1e-3,
            uniformity_weight: 1e-3,
            uniformity_t: 2.0,
            code_init_sigma: 1.0,
        }
    }
}

/// One logged point of the loss curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Step (0-based).
    pub step: usize,
    /// Total loss.
    pub loss: f64,
    /// Clamped L1 part (canonical units).
    pub sdf_l1: f64,
}

/// The result of training.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The decoder.
    pub decoder: Decoder,
    /// One unit latent per training shape.
    pub latents: Vec<Vec<f32>>,
    /// Loss every `log_every` steps.
    pub losses: Vec<LossPoint>,
}

/// The learning-rate factor at `step` of `steps`: 1, then ½ from 50 %, ¼ from 75 %.
fn lr_factor(step: usize, steps: usize) -> f64 {
    if step * 4 >= steps * 3 {
        0.25
    } else if step * 2 >= steps {
        0.5
    } else {
        1.0
    }
}

/// Trains the auto-decoder on `shapes` (one sample set per shape). `progress(step, loss)` is called
/// after every step (for a progress bar); the loss curve keeps every 10th step.
pub fn train(
    shapes: &[SdfSamples],
    config: &TrainConfig,
    mut progress: impl FnMut(usize, f64),
) -> Result<Trained> {
    if shapes.is_empty()
        || shapes
            .iter()
            .any(|s| s.points.is_empty() || s.points.len() != s.sdf.len())
    {
        return Err(DeepSdfError::Empty(
            "training needs at least one shape, each with as many SDF values as points".into(),
        ));
    }
    let device = Device::Cpu;
    let cfg = &config.decoder;
    let latent_dim = cfg.latent_dim;
    let decoder = Decoder::new(cfg.clone(), config.seed, &device)?;
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0xC0DE);
    let normal = rand_distr::Normal::new(0.0, config.code_init_sigma.max(1e-6))
        .map_err(|e| DeepSdfError::Empty(format!("bad code_init_sigma: {e}")))?;
    let init: Vec<f32> = (0..shapes.len() * latent_dim)
        .map(|_| rand_distr::Distribution::sample(&normal, &mut rng) as f32)
        .collect();
    let codes = Var::from_tensor(&Tensor::from_vec(init, (shapes.len(), latent_dim), &device)?)?;

    let mut opt_decoder = AdamW::new(
        decoder.vars(),
        ParamsAdamW {
            lr: config.lr_decoder,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut opt_codes = AdamW::new(
        vec![codes.clone()],
        ParamsAdamW {
            lr: config.lr_latent,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;

    let b = config.shapes_per_batch.clamp(1, shapes.len());
    let p = config.points_per_shape.max(1);
    let mut order: Vec<usize> = (0..shapes.len()).collect();
    let mut cursor = order.len();
    let mut losses = Vec::new();
    for step in 0..config.steps {
        let factor = lr_factor(step, config.steps);
        opt_decoder.set_learning_rate(config.lr_decoder * factor);
        opt_codes.set_learning_rate(config.lr_latent * factor);

        // Next batch of shapes (a fresh permutation whenever one is used up), random samples of each.
        let mut batch = Vec::with_capacity(b);
        while batch.len() < b {
            if cursor >= order.len() {
                order.shuffle(&mut rng);
                cursor = 0;
            }
            batch.push(order[cursor]);
            cursor += 1;
        }
        let mut xyz = Vec::with_capacity(b * p * 3);
        let mut target = Vec::with_capacity(b * p);
        let (mut hi, mut lo) = (Vec::with_capacity(b * p), Vec::with_capacity(b * p));
        let delta = config.clamp_units;
        for &s in &batch {
            let set = &shapes[s];
            for _ in 0..p {
                let i = rng.random_range(0..set.points.len());
                xyz.extend_from_slice(&set.points[i]);
                let t = set.sdf[i].clamp(-delta, delta);
                target.push(t);
                hi.push(if t >= delta { delta } else { f32::MAX });
                lo.push(if t <= -delta { -delta } else { f32::MIN });
            }
        }
        let hi = Tensor::from_vec(hi, b * p, &device)?;
        let lo = Tensor::from_vec(lo, b * p, &device)?;
        let xyz = Tensor::from_vec(xyz, (b * p, 3), &device)?;
        let target = Tensor::from_vec(target, b * p, &device)?;
        let idx = Tensor::from_vec(batch.iter().map(|&i| i as u32).collect::<Vec<_>>(), b, &device)?;

        let raw = codes.as_tensor().index_select(&idx, 0)?; // [b, L]
        let norm = raw.sqr()?.sum_keepdim(1)?.sqrt()?; // [b, 1]
        let unit = raw.broadcast_div(&norm)?;
        let z = unit
            .unsqueeze(1)?
            .broadcast_as((b, p, latent_dim))?
            .reshape((b * p, latent_dim))?;
        let input = Tensor::cat(&[&z, &xyz], D::Minus1)?;
        // Clamp the prediction only on the side where the target is saturated, so that a prediction
        // beyond +δ for a point inside still gets a gradient (clamping both, as DeepSDF does, can
        // stall when most samples are outside).
        let f = decoder.forward(&input)?.minimum(&hi)?.maximum(&lo)?;
        let sdf_l1 = (f - &target)?.abs()?.mean_all()?;
        let reg = (norm - 1.0)?.sqr()?.mean_all()?;
        let mut loss = (&sdf_l1 + (reg * config.code_reg_weight)?)?;
        if b > 1 && config.uniformity_weight > 0.0 {
            let gram = unit.matmul(&unit.t()?)?; // [b, b]
            let d2 = ((gram * -2.0)? + 2.0)?;
            let e = (d2 * -config.uniformity_t)?.exp()?;
            let off_diagonal = (e.sum_all()? - b as f64)?; // the diagonal is exp(0) = 1
            let uniformity = (off_diagonal / (b * (b - 1)) as f64)?.log()?;
            loss = (loss + (uniformity * config.uniformity_weight)?)?;
        }
        let grads = loss.backward()?;
        opt_decoder.step(&grads)?;
        opt_codes.step(&grads)?;

        let value = loss.to_scalar::<f32>()? as f64;
        if step % 10 == 0 || step + 1 == config.steps {
            losses.push(LossPoint {
                step,
                loss: value,
                sdf_l1: sdf_l1.to_scalar::<f32>()? as f64,
            });
        }
        progress(step, value);
    }

    let raw: Vec<Vec<f32>> = codes.as_tensor().to_vec2()?;
    let latents = raw.iter().map(|c| crate::decoder::normalised(c)).collect();
    Ok(Trained {
        decoder,
        latents,
        losses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples of spheres of several radii (units), near the surface and uniform.
    fn spheres(radii: &[f32], seed: u64) -> Vec<SdfSamples> {
        let mut rng = StdRng::seed_from_u64(seed);
        radii
            .iter()
            .map(|&r| {
                let mut points = Vec::new();
                let mut sdf = Vec::new();
                for _ in 0..2000 {
                    let p = [
                        rng.random_range(-1.0f32..1.0),
                        rng.random_range(-1.0f32..1.0),
                        rng.random_range(-1.0f32..1.0),
                    ];
                    let d = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() - r;
                    points.push(p);
                    sdf.push(d);
                }
                SdfSamples { points, sdf }
            })
            .collect()
    }

    fn config(steps: usize) -> TrainConfig {
        TrainConfig {
            decoder: DecoderConfig {
                latent_dim: 3,
                width: 32,
                depth: 4,
            },
            steps,
            shapes_per_batch: 3,
            points_per_shape: 256,
            ..Default::default()
        }
    }

    #[test]
    fn learns_spheres_of_different_sizes() {
        let set = spheres(&[0.3, 0.5, 0.7], 1);
        let trained = train(
            &set,
            &TrainConfig {
                lr_decoder: 5e-3,
                ..config(1500)
            },
            |_, _| {},
        )
        .unwrap();
        let first = trained.losses.first().unwrap().sdf_l1;
        let last = trained.losses.last().unwrap().sdf_l1;
        assert!(last < 0.25 * first, "loss {first} → {last}");
        // Each latent decodes its own sphere: the zero crossing along +x lies near its radius.
        for (latent, r) in trained.latents.iter().zip([0.3f32, 0.5, 0.7]) {
            let xs: Vec<[f32; 3]> = (0..=100).map(|i| [i as f32 / 100.0, 0.0, 0.0]).collect();
            let f = trained.decoder.eval(latent, &xs).unwrap();
            let crossing = f.iter().position(|&v| v > 0.0).unwrap() as f32 / 100.0;
            assert!((crossing - r).abs() < 0.06, "radius {r}: crossing at {crossing}");
            assert!((latent.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn training_is_deterministic() {
        let set = spheres(&[0.4, 0.6], 2);
        let a = train(&set, &config(20), |_, _| {}).unwrap();
        let b = train(&set, &config(20), |_, _| {}).unwrap();
        assert_eq!(a.latents, b.latents);
        assert_eq!(a.losses, b.losses);
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(matches!(
            train(&[], &config(1), |_, _| {}),
            Err(DeepSdfError::Empty(_))
        ));
    }
}
