//! The curriculum's errors.

use thiserror::Error;

/// What can go wrong in a curriculum round.
#[derive(Debug, Error)]
pub enum CurriculumError {
    /// The autolabeler failed as a whole (frames failing alone are reported, not raised).
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
    /// Rendering a label's targets failed.
    #[error(transparent)]
    Render(#[from] render::RenderError),
    /// Decoding a label's shape failed.
    #[error(transparent)]
    Shape(#[from] deepsdf::DeepSdfError),
    /// Reading ground truth for the report failed.
    #[error(transparent)]
    Kitti(#[from] kitti::KittiError),
    /// Input that cannot be used.
    #[error("{0}")]
    InvalidInput(String),
}

/// Result with [`CurriculumError`].
pub type Result<T> = std::result::Result<T, CurriculumError>;
