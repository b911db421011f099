//! Pose initialisation (METHODS.md §1, "Pose init"): a first 7-DoF pose per object from point
//! correspondences (CSS NOCS ↔ DeepSDF surface, LIDAR ↔ model), robust to outliers.
//!
//! - [`solvers`]: closed-form minimal and least-squares solvers — Umeyama (similarity, with scale),
//!   Kabsch (rigid), and a yaw-only similarity constrained to rotate about the ground normal (the
//!   natural pose space of cars).
//! - [`ransac`]: RANSAC with n-point samples, an adaptive iteration count
//!   k = log(1 − p)/log(1 − wⁿ) updated from the best inlier ratio, early exit, and a least-squares
//!   refit on the inliers.
//! - [`ground`]: the ground plane from LIDAR by RANSAC on points (not by point normals, which also
//!   delete roofs and bonnets), refined by least squares.
//!
//! - [`frustum`]: a detection's LIDAR points (box, optional mask, ground removed, dominant depth
//!   cluster).
//! - [`correspond`]: NOCS ↔ model-surface correspondences by nearest NOCS (kiddo).
//! - [`pnp`]: PnP for images without LIDAR (RANSAC over calibrated 6-point DLT, Gauss–Newton on
//!   the inliers' reprojection error); with depth, back-project and use [`ransac::estimate`].
//! - [`boxfit`]: the geometry-only baseline the autolabeler is compared with — a ground-aligned
//!   minimum-area box around the frustum points (convex hull, rotating calipers).
//!
//! Degenerate input (too few points, collinear points, no consensus, an empty frustum, non-finite
//! values) gives a typed [`PoseError`], never NaN.

pub mod boxfit;
pub mod correspond;
mod error;
pub mod frustum;
pub mod ground;
pub mod pnp;
pub mod ransac;
pub mod solvers;

pub use error::{PoseError, Result};
pub use solvers::Similarity;
