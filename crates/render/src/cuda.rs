//! The CUDA path (feature `cuda`): the kernels of `kernels/render.cu`, compiled at run time by NVRTC
//! and launched through cudarc with the driver loaded dynamically, so nothing CUDA is needed to
//! build. A batch of objects goes up as flat arrays; discs are placed per surfel, tiles of every
//! object blend in one launch, and the backward pass runs per surfel with a per-object reduction of
//! the pose gradient.

use crate::backend::{Job, Renderer, check_batch};
use crate::error::{RenderError, Result};
use crate::{Image, ImageGrad, PoseGrad, RenderConfig, SurfelGrad};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use nalgebra::{Matrix3, Vector3};
use std::sync::Arc;

/// The kernels' source.
pub const SOURCE: &str = include_str!("../kernels/render.cu");

const TILE: usize = 16;
const DISC: usize = 11;

fn cuda_err(e: impl std::fmt::Debug) -> RenderError {
    RenderError::Cuda(format!("{e:?}"))
}

/// The renderer on one CUDA device.
pub struct CudaRenderer {
    _ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    place: CudaFunction,
    blend: CudaFunction,
    backward: CudaFunction,
    reduce: CudaFunction,
    name: String,
}

impl std::fmt::Debug for CudaRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaRenderer").field("name", &self.name).finish()
    }
}

/// A batch laid out for the kernels, on the device.
struct Batch {
    objects: usize,
    surfels: usize,
    pixels: usize,
    tiles: usize,
    pos: CudaSlice<f32>,
    nrm: CudaSlice<f32>,
    col: CudaSlice<f32>,
    obj: CudaSlice<i32>,
    cam: CudaSlice<f32>,
    pose: CudaSlice<f32>,
    dims: CudaSlice<i32>,
    n_discs: CudaSlice<i32>,
    tile_obj: CudaSlice<i32>,
    tile_xy: CudaSlice<i32>,
    disc: CudaSlice<f32>,
    win: CudaSlice<i32>,
    /// Per object: (pixel offset, disc offset).
    offsets: Vec<(usize, usize)>,
}

fn blocks(n: usize, per: usize) -> u32 {
    n.div_ceil(per).max(1) as u32
}

