//! The KITTI 3D box: bottom-face centre in the rect frame, height/width/length, yaw about the rect y
//! axis; corners, image projection, bird's-eye rectangle and exact BEV and 3D IoU.

use crate::polygon::{self, Point2};
use crate::{Box2d, Calib, Camera, Real, alpha_from_rotation_y};
use nalgebra::{Point3, Rotation3, Vector3};
use serde::{Deserialize, Serialize};

/// Object size in metres (KITTI's `dimensions` field is `h w l`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Size3 {
    /// Height along rect y, m.
    pub height_m: Real,
    /// Width along the object's lateral axis, m.
    pub width_m: Real,
    /// Length along the object's heading, m.
    pub length_m: Real,
}

impl Size3 {
    /// Size from KITTI's `h w l` order.
    pub fn new(height_m: Real, width_m: Real, length_m: Real) -> Self {
        Self {
            height_m,
            width_m,
            length_m,
        }
    }

    /// Volume, m³.
    pub fn volume_m3(&self) -> Real {
        self.height_m * self.width_m * self.length_m
    }
}

/// A KITTI 3D box. The object frame has x along the heading (length), y down (height, the box spans
/// `[y − h, y]` in rect), z lateral (width); `rotation_y` turns it about rect y, and
/// `rotation_y = 0` points the heading along rect +x.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Box3d {
    /// Centre of the bottom face in the rect frame, m (KITTI's `location`).
    pub bottom_center_rect: Point3<Real>,
    /// Height, width, length.
    pub size: Size3,
    /// Yaw about rect y, rad (KITTI's `rotation_y`).
    pub rotation_y_rad: Real,
}

impl Box3d {
    /// A box from KITTI's fields.
    pub fn new(bottom_center_rect: Point3<Real>, size: Size3, rotation_y_rad: Real) -> Self {
        Self {
            bottom_center_rect,
            size,
            rotation_y_rad,
        }
    }

    /// The tightest upright box (yaw about rect y only) around `points_rect` (rect frame, m): yaw
    /// from `heading_rect` projected onto the x–z plane (its y component is ignored), extents the
    /// tight bounds of the points along the heading, down and across it, the bottom face at the
    /// lowest point (largest rect y). This is the label box of a mesh given its vertices.
    ///
    /// `None` when there are no points, a point is not finite, or the heading has no finite, non-zero
    /// x–z component.
    pub fn tight_upright(points_rect: &[Point3<Real>], heading_rect: &Vector3<Real>) -> Option<Self> {
        let (hx, hz) = (heading_rect.x, heading_rect.z);
        if points_rect.is_empty()
            || !(hx.is_finite() && hz.is_finite())
            || (hx == 0.0 && hz == 0.0)
            || !points_rect.iter().all(|p| p.coords.iter().all(|v| v.is_finite()))
        {
            return None;
        }
        // The heading at rotation_y = ry is (cos ry, 0, −sin ry).
        let ry = (-hz).atan2(hx);
        let local_from_rect = Rotation3::from_axis_angle(&Vector3::y_axis(), -ry);
        let mut lo = Vector3::repeat(Real::INFINITY);
        let mut hi = Vector3::repeat(Real::NEG_INFINITY);
        for p in points_rect {
            let q = local_from_rect * p.coords;
            lo = lo.inf(&q);
            hi = hi.sup(&q);
        }
        // Rect y points down: the bottom is max y.
        let bottom_local = Vector3::new((lo.x + hi.x) / 2.0, hi.y, (lo.z + hi.z) / 2.0);
        let bottom_rect = local_from_rect.inverse() * bottom_local;
        Some(Self::new(
            Point3::from(bottom_rect),
            Size3 {
                height_m: hi.y - lo.y,
                width_m: hi.z - lo.z,
                length_m: hi.x - lo.x,
            },
            ry,
        ))
    }

