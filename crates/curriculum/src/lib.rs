//! The curriculum: SDFLabel's self-improving annotation loop (METHODS.md §1, "Curriculum").
//!
//! Round 0 is the CSS network trained on clean synthetic crops. Each round then
//! 1. autolabels the unlabelled `target`-domain frames with the current network
//!    ([`round::label_frames`]);
//! 2. verifies every label without ground truth ([`verify::verify`]: confidence, projected box
//!    against the detection, LIDAR support and residual, silhouette, a car's size);
//! 3. accepts the verified labels from easy to hard ([`verify::difficulty`]: distance, the hidden
//!    fraction of the rendered car, truncation) within the round's budget;
//! 4. renders NOCS and mask targets from the accepted labels' own shapes and poses
//!    ([`targets::target_crop`]) and fine-tunes the network on them together with clean synthetic
//!    crops (`css::train::fine_tune`), the accepted crops' codes with the latent-loss weight
//!    `fine_tune.target_latent_weight` (1 by default);
//!
//! and the next round labels with the fine-tuned network. `cargo xtask curriculum` drives the
//! rounds, evaluates each round's network on the validation set and writes `rounds.json`.
//! Ground truth is read only for the reports ([`round::precision`]).

pub mod config;
mod error;
pub mod round;
pub mod targets;
pub mod verify;

pub use config::CurriculumConfig;
pub use error::{CurriculumError, Result};
