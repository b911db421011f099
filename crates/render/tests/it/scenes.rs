//! Forward tests against analytic scenes, and the batch renderers against the plain functions.

use crate::{camera, max_rel_diff, pose, sphere};
use render::{CpuRenderer, ImageGrad, Job, Pose, RenderConfig, Renderer, Surfels, backward, render};

#[test]
fn discs_on_a_plane_render_its_depth() {
    // The plane z = 5 + 0.3·x (camera frame, m), sampled on a jittered grid; normals towards the camera.
    let nrm = {
        let v = [0.3f32, 0.0, -1.0];
        let l = (v[0] * v[0] + v[2] * v[2]).sqrt();
        v.map(|c| c / l)
    };
    let mut s = Surfels::default();
    for i in 0..40 {
        for j in 0..40 {
            let x = -2.0 + 0.1 * i as f32 + 0.013 * ((i * 7 + j * 3) % 5) as f32;
            let y = -2.0 + 0.1 * j as f32;
            s.positions.push([x, y, 5.0 + 0.3 * x]);
            s.normals.push(nrm);
            s.colours.push([0.5; 3]);
        }
    }
    let cam = camera(48, 40.0);
    let config = RenderConfig {
        radius_units: 0.1,
        ..RenderConfig::default()
    };
    let image = render(&cam, &Pose::new(nalgebra::Vector3::zeros(), 1.0), &s, &config).unwrap();
    let mut checked = 0;
    for v in 0..cam.height {
        for u in 0..cam.width {
            let i = v * cam.width + u;
            if let Some((_, _, depth)) = image.unpremultiplied(i, 0.99) {
                let dx = (u as f32 - cam.cx) / cam.fx;
                // Ray (dx, dy, 1)·t on the plane: t = 5 + 0.3·dx·t.
                let want = 5.0 / (1.0 - 0.3 * dx);
                assert!((depth - want).abs() < 1e-4 * want, "pixel ({u}, {v})");
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked} covered pixels");
}

#[test]
fn discs_on_a_sphere_render_its_silhouette() {
    let surfels = sphere(3000, 1.0);
    let cam = camera(64, 120.0);
    let z = 5.0f32;
    // 3,000 points on the unit sphere lie ~0.065 apart: discs of radius 0.05 close the gaps.
    let config = RenderConfig {
        radius_units: 0.05,
        ..RenderConfig::default()
    };
    let image = render(&cam, &pose([0.1, -0.05, z], 0.3, 1.0), &surfels, &config).unwrap();
    let (mut inter, mut union) = (0, 0);
    for v in 0..cam.height {
        for u in 0..cam.width {
            // The ray hits the sphere iff its distance from the centre is below the radius.
            let d = nalgebra::Vector3::new((u as f32 - cam.cx) / cam.fx, (v as f32 - cam.cy) / cam.fy, 1.0)
                .normalize();
            let c = nalgebra::Vector3::new(0.1, -0.05, z);
            let dist = (c - d * c.dot(&d)).norm();
            let truth = dist < 1.0;
            let ours = image.mask[v * cam.width + u] > 0.5;
            inter += usize::from(truth && ours);
            union += usize::from(truth || ours);
        }
    }
    let iou = inter as f64 / union as f64;
    assert!(iou > 0.98, "silhouette IoU {iou:.4}");
    assert!(union > 1500, "the sphere covers {union} pixels");
}

fn square(z: f32, half: f32, colour: [f32; 3]) -> Surfels {
    let mut s = Surfels::default();
    let n = 30;
    for i in 0..n {
        for j in 0..n {
            let x = -half + 2.0 * half * i as f32 / (n - 1) as f32;
            let y = -half + 2.0 * half * j as f32 / (n - 1) as f32;
            s.positions.push([x, y, z]);
            s.normals.push([0.0, 0.0, -1.0]);
            s.colours.push(colour);
        }
    }
    s
}

fn concat(a: &Surfels, b: &Surfels) -> Surfels {
    let mut s = a.clone();
    s.positions.extend(&b.positions);
    s.normals.extend(&b.normals);
    s.colours.extend(&b.colours);
    s
}

#[test]
fn the_nearer_of_two_surfaces_wins() {
    let near = square(4.0, 0.4, [1.0, 0.0, 0.0]);
    let far = square(5.0, 1.0, [0.0, 0.0, 1.0]);
    let cam = camera(32, 40.0);
    let config = RenderConfig {
        radius_units: 0.06,
        ..RenderConfig::default()
    };
    let p = Pose::new(nalgebra::Vector3::zeros(), 1.0);
    // Either order of the discs gives the same picture.
    for s in [concat(&near, &far), concat(&far, &near)] {
        let image = render(&cam, &p, &s, &config).unwrap();
        let (colour, _, depth) = image.unpremultiplied(16 * 32 + 16, 0.99).unwrap();
        assert!(colour[0] > 0.999 && colour[2] < 1e-3, "{colour:?}");
        assert!((depth - 4.0).abs() < 1e-3);
        // Beside the near square (its edge and soft rim end 5.9 px from the centre) only the far one
        // is seen: pixel 23 looks at x = 0.94 m on the far plane, inside its 1 m half-width.
        let (colour, _, depth) = image.unpremultiplied(16 * 32 + 23, 0.99).unwrap();
        assert!(colour[2] > 0.999 && colour[0] < 1e-3, "{colour:?}");
        assert!((depth - 5.0).abs() < 1e-3);
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let surfels = sphere(2000, 1.0);
    let cam = camera(64, 120.0);
    let p = pose([0.0, 0.0, 5.0], 0.7, 1.0);
    let config = RenderConfig::default();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let image = render(&cam, &p, &surfels, &config).unwrap();
            let mut g = ImageGrad::zeros(64, 64);
            for (i, m) in g.mask.iter_mut().enumerate() {
                *m = (i % 7) as f32 - 3.0;
            }
            let grad = backward(&cam, &p, &surfels, &config, &image, &g).unwrap();
            (image, grad)
        })
    };
    let (a, ga) = run(1);
    let (b, gb) = run(3);
    assert_eq!(a, b);
    assert_eq!(ga, gb);
}

