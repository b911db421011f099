//! CSS inference speed: 16 detection crops of ~128 × 128 px from a KITTI-sized image, at batch 16
//! (crop resampling included), with the default network (weights do not change the speed: a
//! seeded network is used so that the bench needs no trained file).
#![allow(clippy::unwrap_used, reason = "bench set-up")]

use candle_core::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use css::CssModel;
use css::infer::Request;
use css::model::{ModelConfig, build};
use geom::Box2d;

fn bench(c: &mut Criterion) {
    let (net, varmap) = build(&ModelConfig::default(), 0, &Device::Cpu).unwrap();
    let model = CssModel {
        net,
        varmap,
        meta: None,
    };
    let image = image::RgbImage::from_fn(1242, 375, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8])
    });
    let requests: Vec<Request<'_>> = (0..16)
        .map(|k| {
            let x = 20.0 + 70.0 * k as f64;
            Request {
                bbox: Box2d::new(x, 150.0, x + 127.0, 277.0),
                mask: None,
            }
        })
        .collect();
    let k = geom::Intrinsics {
        fx: 721.5,
        fy: 721.5,
        cx: 609.6,
        cy: 172.9,
    };
    let mut g = c.benchmark_group("css");
    g.sample_size(20);
    g.bench_function("predict_16_crops_128px", |b| {
        b.iter(|| model.predict(&image, &k, &requests).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
