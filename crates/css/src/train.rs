//! Training: batches of augmented crops, losses on NOCS (L1 inside the true mask), mask (binary
//! cross-entropy), latent (squared distance on the sphere) and, for a head that scores the prior's
//! codes, the scores' cross-entropy against the crops' shape weights; Adam with a step schedule, seeded
//! and resumable (checkpoints hold the weights, Adam's moments and the step; each step's batch is
//! drawn from its own seed, so a resumed run continues exactly where it stopped).

use crate::data::{AugmentConfig, BOX_FEATURES, Crop, Sample, augment};
use crate::error::{CssError, Result};
use crate::model::{CssNet, CssOutput, ModelConfig, build, sorted_vars};
use crate::weights::{FORMAT, Metadata, load_tensors, network_from, save_tensors, variables};
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use deepsdf::ShapePrior;
use deepsdf::decoder::Decoder;
use deepsdf::surface::{SurfaceConfig, extract_surface};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Optimisation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Seed of the weights and of every batch.
    pub seed: u64,
    /// Optimisation steps.
    pub steps: usize,
    /// Crops per step.
    pub batch_size: usize,
    /// Adam learning rate (halved at 60 % and again at 85 % of the steps).
    pub lr: f64,
    /// Weight of the NOCS L1.
    pub nocs_weight: f64,
    /// Weight of the mask cross-entropy.
    pub mask_weight: f64,
    /// Weight of the latent loss.
    pub latent_weight: f64,
    /// Weight of the code-score loss (cross-entropy of the scores of the prior's codes against
    /// the crops' shape weights; networks with `latent_codes` > 0 only).
    pub code_weight: f64,
    /// Weight of the shape-space latent loss ([`ShapeSpace`]: the predicted and the target code's
    /// clamped SDF compared at points near the prior's surfaces); 0: off, and no prior is needed.
    pub sdf_weight: f64,
    /// Points per step of the shape-space loss (shared by the batch's crops).
    pub sdf_points: usize,
    /// Clamp of the SDF values the shape-space loss compares, canonical units (DeepSDF's δ).
    pub sdf_clamp_units: f64,
    /// Training shapes of the prior whose surfaces give the shape-space loss's points.
    pub sdf_shapes: usize,
    /// Half-width of the uniform jitter of the shape-space loss's points around the prior's
    /// surface points, canonical units.
    pub sdf_jitter_units: f64,
    /// A checkpoint every this many steps (0: none).
    pub checkpoint_every: usize,
    /// Augmentation.
    pub augment: AugmentConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 0,
            steps: 4000,
            batch_size: 16,
            lr: 2e-3,
            nocs_weight: 2.0,
            mask_weight: 1.0,
            latent_weight: 0.5,
            code_weight: 0.5,
            sdf_weight: 0.0,
            sdf_points: 256,
            sdf_clamp_units: 0.1,
            sdf_shapes: 64,
            sdf_jitter_units: 0.08,
            checkpoint_every: 250,
            augment: AugmentConfig::default(),
        }
    }
}

impl TrainConfig {
    /// The learning rate at `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        step_schedule(self.lr, step, self.steps)
    }
}

/// The three losses of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Losses {
    /// Mean |NOCS − target| inside the true mask.
    pub nocs: f32,
    /// Mean binary cross-entropy of the mask.
    pub mask: f32,
    /// Mean squared distance of the unit latents, each weighted by its crop's latent weight.
    pub latent: f32,
    /// Cross-entropy of the code scores against the shape weights (0 without a code head).
    #[serde(default)]
    pub code: f32,
    /// Mean |clamped SDF of the predicted code − of the target code| at the step's points, each
    /// crop weighted by its latent weight (0 without [`ShapeSpace`]).
    #[serde(default)]
    pub sdf: f32,
    /// The weighted sum.
    pub total: f32,
}

impl StepLosses for Losses {
    fn total(&self) -> f32 {
        self.total
    }
}

