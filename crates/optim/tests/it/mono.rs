//! The monocular optimiser: every loss term's gradient against central differences, a fit that
//! recovers a perturbed pose from a rendered view, and typed errors for bad input.

use super::prior;
use deepsdf::texture::{AtlasConfig, MATERIALS, MaterialAtlas};
use geom::{Box2d, Calib, Camera, Intrinsics};
use optim::mono::{
    MonoConfig, MonoOptimiser, MonoProblem, MonoShape, MonoState, MonoView, MonoWeights, evaluate,
};
use render::{CropCamera, RenderConfig};

/// An atlas by hand: glass above the middle, tyres low, paint elsewhere (no library needed).
fn atlas() -> MaterialAtlas {
    let cells = 2;
    let n = cells + 1;
    let mut nodes = Vec::new();
    for _z in 0..n {
        for y in 0..n {
            for _x in 0..n {
                nodes.push(match y {
                    0 => [0.5, 0.0, 0.5, 0.0],
                    1 => [0.8, 0.1, 0.05, 0.05],
                    _ => [0.3, 0.7, 0.0, 0.0],
                });
            }
        }
    }
    MaterialAtlas {
        cells,
        shapes: 0,
        config: AtlasConfig::default(),
        frequencies: [0.7, 0.2, 0.08, 0.02],
        nodes,
    }
}

fn mean_extent() -> [f64; 3] {
    [1.7, 1.5, 4.1]
}

fn truth() -> MonoState {
    MonoState {
        yaw_rad: 0.7,
        offset_box: [0.0, 0.0],
        log_depth: 15.0f64.ln(),
        log_scale: f64::from(deepsdf::samples::DEFAULT_METRES_PER_UNIT).ln(),
        latent: prior().latents[3].clone(),
        palette: [
            [0.7, 0.1, 0.1],
            [0.1, 0.1, 0.12],
            [0.05, 0.05, 0.05],
            [0.8, 0.8, 0.7],
        ],
    }
}

/// The view of `truth`: its rendering (over a grey background, depth 60 m behind it) in a crop of
/// its projected box, the box taken from a first rendering of the same car.
fn view_of(truth: &MonoState, config: &MonoConfig, atlas: &MaterialAtlas) -> MonoView {
    let calib = Calib::kitti_reference();
    let (k, cam_from_rect_m) = Intrinsics::from_projection(&calib.image_from_rect(Camera::Cam2));
    // A first guess of the box around the car's centre (the offsets are measured from it).
    let provisional = |bbox: Box2d| MonoView {
        camera: CropCamera::new(&k.cropped(&bbox, 8, 8), 8, 8),
        intrinsics: k,
        cam_from_rect_m,
        image_size_px: (1242.0, 375.0),
        bbox,
        rgb: vec![[0.0; 3]; 64],
        mask: vec![0.0; 64],
        depth_m: vec![0.0; 64],
        road: Some(optim::GroundPlane::level(2.0)),
    };
    let centre = Box2d::new(540.0, 160.0, 700.0, 220.0);
    let shape = MonoShape::new(
        optim::losses::Shape::new(
            deepsdf::surface::extract_surface(&prior().decoder, &truth.latent, &config.surface, true)
                .unwrap(),
        )
        .unwrap(),
        atlas,
    );
    // The projected extent of the surface is the detection box; the truth's offsets are then
    // measured from that box's centre.
    let v0 = provisional(centre);
    let pose = truth.pose(&v0);
    let pts: Vec<[f64; 2]> = shape
        .shape
        .surfels
        .positions
        .iter()
        .filter_map(|p| {
            let q = pose.apply(p);
            k.project(&nalgebra::Point3::new(
                f64::from(q[0]),
                f64::from(q[1]),
                f64::from(q[2]),
            ))
        })
        .collect();
    let bbox = Box2d::enclosing(pts).unwrap();
    let c = truth.centroid_cam(&v0);
    let [u, v] = k.project(&nalgebra::Point3::from(c)).unwrap();
    let mut truth_here = truth.clone();
    truth_here.offset_box = [
        (u - (bbox.left + bbox.right) / 2.0) / bbox.width(),
        (v - (bbox.top + bbox.bottom) / 2.0) / bbox.height(),
    ];
    let grow = 0.1;
    let window = Box2d::new(
        bbox.left - grow * bbox.width(),
        bbox.top - grow * bbox.height(),
        bbox.right + grow * bbox.width(),
        bbox.bottom + grow * bbox.height(),
    );
    let (w, h) = (
        40,
        ((40.0 * window.height() / window.width()).round() as usize).max(8),
    );
    let camera = CropCamera::new(&k.cropped(&window, w, h), w, h);
    let mut view = MonoView {
        camera,
        bbox,
        ..provisional(bbox)
    };
    let surfels = {
        let s = &shape.shape.surfels;
        render::Surfels {
            positions: s.positions.clone(),
            normals: s.normals.clone(),
            colours: atlas.colours(&s.positions, &truth.palette),
        }
    };
    let image = render::render(&view.camera, &truth_here.pose(&view), &surfels, &config.render).unwrap();
    view.rgb = image
        .colour
        .iter()
        .zip(&image.mask)
        .map(|(c, a)| std::array::from_fn(|ch| c[ch] + (1.0 - a) * 0.5))
        .collect();
    view.mask = image.mask.clone();
    view.depth_m = image
        .depth_m
        .iter()
        .zip(&image.mask)
        .map(|(d, a)| if *a > 0.5 { d / a } else { 60.0 })
        .collect();
    view
}

