//! `configs/refine.toml`: the network, its data, its training, and the stage's settings.

use crate::data::DataConfig;
use crate::net::NetConfig;
use crate::refiner::RefineConfig;
use crate::train::TrainConfig;
use serde::{Deserialize, Serialize};

/// Everything `cargo xtask train-refine` and `eval-refine` read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefineSettings {
    /// Architecture.
    pub net: NetConfig,
    /// Training crops.
    pub data: DataConfig,
    /// Optimisation.
    pub train: TrainConfig,
    /// The stage (as a pipeline or `eval-refine` runs it).
    pub stage: RefineConfig,
}
