//! Synthetic data for autolabel. For now: a procedural library of car shapes.
//!
//! # Model frame
//!
//! Every shape — procedural or loaded — is a [`TriMesh`] in the *model frame*: metres, origin at the
//! centre of the bounding box's **bottom** face (on the ground), +y up, +z toward the car's front,
//! +x toward the car's left (right-handed). Length is the z extent, width the x extent, height the y
//! extent; the wheels touch y = 0. (KITTI's `h w l` map to the y, x, z extents.)
//!
//! # Modules
//!
//! - [`mesh`]: [`TriMesh`] (vertices, triangles, one [`Material`] per triangle: body, window, wheel,
//!   light), bounds, watertightness, signed volume, recentring.
//! - [`car`]: seven [`BodyStyle`]s with continuous [`CarParams`] and [`car_mesh`], which builds a
//!   closed, outward-facing body loft plus four closed wheels, exactly the requested size.
//! - [`library`]: [`ShapeLibrary`], procedural (deterministic per `(seed, index)`, dimensions
//!   distributed like KITTI cars: h 1.53 ± 0.14 m, w 1.63 ± 0.10 m, l 3.88 ± 0.43 m) or a folder of
//!   OBJ files.
//! - [`obj`], [`ply`]: OBJ in and out (`usemtl` per material), ASCII PLY out (material per face).
//!
//! Readers return a typed [`SimError`] naming the file and line; writers write atomically.

pub mod car;
pub mod domain;
mod error;
pub mod library;
pub mod mesh;
pub mod obj;
pub mod ply;
pub mod scene;
pub mod world;

pub use car::{BodyStyle, CarParams, car_mesh};
pub use domain::Domain;
pub use error::{Result, SimError};
pub use library::ShapeLibrary;
pub use mesh::{Dims, Material, TriMesh};
