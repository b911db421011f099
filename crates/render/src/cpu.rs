//! The CPU path: discs placed in parallel, binned into 16 × 16 tiles, each tile blended in parallel
//! (every disc only over its own window); the backward pass runs in parallel over discs, each
//! visiting its window, so no two threads write the same gradient and the result does not depend on
//! the thread count.

use crate::disc::{self, Blend, Disc, DiscGrad};
use crate::error::Result;
use crate::{CropCamera, Image, ImageGrad, Pose, PoseGrad, RenderConfig, SurfelGrad, Surfels};
use nalgebra::{Matrix3, Vector3};
use rayon::prelude::*;

/// Tile side, px.
const TILE: usize = 16;

/// The discs of `surfels` under `pose` in `camera`'s frame, one slot per surfel (`None`: culled).
pub(crate) fn place_all(
    camera: &CropCamera,
    pose: &Pose,
    surfels: &Surfels,
    config: &RenderConfig,
) -> Vec<Option<Disc>> {
    let r = config.radius_units * pose.scale;
    surfels
        .positions
        .par_iter()
        .zip(&surfels.normals)
        .zip(&surfels.colours)
        .map(|((p, n), col)| disc::place(camera, pose.apply(p), pose.rotate(n), *col, r, config.sharpness))
        .collect()
}

pub(crate) fn validate(
    camera: &CropCamera,
    pose: &Pose,
    surfels: &Surfels,
    config: &RenderConfig,
) -> Result<()> {
    camera.validate()?;
    pose.validate()?;
    surfels.validate()?;
    config.validate()
}

/// Renders `surfels` under `pose` into `camera`'s crop.
pub fn render(camera: &CropCamera, pose: &Pose, surfels: &Surfels, config: &RenderConfig) -> Result<Image> {
    validate(camera, pose, surfels, config)?;
    let discs = place_all(camera, pose, surfels, config);
    Ok(blend(camera, &discs, config))
}

fn blend(camera: &CropCamera, discs: &[Option<Disc>], config: &RenderConfig) -> Image {
    let (w, h) = (camera.width, camera.height);
    let tiles_x = w.div_ceil(TILE);
    let tiles_y = h.div_ceil(TILE);
    let mut bins: Vec<Vec<u32>> = vec![Vec::new(); tiles_x * tiles_y];
    for (i, d) in discs.iter().enumerate() {
        if let Some(d) = d {
            let [u0, u1, v0, v1] = d.window.map(|v| v as usize);
            for ty in v0 / TILE..=v1 / TILE {
                for tx in u0 / TILE..=u1 / TILE {
                    bins[ty * tiles_x + tx].push(i as u32);
                }
            }
        }
    }
    let beta = config.depth_sharpness_per_m;
    let kappa = config.sharpness;
    let rays = disc::Rays::new(camera);
    let tiles: Vec<[Blend; TILE * TILE]> = bins
        .par_iter()
        .enumerate()
        .map(|(t, bin)| {
            let (tx, ty) = (t % tiles_x, t / tiles_x);
            let (x0, y0) = ((tx * TILE) as i32, (ty * TILE) as i32);
            let mut acc = [Blend::default(); TILE * TILE];
            for &i in bin {
                let Some(d) = &discs[i as usize] else { continue };
                let [u0, u1, v0, v1] = d.window;
                let (ua, ub) = (u0.max(x0), u1.min(x0 + TILE as i32 - 1));
                let (va, vb) = (v0.max(y0), v1.min(y0 + TILE as i32 - 1));
                for v in va..=vb {
                    for u in ua..=ub {
                        let (_, ray, inv_len) = rays.at(u, v);
                        if let Some(hit) = disc::hit(d, ray, inv_len, kappa) {
                            acc[(v - y0) as usize * TILE + (u - x0) as usize].add(d, &hit, beta);
                        }
                    }
                }
            }
            acc
        })
        .collect();
    let mut image = Image::empty(w, h);
    for (t, acc) in tiles.iter().enumerate() {
        let (x0, y0) = ((t % tiles_x) * TILE, (t / tiles_x) * TILE);
        for (k, b) in acc.iter().enumerate() {
            let (x, y) = (x0 + k % TILE, y0 + k / TILE);
            if x < w && y < h {
                disc::finish(b, &mut image, y * w + x);
            }
        }
    }
    image
}

