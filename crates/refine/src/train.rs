//! Training: per step, crops drawn from the step's own seed, each rendered under a freshly drawn
//! perturbation; loss = smooth-L1 of the field (in units of [`FIELD_SCALE_PX`]) over the rendered
//! cells whose point is visible under the true pose, plus binary cross-entropy of the visibility
//! over all rendered cells. Adam with a step schedule; checkpoints hold the weights, Adam's moments,
//! the step and the loss history, so a resumed run continues exactly where it stopped.

use crate::data::{Perturbation, RefineCrop, Sample, make_sample};
use crate::error::{RefineError, Result};
use crate::net::{
    FIELD_SCALE_PX, FORMAT, Metadata, NetConfig, NetOutput, RefineNet, build, load_tensors, network_from,
    save_tensors, variables,
};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use css::train::{Adam, StepLosses, StepPlan, checkpoint_record, resume_point, run_steps};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use render::{RenderConfig, Surfels};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Optimisation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of the weights and of every batch.
    pub seed: u64,
    /// Optimisation steps.
    pub steps: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Adam learning rate (halved at 60 % and again at 85 % of the steps).
    pub lr: f64,
    /// Weight of the visibility cross-entropy.
    pub visibility_weight: f64,
    /// A checkpoint every this many steps (0: none).
    pub checkpoint_every: usize,
    /// The perturbation samples are rendered under.
    pub perturbation: Perturbation,
    /// This share of the samples is rendered under the perturbation scaled by `fine_scale`
    /// (more samples near convergence, where the last rounds of a refinement are).
    pub fine_fraction: f64,
    /// The scale of the fine samples' perturbation.
    pub fine_scale: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 0,
            steps: 1100,
            batch_size: 16,
            lr: 2e-3,
            visibility_weight: 0.5,
            checkpoint_every: 100,
            perturbation: Perturbation::default(),
            fine_fraction: 0.0,
            fine_scale: 0.3,
        }
    }
}

impl TrainConfig {
    /// The learning rate at `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        css::train::step_schedule(self.lr, step, self.steps)
    }
}

/// The losses of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Losses {
    /// Mean smooth-L1 of the field over visible cells (field in units of [`FIELD_SCALE_PX`]).
    pub field: f32,
    /// Mean absolute field error over visible cells, crop px.
    pub field_px: f32,
    /// Mean visibility cross-entropy over rendered cells.
    pub visibility: f32,
    /// The weighted sum.
    pub total: f32,
}

impl StepLosses for Losses {
    fn total(&self) -> f32 {
        self.total
    }
}

/// A batch as tensors.
pub struct Batch {
    /// `[B, 3, S, S]`.
    pub image: Tensor,
    /// `[B, RENDER_CHANNELS, S, S]`.
    pub rendering: Tensor,
    /// Field / [`FIELD_SCALE_PX`], `[B, 2, T, T]`.
    pub field: Tensor,
    /// `[B, 1, T, T]`.
    pub rendered: Tensor,
    /// `[B, 1, T, T]`.
    pub visible: Tensor,
}

/// Stacks samples (input side `s`, output side `t`).
pub fn stack(samples: &[Sample], s: usize, t: usize, device: &Device) -> Result<Batch> {
    let b = samples.len();
    if b == 0 {
        return Err(RefineError::Empty("an empty batch".into()));
    }
    let cat = |f: &dyn Fn(&Sample) -> &Vec<f32>| {
        samples
            .iter()
            .flat_map(|x| f(x).iter().copied())
            .collect::<Vec<f32>>()
    };
    let field: Vec<f32> = cat(&|x| &x.field_px).iter().map(|v| v / FIELD_SCALE_PX).collect();
    let channels = samples[0].rendering.len() / (s * s);
    Ok(Batch {
        image: Tensor::from_vec(cat(&|x| &x.image), (b, 3, s, s), device)?,
        rendering: Tensor::from_vec(cat(&|x| &x.rendering), (b, channels, s, s), device)?,
        field: Tensor::from_vec(field, (b, 2, t, t), device)?,
        rendered: Tensor::from_vec(cat(&|x| &x.rendered), (b, 1, t, t), device)?,
        visible: Tensor::from_vec(cat(&|x| &x.visible), (b, 1, t, t), device)?,
    })
}

