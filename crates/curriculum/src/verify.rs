//! Verifying labels without ground truth, and ordering them from easy to hard.

use crate::config::{CurriculumConfig, DifficultyConfig, VerifyConfig};
use detection::Detection;
use pipeline::LabelledObject;
use serde::{Deserialize, Serialize};

/// Why a label was not verified (the first failed check, in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Not a fitted shape (a geometric box: no shape to learn from).
    NoShape,
    /// Score below `min_score`.
    LowScore,
    /// The projected box disagrees with the detection box.
    BoxMismatch,
    /// Too few LIDAR points.
    FewLidarPoints,
    /// The surface explains too few LIDAR points, or too loosely.
    PoorLidarFit,
    /// The rendered silhouette disagrees with the predicted one.
    PoorSilhouette,
    /// The box's size is not a car's.
    ImplausibleSize,
}

/// `value ≥ min`, false when either is NaN (a NaN never passes a check).
fn at_least(value: f64, min: f64) -> bool {
    value >= min
}

/// Checks `object` (see [`VerifyConfig`]).
pub fn verify(object: &LabelledObject, config: &VerifyConfig) -> Result<(), Rejection> {
    let e = &object.evidence;
    if object.state.is_none() {
        return Err(Rejection::NoShape);
    }
    if object.label.score.unwrap_or(0.0) < config.min_score {
        return Err(Rejection::LowScore);
    }
    if !at_least(e.box_iou, config.min_box_iou) {
        return Err(Rejection::BoxMismatch);
    }
    if e.lidar_points < config.min_lidar_points {
        return Err(Rejection::FewLidarPoints);
    }
    let explained = e.lidar_inliers as f64 / e.lidar_points as f64;
    if !at_least(explained, config.min_explained) || !at_least(config.max_lidar_rms_m, e.lidar_rms_m) {
        return Err(Rejection::PoorLidarFit);
    }
    if e.silhouette_iou
        .is_some_and(|s| !at_least(s, config.min_silhouette_iou))
    {
        return Err(Rejection::PoorSilhouette);
    }
    let s = &object.label.box3d.size;
    let within = |v: f64, r: [f64; 2]| v >= r[0] && v <= r[1];
    if !(within(s.length_m, config.length_m)
        && within(s.width_m, config.width_m)
        && within(s.height_m, config.height_m))
    {
        return Err(Rejection::ImplausibleSize);
    }
    Ok(())
}

/// How hard a label is to trust and to learn from (see [`DifficultyConfig`]): far, hidden and
/// cut-off cars come last. `visible_fraction` is the detection's mask over the rendered
/// silhouette (1 when unknown).
pub fn difficulty(
    object: &LabelledObject,
    detection: &Detection,
    image_size: (u32, u32),
    visible_fraction: f64,
    config: &DifficultyConfig,
) -> f64 {
    let distance_m = object.label.box3d.bottom_center_rect.coords.norm();
    let b = &detection.bbox;
    let (w, h) = (f64::from(image_size.0), f64::from(image_size.1));
    let truncated = b.left <= config.border_px
        || b.top <= config.border_px
        || b.right >= w - 1.0 - config.border_px
        || b.bottom >= h - 1.0 - config.border_px;
    distance_m / config.distance_scale_m
        + config.occlusion_weight * (1.0 - visible_fraction.clamp(0.0, 1.0))
        + if truncated { config.truncation_weight } else { 0.0 }
}

/// The verified candidates a round accepts: the easiest `budget` fraction of them (rounded up),
/// as indices into `difficulties`, easiest first; `None` entries (rejected) are never accepted.
/// Ties keep the input order.
pub fn accept(difficulties: &[Option<f64>], budget: f64) -> Vec<usize> {
    let mut verified: Vec<(usize, f64)> = difficulties
        .iter()
        .enumerate()
        .filter_map(|(i, d)| d.map(|d| (i, d)))
        .collect();
    verified.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = (verified.len() as f64 * budget.clamp(0.0, 1.0)).ceil() as usize;
    verified.into_iter().take(n).map(|(i, _)| i).collect()
}

impl CurriculumConfig {
    /// Checks the settings.
    pub fn validate(&self) -> crate::Result<()> {
        if self.budget.iter().any(|b| !(0.0..=1.0).contains(b)) {
            return Err(crate::CurriculumError::InvalidInput(format!(
                "budget {:?}: every fraction must lie in [0, 1]",
                self.budget
            )));
        }
        if self.fine_tune.batch_size == 0 {
            return Err(crate::CurriculumError::InvalidInput(
                "fine_tune.batch_size must be positive".into(),
            ));
        }
        Ok(())
    }
}
