//! A simulated self-supervised monocular depth network (Monodepth-like): turns a frame's true dense
//! depth into the kind of depth map such a network predicts, with its characteristic errors, so that
//! later stages can be built and tested before a real network replaces this module.
//!
//! # Error model
//!
//! [`simulate_mono_depth`] applies, in this order (numbers are the [`MonoDepthModel::default`] ones):
//!
//! 1. **Dense output, capped range.** A network predicts every pixel: pixels without a true depth (sky,
//!    `0`) become [`max_depth_m`](MonoDepthModel::max_depth_m) = 80 m (the cap of the monodepth
//!    evaluation); every depth is clamped to `[min_depth_m, max_depth_m]` = [0.1, 80] m.
//! 2. **Smoothed depth edges.** The network's disparity (1 / depth) is blurred by two passes of a
//!    5 × 5 box filter (radius [`edge_blur_radius_px`](MonoDepthModel::edge_blur_radius_px) = 2; a
//!    9 px wide kernel with σ ≈ 2 px), so object boundaries bleed into the background over a few
//!    pixels. Blurring in disparity, as the network outputs it, makes near objects bleed further than
//!    far ones.
//! 3. **Small objects lose detail.** 20 % ([`detail_loss_weight`](MonoDepthModel::detail_loss_weight))
//!    of the disparity comes from a wide blur (two more box passes of radius
//!    [`detail_loss_radius_px`](MonoDepthModel::detail_loss_radius_px) = 8 px, σ ≈ 7 px): objects
//!    narrower than about 15 px (poles, distant pedestrians) are pulled toward their background, and
//!    every boundary has a faint halo about 15 px wide, like a network predicting at a fraction of the
//!    image resolution.
//! 4. **Per-frame scale bias.** Every depth is multiplied by one factor `exp(N(0, 0.05²))`
//!    ([`scale_log_sigma`](MonoDepthModel::scale_log_sigma)): a self-supervised network's metric
//!    scale is off by about 5 % per frame.
//! 5. **Range-dependent, spatially correlated relative error.** Log depth gets `σ_rel(d) · F(x, y)`
//!    with `σ_rel(d) = 0.02 + 0.0016 · d/m` (2 % at 0 m, 2.8 % at 5 m, 10 % at 50 m, 14.8 % at 80 m:
//!    [`rel_sigma_near`](MonoDepthModel::rel_sigma_near),
//!    [`rel_sigma_per_m`](MonoDepthModel::rel_sigma_per_m)) and `F` a smooth unit-variance random
//!    field with a correlation length of 96 px ([`field_cell_px`](MonoDepthModel::field_cell_px)):
//!    whole regions are too near or too far together, not pixel by pixel. With the frame's scale
//!    removed (median scaling, as in the monodepth evaluation) the relative error at 50 m has a σ of
//!    about 10 %, i.e. a median |error| of about 7 %.
//! 6. **Per-pixel noise.** Log depth gets i.i.d. `N(0, 0.01²)`
//!    ([`pixel_noise_sigma`](MonoDepthModel::pixel_noise_sigma)).
//!
//! All randomness comes from one `StdRng` seeded with the caller's seed: the same inputs and seed
//! give the same map. The blurs are separable running-sum box filters (O(1) per pixel whatever the
//! radius): a 1242 × 375 frame takes about 10 ms on one core in the dev profile.

use crate::random_field::smooth_field;
use kitti::image::{Border, DepthMap, box_blur};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Parameters of the simulated monocular depth network. [`Default`] gives the numbers of the module
/// documentation; a partial serde config keeps the defaults of the fields it omits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonoDepthModel {
    /// Largest predicted depth, m; sky and anything farther get this (default 80).
    pub max_depth_m: f64,
    /// Smallest predicted depth, m (default 0.1).
    pub min_depth_m: f64,
    /// σ of the log of the per-frame scale factor (default 0.05, i.e. about 5 %).
    pub scale_log_sigma: f64,
    /// σ of the correlated relative (log) depth error at 0 m (default 0.02).
    pub rel_sigma_near: f64,
    /// Growth of that σ per metre of depth, 1/m (default 0.0016: 10 % at 50 m).
    pub rel_sigma_per_m: f64,
    /// Lattice spacing (≈ correlation length) of the relative-error field, px (default 96).
    pub field_cell_px: f64,
    /// σ of the i.i.d. per-pixel log-depth noise (default 0.01).
    pub pixel_noise_sigma: f64,
    /// Radius of the two box passes that smooth depth edges, px (default 2).
    pub edge_blur_radius_px: usize,
    /// Radius of the two box passes of the detail-losing wide blur, px (default 8).
    pub detail_loss_radius_px: usize,
    /// Share of the wide blur in the predicted disparity, 0–1 (default 0.2).
    pub detail_loss_weight: f64,
}

