//! Speed of synthetic frame generation at default settings: the whole frame, and its stages.
#![allow(clippy::unwrap_used, reason = "bench set-up")]

use criterion::{Criterion, criterion_group, criterion_main};
use sim::bvh::Bvh;
use sim::camera::render_geometry;
use sim::frame::{FrameConfig, frame_seed, generate_frame};
use sim::lidar::scan;
use sim::scene::generate_scene;
use sim::shade::{Lighting, shade};
use sim::{Domain, ShapeLibrary};

fn bench_frame(c: &mut Criterion) {
    let lib = ShapeLibrary::procedural(2020, 1000);
    let config = FrameConfig::default();
    let seeds: Vec<u64> = (0..8).map(|i| frame_seed(0, i)).collect();
    let mut k = 0;
    let mut next = || {
        k = (k + 1) % seeds.len();
        seeds[k]
    };
    let mut g = c.benchmark_group("sim");
    g.sample_size(20);
    g.bench_function("generate_frame", |b| {
        b.iter(|| generate_frame(&lib, &config, next()))
    });

    let scene = generate_scene(&lib, &config.scene, seeds[0]);
    let world = scene.world_mesh();
    let calib = geom::Calib::kitti_reference();
    g.bench_function("scene", |b| {
        b.iter(|| generate_scene(&lib, &config.scene, seeds[0]))
    });
    g.bench_function("bvh_build", |b| b.iter(|| Bvh::build(&world)));
    let bvh = Bvh::build(&world);
    g.bench_function("lidar_scan", |b| {
        b.iter(|| scan(&config.lidar, &scene, &world, &bvh, 1))
    });
    g.bench_function("camera_rasterise", |b| {
        b.iter(|| render_geometry(&scene, &world, &calib, geom::Camera::Cam2, 1242, 375))
    });
    let (geometry, _) = render_geometry(&scene, &world, &calib, geom::Camera::Cam2, 1242, 375);
    let light = Lighting::sample(Domain::Target, &mut rand::SeedableRng::seed_from_u64(3));
    g.bench_function("shade_target", |b| {
        b.iter(|| shade(&geometry, &scene, &calib, geom::Camera::Cam2, &light, 7))
    });
    g.finish();
}

criterion_group!(benches, bench_frame);
criterion_main!(benches);
