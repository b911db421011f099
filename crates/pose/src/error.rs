//! The error type of pose estimation.

/// Why no pose (or plane) could be estimated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoseError {
    /// Fewer points (or correspondences) than the solver needs.
    #[error("{got} points, at least {need} needed")]
    NotEnoughPoints {
        /// How many were given.
        got: usize,
        /// How many the solver needs.
        need: usize,
    },
    /// The points do not determine the transform (collinear, coincident, or all on the rotation
    /// axis).
    #[error("degenerate configuration: {0}")]
    Degenerate(String),
    /// RANSAC found no model with enough inliers.
    #[error("no consensus: the best model has {inliers} inliers, {needed} needed")]
    NoConsensus {
        /// Inliers of the best model.
        inliers: usize,
        /// The minimum asked for.
        needed: usize,
    },
    /// No LIDAR point is left in the detection's frustum (after ground removal).
    #[error("empty frustum: {0}")]
    EmptyFrustum(String),
    /// An input value is NaN or infinite, or a setting is out of range.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// `Result` with [`PoseError`].
pub type Result<T, E = PoseError> = std::result::Result<T, E>;
