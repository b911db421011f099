//! CSS network tests: output shapes, the targets' geometry, a short overfit on 8 crops, weights
//! save/load, resumable training, and inference on an image.
#![allow(clippy::unwrap_used, reason = "tests")]

use candle_core::{Device, Tensor};
use css::data::{
    AugmentConfig, Crop, CropConfig, LatentTargets, augment, crop_to_image, crop_window, crops_of_frame,
};
use css::model::{ModelConfig, build};
use css::train::{TrainConfig, train};
use deepsdf::ShapePrior;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use sim::ShapeLibrary;
use sim::frame::{FrameConfig, frame_seed, generate_frame};
use std::path::PathBuf;
use std::sync::OnceLock;

fn prior() -> &'static ShapePrior {
    static PRIOR: OnceLock<ShapePrior> = OnceLock::new();
    PRIOR.get_or_init(|| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/weights/deepsdf.safetensors");
        ShapePrior::load(&p).unwrap()
    })
}

fn library() -> &'static ShapeLibrary {
    static LIB: OnceLock<ShapeLibrary> = OnceLock::new();
    LIB.get_or_init(|| ShapeLibrary::procedural(2020, 1000))
}

/// Crops of a few clean frames, with fitted latent targets.
fn crops(frames: usize) -> Vec<Crop> {
    static CROPS: OnceLock<Vec<Crop>> = OnceLock::new();
    let all = CROPS.get_or_init(|| {
        let cfg = FrameConfig {
            domain: sim::Domain::Clean,
            ..FrameConfig::default()
        };
        css::data::generate_crops(
            library(),
            prior(),
            &cfg,
            77,
            4,
            &CropConfig::default(),
            true,
            &|_| (),
        )
        .unwrap()
    });
    assert!(all.len() >= 8, "{} crops", all.len());
    all[..frames.min(all.len())].to_vec()
}

fn tiny() -> ModelConfig {
    ModelConfig {
        input_size: 32,
        widths: [8, 16, 32],
        skip_width: 8,
        groups: 4,
        ..ModelConfig::default()
    }
}

