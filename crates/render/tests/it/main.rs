//! Renderer tests: analytic depth and silhouettes, occlusion, finite-difference gradient checks of
//! every output with respect to every input, the candle op, thread-count independence, and CPU/CUDA
//! agreement (the CUDA half runs where the `cuda` feature is on and a GPU is present).
#![allow(clippy::unwrap_used, reason = "tests")]
#![allow(clippy::needless_range_loop, reason = "coordinate loops read best indexed")]

mod gradients;
mod scenes;

use nalgebra::{Matrix3, Vector3};
use render::{CropCamera, Image, Pose, RenderConfig, Surfels};

/// Points on a sphere of `radius`, outward normals, NOCS colours.
pub fn sphere(n: usize, radius: f32) -> Surfels {
    Surfels::sphere(n, radius)
}

/// A square crop camera looking down +z with focal length `f` px.
pub fn camera(size: usize, f: f32) -> CropCamera {
    CropCamera {
        fx: f,
        fy: f,
        cx: (size as f32 - 1.0) / 2.0,
        cy: (size as f32 - 1.0) / 2.0,
        width: size,
        height: size,
    }
}

/// A pose at `translation_m` with a rotation about y by `yaw_rad`, and `scale`.
pub fn pose(translation_m: [f32; 3], yaw_rad: f32, scale: f32) -> Pose {
    let (s, c) = yaw_rad.sin_cos();
    Pose {
        rotation: Matrix3::new(c, 0.0, s, 0.0, 1.0, 0.0, -s, 0.0, c),
        translation_m: Vector3::from(translation_m),
        scale,
    }
}

/// The largest relative difference of two images over all outputs, relative to `floor` + |reference|.
pub fn max_rel_diff(a: &Image, b: &Image, floor: f32) -> f32 {
    let mut worst = 0.0f32;
    let mut cmp = |x: f32, y: f32| worst = worst.max((x - y).abs() / (floor + y.abs()));
    for i in 0..a.mask.len() {
        for k in 0..3 {
            cmp(a.colour[i][k], b.colour[i][k]);
            cmp(a.normal[i][k], b.normal[i][k]);
        }
        cmp(a.depth_m[i], b.depth_m[i]);
        cmp(a.mask[i], b.mask[i]);
    }
    worst
}

pub fn default_config() -> RenderConfig {
    RenderConfig::default()
}
