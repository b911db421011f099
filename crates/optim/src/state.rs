//! What is optimised (yaw about the ground normal, translation, scale, shape code) and the evidence
//! it is optimised against.

use crate::error::{OptimError, Result};
use nalgebra::{Matrix3, Rotation3, Unit, Vector3};
use render::CropCamera;

/// The ground plane in the rect frame: `up · p + offset = 0`, `up` a unit vector pointing up (about
/// −y in the rect frame), signed distances positive above.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroundPlane {
    /// Unit normal, pointing up, rect frame.
    pub up_rect: Unit<Vector3<f64>>,
    /// Offset, m.
    pub offset_m: f64,
}

impl GroundPlane {
    /// The level plane `y = height_m` of the rect frame (the road `height_m` below the camera).
    pub fn level(height_m: f64) -> Self {
        GroundPlane {
            up_rect: Unit::new_normalize(-Vector3::y()),
            offset_m: height_m,
        }
    }

    /// Signed height of `p_rect` above the plane, m.
    pub fn height_m(&self, p_rect: &Vector3<f64>) -> f64 {
        self.up_rect.dot(p_rect) + self.offset_m
    }

    /// The rotation that takes the level up direction (−y) onto this plane's up, by the smallest
    /// angle.
    pub fn tilt(&self) -> Rotation3<f64> {
        Rotation3::rotation_between(&-Vector3::y(), &self.up_rect.into_inner())
            .unwrap_or_else(Rotation3::identity)
    }
}

/// One object's pose and shape: `p_rect = scale · R(yaw) · p_model + translation`, with `p_model` in
/// the shape prior's canonical units (+x left, +y up, +z forward, origin at the shape's box centre)
/// and `R(yaw) = tilt · level(yaw)`: `level(yaw)` turns the model frame into the rect frame with
/// the heading at KITTI `rotation_y = yaw`, `tilt` leans it onto the ground plane.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectState {
    /// Yaw about the ground normal, rad (KITTI rotation_y on level ground).
    pub yaw_rad: f64,
    /// The canonical origin in the rect frame, m.
    pub translation_rect_m: Vector3<f64>,
    /// Metres per canonical unit.
    pub scale: f64,
    /// Shape code (unit norm).
    pub latent: Vec<f32>,
}

/// The rotation from the canonical model frame to the level rect frame at KITTI `rotation_y = yaw`:
/// model forward (+z) goes to the heading (cos yaw, 0, −sin yaw), model up (+y) to −y, model left
/// (+x) to up × forward.
pub fn level_rotation(yaw_rad: f64) -> Matrix3<f64> {
    let (s, c) = yaw_rad.sin_cos();
    Matrix3::new(s, 0.0, c, 0.0, -1.0, 0.0, c, 0.0, -s)
}

/// ∂[`level_rotation`]/∂yaw.
pub fn level_rotation_derivative(yaw_rad: f64) -> Matrix3<f64> {
    let (s, c) = yaw_rad.sin_cos();
    Matrix3::new(c, 0.0, -s, 0.0, 0.0, 0.0, -s, 0.0, -c)
}

impl ObjectState {
    /// `rect_from_model` rotation on `ground`.
    pub fn rotation(&self, ground: &GroundPlane) -> Matrix3<f64> {
        ground.tilt().matrix() * level_rotation(self.yaw_rad)
    }

    /// ∂rotation/∂yaw on `ground`.
    pub fn rotation_derivative(&self, ground: &GroundPlane) -> Matrix3<f64> {
        ground.tilt().matrix() * level_rotation_derivative(self.yaw_rad)
    }

    /// The yaw about `ground`'s normal of a `rect_from_model` rotation (its heading, model +z,
    /// untilted and read as a KITTI rotation_y).
    pub fn yaw_of(rotation: &Matrix3<f64>, ground: &GroundPlane) -> f64 {
        let heading = ground.tilt().inverse() * (rotation * Vector3::z());
        (-heading.z).atan2(heading.x)
    }

    /// The KITTI rotation_y of the heading (model +z) in the rect frame.
    pub fn rotation_y(&self, ground: &GroundPlane) -> f64 {
        let heading = self.rotation(ground) * Vector3::z();
        (-heading.z).atan2(heading.x)
    }

    /// A model point in the rect frame.
    pub fn to_rect(&self, ground: &GroundPlane, p_model: &[f32; 3]) -> Vector3<f64> {
        self.rotation(ground) * v3(p_model) * self.scale + self.translation_rect_m
    }

    pub(crate) fn validate(&self, latent_dim: usize) -> Result<()> {
        let finite = self.yaw_rad.is_finite()
            && self.translation_rect_m.iter().all(|v| v.is_finite())
            && self.scale.is_finite()
            && self.scale > 0.0
            && self.latent.iter().all(|v| v.is_finite());
        if !finite {
            return Err(OptimError::InvalidInput(format!("object state {self:?}")));
        }
        if self.latent.len() != latent_dim {
            return Err(OptimError::InvalidInput(format!(
                "a shape code of {} values for a decoder with latent size {latent_dim}",
                self.latent.len()
            )));
        }
        Ok(())
    }
}

/// The image evidence of one object: the CSS network's maps over its crop, and the crop's camera.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Camera of the map grid (the crop at map resolution), camera frame.
    pub camera: CropCamera,
    /// The rect origin in the camera frame (camera = rect + this; the rotation is the identity for
    /// KITTI's `P2`), m.
    pub cam_from_rect_m: Vector3<f64>,
    /// Predicted NOCS per map pixel, row-major.
    pub nocs: Vec<[f32; 3]>,
    /// Predicted mask probability per map pixel, row-major.
    pub mask_prob: Vec<f32>,
}

/// Everything an object is fitted to.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The object's LIDAR points (its frustum, ground removed), rect frame, m.
    pub lidar_rect: Vec<Vector3<f64>>,
    /// The LIDAR's origin in the rect frame (for back-face culling), m.
    pub sensor_rect: Vector3<f64>,
    /// The ground plane, rect frame.
    pub ground: GroundPlane,
    /// The image evidence, when there is a CSS prediction.
    pub view: Option<View>,
}

impl Observation {
    pub(crate) fn validate(&self) -> Result<()> {
        let finite = |v: &Vector3<f64>| v.iter().all(|x| x.is_finite());
        if !self.lidar_rect.iter().all(finite) || !finite(&self.sensor_rect) {
            return Err(OptimError::InvalidInput(
                "non-finite LIDAR point or sensor origin".into(),
            ));
        }
        if !finite(&self.ground.up_rect) || !self.ground.offset_m.is_finite() {
            return Err(OptimError::InvalidInput(format!(
                "ground plane {:?}",
                self.ground
            )));
        }
        if let Some(view) = &self.view {
            let n = view.camera.pixels();
            if view.nocs.len() != n || view.mask_prob.len() != n {
                return Err(OptimError::InvalidInput(format!(
                    "view maps of {} and {} values for a {}×{} camera",
                    view.nocs.len(),
                    view.mask_prob.len(),
                    view.camera.width,
                    view.camera.height
                )));
            }
            let ok = view
                .nocs
                .iter()
                .flatten()
                .chain(&view.mask_prob)
                .all(|v| v.is_finite());
            if !ok || !finite(&view.cam_from_rect_m) {
                return Err(OptimError::InvalidInput("non-finite CSS map value".into()));
            }
        }
        if self.lidar_rect.is_empty() && self.view.is_none() {
            return Err(OptimError::NoEvidence);
        }
        Ok(())
    }
}

pub(crate) fn v3(p: &[f32; 3]) -> Vector3<f64> {
    Vector3::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
}
