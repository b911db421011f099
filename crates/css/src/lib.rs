//! The CSS network (SDFLabel's "coordinate shape space" net): from a detection crop it predicts,
//! per pixel, where on the car the pixel lies (NOCS), which pixels are car (mask), and which shape
//! the car has (a code of the DeepSDF prior).
//!
//! - [`model`]: the network (ResNet-18-style encoder to `layer3`, U-Net decoder, latent head),
//!   sized by [`model::ModelConfig`] — a narrow 64² default for CPU training, and the paper layout.
//! - [`data`]: crops and exact targets from the synthetic world, and the augmentation.
//! - [`train`]: losses, Adam, seeded and resumable training.
//! - [`infer`]: image + boxes (+ masks) → NOCS, mask probability, latent; batched.
//! - [`weights`]: safetensors files with JSON metadata.

pub mod config;
pub mod conv;
pub mod data;
mod error;
pub mod infer;
pub mod model;
pub mod train;
pub mod weights;

pub use error::{CssError, Result};
pub use infer::{CssModel, Prediction};
pub use model::{CssNet, CssOutput, ModelConfig};
