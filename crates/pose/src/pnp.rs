//! PnP for images without LIDAR: the rigid pose of a model (its scale known, e.g. from the prior)
//! from 2D–3D correspondences (pixels carrying CSS NOCS ↔ model surface points), robust to outliers:
//! RANSAC over 6-point DLT solutions for a calibrated camera, then Gauss–Newton on the
//! reprojection error of the inliers. With a depth map, back-project the pixels and use
//! [`crate::ransac::estimate`] instead (a 3D–3D problem).

use crate::error::{PoseError, Result};
use crate::ransac::{Consensus, RansacConfig, ransac};
use crate::solvers::Similarity;
use geom::Intrinsics;
use nalgebra::{DMatrix, Matrix3, Matrix6, Point3, Rotation3, Vector3, Vector6};

/// PnP settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PnpConfig {
    /// RANSAC (samples of at least 6; threshold in pixels).
    pub ransac: RansacConfig,
    /// Gauss–Newton iterations on the inliers.
    pub refine_iterations: usize,
}

impl Default for PnpConfig {
    fn default() -> Self {
        PnpConfig {
            ransac: RansacConfig {
                sample_size: 6,
                inlier_threshold: 3.0,
                min_inliers: 6,
                ..RansacConfig::default()
            },
            refine_iterations: 10,
        }
    }
}

fn project(k: &Intrinsics, r: &Rotation3<f64>, t: &Vector3<f64>, x: &Point3<f64>) -> Option<[f64; 2]> {
    k.project(&Point3::from(r * x.coords + t))
}

/// Calibrated DLT: [R | t] from ≥ 6 correspondences (normalised image coordinates).
fn dlt(model: &[Point3<f64>], normalised: &[[f64; 2]]) -> Result<(Rotation3<f64>, Vector3<f64>)> {
    let n = model.len();
    if n < 6 {
        return Err(PoseError::NotEnoughPoints { got: n, need: 6 });
    }
    let mut a = DMatrix::<f64>::zeros(2 * n, 12);
    for (i, (x, p)) in model.iter().zip(normalised).enumerate() {
        let xh = [x.x, x.y, x.z, 1.0];
        for c in 0..4 {
            a[(2 * i, c)] = -xh[c];
            a[(2 * i, 8 + c)] = p[0] * xh[c];
            a[(2 * i + 1, 4 + c)] = -xh[c];
            a[(2 * i + 1, 8 + c)] = p[1] * xh[c];
        }
    }
    let svd = a.svd(false, true);
    let v_t = svd
        .v_t
        .ok_or_else(|| PoseError::Degenerate("SVD failed".into()))?;
    let (k, _) = svd
        .singular_values
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .ok_or_else(|| PoseError::Degenerate("no singular values".into()))?;
    let mut p: Vec<f64> = v_t.row(k).iter().copied().collect();
    // Points in front of the camera: the third row's depths positive.
    let depth: f64 = model
        .iter()
        .map(|x| p[8] * x.x + p[9] * x.y + p[10] * x.z + p[11])
        .sum();
    if depth < 0.0 {
        p.iter_mut().for_each(|v| *v = -*v);
    }
    let m = Matrix3::new(p[0], p[1], p[2], p[4], p[5], p[6], p[8], p[9], p[10]);
    let svd = m.svd(true, true);
    let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
        return Err(PoseError::Degenerate("SVD failed".into()));
    };
    let lambda = svd.singular_values.mean();
    if !(lambda.is_finite() && lambda > 1e-12) {
        return Err(PoseError::Degenerate(
            "the points are coplanar with the camera or collinear".into(),
        ));
    }
    let mut r = u * vt;
    if r.determinant() < 0.0 {
        r = -r;
    }
    let t = Vector3::new(p[3], p[7], p[11]) / lambda;
    Ok((Rotation3::from_matrix_unchecked(r), t))
}

