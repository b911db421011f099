//! The error type of the autolabeler.

use std::path::PathBuf;

/// Why a frame, an object or a run failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Reading a frame's inputs failed (names the file).
    #[error(transparent)]
    Kitti(#[from] kitti::KittiError),
    /// Reading detections failed (names the file).
    #[error(transparent)]
    Detection(#[from] detection::DetectionError),
    /// The CSS network failed.
    #[error("CSS network: {0}")]
    Css(#[from] css::CssError),
    /// Decoding a shape failed.
    #[error("shape prior: {0}")]
    Shape(#[from] deepsdf::DeepSdfError),
    /// Pose initialisation or box fitting failed.
    #[error("pose: {0}")]
    Pose(#[from] pose::PoseError),
    /// The depth map could not be read (names the file).
    #[error("depth: {0}")]
    Depth(#[from] depth::DepthError),
    /// The optimisation failed.
    #[error("optimisation: {0}")]
    Optim(#[from] optim::OptimError),
    /// A configuration file is malformed or inconsistent.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing an output failed.
    #[error("{path}: {message}")]
    Output {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Input that cannot be labelled (names the frame).
    #[error("{0}")]
    InvalidInput(String),
}

/// `Result` with [`PipelineError`].
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
