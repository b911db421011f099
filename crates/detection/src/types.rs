//! One 2D detection: class, box, confidence and optional instance mask.

use crate::mask::Mask;
use geom::{Box2d, Box3d, Size3};
use kitti::{Object, ObjectType};
use nalgebra::Point3;

/// One detection: class, box, confidence and, when the detector gives one, an instance mask.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Reported class (a KITTI type name: `Car`, `Van`, `Pedestrian`, `Cyclist`, …).
    pub kind: ObjectType,
    /// Reported box, px, inclusive pixel extents as in KITTI labels.
    pub bbox: Box2d,
    /// Confidence; higher is more confident (the simulated and the ground-truth detectors give
    /// (0, 1]).
    pub score: f64,
    /// Instance mask over the pixel window of `bbox` ([`crate::PixelWindow::of_box`]); `None` for
    /// box-only detectors and files.
    pub mask: Option<Mask>,
}

/// The label types a 2D detector for KITTI reports (and the simulated and ground-truth detectors
/// produce): Car, Van, Pedestrian, Cyclist.
pub fn is_detected_type(kind: &ObjectType) -> bool {
    matches!(
        kind,
        ObjectType::Car | ObjectType::Van | ObjectType::Pedestrian | ObjectType::Cyclist
    )
}

impl Detection {
    /// The KITTI result line of this detection (no 3D: `-1 -1 -10 … -1 -1 -1 -1000 -1000 -1000 -10`).
    pub fn to_object(&self) -> Object {
        Object {
            kind: self.kind.clone(),
            truncated: -1.0,
            occluded: -1,
            alpha_rad: -10.0,
            bbox: self.bbox,
            box3d: Box3d::new(
                Point3::new(-1000.0, -1000.0, -1000.0),
                Size3::new(-1.0, -1.0, -1.0),
                -10.0,
            ),
            score: Some(self.score),
        }
    }
}
