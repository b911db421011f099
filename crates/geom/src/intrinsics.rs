//! Pinhole intrinsics, and their adjustment to an image crop.

use crate::{Box2d, Real};
use nalgebra::{Matrix3x4, Point3, Vector3};
use serde::{Deserialize, Serialize};

/// A pinhole camera without skew, pixels: `u = fx·x/z + cx`, `v = fy·y/z + cy` for a point in the
/// camera's own frame (x right, y down, z forward). Integer pixel coordinates are pixel centres, so
/// pixel `i` covers `[i − 0.5, i + 0.5]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intrinsics {
    /// Focal length along u, px.
    pub fx: Real,
    /// Focal length along v, px.
    pub fy: Real,
    /// Principal point, u, px.
    pub cx: Real,
    /// Principal point, v, px.
    pub cy: Real,
}

impl Intrinsics {
    /// Splits a KITTI projection matrix `P = K·[I | t]` (`P2`, `P3` carry a baseline in `t`) into the
    /// intrinsics `K` and the translation `t` that takes rect points into this camera's frame
    /// (`p_cam = p_rect + t`). Skew and `P[2][0..3]` other than `(0, 0, 1)` are ignored, as in KITTI.
    pub fn from_projection(image_from_rect: &Matrix3x4<Real>) -> (Intrinsics, Vector3<Real>) {
        let p = image_from_rect;
        let k = Intrinsics {
            fx: p[(0, 0)],
            fy: p[(1, 1)],
            cx: p[(0, 2)],
            cy: p[(1, 2)],
        };
        let tz = p[(2, 3)];
        let ty = (p[(1, 3)] - k.cy * tz) / k.fy;
        let tx = (p[(0, 3)] - k.cx * tz) / k.fx;
        (k, Vector3::new(tx, ty, tz))
    }

    /// The intrinsics of the crop `window` (continuous image coordinates, pixel centres at integers)
    /// resampled to `width_px × height_px` pixels: `window.left` maps to the left edge of crop pixel 0
    /// (−0.5) and `window.right` to the right edge of the last (`width_px − 0.5`), likewise vertically.
    /// (A KITTI box spans the pixel centres `left..=right`; widen it by half a pixel to crop exactly.)
    pub fn cropped(&self, window: &Box2d, width_px: usize, height_px: usize) -> Intrinsics {
        let sx = width_px as Real / window.width().max(1e-9);
        let sy = height_px as Real / window.height().max(1e-9);
        Intrinsics {
            fx: self.fx * sx,
            fy: self.fy * sy,
            cx: (self.cx - window.left) * sx - 0.5,
            cy: (self.cy - window.top) * sy - 0.5,
        }
    }

    /// The pixel of a point in the camera frame, or `None` when it is not in front (z ≤ 1 mm).
    pub fn project(&self, p_cam: &Point3<Real>) -> Option<[Real; 2]> {
        (p_cam.z > 1e-3).then(|| {
            [
                self.fx * p_cam.x / p_cam.z + self.cx,
                self.fy * p_cam.y / p_cam.z + self.cy,
            ]
        })
    }

    /// The ray through pixel `(u, v)`, scaled to unit depth (its z is 1).
    pub fn ray(&self, u: Real, v: Real) -> Vector3<Real> {
        Vector3::new((u - self.cx) / self.fx, (v - self.cy) / self.fy, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Calib, Camera};

    #[test]
    fn projection_split_reproduces_kitti_p2() {
        let calib = Calib::kitti_reference();
        let (k, t) = Intrinsics::from_projection(&calib.image_from_rect(Camera::Cam2));
        for p in [
            Point3::new(2.0, 1.5, 20.0),
            Point3::new(-7.0, -0.3, 5.0),
            Point3::new(0.1, 2.0, 60.0),
        ] {
            let want = calib.project_rect_to_image(Camera::Cam2, &p).unwrap_or_default();
            let got = k.project(&(p + t)).unwrap_or_default();
            assert!((want[0] - got[0]).abs() < 1e-9 && (want[1] - got[1]).abs() < 1e-9);
        }
    }

    #[test]
    fn crop_maps_window_edges_and_points() {
        let k = Intrinsics {
            fx: 700.0,
            fy: 710.0,
            cx: 600.0,
            cy: 180.0,
        };
        let window = Box2d::new(500.0, 150.0, 628.0, 214.0);
        let c = k.cropped(&window, 64, 32);
        let p = Point3::new(-0.4, 0.2, 8.0);
        let full = k.project(&p).unwrap_or_default();
        let crop = c.project(&p).unwrap_or_default();
        assert!((crop[0] - ((full[0] - 500.0) * 0.5 - 0.5)).abs() < 1e-9);
        assert!((crop[1] - ((full[1] - 150.0) * 0.5 - 0.5)).abs() < 1e-9);
        // The ray through a crop pixel projects back onto that pixel.
        let d = c.ray(10.0, 20.0);
        let back = c.project(&Point3::from(d * 3.0)).unwrap_or_default();
        assert!((back[0] - 10.0).abs() < 1e-9 && (back[1] - 20.0).abs() < 1e-9);
    }
}
