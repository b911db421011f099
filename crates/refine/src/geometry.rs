//! The pose parameters the refinement moves, the projection and its analytic Jacobian.
//!
//! A pose is the renderer's similarity `p_cam = s·R·X + t` (X in the DeepSDF canonical frame,
//! units). The refinement updates it by δ = (δyaw, δt, δln s): `R ← R_y(δyaw)·R` (a turn about the
//! camera's vertical through the object's origin), `t ← t + δt`, `s ← s·exp(δln s)`. For a point
//! `P = s·R·X + t`, `∂P/∂δyaw = ŷ × (P − t)`, `∂P/∂δt = I`, `∂P/∂δln s = P − t`; the pinhole
//! projection `u = fx·x/z + cx, v = fy·y/z + cy` has `∂(u, v)/∂P = [[fx/z, 0, −fx·x/z²],
//! [0, fy/z, −fy·y/z²]]`.

use nalgebra::{Matrix2x3, Matrix3, SMatrix, Vector2, Vector3};
use render::{CropCamera, Pose};

/// Number of pose parameters of an update (δyaw, δtx, δty, δtz, δln s).
pub const PARAMS: usize = 5;

/// The rotation by `angle_rad` about the camera's y axis.
pub fn rot_y(angle_rad: f64) -> Matrix3<f64> {
    let (s, c) = angle_rad.sin_cos();
    Matrix3::new(c, 0.0, s, 0.0, 1.0, 0.0, -s, 0.0, c)
}

/// `pose` moved by `delta` = (δyaw rad, δt m (3), δln s).
pub fn apply_update(pose: &Pose, delta: &[f64; PARAMS]) -> Pose {
    let r = rot_y(delta[0]) * pose.rotation.cast::<f64>();
    let t = pose.translation_m.cast::<f64>() + Vector3::new(delta[1], delta[2], delta[3]);
    Pose {
        rotation: r.cast::<f32>(),
        translation_m: t.cast::<f32>(),
        scale: (f64::from(pose.scale) * delta[4].exp()) as f32,
    }
}

/// The camera-frame point of canonical point `x_unit` under `pose`, in f64.
pub fn to_camera(pose: &Pose, x_unit: &[f32; 3]) -> Vector3<f64> {
    let x = Vector3::new(f64::from(x_unit[0]), f64::from(x_unit[1]), f64::from(x_unit[2]));
    pose.rotation.cast::<f64>() * x * f64::from(pose.scale) + pose.translation_m.cast::<f64>()
}

/// The crop pixel of a camera-frame point (`None` at or behind z = 1 cm).
pub fn project(camera: &CropCamera, p_cam: &Vector3<f64>) -> Option<Vector2<f64>> {
    (p_cam.z > 1e-2).then(|| {
        Vector2::new(
            f64::from(camera.fx) * p_cam.x / p_cam.z + f64::from(camera.cx),
            f64::from(camera.fy) * p_cam.y / p_cam.z + f64::from(camera.cy),
        )
    })
}

/// ∂(u, v)/∂P of [`project`] at `p_cam`.
pub fn projection_jacobian(camera: &CropCamera, p_cam: &Vector3<f64>) -> Matrix2x3<f64> {
    let (fx, fy) = (f64::from(camera.fx), f64::from(camera.fy));
    let iz = 1.0 / p_cam.z;
    Matrix2x3::new(
        fx * iz,
        0.0,
        -fx * p_cam.x * iz * iz,
        0.0,
        fy * iz,
        -fy * p_cam.y * iz * iz,
    )
}

/// ∂P/∂δ (3 × [`PARAMS`]) at camera point `p_cam` of a pose with translation `t_m`.
pub fn point_jacobian(p_cam: &Vector3<f64>, t_m: &Vector3<f64>) -> SMatrix<f64, 3, PARAMS> {
    let d = p_cam - t_m;
    let turn = Vector3::y().cross(&d);
    let mut j = SMatrix::<f64, 3, PARAMS>::zeros();
    j.set_column(0, &turn);
    j.fixed_view_mut::<3, 3>(0, 1).copy_from(&Matrix3::identity());
    j.set_column(4, &d);
    j
}

/// The pixel of `x_unit` under `pose` and its Jacobian with respect to the update δ (2 × [`PARAMS`]).
pub fn project_with_jacobian(
    camera: &CropCamera,
    pose: &Pose,
    x_unit: &[f32; 3],
) -> Option<(Vector2<f64>, SMatrix<f64, 2, PARAMS>)> {
    let p = to_camera(pose, x_unit);
    let uv = project(camera, &p)?;
    let j = projection_jacobian(camera, &p) * point_jacobian(&p, &pose.translation_m.cast::<f64>());
    Some((uv, j))
}

/// The heading of a pose as a KITTI rotation_y (model +z, the car's front, in the camera's x–z
/// plane), rad.
pub fn yaw_of(pose: &Pose) -> f64 {
    let h = pose.rotation.cast::<f64>() * Vector3::z();
    (-h.z).atan2(h.x)
}

/// |a − b| wrapped to [0, π], rad.
pub fn angle_between(a_rad: f64, b_rad: f64) -> f64 {
    geom::normalize_angle(a_rad - b_rad).abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera() -> CropCamera {
        CropCamera {
            fx: 60.0,
            fy: 58.0,
            cx: 23.5,
            cy: 24.0,
            width: 48,
            height: 48,
        }
    }

    fn pose() -> Pose {
        Pose {
            rotation: (rot_y(0.7) * Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0)).cast(),
            translation_m: Vector3::new(0.8, 1.1, 14.0),
            scale: 2.75,
        }
    }

    /// The analytic Jacobian of the projection with respect to the update matches central
    /// differences of [`apply_update`] + [`project`].
    #[test]
    fn projection_jacobian_matches_finite_differences() {
        let cam = camera();
        let p0 = pose();
        for x in [[0.3f32, -0.2, 0.5], [-0.6, 0.1, -0.4], [0.0, 0.35, 0.9]] {
            let (uv, j) = project_with_jacobian(&cam, &p0, &x).expect("in front");
            let at =
                |d: [f64; PARAMS]| project(&cam, &to_camera(&apply_update(&p0, &d), &x)).expect("in front");
            assert!((at([0.0; PARAMS]) - uv).norm() < 1e-3);
            for k in 0..PARAMS {
                let h = 1e-3;
                let mut plus = [0.0; PARAMS];
                let mut minus = [0.0; PARAMS];
                plus[k] = h;
                minus[k] = -h;
                let fd = (at(plus) - at(minus)) / (2.0 * h);
                let an = j.column(k);
                let err = (fd - an).norm();
                assert!(
                    err < 2e-2 * (1.0 + an.norm()),
                    "parameter {k}: finite difference {fd:?}, analytic {an:?}"
                );
            }
        }
    }

    #[test]
    fn yaw_of_reads_the_heading_and_angles_wrap() {
        let p = pose();
        let turned = apply_update(&p, &[0.3, 0.0, 0.0, 0.0, 0.0]);
        let d = angle_between(yaw_of(&turned), yaw_of(&p));
        assert!((d - 0.3).abs() < 1e-5, "{d}");
        assert!((angle_between(3.1, -3.1) - (std::f64::consts::TAU - 6.2)).abs() < 1e-12);
    }
}
