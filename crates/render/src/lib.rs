//! A differentiable surfel renderer: oriented surface points (from the DeepSDF prior) drawn as
//! tangent discs into an object's crop, with analytic gradients.
//!
//! - **Forward** ([`render`]): NOCS or colour, normals, depth and a soft mask. Each disc covers a pixel
//!   with a *soft* coverage α = σ(κ(1 − ρ/r)) of its distance ρ from the ray's hit on the disc plane,
//!   so that the silhouette gives gradients to positions; covered discs are blended by a softmax over
//!   depth; the mask is 1 − Π(1 − α). The math is in [`disc`].
//! - **Backward** ([`backward`]): ∂L/∂(positions, normals, colours, pose, scale) from ∂L/∂(image), as
//!   plain Rust, and as the candle op [`RenderOp`] for autograd.
//! - **CPU**: every disc is splatted only into its screen window; tiles blend in parallel (rayon);
//!   the backward pass runs per disc, so results do not depend on the thread count.
//! - **CUDA** (feature `cuda`): the same math as NVRTC-compiled kernels, batched over objects, behind
//!   the same [`Renderer`] trait; [`best_available`] picks it when a GPU is present.

mod backend;
#[cfg(any(feature = "cuda", test))]
mod batch;
mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod disc;
#[cfg(test)]
mod emulate;
mod error;
mod op;
mod types;

pub use backend::{CpuRenderer, Job, Renderer, best_available};
pub use cpu::{backward, render};
pub use error::{RenderError, Result};
pub use op::{CHANNELS, RenderOp, pack, unpack_grad};
pub use types::{CropCamera, Image, ImageGrad, Pose, PoseGrad, RenderConfig, SurfelGrad, Surfels};
