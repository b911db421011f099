//! The correspondence network: two convolutional streams — the image crop (RGB) and the rendering
//! (NOCS, normals, mask) — each down to 1/8 of the input, fused at 1/8 by concatenation and two
//! convolutions (which see the whole crop), then a U-Net decoder that upsamples (bilinear) to 1/2
//! and reads both streams' features at 1/4 and 1/2. The head gives, per output cell, the 2D
//! correspondence (in units of [`FIELD_SCALE_PX`] crop pixels) and a visibility logit.
//! Convolutions are [`css::conv::Conv`] (im2col + matrix product) with GroupNorm and ReLU; weights
//! are initialised from our own seeded generator ([`css::model::seeded_init`]).

use crate::error::{RefineError, Result};
use crate::field::RENDER_CHANNELS;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{GroupNorm, VarBuilder, VarMap};
use css::conv::Conv;
use css::model::{seeded_init, upsample2x};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The network predicts the field divided by this, crop px (keeps its outputs near unit size).
pub const FIELD_SCALE_PX: f32 = 4.0;

/// The architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// Input side, px (a multiple of 8); the output has half of it.
    pub input_size: usize,
    /// Widths of each stream at 1/1, 1/2, 1/4 and 1/8.
    pub stream_widths: [usize; 4],
    /// Width of the fused features at 1/8.
    pub fuse_width: usize,
    /// Decoder widths at 1/4 and 1/2.
    pub decoder_widths: [usize; 2],
    /// GroupNorm groups (every width a multiple of it).
    pub groups: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            input_size: 48,
            stream_widths: [16, 32, 48, 64],
            fuse_width: 96,
            decoder_widths: [64, 32],
            groups: 4,
        }
    }
}

impl NetConfig {
    /// Output side (cells).
    pub fn output_size(&self) -> usize {
        self.input_size / 2
    }

    fn validate(&self) -> Result<()> {
        let widths = self
            .stream_widths
            .iter()
            .chain(&self.decoder_widths)
            .chain([&self.fuse_width]);
        let ok = self.input_size >= 8
            && self.input_size.is_multiple_of(8)
            && self.groups > 0
            && widths.clone().all(|w| *w > 0 && w.is_multiple_of(self.groups));
        if ok {
            Ok(())
        } else {
            Err(RefineError::InvalidInput(format!("network config {self:?}")))
        }
    }
}

struct ConvNorm {
    conv: Conv,
    norm: GroupNorm,
}