    /// Rotation that takes object-frame vectors to the rect frame.
    pub fn rect_from_object_rotation(&self) -> Rotation3<Real> {
        Rotation3::from_axis_angle(&Vector3::y_axis(), self.rotation_y_rad)
    }

    /// Geometric centre (half-way up the box) in rect, m.
    pub fn center_rect(&self) -> Point3<Real> {
        self.bottom_center_rect - Vector3::new(0.0, self.size.height_m / 2.0, 0.0)
    }

    /// The eight corners in rect, m: bottom face first (front-left, front-right, rear-right, rear-left
    /// seen from above with the heading as front), then the top face in the same order.
    pub fn corners_rect(&self) -> [Point3<Real>; 8] {
        let Size3 {
            height_m: h,
            width_m: w,
            length_m: l,
        } = self.size;
        let r = self.rect_from_object_rotation();
        let xs = [l / 2.0, l / 2.0, -l / 2.0, -l / 2.0];
        let zs = [w / 2.0, -w / 2.0, -w / 2.0, w / 2.0];
        std::array::from_fn(|i| {
            let y = if i < 4 { 0.0 } else { -h };
            self.bottom_center_rect + r * Vector3::new(xs[i % 4], y, zs[i % 4])
        })
    }

    /// The bird's-eye rectangle: the four bottom corners as `(x, z)` in rect, m.
    pub fn bev_corners(&self) -> [Point2; 4] {
        let (s, c) = self.rotation_y_rad.sin_cos();
        let (hl, hw) = (self.size.length_m / 2.0, self.size.width_m / 2.0);
        let (x0, z0) = (self.bottom_center_rect.x, self.bottom_center_rect.z);
        // Same corner order and rotation as the devkit's toPolygon: (x, z) ↦ (c·x + s·z, −s·x + c·z).
        [[hl, hw], [hl, -hw], [-hl, -hw], [-hl, hw]].map(|[x, z]| [x0 + c * x + s * z, z0 - s * x + c * z])
    }

    /// KITTI observation angle of this box.
    pub fn alpha_rad(&self) -> Real {
        alpha_from_rotation_y(
            self.rotation_y_rad,
            self.bottom_center_rect.x,
            self.bottom_center_rect.z,
        )
    }

    /// Area of the BEV overlap with `other`, m².
    pub fn bev_intersection_area(&self, other: &Self) -> Real {
        polygon::convex_intersection_area(&self.bev_corners(), &other.bev_corners())
    }

    /// Bird's-eye-view IoU (rotated rectangles in the x–z plane), exact.
    pub fn bev_iou(&self, other: &Self) -> Real {
        let inter = self.bev_intersection_area(other);
        if inter == 0.0 {
            return 0.0;
        }
        let area_a = polygon::area(&self.bev_corners());
        let area_b = polygon::area(&other.bev_corners());
        inter / (area_a + area_b - inter)
    }

    /// Overlap of the vertical extents `[y − h, y]`, m (0 when disjoint).
    pub fn height_overlap_m(&self, other: &Self) -> Real {
        let y_max = self.bottom_center_rect.y.min(other.bottom_center_rect.y);
        let y_min = (self.bottom_center_rect.y - self.size.height_m)
            .max(other.bottom_center_rect.y - other.size.height_m);
        (y_max - y_min).max(0.0)
    }

    /// Volume of the intersection with `other`, m³ (boxes rotate about y only, so BEV area × height).
    pub fn intersection_volume_m3(&self, other: &Self) -> Real {
        let dy = self.height_overlap_m(other);
        if dy == 0.0 {
            0.0
        } else {
            self.bev_intersection_area(other) * dy
        }
    }

    /// 3D IoU, exact (the devkit's `box3DOverlap`).
    pub fn iou_3d(&self, other: &Self) -> Real {
        let inter = self.intersection_volume_m3(other);
        if inter == 0.0 {
            return 0.0;
        }
        inter / (self.size.volume_m3() + other.size.volume_m3() - inter)
    }

