//! Adam on yaw, translation, ln(scale) and the shape code; the best iterate is kept.
//!
//! Schedule: the starting yaw is chosen among `yaw_starts` evenly spaced candidates by their loss;
//! the LIDAR cut-off shrinks linearly from `cutoff_start_m` to `cutoff_m` over the pose-only
//! iterations (a wide basin first, robustness at the end); the shape code takes a step every
//! `shape_every` iterations after those, and only then is the shape decoded again; every other
//! step moves the pose on the decoded surface. The best iterate (lowest loss at the final cut-off)
//! is returned; the run stops early when it has not improved by `tolerance` for `patience`
//! iterations.

use crate::adam::Adam;
use crate::config::OptimConfig;
use crate::error::{OptimError, Result};
use crate::losses::{Diagnostics, LidarIndex, Problem, Shape, Terms, evaluate};
use crate::state::{ObjectState, Observation};
use deepsdf::Decoder;
use deepsdf::surface::extract_surface;
use rayon::prelude::*;

/// The outcome of fitting one object.
#[derive(Clone, Debug)]
pub struct Fit {
    /// The best state.
    pub state: ObjectState,
    /// Its loss terms (at the final cut-off).
    pub terms: Terms,
    /// Its residual statistics.
    pub diagnostics: Diagnostics,
    /// The loss of the starting state (at the final cut-off, after choosing the starting yaw).
    pub initial_loss: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Times the shape was decoded.
    pub decodes: usize,
}

/// Fits objects with one decoder and one configuration.
pub struct Optimiser<'a> {
    decoder: &'a Decoder,
    mean_latent: &'a [f32],
    config: &'a OptimConfig,
}

fn apply_pose_step(state: &mut ObjectState, step: &[f64]) {
    state.yaw_rad += step[0];
    state.translation_rect_m.x += step[1];
    state.translation_rect_m.y += step[2];
    state.translation_rect_m.z += step[3];
    state.scale *= step[4].exp();
}

fn normalise(z: &mut [f32]) {
    let n = z.iter().map(|v| v * v).sum::<f32>().sqrt();
    if n > 1e-12 {
        z.iter_mut().for_each(|v| *v /= n);
    }
}

