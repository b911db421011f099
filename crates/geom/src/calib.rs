//! KITTI object calibration (`calib/*.txt`) and the transforms between its frames.

use crate::{GeomError, Real};
use nalgebra::{Matrix3, Matrix3x4, Matrix4, Point2, Point3, Vector3};
use serde::{Deserialize, Serialize};

/// One of KITTI's four cameras (projection matrices `P0`…`P3`). Labels are for [`Camera::Cam2`], the
/// left colour camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Camera {
    /// Left greyscale camera (the reference camera of the rect frame).
    Cam0,
    /// Right greyscale camera.
    Cam1,
    /// Left colour camera: `image_2`, the labelled one.
    Cam2,
    /// Right colour camera: `image_3`.
    Cam3,
}

impl Camera {
    /// Index 0–3 (the digit in `P2`, `image_2`).
    pub fn index(self) -> usize {
        match self {
            Camera::Cam0 => 0,
            Camera::Cam1 => 1,
            Camera::Cam2 => 2,
            Camera::Cam3 => 3,
        }
    }
}

/// The calibration of one KITTI frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calib {
    /// `P0`…`P3`: `image_from_rect` of each camera (3×4, pixels from rect metres).
    pub p: [Matrix3x4<Real>; 4],
    /// `R0_rect`: `rect_from_cam0` rotation.
    pub r0_rect: Matrix3<Real>,
    /// `Tr_velo_to_cam`: `cam0_from_velo` (3×4 rigid transform).
    pub tr_velo_to_cam: Matrix3x4<Real>,
    /// `Tr_imu_to_velo`: `velo_from_imu` (3×4 rigid transform).
    pub tr_imu_to_velo: Matrix3x4<Real>,
}

/// Pads a 3×4 `[R | t]` to a homogeneous 4×4.
fn homogeneous(m: &Matrix3x4<Real>) -> Matrix4<Real> {
    let mut h = Matrix4::identity();
    h.fixed_view_mut::<3, 4>(0, 0).copy_from(m);
    h
}

/// Exact inverse of a rigid homogeneous transform `[R | t]` (Rᵀ, −Rᵀt), with no general inversion.
fn rigid_inverse(m: &Matrix4<Real>) -> Matrix4<Real> {
    let r_t = m.fixed_view::<3, 3>(0, 0).transpose();
    let t = m.fixed_view::<3, 1>(0, 3).into_owned();
    let mut inv = Matrix4::identity();
    inv.fixed_view_mut::<3, 3>(0, 0).copy_from(&r_t);
    inv.fixed_view_mut::<3, 1>(0, 3).copy_from(&(-(r_t * t)));
    inv
}

impl Calib {
    /// `image_from_rect` of `camera` (its `P` matrix).
    pub fn image_from_rect(&self, camera: Camera) -> Matrix3x4<Real> {
        self.p[camera.index()]
    }

    /// `rect_from_cam0`: `R0_rect` as a homogeneous transform.
    pub fn rect_from_cam0(&self) -> Matrix4<Real> {
        let mut h = Matrix4::identity();
        h.fixed_view_mut::<3, 3>(0, 0).copy_from(&self.r0_rect);
        h
    }

    /// `cam0_from_velo`: `Tr_velo_to_cam` as a homogeneous transform.
    pub fn cam0_from_velo(&self) -> Matrix4<Real> {
        homogeneous(&self.tr_velo_to_cam)
    }

    /// `rect_from_velo = R0_rect · Tr_velo_to_cam`.
    pub fn rect_from_velo(&self) -> Matrix4<Real> {
        self.rect_from_cam0() * self.cam0_from_velo()
    }

    /// `velo_from_rect`, the inverse of [`Calib::rect_from_velo`]. KITTI's matrices are rounded to 7
    /// digits and not exactly orthonormal, so this is a true inverse (rigid inverse only as a fallback).
    pub fn velo_from_rect(&self) -> Matrix4<Real> {
        let m = self.rect_from_velo();
        m.try_inverse().unwrap_or_else(|| rigid_inverse(&m))
    }

    /// `velo_from_imu`: `Tr_imu_to_velo` as a homogeneous transform.
    pub fn velo_from_imu(&self) -> Matrix4<Real> {
        homogeneous(&self.tr_imu_to_velo)
    }

    /// `image_from_velo = P · R0_rect · Tr_velo_to_cam` for `camera`.
    pub fn image_from_velo(&self, camera: Camera) -> Matrix3x4<Real> {
        self.image_from_rect(camera) * self.rect_from_velo()
    }

    /// A LIDAR point in the rect frame.
    pub fn velo_to_rect(&self, p_velo: &Point3<Real>) -> Point3<Real> {
        Point3::from_homogeneous(self.rect_from_velo() * p_velo.to_homogeneous()).unwrap_or(*p_velo)
    }

    /// A rect point in the LIDAR frame.
    pub fn rect_to_velo(&self, p_rect: &Point3<Real>) -> Point3<Real> {
        Point3::from_homogeneous(self.velo_from_rect() * p_rect.to_homogeneous()).unwrap_or(*p_rect)
    }

