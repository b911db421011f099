//! One API over the CPU and the CUDA paths: batches of objects, each with its own crop camera, pose
//! and surfels.

use crate::error::{RenderError, Result};
use crate::{CropCamera, Image, ImageGrad, Pose, RenderConfig, SurfelGrad, Surfels, cpu};
use rayon::prelude::*;

/// One object to render.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    /// Its crop camera.
    pub camera: CropCamera,
    /// Model → camera.
    pub pose: Pose,
    /// Its surfels, model frame.
    pub surfels: &'a Surfels,
}

/// A renderer of batches: forward, and backward given the loss gradient of every image.
pub trait Renderer: Send + Sync {
    /// Where it runs ("cpu", "cuda:0").
    fn name(&self) -> String;

    /// Renders every job.
    fn render_batch(&self, jobs: &[Job<'_>], config: &RenderConfig) -> Result<Vec<Image>>;

    /// The gradients of every job's surfels and pose, given `images` from [`Renderer::render_batch`]
    /// and the loss gradients `grads` with respect to them.
    fn backward_batch(
        &self,
        jobs: &[Job<'_>],
        config: &RenderConfig,
        images: &[Image],
        grads: &[ImageGrad],
    ) -> Result<Vec<SurfelGrad>>;
}

pub(crate) fn check_batch(jobs: usize, images: usize, grads: usize) -> Result<()> {
    if jobs == images && jobs == grads {
        Ok(())
    } else {
        Err(RenderError::Shape(format!(
            "{jobs} jobs, {images} images, {grads} gradients"
        )))
    }
}

/// The CPU renderer (rayon over objects, tiles and discs).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuRenderer;

impl Renderer for CpuRenderer {
    fn name(&self) -> String {
        "cpu".to_owned()
    }

    fn render_batch(&self, jobs: &[Job<'_>], config: &RenderConfig) -> Result<Vec<Image>> {
        jobs.par_iter()
            .map(|j| cpu::render(&j.camera, &j.pose, j.surfels, config))
            .collect()
    }

    fn backward_batch(
        &self,
        jobs: &[Job<'_>],
        config: &RenderConfig,
        images: &[Image],
        grads: &[ImageGrad],
    ) -> Result<Vec<SurfelGrad>> {
        check_batch(jobs.len(), images.len(), grads.len())?;
        jobs.par_iter()
            .zip(images)
            .zip(grads)
            .map(|((j, im), g)| cpu::backward(&j.camera, &j.pose, j.surfels, config, im, g))
            .collect()
    }
}

/// The CUDA renderer when the `cuda` feature is on and a GPU with its driver and NVRTC is present,
/// else the CPU one (the reason is logged).
pub fn best_available() -> Box<dyn Renderer> {
    #[cfg(feature = "cuda")]
    {
        match crate::cuda::CudaRenderer::new(0) {
            Ok(r) => return Box::new(r),
            Err(e) => tracing::info!("CUDA renderer unavailable ({e}); rendering on the CPU"),
        }
    }
    Box::new(CpuRenderer)
}