impl ConvNorm {
    fn new(cin: usize, cout: usize, stride: usize, groups: usize, vb: VarBuilder) -> Result<Self> {
        Ok(ConvNorm {
            conv: Conv::new(cin, cout, 3, stride, false, vb.pp("conv"))?,
            norm: candle_nn::group_norm(groups, cout, 1e-5, vb.pp("norm"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.norm.forward(&self.conv.forward(x)?)?.relu()
    }
}

struct Stream {
    layers: [ConvNorm; 4],
}

impl Stream {
    fn new(cin: usize, w: [usize; 4], groups: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Stream {
            layers: [
                ConvNorm::new(cin, w[0], 1, groups, vb.pp("l0"))?,
                ConvNorm::new(w[0], w[1], 2, groups, vb.pp("l1"))?,
                ConvNorm::new(w[1], w[2], 2, groups, vb.pp("l2"))?,
                ConvNorm::new(w[2], w[3], 2, groups, vb.pp("l3"))?,
            ],
        })
    }

    /// Features at 1/2, 1/4, 1/8.
    fn forward(&self, x: &Tensor) -> candle_core::Result<[Tensor; 3]> {
        let x0 = self.layers[0].forward(x)?;
        let x1 = self.layers[1].forward(&x0)?;
        let x2 = self.layers[2].forward(&x1)?;
        let x3 = self.layers[3].forward(&x2)?;
        Ok([x1, x2, x3])
    }
}

/// What the network predicts for a batch.
#[derive(Debug)]
pub struct NetOutput {
    /// Field / [`FIELD_SCALE_PX`], `[B, 2, T, T]`.
    pub field: Tensor,
    /// Visibility logits, `[B, 1, T, T]`.
    pub visibility_logit: Tensor,
}

/// The correspondence network.
pub struct RefineNet {
    /// Its architecture.
    pub config: NetConfig,
    image: Stream,
    rendering: Stream,
    fuse: [ConvNorm; 2],
    up: [ConvNorm; 2],
    head: Conv,
}

impl std::fmt::Debug for RefineNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefineNet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RefineNet {
    /// Builds the network on `vb`'s variables.
    pub fn new(config: &NetConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let g = config.groups;
        let w = config.stream_widths;
        let [d0, d1] = config.decoder_widths;
        let f = config.fuse_width;
        Ok(RefineNet {
            config: config.clone(),
            image: Stream::new(3, w, g, vb.pp("image"))?,
            rendering: Stream::new(RENDER_CHANNELS, w, g, vb.pp("rendering"))?,
            fuse: [
                ConvNorm::new(2 * w[3], f, 1, g, vb.pp("fuse0"))?,
                ConvNorm::new(f, f, 1, g, vb.pp("fuse1"))?,
            ],
            up: [
                ConvNorm::new(f + 2 * w[2], d0, 1, g, vb.pp("up0"))?,
                ConvNorm::new(d0 + 2 * w[1], d1, 1, g, vb.pp("up1"))?,
            ],
            head: Conv::new(d1, 3, 1, 1, true, vb.pp("head"))?,
        })
    }

    /// `image` `[B, 3, S, S]`, `rendering` `[B, RENDER_CHANNELS, S, S]` → field and visibility.
    pub fn forward(&self, image: &Tensor, rendering: &Tensor) -> candle_core::Result<NetOutput> {
        let [a1, a2, a3] = self.image.forward(image)?;
        let [b1, b2, b3] = self.rendering.forward(rendering)?;
        let x = self.fuse[0].forward(&Tensor::cat(&[&a3, &b3], 1)?)?;
        let x = self.fuse[1].forward(&x)?;
        let x = self.up[0].forward(&Tensor::cat(&[&upsample2x(&x)?, &a2, &b2], 1)?)?;
        let x = self.up[1].forward(&Tensor::cat(&[&upsample2x(&x)?, &a1, &b1], 1)?)?;
        let out = self.head.forward(&x)?;
        Ok(NetOutput {
            field: out.narrow(1, 0, 2)?,
            visibility_logit: out.narrow(1, 2, 1)?,
        })
    }
}

/// A fresh network with weights drawn from `seed`.
pub fn build(config: &NetConfig, seed: u64, device: &Device) -> Result<(RefineNet, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let net = RefineNet::new(config, vb)?;
    seeded_init(&varmap, seed)?;
    Ok((net, varmap))
}

/// Number of parameters.
pub fn parameter_count(varmap: &VarMap) -> usize {
    varmap.all_vars().iter().map(|v| v.elem_count()).sum()
}

/// The format tag of refinement weight files.
pub const FORMAT: &str = "autolabel-refine-1";

/// What a weights file says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// [`FORMAT`].
    pub format: String,
    /// The architecture.
    pub net: NetConfig,
    /// Free-form training record (or a checkpoint's state).
    pub training: serde_json::Value,
}

fn weights_err(path: &Path, message: impl Into<String>) -> RefineError {
    RefineError::Weights {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The variables of `varmap` by name.
pub fn variables(varmap: &VarMap) -> Result<BTreeMap<String, Tensor>> {
    Ok(css::weights::variables(varmap)?)
}

/// Writes `tensors` and `meta` to `path` atomically, names in sorted order (the project's weight
/// file format, [`css::weights::save_with_metadata`]).
pub fn save_tensors(path: &Path, tensors: &BTreeMap<String, Tensor>, meta: &Metadata) -> Result<()> {
    Ok(css::weights::save_with_metadata(path, tensors, meta)?)
}

/// Reads every tensor and the metadata of `path`.
pub fn load_tensors(path: &Path, device: &Device) -> Result<(BTreeMap<String, Tensor>, Metadata)> {
    let (tensors, meta): (_, Metadata) = css::weights::load_with_metadata(path, device, "refinement")?;
    if meta.format != FORMAT {
        return Err(weights_err(
            path,
            format!("format {} is not {FORMAT}", meta.format),
        ));
    }
    Ok((tensors, meta))
}

/// A network of architecture `config` with the values of `tensors` (each variable present, same
/// shape).
pub fn network_from(
    config: &NetConfig,
    tensors: &BTreeMap<String, Tensor>,
    device: &Device,
    path: &Path,
) -> Result<(RefineNet, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let net = RefineNet::new(config, vb)?;
    css::weights::assign(&varmap, tensors, path)?;
    Ok((net, varmap))
}

/// Saves a trained network.
pub fn save(path: &Path, varmap: &VarMap, config: &NetConfig, training: serde_json::Value) -> Result<()> {
    let meta = Metadata {
        format: FORMAT.to_owned(),
        net: config.clone(),
        training,
    };
    save_tensors(path, &variables(varmap)?, &meta)
}

/// Loads a trained network.
pub fn load(path: &Path, device: &Device) -> Result<(RefineNet, VarMap, Metadata)> {
    let (tensors, meta) = load_tensors(path, device)?;
    let (net, varmap) = network_from(&meta.net, &tensors, device, path)?;
    Ok((net, varmap, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> NetConfig {
        NetConfig {
            input_size: 16,
            stream_widths: [4, 4, 8, 8],
            fuse_width: 8,
            decoder_widths: [8, 4],
            groups: 2,
        }
    }

    fn inputs(b: usize, s: usize) -> (Tensor, Tensor) {
        let dev = Device::Cpu;
        let img: Vec<f32> = (0..b * 3 * s * s).map(|i| (i % 17) as f32 / 17.0).collect();
        let ren: Vec<f32> = (0..b * RENDER_CHANNELS * s * s)
            .map(|i| (i % 5) as f32 / 5.0)
            .collect();
        (
            Tensor::from_vec(img, (b, 3, s, s), &dev).expect("tensor"),
            Tensor::from_vec(ren, (b, RENDER_CHANNELS, s, s), &dev).expect("tensor"),
        )
    }

    #[test]
    fn output_shapes() {
        let config = small();
        let (net, _) = build(&config, 3, &Device::Cpu).expect("build");
        let (img, ren) = inputs(2, 16);
        let out = net.forward(&img, &ren).expect("forward");
        assert_eq!(out.field.dims(), &[2, 2, 8, 8]);
        assert_eq!(out.visibility_logit.dims(), &[2, 1, 8, 8]);
        assert!(
            build(
                &NetConfig {
                    input_size: 20,
                    ..config
                },
                0,
                &Device::Cpu
            )
            .is_err()
        );
    }

    /// Saved and loaded weights give the same outputs; the same seed gives the same weights.
    #[test]
    fn save_load_round_trip() {
        let config = small();
        let (net, varmap) = build(&config, 5, &Device::Cpu).expect("build");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.safetensors");
        save(&path, &varmap, &config, serde_json::json!({ "steps": 0 })).expect("save");
        let (loaded, _, meta) = load(&path, &Device::Cpu).expect("load");
        assert_eq!(meta.net, config);
        let (img, ren) = inputs(1, 16);
        let a: Vec<f32> = net
            .forward(&img, &ren)
            .and_then(|o| o.field.flatten_all()?.to_vec1())
            .expect("a");
        let b: Vec<f32> = loaded
            .forward(&img, &ren)
            .and_then(|o| o.field.flatten_all()?.to_vec1())
            .expect("b");
        assert_eq!(a, b);
        let (again, _) = build(&config, 5, &Device::Cpu).expect("build");
        let c: Vec<f32> = again
            .forward(&img, &ren)
            .and_then(|o| o.field.flatten_all()?.to_vec1())
            .expect("c");
        assert_eq!(a, c);
        std::fs::write(&path, b"not a weights file").expect("write");
        assert!(load(&path, &Device::Cpu).is_err());
    }
}
