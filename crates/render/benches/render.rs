//! Renderer speed: forward + backward of 3,000 surfels into a 64 × 64 crop (one object), and
//! batches of 64 objects on the CPU and, with `--features cuda` on a machine with a GPU, on CUDA.
#![allow(clippy::unwrap_used, reason = "bench set-up")]

use criterion::{Criterion, criterion_group, criterion_main};
use nalgebra::{Matrix3, Vector3};
use render::{
    CpuRenderer, CropCamera, ImageGrad, Job, Pose, RenderConfig, Renderer, Surfels, backward, render,
};

/// A car-sized ellipsoid (model units) sampled with `n` surfels, NOCS colours.
fn ellipsoid(n: usize) -> Surfels {
    Surfels::ellipsoid(n, [0.35, 0.28, 0.8])
}

fn setup(k: usize) -> (CropCamera, Pose) {
    let yaw = 0.4 + 0.1 * k as f32;
    let (s, c) = yaw.sin_cos();
    // A car (scale 2.75 m per unit) 15 m away, filling a 64 × 64 crop.
    let cam = CropCamera {
        fx: 250.0,
        fy: 250.0,
        cx: 31.5,
        cy: 31.5,
        width: 64,
        height: 64,
    };
    let pose = Pose {
        rotation: Matrix3::new(c, 0.0, s, 0.0, 1.0, 0.0, -s, 0.0, c),
        translation_m: Vector3::new(0.0, 0.0, 15.0),
        scale: 2.75,
    };
    (cam, pose)
}

fn grad_of(cam: &CropCamera) -> ImageGrad {
    let mut g = ImageGrad::zeros(cam.width, cam.height);
    for i in 0..g.mask.len() {
        let f = (i % 5) as f32 * 0.1 - 0.2;
        g.mask[i] = f;
        g.colour[i] = [f, 0.5 * f, -f];
        g.depth_m[i] = 0.1 * f;
    }
    g
}

fn bench(c: &mut Criterion) {
    let surfels = ellipsoid(3000);
    let config = RenderConfig::default();
    let (cam, pose) = setup(0);
    let image = render(&cam, &pose, &surfels, &config).unwrap();
    let covered = image.mask.iter().filter(|m| **m > 0.5).count();
    eprintln!(
        "one object: {} surfels, {covered} of {} pixels covered",
        surfels.len(),
        cam.pixels()
    );
    let grad = grad_of(&cam);
    let mut g = c.benchmark_group("render");
    g.bench_function("forward_3000_surfels_64x64", |b| {
        b.iter(|| render(&cam, &pose, &surfels, &config).unwrap())
    });
    g.bench_function("forward_backward_3000_surfels_64x64", |b| {
        b.iter(|| {
            let image = render(&cam, &pose, &surfels, &config).unwrap();
            backward(&cam, &pose, &surfels, &config, &image, &grad).unwrap()
        })
    });

    let jobs: Vec<Job<'_>> = (0..64)
        .map(|k| {
            let (camera, pose) = setup(k);
            Job {
                camera,
                pose,
                surfels: &surfels,
            }
        })
        .collect();
    let grads: Vec<ImageGrad> = jobs.iter().map(|j| grad_of(&j.camera)).collect();
    #[allow(unused_mut, reason = "pushed to with the cuda feature")]
    let mut renderers: Vec<Box<dyn Renderer>> = vec![Box::new(CpuRenderer)];
    #[cfg(feature = "cuda")]
    match render::cuda::CudaRenderer::new(0) {
        Ok(r) => renderers.push(Box::new(r)),
        Err(e) => eprintln!("no CUDA renderer: {e}"),
    }
    for r in &renderers {
        g.bench_function(format!("batch64_forward_backward_{}", r.name()), |b| {
            b.iter(|| {
                let images = r.render_batch(&jobs, &config).unwrap();
                r.backward_batch(&jobs, &config, &images, &grads).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