/// The camera-frame gradient of every disc (zero for culled ones).
pub(crate) fn disc_grads(
    camera: &CropCamera,
    discs: &[Option<Disc>],
    image: &Image,
    grad: &ImageGrad,
    config: &RenderConfig,
) -> Vec<DiscGrad> {
    let beta = config.depth_sharpness_per_m;
    let kappa = config.sharpness;
    let rays = disc::Rays::new(camera);
    discs
        .par_iter()
        .map(|d| {
            let mut g = DiscGrad::default();
            if let Some(d) = d {
                let [u0, u1, v0, v1] = d.window;
                for v in v0..=v1 {
                    for u in u0..=u1 {
                        let (i, ray, inv_len) = rays.at(u, v);
                        if let Some(hit) = disc::hit(d, ray, inv_len, kappa) {
                            disc::backward_pixel(d, ray, inv_len, &hit, image, grad, i, kappa, beta, &mut g);
                        }
                    }
                }
            }
            g
        })
        .collect()
}

/// Chains camera-frame disc gradients to the model-frame surfels and the pose.
pub(crate) fn chain_to_model(
    pose: &Pose,
    surfels: &Surfels,
    grads: &[DiscGrad],
    config: &RenderConfig,
) -> SurfelGrad {
    let rt = pose.rotation.transpose();
    let mut out = SurfelGrad {
        positions: Vec::with_capacity(grads.len()),
        normals: Vec::with_capacity(grads.len()),
        colours: Vec::with_capacity(grads.len()),
        pose: PoseGrad::default(),
    };
    // Pose sums in f64, in surfel order: deterministic and free of cancellation trouble.
    let mut g_rot = Matrix3::<f64>::zeros();
    let mut g_t = Vector3::<f64>::zeros();
    let mut g_s = 0.0f64;
    for ((g, p), n) in grads.iter().zip(&surfels.positions).zip(&surfels.normals) {
        let gc = Vector3::from(g.c);
        let gn = Vector3::from(g.n);
        let p = Vector3::from(*p);
        let n = Vector3::from(*n);
        let gp = rt * gc * pose.scale;
        let gnm = rt * gn;
        out.positions.push([gp.x, gp.y, gp.z]);
        out.normals.push([gnm.x, gnm.y, gnm.z]);
        out.colours.push(g.col);
        g_rot += (gc * p.transpose() * pose.scale + gn * n.transpose()).cast::<f64>();
        g_t += gc.cast::<f64>();
        g_s += f64::from(gc.dot(&(pose.rotation * p))) + f64::from(g.r * config.radius_units);
    }
    out.pose = PoseGrad {
        rotation: g_rot.cast::<f32>(),
        translation_m: g_t.cast::<f32>(),
        scale: g_s as f32,
    };
    out
}

/// The gradient of a scalar loss with respect to the surfels and the pose, given the loss's gradient
/// `grad` with respect to `image` (the result of [`render`] with the same arguments).
pub fn backward(
    camera: &CropCamera,
    pose: &Pose,
    surfels: &Surfels,
    config: &RenderConfig,
    image: &Image,
    grad: &ImageGrad,
) -> Result<SurfelGrad> {
    validate(camera, pose, surfels, config)?;
    grad.validate(camera.pixels())?;
    image.validate(camera)?;
    let discs = place_all(camera, pose, surfels, config);
    let grads = disc_grads(camera, &discs, image, grad, config);
    Ok(chain_to_model(pose, surfels, &grads, config))
}
