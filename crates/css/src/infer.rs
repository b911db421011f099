//! Inference: image + 2D boxes (+ optional instance masks) → per crop NOCS, mask probability and
//! shape latent, in batches.

use crate::data::{BOX_FEATURES, BoxRays, box_features, crop_to_image, crop_window, planar_rgb};
use crate::error::{CssError, Result};
use crate::model::CssNet;
use crate::weights::{Metadata, load};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use geom::{Box2d, Intrinsics};
use image::RgbImage;
use std::path::Path;

/// Crops per forward pass.
pub const BATCH: usize = 16;

/// A set of image pixels (an instance mask).
pub trait PixelMask: Sync {
    /// Whether pixel `(u, v)` belongs to the instance.
    fn contains(&self, u: i64, v: i64) -> bool;
}

impl PixelMask for sim::detector::Mask {
    fn contains(&self, u: i64, v: i64) -> bool {
        let (x, y) = (u - i64::from(self.x0), v - i64::from(self.y0));
        x >= 0
            && y >= 0
            && x < i64::from(self.width)
            && y < i64::from(self.height)
            && self.bits[(y * i64::from(self.width) + x) as usize]
    }
}

/// One object to run the network on.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// Its 2D box (KITTI convention).
    pub bbox: Box2d,
    /// Its instance mask, if the detector gave one: the predicted mask is cut to it.
    pub mask: Option<&'a dyn PixelMask>,
}

/// What the network says about one crop.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The crop window in the image (see [`crop_window`]).
    pub window: Box2d,
    /// Side of the maps, px.
    pub size: usize,
    /// NOCS per crop pixel, row-major.
    pub nocs: Vec<[f32; 3]>,
    /// Mask probability per crop pixel (0 outside a given instance mask).
    pub mask_prob: Vec<f32>,
    /// Shape code on the unit sphere.
    pub latent: Vec<f32>,
}

/// The box features ([`box_features`]) of the box seen in the mirrored image: only the viewing
/// angle changes sign (see [`BoxRays::mirrored`]).
pub fn mirror_box_features(features: &[f32; BOX_FEATURES]) -> [f32; BOX_FEATURES] {
    let mut mirrored = *features;
    mirrored[2] = -mirrored[2];
    mirrored
}

/// How [`CssModel::predict_with`] reads the crops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PredictOptions {
    /// Average each crop's reading with the mirrored crop's ([`CssModel::run_flip_averaged`]):
    /// twice the network's time.
    pub flip_average: bool,
}

/// A trained CSS network ready for inference.
pub struct CssModel {
    /// The network.
    pub net: CssNet,
    /// Its variables.
    pub varmap: VarMap,
    /// What its file said.
    pub meta: Option<Metadata>,
}

impl std::fmt::Debug for CssModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CssModel")
            .field("config", &self.net.config)
            .finish_non_exhaustive()
    }
}

impl CssModel {
    /// Loads weights written by `cargo xtask train-css`.
    pub fn load(path: &Path) -> Result<Self> {
        let (net, varmap, meta) = load(path, &Device::Cpu)?;
        Ok(CssModel {
            net,
            varmap,
            meta: Some(meta),
        })
    }

    /// The network's input side, px.
    pub fn input_size(&self) -> usize {
        self.net.config.input_size
    }

