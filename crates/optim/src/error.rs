//! The error type of the optimiser.

/// Why an object could not be optimised.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    /// An input value is NaN or infinite, a size does not match, or a setting is out of range.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The shape code decodes to no surface point.
    #[error("the shape code decodes to an empty surface")]
    EmptySurface,
    /// Neither LIDAR points nor an image view: nothing to fit to.
    #[error("no evidence: no LIDAR point and no image view")]
    NoEvidence,
    /// Decoding the shape failed.
    #[error(transparent)]
    Shape(#[from] deepsdf::DeepSdfError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] render::RenderError),
}

/// `Result` with [`OptimError`].
pub type Result<T, E = OptimError> = std::result::Result<T, E>;
