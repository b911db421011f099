//! The CUDA path (feature `cuda`): the kernels of `kernels/render.cu`, compiled at run time by NVRTC
//! and launched through cudarc with the driver loaded dynamically, so nothing CUDA is needed to
//! build. A batch of objects goes up as flat arrays; discs are placed per surfel, tiles of every
//! object blend in one launch, and the backward pass runs per surfel with a per-object reduction of
//! the pose gradient.

use crate::backend::{Job, Renderer};
use crate::batch::{DISC, HostBatch, TILE, backward_inputs, grads_of, images_of, layout};
use crate::error::{RenderError, Result};
use crate::{Image, ImageGrad, RenderConfig, SurfelGrad};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use std::sync::Arc;

/// The kernels' source.
pub const SOURCE: &str = include_str!("../kernels/render.cu");

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

/// A batch on the device.
struct Batch {
    host: HostBatch,
    tiles: usize,
    pos: CudaSlice<f32>,
    nrm: CudaSlice<f32>,
    obj: CudaSlice<i32>,
    cam: CudaSlice<f32>,
    pose: CudaSlice<f32>,
    dims: CudaSlice<i32>,
    n_discs: CudaSlice<i32>,
    tile_obj: CudaSlice<i32>,
    tile_xy: CudaSlice<i32>,
    disc: CudaSlice<f32>,
    win: CudaSlice<i32>,
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
            // No fused multiply-adds: the kernels transcribe src/disc.rs and should round like it
            // (NVRTC fuses by default, which can flip the cut and culling tests at their margins).
            fmad: Some(false),
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
        let host = layout(jobs, config)?;
        let surfels = host.surfels;
        let col = self.upload(&host.col)?;
        let batch = Batch {
            tiles: host.tile_obj.len(),
            pos: self.upload(&host.pos)?,
            nrm: self.upload(&host.nrm)?,
            obj: self.upload(&host.obj)?,
            cam: self.upload(&host.cam)?,
            pose: self.upload(&host.pose)?,
            dims: self.upload(&host.dims)?,
            n_discs: self.upload(&host.n_discs)?,
            tile_obj: self.upload(&host.tile_obj)?,
            tile_xy: self.upload(&host.tile_xy)?,
            disc: self
                .stream
                .alloc_zeros::<f32>(surfels.max(1) * DISC)
                .map_err(cuda_err)?,
            win: self
                .stream
                .alloc_zeros::<i32>(surfels.max(1) * 4)
                .map_err(cuda_err)?,
            host,
        };
        if surfels > 0 {
            let n = surfels as i32;
            let kappa = config.sharpness;
            let mut b = self.stream.launch_builder(&self.place);
            b.arg(&batch.pos)
                .arg(&batch.nrm)
                .arg(&col)
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
            .alloc_zeros::<f32>(batch.host.pixels.max(1) * 8)
            .map_err(cuda_err)?;
        let state = self
            .stream
            .alloc_zeros::<f32>(batch.host.pixels.max(1) * 3)
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

impl Renderer for CudaRenderer {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn render_batch(&self, jobs: &[Job<'_>], config: &RenderConfig) -> Result<Vec<Image>> {
        let batch = self.prepare(jobs, config)?;
        let (out, state) = self.forward_device(&batch, config)?;
        let out = self.stream.clone_dtoh(&out).map_err(cuda_err)?;
        let state = self.stream.clone_dtoh(&state).map_err(cuda_err)?;
        Ok(images_of(jobs, &batch.host, &out, &state))
    }

    fn backward_batch(
        &self,
        jobs: &[Job<'_>],
        config: &RenderConfig,
        images: &[Image],
        grads: &[ImageGrad],
    ) -> Result<Vec<SurfelGrad>> {
        let (out, state, grad) = backward_inputs(jobs, images, grads)?;
        let batch = self.prepare(jobs, config)?;
        let out = self.upload(&out)?;
        let state = self.upload(&state)?;
        let grad = self.upload(&grad)?;
        let g_out = self
            .stream
            .alloc_zeros::<f32>(batch.host.surfels.max(1) * 9)
            .map_err(cuda_err)?;
        let g_pose = self
            .stream
            .alloc_zeros::<f32>(batch.host.surfels.max(1) * 13)
            .map_err(cuda_err)?;
        let pose_out = self
            .stream
            .alloc_zeros::<f64>(batch.host.objects.max(1) * 13)
            .map_err(cuda_err)?;
        let (kappa, beta, radius) = (
            config.sharpness,
            config.depth_sharpness_per_m,
            config.radius_units,
        );
        if batch.host.surfels > 0 {
            let n = batch.host.surfels as i32;
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
                grid_dim: (blocks(batch.host.surfels, 128), 1, 1),
                block_dim: (128, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the argument list matches `backward_discs`; per-pixel arrays hold the whole
            // batch's pixels and every window lies inside its object's crop.
            unsafe { b.launch(cfg) }.map_err(cuda_err)?;
        }
        if batch.host.objects > 0 {
            let n_obj = batch.host.objects as i32;
            let mut b = self.stream.launch_builder(&self.reduce);
            b.arg(&g_pose)
                .arg(&batch.dims)
                .arg(&batch.n_discs)
                .arg(&n_obj)
                .arg(&pose_out);
            let cfg = LaunchConfig {
                grid_dim: (blocks(batch.host.objects * 13, 64), 1, 1),
                block_dim: (64, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the argument list matches `reduce_pose`; g_pose holds surfels × 13 floats.
            unsafe { b.launch(cfg) }.map_err(cuda_err)?;
        }
        let g_out = self.stream.clone_dtoh(&g_out).map_err(cuda_err)?;
        let pose_out = self.stream.clone_dtoh(&pose_out).map_err(cuda_err)?;
        Ok(grads_of(jobs, &batch.host, &g_out, &pose_out))
    }
}