fn one_term(pick: &str) -> MonoWeights {
    let mut w = MonoWeights {
        pixel: 0.0,
        bbox: 0.0,
        mask: 0.0,
        depth: 0.0,
        dims: 0.0,
        latent: 0.0,
        ground: 0.0,
    };
    match pick {
        "pixel" => w.pixel = 1.0,
        "bbox" => w.bbox = 1.0,
        "mask" => w.mask = 1.0,
        "depth" => w.depth = 1.0,
        "dims" => w.dims = 1.0,
        "ground" => w.ground = 1.0,
        _ => w.latent = 1.0,
    }
    w
}

fn gradient_config() -> MonoConfig {
    MonoConfig {
        render: RenderConfig {
            depth_sharpness_per_m: 20.0,
            ..RenderConfig::default()
        },
        ..MonoConfig::default()
    }
}

#[test]
fn mono_gradients_match_finite_differences() {
    let atlas = atlas();
    let base = gradient_config();
    let truth = truth();
    let view = view_of(&truth, &base, &atlas);
    let mean = prior().mean_latent();
    let mut state = truth.clone();
    state.yaw_rad += 0.1;
    state.offset_box = [0.04, -0.03];
    state.log_depth += 0.04;
    state.log_scale += 0.05;
    state.palette[0] = [0.5, 0.3, 0.2];
    let shape = MonoShape::new(
        optim::losses::Shape::new(
            deepsdf::surface::extract_surface(&prior().decoder, &state.latent, &base.surface, true).unwrap(),
        )
        .unwrap(),
        &atlas,
    );
    for term in ["pixel", "bbox", "mask", "depth", "dims", "ground", "latent"] {
        let config = MonoConfig {
            weights: one_term(term),
            box_margin: 0.0,
            ..base.clone()
        };
        // The L1 terms (pixel, depth) have kinks where a residual changes sign; their checks use
        // evidence that keeps every residual's sign (a black image, depths 3 m too far), so
        // central differences see one smooth piece.
        let mut view = view.clone();
        if term == "pixel" {
            view.rgb.iter_mut().for_each(|c| *c = [0.0; 3]);
        }
        if term == "depth" {
            view.depth_m.iter_mut().for_each(|d| *d += 3.0);
        }
        let problem = MonoProblem {
            view: &view,
            atlas: &atlas,
            mean_latent: &mean,
            mean_extent_m: mean_extent(),
            config: &config,
        };
        let (terms, _, grad) = evaluate(&problem, &state, &shape, true).unwrap();
        let grad = grad.unwrap();
        let loss = |s: &MonoState| evaluate(&problem, s, &shape, false).unwrap().0.total;
        assert!(terms.total > 0.0, "{term}: {terms:?}");
        let (h, rel) = (1e-4, 3e-2);
        let check = |name: &str, analytic: f64, change: &dyn Fn(&mut MonoState, f64)| {
            let (mut a, mut b) = (state.clone(), state.clone());
            change(&mut a, h);
            change(&mut b, -h);
            let numeric = (loss(&a) - loss(&b)) / (2.0 * h);
            let tol = rel * analytic.abs().max(numeric.abs()) + 2e-4;
            assert!(
                (analytic - numeric).abs() <= tol,
                "{term} {name}: analytic {analytic:.6e}, numeric {numeric:.6e}"
            );
        };
        check("yaw", grad.yaw, &|s, d| s.yaw_rad += d);
        check("du", grad.offset_box[0], &|s, d| s.offset_box[0] += d);
        check("dv", grad.offset_box[1], &|s, d| s.offset_box[1] += d);
        check("ln z", grad.log_depth, &|s, d| s.log_depth += d);
        check("ln s", grad.log_scale, &|s, d| s.log_scale += d);
        for m in 0..MATERIALS {
            for ch in 0..3 {
                check(&format!("palette[{m}][{ch}]"), grad.palette[m][ch], &|s, d| {
                    s.palette[m][ch] += d as f32;
                });
            }
        }
        if term == "latent" {
            // The code prior is the only term on the code itself (the others reach it through the
            // surface Jacobians, checked in the LIDAR optimiser's tests).
            for (k, g) in grad.latent.iter().enumerate() {
                let d = f64::from(state.latent[k] - mean[k]);
                assert!((g - 2.0 * d).abs() < 1e-9, "latent[{k}]");
            }
        }
    }
}

