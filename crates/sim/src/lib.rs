//! The synthetic KITTI world: procedural cars and street scenes, simulated camera and LIDAR, ground
//! truth in the KITTI layout, and simulated versions of the learned sensors later stages replace (a 2D
//! instance detector, a monocular depth network). `DATASET.md` documents the files.
//!
//! # Frames
//!
//! Model frame — every shape, procedural or loaded, is a [`TriMesh`] in metres with its origin at the
//! centre of the bounding box's **bottom** face (on the ground), +y up, +z toward the front, +x toward
//! the left (right-handed). Length is the z extent, width the x extent, height the y extent. Scenes
//! live in the Velodyne frame (+x forward, +y left, +z up, sensor 1.73 m above the road); labels in
//! KITTI's rect camera frame.
//!
//! # Modules
//!
//! - [`mesh`], [`car`], [`library`], [`obj`], [`ply`]: triangle meshes with materials; seven car
//!   [`BodyStyle`]s with continuous [`CarParams`]; [`ShapeLibrary`] (procedural, deterministic per
//!   `(seed, index)`, dimensions like KITTI cars; or a folder of OBJ files); OBJ/PLY in and out.
//! - [`clutter`]: vans, pedestrians, cyclists, buildings, walls, poles, trees, bushes.
//! - [`world`], [`scene`]: the ground plane and tagged world mesh; scene generation (road, lanes,
//!   parked rows, traffic, cross streets, sidewalks, clutter, no interpenetration).
//! - [`bvh`], [`lidar`]: ray casting through a BVH; the Velodyne HDL-64E model.
//! - [`camera`], [`shade`], [`domain`]: z-buffer rasteriser (depth, object ids, normals, per-object
//!   visibility) and shading into the RGB image, in the `clean` or `target` visual [`Domain`].
//! - [`detector`]: a simulated Mask R-CNN-like 2D instance detector ([`detector::detect`]) with
//!   documented misses, box jitter, mask errors, false positives and scores; its output is written
//!   as `detection_2/<id>.{txt,png}` in the format of the [`detection`] crate.
//! - [`mono_depth`]: a simulated Monodepth-like network ([`mono_depth::simulate_mono_depth`]):
//!   dense depth with scale bias, range-growing correlated error and smoothed edges.
//! - [`frame`]: one frame end to end (labels, instance and depth maps, annotations).
//! - [`dataset`]: the KITTI-layout files of a dataset.
//!
//! Readers return a typed [`SimError`] naming the file and line; writers write atomically.

pub mod bvh;
pub mod camera;
pub mod car;
pub mod clutter;
pub mod dataset;
pub mod detector;
pub mod domain;
mod error;
pub mod frame;
pub mod library;
pub mod lidar;
pub mod mesh;
pub mod mono_depth;
pub mod obj;
pub mod ply;
mod random_field;
pub mod scene;
pub mod shade;
pub mod world;

pub use car::{BodyStyle, CarParams, car_mesh};
pub use domain::Domain;
pub use error::{Result, SimError};
pub use library::ShapeLibrary;
pub use mesh::{Dims, Material, TriMesh};
