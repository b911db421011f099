//! The loss of one object's state and its analytic gradient with respect to yaw, translation,
//! ln(scale) and every surface point (which the shape code's Jacobian turns into the code's
//! gradient).
//!
//! Terms (each weighted by [`LossWeights`]):
//! - **LIDAR → surface**: for every LIDAR point, the nearest of the `neighbours` nearest surface
//!   points whose normal faces the sensor (back faces are culled), and the Huber loss of the
//!   point-to-plane residual `r = (R n)·(X − t) − s n·p`; points farther than the cut-off from
//!   that surface point cost a constant. Normalised by the count and by the cut-off's loss, so the
//!   term lies in [0, 1].
//! - **Surface → LIDAR**: every surface point facing the sensor, Huber loss of its distance to the
//!   nearest LIDAR point, cut off and normalised alike.
//! - **NOCS**: `Σ m ‖C − α N‖² / Σ m` over the map pixels, `C` the rendered (premultiplied) NOCS,
//!   `α` the rendered coverage, `N` and `m` the CSS NOCS and mask probability.
//! - **Silhouette**: `1 − Σ α m / Σ (α + m − α m)` (soft IoU).
//! - **Ground**: `(h/σ)²`, h the height of the shape's lowest point above the ground plane.
//! - **Scale prior**: `(ln(s/s₀)/σ)²`; **code prior**: `‖z − z̄‖²`.

use crate::config::{LossWeights, OptimConfig};
use crate::error::{OptimError, Result};
use crate::state::{ObjectState, Observation, v3};
use deepsdf::surface::Surface;
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use nalgebra::{Matrix3, Vector3};
use render::{ImageGrad, Pose, Surfels};
use std::num::NonZeroUsize;

/// A decoded shape ready for the losses: its surface as renderer surfels (built once per decode,
/// not per iteration), the Jacobians, and a k-d tree of its points (canonical units).
pub struct Shape {
    /// Surface points (`positions`), outward normals and NOCS colours.
    pub surfels: Surfels,
    /// ∂p/∂code per point (see [`Surface::jacobian`]); empty when decoded without.
    pub jacobian: Vec<Vec<f32>>,
    tree: ImmutableKdTree<f32, 3>,
    /// Index of the lowest point (min canonical y).
    lowest: usize,
}

impl Shape {
    /// Indexes `surface`. Errors: [`OptimError::EmptySurface`].
    pub fn new(surface: Surface) -> Result<Self> {
        if surface.is_empty() {
            return Err(OptimError::EmptySurface);
        }
        let tree = ImmutableKdTree::new_from_slice(&surface.points)
            .map_err(|e| OptimError::InvalidInput(format!("k-d tree of the surface: {e}")))?;
        let lowest = surface
            .points
            .iter()
            .enumerate()
            .min_by(|a, b| a.1[1].total_cmp(&b.1[1]))
            .map_or(0, |(i, _)| i);
        Ok(Shape {
            surfels: Surfels {
                positions: surface.points,
                normals: surface.normals,
                colours: surface.nocs,
            },
            jacobian: surface.jacobian,
            tree,
            lowest,
        })
    }

    /// A copy (the k-d tree, which kiddo cannot clone, is built again).
    pub fn duplicate(&self) -> Result<Self> {
        let tree = ImmutableKdTree::new_from_slice(&self.surfels.positions)
            .map_err(|e| OptimError::InvalidInput(format!("k-d tree of the surface: {e}")))?;
        Ok(Shape {
            surfels: self.surfels.clone(),
            jacobian: self.jacobian.clone(),
            tree,
            lowest: self.lowest,
        })
    }

    /// Number of surface points.
    pub fn len(&self) -> usize {
        self.surfels.positions.len()
    }

    /// Whether there is no point (never: [`Shape::new`] refuses an empty surface).
    pub fn is_empty(&self) -> bool {
        self.surfels.positions.is_empty()
    }

    /// The surface back (points, normals, NOCS, Jacobians).
    pub fn into_surface(self) -> Surface {
        Surface {
            points: self.surfels.positions,
            normals: self.surfels.normals,
            nocs: self.surfels.colours,
            jacobian: self.jacobian,
        }
    }
}

/// The LIDAR points of an observation in a k-d tree (rect frame, relative to their centroid so
/// that f32 keeps millimetres).
pub struct LidarIndex {
    tree: Option<ImmutableKdTree<f32, 3>>,
    centroid: Vector3<f64>,
    points: Vec<Vector3<f64>>,
}