/// Gauss–Newton on the reprojection error over `idx` (numeric Jacobian in (rotation vector, t)).
fn refine(
    model: &[Point3<f64>],
    pixels: &[[f64; 2]],
    k: &Intrinsics,
    idx: &[usize],
    mut r: Rotation3<f64>,
    mut t: Vector3<f64>,
    iterations: usize,
) -> (Rotation3<f64>, Vector3<f64>) {
    let residuals = |r: &Rotation3<f64>, t: &Vector3<f64>| -> Option<Vec<f64>> {
        let mut out = Vec::with_capacity(2 * idx.len());
        for &i in idx {
            let p = project(k, r, t, &model[i])?;
            out.push(p[0] - pixels[i][0]);
            out.push(p[1] - pixels[i][1]);
        }
        Some(out)
    };
    let apply = |r: &Rotation3<f64>, t: &Vector3<f64>, d: &Vector6<f64>| {
        (
            Rotation3::new(Vector3::new(d[0], d[1], d[2])) * r,
            t + Vector3::new(d[3], d[4], d[5]),
        )
    };
    for _ in 0..iterations {
        let Some(e0) = residuals(&r, &t) else { break };
        let mut jtj = Matrix6::<f64>::zeros();
        let mut jte = Vector6::<f64>::zeros();
        let h = 1e-6;
        let mut cols = Vec::with_capacity(6);
        for c in 0..6 {
            let mut d = Vector6::zeros();
            d[c] = h;
            let (r2, t2) = apply(&r, &t, &d);
            let Some(e1) = residuals(&r2, &t2) else {
                return (r, t);
            };
            cols.push(e1.iter().zip(&e0).map(|(a, b)| (a - b) / h).collect::<Vec<f64>>());
        }
        for a in 0..6 {
            for b in 0..6 {
                jtj[(a, b)] = cols[a].iter().zip(&cols[b]).map(|(x, y)| x * y).sum();
            }
            jte[a] = cols[a].iter().zip(&e0).map(|(x, y)| x * y).sum();
        }
        let Some(step) = (jtj + Matrix6::identity() * 1e-9).lu().solve(&(-jte)) else {
            break;
        };
        let (r2, t2) = apply(&r, &t, &step);
        let before: f64 = e0.iter().map(|v| v * v).sum();
        let after: f64 = residuals(&r2, &t2).map_or(f64::INFINITY, |e| e.iter().map(|v| v * v).sum());
        if after >= before {
            break;
        }
        r = r2;
        t = t2;
    }
    (r, t)
}

/// The rigid pose (scale 1: give `model` in metres) mapping model points onto their `pixels` under
/// `intrinsics`, robust to outliers.
pub fn pnp(
    model: &[Point3<f64>],
    pixels: &[[f64; 2]],
    intrinsics: &Intrinsics,
    config: &PnpConfig,
) -> Result<Consensus<Similarity>> {
    if model.len() != pixels.len() {
        return Err(PoseError::InvalidInput(format!(
            "{} model points and {} pixels",
            model.len(),
            pixels.len()
        )));
    }
    if !model.iter().all(|p| p.coords.iter().all(|v| v.is_finite()))
        || !pixels.iter().flatten().all(|v| v.is_finite())
    {
        return Err(PoseError::InvalidInput("non-finite input".into()));
    }
    let normalised: Vec<[f64; 2]> = pixels
        .iter()
        .map(|p| {
            let r = intrinsics.ray(p[0], p[1]);
            [r.x, r.y]
        })
        .collect();
    let fit = |idx: &[usize]| {
        let m: Vec<Point3<f64>> = idx.iter().map(|&i| model[i]).collect();
        let n: Vec<[f64; 2]> = idx.iter().map(|&i| normalised[i]).collect();
        let (r, t) = dlt(&m, &n)?;
        let (r, t) = if idx.len() > config.ransac.sample_size {
            refine(model, pixels, intrinsics, idx, r, t, config.refine_iterations)
        } else {
            (r, t)
        };
        Ok(Similarity {
            rotation: r,
            translation: t,
            scale: 1.0,
        })
    };
    let residual = |s: &Similarity, i: usize| {
        project(intrinsics, &s.rotation, &s.translation, &model[i]).map_or(f64::INFINITY, |p| {
            ((p[0] - pixels[i][0]).powi(2) + (p[1] - pixels[i][1]).powi(2)).sqrt()
        })
    };
    ransac(model.len(), &config.ransac, fit, residual)
}

/// With a depth map: the pixels back-projected with their depths (`depths_m`, camera z, m) give a
/// 3D–3D problem, solved robustly by [`crate::ransac::estimate`] with `solver` (the depth carries
/// the scale, so a similarity is determined). Pixels without a finite positive depth are dropped.
pub fn pose_from_depth(
    model: &[Point3<f64>],
    pixels: &[[f64; 2]],
    depths_m: &[f64],
    intrinsics: &Intrinsics,
    solver: crate::ransac::Solver,
    config: &RansacConfig,
) -> Result<Consensus<Similarity>> {
    if model.len() != pixels.len() || pixels.len() != depths_m.len() {
        return Err(PoseError::InvalidInput(format!(
            "{} model points, {} pixels and {} depths",
            model.len(),
            pixels.len(),
            depths_m.len()
        )));
    }
    let (src, dst): (Vec<Point3<f64>>, Vec<Point3<f64>>) = model
        .iter()
        .zip(pixels.iter().zip(depths_m))
        .filter(|(_, (p, d))| d.is_finite() && **d > 0.0 && p.iter().all(|v| v.is_finite()))
        .map(|(m, (p, d))| (*m, Point3::from(intrinsics.ray(p[0], p[1]) * *d)))
        .unzip();
    crate::ransac::estimate(&src, &dst, solver, config)
}
