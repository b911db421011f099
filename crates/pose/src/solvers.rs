//! Closed-form solvers for `dst ≈ s·R·src + t` from point correspondences (f64).
//!
//! - [`umeyama`]: similarity (R ∈ SO(3), s > 0, t), Umeyama 1991: SVD of the cross-covariance with
//!   the reflection fix.
//! - [`kabsch`]: rigid (s = 1).
//! - [`yaw_similarity`]: R a rotation about a given unit `up` axis (the ground normal): the angle
//!   from the 2D cross/dot sums of the centred points projected on the ground plane, then the
//!   least-squares scale, then t.

use crate::error::{PoseError, Result};
use nalgebra::{Matrix3, Point3, Rotation3, Unit, Vector3};

/// `p ↦ scale · rotation · p + translation`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    /// Rotation.
    pub rotation: Rotation3<f64>,
    /// Translation.
    pub translation: Vector3<f64>,
    /// Scale (> 0).
    pub scale: f64,
}

impl Similarity {
    /// The angle between two rotations, radians, robust where they are nearly equal (from the
    /// chord ‖R₁ − R₂‖_F = 2√2·sin(θ/2), where acos of the trace would lose precision or give NaN).
    pub fn rotation_angle_to(&self, other: &Rotation3<f64>) -> f64 {
        let chord = (self.rotation.matrix() - other.matrix()).norm();
        2.0 * (chord / (2.0 * std::f64::consts::SQRT_2)).min(1.0).asin()
    }

    /// Applies the transform.
    pub fn apply(&self, p: &Point3<f64>) -> Point3<f64> {
        Point3::from(self.rotation * p.coords * self.scale + self.translation)
    }
}

fn check(src: &[Point3<f64>], dst: &[Point3<f64>], need: usize) -> Result<()> {
    if src.len() != dst.len() {
        return Err(PoseError::InvalidInput(format!(
            "{} source and {} target points",
            src.len(),
            dst.len()
        )));
    }
    if src.len() < need {
        return Err(PoseError::NotEnoughPoints { got: src.len(), need });
    }
    if !src
        .iter()
        .chain(dst)
        .all(|p| p.coords.iter().all(|v| v.is_finite()))
    {
        return Err(PoseError::InvalidInput("non-finite coordinate".into()));
    }
    Ok(())
}

fn centroid(p: &[Point3<f64>]) -> Vector3<f64> {
    p.iter().fold(Vector3::zeros(), |a, q| a + q.coords) / p.len() as f64
}

/// Whether the centred points span at least a plane (not all on one line), relative to their size.
fn spans_a_plane(centred: &[Vector3<f64>]) -> bool {
    let cov = centred
        .iter()
        .fold(Matrix3::zeros(), |a, v| a + v * v.transpose());
    let mut ev: Vec<f64> = cov.symmetric_eigenvalues().iter().copied().collect();
    ev.sort_by(|a, b| b.total_cmp(a));
    ev[0] > 1e-18 && ev[1] > 1e-10 * ev[0]
}

fn solve(src: &[Point3<f64>], dst: &[Point3<f64>], with_scale: bool) -> Result<Similarity> {
    check(src, dst, 3)?;
    let (mx, my) = (centroid(src), centroid(dst));
    let xs: Vec<Vector3<f64>> = src.iter().map(|p| p.coords - mx).collect();
    let ys: Vec<Vector3<f64>> = dst.iter().map(|p| p.coords - my).collect();
    if !spans_a_plane(&xs) || !spans_a_plane(&ys) {
        return Err(PoseError::Degenerate(
            "the points are collinear or coincident".into(),
        ));
    }
    let n = src.len() as f64;
    let sigma = xs
        .iter()
        .zip(&ys)
        .fold(Matrix3::zeros(), |a, (x, y)| a + y * x.transpose())
        / n;
    let svd = sigma.svd(true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        return Err(PoseError::Degenerate("SVD failed".into()));
    };
    let d = if (u.determinant() * v_t.determinant()) < 0.0 {
        -1.0
    } else {
        1.0
    };
    let s_fix = Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, d));
    let r = u * s_fix * v_t;
    let var_x = xs.iter().map(|x| x.norm_squared()).sum::<f64>() / n;
    let scale = if with_scale {
        let tr = svd.singular_values[0] + svd.singular_values[1] + d * svd.singular_values[2];
        tr / var_x
    } else {
        1.0
    };
    if !(scale.is_finite() && scale > 0.0) {
        return Err(PoseError::Degenerate(format!("scale {scale}")));
    }
    let rotation = Rotation3::from_matrix_unchecked(r);
    Ok(Similarity {
        rotation,
        translation: my - rotation * mx * scale,
        scale,
    })
}

/// The least-squares similarity (Umeyama) mapping `src` onto `dst`; at least 3 non-collinear pairs.
pub fn umeyama(src: &[Point3<f64>], dst: &[Point3<f64>]) -> Result<Similarity> {
    solve(src, dst, true)
}

