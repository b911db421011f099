//! Integration tests of the `detection` crate: the file formats (PNG instance maps, COCO run-length
//! encoding, box-only), their errors, the `Detector` trait and the detection filter.
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod files;
mod filter;
mod rle;

use detection::{Detection, Mask, PixelWindow};
use geom::Box2d;
use kitti::ObjectType;

/// A detection whose box is `(l, t, r, b)` px.
pub fn det(
    kind: ObjectType,
    (l, t, r, b): (f64, f64, f64, f64),
    score: f64,
    mask: Option<Mask>,
) -> Detection {
    Detection {
        kind,
        bbox: Box2d::new(l, t, r, b),
        score,
        mask,
    }
}

/// The mask of the pixels of `bbox`'s window (in a `size` image) for which `inside` holds.
pub fn mask_in_box(
    (l, t, r, b): (f64, f64, f64, f64),
    size: (u32, u32),
    inside: impl Fn(u32, u32) -> bool,
) -> Mask {
    let window = PixelWindow::of_box(&Box2d::new(l, t, r, b), size.0, size.1).unwrap();
    Mask::from_fn(window, inside)
}