/// A batch as tensors: input `[B, 3, S, S]`, NOCS `[B, 3, S, S]`, mask `[B, 1, S, S]`, latent `[B, L]`.
pub struct Batch {
    /// Input crops.
    pub input: Tensor,
    /// NOCS targets.
    pub nocs: Tensor,
    /// Mask targets.
    pub mask: Tensor,
    /// Where the NOCS targets are known `[B, 1, S, S]` ([`crate::data::Crop::nocs_mask`]).
    pub nocs_mask: Tensor,
    /// Latent targets.
    pub latent: Tensor,
    /// Weights of the latent loss `[B]` ([`Crop::latent_weight`]).
    pub latent_weight: Tensor,
    /// Box features `[B, BOX_FEATURES]`.
    pub boxes: Tensor,
    /// Shape weights `[B, K]` (rows of zeros for crops without them); `None` when no crop has any.
    pub shape_weights: Option<Tensor>,
}

/// Stacks samples into a batch (inputs `size`², targets `target`²).
pub fn stack(samples: &[Sample], size: usize, target: usize, device: &Device) -> Result<Batch> {
    let b = samples.len();
    if b == 0 {
        return Err(CssError::Empty("an empty batch".into()));
    }
    let l = samples[0].latent.len();
    let cat = |f: &dyn Fn(&Sample) -> &Vec<f32>| {
        samples
            .iter()
            .flat_map(|s| f(s).iter().copied())
            .collect::<Vec<f32>>()
    };
    Ok(Batch {
        input: Tensor::from_vec(cat(&|s| &s.input), (b, 3, size, size), device)?,
        nocs: Tensor::from_vec(cat(&|s| &s.nocs), (b, 3, target, target), device)?,
        mask: Tensor::from_vec(cat(&|s| &s.mask), (b, 1, target, target), device)?,
        nocs_mask: Tensor::from_vec(cat(&|s| &s.nocs_mask), (b, 1, target, target), device)?,
        latent: Tensor::from_vec(cat(&|s| &s.latent), (b, l), device)?,
        latent_weight: Tensor::from_vec(
            samples.iter().map(|s| s.latent_weight).collect::<Vec<f32>>(),
            b,
            device,
        )?,
        boxes: Tensor::from_vec(
            samples.iter().flat_map(|s| s.box_features).collect::<Vec<f32>>(),
            (b, BOX_FEATURES),
            device,
        )?,
        shape_weights: match samples.iter().map(|s| s.shape_weights.len()).max().unwrap_or(0) {
            0 => None,
            k => {
                let mut w = vec![0.0f32; b * k];
                for (i, s) in samples.iter().enumerate() {
                    if s.shape_weights.len() == k {
                        w[i * k..(i + 1) * k].copy_from_slice(&s.shape_weights);
                    } else if !s.shape_weights.is_empty() {
                        return Err(CssError::InvalidInput(format!(
                            "a crop has {} shape weights, another {k}",
                            s.shape_weights.len()
                        )));
                    }
                }
                Some(Tensor::from_vec(w, (b, k), device)?)
            }
        },
    })
}

/// The latent loss measured in shape space rather than in code space: the clamped SDF of the
/// predicted code and of the target code, compared at points near the prior's surfaces (the
/// surfaces of evenly spread training shapes, jittered), through the prior's decoder. Two codes
/// far apart on the sphere that decode to similar cars cost little; a wrong size costs as much as
/// it moves the surface.
pub struct ShapeSpace {
    decoder: Decoder,
    pool: Vec<[f32; 3]>,
}

