//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong in the refinement.
#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    /// Arguments that do not fit together (sizes, non-finite values).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Nothing to work on (no crops, no rendered pixels).
    #[error("empty: {0}")]
    Empty(String),
    /// A weights file that cannot be read or written.
    #[error("weights {path}: {message}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The renderer failed.
    #[error(transparent)]
    Render(#[from] render::RenderError),
    /// The shape prior failed.
    #[error(transparent)]
    DeepSdf(#[from] deepsdf::DeepSdfError),
    /// Crop generation (the CSS crate's helpers) failed.
    #[error(transparent)]
    Css(#[from] css::CssError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, RefineError>;
