//! The DeepSDF shape prior (work in progress): signed-distance samples from meshes and the decoder.

pub mod decoder;
mod error;
pub mod fit;
pub mod prior;
pub mod samples;
pub mod surface;
pub mod train;

pub use decoder::{Decoder, DecoderConfig};
pub use error::{DeepSdfError, Result};
