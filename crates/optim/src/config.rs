//! Settings of the optimiser: schedule, step sizes and loss weights.

use serde::{Deserialize, Serialize};

/// Weights of the loss terms (0 switches a term off).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LossWeights {
    /// LIDAR → surface: robust point-to-plane distance of every LIDAR point to the nearest
    /// front-facing surface point.
    pub lidar_to_surface: f64,
    /// Surface → LIDAR: robust distance of every front-facing surface point to the nearest LIDAR
    /// point (keeps the shape out of space the LIDAR saw through; noisy with sparse beams).
    pub surface_to_lidar: f64,
    /// Rendered NOCS vs the CSS NOCS, inside the predicted mask.
    pub nocs: f64,
    /// 1 − soft IoU of the rendered and the predicted silhouette.
    pub silhouette: f64,
    /// The shape's lowest point on the ground plane.
    pub ground: f64,
    /// Scale near the prior's metres per unit (the code already carries the size).
    pub scale_prior: f64,
    /// Shape code near the mean code.
    pub latent_prior: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        LossWeights {
            lidar_to_surface: 1.0,
            surface_to_lidar: 0.2,
            nocs: 0.3,
            silhouette: 0.3,
            ground: 0.1,
            scale_prior: 0.05,
            latent_prior: 0.01,
        }
    }
}

/// Settings of the per-object optimisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OptimConfig {
    /// Loss weights.
    pub weights: LossWeights,
    /// Most iterations.
    pub iterations: usize,
    /// The shape code takes a step (and the surface is decoded again) every this many iterations
    /// after `pose_only_iterations`; between, the decoded surface is reused.
    pub shape_every: usize,
    /// Iterations at the start that move the pose only.
    pub pose_only_iterations: usize,
    /// Adam step for yaw, rad.
    pub lr_yaw_rad: f64,
    /// Adam step for translation, m.
    pub lr_translation_m: f64,
    /// Adam step for ln(scale).
    pub lr_log_scale: f64,
    /// Adam step for the shape code.
    pub lr_latent: f64,
    /// Adam β₁.
    pub beta1: f64,
    /// Adam β₂.
    pub beta2: f64,
    /// Stop when the best loss has not improved by `tolerance` (relative) for this many iterations.
    pub patience: usize,
    /// Pose-only steps that probe each starting yaw before one is chosen.
    pub probe_iterations: usize,
    /// Relative improvement that counts.
    pub tolerance: f64,
    /// Starting yaws tried by [`crate::Optimiser::fit`]: the initial yaw plus k·360°/`yaw_starts`,
    /// each probed (`probe_iterations`); the optimisation goes on from the best probe.
    pub yaw_starts: usize,
    /// A fit that explains fewer than this fraction of its LIDAR points (within `cutoff_m`) is
    /// started again from its yaw turned by each of `rescue_yaw_offsets_deg`, and the fit that
    /// explains the most points is kept (0 switches it off). A car fitted a quarter turn off
    /// leaves half its L-shaped LIDAR unexplained, which the robust loss alone cannot see.
    pub rescue_below_inlier_fraction: f64,
    /// The turns tried by the rescue, degrees.
    pub rescue_yaw_offsets_deg: Vec<f64>,
    /// Each turn is first probed with this many iterations (pose only while below
    /// `pose_only_iterations`) and only the most plausible probe is fitted in full; 0 fits every
    /// turn in full.
    pub rescue_probe_iterations: usize,
    /// The rescue keeps the fit with the highest explained fraction + this × silhouette IoU −
    /// `rescue_nocs_weight` × NOCS error.
    pub rescue_silhouette_weight: f64,
    /// See `rescue_silhouette_weight`.
    pub rescue_nocs_weight: f64,
    /// LIDAR residuals beyond this are outliers (constant loss) at the end, m.
    pub cutoff_m: f64,
    /// The cut-off at the start, shrinking linearly to `cutoff_m` over the pose-only iterations, m.
    pub cutoff_start_m: f64,
    /// Huber width of the LIDAR residuals, m.
    pub huber_m: f64,
    /// Ground term's scale, m.
    pub ground_sigma_m: f64,
    /// Scale prior: metres per unit expected.
    pub scale_prior: f64,
    /// Scale prior's width, in ln(scale).
    pub scale_sigma: f64,
    /// Nearest surface points examined per LIDAR point for a front-facing one.
    pub neighbours: usize,
    /// Renderer settings.
    pub render: render::RenderConfig,
    /// Surface extraction.
    pub surface: deepsdf::surface::SurfaceConfig,
}

impl OptimConfig {
    /// The yaw offsets of [`crate::Optimiser::fit`]: 360°·k/`yaw_starts`, k = 0…
    pub fn yaw_start_offsets(&self) -> Vec<f64> {
        let starts = self.yaw_starts.max(1);
        (0..starts)
            .map(|k| std::f64::consts::TAU * k as f64 / starts as f64)
            .collect()
    }
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            weights: LossWeights::default(),
            iterations: 120,
            shape_every: 2,
            pose_only_iterations: 30,
            lr_yaw_rad: 0.03,
            lr_translation_m: 0.03,
            lr_log_scale: 0.005,
            lr_latent: 0.05,
            beta1: 0.9,
            beta2: 0.999,
            patience: 20,
            tolerance: 1e-3,
            probe_iterations: 10,
            yaw_starts: 4,
            rescue_below_inlier_fraction: 0.9,
            rescue_yaw_offsets_deg: vec![90.0, -90.0, 180.0],
            rescue_probe_iterations: 30,
            rescue_silhouette_weight: 1.0,
            rescue_nocs_weight: 2.0,
            cutoff_m: 0.2,
            cutoff_start_m: 1.0,
            huber_m: 0.05,
            ground_sigma_m: 0.05,
            scale_prior: f64::from(deepsdf::samples::DEFAULT_METRES_PER_UNIT),
            scale_sigma: 0.05,
            neighbours: 4,
            render: render::RenderConfig::default(),
            surface: deepsdf::surface::SurfaceConfig::default(),
        }
    }
}