impl Default for MonoDepthModel {
    fn default() -> Self {
        Self {
            max_depth_m: 80.0,
            min_depth_m: 0.1,
            scale_log_sigma: 0.05,
            rel_sigma_near: 0.02,
            rel_sigma_per_m: 0.0016,
            field_cell_px: 96.0,
            pixel_noise_sigma: 0.01,
            edge_blur_radius_px: 2,
            detail_loss_radius_px: 8,
            detail_loss_weight: 0.2,
        }
    }
}

impl MonoDepthModel {
    /// σ of the correlated relative (log) error at depth `depth_m`.
    pub fn rel_sigma(&self, depth_m: f64) -> f64 {
        self.rel_sigma_near + self.rel_sigma_per_m * depth_m
    }
}

/// Simulates the network's prediction for a frame whose true dense depth is `true_depth` (m, `0` =
/// sky / no value). The output has the input's size and a positive, finite depth in
/// `[min_depth_m, max_depth_m]` at every pixel. Deterministic in `seed`; see the module documentation
/// for the error model.
pub fn simulate_mono_depth(model: &MonoDepthModel, true_depth: &DepthMap, seed: u64) -> DepthMap {
    let (w, h) = (true_depth.width as usize, true_depth.height as usize);
    let n = w * h;
    let max_m = model.max_depth_m.max(f64::MIN_POSITIVE) as f32;
    let min_m = (model.min_depth_m as f32).clamp(f32::MIN_POSITIVE, max_m);
    let mut rng = StdRng::seed_from_u64(seed);

    // 1. Dense disparity, sky at the far cap.
    let sky_disparity = 1.0 / max_m;
    let disparity: Vec<f32> = (0..n)
        .map(|i| match true_depth.depth_m.get(i) {
            Some(&d) if d > 0.0 && d.is_finite() => 1.0 / d.clamp(min_m, max_m),
            _ => sky_disparity,
        })
        .collect();

    // 2. Edge smoothing; 3. detail loss.
    let mut sharp = disparity;
    for _ in 0..2 {
        box_blur(&mut sharp, w, h, model.edge_blur_radius_px, Border::Repeat);
    }
    let alpha = model.detail_loss_weight.clamp(0.0, 1.0) as f32;
    let blended = if alpha > 0.0 {
        let mut wide = sharp.clone();
        for _ in 0..2 {
            box_blur(&mut wide, w, h, model.detail_loss_radius_px, Border::Repeat);
        }
        sharp
            .iter()
            .zip(&wide)
            .map(|(&s, &b)| (1.0 - alpha) * s + alpha * b)
            .collect()
    } else {
        sharp
    };

    // 4.–6. Scale, correlated relative error, per-pixel noise (all in log depth).
    let log_scale = model.scale_log_sigma * rng.sample::<f64, _>(rand_distr::StandardNormal);
    let field = smooth_field(&mut rng, w, h, model.field_cell_px);
    let (sigma_near, sigma_per_m) = (model.rel_sigma_near as f32, model.rel_sigma_per_m as f32);
    let pixel_sigma = model.pixel_noise_sigma as f32;
    let depth_m = blended
        .iter()
        .zip(&field)
        .map(|(&disp, &f)| {
            let d = 1.0 / disp;
            let noise: f32 = rng.sample(rand_distr::StandardNormal);
            let log_err = log_scale as f32 + (sigma_near + sigma_per_m * d) * f + pixel_sigma * noise;
            let out = d * log_err.exp();
            if out.is_finite() {
                out.clamp(min_m, max_m)
            } else {
                max_m
            }
        })
        .collect();
    DepthMap {
        width: true_depth.width,
        height: true_depth.height,
        depth_m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 1242;
    const H: u32 = 375;

    fn map_from(width: u32, height: u32, f: impl Fn(u32, u32) -> f32) -> DepthMap {
        let mut d = DepthMap::new(width, height);
        for y in 0..height {
            for x in 0..width {
                d.set(x, y, f(x, y));
            }
        }
        d
    }

    /// A smooth scene covering 5–65 m: depth grows along the columns, with a gentle vertical tilt.
    fn ramp() -> DepthMap {
        map_from(W, H, |x, y| {
            5.0 + 60.0 * x as f32 / (W - 1) as f32 + 0.002 * y as f32
        })
    }

    /// Log ratios of predicted to true depth with the frame's median removed (median scaling).
    fn scaled_log_ratios(pred: &DepthMap, truth: &DepthMap) -> Vec<f64> {
        let mut r: Vec<f64> = pred
            .depth_m
            .iter()
            .zip(&truth.depth_m)
            .map(|(&p, &t)| f64::from(p / t).ln())
            .collect();
        let mut sorted = r.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        for v in &mut r {
            *v -= median;
        }
        r
    }

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    #[test]
    fn deterministic_dense_positive_and_capped() {
        let model = MonoDepthModel::default();
        let mut truth = ramp();
        // Sky in the top rows, a too-far wall on the right.
        for y in 0..60 {
            for x in 0..W {
                truth.set(x, y, 0.0);
            }
        }
        for y in 100..200 {
            for x in 1100..W {
                truth.set(x, y, 200.0);
            }
        }
        let a = simulate_mono_depth(&model, &truth, 7);
        assert_eq!(a, simulate_mono_depth(&model, &truth, 7));
        assert_ne!(a, simulate_mono_depth(&model, &truth, 8));
        assert_eq!((a.width, a.height, a.depth_m.len()), (W, H, (W * H) as usize));
        assert!(
            a.depth_m
                .iter()
                .all(|&d| d.is_finite() && (0.1..=80.0).contains(&d))
        );
        // Sky is far: at the top of the image, away from the scene, it is predicted beyond 60 m.
        assert!(a.get(600, 10).unwrap() > 60.0);
        // An empty input is handled.
        let empty = simulate_mono_depth(&model, &DepthMap::new(0, 0), 1);
        assert!(empty.depth_m.is_empty());
    }

    #[test]
    fn relative_error_grows_with_range_and_is_about_ten_percent_at_50_m() {
        let model = MonoDepthModel::default();
        let truth = ramp();
        let (mut near_abs, mut far_abs) = (Vec::new(), Vec::new());
        let (mut at50_sq, mut at50_n) = (0.0, 0usize);
        for seed in 0..40 {
            let pred = simulate_mono_depth(&model, &truth, seed);
            let r = scaled_log_ratios(&pred, &truth);
            for (i, (&e, &t)) in r.iter().zip(&truth.depth_m).enumerate() {
                // Every 7th pixel is plenty; the errors are correlated anyway.
                if i % 7 != 0 {
                    continue;
                }
                let rel = e.exp_m1().abs();
                match t {
                    t if (5.0..15.0).contains(&t) => near_abs.push(rel),
                    t if (40.0..60.0).contains(&t) => far_abs.push(rel),
                    _ => {}
                }
                if (47.0..53.0).contains(&t) {
                    at50_sq += e * e;
                    at50_n += 1;
                }
            }
        }
        let (near, far) = (median(near_abs), median(far_abs));
        assert!(
            far > 2.0 * near,
            "median |rel err| 5–15 m {near:.4}, 40–60 m {far:.4}"
        );
        let sigma50 = (at50_sq / at50_n as f64).sqrt();
        assert!(
            (0.07..0.13).contains(&sigma50),
            "σ of the relative error at 50 m: {sigma50:.4}"
        );
        assert!(
            (0.04..0.09).contains(&far),
            "median |rel err| at 40–60 m: {far:.4}"
        );
    }

    #[test]
    fn the_error_is_spatially_correlated() {
        let model = MonoDepthModel::default();
        let truth = map_from(400, 200, |_, _| 50.0);
        let pred = simulate_mono_depth(&model, &truth, 3);
        let r = scaled_log_ratios(&pred, &truth);
        // Neighbouring pixels share most of their error: the mean squared difference of horizontal
        // neighbours is far below twice the variance (what i.i.d. errors would give).
        let var = r.iter().map(|e| e * e).sum::<f64>() / r.len() as f64;
        let step = (0..200)
            .flat_map(|y| (0..399).map(move |x| (y, x)))
            .map(|(y, x)| (r[y * 400 + x + 1] - r[y * 400 + x]).powi(2))
            .sum::<f64>()
            / (200 * 399) as f64;
        assert!(step < 0.2 * var, "neighbour step² {step:.6} vs variance {var:.6}");
    }

    #[test]
    fn edges_are_smoothed_and_thin_objects_lose_detail() {
        let model = MonoDepthModel::default();
        let (w, h) = (600u32, 200u32);
        // Near wall on the left half, far background on the right, a 4 px pole at 10 m at x = 450.
        let truth = map_from(w, h, |x, _| match x {
            0..300 => 10.0,
            448..452 => 10.0,
            _ => 40.0,
        });
        let (mut edge, mut edge_n, mut flat, mut flat_n) = (0.0, 0, 0.0, 0);
        let mut pole_depth = Vec::new();
        for seed in 0..10 {
            let pred = simulate_mono_depth(&model, &truth, seed);
            let r = scaled_log_ratios(&pred, &truth);
            for y in 0..h as usize {
                for x in 0..w as usize {
                    let e = r[y * w as usize + x].abs();
                    if (297..303).contains(&x) {
                        edge += e;
                        edge_n += 1;
                    } else if (100..250).contains(&x) || (340..420).contains(&x) {
                        flat += e;
                        flat_n += 1;
                    }
                }
                pole_depth.push(f64::from(pred.depth_m[y * w as usize + 450]));
            }
        }
        let (edge, flat) = (edge / edge_n as f64, flat / flat_n as f64);
        assert!(
            edge > 4.0 * flat,
            "mean |log err| at the step {edge:.4}, away {flat:.4}"
        );
        // The pole's predicted depth is pulled well toward the background (10 m → beyond 13 m).
        let pole = median(pole_depth);
        assert!(pole > 13.0, "predicted pole depth {pole:.2} m");
    }
}
