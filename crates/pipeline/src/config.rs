//! [`AutolabelConfig`]: every stage's settings in one TOML file (`configs/default.toml`,
//! `configs/lidar.toml`). Every table and field is optional: what a file leaves out keeps its
//! default, and unknown keys are errors (a misspelt setting must not be ignored silently).

use crate::error::{PipelineError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which labeler turns a frame's detections into 3D labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// SDFLabel: CSS network → DeepSDF shape → NOCS/LIDAR pose initialisation → render-and-compare
    /// optimisation.
    #[default]
    Sdf,
    /// Geometry only: a ground-aligned minimum-area box around each detection's frustum points.
    Geometry,
    /// MonoDR, the monocular mode: image, masks and monocular depth, no LIDAR
    /// ([`crate::mono::MonoLabeler`], `configs/mono.toml`).
    Mono,
}

/// How the first pose of an object is found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitMethod {
    /// NOCS ↔ LIDAR correspondences, RANSAC with the yaw-only solver on the ground plane; the
    /// geometric box when RANSAC finds no consensus.
    #[default]
    NocsRansac,
    /// The geometric box (minimum-area rectangle of the frustum points).
    BoxFit,
}

/// Where the model weights are (relative paths are relative to the repository root, or to the
/// working directory outside one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightsConfig {
    /// The DeepSDF shape prior.
    pub deepsdf: PathBuf,
    /// The CSS network (default: the shape-space variant, whose shapes are closer to the truth;
    /// `data/weights/css.safetensors` is the network `cargo xtask train-css` makes in one run).
    pub css: PathBuf,
    /// The material atlas of the monocular mode (`cargo xtask train-texture`).
    pub texture: PathBuf,
}

impl Default for WeightsConfig {
    fn default() -> Self {
        WeightsConfig {
            deepsdf: PathBuf::from("data/weights/deepsdf.safetensors"),
            css: PathBuf::from("data/weights/css_sdf.safetensors"),
            texture: PathBuf::from("data/weights/texture.json"),
        }
    }
}

/// Pose initialisation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InitConfig {
    /// The method.
    pub method: InitMethod,
    /// A frustum pixel's CSS mask probability must exceed this for its NOCS to be used.
    pub min_mask_prob: f32,
    /// NOCS matches farther than this are dropped, NOCS units.
    pub max_nocs_distance: f32,
    /// RANSAC settings (threshold in metres).
    pub ransac: pose::ransac::RansacConfig,
    /// Turns of the RANSAC yaw the optimisation probes (degrees; the box initialisation probes
    /// `optim.yaw_starts` evenly spaced yaws instead).
    pub ransac_yaw_offsets_deg: Vec<f64>,
    /// The box fit (the fallback and the baseline).
    pub box_fit: pose::boxfit::BoxFitConfig,
}

impl Default for InitConfig {
    fn default() -> Self {
        InitConfig {
            method: InitMethod::NocsRansac,
            min_mask_prob: 0.5,
            max_nocs_distance: 0.1,
            ransac: pose::ransac::RansacConfig {
                inlier_threshold: 0.25,
                min_inliers: 8,
                max_iterations: 500,
                ..pose::ransac::RansacConfig::default()
            },
            ransac_yaw_offsets_deg: vec![0.0],
            box_fit: pose::boxfit::BoxFitConfig::default(),
        }
    }
}

/// Ground plane settings (fitted per frame on the LIDAR points below the sensor in front of it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroundSettings {
    /// RANSAC plane fit (Velodyne frame).
    pub fit: pose::ground::GroundConfig,
    /// Only points this far below the sensor or lower are candidates, m.
    pub max_height_m: f64,
    /// Only points closer than this (ahead) are candidates, m.
    pub max_range_m: f64,
    /// At most this many candidates (evenly subsampled).
    pub max_points: usize,
}

impl Default for GroundSettings {
    fn default() -> Self {
        GroundSettings {
            fit: pose::ground::GroundConfig::default(),
            max_height_m: -1.0,
            max_range_m: 60.0,
            max_points: 20_000,
        }
    }
}

/// What is written besides the labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// An OBJ mesh per object under `meshes/`.
    pub meshes: bool,
    /// Grid cells per axis of the meshes.
    pub mesh_resolution: usize,
    /// Pictures under `viz/`.
    pub viz: bool,
    /// Labels scored below this are not written.
    pub min_score: f64,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            meshes: false,
            mesh_resolution: 32,
            viz: true,
            min_score: 0.0,
        }
    }
}

/// Every setting of an autolabelling run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutolabelConfig {
    /// Seed of every random choice (RANSAC samples): the same seed gives the same labels.
    pub seed: u64,
    /// The labeler.
    pub method: Method,
    /// Model weights.
    pub weights: WeightsConfig,
    /// How the CSS network reads the crops (LIDAR mode).
    pub css: css::infer::PredictOptions,
    /// Which detections are labelled.
    pub detections: detection::DetectionFilter,
    /// Ground plane.
    pub ground: GroundSettings,
    /// Frustum extraction.
    pub frustum: pose::frustum::FrustumConfig,
    /// Pose initialisation.
    pub init: InitConfig,
    /// Render-and-compare optimisation.
    pub optim: optim::OptimConfig,
    /// Label confidence.
    pub confidence: optim::confidence::ConfidenceConfig,
    /// Outputs.
    pub output: OutputConfig,
    /// The monocular mode's optimiser (`method = "mono"`).
    pub mono: optim::mono::MonoConfig,
    /// The monocular mode's depth maps (`method = "mono"`).
    pub depth: depth::DepthConfig,
    /// The learned refinement after the LIDAR or the monocular fit (`refine.enabled`; off by
    /// default).
    pub refine: refine::RefineConfig,
}

impl Default for AutolabelConfig {
    fn default() -> Self {
        AutolabelConfig {
            seed: 0,
            method: Method::Sdf,
            weights: WeightsConfig::default(),
            css: css::infer::PredictOptions::default(),
            detections: detection::DetectionFilter::default(),
            ground: GroundSettings::default(),
            frustum: pose::frustum::FrustumConfig::default(),
            init: InitConfig::default(),
            optim: optim::OptimConfig::default(),
            confidence: optim::confidence::ConfidenceConfig::default(),
            output: OutputConfig::default(),
            mono: optim::mono::MonoConfig::default(),
            depth: depth::DepthConfig::default(),
            refine: refine::RefineConfig::default(),
        }
    }
}

impl AutolabelConfig {
    /// Parses a TOML text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| PipelineError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = kitti::io::read_text(path)?;
        Self::parse(&text, path)
    }

    /// The resolved configuration as TOML (what a run writes next to its outputs).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| PipelineError::Config {
            path: PathBuf::from("<resolved config>"),
            message: e.to_string(),
        })
    }
}
