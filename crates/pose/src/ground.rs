//! The ground plane from a LIDAR sweep: RANSAC on 3-point planes no more tilted than allowed from the
//! expected up direction, then a least-squares refit (the normal is the smallest-variance direction
//! of the inliers).

use crate::error::{PoseError, Result};
use crate::ransac::{RansacConfig, ransac};
use nalgebra::{Matrix3, Point3, Unit, Vector3};

/// A plane `normal · p + offset = 0`, normal unit length and on the side of the up hint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plane {
    /// Unit normal.
    pub normal: Unit<Vector3<f64>>,
    /// Offset.
    pub offset: f64,
}

impl Plane {
    /// Signed distance of `p` (positive on the normal's side).
    pub fn distance(&self, p: &Point3<f64>) -> f64 {
        self.normal.dot(&p.coords) + self.offset
    }
}

/// Ground fitting settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GroundConfig {
    /// Inlier distance, m.
    pub threshold_m: f64,
    /// Roughly up in the points' frame (z for Velodyne).
    pub up_hint: Vector3<f64>,
    /// Planes tilted more than this from the hint are rejected, degrees.
    pub max_tilt_deg: f64,
    /// RANSAC cap.
    pub max_iterations: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for GroundConfig {
    fn default() -> Self {
        GroundConfig {
            threshold_m: 0.12,
            up_hint: Vector3::z(),
            max_tilt_deg: 15.0,
            max_iterations: 500,
            seed: 0,
        }
    }
}

fn plane_through(points: &[Point3<f64>], up: &Vector3<f64>) -> Result<Plane> {
    if points.len() < 3 {
        return Err(PoseError::NotEnoughPoints {
            got: points.len(),
            need: 3,
        });
    }
    let c = points.iter().fold(Vector3::zeros(), |a, p| a + p.coords) / points.len() as f64;
    let cov = points.iter().fold(Matrix3::zeros(), |a, p| {
        let d = p.coords - c;
        a + d * d.transpose()
    });
    let eig = cov.symmetric_eigen();
    let mut ev: Vec<(usize, f64)> = eig.eigenvalues.iter().copied().enumerate().collect();
    ev.sort_by(|a, b| a.1.total_cmp(&b.1));
    if ev[1].1 <= 1e-12 * ev[2].1.max(1e-300) {
        return Err(PoseError::Degenerate("the points are collinear".into()));
    }
    let k = ev[0].0;
    let mut n: Vector3<f64> = eig.eigenvectors.column(k).into_owned();
    if n.dot(up) < 0.0 {
        n = -n;
    }
    let normal = Unit::new_normalize(n);
    Ok(Plane {
        normal,
        offset: -normal.dot(&c),
    })
}

/// The dominant near-horizontal plane of `points`, and its inliers.
pub fn fit_ground_plane(points: &[Point3<f64>], config: &GroundConfig) -> Result<(Plane, Vec<usize>)> {
    if !points.iter().all(|p| p.coords.iter().all(|v| v.is_finite())) {
        return Err(PoseError::InvalidInput("non-finite point".into()));
    }
    let up = config.up_hint.normalize();
    let min_cos = config.max_tilt_deg.to_radians().cos();
    let rc = RansacConfig {
        sample_size: 3,
        inlier_threshold: config.threshold_m,
        confidence: 0.999,
        max_iterations: config.max_iterations,
        min_inliers: 3,
        seed: config.seed,
    };
    let fit = |idx: &[usize]| {
        let pts: Vec<Point3<f64>> = idx.iter().map(|&i| points[i]).collect();
        let plane = plane_through(&pts, &up)?;
        if plane.normal.dot(&up) < min_cos {
            return Err(PoseError::Degenerate("plane too tilted to be ground".into()));
        }
        Ok(plane)
    };
    let c = ransac(points.len(), &rc, fit, |p: &Plane, i| {
        p.distance(&points[i]).abs()
    })?;
    Ok((c.model, c.inliers))
}
