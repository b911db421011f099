//! The error type of the depth sources.

use std::path::PathBuf;

/// Why a depth map could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DepthError {
    /// Reading or decoding a file failed (names the file).
    #[error(transparent)]
    Kitti(#[from] kitti::KittiError),
    /// The map's size is not the image's.
    #[error("{path}: depth map of {found_w}×{found_h} px for an image of {expected_w}×{expected_h} px")]
    Size {
        /// The file.
        path: PathBuf,
        /// Image width, px.
        expected_w: u32,
        /// Image height, px.
        expected_h: u32,
        /// Map width, px.
        found_w: u32,
        /// Map height, px.
        found_h: u32,
    },
    /// A depth source folder that does not exist.
    #[error("{0}: no such depth folder")]
    MissingFolder(PathBuf),
    /// A ground-truth folder named as the depth source without `allow_ground_truth`.
    #[error(
        "{folder}: this is ground truth; the autolabeler may read it only as an explicit ablation (allow_ground_truth = true)"
    )]
    GroundTruth {
        /// The folder.
        folder: String,
    },
}

/// `Result` with [`DepthError`].
pub type Result<T, E = DepthError> = std::result::Result<T, E>;
