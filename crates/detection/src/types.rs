//! One 2D detection: class, box, confidence and optional instance mask.

use crate::mask::{Mask, PixelWindow};
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
    /// Instance mask over the pixel window of `bbox` ([`Detection::pixel_window`]); `None` for
    /// box-only detectors and files.
    pub mask: Option<Mask>,
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

    /// The integer pixel window of a box in an image of `width` × `height` pixels: columns
    /// `floor(left) ..= ceil(right)` and rows `floor(top) ..= ceil(bottom)`, clipped to the image, as
    /// `(x0, y0, width, height)`; `None` when the box misses the image. A detection's mask lives in
    /// the window of its box. [`PixelWindow::of_box`] gives the same as a struct.
    pub fn pixel_window(bbox: &Box2d, width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
        PixelWindow::of_box(bbox, width, height).map(|w| (w.x0, w.y0, w.width, w.height))
    }
}