    /// The margin of the crop window around a box: the one the network was trained with (from its
    /// file's training record), else the default crop margin.
    pub fn margin(&self) -> f64 {
        self.meta
            .as_ref()
            .and_then(|m| m.training.pointer("/config/data/crop/margin"))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| crate::data::CropConfig::default().margin)
    }

    /// Resamples the crop of `bbox` to the network's input, planar RGB in [0, 1].
    pub fn crop_input(&self, image: &RgbImage, bbox: &Box2d) -> (Box2d, Vec<f32>) {
        let s = self.input_size();
        let window = crop_window(bbox, self.margin());
        let planar = planar_rgb(image, &window, s);
        (window, planar)
    }

    /// Side of the output maps, px.
    pub fn output_size(&self) -> usize {
        self.net.config.output_size()
    }

    /// Runs the network on planar inputs `[n, 3, S, S]` (flattened) and their boxes' features
    /// `[n, BOX_FEATURES]` ([`box_features`]), in batches of [`BATCH`]: (NOCS `[n, 3, T, T]`, mask
    /// probability `[n, T, T]`, latents `[n, L]`), flattened, T the output size.
    pub fn run(
        &self,
        inputs: &[f32],
        boxes: &[[f32; BOX_FEATURES]],
        n: usize,
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let s = self.input_size();
        let per = 3 * s * s;
        if inputs.len() != n * per || boxes.len() != n {
            return Err(CssError::InvalidInput(format!(
                "{} input values and {} boxes for {n} crops of {s}²",
                inputs.len(),
                boxes.len()
            )));
        }
        let (mut nocs, mut mask, mut latent) = (Vec::new(), Vec::new(), Vec::new());
        for start in (0..n).step_by(BATCH) {
            let b = BATCH.min(n - start);
            let x = Tensor::from_slice(
                &inputs[start * per..(start + b) * per],
                (b, 3, s, s),
                &Device::Cpu,
            )?;
            let features: Vec<f32> = boxes[start..start + b].iter().flatten().copied().collect();
            let features = Tensor::from_vec(features, (b, BOX_FEATURES), &Device::Cpu)?;
            let out = self.net.forward(&x, Some(&features))?;
            nocs.extend(out.nocs.flatten_all()?.to_vec1::<f32>()?);
            mask.extend(
                candle_nn::ops::sigmoid(&out.mask_logit)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
            latent.extend(out.latent.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok((nocs, mask, latent))
    }

    /// [`CssModel::run`] averaged with the network's reading of the mirrored crops (test-time
    /// flip): each input is mirrored left–right, with its box features ([`mirror_box_features`]),
    /// and run too; the mirrored maps are turned back (NOCS x ↦ 1 − x, as in training's flips) and
    /// averaged with the direct ones, and the two codes are averaged and put back on the unit
    /// sphere. A car is close to mirror-symmetric, so both readings estimate the same shape and
    /// their mean has less noise; it costs a second forward pass.
    pub fn run_flip_averaged(
        &self,
        inputs: &[f32],
        boxes: &[[f32; BOX_FEATURES]],
        n: usize,
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let (mut nocs, mut mask, mut latent) = self.run(inputs, boxes, n)?;
        let s = self.input_size();
        let mirrored: Vec<f32> = inputs
            .chunks_exact(s)
            .flat_map(|row| row.iter().rev().copied())
            .collect();
        let mirrored_boxes: Vec<_> = boxes.iter().map(mirror_box_features).collect();
        let (nocs_m, mask_m, latent_m) = self.run(&mirrored, &mirrored_boxes, n)?;
        let t = self.output_size();
        for k in 0..n {
            for j in 0..t {
                for i in 0..t {
                    let (p, q) = (j * t + i, j * t + (t - 1 - i));
                    mask[k * t * t + p] = 0.5 * (mask[k * t * t + p] + mask_m[k * t * t + q]);
                    for c in 0..3 {
                        let at = |map: &[f32], pixel: usize| map[k * 3 * t * t + c * t * t + pixel];
                        let other = if c == 0 {
                            1.0 - at(&nocs_m, q)
                        } else {
                            at(&nocs_m, q)
                        };
                        nocs[k * 3 * t * t + c * t * t + p] = 0.5 * (at(&nocs, p) + other);
                    }
                }
            }
        }
        let l = self.net.config.latent_dim;
        for (z, zm) in latent.chunks_exact_mut(l).zip(latent_m.chunks_exact(l)) {
            let sum: Vec<f32> = z.iter().zip(zm).map(|(a, b)| a + b).collect();
            let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt();
            for (v, s) in z.iter_mut().zip(&sum) {
                *v = if norm > 1e-12 { s / norm } else { *v };
            }
        }
        Ok((nocs, mask, latent))
    }

    /// Predicts NOCS, mask and latent for every request on `image`, seen by a camera with
    /// intrinsics `k` (one reading per crop: [`CssModel::predict_with`] for the options).
    pub fn predict(
        &self,
        image: &RgbImage,
        k: &Intrinsics,
        requests: &[Request<'_>],
    ) -> Result<Vec<Prediction>> {
        self.predict_with(image, k, requests, &PredictOptions::default())
    }

    /// [`CssModel::predict`] with `options`.
    pub fn predict_with(
        &self,
        image: &RgbImage,
        k: &Intrinsics,
        requests: &[Request<'_>],
        options: &PredictOptions,
    ) -> Result<Vec<Prediction>> {
        let s = self.input_size();
        let mut inputs = Vec::with_capacity(requests.len() * 3 * s * s);
        let mut windows = Vec::with_capacity(requests.len());
        let mut boxes = Vec::with_capacity(requests.len());
        for r in requests {
            let b = &r.bbox;
            let finite = [b.left, b.top, b.right, b.bottom].iter().all(|v| v.is_finite());
            if !(finite && b.right > b.left && b.bottom > b.top) {
                return Err(CssError::InvalidInput(format!("box {b:?}")));
            }
            let (w, x) = self.crop_input(image, b);
            windows.push(w);
            inputs.extend(x);
            boxes.push(box_features(&BoxRays::new(b, k)));
        }
        let (nocs, mask, latent) = if options.flip_average {
            self.run_flip_averaged(&inputs, &boxes, requests.len())?
        } else {
            self.run(&inputs, &boxes, requests.len())?
        };
        let l = self.net.config.latent_dim;
        let t = self.output_size();
        Ok(requests
            .iter()
            .enumerate()
            .map(|(k, r)| {
                let base = k * 3 * t * t;
                let window = windows[k];
                let mut mask_prob = mask[k * t * t..(k + 1) * t * t].to_vec();
                if let Some(m) = r.mask {
                    for j in 0..t {
                        for i in 0..t {
                            let (u, v) = crop_to_image(&window, t, i as f64, j as f64);
                            if !m.contains(u.round() as i64, v.round() as i64) {
                                mask_prob[j * t + i] = 0.0;
                            }
                        }
                    }
                }
                Prediction {
                    window,
                    size: t,
                    nocs: (0..t * t)
                        .map(|p| [nocs[base + p], nocs[base + t * t + p], nocs[base + 2 * t * t + p]])
                        .collect(),
                    mask_prob,
                    latent: latent[k * l..(k + 1) * l].to_vec(),
                }
            })
            .collect())
    }
}