#[test]
fn outputs_have_the_documented_shapes() {
    let dev = Device::Cpu;
    for cfg in [
        ModelConfig::default(),
        ModelConfig {
            output_stride: 1,
            shared_decoder: false,
            ..tiny()
        },
    ] {
        let (net, _) = build(&cfg, 3, &dev).unwrap();
        let x = Tensor::rand(0f32, 1f32, (2, 3, cfg.input_size, cfg.input_size), &dev).unwrap();
        let boxes = Tensor::rand(-1f32, 1f32, (2, css::data::BOX_FEATURES), &dev).unwrap();
        let out = net.forward(&x, Some(&boxes)).unwrap();
        let t = cfg.output_size();
        assert_eq!(out.nocs.dims(), &[2, 3, t, t]);
        assert_eq!(out.mask_logit.dims(), &[2, 1, t, t]);
        assert_eq!(out.latent.dims(), &[2, cfg.latent_dim]);
        let norms: Vec<f32> = out.latent.sqr().unwrap().sum(1).unwrap().to_vec1().unwrap();
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-4), "{norms:?}");
        let nocs: Vec<f32> = out.nocs.flatten_all().unwrap().to_vec1().unwrap();
        assert!(nocs.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn weights_are_seeded() {
    let dev = Device::Cpu;
    let vars = |seed| {
        let (_, vm) = build(&tiny(), seed, &dev).unwrap();
        css::weights::variables(&vm)
            .unwrap()
            .into_iter()
            .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(vars(5), vars(5));
    assert_ne!(vars(5), vars(6));
}

/// Every car pixel's NOCS target, taken back to metres and through the true pose into the image,
/// lands on that pixel.
#[test]
fn nocs_targets_reproject_onto_their_pixels() {
    let cfg = FrameConfig {
        domain: sim::Domain::Clean,
        ..FrameConfig::default()
    };
    let frame = generate_frame(library(), &cfg, frame_seed(77, 0));
    let latents = LatentTargets::new(prior(), library());
    let crop_cfg = CropConfig::default();
    let crops = crops_of_frame(&frame, 0, &latents, prior().meta.metres_per_unit, &crop_cfg).unwrap();
    assert!(!crops.is_empty());
    let mut checked = 0;
    for c in &crops {
        let ann = &frame.annotations[c.source.1];
        let label = &frame.labels[c.source.1];
        let window = crop_window(&label.bbox, crop_cfg.margin);
        let mesh = library().shape(c.shape_index).unwrap();
        let norm = deepsdf::samples::Normalisation::for_mesh(&mesh, prior().meta.metres_per_unit).unwrap();
        let rect_from_model = nalgebra::Matrix4::from_fn(|r, k| ann.rect_from_model[r][k]);
        for (p, m) in c.mask.iter().enumerate() {
            if !m {
                continue;
            }
            let nocs = c.nocs[p].map(|v| f32::from(v) / 65535.0);
            let unit = nocs.map(|v| v * 2.0 - 1.0);
            let model = norm.to_model_m(unit);
            let rect = rect_from_model.transform_point(&nalgebra::Point3::new(
                f64::from(model[0]),
                f64::from(model[1]),
                f64::from(model[2]),
            ));
            let uv = frame
                .calib
                .project_rect_to_image(geom::Camera::Cam2, &rect)
                .unwrap();
            let (i, j) = (p % c.size, p / c.size);
            let (u, v) = crop_to_image(&window, c.size, i as f64, j as f64);
            // The target comes from the image pixel nearest to the crop pixel's centre.
            assert!(
                (uv[0] - u.round()).abs() < 0.05 && (uv[1] - v.round()).abs() < 0.05,
                "{uv:?} vs ({u}, {v})"
            );
            checked += 1;
        }
    }
    assert!(checked > 500, "{checked} pixels");
}

#[test]
fn augmentation_keeps_targets_with_their_pixels_and_mirrors_nocs_x() {
    let crop = &crops(1)[0];
    let none = augment(
        crop,
        64,
        64,
        &AugmentConfig::none(),
        &mut StdRng::seed_from_u64(1),
    );
    let flip_only = AugmentConfig {
        flip_probability: 1.0,
        ..AugmentConfig::none()
    };
    let flipped = augment(crop, 64, 64, &flip_only, &mut StdRng::seed_from_u64(1));
    let n = 64 * 64;
    for j in 0..64 {
        for i in 0..64 {
            let (a, b) = (j * 64 + i, j * 64 + 63 - i);
            assert_eq!(none.mask[a], flipped.mask[b]);
            for k in 0..3 {
                assert!((none.input[k * n + a] - flipped.input[k * n + b]).abs() < 1e-6);
            }
            if none.mask[a] > 0.5 {
                assert!((none.nocs[a] - (1.0 - flipped.nocs[b])).abs() < 1e-6);
                assert_eq!(none.nocs[n + a], flipped.nocs[n + b]);
            }
        }
    }
    assert!(none.mask.iter().sum::<f32>() > 100.0);
}

#[test]
fn box_features_carry_metric_size_and_mirror_with_the_crop() {
    use css::data::{BoxRays, box_features};
    let k = kitti_intrinsics();
    // A 1.5 m tall, 4 m long car side-on, its bottom 1.65 m below the camera, at two distances:
    // the box shrinks with distance, the size features do not.
    let box_at = |z: f64, x: f64| {
        let u = |x: f64| k.cx + k.fx * x / z;
        let v = |y: f64| k.cy + k.fy * y / z;
        geom::Box2d::new(u(x - 2.0), v(1.65 - 1.5), u(x + 2.0), v(1.65))
    };
    let near = box_features(&BoxRays::new(&box_at(10.0, 1.0), &k));
    let far = box_features(&BoxRays::new(&box_at(30.0, 3.0), &k));
    for i in 0..3 {
        assert!(
            (near[i] - far[i]).abs() < 0.05,
            "feature {i}: {near:?} vs {far:?}"
        );
    }
    assert!((near[3] - far[3]).abs() > 1.0, "{near:?} vs {far:?}");
    // Metric height / camera height: ln(1.5 / 1.65), up to the half-pixel rims.
    assert!((near[0] - (1.5f32 / 1.65).ln()).abs() < 0.02, "{near:?}");
    // A mirrored box has the opposite viewing angle and the same size.
    let rays = BoxRays::new(&box_at(10.0, 1.0), &k);
    let mirrored = box_features(&rays.mirrored());
    assert!((mirrored[2] + near[2]).abs() < 1e-6);
    assert_eq!(
        (mirrored[0], mirrored[1], mirrored[3]),
        (near[0], near[1], near[3])
    );
}

#[test]
fn a_tiny_net_overfits_eight_crops_and_round_trips_through_a_file() {
    let crops = crops(8);
    let model = tiny();
    let config = TrainConfig {
        steps: 120,
        batch_size: 8,
        lr: 3e-3,
        checkpoint_every: 0,
        augment: AugmentConfig::none(),
        ..TrainConfig::default()
    };
    let trained = train(&crops, &model, &config, None, None, &mut |_, _| true).unwrap();
    let first = trained.history[..5].iter().map(|l| l.total).sum::<f32>() / 5.0;
    let last = trained.history[config.steps - 5..]
        .iter()
        .map(|l| l.total)
        .sum::<f32>()
        / 5.0;
    assert!(last < 0.35 * first, "loss {first} → {last}");
    let mask_last = trained.history[config.steps - 5..]
        .iter()
        .map(|l| l.mask)
        .sum::<f32>()
        / 5.0;
    assert!(mask_last < 0.25, "mask loss {mask_last}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("css.safetensors");
    css::weights::save(&path, &trained.varmap, &model, serde_json::json!({"test": true})).unwrap();
    let loaded = css::CssModel::load(&path).unwrap();
    let x = Tensor::rand(0f32, 1f32, (2, 3, 32, 32), &Device::Cpu).unwrap();
    let boxes = Tensor::rand(-1f32, 1f32, (2, css::data::BOX_FEATURES), &Device::Cpu).unwrap();
    let a = trained.net.forward(&x, Some(&boxes)).unwrap();
    let b = loaded.net.forward(&x, Some(&boxes)).unwrap();
    let diff = (a.nocs - b.nocs)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(diff, 0.0);
}

/// The prior cut to its first `k` training shapes (library shapes 0..k).
fn small_prior(k: usize) -> ShapePrior {
    let p = prior();
    ShapePrior {
        decoder: p.decoder.clone(),
        latents: p.latents[..k].to_vec(),
        meta: p.meta.clone(),
    }
}

#[test]
fn shape_weights_peak_at_the_prior_shape_of_the_car() {
    let prior = small_prior(10);
    let config = css::data::ShapeWeightConfig {
        resolution: 24,
        samples: 3000,
        queries: 300,
        temperature_m: 0.01,
    };
    let shapes = css::data::PriorShapes::new(&prior, &config).unwrap();
    assert_eq!(shapes.len(), 10);
    for i in [0, 3, 7] {
        let w = shapes.weights(&library().shape(i).unwrap(), 1).unwrap();
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        let best = (0..w.len()).max_by(|&a, &b| w[a].total_cmp(&w[b])).unwrap();
        assert_eq!(best, i, "library shape {i}: weights {w:?}");
    }
}

#[test]
fn a_code_scoring_head_learns_its_targets_and_keeps_the_prior_codes() {
    let k = 6;
    let prior = small_prior(k);
    let shapes = css::data::PriorShapes::new(
        &prior,
        &css::data::ShapeWeightConfig {
            resolution: 20,
            samples: 2000,
            queries: 200,
            temperature_m: 0.02,
        },
    )
    .unwrap();
    let mut crops = crops(8);
    css::data::attach_shape_weights(&mut crops, library(), &shapes).unwrap();
    assert!(crops.iter().all(|c| c.shape_weights.len() == k));
    let model = ModelConfig {
        latent_codes: k,
        ..tiny()
    };
    let dev = Device::Cpu;
    // The body of a plain tiny network, a new seeded head, the prior's codes.
    let (_, plain) = build(&tiny(), 1, &dev).unwrap();
    let (varmap, fresh) =
        css::weights::warm_start(&model, &css::weights::variables(&plain).unwrap(), 2, &dev).unwrap();
    assert_eq!(
        fresh,
        vec!["latent.codes", "latent.scores.bias", "latent.scores.weight"]
    );
    let codes: Vec<f32> = prior
        .latents
        .iter()
        .flat_map(|z| deepsdf::decoder::normalised(z))
        .collect();
    css::model::set_latent_codes(&varmap, &codes).unwrap();
    let config = TrainConfig {
        steps: 80,
        batch_size: 8,
        lr: 3e-3,
        checkpoint_every: 0,
        augment: AugmentConfig::none(),
        ..TrainConfig::default()
    };
    let init = css::weights::variables(&varmap).unwrap();
    let trained =
        css::train::fine_tune(&crops, &model, &init, &config, None, None, &mut |_, _| true).unwrap();
    let code = |r: std::ops::Range<usize>| trained.history[r].iter().map(|l| l.code).sum::<f32>() / 5.0;
    let (first, last) = (code(0..5), code(config.steps - 5..config.steps));
    // Cross-entropy against soft targets bottoms out at their entropy: compare what is above it.
    let entropy = crops
        .iter()
        .map(|c| {
            -c.shape_weights
                .iter()
                .filter(|&&q| q > 0.0)
                .map(|&q| q * q.ln())
                .sum::<f32>()
        })
        .sum::<f32>()
        / crops.len() as f32;
    assert!(
        first > entropy && last - entropy < 0.4 * (first - entropy),
        "code loss {first} → {last}, targets' entropy {entropy}"
    );
    let after = css::weights::variables(&trained.varmap).unwrap()[css::model::LATENT_CODES]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(after, codes, "the prior's codes moved in training");
    // The latent is the weighted mean of the codes, on the sphere.
    let x = Tensor::rand(0f32, 1f32, (2, 3, 32, 32), &dev).unwrap();
    let boxes = Tensor::rand(-1f32, 1f32, (2, css::data::BOX_FEATURES), &dev).unwrap();
    let out = trained.net.forward(&x, Some(&boxes)).unwrap();
    let logits = out.code_logits.unwrap().to_vec2::<f32>().unwrap();
    let latent = out.latent.to_vec2::<f32>().unwrap();
    for (s, z) in logits.iter().zip(&latent) {
        let m = s.iter().copied().fold(f32::MIN, f32::max);
        let e: Vec<f32> = s.iter().map(|v| (v - m).exp()).collect();
        let sum: f32 = e.iter().sum();
        let mut mix = vec![0.0f32; z.len()];
        for (j, ej) in e.iter().enumerate() {
            for (d, md) in mix.iter_mut().enumerate() {
                *md += ej / sum * codes[j * z.len() + d];
            }
        }
        let n = mix.iter().map(|v| v * v).sum::<f32>().sqrt();
        for (a, b) in z.iter().zip(&mix) {
            assert!((a - b / n).abs() < 1e-5, "{z:?} vs {mix:?}");
        }
    }
}

#[test]
fn training_resumes_from_its_checkpoint_exactly() {
    let crops = crops(8);
    let model = tiny();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt.safetensors");
    let config = |steps| TrainConfig {
        steps,
        batch_size: 4,
        checkpoint_every: 5,
        ..TrainConfig::default()
    };
    let straight = train(&crops, &model, &config(10), None, None, &mut |_, _| true).unwrap();
    // Interrupted after step 5 (the checkpoint is written on the way out) …
    let stopped = train(&crops, &model, &config(10), None, Some(&ckpt), &mut |s, _| s < 5).unwrap();
    assert_eq!(stopped.history.len(), 5);
    // … and run again: it picks up at step 6 and ends where the straight run ended.
    let mut steps_run = Vec::new();
    let resumed = train(&crops, &model, &config(10), None, Some(&ckpt), &mut |s, _| {
        steps_run.push(s);
        true
    })
    .unwrap();
    assert_eq!(steps_run, (6..=10).collect::<Vec<_>>());
    assert_eq!(resumed.history.len(), 10);
    let w = |vm: &candle_nn::VarMap| {
        css::weights::variables(vm)
            .unwrap()
            .into_values()
            .flat_map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect::<Vec<_>>()
    };
    let (a, b) = (w(&straight.varmap), w(&resumed.varmap));
    let same = a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y);
    assert!(same, "resumed weights differ from an uninterrupted run");
}

#[test]
fn inference_on_an_image_returns_one_prediction_per_box() {
    let (net, varmap) = build(&tiny(), 1, &Device::Cpu).unwrap();
    let model = css::CssModel {
        net,
        varmap,
        meta: None,
    };
    let image = image::RgbImage::from_fn(200, 100, |x, y| image::Rgb([(x % 255) as u8, (y * 2) as u8, 90]));
    let mask = sim::detector::Mask {
        x0: 20,
        y0: 10,
        width: 30,
        height: 20,
        bits: vec![true; 600],
    };
    let requests = [
        css::infer::Request {
            bbox: geom::Box2d::new(10.0, 5.0, 60.0, 40.0),
            mask: None,
        },
        css::infer::Request {
            bbox: geom::Box2d::new(15.0, 5.0, 55.0, 35.0),
            mask: Some(&mask),
        },
    ];
    let preds = model.predict(&image, &kitti_intrinsics(), &requests).unwrap();
    assert_eq!(preds.len(), 2);
    let t = model.output_size();
    for p in &preds {
        assert_eq!(
            (p.size, p.nocs.len(), p.mask_prob.len(), p.latent.len()),
            (t, t * t, t * t, 8)
        );
    }
    // Outside the given instance mask the probability is 0.
    assert_eq!(preds[1].mask_prob[0], 0.0);
    let bad = [css::infer::Request {
        bbox: geom::Box2d::new(10.0, 5.0, 10.0, 40.0),
        mask: None,
    }];
    assert!(model.predict(&image, &kitti_intrinsics(), &bad).is_err());
}

#[test]
fn inference_crops_with_the_margin_the_network_was_trained_with() {
    let (_, varmap) = build(&tiny(), 1, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let record = serde_json::json!({"config": {"data": {"crop": {"margin": 0.3}}}});
    css::weights::save(&path, &varmap, &tiny(), record).unwrap();
    let model = css::CssModel::load(&path).unwrap();
    assert_eq!(model.margin(), 0.3);
    let (window, _) = model.crop_input(
        &image::RgbImage::new(50, 50),
        &geom::Box2d::new(10.0, 10.0, 19.0, 14.0),
    );
    assert!((window.width() - 13.0).abs() < 1e-9, "{window:?}");
}

fn kitti_intrinsics() -> geom::Intrinsics {
    geom::Intrinsics {
        fx: 721.5,
        fy: 721.5,
        cx: 609.6,
        cy: 172.9,
    }
}

/// `net`'s output on `crops` (unaugmented) and its losses.
fn forward_losses(
    net: &css::model::CssNet,
    model: &ModelConfig,
    crops: &[Crop],
) -> (css::model::CssOutput, css::train::Losses) {
    let samples: Vec<css::data::Sample> = crops
        .iter()
        .map(|c| {
            let mut rng = StdRng::seed_from_u64(1);
            augment(
                c,
                model.input_size,
                model.output_size(),
                &AugmentConfig::none(),
                &mut rng,
            )
        })
        .collect();
    let batch = css::train::stack(&samples, model.input_size, model.output_size(), &Device::Cpu).unwrap();
    let out = net.forward(&batch.input, Some(&batch.boxes)).unwrap();
    let (_, numbers) = css::train::losses(&out, &batch, &TrainConfig::default()).unwrap();
    (out, numbers)
}

#[test]
fn a_crop_with_latent_weight_zero_adds_nothing_to_the_latent_loss() {
    let mut crops = crops(2);
    let model = tiny();
    let (net, _) = build(&model, 3, &Device::Cpu).unwrap();
    let latent_loss = |crops: &[Crop]| -> (f32, Vec<f32>) {
        let (out, numbers) = forward_losses(&net, &model, crops);
        let predicted = out.latent.to_vec2::<f32>().unwrap();
        let per_crop = predicted
            .iter()
            .zip(crops)
            .map(|(p, c)| {
                p.iter()
                    .zip(&c.latent)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
            })
            .collect();
        (numbers.latent, per_crop)
    };
    let (both, per_crop) = latent_loss(&crops);
    assert!(
        (both - (per_crop[0] + per_crop[1]) / 2.0).abs() < 1e-4 * both.max(1.0),
        "{both} vs {per_crop:?}"
    );

    crops[1].latent_weight = 0.0;
    let (first_only, _) = latent_loss(&crops);
    assert!(
        (first_only - per_crop[0] / 2.0).abs() < 1e-4,
        "{first_only} vs {}",
        per_crop[0] / 2.0
    );
    // Its code no longer matters at all.
    crops[1].latent.iter_mut().for_each(|v| *v = -*v);
    let (flipped, _) = latent_loss(&crops);
    assert_eq!(first_only, flipped);
    assert!(
        per_crop[1] > 1e-3,
        "the second crop's code must have mattered: {}",
        per_crop[1]
    );
}

/// A crop's NOCS outside its `nocs_mask` is not learned; its mask still is.
#[test]
fn nocs_outside_a_crops_nocs_mask_adds_nothing_to_the_nocs_loss() {
    let mut crops = crops(2);
    let model = tiny();
    let (net, _) = build(&model, 3, &Device::Cpu).unwrap();
    let losses = |crops: &[Crop]| forward_losses(&net, &model, crops).1;
    let scrambled = |crops: &[Crop]| -> Vec<Crop> {
        let mut crops = crops.to_vec();
        crops[1].nocs.iter_mut().for_each(|c| *c = c.map(|v| 65535 - v));
        crops
    };
    let before = losses(&crops);
    assert_ne!(before.nocs, losses(&scrambled(&crops)).nocs);
    // The second crop's left half of NOCS unknown: scrambling it there changes nothing...
    let size = crops[1].size;
    crops[1].nocs_mask = Some((0..size * size).map(|p| p % size >= size / 2).collect());
    let half = losses(&crops);
    let mut left_scrambled = crops.clone();
    for p in (0..size * size).filter(|p| p % size < size / 2) {
        left_scrambled[1].nocs[p] = left_scrambled[1].nocs[p].map(|v| 65535 - v);
    }
    assert_eq!(half.nocs, losses(&left_scrambled).nocs);
    // ... while the right half still counts, and the mask loss is the mask's alone.
    assert_ne!(half.nocs, losses(&scrambled(&crops)).nocs);
    assert_eq!(half.mask, before.mask);
    assert_ne!(half.nocs, before.nocs);
    // No NOCS known on the second crop: its NOCS loss is that of a crop with no car pixels at all.
    let mut unknown = crops.clone();
    unknown[1].nocs_mask = Some(vec![false; size * size]);
    let mut empty = crops.clone();
    empty[1].nocs_mask = None;
    empty[1].mask = vec![false; size * size];
    let (unknown, empty) = (losses(&unknown), losses(&empty));
    assert_eq!(unknown.nocs, empty.nocs);
    assert_ne!(unknown.mask, empty.mask);
}

/// The shape-space loss: zero for the target code, the clamped SDF difference of the decoder at
/// the step's points otherwise, weighted per crop, with gradients that match finite differences.
#[test]
fn the_shape_space_loss_compares_decoded_shapes_and_its_gradient_matches_finite_differences() {
    use css::train::ShapeSpace;
    let prior = small_prior(4);
    let space = ShapeSpace::new(&prior, 4).unwrap();
    assert!(space.pool_size() > 100, "{} surface points", space.pool_size());
    let config = TrainConfig {
        sdf_points: 64,
        ..TrainConfig::default()
    };
    let device = Device::Cpu;
    let l = prior.latents[0].len();
    let codes = |rows: &[&Vec<f32>]| {
        Tensor::from_vec(
            rows.iter().flat_map(|r| r.iter().copied()).collect(),
            (rows.len(), l),
            &device,
        )
        .unwrap()
    };
    let (a, b) = (&prior.latents[1], &prior.latents[2]);
    let ones = Tensor::ones(2, candle_core::DType::F32, &device).unwrap();
    let loss = |pred: &Tensor, target: &Tensor, w: &Tensor| -> f32 {
        space
            .loss(pred, target, w, &config, 7)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert_eq!(loss(&codes(&[a, b]), &codes(&[a, b]), &ones), 0.0);

    // By hand: mean over the points of |clamp(f(b, p)) − clamp(f(a, p))|, for crop 0 only.
    let points = space.points(&config, 7);
    let clamp = |v: f32| v.clamp(-0.1, 0.1);
    let (fa, fb) = (
        prior.decoder.eval(a, &points).unwrap(),
        prior.decoder.eval(b, &points).unwrap(),
    );
    let by_hand = fa
        .iter()
        .zip(&fb)
        .map(|(x, y)| (clamp(*x) - clamp(*y)).abs())
        .sum::<f32>()
        / 64.0;
    assert!(by_hand > 1e-3, "two training shapes must differ: {by_hand}");
    let first = Tensor::new(&[1.0f32, 0.0], &device).unwrap();
    let got = loss(&codes(&[b, a]), &codes(&[a, a]), &first);
    assert!((got - by_hand / 2.0).abs() < 1e-5, "{got} vs {}", by_hand / 2.0);

    // Gradient with respect to the predicted code against central differences.
    let pred = candle_core::Var::from_tensor(&codes(&[b, a])).unwrap();
    let target = codes(&[a, b]);
    let grads = space
        .loss(pred.as_tensor(), &target, &ones, &config, 7)
        .unwrap()
        .backward()
        .unwrap();
    let analytic = grads.get(pred.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
    let eps = 1e-2f32;
    for (row, k) in [(0, 0), (0, 3), (1, 5)] {
        let shifted = |d: f32| {
            let mut rows = [b.clone(), a.clone()];
            rows[row][k] += d;
            loss(&codes(&[&rows[0], &rows[1]]), &target, &ones)
        };
        let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
        let g = analytic[row][k];
        assert!(
            (g - numeric).abs() < 0.05 * g.abs().max(numeric.abs()) + 1e-4,
            "d/dz[{row}][{k}]: analytic {g}, numeric {numeric}"
        );
    }

    // Without the prior's shape space a positive weight is refused.
    let model = tiny();
    let with_sdf = TrainConfig {
        steps: 1,
        sdf_weight: 1.0,
        ..TrainConfig::default()
    };
    assert!(train(&crops(2), &model, &with_sdf, None, None, &mut |_, _| true).is_err());
}

#[test]
fn the_flip_averaged_reading_mirrors_with_its_input() {
    use css::data::{BoxRays, box_features};
    use css::infer::mirror_box_features;
    let rays = BoxRays::new(&geom::Box2d::new(700.0, 170.0, 820.0, 230.0), &kitti_intrinsics());
    assert_eq!(
        mirror_box_features(&box_features(&rays)),
        box_features(&rays.mirrored())
    );
    let config = ModelConfig {
        box_input: true,
        ..tiny()
    };
    let (net, varmap) = build(&config, 3, &Device::Cpu).unwrap();
    let model = css::CssModel {
        net,
        varmap,
        meta: None,
    };
    let (s, t, l, n) = (model.input_size(), model.output_size(), 8, 3);
    let mut rng = StdRng::seed_from_u64(4);
    let inputs: Vec<f32> = (0..n * 3 * s * s).map(|_| rng.random::<f32>()).collect();
    let boxes: Vec<[f32; 4]> = (0..n).map(|i| [-0.1, 0.4, 0.05 + 0.1 * i as f32, -2.0]).collect();
    let mirrored: Vec<f32> = inputs
        .chunks_exact(s)
        .flat_map(|row| row.iter().rev().copied())
        .collect();
    let mirrored_boxes: Vec<_> = boxes.iter().map(mirror_box_features).collect();
    let (nocs, mask, latent) = model.run_flip_averaged(&inputs, &boxes, n).unwrap();
    let (nocs_m, mask_m, latent_m) = model.run_flip_averaged(&mirrored, &mirrored_boxes, n).unwrap();
    // The reading of the mirrored crop is the mirrored reading: maps turned left–right, NOCS x
    // mirrored, the same code.
    for k in 0..n {
        for j in 0..t {
            for i in 0..t {
                let (p, q) = (j * t + i, j * t + (t - 1 - i));
                assert!((mask[k * t * t + p] - mask_m[k * t * t + q]).abs() < 1e-5);
                for c in 0..3 {
                    let a = nocs[k * 3 * t * t + c * t * t + p];
                    let b = nocs_m[k * 3 * t * t + c * t * t + q];
                    let b = if c == 0 { 1.0 - b } else { b };
                    assert!(
                        (a - b).abs() < 1e-5,
                        "crop {k} ({i}, {j}) channel {c}: {a} vs {b}"
                    );
                }
            }
        }
    }
    for (z, zm) in latent.chunks_exact(l).zip(latent_m.chunks_exact(l)) {
        let norm = z.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        for (a, b) in z.iter().zip(zm) {
            assert!((a - b).abs() < 1e-5);
        }
    }
    // It is not the plain reading.
    let (plain_nocs, _, plain_latent) = model.run(&inputs, &boxes, n).unwrap();
    let differs = |a: &[f32], b: &[f32]| a.iter().zip(b).any(|(x, y)| (x - y).abs() > 1e-4);
    assert!(differs(&plain_nocs, &nocs) && differs(&plain_latent, &latent));
}

#[test]
fn a_warm_start_that_adds_the_box_input_first_computes_what_the_network_did() {
    let with_boxes = ModelConfig {
        box_input: true,
        ..tiny()
    };
    assert_warm_start_keeps_the_latent(&tiny(), &with_boxes);
}

#[test]
fn a_warm_start_that_makes_the_latent_head_spatial_first_computes_what_the_network_did() {
    let spatial = ModelConfig {
        latent_spatial: true,
        ..tiny()
    };
    assert_eq!(
        spatial.latent_positions(),
        4,
        "the test needs a head reading several positions"
    );
    assert_warm_start_keeps_the_latent(&tiny(), &spatial);
    let with_boxes = ModelConfig {
        box_input: true,
        ..tiny()
    };
    let both = ModelConfig {
        latent_spatial: true,
        ..with_boxes.clone()
    };
    assert_warm_start_keeps_the_latent(&with_boxes, &both);
    assert_warm_start_keeps_the_latent(&tiny(), &both);
}

/// A network of architecture `to` warm-started from one of architecture `from` takes every
/// variable and first computes the same latent.
fn assert_warm_start_keeps_the_latent(from: &ModelConfig, to: &ModelConfig) {
    let dev = Device::Cpu;
    let (old_net, old) = build(from, 5, &dev).unwrap();
    let (varmap, fresh) =
        css::weights::warm_start(to, &css::weights::variables(&old).unwrap(), 6, &dev).unwrap();
    assert!(fresh.is_empty(), "{fresh:?}");
    let net = css::model::CssNet::new(
        to,
        candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &dev),
    )
    .unwrap();
    let s = from.input_size;
    let mut rng = StdRng::seed_from_u64(8);
    let x: Vec<f32> = (0..2 * 3 * s * s).map(|_| rng.random::<f32>()).collect();
    let x = Tensor::from_vec(x, (2, 3, s, s), &dev).unwrap();
    let boxes = Tensor::from_vec(vec![0.3f32, 0.9, -0.2, -2.5, -0.1, 0.5, 0.4, -1.5], (2, 4), &dev).unwrap();
    let latent = |net: &css::model::CssNet, config: &ModelConfig| {
        net.forward(&x, config.box_input.then_some(&boxes))
            .unwrap()
            .latent
            .to_vec2::<f32>()
            .unwrap()
    };
    let (before, after) = (latent(&old_net, from), latent(&net, to));
    for (a, b) in before.iter().flatten().zip(after.iter().flatten()) {
        assert!((a - b).abs() < 1e-5, "{before:?} vs {after:?}");
    }
}