    /// The 2D box enclosing the projected corners in `camera`'s image, unclipped; `None` when a corner
    /// is behind the camera.
    pub fn project_to_image(&self, calib: &Calib, camera: Camera) -> Option<Box2d> {
        let mut uv = Vec::with_capacity(8);
        for c in self.corners_rect() {
            uv.push(calib.project_rect_to_image(camera, &c).ok()?);
        }
        Box2d::enclosing(uv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_4};

    fn car(x: Real, y: Real, z: Real, ry: Real) -> Box3d {
        Box3d::new(Point3::new(x, y, z), Size3::new(1.5, 1.6, 3.9), ry)
    }

    #[test]
    fn identical_boxes_have_iou_one() {
        for ry in [-3.0, -1.59, 0.0, 0.01, 1.2, FRAC_PI_2] {
            let b = car(-0.65, 1.71, 46.70, ry);
            assert!((b.bev_iou(&b) - 1.0).abs() < 1e-12, "ry {ry}: {}", b.bev_iou(&b));
            assert!((b.iou_3d(&b) - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn disjoint_boxes_have_iou_zero() {
        let a = car(0.0, 1.7, 20.0, 0.3);
        assert_eq!(a.bev_iou(&car(10.0, 1.7, 20.0, 0.3)), 0.0);
        // same footprint, stacked vertically
        assert_eq!(a.iou_3d(&car(0.0, 1.7 - 1.5, 20.0, 0.3)), 0.0);
    }

    #[test]
    fn rotated_overlaps_match_hand_computed_values() {
        // 2×2 footprints, one turned by 45° about the same centre: octagon of area 8(√2 − 1).
        let a = Box3d::new(Point3::new(0.0, 0.0, 10.0), Size3::new(1.0, 2.0, 2.0), 0.0);
        let b = Box3d {
            rotation_y_rad: FRAC_PI_4,
            ..a
        };
        let inter = 8.0 * (2.0_f64.sqrt() - 1.0);
        assert!((a.bev_intersection_area(&b) - inter).abs() < 1e-12);
        assert!((a.bev_iou(&b) - inter / (8.0 - inter)).abs() < 1e-12);
        // A 4×2 box turned by 90° about the same centre overlaps in a 2×2 square: IoU 4 / 12.
        let c = Box3d::new(Point3::new(3.0, 1.0, 7.0), Size3::new(1.0, 2.0, 4.0), 0.0);
        let d = Box3d {
            rotation_y_rad: FRAC_PI_2,
            ..c
        };
        assert!((c.bev_iou(&d) - 4.0 / 12.0).abs() < 1e-12);
        // …and shifted up by half its height: 3D IoU = (4 · 0.5) / (8 + 8 − 2).
        let e = Box3d {
            bottom_center_rect: Point3::new(3.0, 0.5, 7.0),
            ..d
        };
        assert!((c.iou_3d(&e) - 2.0 / 14.0).abs() < 1e-12);
    }

    #[test]
    fn bev_and_3d_iou_agree_for_equal_vertical_extent() {
        use rand::{RngExt, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..500 {
            let a = car(
                rng.random_range(-2.0..2.0),
                1.7,
                rng.random_range(18.0..22.0),
                rng.random_range(-3.2..3.2),
            );
            let b = car(
                rng.random_range(-2.0..2.0),
                1.7,
                rng.random_range(18.0..22.0),
                rng.random_range(-3.2..3.2),
            );
            let (bev, iou3d) = (a.bev_iou(&b), a.iou_3d(&b));
            assert!((0.0..=1.0).contains(&bev));
            assert!((bev - iou3d).abs() < 1e-12, "{bev} vs {iou3d}");
            // 3D IoU never exceeds BEV IoU when heights differ
            let c = Box3d {
                size: Size3 {
                    height_m: 1.2,
                    ..b.size
                },
                ..b
            };
            assert!(a.iou_3d(&c) <= a.bev_iou(&c) + 1e-12);
            assert!((a.bev_iou(&b) - b.bev_iou(&a)).abs() < 1e-12);
        }
    }

    #[test]
    fn the_tight_upright_box_of_a_boxs_corners_is_that_box() {
        for ry in [-3.0, -FRAC_PI_2, -0.4, 0.0, 0.7, FRAC_PI_2, 2.5] {
            let b = Box3d::new(Point3::new(-3.2, 1.7, 25.0), Size3::new(1.5, 1.6, 3.9), ry);
            let (s, c) = Real::sin_cos(ry);
            // A heading with a vertical component and any length gives the same yaw.
            let heading = Vector3::new(2.0 * c, 0.3, -2.0 * s);
            let got = Box3d::tight_upright(&b.corners_rect(), &heading).expect("a box");
            assert!(
                (got.bottom_center_rect - b.bottom_center_rect).norm() < 1e-12,
                "ry {ry}: {got:?}"
            );
            assert!((got.size.height_m - 1.5).abs() < 1e-12);
            assert!((got.size.width_m - 1.6).abs() < 1e-12);
            assert!((got.size.length_m - 3.9).abs() < 1e-12);
            assert!(
                (crate::normalize_angle(got.rotation_y_rad - ry)).abs() < 1e-12,
                "ry {ry}: {}",
                got.rotation_y_rad
            );
            // Points inside the box change nothing.
            let mut points = b.corners_rect().to_vec();
            points.push(b.center_rect());
            assert_eq!(Box3d::tight_upright(&points, &heading), Some(got));
        }
    }

    #[test]
    fn the_tight_upright_box_needs_points_and_a_horizontal_heading() {
        let corners = car(0.0, 1.7, 20.0, 0.3).corners_rect();
        assert_eq!(Box3d::tight_upright(&[], &Vector3::x()), None);
        assert_eq!(Box3d::tight_upright(&corners, &Vector3::y()), None);
        assert_eq!(
            Box3d::tight_upright(&corners, &Vector3::new(Real::NAN, 0.0, 1.0)),
            None
        );
        let mut bad = corners.to_vec();
        bad[3].x = Real::INFINITY;
        assert_eq!(Box3d::tight_upright(&bad, &Vector3::x()), None);
        // One point: a box of zero size at it.
        let p = Point3::new(1.0, 2.0, 3.0);
        let b = Box3d::tight_upright(&[p], &Vector3::z()).expect("a box");
        assert!((b.bottom_center_rect - p).norm() < 1e-12 && b.size.volume_m3() == 0.0);
    }

    #[test]
    fn corners_span_the_box() {
        let b = car(1.0, 2.0, 30.0, 0.7);
        let cs = b.corners_rect();
        let centroid = cs.iter().fold(Vector3::zeros(), |acc, c| acc + c.coords) / 8.0;
        assert!((centroid - b.center_rect().coords).norm() < 1e-12);
        // edge lengths: l along 0→3? bottom face 0-1 is the width edge, 1-2 the length edge, 0-4 the height
        assert!(((cs[0] - cs[1]).norm() - 1.6).abs() < 1e-12);
        assert!(((cs[1] - cs[2]).norm() - 3.9).abs() < 1e-12);
        assert!(((cs[0] - cs[4]).norm() - 1.5).abs() < 1e-12);
        assert!((cs[4].y - (2.0 - 1.5)).abs() < 1e-12);
        // the BEV rectangle is the bottom face seen from above
        for (bev, c) in b.bev_corners().iter().zip(&cs[..4]) {
            assert!((bev[0] - c.x).abs() < 1e-12 && (bev[1] - c.z).abs() < 1e-12);
        }
        // heading (front face centre − centre) points along (cos ry, 0, −sin ry)
        let front = (cs[0].coords + cs[1].coords) / 2.0 - b.bottom_center_rect.coords;
        let dir = front / front.norm();
        assert!((dir - Vector3::new(0.7_f64.cos(), 0.0, -(0.7_f64.sin()))).norm() < 1e-12);
    }
}
