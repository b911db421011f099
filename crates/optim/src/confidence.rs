//! The confidence of a label, from its residuals and its consistency with the detection.
//!
//! [`ConfidenceModel::Residual`] (the default) multiplies factors in [0, 1]:
//! `c2D^a · IoU(projection, detection)^b · IoU(rendered, predicted silhouette)^c ·
//! (inliers/points)^d · exp(−(rms/σ)²) · n/(n + n₀)`, with `n` the LIDAR points. A label whose
//! LIDAR points lie on its surface, whose projection fills its detection box and whose silhouette
//! matches the mask is scored near its detection score; one fitted to a handful of points or
//! disagreeing with the image is pushed down the ranking, which is what raises AP.
//!
//! [`ConfidenceModel::MonoDr`] is MonoDR's c3D = c2D · exp(−α_m·L_m) · exp(−α_b·b), with L_m the
//! silhouette loss (1 − IoU) and b the ratio by which the projected box protrudes from the
//! detection box (α_m = 0.1, α_b = 0.03): the baseline to beat.

use serde::{Deserialize, Serialize};

/// Which formula scores a label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceModel {
    /// Residuals and consistency (see the module docs).
    #[default]
    Residual,
    /// MonoDR's c3D.
    MonoDr,
    /// The detection score alone.
    Detection,
}

/// Settings of the confidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfidenceConfig {
    /// The formula.
    pub model: ConfidenceModel,
    /// Exponent of the detection score.
    pub detection_power: f64,
    /// Exponent of the projection/detection box IoU.
    pub box_iou_power: f64,
    /// Exponent of the silhouette IoU.
    pub silhouette_power: f64,
    /// Exponent of the LIDAR inlier fraction.
    pub inlier_power: f64,
    /// Scale of the inliers' RMS residual, m.
    pub rms_scale_m: f64,
    /// LIDAR points at which the count factor is ½.
    pub half_points: f64,
}

impl Default for ConfidenceConfig {
    fn default() -> Self {
        ConfidenceConfig {
            model: ConfidenceModel::Residual,
            detection_power: 0.5,
            box_iou_power: 1.0,
            silhouette_power: 1.0,
            inlier_power: 1.0,
            rms_scale_m: 0.1,
            half_points: 10.0,
        }
    }
}

/// What is known about one label.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The detection's score.
    pub detection_score: f64,
    /// IoU of the label's projected 2D box and the detection box.
    pub box_iou: f64,
    /// Ratio by which the projected box protrudes from the detection box (area outside / area of
    /// the projected box).
    pub box_protrusion: f64,
    /// IoU of the rendered and predicted silhouettes (None without a view).
    pub silhouette_iou: Option<f64>,
    /// LIDAR points fitted.
    pub lidar_points: usize,
    /// Of those, the ones within the cut-off.
    pub lidar_inliers: usize,
    /// RMS residual of the inliers, m.
    pub lidar_rms_m: f64,
}

/// The confidence of a label in [0, 1].
pub fn confidence(evidence: &Evidence, config: &ConfidenceConfig) -> f64 {
    let e = evidence;
    let unit = |v: f64| if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 };
    let c2d = unit(e.detection_score);
    let value = match config.model {
        ConfidenceModel::Detection => c2d,
        ConfidenceModel::MonoDr => {
            let lm = 1.0 - e.silhouette_iou.map_or(0.0, unit);
            c2d * (-0.1 * lm).exp() * (-0.03 * e.box_protrusion.max(0.0)).exp()
        }
        ConfidenceModel::Residual => {
            let pow = |v: f64, p: f64| if p == 0.0 { 1.0 } else { unit(v).powf(p) };
            let n = e.lidar_points as f64;
            let inliers = if e.lidar_points > 0 {
                e.lidar_inliers as f64 / n
            } else {
                0.0
            };
            let rms = e.lidar_rms_m / config.rms_scale_m.max(1e-9);
            pow(c2d, config.detection_power)
                * pow(e.box_iou, config.box_iou_power)
                * e.silhouette_iou.map_or(1.0, |s| pow(s, config.silhouette_power))
                * pow(inliers, config.inlier_power)
                * (-rms * rms).exp()
                * n
                / (n + config.half_points.max(0.0)).max(1e-9)
        }
    };
    unit(value)
}
