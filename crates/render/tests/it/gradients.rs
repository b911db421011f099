//! Finite-difference checks of the analytic backward pass: every output (colour, normal, depth,
//! mask) with respect to positions, normals, colours, and the pose (rotation, translation, scale);
//! and the candle op against the plain backward pass.

use crate::{camera, pose, sphere};
use candle_core::{Device, Tensor, Var};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use render::{CropCamera, Image, ImageGrad, Pose, RenderConfig, RenderOp, Surfels, backward, render};

#[derive(Clone, Copy, Debug)]
enum Output {
    Colour,
    Normal,
    Depth,
    Mask,
}

fn upstream(output: Output, pixels: usize, seed: u64) -> ImageGrad {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut g = ImageGrad::zeros(pixels, 1);
    let mut r = || rng.random_range(-1.0f32..1.0);
    for i in 0..pixels {
        match output {
            Output::Colour => g.colour[i] = [r(), r(), r()],
            Output::Normal => g.normal[i] = [r(), r(), r()],
            Output::Depth => g.depth_m[i] = r(),
            Output::Mask => g.mask[i] = r(),
        }
    }
    g
}

fn loss(image: &Image, g: &ImageGrad) -> f64 {
    let mut l = 0.0f64;
    for i in 0..image.mask.len() {
        for k in 0..3 {
            l += f64::from(g.colour[i][k]) * f64::from(image.colour[i][k]);
            l += f64::from(g.normal[i][k]) * f64::from(image.normal[i][k]);
        }
        l += f64::from(g.depth_m[i]) * f64::from(image.depth_m[i]);
        l += f64::from(g.mask[i]) * f64::from(image.mask[i]);
    }
    l
}

struct Setup {
    cam: CropCamera,
    pose: Pose,
    surfels: Surfels,
    config: RenderConfig,
}

impl Setup {
    fn new() -> Self {
        Setup {
            cam: camera(24, 60.0),
            pose: pose([0.05, -0.03, 6.0], 0.4, 1.1),
            surfels: sphere(400, 1.0),
            // β = 20/m rather than the default 30: with larger β the faint rim of a disc whose centre
            // is 10 cm nearer outweighs the discs behind it by e^(0.1β), which is continuous but so
            // steep that finite differences of a practical step (f32) see a jump. Same code paths.
            config: RenderConfig {
                radius_units: 0.15,
                depth_sharpness_per_m: 20.0,
                ..RenderConfig::default()
            },
        }
    }

    fn loss_with(&self, pose: &Pose, surfels: &Surfels, g: &ImageGrad) -> f64 {
        loss(&render(&self.cam, pose, surfels, &self.config).unwrap(), g)
    }
}

