//! Robust pose speed: 1,000 correspondences (30 % outliers, uniform ±3 cm noise) → similarity and yaw-only
//! poses, single-threaded (RANSAC here runs on one core).
#![allow(clippy::unwrap_used, reason = "bench set-up")]

use criterion::{Criterion, criterion_group, criterion_main};
use nalgebra::{Point3, Rotation3, Vector3};
use pose::Similarity;
use pose::ransac::{RansacConfig, Solver, estimate};
use rand::{RngExt, SeedableRng, rngs::StdRng};

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let truth = Similarity {
        rotation: Rotation3::from_axis_angle(&Vector3::y_axis(), 0.8),
        translation: Vector3::new(2.0, 1.6, 18.0),
        scale: 2.75,
    };
    let (mut src, mut dst) = (Vec::new(), Vec::new());
    for _ in 0..1000 {
        let p = Point3::new(
            rng.random_range(-0.35..0.35),
            rng.random_range(-0.28..0.28),
            rng.random_range(-0.8..0.8),
        );
        let q = if rng.random_bool(0.3) {
            Point3::from(
                truth.translation
                    + Vector3::new(
                        rng.random_range(-4.0..4.0),
                        rng.random_range(-2.0..2.0),
                        rng.random_range(-4.0..4.0),
                    ),
            )
        } else {
            truth.apply(&p)
                + Vector3::new(
                    rng.random_range(-0.03..0.03),
                    rng.random_range(-0.03..0.03),
                    rng.random_range(-0.03..0.03),
                )
        };
        src.push(p);
        dst.push(q);
    }
    let config = RansacConfig::default();
    let mut g = c.benchmark_group("pose");
    g.bench_function("ransac_similarity_1000", |b| {
        b.iter(|| estimate(&src, &dst, Solver::Similarity, &config).unwrap())
    });
    g.bench_function("ransac_yaw_1000", |b| {
        b.iter(|| estimate(&src, &dst, Solver::Yaw(-Vector3::y_axis()), &config).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