    /// The calibration of KITTI object training frame 000000 (a real KITTI rig: 1242×375 colour
    /// cameras, HDL-64E), for synthetic data and tests.
    pub fn kitti_reference() -> Calib {
        let m34 = |v: [Real; 12]| Matrix3x4::from_row_slice(&v);
        let p0 = m34([
            707.0493, 0.0, 604.0814, 0.0, 0.0, 707.0493, 180.5066, 0.0, 0.0, 0.0, 1.0, 0.0,
        ]);
        let p1 = m34([
            707.0493, 0.0, 604.0814, -379.7842, 0.0, 707.0493, 180.5066, 0.0, 0.0, 0.0, 1.0, 0.0,
        ]);
        let p2 = m34([
            707.0493,
            0.0,
            604.0814,
            45.75831,
            0.0,
            707.0493,
            180.5066,
            -0.3454157,
            0.0,
            0.0,
            1.0,
            0.004981016,
        ]);
        let p3 = m34([
            707.0493,
            0.0,
            604.0814,
            -334.1081,
            0.0,
            707.0493,
            180.5066,
            2.33066,
            0.0,
            0.0,
            1.0,
            0.003201153,
        ]);
        Calib {
            p: [p0, p1, p2, p3],
            r0_rect: Matrix3::from_row_slice(&[
                0.9999128,
                0.01009263,
                -0.008511932,
                -0.01012729,
                0.9999406,
                -0.004037671,
                0.008470675,
                0.004123522,
                0.9999556,
            ]),
            tr_velo_to_cam: m34([
                0.006927964,
                -0.9999722,
                -0.002757829,
                -0.02457729,
                -0.001162982,
                0.002749836,
                -0.9999955,
                -0.06127237,
                0.9999753,
                0.006931141,
                -0.001143899,
                -0.3321029,
            ]),
            tr_imu_to_velo: m34([
                0.9999976,
                0.0007553071,
                -0.002035826,
                -0.8086759,
                -0.0007854027,
                0.9998898,
                -0.01482298,
                0.3195559,
                0.002024406,
                0.01482454,
                0.9998881,
                -0.7997231,
            ]),
        }
    }

    /// Projects a rect point into `camera`'s image. Errors when the point is not in front of the
    /// camera (homogeneous depth ≤ 1 mm).
    pub fn project_rect_to_image(
        &self,
        camera: Camera,
        p_rect: &Point3<Real>,
    ) -> Result<[Real; 2], GeomError> {
        let h = self.image_from_rect(camera) * p_rect.to_homogeneous();
        if h.z <= 1e-3 {
            return Err(GeomError::BehindCamera {
                point_rect: [p_rect.x, p_rect.y, p_rect.z],
                camera,
            });
        }
        Ok([h.x / h.z, h.y / h.z])
    }

    /// The rect point at depth `depth_m` (its rect z) that projects to pixel `uv` in `camera`: the inverse
    /// of [`Calib::project_rect_to_image`] for a general `P` (including KITTI's translated `P2`, `P3`).
    pub fn back_project_to_rect(
        &self,
        camera: Camera,
        uv: Point2<Real>,
        depth_m: Real,
    ) -> Result<Point3<Real>, GeomError> {
        let p = self.image_from_rect(camera);
        let (u, v) = (uv.x, uv.y);
        // u·(p2·X + t2) = p0·X + t0, v·(p2·X + t2) = p1·X + t1, X.z = depth  →  A X = b.
        let row = |i: usize| Vector3::new(p[(i, 0)], p[(i, 1)], p[(i, 2)]);
        let a0 = row(0) - u * row(2);
        let a1 = row(1) - v * row(2);
        let a = Matrix3::from_rows(&[a0.transpose(), a1.transpose(), Vector3::z().transpose()]);
        let b = Vector3::new(u * p[(2, 3)] - p[(0, 3)], v * p[(2, 3)] - p[(1, 3)], depth_m);
        let x = a
            .lu()
            .solve(&b)
            .ok_or(GeomError::SingularProjection { camera, u, v })?;
        Ok(Point3::from(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velo_rect_round_trip() {
        let calib = Calib::kitti_reference();
        let p_velo = Point3::new(12.3, -4.5, -1.2);
        let back = calib.rect_to_velo(&calib.velo_to_rect(&p_velo));
        assert!((back - p_velo).norm() < 1e-9);
        // LIDAR x (forward) is roughly rect z (forward)
        let p_rect = calib.velo_to_rect(&p_velo);
        assert!((p_rect.z - 12.0).abs() < 0.5 && (p_rect.x - 4.5).abs() < 0.5);
    }

    #[test]
    fn project_and_back_project_invert_each_other() {
        let calib = Calib::kitti_reference();
        for camera in [Camera::Cam0, Camera::Cam1, Camera::Cam2, Camera::Cam3] {
            for p in [
                Point3::new(1.84, 1.47, 8.41),
                Point3::new(-10.0, -1.0, 60.0),
                Point3::new(0.0, 0.0, 4.0),
            ] {
                let [u, v] = calib.project_rect_to_image(camera, &p).unwrap();
                let back = calib
                    .back_project_to_rect(camera, Point2::new(u, v), p.z)
                    .unwrap();
                assert!((back - p).norm() < 1e-9, "{camera:?}: {back} vs {p}");
            }
        }
        assert!(
            calib
                .project_rect_to_image(Camera::Cam2, &Point3::new(1.0, 1.0, -2.0))
                .is_err()
        );
    }

    #[test]
    fn real_label_box_projects_onto_its_2d_box() {
        // 000000: Pedestrian, bbox 712.40 143.00 810.73 307.92, dims 1.89 0.48 1.20, loc 1.84 1.47 8.41, ry 0.01
        let b = crate::Box3d::new(
            Point3::new(1.84, 1.47, 8.41),
            crate::Size3::new(1.89, 0.48, 1.20),
            0.01,
        );
        // KITTI's 2D boxes are annotated, not projected, so they agree only roughly with the 3D box.
        let bbox = b
            .project_to_image(&Calib::kitti_reference(), Camera::Cam2)
            .unwrap();
        let label = crate::Box2d::new(712.40, 143.00, 810.73, 307.92);
        assert!(bbox.iou(&label) > 0.85, "{bbox:?}");
    }
}