/// Every available batch renderer reproduces the plain CPU functions within 1e-4 relative: the CPU
/// one always, the CUDA one where the `cuda` feature is on and a GPU is present.
#[test]
fn batch_renderers_agree_with_the_reference() {
    let shapes = [sphere(1500, 1.0), sphere(3000, 0.8)];
    let cams = [camera(64, 120.0), camera(48, 70.0)];
    let config = RenderConfig::default();
    let mut jobs = Vec::new();
    for k in 0..8 {
        jobs.push(Job {
            camera: cams[k % 2],
            pose: pose(
                [0.1 * k as f32 - 0.3, 0.05, 5.0 + 0.2 * k as f32],
                0.4 * k as f32,
                1.0 + 0.05 * k as f32,
            ),
            surfels: &shapes[k % 2],
        });
    }
    let grads: Vec<ImageGrad> = jobs
        .iter()
        .enumerate()
        .map(|(k, j)| {
            let mut g = ImageGrad::zeros(j.camera.width, j.camera.height);
            for i in 0..g.mask.len() {
                let f = ((i * 31 + k * 17) % 13) as f32 / 13.0 - 0.5;
                g.mask[i] = f;
                g.depth_m[i] = 0.3 * f;
                g.colour[i] = [f, -f, 0.5 * f];
                g.normal[i] = [0.2 * f, 0.1, -f];
            }
            g
        })
        .collect();
    let reference: Vec<_> = jobs
        .iter()
        .zip(&grads)
        .map(|(j, g)| {
            let image = render(&j.camera, &j.pose, j.surfels, &config).unwrap();
            let grad = backward(&j.camera, &j.pose, j.surfels, &config, &image, g).unwrap();
            (image, grad)
        })
        .collect();
    #[allow(unused_mut, reason = "pushed to with the cuda feature")]
    let mut renderers: Vec<Box<dyn Renderer>> = vec![Box::new(CpuRenderer)];
    #[cfg(feature = "cuda")]
    match render::cuda::CudaRenderer::new(0) {
        Ok(r) => renderers.push(Box::new(r)),
        Err(e) => eprintln!("CUDA half skipped: {e}"),
    }
    for r in &renderers {
        let images = r.render_batch(&jobs, &config).unwrap();
        let out = r.backward_batch(&jobs, &config, &images, &grads).unwrap();
        for (k, ((image, grad), (ref_image, ref_grad))) in images.iter().zip(&out).zip(&reference).enumerate()
        {
            let d = max_rel_diff(image, ref_image, 1e-2);
            assert!(d < 1e-4, "{}: job {k} image differs by {d}", r.name());
            let scale = ref_grad
                .positions
                .iter()
                .flatten()
                .fold(0f32, |m, v| m.max(v.abs()));
            let worst = grad
                .positions
                .iter()
                .flatten()
                .zip(ref_grad.positions.iter().flatten())
                .chain(
                    grad.normals
                        .iter()
                        .flatten()
                        .zip(ref_grad.normals.iter().flatten()),
                )
                .chain(
                    grad.colours
                        .iter()
                        .flatten()
                        .zip(ref_grad.colours.iter().flatten()),
                )
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                worst <= 1e-4 * scale,
                "{}: job {k} surfel gradients differ by {worst} (scale {scale})",
                r.name()
            );
            let pd = (grad.pose.translation_m - ref_grad.pose.translation_m).norm();
            assert!(
                pd <= 1e-4 * ref_grad.pose.translation_m.norm().max(1.0),
                "{}: job {k} pose",
                r.name()
            );
            let (g, w) = (&grad.pose, &ref_grad.pose);
            let full = (g.rotation - w.rotation).norm()
                + (g.translation_m - w.translation_m).norm()
                + (g.scale - w.scale).abs();
            let norm = w.rotation.norm() + w.translation_m.norm() + w.scale.abs();
            assert!(
                full <= 1e-4 * norm.max(1.0),
                "{}: job {k} rotation/translation/scale gradients",
                r.name()
            );
        }
    }
}