impl CudaRenderer {
    /// Loads the driver and NVRTC, compiles the kernels and opens device `ordinal`. Errors (never
    /// panics) when there is no CUDA driver, no NVRTC library or no such device.
    pub fn new(ordinal: usize) -> Result<Self> {
        // SAFETY: these only try to load the shared libraries.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(RenderError::Cuda("no CUDA driver library (libcuda) found".into()));
        }
        // SAFETY: as above.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(RenderError::Cuda("no NVRTC library found".into()));
        }
        let ctx = CudaContext::new(ordinal).map_err(cuda_err)?;
        let name = format!("cuda:{ordinal} ({})", ctx.name().unwrap_or_default());
        let opts = CompileOptions {
            use_fast_math: Some(false),
            name: Some("render.cu".into()),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(SOURCE, opts).map_err(cuda_err)?;
        let module = ctx.load_module(ptx).map_err(cuda_err)?;
        let f = |n: &str| module.load_function(n).map_err(cuda_err);
        Ok(CudaRenderer {
            stream: ctx.default_stream(),
            place: f("place_discs")?,
            blend: f("blend_tiles")?,
            backward: f("backward_discs")?,
            reduce: f("reduce_pose")?,
            _ctx: ctx,
            name,
        })
    }

    fn upload<T: cudarc::driver::DeviceRepr + Default + Clone>(&self, v: &[T]) -> Result<CudaSlice<T>> {
        // Never a zero-length allocation.
        if v.is_empty() {
            self.stream.clone_htod(&[T::default()]).map_err(cuda_err)
        } else {
            self.stream.clone_htod(v).map_err(cuda_err)
        }
    }

    fn prepare(&self, jobs: &[Job<'_>], config: &RenderConfig) -> Result<Batch> {
        config.validate()?;
        let (mut pos, mut nrm, mut col, mut obj) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut cam, mut pose, mut dims, mut n_discs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut tile_obj, mut tile_xy) = (Vec::new(), Vec::new());
        let mut offsets = Vec::with_capacity(jobs.len());
        let (mut pixels, mut surfels) = (0usize, 0usize);
        for (o, j) in jobs.iter().enumerate() {
            crate::cpu::validate(&j.camera, &j.pose, j.surfels, config)?;
            let c = &j.camera;
            cam.extend([c.fx, c.fy, c.cx, c.cy]);
            pose.extend(j.pose.rotation.transpose().iter().copied()); // row-major
            pose.extend(j.pose.translation_m.iter().copied());
            pose.extend([j.pose.scale, config.radius_units * j.pose.scale]);
            let to_i32 =
                |v: usize| i32::try_from(v).map_err(|_| RenderError::InvalidInput("batch too large".into()));
            dims.extend([
                to_i32(c.width)?,
                to_i32(c.height)?,
                to_i32(pixels)?,
                to_i32(surfels)?,
            ]);
            n_discs.push(to_i32(j.surfels.len())?);
            offsets.push((pixels, surfels));
            for ty in 0..c.height.div_ceil(TILE) {
                for tx in 0..c.width.div_ceil(TILE) {
                    tile_obj.push(o as i32);
                    tile_xy.extend([(tx * TILE) as i32, (ty * TILE) as i32]);
                }
            }
            pos.extend(j.surfels.positions.iter().flatten());
            nrm.extend(j.surfels.normals.iter().flatten());
            col.extend(j.surfels.colours.iter().flatten());
            obj.extend(std::iter::repeat_n(o as i32, j.surfels.len()));
            pixels += c.pixels();
            surfels += j.surfels.len();
        }
        let batch = Batch {
            objects: jobs.len(),
            surfels,
            pixels,
            tiles: tile_obj.len(),
            pos: self.upload(&pos)?,
            nrm: self.upload(&nrm)?,
            col: self.upload(&col)?,
            obj: self.upload(&obj)?,
            cam: self.upload(&cam)?,
            pose: self.upload(&pose)?,
            dims: self.upload(&dims)?,
            n_discs: self.upload(&n_discs)?,
            tile_obj: self.upload(&tile_obj)?,
            tile_xy: self.upload(&tile_xy)?,
            disc: self
                .stream
                .alloc_zeros::<f32>(surfels.max(1) * DISC)
                .map_err(cuda_err)?,
            win: self
                .stream
                .alloc_zeros::<i32>(surfels.max(1) * 4)
                .map_err(cuda_err)?,
            offsets,
        };
        if surfels > 0 {
            let n = surfels as i32;
            let kappa = config.sharpness;
            let mut b = self.stream.launch_builder(&self.place);
            b.arg(&batch.pos)
                .arg(&batch.nrm)
                .arg(&batch.col)
                .arg(&batch.obj)
                .arg(&batch.cam)
                .arg(&batch.pose)
                .arg(&batch.dims)
                .arg(&kappa)
                .arg(&n)
                .arg(&batch.disc)
                .arg(&batch.win);
            let cfg = LaunchConfig {
                grid_dim: (blocks(surfels, 256), 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the argument list matches `place_discs`, and every array holds the sizes
            // the kernel indexes (surfels × 3, objects × 4/14, surfels × 11/4).
            unsafe { b.launch(cfg) }.map_err(cuda_err)?;
        }
        Ok(batch)
    }

    /// Forward pass on the device: (out, state) for every pixel of the batch.
    fn forward_device(
        &self,
        batch: &Batch,
        config: &RenderConfig,
    ) -> Result<(CudaSlice<f32>, CudaSlice<f32>)> {
        let out = self
            .stream
            .alloc_zeros::<f32>(batch.pixels.max(1) * 8)
            .map_err(cuda_err)?;
        let state = self
            .stream
            .alloc_zeros::<f32>(batch.pixels.max(1) * 3)
            .map_err(cuda_err)?;
        if batch.tiles > 0 {
            let (kappa, beta) = (config.sharpness, config.depth_sharpness_per_m);
            let mut b = self.stream.launch_builder(&self.blend);
            b.arg(&batch.disc)
                .arg(&batch.win)
                .arg(&batch.cam)
                .arg(&batch.dims)
                .arg(&batch.n_discs)
                .arg(&batch.tile_obj)
                .arg(&batch.tile_xy)
                .arg(&kappa)
                .arg(&beta)
                .arg(&out)
                .arg(&state);
            let cfg = LaunchConfig {
                grid_dim: (batch.tiles as u32, 1, 1),
                block_dim: ((TILE * TILE) as u32, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the argument list matches `blend_tiles`; out and state hold pixels × 8 and
            // pixels × 3 floats, and every tile's pixels lie inside its object's crop.
            unsafe { b.launch(cfg) }.map_err(cuda_err)?;
        }
        Ok((out, state))
    }
}

fn images_of(jobs: &[Job<'_>], offsets: &[(usize, usize)], out: &[f32], state: &[f32]) -> Vec<Image> {
    jobs.iter()
        .zip(offsets)
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

impl Renderer for CudaRenderer {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn render_batch(&self, jobs: &[Job<'_>], config: &RenderConfig) -> Result<Vec<Image>> {
        let batch = self.prepare(jobs, config)?;
        let (out, state) = self.forward_device(&batch, config)?;
        let out = self.stream.clone_dtoh(&out).map_err(cuda_err)?;
        let state = self.stream.clone_dtoh(&state).map_err(cuda_err)?;
        Ok(images_of(jobs, &batch.offsets, &out, &state))
    }

    fn backward_batch(
        &self,
        jobs: &[Job<'_>],
        config: &RenderConfig,
        images: &[Image],
        grads: &[ImageGrad],
    ) -> Result<Vec<SurfelGrad>> {
        check_batch(jobs.len(), images.len(), grads.len())?;
        let batch = self.prepare(jobs, config)?;
        let (mut out, mut state, mut grad) = (
            Vec::with_capacity(batch.pixels * 8),
            Vec::with_capacity(batch.pixels * 3),
            Vec::with_capacity(batch.pixels * 8),
        );
        for ((j, im), g) in jobs.iter().zip(images).zip(grads) {
            let n = j.camera.pixels();
            if im.width != j.camera.width || im.height != j.camera.height || im.mask.len() != n {
                return Err(RenderError::Shape(format!(
                    "image {}×{}, camera {}×{}",
                    im.width, im.height, j.camera.width, j.camera.height
                )));
            }
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
        let out = self.upload(&out)?;
        let state = self.upload(&state)?;
        let grad = self.upload(&grad)?;
        let g_out = self
            .stream
            .alloc_zeros::<f32>(batch.surfels.max(1) * 9)
            .map_err(cuda_err)?;
        let g_pose = self
            .stream
            .alloc_zeros::<f32>(batch.surfels.max(1) * 13)
            .map_err(cuda_err)?;
        let pose_out = self
            .stream
            .alloc_zeros::<f64>(batch.objects.max(1) * 13)
            .map_err(cuda_err)?;
        let (kappa, beta, radius) = (
            config.sharpness,
            config.depth_sharpness_per_m,
            config.radius_units,
        );
        if batch.surfels > 0 {
            let n = batch.surfels as i32;
            let mut b = self.stream.launch_builder(&self.backward);
            b.arg(&batch.disc)
                .arg(&batch.win)
                .arg(&batch.obj)
                .arg(&batch.pos)
                .arg(&batch.nrm)
                .arg(&batch.cam)
                .arg(&batch.pose)
                .arg(&batch.dims)
                .arg(&out)
                .arg(&state)
                .arg(&grad)
                .arg(&kappa)
                .arg(&beta)
                .arg(&radius)
                .arg(&n)
                .arg(&g_out)
                .arg(&g_pose);
            let cfg = LaunchConfig {
                grid_dim: (blocks(batch.surfels, 128), 1, 1),
                block_dim: (128, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the argument list matches `backward_discs`; per-pixel arrays hold the whole
            // batch's pixels and every window lies inside its object's crop.
            unsafe { b.launch(cfg) }.map_err(cuda_err)?;
        }
        if batch.objects > 0 {
            let n_obj = batch.objects as i32;
            let mut b = self.stream.launch_builder(&self.reduce);
            b.arg(&g_pose)
                .arg(&batch.dims)
                .arg(&batch.n_discs)
                .arg(&n_obj)
                .arg(&pose_out);
            let cfg = LaunchConfig {
                grid_dim: (blocks(batch.objects * 13, 64), 1, 1),
                block_dim: (64, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the argument list matches `reduce_pose`; g_pose holds surfels × 13 floats.
            unsafe { b.launch(cfg) }.map_err(cuda_err)?;
        }
        let g_out = self.stream.clone_dtoh(&g_out).map_err(cuda_err)?;
        let pose_out = self.stream.clone_dtoh(&pose_out).map_err(cuda_err)?;
        Ok(jobs
            .iter()
            .zip(&batch.offsets)
            .enumerate()
            .map(|(o, (j, &(_, s0)))| {
                let n = j.surfels.len();
                let rows = &g_out[s0 * 9..(s0 + n) * 9];
                let p = &pose_out[o * 13..o * 13 + 13];
                SurfelGrad {
                    positions: rows.chunks_exact(9).map(|r| [r[0], r[1], r[2]]).collect(),
                    normals: rows.chunks_exact(9).map(|r| [r[3], r[4], r[5]]).collect(),
                    colours: rows.chunks_exact(9).map(|r| [r[6], r[7], r[8]]).collect(),
                    pose: PoseGrad {
                        rotation: Matrix3::from_row_slice(
                            &p[..9].iter().map(|v| *v as f32).collect::<Vec<_>>(),
                        ),
                        translation_m: Vector3::new(p[9] as f32, p[10] as f32, p[11] as f32),
                        scale: p[12] as f32,
                    },
                }
            })
            .collect())
    }
}
