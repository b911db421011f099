//! Shared geometry of the autolabeler: KITTI calibration with named frame transforms, the KITTI 3D box
//! (bottom centre, h w l, rotation_y), 2D boxes, and exact bird's-eye-view and 3D IoU by convex polygon
//! clipping.
//!
//! Conventions (the KITTI ones, used everywhere in the workspace):
//! - `velo`: LIDAR frame, x forward, y left, z up, metres.
//! - `cam0`: reference camera frame before rectification; `rect`: rectified camera-0 frame,
//!   x right, y down, z forward, metres. All labels live in `rect`.
//! - `image`: pixel coordinates of one camera (u right, v down), after projection with `P0`…`P3`.
//! - Transforms are named `b_from_a` and map points in frame `a` to frame `b`.
//! - Angles are radians inside the code; degrees only at the edges (CLI, plots).
//!
//! Geometry and labels use `f64` ([`Real`]): the KITTI devkit evaluates in double precision and our
//! evaluator must reproduce it. Bulk data (point clouds, images) is `f32` where it is stored.

mod angle;
mod box2d;
mod box3d;
mod calib;
mod intrinsics;
pub mod polygon;

pub use angle::{alpha_from_rotation_y, normalize_angle, rotation_y_from_alpha};
pub use box2d::Box2d;
pub use box3d::{Box3d, Size3};
pub use calib::{Calib, Camera};
pub use intrinsics::Intrinsics;

/// The float type of geometry and labels.
pub type Real = f64;

/// Errors of geometric operations.
#[derive(Debug, thiserror::Error)]
pub enum GeomError {
    /// A point lies on or behind the image plane of the camera and has no pixel.
    #[error("point {point_rect:?} (rect frame, m) is behind camera {camera:?}")]
    BehindCamera {
        /// The offending point in the rectified frame.
        point_rect: [Real; 3],
        /// The camera it was projected into.
        camera: Camera,
    },
    /// Back-projection is impossible: the projection matrix is singular for this pixel.
    #[error("camera {camera:?} cannot back-project pixel ({u}, {v}): singular projection")]
    SingularProjection {
        /// The camera.
        camera: Camera,
        /// Pixel column.
        u: Real,
        /// Pixel row.
        v: Real,
    },
}
