//! Baseline box-fit speed: 1,000 points on the visible faces (two sides and the roof) of a car 15 m
//! ahead, σ = 2 cm noise → ground-aligned minimum-area box.
#![allow(clippy::unwrap_used, reason = "bench set-up")]

use criterion::{Criterion, criterion_group, criterion_main};
use geom::{Box3d, Size3};
use nalgebra::{Point3, Vector3};
use pose::boxfit::{BoxFitConfig, fit_box};
use pose::ground::Plane;
use rand::{RngExt, SeedableRng, rngs::StdRng};

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let car = Box3d::new(Point3::new(2.0, 1.65, 15.0), Size3::new(1.5, 1.7, 4.2), 0.6);
    let corners = car.corners_rect();
    // Roof, the side facing the camera and the rear (corner quads of Box3d::corners_rect).
    let faces = [[4, 5, 7], [3, 0, 7], [2, 3, 6]];
    let gauss = |rng: &mut StdRng| 0.02 * rng.sample::<f64, _>(rand_distr::StandardNormal);
    let points: Vec<Point3<f64>> = (0..1000)
        .map(|i| {
            let [a, b, d] = faces[i % 3].map(|k| corners[k]);
            let (s, t): (f64, f64) = (rng.random_range(0.0..1.0), rng.random_range(0.0..1.0));
            let noise = Vector3::new(gauss(&mut rng), gauss(&mut rng), gauss(&mut rng));
            a + (b - a) * s + (d - a) * t + noise
        })
        .collect();
    let ground = Plane {
        normal: -Vector3::y_axis(),
        offset: 1.65,
    };
    let config = BoxFitConfig::default();
    let mut g = c.benchmark_group("pose");
    g.bench_function("boxfit_1000", |b| {
        b.iter(|| fit_box(&points, &ground, &config).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
