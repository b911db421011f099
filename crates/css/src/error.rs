//! The error type of the CSS network.

use std::path::PathBuf;

/// Errors of building, training, loading and running the network.
#[derive(Debug, thiserror::Error)]
pub enum CssError {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The shape prior failed (latent targets, decoded shapes).
    #[error(transparent)]
    Prior(#[from] deepsdf::DeepSdfError),
    /// A weights or checkpoint file could not be read or written, or lacks an entry.
    #[error("{path}: {message}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An input is outside its domain (empty crop, box outside the image, wrong sizes, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Nothing to work with (no crops, …).
    #[error("{0}")]
    Empty(String),
}

/// `Result` with [`CssError`].
pub type Result<T, E = CssError> = std::result::Result<T, E>;
