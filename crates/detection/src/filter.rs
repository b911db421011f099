//! [`DetectionFilter`]: which detections go on to the 3D stages (classes, score, box height) and
//! greedy non-maximum suppression.

use crate::types::Detection;
use serde::{Deserialize, Serialize};

/// Which detections to keep. Plain data for the pipeline's config; a partial config keeps the
/// defaults of the fields it omits.
///
/// ```toml
/// classes = ["Car"]      # KITTI type names, case-insensitive; an empty list keeps every class
/// min_score = 0.0        # keep score >= min_score
/// min_height_px = 0.0    # keep box height (bottom - top) >= min_height_px
/// nms_iou = 0.7          # suppress a box whose 2D IoU with a kept higher-scored box of its class exceeds this
/// ```
///
/// TOML has no `null`: to turn NMS off there, set `nms_iou = 1.0` (no IoU exceeds 1); in JSON,
/// `"nms_iou": null` gives `None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectionFilter {
    /// Classes to keep, matched case-insensitively on the KITTI type name (`Car`, `Van`,
    /// `Pedestrian`, …); an empty list keeps every class. Default `["Car"]`.
    pub classes: Vec<String>,
    /// Lowest score kept (inclusive). Default 0.0.
    pub min_score: f64,
    /// Lowest box height kept (inclusive), px. Default 0.0.
    pub min_height_px: f64,
    /// Greedy NMS within each class: a detection whose 2D box IoU ([`geom::Box2d::iou`]) with an
    /// already kept, higher-scored detection of the same class exceeds this is dropped; `None`: no
    /// NMS. Default `Some(0.7)`.
    pub nms_iou: Option<f64>,
}

impl Default for DetectionFilter {
    fn default() -> Self {
        Self {
            classes: vec!["Car".to_owned()],
            min_score: 0.0,
            min_height_px: 0.0,
            nms_iou: Some(0.7),
        }
    }
}

impl DetectionFilter {
    /// Whether a detection passes the class, score and height tests (NMS aside).
    pub fn accepts(&self, det: &Detection) -> bool {
        let class_ok = self.classes.is_empty()
            || self
                .classes
                .iter()
                .any(|c| c.eq_ignore_ascii_case(det.kind.as_str()));
        class_ok && det.score >= self.min_score && det.bbox.height() >= self.min_height_px
    }

    /// The detections that pass [`DetectionFilter::accepts`] and survive NMS, by descending score
    /// (equal scores keep their input order).
    pub fn apply(&self, dets: Vec<Detection>) -> Vec<Detection> {
        let mut kept: Vec<Detection> = dets.into_iter().filter(|d| self.accepts(d)).collect();
        // Stable: equal scores keep their order.
        kept.sort_by(|a, b| b.score.total_cmp(&a.score));
        let Some(threshold) = self.nms_iou else {
            return kept;
        };
        let mut out: Vec<Detection> = Vec::with_capacity(kept.len());
        for d in kept {
            let suppressed = out
                .iter()
                .any(|k| k.kind == d.kind && k.bbox.iou(&d.bbox) > threshold);
            if !suppressed {
                out.push(d);
            }
        }
        out
    }
}