#[test]
fn the_mono_fit_recovers_a_perturbed_pose() {
    let atlas = atlas();
    let config = MonoConfig {
        iterations: 80,
        yaw_starts: 1,
        ..MonoConfig::default()
    };
    let truth = truth();
    let view = view_of(&truth, &config, &atlas);
    let mean = prior().mean_latent();
    let opt = MonoOptimiser::new(&prior().decoder, &atlas, &mean, mean_extent(), &config);
    let mut init = opt.initial_state(&view, truth.log_scale.exp(), truth.yaw_rad + 0.25, 30.0);
    init.latent = truth.latent.clone();
    // The start's depth comes from the depth map (the near surface plus a fraction of a car).
    let start_err = (init.log_depth.exp() - truth.log_depth.exp()).abs();
    assert!(start_err < 2.0, "start depth error {start_err}");
    let fit = opt.fit(&view, &init, 7).unwrap();
    let t_true = truth.to_object_state(&view).translation_rect_m;
    let t_fit = fit.state.to_object_state(&view).translation_rect_m;
    let err_m = (t_true - t_fit).norm();
    let err_yaw_deg = (fit.state.yaw_rad - truth.yaw_rad).to_degrees();
    let err_yaw_deg = (err_yaw_deg + 180.0).rem_euclid(360.0) - 180.0;
    assert!(fit.terms.total < fit.initial_loss, "{fit:?}");
    assert!(
        err_m < 0.35,
        "position error {err_m:.3} m ({t_fit:?} vs {t_true:?})"
    );
    assert!(err_yaw_deg.abs() < 6.0, "yaw error {err_yaw_deg:.2} deg");
    assert!(fit.diagnostics.silhouette_iou > 0.8, "{:?}", fit.diagnostics);
    // Deterministic for a fixed seed.
    let again = opt.fit(&view, &init, 7).unwrap();
    assert_eq!(again.state, fit.state);
}

#[test]
fn bad_mono_input_is_a_typed_error() {
    let atlas = atlas();
    let config = MonoConfig::default();
    let view = view_of(&truth(), &config, &atlas);
    let mean = prior().mean_latent();
    let opt = MonoOptimiser::new(&prior().decoder, &atlas, &mean, mean_extent(), &config);
    let init = opt.initial_state(&view, 2.75, 0.0, 30.0);
    let mut short = view.clone();
    short.mask.pop();
    assert!(matches!(
        opt.fit(&short, &init, 0),
        Err(optim::OptimError::InvalidInput(_))
    ));
    let mut nan = init.clone();
    nan.log_depth = f64::NAN;
    assert!(matches!(
        opt.fit(&view, &nan, 0),
        Err(optim::OptimError::InvalidInput(_))
    ));
}