impl ShapeSpace {
    /// The decoder of `prior` and the surface points of `shapes` of its training codes.
    pub fn new(prior: &ShapePrior, shapes: usize) -> Result<Self> {
        let n = prior.latents.len();
        if n == 0 || shapes == 0 {
            return Err(CssError::Empty("no prior codes for the shape-space loss".into()));
        }
        let picks: Vec<usize> = (0..shapes.min(n)).map(|i| i * n / shapes.min(n)).collect();
        let surfaces = picks
            .par_iter()
            .map(|&i| {
                extract_surface(
                    &prior.decoder,
                    &prior.latents[i],
                    &SurfaceConfig::default(),
                    false,
                )
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let pool: Vec<[f32; 3]> = surfaces.into_iter().flat_map(|s| s.points).collect();
        if pool.is_empty() {
            return Err(CssError::Empty(
                "the prior's shapes have no surface points".into(),
            ));
        }
        Ok(ShapeSpace {
            decoder: prior.decoder.clone(),
            pool,
        })
    }

    /// [`ShapeSpace::new`] over `config.sdf_shapes` codes when `config.sdf_weight` > 0.
    pub fn when_needed(prior: &ShapePrior, config: &TrainConfig) -> Result<Option<Self>> {
        if config.sdf_weight > 0.0 {
            Ok(Some(Self::new(prior, config.sdf_shapes)?))
        } else {
            Ok(None)
        }
    }

    /// Number of surface points the step's points are drawn from.
    pub fn pool_size(&self) -> usize {
        self.pool.len()
    }

    /// The points of step `step`: `config.sdf_points` pool points, jittered, seeded by the step.
    pub fn points(&self, config: &TrainConfig, step: usize) -> Vec<[f32; 3]> {
        let mut rng = StdRng::seed_from_u64(!config.seed ^ (step as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let j = config.sdf_jitter_units as f32;
        (0..config.sdf_points)
            .map(|_| {
                let p = self.pool[rng.random_range(0..self.pool.len())];
                std::array::from_fn(|a| p[a] + j * (2.0 * rng.random::<f32>() - 1.0))
            })
            .collect()
    }

    /// The clamped SDF of every code of `codes` `[B, L]` at `points`: `[B, N]`.
    fn clamped_sdf(&self, codes: &Tensor, points: &Tensor, clamp: f64) -> Result<Tensor> {
        let (b, l) = codes.dims2()?;
        let n = points.dim(0)?;
        let z = codes.unsqueeze(1)?.broadcast_as((b, n, l))?.reshape((b * n, l))?;
        let p = points
            .unsqueeze(0)?
            .broadcast_as((b, n, 3))?
            .reshape((b * n, 3))?;
        let input = Tensor::cat(&[&z, &p], 1)?;
        Ok(self
            .decoder
            .forward(&input)?
            .reshape((b, n))?
            .clamp(-clamp, clamp)?)
    }

    /// The loss of step `step`: mean |clamped SDF difference| per crop, weighted by `weights` `[B]`.
    pub fn loss(
        &self,
        predicted: &Tensor,
        target: &Tensor,
        weights: &Tensor,
        config: &TrainConfig,
        step: usize,
    ) -> Result<Tensor> {
        let points = self.points(config, step);
        let n = points.len();
        let points = Tensor::from_vec(points.concat(), (n, 3), predicted.device())?;
        let clamp = config.sdf_clamp_units;
        let want = self.clamped_sdf(target, &points, clamp)?.detach();
        let got = self.clamped_sdf(predicted, &points, clamp)?;
        Ok(((got - want)?.abs()?.mean(1)? * weights)?.mean_all()?)
    }
}

/// The losses of `out` against `batch`, as tensors (total first) and as numbers.
pub fn losses(out: &CssOutput, batch: &Batch, config: &TrainConfig) -> Result<(Tensor, Losses)> {
    losses_in(out, batch, config, None)
}

/// [`losses`], plus the shape-space loss of step `step` when `shape` is given.
pub fn losses_in(
    out: &CssOutput,
    batch: &Batch,
    config: &TrainConfig,
    shape: Option<(&ShapeSpace, usize)>,
) -> Result<(Tensor, Losses)> {
    // Stable BCE with logits: max(x, 0) − x·t + log(1 + e^(−|x|)).
    let x = &out.mask_logit;
    let bce = ((x.relu()? - (x * &batch.mask)?)? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?.mean_all()?;
    let mask3 = batch.nocs_mask.broadcast_as(batch.nocs.shape())?;
    let abs = ((&out.nocs - &batch.nocs)?.abs()? * &mask3)?.sum_all()?;
    let count = (mask3.sum_all()? + 1.0)?;
    let nocs = (abs / count)?;
    let latent = ((&out.latent - &batch.latent)?.sqr()?.sum(1)? * &batch.latent_weight)?.mean_all()?;
    let mut total =
        ((&nocs * config.nocs_weight)? + (&bce * config.mask_weight)? + (&latent * config.latent_weight)?)?;
    let code = match (&out.code_logits, &batch.shape_weights) {
        (Some(logits), Some(w)) => {
            if logits.dims() != w.dims() {
                return Err(CssError::InvalidInput(format!(
                    "{:?} code scores against {:?} shape weights",
                    logits.dims(),
                    w.dims()
                )));
            }
            let ce = (w * candle_nn::ops::log_softmax(logits, 1)?)?
                .sum(1)?
                .neg()?
                .mean_all()?;
            total = (total + (&ce * config.code_weight)?)?;
            Some(ce)
        }
        _ => None,
    };
    let shape_loss = match shape {
        Some((space, step)) if config.sdf_weight > 0.0 => {
            let loss = space.loss(&out.latent, &batch.latent, &batch.latent_weight, config, step)?;
            total = (total + (&loss * config.sdf_weight)?)?;
            Some(loss)
        }
        _ => None,
    };
    let v = |t: &Tensor| -> Result<f32> { Ok(t.to_scalar::<f32>()?) };
    let numbers = Losses {
        nocs: v(&nocs)?,
        mask: v(&bce)?,
        latent: v(&latent)?,
        code: code.as_ref().map(v).transpose()?.unwrap_or(0.0),
        sdf: shape_loss.as_ref().map(v).transpose()?.unwrap_or(0.0),
        total: v(&total)?,
    };
    Ok((total, numbers))
}

/// Adam over a network's named variables, with its state as named tensors so that it can be
/// checkpointed with the weights (`adam.m.<name>`, `adam.v.<name>`). Used by every network the
/// project trains with candle (CSS, the refinement network).
pub struct Adam {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: usize,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl Adam {
    /// Zero moments for every variable of `varmap`, in name order.
    pub fn new(varmap: &VarMap) -> Result<Self> {
        let vars: Vec<(String, Var)> = sorted_vars(varmap)?.into_iter().collect();
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        Ok(Adam {
            m: vars
                .iter()
                .map(|(_, v)| zeros(v))
                .collect::<candle_core::Result<_>>()?,
            v: vars
                .iter()
                .map(|(_, v)| zeros(v))
                .collect::<candle_core::Result<_>>()?,
            vars,
            t: 0,
        })
    }

    /// One step on `loss`'s gradients (β = (0.9, 0.999), ε = 1e-8) with learning rate `lr`.
    pub fn step(&mut self, loss: &Tensor, lr: f64) -> Result<()> {
        let grads = loss.backward()?;
        self.t += 1;
        let (b1t, b2t) = (1.0 - BETA1.powi(self.t as i32), 1.0 - BETA2.powi(self.t as i32));
        for (k, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            self.m[k] = ((&self.m[k] * BETA1)? + (g * (1.0 - BETA1))?)?;
            self.v[k] = ((&self.v[k] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let update = ((&self.m[k] / b1t)? / ((&self.v[k] / b2t)?.sqrt()? + EPS)?)?;
            var.set(&(var.as_tensor() - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// The moments as named tensors, to be saved beside the weights.
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (k, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("adam.m.{name}"), self.m[k].clone());
            out.insert(format!("adam.v.{name}"), self.v[k].clone());
        }
        out
    }

    /// Restores the moments saved by [`Adam::state`] (missing ones stay zero) and the step count.
    pub fn restore(&mut self, tensors: &BTreeMap<String, Tensor>, t: usize) -> Result<()> {
        for (k, (name, _)) in self.vars.iter().enumerate() {
            if let (Some(m), Some(v)) = (
                tensors.get(&format!("adam.m.{name}")),
                tensors.get(&format!("adam.v.{name}")),
            ) {
                self.m[k] = m.clone();
                self.v[k] = v.clone();
            }
        }
        self.t = t;
        Ok(())
    }
}

/// What a finished training returns.
pub struct Trained {
    /// The network.
    pub net: CssNet,
    /// Its variables.
    pub varmap: VarMap,
    /// Losses of every step (including steps run before a resume, when the checkpoint had them).
    pub history: Vec<Losses>,
    /// Samples per second of the steps run in this call.
    pub samples_per_s: f64,
}

/// The samples of step `step`: `batch_size` crops drawn and augmented from the step's own seed.
pub fn step_samples(crops: &[Crop], model: &ModelConfig, config: &TrainConfig, step: usize) -> Vec<Sample> {
    let mut rng = StdRng::seed_from_u64(config.seed ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let picks: Vec<(usize, u64)> = (0..config.batch_size)
        .map(|_| (rng.random_range(0..crops.len()), rng.random::<u64>()))
        .collect();
    picks
        .par_iter()
        .map(|&(i, s)| {
            let mut rng = StdRng::seed_from_u64(s);
            augment(
                &crops[i],
                model.input_size,
                model.output_size(),
                &config.augment,
                &mut rng,
            )
        })
        .collect()
}

/// Trains a network on `crops`. With `checkpoint` set, a checkpoint is written there every
/// `checkpoint_every` steps and, if the file exists (same model and training config), training
/// resumes from it. `progress(step, losses)` is called after every step; when it returns false,
/// training stops there (after writing a checkpoint), as an interruption would.
pub fn train(
    crops: &[Crop],
    model: &ModelConfig,
    config: &TrainConfig,
    shape: Option<&ShapeSpace>,
    checkpoint: Option<&Path>,
    progress: &mut dyn FnMut(usize, &Losses) -> bool,
) -> Result<Trained> {
    train_from(crops, model, None, config, shape, checkpoint, progress)
}

/// [`train`] starting from trained weights (`init`, e.g. [`crate::weights::variables`] of a
/// loaded network with the architecture `model`) instead of seeded ones: fine-tuning.
pub fn fine_tune(
    crops: &[Crop],
    model: &ModelConfig,
    init: &BTreeMap<String, Tensor>,
    config: &TrainConfig,
    shape: Option<&ShapeSpace>,
    checkpoint: Option<&Path>,
    progress: &mut dyn FnMut(usize, &Losses) -> bool,
) -> Result<Trained> {
    train_from(crops, model, Some(init), config, shape, checkpoint, progress)
}

fn train_from(
    crops: &[Crop],
    model: &ModelConfig,
    init: Option<&BTreeMap<String, Tensor>>,
    config: &TrainConfig,
    shape: Option<&ShapeSpace>,
    checkpoint: Option<&Path>,
    progress: &mut dyn FnMut(usize, &Losses) -> bool,
) -> Result<Trained> {
    if crops.is_empty() {
        return Err(CssError::Empty("no training crops".into()));
    }
    if config.sdf_weight > 0.0 && shape.is_none() {
        return Err(CssError::InvalidInput(
            "sdf_weight > 0 needs the prior's shape space (ShapeSpace)".into(),
        ));
    }
    let device = Device::Cpu;
    let (mut net, mut varmap) = match init {
        Some(tensors) => network_from(model, tensors, &device, Path::new("<initial weights>"))?,
        None => build(model, config.seed, &device)?,
    };
    let record = serde_json::json!({ "model": model, "train": config });
    let (mut start, mut history) = (0, Vec::new());
    let mut restored = None;
    if let Some(path) = checkpoint.filter(|p| p.is_file()) {
        let (tensors, meta) = load_tensors(path, &device)?;
        if let Some((step, losses)) = resume_point(path, meta.model == *model, &meta.training, &record) {
            (net, varmap) = network_from(model, &tensors, &device, path)?;
            (start, history) = (step, losses);
            restored = Some(tensors);
        }
    }
    let mut adam = Adam::new(&varmap)?;
    if let Some(t) = &restored {
        adam.restore(t, start)?;
    }
    let size = model.input_size;
    let mut save = |done: usize, history: &[Losses], adam: &Adam| -> Result<()> {
        let Some(path) = checkpoint else {
            return Ok(());
        };
        let mut tensors = variables(&varmap)?;
        tensors.extend(adam.state());
        let meta = Metadata {
            format: FORMAT.to_owned(),
            model: model.clone(),
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
            let samples = step_samples(crops, model, config, step);
            let batch = stack(&samples, size, model.output_size(), &device)?;
            let out = net.forward(&batch.input, Some(&batch.boxes))?;
            losses_in(&out, &batch, config, shape.map(|s| (s, step)))
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

/// The losses a training step reports, as [`run_steps`] needs them.
pub trait StepLosses: Copy + std::fmt::Debug {
    /// The weighted sum that is minimised.
    fn total(&self) -> f32;
}

/// The learning-rate schedule of every network the project trains with candle: `lr` for the first
/// 60 % of `steps`, half of it to 85 %, a quarter after.
pub fn step_schedule(lr: f64, step: usize, steps: usize) -> f64 {
    let f = step as f64 / steps.max(1) as f64;
    if f < 0.6 {
        lr
    } else if f < 0.85 {
        lr * 0.5
    } else {
        lr * 0.25
    }
}

/// Where a run resumes from the checkpoint at `path` (its metadata's `training` record): the step
/// and the loss history, when it was written by the same network (`same_network`) with the same
/// training `record`; otherwise `None`, with a warning, and the run starts afresh.
pub fn resume_point<N: serde::de::DeserializeOwned>(
    path: &Path,
    same_network: bool,
    training: &serde_json::Value,
    record: &serde_json::Value,
) -> Option<(usize, Vec<N>)> {
    if !same_network || training.get("config") != Some(record) {
        tracing::warn!(
            "{} was written with other settings: starting afresh",
            path.display()
        );
        return None;
    }
    let step = training
        .get("step")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0) as usize;
    let mut history: Vec<N> = training
        .get("history")
        .and_then(|h| serde_json::from_value(h.clone()).ok())
        .unwrap_or_default();
    history.truncate(step);
    tracing::info!(step, "resuming from {}", path.display());
    Some((step, history))
}

/// The `training` record of a checkpoint after `done` steps: what [`resume_point`] reads back.
pub fn checkpoint_record<N: Serialize>(
    record: &serde_json::Value,
    done: usize,
    history: &[N],
) -> serde_json::Value {
    serde_json::json!({ "config": record, "step": done, "history": history })
}

/// The steps [`run_steps`] runs.
#[derive(Clone, Copy, Debug)]
pub struct StepPlan {
    /// The first step (the checkpoint's, when resuming).
    pub start: usize,
    /// The step to stop before.
    pub steps: usize,
    /// Samples per step (for the throughput).
    pub batch_size: usize,
    /// A checkpoint every this many steps (0: none).
    pub checkpoint_every: usize,
}

/// How [`run_steps`] writes a checkpoint: `(steps done, loss history, the optimiser)`.
pub type SaveCheckpoint<'a, N, E> = dyn FnMut(usize, &[N], &Adam) -> std::result::Result<(), E> + 'a;

/// The training loop every network of the project shares (CSS, the refinement network): for each
/// step of `plan`, `step(step)` gives the loss and its numbers, Adam steps at `lr_at(step)`, the
/// numbers join `history` and `progress(done, numbers)` runs (false stops the loop). `save(done,
/// history, adam)` writes a checkpoint every `checkpoint_every` steps, after the last and when
/// stopped. A loss that is not finite ends training with an error. Returns the samples per second
/// of the steps run.
pub fn run_steps<N: StepLosses, E: From<CssError>>(
    plan: &StepPlan,
    adam: &mut Adam,
    history: &mut Vec<N>,
    lr_at: &dyn Fn(usize) -> f64,
    mut step: impl FnMut(usize) -> std::result::Result<(Tensor, N), E>,
    progress: &mut dyn FnMut(usize, &N) -> bool,
    save: &mut SaveCheckpoint<'_, N, E>,
) -> std::result::Result<f64, E> {
    let began = std::time::Instant::now();
    let mut run = 0;
    for k in plan.start..plan.steps {
        let (loss, numbers) = step(k)?;
        if !numbers.total().is_finite() {
            return Err(
                CssError::InvalidInput(format!("loss is not finite at step {k}: {numbers:?}")).into(),
            );
        }
        adam.step(&loss, lr_at(k))?;
        history.push(numbers);
        run += plan.batch_size;
        let done = k + 1;
        let go_on = progress(done, &numbers);
        if plan.checkpoint_every > 0 && (done % plan.checkpoint_every == 0 || done == plan.steps || !go_on) {
            save(done, history, adam)?;
        }
        if !go_on {
            break;
        }
    }
    let secs = began.elapsed().as_secs_f64();
    Ok(if secs > 0.0 { run as f64 / secs } else { 0.0 })
}
