//! Latent fitting: the code whose shape best explains partial, noisy surface observations.
//!
//! Observed points (canonical units) should lie on the decoded zero set, so the fit minimises the
//! robust mean |f(ẑ, xᵢ)| over the code c (ẑ = c/|c|) with Adam, starting from the best of several
//! training latents (the loss is not convex in c), the decoder's weights fixed. Gradients come from
//! the plain-Rust backward pass of [`crate::fast`], chained through the normalisation.

use crate::decoder::{Decoder, normalised};
use crate::error::{DeepSdfError, Result};
use crate::fast::FastDecoder;
use serde::{Deserialize, Serialize};

/// Settings of [`fit_latent`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FitConfig {
    /// Adam steps.
    pub iterations: usize,
    /// Adam learning rate on the raw code.
    pub lr: f64,
    /// How many of the candidate codes (evenly spread over the list) are scored to pick the start.
    pub candidates: usize,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            iterations: 150,
            lr: 0.02,
            candidates: 32,
        }
    }
}

/// The result of a fit.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// The fitted unit code.
    pub latent: Vec<f32>,
    /// Mean |f| over the observations at the start (canonical units).
    pub initial_residual: f64,
    /// Mean |f| at the end.
    pub final_residual: f64,
}

fn mean_abs(fast: &FastDecoder, latent: &[f32], points: &[[f32; 3]]) -> f64 {
    let f = fast.eval(&normalised(latent), points);
    f.iter().map(|v| v.abs() as f64).sum::<f64>() / f.len().max(1) as f64
}

/// Fits a code to `observations` (canonical units), starting from the best of `starts` (e.g. the
/// training latents).
pub fn fit_latent(
    decoder: &Decoder,
    observations: &[[f32; 3]],
    starts: &[Vec<f32>],
    config: &FitConfig,
) -> Result<Fit> {
    if observations.is_empty() || starts.is_empty() {
        return Err(DeepSdfError::Empty(
            "latent fitting needs observations and at least one starting code".into(),
        ));
    }
    let dim = decoder.config.latent_dim;
    let fast = FastDecoder::new(decoder)?;
    let k = config.candidates.clamp(1, starts.len());
    let mut best: Option<(f64, &Vec<f32>)> = None;
    for i in 0..k {
        let start = &starts[i * starts.len() / k];
        let r = mean_abs(&fast, start, observations);
        if best.is_none_or(|(b, _)| r < b) {
            best = Some((r, start));
        }
    }
    let Some((initial_residual, start)) = best else {
        return Err(DeepSdfError::Empty("no starting code".into()));
    };
    // Adam on the raw code, with the gradient of mean |f| from the plain-Rust backward pass.
    let n = observations.len() as f32;
    let mut code = normalised(start);
    let (mut m, mut v) = (vec![0.0f32; dim], vec![0.0f32; dim]);
    let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    for t in 1..=config.iterations {
        let unit = normalised(&code);
        let norm = code.iter().map(|c| c * c).sum::<f32>().sqrt().max(1e-12);
        let (f, g) = fast.eval_with_gradient(&unit, observations);
        let mut g_unit = vec![0.0f32; dim];
        for (fi, gi) in f.iter().zip(&g) {
            let s = fi.signum() / n;
            for k in 0..dim {
                g_unit[k] += s * gi[k];
            }
        }
        let along: f32 = g_unit.iter().zip(&unit).map(|(a, b)| a * b).sum();
        for k in 0..dim {
            let grad = (g_unit[k] - along * unit[k]) / norm;
            m[k] = beta1 * m[k] + (1.0 - beta1) * grad;
            v[k] = beta2 * v[k] + (1.0 - beta2) * grad * grad;
            let m_hat = m[k] / (1.0 - beta1.powi(t as i32));
            let v_hat = v[k] / (1.0 - beta2.powi(t as i32));
            code[k] -= config.lr as f32 * m_hat / (v_hat.sqrt() + eps);
        }
    }
    let latent = normalised(&code);
    let final_residual = mean_abs(&fast, &latent, observations);
    // Adam may wander; never return something worse than the start.
    if final_residual > initial_residual {
        return Ok(Fit {
            latent: normalised(start),
            initial_residual,
            final_residual: initial_residual,
        });
    }
    Ok(Fit {
        latent,
        initial_residual,
        final_residual,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::DecoderConfig;
    use crate::samples::SdfSamples;
    use crate::train::{TrainConfig, train};
    use candle_core::Device;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    fn sphere_samples(r: f32, rng: &mut StdRng) -> SdfSamples {
        let mut s = SdfSamples::default();
        for _ in 0..3000 {
            let p = [0; 3].map(|_| rng.random_range(-1.0f32..1.0));
            s.points.push(p);
            s.sdf.push((p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() - r);
        }
        s
    }

    #[test]
    fn fits_the_size_of_a_partially_seen_sphere() {
        let mut rng = StdRng::seed_from_u64(5);
        let radii = [0.3f32, 0.45, 0.6, 0.75];
        let shapes: Vec<SdfSamples> = radii.iter().map(|&r| sphere_samples(r, &mut rng)).collect();
        let config = TrainConfig {
            decoder: DecoderConfig {
                latent_dim: 3,
                width: 32,
                depth: 4,
            },
            steps: 1500,
            shapes_per_batch: 4,
            points_per_shape: 256,
            lr_decoder: 5e-3,
            ..Default::default()
        };
        let t = train(&shapes, &config, |_, _| {}).unwrap();
        // Half a sphere of radius 0.5 (not a training shape), with noise.
        let obs: Vec<[f32; 3]> = (0..400)
            .map(|_| {
                let mut d = [0; 3].map(|_| rng.random_range(-1.0f32..1.0));
                d[0] = d[0].abs();
                let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt().max(1e-3);
                d.map(|v| v / n * (0.5 + rng.random_range(-0.01f32..0.01)))
            })
            .collect();
        // Start from the wrong sizes only.
        let starts = vec![t.latents[0].clone(), t.latents[3].clone()];
        let fit = fit_latent(&t.decoder, &obs, &starts, &FitConfig::default()).unwrap();
        assert!(fit.final_residual < fit.initial_residual, "{fit:?}");
        let xs: Vec<[f32; 3]> = (0..=100).map(|i| [0.0, 0.0, i as f32 / 100.0]).collect();
        let f = t.decoder.eval(&fit.latent, &xs).unwrap();
        let radius = f.iter().position(|&v| v > 0.0).unwrap() as f32 / 100.0;
        assert!((radius - 0.5).abs() < 0.07, "fitted radius {radius}");
    }

    #[test]
    fn needs_observations_and_starts() {
        let d = Decoder::new(DecoderConfig::default(), 0, &Device::Cpu).unwrap();
        assert!(fit_latent(&d, &[], &[vec![1.0; 8]], &FitConfig::default()).is_err());
        assert!(fit_latent(&d, &[[0.0; 3]], &[], &FitConfig::default()).is_err());
    }
}