impl LidarIndex {
    /// Indexes the points.
    pub fn new(points_rect: &[Vector3<f64>]) -> Result<Self> {
        let n = points_rect.len().max(1) as f64;
        let centroid = points_rect.iter().fold(Vector3::zeros(), |a, p| a + p) / n;
        let local: Vec<[f32; 3]> = points_rect
            .iter()
            .map(|p| {
                let d = p - centroid;
                [d.x as f32, d.y as f32, d.z as f32]
            })
            .collect();
        let tree = if local.is_empty() {
            None
        } else {
            Some(
                ImmutableKdTree::new_from_slice(&local)
                    .map_err(|e| OptimError::InvalidInput(format!("k-d tree of the LIDAR points: {e}")))?,
            )
        };
        Ok(LidarIndex {
            tree,
            centroid,
            points: points_rect.to_vec(),
        })
    }

    fn nearest(&self, q_rect: &Vector3<f64>) -> Option<Vector3<f64>> {
        let tree = self.tree.as_ref()?;
        let d = q_rect - self.centroid;
        let nn = tree
            .query(&[d.x as f32, d.y as f32, d.z as f32])
            .nearest_one::<SquaredEuclidean<f32>>()
            .execute();
        self.points.get(nn.item as usize).copied()
    }
}

/// Loss terms (weighted) and their sum.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Terms {
    /// LIDAR → surface.
    pub lidar_to_surface: f64,
    /// Surface → LIDAR.
    pub surface_to_lidar: f64,
    /// Rendered vs predicted NOCS.
    pub nocs: f64,
    /// 1 − soft silhouette IoU.
    pub silhouette: f64,
    /// Lowest point on the ground.
    pub ground: f64,
    /// Scale prior.
    pub scale_prior: f64,
    /// Code prior.
    pub latent_prior: f64,
    /// The sum.
    pub total: f64,
}

/// What the residuals say about the fit (for the confidence).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diagnostics {
    /// LIDAR points fitted.
    pub lidar_points: usize,
    /// Of those, the ones within the cut-off of the surface.
    pub lidar_inliers: usize,
    /// Root mean square point-to-plane residual of the inliers, m.
    pub lidar_rms_m: f64,
    /// IoU of the rendered (α > ½) and predicted (m > ½) silhouettes, when there is a view.
    pub silhouette_iou: Option<f64>,
    /// Mean absolute NOCS difference where both say "object", when there is a view.
    pub nocs_error: Option<f64>,
}

/// The gradient of the total loss.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient {
    /// ∂L/∂yaw.
    pub yaw: f64,
    /// ∂L/∂translation.
    pub translation: Vector3<f64>,
    /// ∂L/∂ln(scale).
    pub log_scale: f64,
    /// ∂L/∂p for every surface point (canonical units).
    pub points: Vec<Vector3<f64>>,
    /// ∂L/∂z of the terms on the code itself (the code prior).
    pub latent_direct: Vec<f64>,
}

impl Gradient {
    fn zeros(points: usize, dim: usize) -> Self {
        Gradient {
            yaw: 0.0,
            translation: Vector3::zeros(),
            log_scale: 0.0,
            points: vec![Vector3::zeros(); points],
            latent_direct: vec![0.0; dim],
        }
    }

    /// ∂L/∂z: the point gradients through the shape's Jacobians, plus the direct term. Errors when
    /// the shape was decoded without Jacobians.
    pub fn latent(&self, shape: &Shape) -> Result<Vec<f64>> {
        let dim = self.latent_direct.len();
        let jac = &shape.jacobian;
        if jac.len() != self.points.len() {
            return Err(OptimError::InvalidInput(
                "the shape was decoded without Jacobians".into(),
            ));
        }
        let mut g = self.latent_direct.clone();
        for (gp, j) in self.points.iter().zip(jac) {
            for r in 0..3 {
                for (k, gk) in g.iter_mut().enumerate() {
                    *gk += gp[r] * f64::from(j[r * dim + k]);
                }
            }
        }
        Ok(g)
    }
}

fn huber(r: f64, delta: f64) -> (f64, f64) {
    if r.abs() <= delta {
        (0.5 * r * r, r)
    } else {
        (delta * (r.abs() - 0.5 * delta), delta * r.signum())
    }
}

/// Everything [`evaluate`] needs besides the state.
pub struct Problem<'a> {
    /// The evidence.
    pub observation: &'a Observation,
    /// Its LIDAR points indexed.
    pub lidar: &'a LidarIndex,
    /// The mean shape code (code prior).
    pub mean_latent: &'a [f32],
    /// Settings.
    pub config: &'a OptimConfig,
}

