//! Axis-aligned image boxes.

use crate::Real;
use serde::{Deserialize, Serialize};

/// An axis-aligned box in pixels: `left, top, right, bottom` as in KITTI labels (no +1 convention).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Box2d {
    /// Left edge, px.
    pub left: Real,
    /// Top edge, px.
    pub top: Real,
    /// Right edge, px.
    pub right: Real,
    /// Bottom edge, px.
    pub bottom: Real,
}

impl Box2d {
    /// A box from its edges.
    pub fn new(left: Real, top: Real, right: Real, bottom: Real) -> Self {
        Self {
            left,
            top,
            right,
            bottom,
        }
    }

    /// The smallest box holding all points `(u, v)`; `None` for no points.
    pub fn enclosing(points: impl IntoIterator<Item = [Real; 2]>) -> Option<Self> {
        let mut it = points.into_iter();
        let [u, v] = it.next()?;
        let mut b = Self::new(u, v, u, v);
        for [u, v] in it {
            b.left = b.left.min(u);
            b.right = b.right.max(u);
            b.top = b.top.min(v);
            b.bottom = b.bottom.max(v);
        }
        Some(b)
    }

    /// Width in px.
    pub fn width(&self) -> Real {
        self.right - self.left
    }

    /// Height in px (the quantity KITTI's difficulty levels threshold).
    pub fn height(&self) -> Real {
        self.bottom - self.top
    }

    /// Area in px²; 0 for an empty or inverted box.
    pub fn area(&self) -> Real {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// This box clipped to an image of `width_px` × `height_px`.
    pub fn clipped(&self, width_px: Real, height_px: Real) -> Self {
        Self {
            left: self.left.clamp(0.0, width_px - 1.0),
            top: self.top.clamp(0.0, height_px - 1.0),
            right: self.right.clamp(0.0, width_px - 1.0),
            bottom: self.bottom.clamp(0.0, height_px - 1.0),
        }
    }

    /// Area of the intersection with `other`, px²; 0 when the boxes do not overlap.
    pub fn intersection_area(&self, other: &Self) -> Real {
        let w = self.right.min(other.right) - self.left.max(other.left);
        let h = self.bottom.min(other.bottom) - self.top.max(other.top);
        if w <= 0.0 || h <= 0.0 { 0.0 } else { w * h }
    }

    /// Intersection over union, computed like the KITTI devkit (`imageBoxOverlap`, criterion −1).
    pub fn iou(&self, other: &Self) -> Real {
        let inter = self.intersection_area(other);
        if inter == 0.0 {
            return 0.0;
        }
        let area_a = (self.right - self.left) * (self.bottom - self.top);
        let area_b = (other.right - other.left) * (other.bottom - other.top);
        inter / (area_a + area_b - inter)
    }

    /// Intersection over the area of `self` (the devkit's criterion 0, used for DontCare regions).
    pub fn intersection_over_self(&self, other: &Self) -> Real {
        let inter = self.intersection_area(other);
        if inter == 0.0 {
            return 0.0;
        }
        inter / ((self.right - self.left) * (self.bottom - self.top))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = Box2d::new(10.0, 20.0, 50.0, 60.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&Box2d::new(60.0, 20.0, 80.0, 60.0)), 0.0);
        // touching edges: no overlap
        assert_eq!(a.iou(&Box2d::new(50.0, 20.0, 80.0, 60.0)), 0.0);
        // shifted by half the width: inter 20×40, union 60×40
        let b = Box2d::new(30.0, 20.0, 70.0, 60.0);
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-12);
        assert!((a.intersection_over_self(&b) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn enclosing_and_clipping() {
        let b = Box2d::enclosing([[5.0, 7.0], [-3.0, 9.0], [2000.0, 1.0]]).unwrap();
        assert_eq!(b, Box2d::new(-3.0, 1.0, 2000.0, 9.0));
        assert_eq!(b.clipped(1242.0, 375.0), Box2d::new(0.0, 1.0, 1241.0, 9.0));
        assert!(Box2d::enclosing(std::iter::empty()).is_none());
    }
}
