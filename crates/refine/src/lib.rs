//! Learned pose refinement by geometric correspondence fields (GCF, METHODS.md §3): instead of
//! differentiating a rendering's pixels with respect to the pose, a network compares the image crop
//! with a rendering of the object (NOCS, normals, mask) and predicts, per rendered pixel, where that
//! surface point lies in the image — a 2D correspondence field that replaces the rasteriser's
//! backward pass. The field is propagated analytically to the pose through the projection Jacobian
//! of the rendered surface points (Gauss–Newton), and the loop repeats.
//!
//! - [`config`]: the settings file, `configs/refine.toml`.
//! - [`geometry`]: pose update (yaw about the camera's vertical, translation, ln scale), projection
//!   and its Jacobian, heading.
//! - [`field`]: network input of a rendering, surface point per output cell, the true field.
//! - [`data`]: car crops from the synthetic world, the documented start perturbation, samples.
//! - [`net`]: the two-stream network and its weight files.
//! - [`train`]: losses, Adam, seeded and resumable training.
//! - [`solve`]: the pose from weighted 2D–3D pairs.
//! - [`refiner`]: the stage (render → predict → solve, K rounds), [`RefineConfig`].

pub mod config;
pub mod data;
mod error;
pub mod field;
pub mod geometry;
pub mod net;
pub mod refiner;
pub mod solve;
pub mod train;

pub use error::{RefineError, Result};
pub use refiner::{CropInput, FieldSource, RefineConfig, Refinement, Refiner, refine_with};