/// The losses of `out` against `batch` (total as a tensor, and all as numbers).
pub fn losses(out: &NetOutput, batch: &Batch, config: &TrainConfig) -> Result<(Tensor, Losses)> {
    let used = (&batch.rendered * &batch.visible)?;
    let used2 = used.broadcast_as(batch.field.shape())?;
    let diff = (&out.field - &batch.field)?;
    let abs = diff.abs()?;
    // Smooth L1 (β = 1): ½d² below 1, |d| − ½ above.
    let small = abs.lt(1.0)?.to_dtype(candle_core::DType::F32)?;
    let quad = (diff.sqr()? * 0.5)?;
    let lin = (&abs - 0.5)?;
    let sl1 = ((&small * quad)? + ((1.0 - &small)? * lin)?)?;
    let count = (used2.sum_all()? + 1.0)?;
    let field = ((sl1 * &used2)?.sum_all()? / &count)?;
    let field_px = (((abs * &used2)?.sum_all()? / &count)? * f64::from(FIELD_SCALE_PX))?;
    let x = &out.visibility_logit;
    let bce = ((x.relu()? - (x * &batch.visible)?)? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let visibility = ((bce * &batch.rendered)?.sum_all()? / (batch.rendered.sum_all()? + 1.0)?)?;
    let total = (&field + (&visibility * config.visibility_weight)?)?;
    let v = |t: &Tensor| -> Result<f32> { Ok(t.to_scalar::<f32>()?) };
    let numbers = Losses {
        field: v(&field)?,
        field_px: v(&field_px)?,
        visibility: v(&visibility)?,
        total: v(&total)?,
    };
    Ok((total, numbers))
}

/// The samples of step `step`: `batch_size` crops and perturbations drawn from the step's own seed.
pub fn step_samples(
    crops: &[RefineCrop],
    shapes: &BTreeMap<usize, Surfels>,
    render_config: &RenderConfig,
    config: &TrainConfig,
    step: usize,
) -> Result<Vec<Sample>> {
    let mut rng = StdRng::seed_from_u64(config.seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let picks: Vec<(usize, u64, bool)> = (0..config.batch_size)
        .map(|_| {
            (
                rng.random_range(0..crops.len()),
                rng.random::<u64>(),
                rng.random_bool(config.fine_fraction.clamp(0.0, 1.0)),
            )
        })
        .collect();
    let fine = config.perturbation.scaled(config.fine_scale);
    picks
        .par_iter()
        .map(|&(i, s, is_fine)| {
            let crop = &crops[i];
            let surfels = shapes.get(&crop.shape_index).ok_or_else(|| {
                RefineError::InvalidInput(format!("no surfels of shape {}", crop.shape_index))
            })?;
            let perturbation = if is_fine { &fine } else { &config.perturbation };
            make_sample(
                crop,
                surfels,
                perturbation,
                render_config,
                &mut StdRng::seed_from_u64(s),
            )
        })
        .collect()
}

/// What a finished training returns.
pub struct Trained {
    /// The network.
    pub net: RefineNet,
    /// Its variables.
    pub varmap: VarMap,
    /// Losses of every step (including those before a resume).
    pub history: Vec<Losses>,
    /// Samples per second of the steps run in this call.
    pub samples_per_s: f64,
}

/// Trains a network on `crops` (their shapes' surfels in `shapes`). With `checkpoint`, a
/// checkpoint is written every `checkpoint_every` steps, and training resumes from it when it
/// exists with the same settings. `progress(step, losses)` runs after every step; returning false
/// stops training there (after a checkpoint). With `init`, training starts from those weights
/// (fine-tuning) instead of seeded ones.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, every argument a different thing"
)]
pub fn train(
    init: Option<&BTreeMap<String, Tensor>>,
    crops: &[RefineCrop],
    shapes: &BTreeMap<usize, Surfels>,
    net_config: &NetConfig,
    render_config: &RenderConfig,
    config: &TrainConfig,
    checkpoint: Option<&Path>,
    progress: &mut dyn FnMut(usize, &Losses) -> bool,
) -> Result<Trained> {
    if crops.is_empty() {
        return Err(RefineError::Empty("no training crops".into()));
    }
    for c in crops {
        crate::data::check_size(c, net_config.input_size)?;
    }
    let device = Device::Cpu;
    let (mut net, mut varmap) = match init {
        Some(t) => network_from(net_config, t, &device, Path::new("<initial weights>"))?,
        None => build(net_config, config.seed, &device)?,
    };
    let record = serde_json::json!({
        "net": net_config, "render": render_config, "train": config, "fine_tuned": init.is_some()
    });
    let (mut start, mut history) = (0, Vec::new());
    let mut restored = None;
    if let Some(path) = checkpoint.filter(|p| p.is_file()) {
        let (tensors, meta) = load_tensors(path, &device)?;
        if let Some((step, losses)) = resume_point(path, meta.net == *net_config, &meta.training, &record) {
            (net, varmap) = network_from(net_config, &tensors, &device, path)?;
            (start, history) = (step, losses);
            restored = Some(tensors);
        }
    }
    let mut adam = Adam::new(&varmap)?;
    if let Some(t) = &restored {
        adam.restore(t, start)?;
    }
    let (s, t) = (net_config.input_size, net_config.output_size());
    let mut save = |done: usize, history: &[Losses], adam: &Adam| -> Result<()> {
        let Some(path) = checkpoint else {
            return Ok(());
        };
        let mut tensors = variables(&varmap)?;
        tensors.extend(adam.state());
        let meta = Metadata {
            format: FORMAT.to_owned(),
            net: net_config.clone(),
            training: checkpoint_record(&record, done, history),
        };
        save_tensors(path, &tensors, &meta)
    };
    let plan = StepPlan {
        start,
        steps: config.steps,
        batch_size: config.batch_size,
        checkpoint_every: config.checkpoint_every,
    };
    let samples_per_s = run_steps(
        &plan,
        &mut adam,
        &mut history,
        &|step| config.lr_at(step),
        |step| {
            let samples = step_samples(crops, shapes, render_config, config, step)?;
            let batch = stack(&samples, s, t, &device)?;
            let out = net.forward(&batch.image, &batch.rendering)?;
            losses(&out, &batch, config)
        },
        progress,
        &mut save,
    )?;
    Ok(Trained {
        net,
        varmap,
        history,
        samples_per_s,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::sample_at;
    use crate::geometry::{apply_update, rot_y};
    use nalgebra::{Matrix3, Vector3};
    use render::{CropCamera, Pose};

    /// A car-sized ellipsoid seen from 12 m in an `s × s` crop, its "image" the NOCS rendering
    /// under the true pose.
    pub(crate) fn toy_crop(s: usize, yaw: f64) -> (RefineCrop, Surfels) {
        let surfels = crate::data::nocs_surfels(
            &Surfels::ellipsoid(1500, [0.3, 0.25, 0.75]).positions,
            &Surfels::ellipsoid(1500, [0.3, 0.25, 0.75]).normals,
        );
        let f = 3.2 * s as f32;
        let camera = CropCamera {
            fx: f,
            fy: f,
            cx: (s as f32 - 1.0) / 2.0,
            cy: (s as f32 - 1.0) / 2.0,
            width: s,
            height: s,
        };
        let true_pose = Pose {
            rotation: (rot_y(yaw) * Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0)).cast(),
            translation_m: Vector3::new(0.2, 0.1, 12.0),
            scale: 2.75,
        };
        let image = render::render(&camera, &true_pose, &surfels, &RenderConfig::default()).expect("render");
        let n = s * s;
        let mut rgb = vec![0.0f32; 3 * n];
        for p in 0..n {
            for c in 0..3 {
                rgb[c * n + p] = image.colour[p][c];
            }
        }
        let crop = RefineCrop {
            rgb,
            camera,
            object_mask: image.mask.iter().map(|m| *m > 0.5).collect(),
            true_pose,
            shape_index: 0,
            source: (0, 0),
            bbox: geom::Box2d::new(0.0, 0.0, s as f64, s as f64),
            intrinsics: geom::Intrinsics {
                fx: f64::from(f),
                fy: f64::from(f),
                cx: f64::from(camera.cx),
                cy: f64::from(camera.cy),
            },
            cam_from_rect_m: Vector3::zeros(),
            image_size_px: (s as f64, s as f64),
        };
        (crop, surfels)
    }

    /// Interrupted after a checkpoint and run again, training ends with the weights of an
    /// uninterrupted run (the shared loop of `css::train::run_steps`, with this network's
    /// sampling and checkpoint record).
    #[test]
    fn training_resumes_from_its_checkpoint_exactly() {
        let net_config = NetConfig {
            input_size: 16,
            stream_widths: [4, 4, 8, 8],
            fuse_width: 8,
            decoder_widths: [8, 4],
            groups: 2,
        };
        let (crop, surfels) = toy_crop(16, 0.4);
        let shapes = BTreeMap::from([(0, surfels)]);
        let render_config = RenderConfig::default();
        let config = TrainConfig {
            steps: 6,
            batch_size: 2,
            checkpoint_every: 3,
            ..TrainConfig::default()
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let ckpt = dir.path().join("ckpt.safetensors");
        let run = |checkpoint: Option<&Path>, progress: &mut dyn FnMut(usize, &Losses) -> bool| {
            let crops = std::slice::from_ref(&crop);
            train(
                None,
                crops,
                &shapes,
                &net_config,
                &render_config,
                &config,
                checkpoint,
                progress,
            )
            .expect("train")
        };
        let straight = run(None, &mut |_, _| true);
        let stopped = run(Some(&ckpt), &mut |s, _| s < 3);
        assert_eq!(stopped.history.len(), 3);
        let mut steps_run = Vec::new();
        let resumed = run(Some(&ckpt), &mut |s, _| {
            steps_run.push(s);
            true
        });
        assert_eq!(steps_run, vec![4, 5, 6]);
        assert_eq!(resumed.history, straight.history);
        let weights = |vm: &VarMap| -> Vec<f32> {
            variables(vm)
                .expect("variables")
                .into_values()
                .flat_map(|t| t.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("values"))
                .collect()
        };
        assert_eq!(weights(&resumed.varmap), weights(&straight.varmap));
    }

    /// A small network overfits two fixed samples: the loss falls by a large factor.
    #[test]
    fn tiny_overfit() {
        let net_config = NetConfig {
            input_size: 24,
            stream_widths: [8, 8, 16, 16],
            fuse_width: 16,
            decoder_widths: [16, 8],
            groups: 4,
        };
        let render_config = RenderConfig::default();
        let samples: Vec<Sample> = [
            (0.3, [0.25, 0.3, 0.0, 0.0, 0.0]),
            (-0.8, [-0.3, -0.2, -0.1, 0.4, 0.0]),
        ]
        .iter()
        .map(|(yaw, d)| {
            let (crop, surfels) = toy_crop(24, *yaw);
            let start = apply_update(&crop.true_pose, d);
            sample_at(&crop, &surfels, &start, &render_config).expect("sample")
        })
        .collect();
        let device = Device::Cpu;
        let batch = stack(&samples, 24, 12, &device).expect("stack");
        let visible: f32 = batch.visible.sum_all().and_then(|t| t.to_scalar()).expect("sum");
        assert!(visible > 20.0, "{visible} visible cells");
        let (net, varmap) = build(&net_config, 1, &device).expect("build");
        let mut adam = Adam::new(&varmap).expect("adam");
        let config = TrainConfig::default();
        let mut first = None;
        let mut last = Losses::default();
        for _ in 0..150 {
            let out = net.forward(&batch.image, &batch.rendering).expect("forward");
            let (loss, numbers) = losses(&out, &batch, &config).expect("losses");
            first.get_or_insert(numbers);
            last = numbers;
            adam.step(&loss, 5e-3).expect("step");
        }
        let first = first.expect("ran");
        assert!(
            last.total < first.total / 5.0 && last.field_px < first.field_px / 3.0,
            "first {first:?}, last {last:?}"
        );
    }
}