impl<'a> Optimiser<'a> {
    /// An optimiser with `decoder`, the prior's `mean_latent` (for the code prior) and `config`.
    pub fn new(decoder: &'a Decoder, mean_latent: &'a [f32], config: &'a OptimConfig) -> Self {
        Optimiser {
            decoder,
            mean_latent,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &OptimConfig {
        self.config
    }

    /// Decodes the shape of `latent` (with Jacobians when `jacobian`).
    pub fn decode(&self, latent: &[f32], jacobian: bool) -> Result<Shape> {
        Shape::new(extract_surface(
            self.decoder,
            latent,
            &self.config.surface,
            jacobian,
        )?)
    }

    fn cutoff(&self, iteration: usize) -> f64 {
        let c = self.config;
        let n = c.pose_only_iterations.max(1);
        if iteration >= n {
            c.cutoff_m
        } else {
            let f = iteration as f64 / n as f64;
            c.cutoff_start_m + (c.cutoff_m - c.cutoff_start_m) * f
        }
    }

    /// Fits one object from `init`, trying the yaws `init.yaw + 360°·k/yaw_starts`.
    pub fn fit(&self, observation: &Observation, init: &ObjectState) -> Result<Fit> {
        self.fit_from(observation, init, &self.config.yaw_start_offsets())
    }

    /// Fits one object from `init`, trying the yaws `init.yaw + offset` for every offset (at least
    /// the initial yaw): each start is probed with `probe_iterations` pose-only steps and the
    /// optimisation goes on from the probe with the lowest loss.
    pub fn fit_from(
        &self,
        observation: &Observation,
        init: &ObjectState,
        yaw_offsets: &[f64],
    ) -> Result<Fit> {
        let mut init = init.clone();
        normalise(&mut init.latent);
        let shape = self.decode(&init.latent, true)?;
        self.fit_decoded(observation, &init, yaw_offsets, shape)
    }

    /// [`Optimiser::fit_from`] with `init.latent`'s shape already decoded (by
    /// [`Optimiser::decode`] with Jacobians; `init.latent` on the unit sphere, as the CSS network
    /// predicts it, so that the Jacobians are the normalised code's), for callers that needed the surface before fitting
    /// (the NOCS correspondences of the initialisation).
    ///
    /// A fit that explains too few of its LIDAR points (`rescue_below_inlier_fraction`) is probed
    /// again from its own pose turned by each of `rescue_yaw_offsets_deg` (with the starting
    /// shape, `rescue_probe_iterations` steps), the most plausible probe is fitted in full, and
    /// the more plausible of it and the first fit wins: the most points explained, weighed against the
    /// silhouette IoU and the NOCS error (`rescue_silhouette_weight`, `rescue_nocs_weight`).
    /// `iterations` and `decodes` then count all the runs.
    #[tracing::instrument(level = "debug", skip_all)]
    pub fn fit_decoded(
        &self,
        observation: &Observation,
        init: &ObjectState,
        yaw_offsets: &[f64],
        shape: Shape,
    ) -> Result<Fit> {
        let cfg = self.config;
        let rescue = cfg.rescue_below_inlier_fraction > 0.0 && !cfg.rescue_yaw_offsets_deg.is_empty();
        let start_shape = if rescue { Some(shape.duplicate()?) } else { None };
        let mut fit = self.fit_once(observation, init, yaw_offsets, shape, cfg.iterations)?;
        let Some(start_shape) = start_shape else {
            return Ok(fit);
        };
        if explained(&fit) >= cfg.rescue_below_inlier_fraction {
            return Ok(fit);
        }
        let first = fit.state.clone();
        let (mut iterations, mut decodes) = (fit.iterations, fit.decodes);
        // Every turn is probed (pose only, `rescue_probe_iterations` steps; 0: a full fit each);
        // the most plausible probe gets a full fit, which must beat the first fit.
        let probe = cfg.rescue_probe_iterations.min(cfg.iterations);
        let mut best: Option<(f64, Fit)> = None;
        for offset_deg in &cfg.rescue_yaw_offsets_deg {
            let turned = ObjectState {
                yaw_rad: first.yaw_rad + offset_deg.to_radians(),
                translation_rect_m: first.translation_rect_m,
                ..init.clone()
            };
            let limit = if probe > 0 { probe } else { cfg.iterations };
            let candidate = self.fit_once(observation, &turned, &[0.0], start_shape.duplicate()?, limit)?;
            tracing::debug!(
                offset_deg,
                inliers = candidate.diagnostics.lidar_inliers,
                of = candidate.diagnostics.lidar_points,
                loss = candidate.terms.total,
                silhouette_iou = ?candidate.diagnostics.silhouette_iou,
                nocs_error = ?candidate.diagnostics.nocs_error,
                "rescue candidate"
            );
            iterations += candidate.iterations;
            decodes += candidate.decodes;
            let p = plausibility(&candidate, cfg);
            if best.as_ref().is_none_or(|(q, _)| p > *q) {
                best = Some((p, candidate));
            }
        }
        if let Some((_, mut candidate)) = best {
            if probe > 0 {
                let from = ObjectState {
                    latent: init.latent.clone(),
                    ..candidate.state.clone()
                };
                candidate = self.fit_once(
                    observation,
                    &from,
                    &[0.0],
                    start_shape.duplicate()?,
                    cfg.iterations,
                )?;
                iterations += candidate.iterations;
                decodes += candidate.decodes;
            }
            // Ties go to the first fit.
            if plausibility(&candidate, cfg) > plausibility(&fit, cfg) {
                fit = candidate;
            }
        }
        fit.iterations = iterations;
        fit.decodes = decodes;
        tracing::debug!(
            first_yaw = first.yaw_rad,
            yaw = fit.state.yaw_rad,
            explained = explained(&fit),
            "rescued a poorly explained fit"
        );
        Ok(fit)
    }

    /// One fit of at most `max_iterations` iterations.
    fn fit_once(
        &self,
        observation: &Observation,
        init: &ObjectState,
        yaw_offsets: &[f64],
        shape: Shape,
        max_iterations: usize,
    ) -> Result<Fit> {
        let cfg = self.config;
        observation.validate()?;
        init.validate(self.decoder.config.latent_dim)?;
        if shape.jacobian.len() != shape.len() {
            return Err(OptimError::InvalidInput(
                "the starting shape was decoded without Jacobians".into(),
            ));
        }
        let lidar = LidarIndex::new(&observation.lidar_rect)?;
        let problem = Problem {
            observation,
            lidar: &lidar,
            mean_latent: self.mean_latent,
            config: cfg,
        };
        let mut state = init.clone();
        normalise(&mut state.latent);
        let mut shape = shape;
        let mut decodes = 1;

        // Starting yaw: a short pose-only probe from each candidate (a turned car needs its
        // translation moved too before its loss means anything), the lowest loss wins.
        let offsets: &[f64] = if yaw_offsets.is_empty() {
            &[0.0]
        } else {
            yaw_offsets
        };
        let probe = cfg.probe_iterations.min(cfg.pose_only_iterations);
        let pose_lr = [
            cfg.lr_yaw_rad,
            cfg.lr_translation_m,
            cfg.lr_translation_m,
            cfg.lr_translation_m,
            cfg.lr_log_scale,
        ];
        let mut best_start: Option<(f64, ObjectState)> = None;
        for offset in offsets {
            let mut candidate = state.clone();
            candidate.yaw_rad = init.yaw_rad + offset;
            if offsets.len() > 1 {
                let mut adam = Adam::new(5);
                for it in 0..probe {
                    let (_, _, grad) = evaluate(&problem, &candidate, &shape, self.cutoff(it), true)?;
                    let Some(g) = grad else { break };
                    let step = adam.step(
                        &[
                            g.yaw,
                            g.translation.x,
                            g.translation.y,
                            g.translation.z,
                            g.log_scale,
                        ],
                        &pose_lr,
                        cfg.beta1,
                        cfg.beta2,
                    );
                    apply_pose_step(&mut candidate, &step);
                }
            }
            let (terms, _, _) = evaluate(&problem, &candidate, &shape, self.cutoff(probe), false)?;
            if best_start.as_ref().is_none_or(|(l, _)| terms.total < *l) {
                best_start = Some((terms.total, candidate));
            }
        }
        if let Some((_, s)) = best_start {
            state = s;
        }
        let (initial, initial_diag, _) = evaluate(&problem, &state, &shape, cfg.cutoff_m, false)?;
        let initial_loss = initial.total;
        let mut best = (initial_loss, state.clone(), initial, initial_diag);
        let mut since_best = 0usize;
        let dim = state.latent.len();
        let mut pose_adam = Adam::new(5);
        let mut code_adam = Adam::new(dim);
        let code_lr = vec![cfg.lr_latent; dim];
        let mut iterations = 0;
        for it in 0..max_iterations.min(cfg.iterations) {
            iterations = it + 1;
            let cutoff = self.cutoff(it);
            let (terms, diag, grad) = evaluate(&problem, &state, &shape, cutoff, true)?;
            if it >= cfg.pose_only_iterations {
                if terms.total < best.0 * (1.0 - cfg.tolerance) || !best.0.is_finite() {
                    since_best = 0;
                } else {
                    since_best += 1;
                }
                if terms.total < best.0 {
                    best = (terms.total, state.clone(), terms, diag);
                }
                if since_best >= cfg.patience {
                    break;
                }
            }
            let Some(grad) = grad else { break };
            let g = [
                grad.yaw,
                grad.translation.x,
                grad.translation.y,
                grad.translation.z,
                grad.log_scale,
            ];
            let step = pose_adam.step(&g, &pose_lr, cfg.beta1, cfg.beta2);
            let code_step = it >= cfg.pose_only_iterations
                && cfg.shape_every > 0
                && (it - cfg.pose_only_iterations) % cfg.shape_every == cfg.shape_every - 1;
            let code_grad = if code_step {
                Some(grad.latent(&shape)?)
            } else {
                None
            };
            apply_pose_step(&mut state, &step);
            if let Some(gz) = code_grad {
                let dz = code_adam.step(&gz, &code_lr, cfg.beta1, cfg.beta2);
                for (z, d) in state.latent.iter_mut().zip(dz) {
                    *z += d as f32;
                }
                normalise(&mut state.latent);
                shape = self.decode(&state.latent, true)?;
                decodes += 1;
            }
        }
        // The last state was never scored when the loop ran to the end.
        let (terms, diag, _) = evaluate(&problem, &state, &shape, cfg.cutoff_m, false)?;
        if terms.total < best.0 {
            best = (terms.total, state, terms, diag);
        }
        let (_, state, terms, diagnostics) = best;
        Ok(Fit {
            state,
            terms,
            diagnostics,
            initial_loss,
            iterations,
            decodes,
        })
    }

    /// Fits several objects (in parallel), one result per `(observation, start)` job.
    pub fn fit_many(&self, jobs: &[(Observation, ObjectState)]) -> Vec<Result<Fit>> {
        jobs.par_iter().map(|(obs, init)| self.fit(obs, init)).collect()
    }
}

/// The fraction of a fit's LIDAR points within the cut-off of its surface (1 without points).
fn explained(fit: &Fit) -> f64 {
    let d = &fit.diagnostics;
    if d.lidar_points == 0 {
        1.0
    } else {
        d.lidar_inliers as f64 / d.lidar_points as f64
    }
}

/// How well a fit agrees with all its evidence, for choosing among rescue turns: explained LIDAR
/// points, plus the silhouette IoU, minus the NOCS error, weighted by the config. LIDAR alone
/// cannot judge: a quarter-turned car can cover a rear face and roof line as well as the right
/// one, while its NOCS then disagree with the network's.
fn plausibility(fit: &Fit, cfg: &OptimConfig) -> f64 {
    let d = &fit.diagnostics;
    explained(fit) + cfg.rescue_silhouette_weight * d.silhouette_iou.unwrap_or(0.0)
        - cfg.rescue_nocs_weight * d.nocs_error.unwrap_or(0.0)
}
