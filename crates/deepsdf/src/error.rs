//! The error type of the shape prior.

use std::path::PathBuf;

/// Errors of sampling, training, loading and decoding.
#[derive(Debug, thiserror::Error)]
pub enum DeepSdfError {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Stored tensors or inputs do not have the expected shapes.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A weights file is not valid safetensors or lacks a tensor or metadata entry.
    #[error("{path}: {message}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An input is outside its domain (a triangle index past the vertex list, a non-finite
    /// coordinate, a non-positive scale, a grid whose size does not match its values, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Nothing to work with (no shapes, no observations, …).
    #[error("{0}")]
    Empty(String),
}

/// `Result` with [`DeepSdfError`].
pub type Result<T, E = DeepSdfError> = std::result::Result<T, E>;
