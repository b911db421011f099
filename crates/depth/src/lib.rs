//! Dense depth maps for the monocular mode (METHODS.md §2): one map per frame, in metres, in the
//! pixels of the left colour camera (`image_2`), 0 where there is no value.
//!
//! - [`DepthSource`]: the trait the autolabeler calls per frame.
//! - [`PngDepth`]: a folder of KITTI depth PNGs (uint16 = metres × 256): a monocular depth
//!   network's output, by default the synthetic world's `training/mono_depth_2`.
//! - [`LidarDepth`]: the frame's LIDAR sweep projected into the image (sparse; for ablations).
//! - [`road`]: local correction of a map by the road plane ([`correct_by_road`]).
//! - [`DepthConfig`] and [`open`]: which source a run uses. The true depth (`depth_2`) is ground
//!   truth: [`open`] refuses it unless `allow_ground_truth` is set (an explicit oracle ablation).
//!
//! Architecture invariant: this crate reads only the depth source it is given and the calibration
//! passed in; it knows nothing of shapes, rendering or optimisation.

mod error;
pub mod road;
mod source;

pub use error::{DepthError, Result};
pub use kitti::image::DepthMap;
pub use road::{CorrectionStats, RoadCorrection, correct_by_road};
pub use source::{
    DepthConfig, DepthKind, DepthSource, GROUND_TRUTH_FOLDERS, LidarDepth, PngDepth, median_depth_m, open,
    project_points,
};
