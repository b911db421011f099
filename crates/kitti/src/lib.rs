//! KITTI object dataset I/O and the official KITTI 3D object evaluation.
//!
//! - [`label`]: `label_2` lines (15 fields plus optional score), read and written like KITTI.
//! - [`calib`]: `calib/*.txt` into [`geom::Calib`] and back.
//! - [`velodyne`]: `.bin` point clouds (`f32 × 4` per point).
//! - [`image`]: `image_2` PNGs of any size, depth PNGs (uint16, metres × 256, 0 = no value) and
//!   16-bit instance maps.
//! - [`split`]: `ImageSets/*.txt` frame lists.
//! - [`dataset`]: an index over `ROOT/{training,testing}/{image_2,velodyne,calib,label_2,…}`.
//! - [`eval`]: the devkit protocol (2D, AOS, BEV, 3D; AP R11 and R40; easy/moderate/hard), matching the
//!   official C++ `evaluate_object` to within 0.01 AP.
//! - [`testing`]: seeded random label sets (ground truth plus noisy detections) for tests and benches.
//!
//! Every reader returns a typed [`KittiError`] naming the file (and line) of bad input. Every writer
//! writes atomically (temporary file + rename) so an interrupted run leaves no half-written file.

pub mod calib;
pub mod dataset;
mod error;
pub mod eval;
pub mod image;
pub mod io;
pub mod label;
pub mod split;
pub mod testing;
pub mod velodyne;

pub use dataset::{KittiDataset, Modality, Split};
pub use error::KittiError;
pub use label::{Object, ObjectType};

/// A frame id: the file stem shared by a frame's files (`000042`).
pub type FrameId = String;

/// Result alias of this crate.
pub type Result<T, E = KittiError> = std::result::Result<T, E>;
