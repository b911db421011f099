//! The geometry of one frame, in the Velodyne frame, as the sensors see it: an analytic ground plane
//! and a triangle soup whose every triangle knows the scene object and material it belongs to.
//!
//! Velodyne frame: metres, origin at the LIDAR's optical centre, +x forward, +y left, +z up. The
//! sensor is mounted [`LIDAR_MOUNT_HEIGHT_M`] above the ground at its foot.

use crate::mesh::{Material, TriMesh};
use nalgebra::{Isometry3, Point3, Vector3};
use serde::{Deserialize, Serialize};

/// Index of a scene object ([`crate::scene::Scene::objects`]), or one of [`GROUND`] and [`SKY`].
pub type ObjectId = u32;
/// What a ray that hit the ground plane hit.
pub const GROUND: ObjectId = u32::MAX - 1;
/// What a ray that hit nothing hit.
pub const SKY: ObjectId = u32::MAX;

/// Height of the Velodyne above the ground, m (KITTI's recording car).
pub const LIDAR_MOUNT_HEIGHT_M: f64 = 1.73;

/// The road surface: the plane `z = z0 + dz_dx·x + dz_dy·y` (Velodyne frame). A non-zero `dz_dx` is
/// a slope along the road, `dz_dy` a roll (camber) across it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ground {
    /// Height of the ground below the sensor, m (negative: −1.73 for KITTI).
    pub z0_m: f64,
    /// Rise per metre forward.
    pub dz_dx: f64,
    /// Rise per metre to the left.
    pub dz_dy: f64,
}

impl Ground {
    /// A level ground `mount_height_m` below the sensor.
    pub fn level(mount_height_m: f64) -> Self {
        Ground {
            z0_m: -mount_height_m,
            dz_dx: 0.0,
            dz_dy: 0.0,
        }
    }

    /// Ground height at `(x, y)`, m.
    pub fn height_m(&self, x_m: f64, y_m: f64) -> f64 {
        self.z0_m + self.dz_dx * x_m + self.dz_dy * y_m
    }

    /// Unit upward normal.
    pub fn normal_velo(&self) -> Vector3<f64> {
        Vector3::new(-self.dz_dx, -self.dz_dy, 1.0).normalize()
    }

    /// Signed height of `p` above the plane, measured along the normal, m.
    pub fn signed_distance_m(&self, p: &Point3<f64>) -> f64 {
        (p.z - self.height_m(p.x, p.y)) * self.normal_velo().z
    }

    /// Distance `t ≥ 0` along `dir` (any length) at which the ray `origin + t·dir` meets the plane
    /// from above; `None` if it never does.
    pub fn ray_hit(&self, origin: &Point3<f64>, dir: &Vector3<f64>) -> Option<f64> {
        let n = Vector3::new(-self.dz_dx, -self.dz_dy, 1.0);
        let denom = n.dot(dir);
        let h = n.dot(&origin.coords) - self.z0_m; // > 0 above the plane
        if denom >= 0.0 || h <= 0.0 {
            return None;
        }
        Some(-h / denom)
    }

    /// The pose that stands a model-frame object (+y up, +z forward) on the ground at `(x, y)` with
    /// heading `yaw_rad` (angle of the model's +z axis from velo +x towards +y), tilted with the road.
    pub fn velo_from_model(&self, x_m: f64, y_m: f64, yaw_rad: f64) -> Isometry3<f64> {
        let up = self.normal_velo();
        let heading = Vector3::new(yaw_rad.cos(), yaw_rad.sin(), 0.0);
        // Project the heading onto the plane, then complete a right-handed basis (x_model = left).
        let fwd = (heading - up * up.dot(&heading)).normalize();
        let left = up.cross(&fwd);
        let rot = nalgebra::Matrix3::from_columns(&[left, up, fwd]);
        let rotation = nalgebra::UnitQuaternion::from_matrix(&rot);
        let origin = Vector3::new(x_m, y_m, self.height_m(x_m, y_m));
        Isometry3::from_parts(origin.into(), rotation)
    }
}

/// All triangles of a frame in the Velodyne frame, each tagged with its object and material.
#[derive(Clone, Debug, Default)]
pub struct WorldMesh {
    /// Vertex positions, Velodyne frame, m.
    pub vertices: Vec<Point3<f32>>,
    /// Vertex indices of each triangle (counter-clockwise seen from outside).
    pub triangles: Vec<[u32; 3]>,
    /// The object of each triangle.
    pub object: Vec<ObjectId>,
    /// The material of each triangle.
    pub material: Vec<Material>,
}

impl WorldMesh {
    /// Appends `mesh` placed by `velo_from_model` as object `id`.
    pub fn push(&mut self, mesh: &TriMesh, velo_from_model: &Isometry3<f64>, id: ObjectId) {
        let base = self.vertices.len() as u32;
        self.vertices.extend(mesh.vertices.iter().map(|v| {
            let p = velo_from_model * Point3::new(v.x as f64, v.y as f64, v.z as f64);
            Point3::new(p.x as f32, p.y as f32, p.z as f32)
        }));
        self.triangles.extend(
            mesh.triangles
                .iter()
                .map(|t| [t[0] + base, t[1] + base, t[2] + base]),
        );
        self.object.extend(std::iter::repeat_n(id, mesh.triangles.len()));
        self.material.extend_from_slice(&mesh.materials);
    }

    /// Number of triangles.
    pub fn len(&self) -> usize {
        self.triangles.len()
    }

    /// Whether there is no triangle.
    pub fn is_empty(&self) -> bool {
        self.triangles.is_empty()
    }

    /// The corners of triangle `t`.
    pub fn corners(&self, t: usize) -> [Point3<f32>; 3] {
        self.triangles[t].map(|i| self.vertices[i as usize])
    }

    /// Unit geometric normal of triangle `t` (outward for counter-clockwise triangles).
    pub fn normal(&self, t: usize) -> Vector3<f32> {
        let [a, b, c] = self.corners(t);
        (b - a)
            .cross(&(c - a))
            .try_normalize(0.0)
            .unwrap_or_else(Vector3::z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ground_ray_hit_and_pose_stand_on_the_plane() {
        let g = Ground {
            z0_m: -1.73,
            dz_dx: 0.02,
            dz_dy: -0.01,
        };
        let dir = Vector3::new(1.0, 0.3, -0.2);
        let t = g.ray_hit(&Point3::origin(), &dir).unwrap();
        let p = Point3::from(dir * t);
        assert!((p.z - g.height_m(p.x, p.y)).abs() < 1e-9);
        assert!(
            g.ray_hit(&Point3::origin(), &Vector3::new(1.0, 0.0, 0.1))
                .is_none()
        );
        let pose = g.velo_from_model(10.0, -3.0, 0.7);
        let foot = pose * Point3::origin();
        assert!(g.signed_distance_m(&foot).abs() < 1e-9);
        let up = pose * Vector3::y();
        assert!((up - g.normal_velo()).norm() < 1e-9);
        let fwd = pose * Vector3::z();
        assert!((fwd.y.atan2(fwd.x) - 0.7).abs() < 0.02);
    }
}
