//! The DeepSDF shape prior (METHODS.md §1): signed-distance samples from meshes, an auto-decoder
//! f(z, x) → signed distance in candle, surface extraction with latent Jacobians, latent fitting,
//! meshes and Chamfer distances.
//!
//! - [`samples`]: the canonical frame ([`samples::Normalisation`]: bounding-box centre at the origin,
//!   [`samples::DEFAULT_METRES_PER_UNIT`] metres per unit), exact signed distances of closed meshes
//!   ([`samples::MeshSdf`]: winding-number sign, exact point–triangle distance), near-surface and
//!   uniform SDF samples.
//! - [`decoder`]: the MLP on a unit-sphere latent; values and input gradients.
//! - [`fast`]: plain-Rust inference of the decoder (values and input gradients) for extraction.
//! - [`train`]: auto-decoder training (clamped L1, code regulariser, uniformity term).
//! - [`surface`]: coarse-to-fine 0-isosurface projection → points, normals, NOCS, ∂p/∂z; decoded meshes.
//! - [`fit`]: the latent of partial, noisy surface observations.
//! - [`marching`], [`chamfer`]: isosurface meshes and symmetric Chamfer distances.
//! - [`prior`]: the trained prior on disk (safetensors + metadata).
//! - [`texture`]: surface colour for the monocular mode: a material atlas fitted on the library,
//!   coloured per object by a palette.

pub mod chamfer;
pub mod decoder;
mod error;
pub mod fast;
pub mod fit;
pub mod marching;
pub mod prior;
pub mod samples;
pub mod surface;
pub mod texture;
pub mod train;

pub use decoder::{Decoder, DecoderConfig};
pub use error::{DeepSdfError, Result};
pub use prior::ShapePrior;
