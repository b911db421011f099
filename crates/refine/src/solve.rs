//! The pose from 2D correspondences: damped Gauss–Newton (Levenberg–Marquardt) on
//! `Σ w·ρ(|π(pose·X) − u*|)` over the update δ of [`crate::geometry`], with a Huber ρ applied by
//! reweighting, the projection's analytic Jacobian, and the scale optionally held fixed: from one
//! view, size and distance are exactly interchangeable (scaling both about the camera centre moves
//! no pixel), so with the scale free only their ratio is determined, and the damping keeps the
//! rest where it started.

use crate::error::{RefineError, Result};
use crate::geometry::{PARAMS, apply_update, project_with_jacobian};
use nalgebra::{DMatrix, DVector};
use render::{CropCamera, Pose};
use serde::{Deserialize, Serialize};

/// One 2D–3D pair: a surface point and the crop pixel where it should project.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Correspondence {
    /// Canonical point, units.
    pub point_unit: [f32; 3],
    /// Target crop pixel (u, v).
    pub target_px: [f64; 2],
    /// Weight (the network's confidence), ≥ 0.
    pub weight: f64,
}

/// Settings of the solver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SolveConfig {
    /// Gauss–Newton iterations.
    pub iterations: usize,
    /// Huber threshold on a pair's reprojection error, crop px.
    pub huber_px: f64,
    /// Levenberg–Marquardt damping, relative to the normal matrix's diagonal.
    pub damping: f64,
    /// Whether the vertical position (camera y of the translation) is a parameter.
    pub optimise_vertical: bool,
    /// Whether the depth (camera z of the translation) is a parameter.
    pub optimise_depth: bool,
    /// Whether ln scale is a parameter (otherwise it stays as it is).
    pub optimise_scale: bool,
    /// Largest turn of one iteration, degrees (a trust region against wild fields).
    pub max_turn_deg: f64,
    /// Largest shift of one iteration, as a fraction of the object's depth.
    pub max_shift_fraction: f64,
}

impl Default for SolveConfig {
    fn default() -> Self {
        SolveConfig {
            iterations: 8,
            huber_px: 1.5,
            damping: 1e-2,
            optimise_vertical: true,
            optimise_depth: true,
            optimise_scale: false,
            max_turn_deg: 20.0,
            max_shift_fraction: 0.1,
        }
    }
}

/// What the solver did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SolveReport {
    /// Weighted RMS reprojection error at the start, crop px.
    pub initial_rms_px: f64,
    /// … at the end.
    pub final_rms_px: f64,
    /// Pairs used.
    pub pairs: usize,
}

fn rms(camera: &CropCamera, pose: &Pose, pairs: &[Correspondence]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for c in pairs {
        if let Some((uv, _)) = project_with_jacobian(camera, pose, &c.point_unit) {
            let r = (uv.x - c.target_px[0]).powi(2) + (uv.y - c.target_px[1]).powi(2);
            num += c.weight * r;
            den += c.weight;
        }
    }
    if den > 0.0 { (num / den).sqrt() } else { 0.0 }
}

