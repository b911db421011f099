//! The flat layout of a batch for the GPU kernels (`kernels/render.cu`, see its header), built and
//! read back on the host. Compiled without the `cuda` feature too, so that the kernels' logic can be
//! tested on the CPU (`emulate`).

use crate::backend::Job;
use crate::error::{RenderError, Result};
use crate::{Image, ImageGrad, PoseGrad, RenderConfig, SurfelGrad};
use nalgebra::{Matrix3, Vector3};

/// Tile side of the blend kernel, px.
pub(crate) const TILE: usize = 16;
/// Floats per placed disc.
pub(crate) const DISC: usize = 11;

/// A batch as the kernels read it.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostBatch {
    pub objects: usize,
    pub surfels: usize,
    pub pixels: usize,
    pub pos: Vec<f32>,
    pub nrm: Vec<f32>,
    pub col: Vec<f32>,
    pub obj: Vec<i32>,
    pub cam: Vec<f32>,
    pub pose: Vec<f32>,
    pub dims: Vec<i32>,
    pub n_discs: Vec<i32>,
    pub tile_obj: Vec<i32>,
    pub tile_xy: Vec<i32>,
    /// Per object: (pixel offset, surfel offset).
    pub offsets: Vec<(usize, usize)>,
}

fn to_i32(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| RenderError::InvalidInput("batch too large for 32-bit offsets".into()))
}

/// Lays out `jobs` (validated) for the kernels.
pub(crate) fn layout(jobs: &[Job<'_>], config: &RenderConfig) -> Result<HostBatch> {
    config.validate()?;
    let mut b = HostBatch {
        objects: jobs.len(),
        ..HostBatch::default()
    };
    for (o, j) in jobs.iter().enumerate() {
        crate::cpu::validate(&j.camera, &j.pose, j.surfels, config)?;
        let c = &j.camera;
        b.cam.extend([c.fx, c.fy, c.cx, c.cy]);
        b.pose.extend(j.pose.rotation.transpose().iter().copied()); // row-major
        b.pose.extend(j.pose.translation_m.iter().copied());
        b.pose.extend([j.pose.scale, config.radius_units * j.pose.scale]);
        b.dims.extend([
            to_i32(c.width)?,
            to_i32(c.height)?,
            to_i32(b.pixels)?,
            to_i32(b.surfels)?,
        ]);
        b.n_discs.push(to_i32(j.surfels.len())?);
        b.offsets.push((b.pixels, b.surfels));
        for ty in 0..c.height.div_ceil(TILE) {
            for tx in 0..c.width.div_ceil(TILE) {
                b.tile_obj.push(to_i32(o)?);
                b.tile_xy.extend([to_i32(tx * TILE)?, to_i32(ty * TILE)?]);
            }
        }
        b.pos.extend(j.surfels.positions.iter().flatten());
        b.nrm.extend(j.surfels.normals.iter().flatten());
        b.col.extend(j.surfels.colours.iter().flatten());
        b.obj.extend(std::iter::repeat_n(to_i32(o)?, j.surfels.len()));
        b.pixels += c.pixels();
        b.surfels += j.surfels.len();
    }
    to_i32(b.pixels * 8)?;
    to_i32(b.surfels * DISC)?;
    Ok(b)
}

/// The backward pass's per-pixel inputs: (out × 8, state × 3, grad × 8) for the whole batch.
pub(crate) fn backward_inputs(
    jobs: &[Job<'_>],
    images: &[Image],
    grads: &[ImageGrad],
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    crate::backend::check_batch(jobs.len(), images.len(), grads.len())?;
    let (mut out, mut state, mut grad) = (Vec::new(), Vec::new(), Vec::new());
    for ((j, im), g) in jobs.iter().zip(images).zip(grads) {
        let n = j.camera.pixels();
        im.validate(&j.camera)?;
        g.validate(n)?;
        for i in 0..n {
            out.extend(im.colour[i]);
            out.extend(im.normal[i]);
            out.extend([im.depth_m[i], im.mask[i]]);
            state.extend([im.weight_sum[i], im.z_ref_m[i], im.log_transmittance[i]]);
            grad.extend(g.colour[i]);
            grad.extend(g.normal[i]);
            grad.extend([g.depth_m[i], g.mask[i]]);
        }
    }
    Ok((out, state, grad))
}

/// Images from the forward kernel's `out` (× 8) and `state` (× 3).
pub(crate) fn images_of(jobs: &[Job<'_>], batch: &HostBatch, out: &[f32], state: &[f32]) -> Vec<Image> {
    jobs.iter()
        .zip(&batch.offsets)
        .map(|(j, &(p0, _))| {
            let mut im = Image::empty(j.camera.width, j.camera.height);
            for i in 0..j.camera.pixels() {
                let o = &out[(p0 + i) * 8..(p0 + i) * 8 + 8];
                let s = &state[(p0 + i) * 3..(p0 + i) * 3 + 3];
                im.colour[i] = [o[0], o[1], o[2]];
                im.normal[i] = [o[3], o[4], o[5]];
                im.depth_m[i] = o[6];
                im.mask[i] = o[7];
                im.weight_sum[i] = s[0];
                im.z_ref_m[i] = s[1];
                im.log_transmittance[i] = s[2];
            }
            im
        })
        .collect()
}

/// Gradients from the backward kernel's `g_out` (× 9 per surfel) and the reduced pose (× 13 per
/// object).
pub(crate) fn grads_of(
    jobs: &[Job<'_>],
    batch: &HostBatch,
    g_out: &[f32],
    pose_out: &[f64],
) -> Vec<SurfelGrad> {
    jobs.iter()
        .zip(&batch.offsets)
        .enumerate()
        .map(|(o, (j, &(_, s0)))| {
            let n = j.surfels.len();
            let rows = &g_out[s0 * 9..(s0 + n) * 9];
            let p: Vec<f32> = pose_out[o * 13..o * 13 + 13].iter().map(|v| *v as f32).collect();
            SurfelGrad {
                positions: rows.chunks_exact(9).map(|r| [r[0], r[1], r[2]]).collect(),
                normals: rows.chunks_exact(9).map(|r| [r[3], r[4], r[5]]).collect(),
                colours: rows.chunks_exact(9).map(|r| [r[6], r[7], r[8]]).collect(),
                pose: PoseGrad {
                    rotation: Matrix3::from_row_slice(&p[..9]),
                    translation_m: Vector3::new(p[9], p[10], p[11]),
                    scale: p[12],
                },
            }
        })
        .collect()
}