/// The loss of `state` with the decoded `shape` (which must be `state.latent`'s), the LIDAR
/// residuals cut off at `cutoff_m`, and with `with_gradient` its gradient.
pub fn evaluate(
    problem: &Problem<'_>,
    state: &ObjectState,
    shape: &Shape,
    cutoff_m: f64,
    with_gradient: bool,
) -> Result<(Terms, Diagnostics, Option<Gradient>)> {
    let obs = problem.observation;
    let cfg = problem.config;
    let w: &LossWeights = &cfg.weights;
    let ground = &obs.ground;
    let rot = state.rotation(ground);
    let drot = state.rotation_derivative(ground);
    let s = state.scale;
    let t = state.translation_rect_m;
    let surf = &shape.surfels;
    let dim = state.latent.len();
    let mut grad = Gradient::zeros(shape.len(), dim);
    let mut terms = Terms::default();
    let mut diag = Diagnostics {
        lidar_points: obs.lidar_rect.len(),
        ..Diagnostics::default()
    };
    let delta = cfg.huber_m.min(cutoff_m);
    let rho_cut = huber(cutoff_m, delta).0.max(1e-12);
    let rot_t = rot.transpose();

    // LIDAR → surface.
    if !obs.lidar_rect.is_empty() {
        let n = obs.lidar_rect.len() as f64;
        let sensor_model = rot_t * (obs.sensor_rect - t) / s;
        let k = NonZeroUsize::new(cfg.neighbours.clamp(1, shape.len())).unwrap_or(NonZeroUsize::MIN);
        let mut sum = 0.0;
        let mut sq = 0.0;
        for x in &obs.lidar_rect {
            let y = rot_t * (x - t) / s;
            let q = [y.x as f32, y.y as f32, y.z as f32];
            let hits = shape
                .tree
                .query(&q)
                .nearest_n::<SquaredEuclidean<f32>>(k)
                .execute();
            let chosen = hits.iter().map(|h| h.item as usize).find(|&i| {
                let p = v3(&surf.positions[i]);
                v3(&surf.normals[i]).dot(&(sensor_model - p)) > 0.0
            });
            let Some(i) = chosen else {
                sum += rho_cut;
                continue;
            };
            let p = v3(&surf.positions[i]);
            let nrm = v3(&surf.normals[i]);
            let dist_m = (y - p).norm() * s;
            if dist_m > cutoff_m {
                sum += rho_cut;
                continue;
            }
            let rn = rot * nrm;
            let r = rn.dot(&(x - t)) - s * nrm.dot(&p);
            let (loss, dl) = huber(r, delta);
            sum += loss;
            sq += r * r;
            diag.lidar_inliers += 1;
            if with_gradient {
                let g = w.lidar_to_surface * dl / (n * rho_cut);
                grad.translation -= rn * g;
                grad.yaw += g * (drot * nrm).dot(&(x - t));
                grad.log_scale -= g * s * nrm.dot(&p);
                grad.points[i] -= nrm * (g * s);
            }
        }
        terms.lidar_to_surface = w.lidar_to_surface * sum / (n * rho_cut);
        if diag.lidar_inliers > 0 {
            diag.lidar_rms_m = (sq / diag.lidar_inliers as f64).sqrt();
        }
    }

    // Surface → LIDAR.
    if w.surface_to_lidar > 0.0 && !obs.lidar_rect.is_empty() {
        let mut sum = 0.0;
        let mut count = 0usize;
        let mut contributions: Vec<(usize, Vector3<f64>)> = Vec::new();
        for (i, (p, nrm)) in surf.positions.iter().zip(&surf.normals).enumerate() {
            let p = v3(p);
            let q = rot * p * s + t;
            if (rot * v3(nrm)).dot(&(obs.sensor_rect - q)) <= 0.0 {
                continue;
            }
            count += 1;
            let Some(x) = problem.lidar.nearest(&q) else {
                continue;
            };
            let e = q - x;
            let d = e.norm();
            if d > cutoff_m {
                sum += rho_cut;
                continue;
            }
            let (loss, dl) = huber(d, delta);
            sum += loss;
            if with_gradient && d > 1e-12 {
                contributions.push((i, e * (dl / d)));
            }
        }
        if count > 0 {
            let m = count as f64;
            terms.surface_to_lidar = w.surface_to_lidar * sum / (m * rho_cut);
            let g = w.surface_to_lidar / (m * rho_cut);
            for (i, u) in contributions {
                let p = v3(&surf.positions[i]);
                let u = u * g;
                grad.translation += u;
                grad.yaw += u.dot(&(drot * p * s));
                grad.log_scale += u.dot(&(rot * p * s));
                grad.points[i] += rot_t * u * s;
            }
        }
    }

    // Rendered NOCS and silhouette.
    if let Some(view) = &obs.view
        && (w.nocs > 0.0 || w.silhouette > 0.0)
    {
        let pose = Pose {
            rotation: rot.cast::<f32>(),
            translation_m: (t + view.cam_from_rect_m).cast::<f32>(),
            scale: s as f32,
        };
        let surfels = &shape.surfels;
        let image = render::render(&view.camera, &pose, surfels, &cfg.render)?;
        let npx = view.camera.pixels();
        let mut img_grad = ImageGrad::zeros(view.camera.width, view.camera.height);
        // NOCS.
        let msum: f64 = view.mask_prob.iter().map(|&m| f64::from(m)).sum::<f64>().max(1.0);
        let mut nocs_loss = 0.0;
        let (mut abs_err, mut abs_n) = (0.0, 0usize);
        // Silhouette.
        let (mut inter, mut union) = (0.0f64, 0.0f64);
        let (mut hard_i, mut hard_u) = (0usize, 0usize);
        for u in 0..npx {
            let m = f64::from(view.mask_prob[u]);
            let a = f64::from(image.mask[u]);
            let c = image.colour[u];
            let nn = view.nocs[u];
            let diff: [f64; 3] = std::array::from_fn(|ch| f64::from(c[ch]) - a * f64::from(nn[ch]));
            nocs_loss += m * diff.iter().map(|d| d * d).sum::<f64>();
            inter += a * m;
            union += a + m - a * m;
            let (ha, hm) = (a > 0.5, m > 0.5);
            hard_i += usize::from(ha && hm);
            hard_u += usize::from(ha || hm);
            if ha && hm {
                abs_err += (0..3)
                    .map(|ch| (f64::from(c[ch]) / a - f64::from(nn[ch])).abs())
                    .sum::<f64>()
                    / 3.0;
                abs_n += 1;
            }
            if with_gradient && w.nocs > 0.0 {
                let g = 2.0 * w.nocs * m / msum;
                for (gc, d) in img_grad.colour[u].iter_mut().zip(diff) {
                    *gc += (g * d) as f32;
                }
                img_grad.mask[u] -= (g * (0..3).map(|ch| diff[ch] * f64::from(nn[ch])).sum::<f64>()) as f32;
            }
        }
        terms.nocs = w.nocs * nocs_loss / msum;
        let union = union.max(1e-9);
        terms.silhouette = w.silhouette * (1.0 - inter / union);
        diag.silhouette_iou = Some(if hard_u > 0 {
            hard_i as f64 / hard_u as f64
        } else {
            0.0
        });
        diag.nocs_error = (abs_n > 0).then(|| abs_err / abs_n as f64);
        if with_gradient {
            if w.silhouette > 0.0 {
                for u in 0..npx {
                    let m = f64::from(view.mask_prob[u]);
                    let d = -(m * union - inter * (1.0 - m)) / (union * union);
                    img_grad.mask[u] += (w.silhouette * d) as f32;
                }
            }
            let sg = render::backward(&view.camera, &pose, surfels, &cfg.render, &image, &img_grad)?;
            let g_rot: Matrix3<f64> = sg.pose.rotation.cast::<f64>();
            grad.yaw += g_rot.component_mul(&drot).sum();
            grad.translation += sg.pose.translation_m.cast::<f64>();
            grad.log_scale += s * f64::from(sg.pose.scale);
            for (i, (gp, gc)) in sg.positions.iter().zip(&sg.colours).enumerate() {
                grad.points[i] += v3(gp) + v3(gc) * 0.5;
            }
        }
    }

    // Ground: the lowest surface point on the plane.
    if w.ground > 0.0 {
        let y_min = f64::from(surf.positions[shape.lowest][1]);
        let sigma2 = cfg.ground_sigma_m * cfg.ground_sigma_m;
        let h = ground.height_m(&t) + s * y_min;
        terms.ground = w.ground * h * h / sigma2;
        if with_gradient {
            let g = 2.0 * w.ground * h / sigma2;
            grad.translation += ground.up_rect.into_inner() * g;
            grad.log_scale += g * s * y_min;
            grad.points[shape.lowest].y += g * s;
        }
    }

    // Priors.
    if w.scale_prior > 0.0 {
        let l = (s / cfg.scale_prior).ln() / cfg.scale_sigma;
        terms.scale_prior = w.scale_prior * l * l;
        grad.log_scale += 2.0 * w.scale_prior * l / cfg.scale_sigma;
    }
    if w.latent_prior > 0.0 && problem.mean_latent.len() == dim {
        let mut sum = 0.0;
        for (k, (z, m)) in state.latent.iter().zip(problem.mean_latent).enumerate() {
            let d = f64::from(z - m);
            sum += d * d;
            grad.latent_direct[k] = 2.0 * w.latent_prior * d;
        }
        terms.latent_prior = w.latent_prior * sum;
    }
    terms.total = terms.lidar_to_surface
        + terms.surface_to_lidar
        + terms.nocs
        + terms.silhouette
        + terms.ground
        + terms.scale_prior
        + terms.latent_prior;
    Ok((terms, diag, with_gradient.then_some(grad)))
}
