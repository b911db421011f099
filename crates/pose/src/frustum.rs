//! The LIDAR points of one detection: inside its 2D box (and instance mask when given), off the
//! ground, and in the dominant depth cluster (background and foreground clutter separated by depth).

use crate::error::{PoseError, Result};
use crate::ground::Plane;
use geom::Box2d;
use nalgebra::{Matrix3x4, Matrix4, Point3};

/// Frustum settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FrustumConfig {
    /// Points within this height of the ground plane (or below it) are ground, m.
    pub ground_margin_m: f64,
    /// A gap in depth wider than this splits clusters, m.
    pub cluster_gap_m: f64,
    /// Fewer points than this is an empty frustum.
    pub min_points: usize,
}

impl Default for FrustumConfig {
    fn default() -> Self {
        FrustumConfig {
            ground_margin_m: 0.2,
            cluster_gap_m: 0.8,
            min_points: 5,
        }
    }
}

/// The points kept for one detection.
#[derive(Clone, Debug, PartialEq)]
pub struct Frustum {
    /// Indices into the sweep.
    pub indices: Vec<usize>,
    /// Those points in the rect frame, m.
    pub points_rect: Vec<Point3<f64>>,
    /// Their pixels.
    pub pixels: Vec<[f64; 2]>,
}

/// The frustum of `bbox` in a sweep `points_velo`. `mask(u, v)` (pixel indices) narrows the box to
/// the instance; `ground` (Velodyne frame) removes the road.
pub fn extract_frustum(
    points_velo: &[Point3<f64>],
    rect_from_velo: &Matrix4<f64>,
    image_from_rect: &Matrix3x4<f64>,
    bbox: &Box2d,
    mask: Option<&dyn Fn(i64, i64) -> bool>,
    ground: Option<&Plane>,
    config: &FrustumConfig,
) -> Result<Frustum> {
    let corners = [bbox.left, bbox.top, bbox.right, bbox.bottom];
    if !corners.iter().all(|v| v.is_finite()) || bbox.right < bbox.left || bbox.bottom < bbox.top {
        return Err(PoseError::InvalidInput(format!("box {bbox:?}")));
    }
    let mut candidates: Vec<(f64, usize, Point3<f64>, [f64; 2])> = Vec::new();
    for (i, p) in points_velo.iter().enumerate() {
        if !p.coords.iter().all(|v| v.is_finite()) {
            continue;
        }
        if let Some(g) = ground
            && g.distance(p) <= config.ground_margin_m
        {
            continue;
        }
        let r = rect_from_velo.transform_point(p);
        let h = image_from_rect * r.to_homogeneous();
        if h.z <= 1e-3 {
            continue;
        }
        let (u, v) = (h.x / h.z, h.y / h.z);
        // KITTI boxes span the pixel centres left..=right: a point counts if its pixel does.
        if u < bbox.left - 0.5 || u > bbox.right + 0.5 || v < bbox.top - 0.5 || v > bbox.bottom + 0.5 {
            continue;
        }
        if let Some(m) = mask
            && !m(u.round() as i64, v.round() as i64)
        {
            continue;
        }
        candidates.push((r.z, i, r, [u, v]));
    }
    if candidates.len() < config.min_points {
        return Err(PoseError::EmptyFrustum(format!(
            "{} points in the box after ground removal",
            candidates.len()
        )));
    }
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    // Split by depth gaps; keep the cluster with the most points (the nearest on ties).
    let mut best = (0usize, 0usize);
    let mut start = 0;
    for k in 1..=candidates.len() {
        if k == candidates.len() || candidates[k].0 - candidates[k - 1].0 > config.cluster_gap_m {
            if k - start > best.1 - best.0 {
                best = (start, k);
            }
            start = k;
        }
    }
    let kept = &candidates[best.0..best.1];
    if kept.len() < config.min_points {
        return Err(PoseError::EmptyFrustum(format!(
            "largest depth cluster has {} points",
            kept.len()
        )));
    }
    let mut kept: Vec<_> = kept.to_vec();
    kept.sort_by_key(|c| c.1);
    Ok(Frustum {
        indices: kept.iter().map(|c| c.1).collect(),
        points_rect: kept.iter().map(|c| c.2).collect(),
        pixels: kept.iter().map(|c| c.3).collect(),
    })
}
