//! The autolabeler (METHODS.md §1): from images, LIDAR, calibration and 2D detections to scored
//! KITTI 3D labels. A thin layer that wires the stage crates through traits, each chosen by
//! [`AutolabelConfig`]:
//!
//! - [`detection::Detector`]: where the 2D detections come from (files: KITTI lines with scores,
//!   masks as PNG or RLE JSON), filtered by [`detection::DetectionFilter`];
//! - [`labeler::Labeler`]: [`labeler::SdfLabeler`] (CSS network → DeepSDF shape → NOCS/LIDAR
//!   RANSAC pose → render-and-compare optimisation → confidence) or [`labeler::GeometryLabeler`]
//!   (the geometry-only baseline: a ground-aligned minimum-area box around the frustum points);
//!   inside the SDF labeler the initialisation is chosen by [`config::InitMethod`] and every
//!   optimiser term is weighted in [`optim::OptimConfig`];
//! - [`mono::MonoLabeler`]: the monocular mode (MonoDR): image, masks and a monocular depth map
//!   ([`depth::DepthSource`]) → shape, pose and colours by render-and-compare, no LIDAR;
//! - [`run::run`]: frames in parallel, resumable, sharded, atomic outputs, failures collected.
//!
//! The autolabeler reads only images, LIDAR, calibration and detections ([`frame::FrameInput`]);
//! ground truth is read by the evaluation alone.

pub mod config;
mod error;
pub mod frame;
pub mod labeler;
pub mod mono;
pub mod run;

pub use config::{AutolabelConfig, Method};
pub use error::{PipelineError, Result};
pub use frame::{FrameInput, StageTimer};
pub use labeler::{GeometryLabeler, Labeler, LabelledObject, SdfLabeler};
pub use mono::MonoLabeler;
pub use run::{RunOptions, RunSummary, Shard, run};