/// Asserts ‖analytic − numeric‖ ≤ 2 % ‖numeric‖ (+ a floor for f32 rounding), and that the numeric
/// gradient is not trivially zero.
fn assert_close(what: &str, analytic: &[f64], numeric: &[f64]) {
    let diff: f64 = analytic
        .iter()
        .zip(numeric)
        .map(|(a, n)| (a - n).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = numeric.iter().map(|n| n * n).sum::<f64>().sqrt();
    assert!(
        norm > 1e-3,
        "{what}: numeric gradient is ~0 ({norm:e}): the check would prove nothing"
    );
    assert!(
        diff <= 0.02 * norm + 2e-3,
        "{what}: |analytic − numeric| = {diff:e}, |numeric| = {norm:e}\n analytic {analytic:?}\n numeric {numeric:?}"
    );
}

fn check(output: Output) {
    let s = Setup::new();
    let g = upstream(output, s.cam.pixels(), 7 + output as u64);
    let image = render(&s.cam, &s.pose, &s.surfels, &s.config).unwrap();
    let analytic = backward(&s.cam, &s.pose, &s.surfels, &s.config, &image, &g).unwrap();
    let eps = 2e-4f32;
    // Surfels that the image depends on (front-facing, on screen), a dozen of them.
    let visible: Vec<usize> = (0..s.surfels.len())
        .filter(|&i| analytic.positions[i].iter().any(|v| *v != 0.0))
        .collect();
    assert!(visible.len() > 50, "{} visible surfels", visible.len());
    let picks: Vec<usize> = visible.iter().step_by(visible.len() / 12).copied().collect();
    let central = |f: &dyn Fn(f32) -> f64| (f(eps) - f(-eps)) / (2.0 * f64::from(eps));

    type Field = fn(&mut Surfels) -> &mut Vec<[f32; 3]>;
    let fields: [(&str, Field, &Vec<[f32; 3]>); 3] = [
        ("positions", |s| &mut s.positions, &analytic.positions),
        ("normals", |s| &mut s.normals, &analytic.normals),
        ("colours", |s| &mut s.colours, &analytic.colours),
    ];
    for (name, field, grads) in fields {
        if name == "colours" && !matches!(output, Output::Colour) {
            assert!(
                grads.iter().flatten().all(|v| *v == 0.0),
                "{output:?}: colours get a gradient"
            );
            continue;
        }
        let (mut a, mut n) = (Vec::new(), Vec::new());
        for &i in &picks {
            for k in 0..3 {
                a.push(f64::from(grads[i][k]));
                n.push(central(&|h| {
                    let mut p = s.surfels.clone();
                    field(&mut p)[i][k] += h;
                    s.loss_with(&s.pose, &p, &g)
                }));
            }
        }
        assert_close(&format!("{output:?} / {name}"), &a, &n);
    }
    let (mut a, mut n) = (Vec::new(), Vec::new());
    for k in 0..3 {
        a.push(f64::from(analytic.pose.translation_m[k]));
        n.push(central(&|h| {
            let mut p = s.pose;
            p.translation_m[k] += h;
            s.loss_with(&p, &s.surfels, &g)
        }));
    }
    assert_close(&format!("{output:?} / translation"), &a, &n);
    let (mut a, mut n) = (Vec::new(), Vec::new());
    for r in 0..3 {
        for c in 0..3 {
            a.push(f64::from(analytic.pose.rotation[(r, c)]));
            n.push(central(&|h| {
                let mut p = s.pose;
                p.rotation[(r, c)] += h;
                s.loss_with(&p, &s.surfels, &g)
            }));
        }
    }
    assert_close(&format!("{output:?} / rotation"), &a, &n);
    let a = [f64::from(analytic.pose.scale)];
    let n = [central(&|h| {
        let mut p = s.pose;
        p.scale += h;
        s.loss_with(&p, &s.surfels, &g)
    })];
    assert_close(&format!("{output:?} / scale"), &a, &n);
}

#[test]
fn colour_gradients_match_finite_differences() {
    check(Output::Colour);
}

#[test]
fn normal_gradients_match_finite_differences() {
    check(Output::Normal);
}

#[test]
fn depth_gradients_match_finite_differences() {
    check(Output::Depth);
}

#[test]
fn mask_gradients_match_finite_differences() {
    check(Output::Mask);
}

/// Candle's autograd through [`RenderOp`], with the camera-frame points built from a translation
/// variable, gives the plain backward pass's gradients.
#[test]
fn candle_op_gradients_match_the_plain_backward() {
    let s = Setup::new();
    let dev = Device::Cpu;
    let n = s.surfels.len();
    let cam_points: Vec<f32> = s.surfels.positions.iter().flat_map(|p| s.pose.apply(p)).collect();
    let cam_normals: Vec<f32> = s.surfels.normals.iter().flat_map(|p| s.pose.rotate(p)).collect();
    // Points relative to the translation, which becomes the variable.
    let t = s.pose.translation_m;
    let rel: Vec<f32> = cam_points
        .chunks(3)
        .flat_map(|p| [p[0] - t.x, p[1] - t.y, p[2] - t.z])
        .collect();
    let translation = Var::from_vec(vec![t.x, t.y, t.z], (1, 3), &dev).unwrap();
    let colours = Var::from_vec(s.surfels.colours.concat(), (n, 3), &dev).unwrap();
    let rel = Tensor::from_vec(rel, (n, 3), &dev).unwrap();
    let normals = Tensor::from_vec(cam_normals, (n, 3), &dev).unwrap();
    let points = rel.broadcast_add(translation.as_tensor()).unwrap();
    let op = RenderOp {
        camera: s.cam,
        config: s.config.clone(),
        radius_m: s.config.radius_units * s.pose.scale,
    };
    let out = op.apply(&points, &normals, colours.as_tensor()).unwrap();
    assert_eq!(out.dims(), &[24, 24, 8]);
    // L = Σ G·out with G mixing every channel.
    let mut rng = StdRng::seed_from_u64(3);
    let g: Vec<f32> = (0..24 * 24 * 8).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let g_t = Tensor::from_vec(g.clone(), (24, 24, 8), &dev).unwrap();
    let loss = (out * &g_t).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let gt: Vec<f32> = grads
        .get(translation.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let gcol: Vec<f32> = grads
        .get(colours.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();

    let image = render(&s.cam, &s.pose, &s.surfels, &s.config).unwrap();
    let plain = backward(
        &s.cam,
        &s.pose,
        &s.surfels,
        &s.config,
        &image,
        &render::unpack_grad(&g),
    )
    .unwrap();
    for k in 0..3 {
        let want = plain.pose.translation_m[k];
        assert!(
            (gt[k] - want).abs() <= 1e-3 * want.abs().max(1.0),
            "translation {k}: {} vs {want}",
            gt[k]
        );
    }
    let want: Vec<f32> = plain.colours.concat();
    let worst = gcol
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-5, "colour gradients differ by {worst}");
}