/// The least-squares rigid transform (Kabsch) mapping `src` onto `dst`; at least 3 non-collinear pairs.
pub fn kabsch(src: &[Point3<f64>], dst: &[Point3<f64>]) -> Result<Similarity> {
    solve(src, dst, false)
}

/// The least-squares similarity whose rotation turns about `up` only; at least 2 pairs whose
/// centred positions are not all along `up`.
pub fn yaw_similarity(
    src: &[Point3<f64>],
    dst: &[Point3<f64>],
    up: &Unit<Vector3<f64>>,
) -> Result<Similarity> {
    check(src, dst, 2)?;
    let (mx, my) = (centroid(src), centroid(dst));
    let (mut cross, mut dot, mut norm2) = (0.0, 0.0, 0.0);
    for (x, y) in src.iter().zip(dst) {
        let (x, y) = (x.coords - mx, y.coords - my);
        let (xp, yp) = (x - up.as_ref() * up.dot(&x), y - up.as_ref() * up.dot(&y));
        cross += up.dot(&xp.cross(&yp));
        dot += xp.dot(&yp);
        norm2 += xp.norm_squared();
    }
    if norm2 < 1e-18 || (cross.abs() + dot.abs()) < 1e-18 {
        return Err(PoseError::Degenerate(
            "the points lie on the rotation axis".into(),
        ));
    }
    let angle = cross.atan2(dot);
    let rotation = Rotation3::from_axis_angle(up, angle);
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in src.iter().zip(dst) {
        let rx = rotation * (x.coords - mx);
        num += rx.dot(&(y.coords - my));
        den += rx.norm_squared();
    }
    let scale = num / den;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(PoseError::Degenerate(format!("scale {scale}")));
    }
    Ok(Similarity {
        rotation,
        translation: my - rotation * mx * scale,
        scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud() -> Vec<Point3<f64>> {
        (0..12)
            .map(|i| {
                let t = i as f64;
                Point3::new(
                    (0.7 * t).sin() * 2.0,
                    (1.3 * t).cos(),
                    (0.4 * t).sin() * 0.8 + 0.1 * t,
                )
            })
            .collect()
    }

    #[test]
    fn solvers_recover_exact_transforms() {
        let truth = Similarity {
            rotation: Rotation3::from_euler_angles(0.3, -0.5, 1.1),
            translation: Vector3::new(3.0, -1.0, 12.0),
            scale: 2.75,
        };
        let src = cloud();
        let dst: Vec<_> = src.iter().map(|p| truth.apply(p)).collect();
        let s = umeyama(&src, &dst).unwrap_or_else(|e| panic!("{e}"));
        let close = |a: &Rotation3<f64>, b: &Rotation3<f64>| (a.matrix() - b.matrix()).norm() < 1e-9;
        assert!(
            (s.scale - 2.75).abs() < 1e-9 && close(&s.rotation, &truth.rotation),
            "{s:?} vs {truth:?}"
        );
        assert!((s.translation - truth.translation).norm() < 1e-9);
        let rigid = Similarity { scale: 1.0, ..truth };
        let dst: Vec<_> = src.iter().map(|p| rigid.apply(p)).collect();
        let k = kabsch(&src, &dst).unwrap_or_else(|e| panic!("{e}"));
        assert!(close(&k.rotation, &rigid.rotation) && (k.translation - rigid.translation).norm() < 1e-9);
        let up = Vector3::y_axis();
        let yaw = Similarity {
            rotation: Rotation3::from_axis_angle(&up, -2.0),
            ..truth
        };
        let dst: Vec<_> = src.iter().map(|p| yaw.apply(p)).collect();
        let y = yaw_similarity(&src, &dst, &up).unwrap_or_else(|e| panic!("{e}"));
        assert!((y.scale - 2.75).abs() < 1e-9 && close(&y.rotation, &yaw.rotation));
    }

    #[test]
    fn degenerate_inputs_are_errors_not_nan() {
        let line: Vec<_> = (0..6)
            .map(|i| Point3::new(i as f64, 2.0 * i as f64, 0.5))
            .collect();
        assert!(matches!(umeyama(&line, &line), Err(PoseError::Degenerate(_))));
        let two = &cloud()[..2];
        assert!(matches!(
            kabsch(two, two),
            Err(PoseError::NotEnoughPoints { got: 2, need: 3 })
        ));
        let axis: Vec<_> = (0..5).map(|i| Point3::new(0.0, i as f64, 0.0)).collect();
        assert!(matches!(
            yaw_similarity(&axis, &axis, &Vector3::y_axis()),
            Err(PoseError::Degenerate(_))
        ));
        let mut bad = cloud();
        bad[3].x = f64::NAN;
        assert!(matches!(umeyama(&bad, &cloud()), Err(PoseError::InvalidInput(_))));
    }
}