/// Moves `pose` to best explain `pairs`.
pub fn solve(
    camera: &CropCamera,
    pose: &Pose,
    pairs: &[Correspondence],
    config: &SolveConfig,
) -> Result<(Pose, SolveReport)> {
    let usable: Vec<Correspondence> = pairs
        .iter()
        .copied()
        .filter(|c| c.weight > 0.0 && c.weight.is_finite() && c.target_px.iter().all(|v| v.is_finite()))
        .collect();
    if usable.len() < 4 {
        return Err(RefineError::Empty(format!(
            "{} usable correspondences (at least 4 needed)",
            usable.len()
        )));
    }
    let mut active: Vec<usize> = vec![0, 1];
    if config.optimise_vertical {
        active.push(2);
    }
    if config.optimise_depth {
        active.push(3);
    }
    if config.optimise_scale {
        active.push(4);
    }
    let na = active.len();
    let mut current = *pose;
    let initial = rms(camera, &current, &usable);
    for _ in 0..config.iterations {
        let mut h = DMatrix::<f64>::zeros(na, na);
        let mut g = DVector::<f64>::zeros(na);
        for c in &usable {
            let Some((uv, j)) = project_with_jacobian(camera, &current, &c.point_unit) else {
                continue;
            };
            let r = nalgebra::Vector2::new(uv.x - c.target_px[0], uv.y - c.target_px[1]);
            let norm = r.norm();
            let huber = if norm > config.huber_px {
                config.huber_px / norm
            } else {
                1.0
            };
            let w = c.weight * huber;
            let ja = j.select_columns(&active);
            h += ja.transpose() * &ja * w;
            g += ja.transpose() * r * w;
        }
        for k in 0..na {
            h[(k, k)] += config.damping * h[(k, k)] + 1e-9;
        }
        let Some(step) = h.lu().solve(&(-g)) else { break };
        if !step.iter().all(|v| v.is_finite()) {
            break;
        }
        let mut delta = [0.0; PARAMS];
        for (k, &p) in active.iter().enumerate() {
            delta[p] = step[k];
        }
        // Trust region: the turn and the shift of one iteration are bounded.
        let max_turn = config.max_turn_deg.to_radians();
        delta[0] = delta[0].clamp(-max_turn, max_turn);
        let shift = (delta[1].powi(2) + delta[2].powi(2) + delta[3].powi(2)).sqrt();
        let max_shift = config.max_shift_fraction * f64::from(current.translation_m.z).abs();
        if shift > max_shift && shift > 0.0 {
            for d in &mut delta[1..4] {
                *d *= max_shift / shift;
            }
        }
        current = apply_update(&current, &delta);
        if step.norm() < 1e-7 {
            break;
        }
    }
    let report = SolveReport {
        initial_rms_px: initial,
        final_rms_px: rms(camera, &current, &usable),
        pairs: usable.len(),
    };
    Ok((current, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{project, rot_y, to_camera};
    use nalgebra::{Matrix3, Vector3};

    /// Exact correspondences of a known pose pull a perturbed start back onto it.
    #[test]
    fn exact_pairs_recover_the_pose() {
        let camera = CropCamera {
            fx: 70.0,
            fy: 70.0,
            cx: 24.0,
            cy: 24.0,
            width: 48,
            height: 48,
        };
        let truth = Pose {
            rotation: (rot_y(0.4) * Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0)).cast(),
            translation_m: Vector3::new(0.5, 1.0, 15.0),
            scale: 2.75,
        };
        let start = apply_update(&truth, &[0.35, 0.3, -0.2, 0.8, 0.0]);
        let points: Vec<[f32; 3]> = (0..200)
            .map(|i| {
                let a = i as f32 * 0.7;
                [0.35 * a.cos(), 0.25 * (a * 1.3).sin(), 0.8 * (a * 0.37).sin()]
            })
            .collect();
        let pairs: Vec<Correspondence> = points
            .iter()
            .map(|x| {
                let uv = project(&camera, &to_camera(&truth, x)).expect("in front");
                Correspondence {
                    point_unit: *x,
                    target_px: [uv.x, uv.y],
                    weight: 1.0,
                }
            })
            .collect();
        let config = SolveConfig {
            iterations: 30,
            ..SolveConfig::default()
        };
        let (fit, report) = solve(&camera, &start, &pairs, &config).expect("solve");
        assert!(report.initial_rms_px > 2.0, "{report:?}");
        assert!(report.final_rms_px < 1e-2, "{report:?}");
        let dt = (fit.translation_m - truth.translation_m).norm();
        let dr = (fit.rotation - truth.rotation).norm();
        assert!(dt < 0.02 && dr < 1e-3, "translation error {dt} m, rotation {dr}");
    }
}
