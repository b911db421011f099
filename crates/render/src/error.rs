//! The error type of the renderer.

/// Errors of rendering.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Inputs of inconsistent sizes (positions vs normals vs colours, image vs gradient, …).
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A setting or input outside its domain (non-positive radius or focal length, empty crop, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A tensor operation failed (the candle op).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// CUDA is unavailable (no driver or NVRTC library) or a CUDA call failed.
    #[error("cuda: {0}")]
    Cuda(String),
}

/// `Result` with [`RenderError`].
pub type Result<T, E = RenderError> = std::result::Result<T, E>;
