//! `configs/css.toml`: the network, its data and its training.

use crate::data::{CropConfig, ShapeWeightConfig};
use crate::model::ModelConfig;
use crate::train::TrainConfig;
use serde::{Deserialize, Serialize};

/// Where the training crops come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataConfig {
    /// Seed of the generated training frames (evaluation uses other seeds).
    pub seed: u64,
    /// Frames generated for training (`clean` domain).
    pub frames: usize,
    /// Seed of the procedural car library (the one `gen-data` and the shape prior use).
    pub library_seed: u64,
    /// Size of the car library scenes draw from.
    pub library_size: usize,
    /// Crop selection and size.
    pub crop: CropConfig,
    /// Targets of a latent head that scores the prior's codes (`model.latent_codes` > 0).
    pub shape_weights: ShapeWeightConfig,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            seed: 1,
            frames: 1000,
            library_seed: 2020,
            library_size: 1000,
            crop: CropConfig::default(),
            shape_weights: ShapeWeightConfig::default(),
        }
    }
}

/// Everything `cargo xtask train-css` needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CssConfig {
    /// Architecture.
    pub model: ModelConfig,
    /// Training data.
    pub data: DataConfig,
    /// Optimisation.
    pub train: TrainConfig,
}
