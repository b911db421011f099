//! Integration tests of the `kitti` crate: agreement with the official devkit on fixture label sets,
//! and reading real KITTI frames.
#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod devkit;
mod sample;
