//! One object's fit, end to end (decode, yaw candidates, Adam with renders and LIDAR terms): the
//! optimiser's share of the ≤ 1 s per object budget.
#![allow(clippy::unwrap_used, reason = "bench")]

use criterion::{Criterion, criterion_group, criterion_main};
use deepsdf::ShapePrior;
use deepsdf::surface::{SurfaceConfig, extract_surface};
use nalgebra::Vector3;
use optim::{GroundPlane, ObjectState, Observation, OptimConfig, Optimiser, View};
use render::{CropCamera, Pose, Surfels};
use std::path::PathBuf;

fn bench(c: &mut Criterion) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/weights/deepsdf.safetensors");
    let prior = ShapePrior::load(&path).unwrap();
    let truth = ObjectState {
        yaw_rad: 0.6,
        translation_rect_m: Vector3::new(2.0, 0.9, 14.0),
        scale: 2.75,
        latent: prior.latents[3].clone(),
    };
    let surface = extract_surface(&prior.decoder, &truth.latent, &SurfaceConfig::default(), false).unwrap();
    let lowest = surface.points.iter().map(|p| p[1]).fold(f32::INFINITY, f32::min);
    let ground = GroundPlane::level(truth.translation_rect_m.y - truth.scale * f64::from(lowest));
    let sensor = Vector3::new(0.0, -0.08, -0.27);
    let rot = truth.rotation(&ground);
    // Every other front-facing surface point as a LIDAR return (~400 points).
    let lidar_rect: Vec<Vector3<f64>> = surface
        .points
        .iter()
        .zip(&surface.normals)
        .map(|(p, n)| {
            (
                truth.to_rect(&ground, p),
                rot * Vector3::new(n[0], n[1], n[2]).cast::<f64>(),
            )
        })
        .filter(|(q, n)| n.dot(&(sensor - q)) > 0.0)
        .step_by(2)
        .map(|(q, _)| q)
        .collect();
    let c_cam = truth.translation_rect_m;
    let f = 32.0 / (6.0 / c_cam.z);
    let camera = CropCamera {
        fx: f as f32,
        fy: f as f32,
        cx: (15.5 - f * c_cam.x / c_cam.z) as f32,
        cy: (15.5 - f * c_cam.y / c_cam.z) as f32,
        width: 32,
        height: 32,
    };
    let pose = Pose {
        rotation: rot.cast::<f32>(),
        translation_m: c_cam.cast::<f32>(),
        scale: 2.75,
    };
    let surfels = Surfels {
        positions: surface.points.clone(),
        normals: surface.normals.clone(),
        colours: surface.nocs.clone(),
    };
    let image = render::render(&camera, &pose, &surfels, &render::RenderConfig::default()).unwrap();
    let nocs = image
        .colour
        .iter()
        .zip(&image.mask)
        .map(|(c, a)| if *a > 1e-3 { c.map(|v| v / a) } else { [0.0; 3] })
        .collect();
    let observation = Observation {
        lidar_rect,
        sensor_rect: sensor,
        ground,
        view: Some(View {
            camera,
            cam_from_rect_m: Vector3::zeros(),
            nocs,
            mask_prob: image.mask.clone(),
        }),
    };
    let mut start = truth.clone();
    start.yaw_rad += 0.15;
    start.translation_rect_m += Vector3::new(0.2, 0.0, -0.2);
    start.latent = prior.mean_latent();
    let (mean, config) = (prior.mean_latent(), OptimConfig::default());
    let opt = Optimiser::new(&prior.decoder, &mean, &config);
    let mut group = c.benchmark_group("optim");
    group.sample_size(20);
    group.bench_function(
        format!("fit_{}_lidar_32px_view", observation.lidar_rect.len()),
        |b| b.iter(|| opt.fit(&observation, &start).unwrap()),
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
