//! RANSAC with an adaptive iteration count and a least-squares refit on the inliers.

use crate::error::{PoseError, Result};
use crate::solvers::{Similarity, kabsch, umeyama, yaw_similarity};
use nalgebra::{Point3, Unit, Vector3};
use rand::{RngExt, SeedableRng, rngs::StdRng};

/// RANSAC settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RansacConfig {
    /// Points per hypothesis (n).
    pub sample_size: usize,
    /// A point is an inlier when its residual is below this.
    pub inlier_threshold: f64,
    /// Wanted probability p of drawing at least one all-inlier sample.
    pub confidence: f64,
    /// Hard cap on hypotheses.
    pub max_iterations: usize,
    /// Fewer inliers than this is no consensus.
    pub min_inliers: usize,
    /// Seed of the sampling.
    pub seed: u64,
}

impl Default for RansacConfig {
    fn default() -> Self {
        RansacConfig {
            sample_size: 4,
            inlier_threshold: 0.08,
            confidence: 0.999,
            max_iterations: 2000,
            min_inliers: 4,
            seed: 0,
        }
    }
}

/// The iterations needed to draw an all-inlier sample of `n` with probability `p` when a share `w`
/// of the points are inliers: k = log(1 − p)/log(1 − wⁿ).
pub fn needed_iterations(p: f64, w: f64, n: usize) -> f64 {
    let wn = w.clamp(0.0, 1.0).powi(n as i32);
    if wn >= 1.0 {
        1.0
    } else if wn <= 0.0 {
        f64::INFINITY
    } else {
        (1.0 - p).ln() / (1.0 - wn).ln()
    }
}

/// A model and the points that agree with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Consensus<M> {
    /// The model, refitted on its inliers.
    pub model: M,
    /// Indices of the inliers.
    pub inliers: Vec<usize>,
    /// Hypotheses drawn.
    pub iterations: usize,
}

/// Generic RANSAC over `n` data points: `fit` builds a model from indices (a minimal sample or the
/// inliers), `residual` scores one point. Stops once the adaptive count from the best inlier ratio
/// is reached; refits the best model on its inliers by least squares until they settle.
pub fn ransac<M>(
    n: usize,
    config: &RansacConfig,
    fit: impl Fn(&[usize]) -> Result<M>,
    residual: impl Fn(&M, usize) -> f64,
) -> Result<Consensus<M>> {
    if !(config.inlier_threshold > 0.0 && (0.0..1.0).contains(&config.confidence)) {
        return Err(PoseError::InvalidInput(format!("{config:?}")));
    }
    if n < config.sample_size.max(config.min_inliers) {
        return Err(PoseError::NotEnoughPoints {
            got: n,
            need: config.sample_size.max(config.min_inliers),
        });
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let inliers_of = |m: &M| -> Vec<usize> {
        (0..n)
            .filter(|&i| residual(m, i) < config.inlier_threshold)
            .collect()
    };
    let mut best: Option<(M, Vec<usize>)> = None;
    let mut needed = config.max_iterations as f64;
    let mut pool: Vec<usize> = (0..n).collect();
    let mut iterations = 0;
    while iterations < config.max_iterations && (iterations as f64) < needed {
        iterations += 1;
        // Partial Fisher–Yates: the first `sample_size` entries become a uniform sample.
        for k in 0..config.sample_size {
            let j = rng.random_range(k..n);
            pool.swap(k, j);
        }
        let Ok(model) = fit(&pool[..config.sample_size]) else {
            continue;
        };
        let inliers = inliers_of(&model);
        if best.as_ref().is_none_or(|(_, b)| inliers.len() > b.len()) {
            needed = needed_iterations(
                config.confidence,
                inliers.len() as f64 / n as f64,
                config.sample_size,
            );
            best = Some((model, inliers));
        }
    }
    let best_count = best.as_ref().map_or(0, |(_, i)| i.len());
    let Some((model, inliers)) = best.filter(|(_, i)| i.len() >= config.min_inliers) else {
        return Err(PoseError::NoConsensus {
            inliers: best_count,
            needed: config.min_inliers,
        });
    };
    // Least squares on the inliers, then on the refit's inliers, until they settle (at most three
    // rounds): a minimal sample's model is only as precise as its four noisy points.
    let (mut model, mut inliers) = (model, inliers);
    for _ in 0..3 {
        let Ok(refit) = fit(&inliers) else { break };
        let again = inliers_of(&refit);
        if again.len() < config.min_inliers {
            break;
        }
        let settled = again == inliers;
        model = refit;
        inliers = again;
        if settled {
            break;
        }
    }
    Ok(Consensus {
        model,
        inliers,
        iterations,
    })
}

/// Which transform to estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Solver {
    /// Similarity (rotation, translation, scale): Umeyama.
    Similarity,
    /// Rigid: Kabsch.
    Rigid,
    /// Rotation about the ground normal `up`, translation and scale.
    Yaw(Unit<Vector3<f64>>),
}

/// A robust `dst ≈ s·R·src + t` from correspondences with outliers.
pub fn estimate(
    src: &[Point3<f64>],
    dst: &[Point3<f64>],
    solver: Solver,
    config: &RansacConfig,
) -> Result<Consensus<Similarity>> {
    if src.len() != dst.len() {
        return Err(PoseError::InvalidInput(format!(
            "{} source and {} target points",
            src.len(),
            dst.len()
        )));
    }
    let fit = |idx: &[usize]| {
        let s: Vec<Point3<f64>> = idx.iter().map(|&i| src[i]).collect();
        let d: Vec<Point3<f64>> = idx.iter().map(|&i| dst[i]).collect();
        match solver {
            Solver::Similarity => umeyama(&s, &d),
            Solver::Rigid => kabsch(&s, &d),
            Solver::Yaw(up) => yaw_similarity(&s, &d, &up),
        }
    };
    ransac(src.len(), config, fit, |m: &Similarity, i| {
        (m.apply(&src[i]) - dst[i]).norm()
    })
}
