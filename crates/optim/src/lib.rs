//! Render-and-compare optimisation of one object (METHODS.md §1, "Optimisation"): yaw about the
//! ground normal, translation, scale and the DeepSDF shape code, fitted with Adam to the object's
//! LIDAR points (3D losses, back faces culled, robust with a cut-off), to the CSS network's NOCS
//! and mask through the differentiable surfel renderer (2D losses), to the ground plane and to
//! priors on scale and shape; and the confidence of the resulting label.
//!
//! - [`state`]: the parameters ([`ObjectState`]) and the evidence ([`Observation`], [`View`],
//!   [`GroundPlane`]).
//! - [`losses`]: every term with its analytic gradient (checked against finite differences in the
//!   tests); the code's gradient comes from the surface points' Jacobians.
//! - [`fit`]: the [`Optimiser`] (Adam, multi-start yaw, cut-off annealing, shape decoded only on
//!   code steps, early stop, best iterate kept), one object or several in parallel.
//! - [`confidence`]: the label score from residuals and consistency, and MonoDR's c3D to compare.
//! - [`config`]: [`OptimConfig`] with the loss weights.
//! - [`mono`]: the monocular mode (MonoDR): ROI-10D location, pixel/box/mask/depth/dimension
//!   losses through the renderer, Adam, the rotation escape.

mod adam;
pub mod confidence;
pub mod config;
mod error;
pub mod fit;
pub mod losses;
pub mod mono;
pub mod state;

pub use config::{LossWeights, OptimConfig};
pub use error::{OptimError, Result};
pub use fit::{Fit, Optimiser};
pub use state::{GroundPlane, ObjectState, Observation, View};
