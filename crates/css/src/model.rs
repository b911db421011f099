//! The network: a ResNet-18-style encoder (stem, then three stages of basic blocks — ResNet-18 up to
//! `layer3`), a U-Net decoder with bilinear 2× upsampling and skip connections (shared by the four
//! outputs U, V, W and mask, or one per output), and a latent head onto the DeepSDF latent sphere.
//!
//! Sized by [`ModelConfig`]: the default is a narrow 64² variant that trains on two CPU cores in
//! under two hours; [`ModelConfig::paper`] is the SDFLabel layout (ResNet-18 widths, 7 × 7 stem with
//! a second 2× reduction, four separate decoders, 128² input). Candle gaps are avoided by design:
//! the stem's max-pool is a strided convolution (candle's pooling has no backward for 3 × 3 / 2),
//! bilinear upsampling is written with differentiable tensor operations ([`upsample2x`]), and
//! normalisation is GroupNorm (no running statistics: the same in training and inference).

use crate::conv::Conv;
use crate::data::BOX_FEATURES;
use crate::error::{CssError, Result};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{GroupNorm, Linear, VarBuilder, VarMap};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Architecture settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// Side of the square input crop, px (a multiple of the encoder's total reduction).
    pub input_size: usize,
    /// Stem convolution kernel (stride 2).
    pub stem_kernel: usize,
    /// Whether a 3 × 3 stride-2 convolution follows the stem (where ResNet has its max-pool).
    pub stem_reduce: bool,
    /// Channels of the three stages (ResNet-18: 64, 128, 256).
    pub widths: [usize; 3],
    /// Basic blocks per stage (ResNet-18: 2).
    pub blocks_per_stage: usize,
    /// Channels of the full-resolution skip branch (used when `output_stride` is 1).
    pub skip_width: usize,
    /// The maps come out at input size / this (1 or 2): 2 saves the two most expensive stages.
    pub output_stride: usize,
    /// GroupNorm groups (divides every width).
    pub groups: usize,
    /// One decoder with four output channels (true) or one decoder per output (false).
    pub shared_decoder: bool,
    /// Size of the shape latent (the DeepSDF prior's).
    pub latent_dim: usize,
    /// Whether the latent head also reads the box's rays ([`crate::data::box_features`]), which
    /// carry the metric size a resampled crop has lost. Files written before it existed lack it
    /// (false).
    #[serde(default)]
    pub box_input: bool,
    /// 0: the latent head regresses the code. K > 0: it scores the prior's K training codes
    /// (`latent.codes`, fixed, set from the prior before training) and the latent is the
    /// normalised, softmax-weighted mean of those codes; training then also matches the scores to
    /// how close each prior shape is to the true one in metres (see `css::data::shape_weights`).
    /// Files written before it existed lack it (0).
    #[serde(default)]
    pub latent_codes: usize,
    /// Whether the latent head reads the deepest feature map whole (flattened, `C × (S/16)²`
    /// values) instead of its spatial mean (`C`): where in the crop a feature lies, which the mean
    /// discards, tells a long car from a short one. Files written before it existed lack it
    /// (false).
    #[serde(default)]
    pub latent_spatial: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            input_size: 64,
            stem_kernel: 3,
            stem_reduce: true,
            widths: [32, 64, 128],
            blocks_per_stage: 2,
            skip_width: 16,
            output_stride: 2,
            groups: 8,
            shared_decoder: true,
            latent_dim: 8,
            box_input: false,
            latent_codes: 0,
            latent_spatial: false,
        }
    }
}

impl ModelConfig {
    /// The SDFLabel layout: ResNet-18 up to `layer3`, four decoders, 128² crops, full-resolution
    /// maps: 5.5 M parameters, 0.3 crops/s to train on two cores (BENCHMARKS.md).
    pub fn paper() -> Self {
        ModelConfig {
            input_size: 128,
            stem_kernel: 7,
            stem_reduce: true,
            widths: [64, 128, 256],
            blocks_per_stage: 2,
            skip_width: 32,
            output_stride: 1,
            groups: 8,
            shared_decoder: false,
            latent_dim: 8,
            box_input: true,
            latent_codes: 0,
            latent_spatial: false,
        }
    }

    /// Side of the output maps, px.
    pub fn output_size(&self) -> usize {
        self.input_size / self.output_stride
    }

    /// The encoder's total reduction (input size / deepest feature size).
    pub fn reduction(&self) -> usize {
        if self.stem_reduce { 16 } else { 8 }
    }

    /// Positions of the deepest feature map the latent head reads per channel: `(S/16)²` when
    /// `latent_spatial`, else 1 (the spatial mean).
    pub fn latent_positions(&self) -> usize {
        if self.latent_spatial {
            (self.input_size / self.reduction()).pow(2)
        } else {
            1
        }
    }

    /// Checks sizes and divisibility.
    pub fn validate(&self) -> Result<()> {
        let ok = self.input_size > 0
            && self.input_size.is_multiple_of(self.reduction())
            && self.groups > 0
            && self
                .widths
                .iter()
                .chain([&self.skip_width])
                .all(|w| *w > 0 && w.is_multiple_of(self.groups))
            && self.blocks_per_stage > 0
            && self.latent_dim > 0
            && self.stem_kernel % 2 == 1
            && (self.output_stride == 1 || self.output_stride == 2);
        if ok {
            Ok(())
        } else {
            Err(CssError::InvalidInput(format!("model config {self:?}")))
        }
    }
}

/// Bilinear 2× upsampling of `[B, C, H, W]` (half-pixel centres, edges clamped: PyTorch's
/// `align_corners=False`), from narrow/cat/stack/reshape so that autograd differentiates it.
pub fn upsample2x(x: &Tensor) -> candle_core::Result<Tensor> {
    let along = |x: &Tensor, d: usize| -> candle_core::Result<Tensor> {
        let n = x.dim(d)?;
        let (prev, next) = if n == 1 {
            (x.clone(), x.clone())
        } else {
            (
                Tensor::cat(&[x.narrow(d, 0, 1)?, x.narrow(d, 0, n - 1)?], d)?,
                Tensor::cat(&[x.narrow(d, 1, n - 1)?, x.narrow(d, n - 1, 1)?], d)?,
            )
        };
        let even = ((x * 0.75)? + (prev * 0.25)?)?;
        let odd = ((x * 0.75)? + (next * 0.25)?)?;
        let mut dims = x.dims().to_vec();
        dims[d] *= 2;
        Tensor::stack(&[even, odd], d + 1)?.reshape(dims)
    };
    along(&along(x, 3)?, 2)
}

struct ConvNorm {
    conv: Conv,
    norm: GroupNorm,
}

impl ConvNorm {
    fn new(cin: usize, cout: usize, k: usize, stride: usize, groups: usize, vb: VarBuilder) -> Result<Self> {
        Ok(ConvNorm {
            conv: Conv::new(cin, cout, k, stride, false, vb.pp("conv"))?,
            norm: candle_nn::group_norm(groups, cout, 1e-5, vb.pp("norm"))?,
        })
    }

    /// Convolution and normalisation, without the activation.
    fn linear(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.norm.forward(&self.conv.forward(x)?)
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.linear(x)?.relu()
    }
}

struct BasicBlock {
    a: ConvNorm,
    b: ConvNorm,
    down: Option<ConvNorm>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, groups: usize, vb: VarBuilder) -> Result<Self> {
        let down = if stride != 1 || cin != cout {
            Some(ConvNorm::new(cin, cout, 1, stride, groups, vb.pp("down"))?)
        } else {
            None
        };
        Ok(BasicBlock {
            a: ConvNorm::new(cin, cout, 3, stride, groups, vb.pp("a"))?,
            b: ConvNorm::new(cout, cout, 3, 1, groups, vb.pp("b"))?,
            down,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.b.linear(&self.a.forward(x)?)?;
        let r = match &self.down {
            Some(d) => d.linear(x)?,
            None => x.clone(),
        };
        (y + r)?.relu()
    }
}

struct Decoder {
    /// One per upsampling step, deepest first.
    stages: Vec<ConvNorm>,
    head: Conv,
}

impl Decoder {
    fn forward(&self, deepest: &Tensor, skips: &[Tensor]) -> candle_core::Result<Tensor> {
        let mut x = deepest.clone();
        for (stage, skip) in self.stages.iter().zip(skips) {
            x = stage.forward(&Tensor::cat(&[upsample2x(&x)?, skip.clone()], 1)?)?;
        }
        self.head.forward(&x)
    }
}

/// What the network predicts for a batch.
#[derive(Debug)]
pub struct CssOutput {
    /// NOCS in [0, 1], `[B, 3, S', S']` (S' = input size / output stride).
    pub nocs: Tensor,
    /// Mask logits, `[B, 1, S', S']`.
    pub mask_logit: Tensor,
    /// Shape latent on the unit sphere, `[B, L]`.
    pub latent: Tensor,
    /// With `latent_codes` K > 0: the scores of the prior's codes, `[B, K]` (logits).
    pub code_logits: Option<Tensor>,
}

/// The CSS network.
pub struct CssNet {
    /// Its architecture.
    pub config: ModelConfig,
    skip: Option<ConvNorm>,
    stem: ConvNorm,
    reduce: Option<ConvNorm>,
    stages: Vec<Vec<BasicBlock>>,
    decoders: Vec<Decoder>,
    latent_hidden: Linear,
    latent_out: Linear,
    /// `[K, L]` unit codes scored by `latent_out` (K = `latent_codes` > 0).
    latent_codes: Option<Tensor>,
}

impl std::fmt::Debug for CssNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CssNet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CssNet {
    /// Builds the network on `vb`'s variables.
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let g = config.groups;
        let [w1, _, w3] = config.widths;
        let skip = if config.output_stride == 1 {
            Some(ConvNorm::new(3, config.skip_width, 3, 1, g, vb.pp("skip"))?)
        } else {
            None
        };
        let stem = ConvNorm::new(3, w1, config.stem_kernel, 2, g, vb.pp("stem"))?;
        let reduce = if config.stem_reduce {
            Some(ConvNorm::new(w1, w1, 3, 2, g, vb.pp("reduce"))?)
        } else {
            None
        };
        let mut stages = Vec::new();
        let mut cin = w1;
        for (s, &w) in config.widths.iter().enumerate() {
            let blocks = (0..config.blocks_per_stage)
                .map(|b| {
                    let stride = if s > 0 && b == 0 { 2 } else { 1 };
                    BasicBlock::new(
                        if b == 0 { cin } else { w },
                        w,
                        stride,
                        g,
                        vb.pp(format!("stage{s}.{b}")),
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            stages.push(blocks);
            cin = w;
        }
        // Skip channels per upsampling step, deepest first.
        let skip_widths: Vec<usize> = Self::skip_plan(config).iter().map(|(_, c)| *c).collect();
        let outputs: Vec<usize> = if config.shared_decoder {
            vec![4]
        } else {
            vec![1; 4]
        };
        let decoders = outputs
            .iter()
            .enumerate()
            .map(|(d, &out)| {
                let vb = vb.pp(format!("decoder{d}"));
                let mut x = w3;
                let mut stages = Vec::new();
                for (i, &sw) in skip_widths.iter().enumerate() {
                    // The last stage (full resolution) is the narrowest: half the first stage's width.
                    let width = if i + 1 == skip_widths.len() {
                        (w1 / 2).max(g)
                    } else {
                        sw
                    };
                    stages.push(ConvNorm::new(x + sw, width, 3, 1, g, vb.pp(format!("up{i}")))?);
                    x = width;
                }
                let head = Conv::new(x, out, 1, 1, true, vb.pp("head"))?;
                Ok(Decoder { stages, head })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CssNet {
            config: config.clone(),
            skip,
            stem,
            reduce,
            stages,
            decoders,
            latent_hidden: candle_nn::linear(
                w3 * config.latent_positions() + if config.box_input { BOX_FEATURES } else { 0 },
                w3,
                vb.pp("latent.hidden"),
            )?,
            latent_out: if config.latent_codes > 0 {
                candle_nn::linear(w3, config.latent_codes, vb.pp("latent.scores"))?
            } else {
                candle_nn::linear(w3, config.latent_dim, vb.pp("latent.out"))?
            },
            latent_codes: if config.latent_codes > 0 {
                Some(vb.get((config.latent_codes, config.latent_dim), LATENT_CODES)?)
            } else {
                None
            },
        })
    }

    /// The encoder features in the order they are produced: (name, scale, channels).
    fn features(config: &ModelConfig) -> Vec<(&'static str, usize, usize)> {
        let [w1, w2, w3] = config.widths;
        let mut f = Vec::new();
        if config.output_stride == 1 {
            f.push(("skip", 1, config.skip_width));
        }
        f.push(("stem", 2, w1));
        let mut scale = 2;
        if config.stem_reduce {
            scale = 4;
            f.push(("reduce", 4, w1));
        }
        f.push(("stage0", scale, w1));
        f.push(("stage1", scale * 2, w2));
        f.push(("stage2", scale * 4, w3));
        f
    }

    /// For every upsampling step, deepest first: the feature concatenated there (the last one
    /// produced at that scale) and its channels.
    fn skip_plan(config: &ModelConfig) -> Vec<(&'static str, usize)> {
        let features = Self::features(config);
        let deepest = config.reduction();
        let mut plan = Vec::new();
        let mut scale = deepest / 2;
        while scale >= config.output_stride {
            if let Some((name, _, c)) = features.iter().rev().find(|(_, s, _)| *s == scale) {
                plan.push((*name, *c));
            }
            scale /= 2;
        }
        plan
    }

    /// Runs a batch `[B, 3, S, S]` of crops (RGB in [0, 1]) with their boxes' features `[B,
    /// BOX_FEATURES]` ([`crate::data::box_features`]; required when the config's `box_input` is
    /// set, ignored otherwise).
    pub fn forward(&self, x: &Tensor, boxes: Option<&Tensor>) -> candle_core::Result<CssOutput> {
        let mut produced: Vec<(&'static str, Tensor)> = Vec::new();
        if let Some(skip) = &self.skip {
            produced.push(("skip", skip.forward(x)?));
        }
        let mut h = self.stem.forward(x)?;
        produced.push(("stem", h.clone()));
        if let Some(r) = &self.reduce {
            h = r.forward(&h)?;
            produced.push(("reduce", h.clone()));
        }
        let mut stage_out = Vec::new();
        for (s, blocks) in self.stages.iter().enumerate() {
            for b in blocks {
                h = b.forward(&h)?;
            }
            produced.push((["stage0", "stage1", "stage2"][s], h.clone()));
            stage_out.push(h.clone());
        }
        let skips: Vec<Tensor> = Self::skip_plan(&self.config)
            .iter()
            .filter_map(|(name, _)| produced.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone()))
            .collect();
        let deepest = &stage_out[2];
        let maps: Vec<Tensor> = self
            .decoders
            .iter()
            .map(|d| d.forward(deepest, &skips))
            .collect::<candle_core::Result<_>>()?;
        let maps = if maps.len() == 1 {
            maps[0].clone()
        } else {
            Tensor::cat(&maps, 1)?
        };
        let nocs = candle_nn::ops::sigmoid(&maps.narrow(1, 0, 3)?)?;
        let mask_logit = maps.narrow(1, 3, 1)?;
        let mut pooled = if self.config.latent_spatial {
            deepest.flatten_from(1)?
        } else {
            deepest.mean(D::Minus1)?.mean(D::Minus1)?
        };
        if self.config.box_input {
            let boxes = boxes.ok_or_else(|| {
                candle_core::Error::Msg("this network reads box features: none were given".into())
            })?;
            pooled = Tensor::cat(&[&pooled, boxes], 1)?;
        }
        let head = self
            .latent_out
            .forward(&self.latent_hidden.forward(&pooled)?.relu()?)?;
        let (z, code_logits) = match &self.latent_codes {
            Some(codes) => {
                let p = candle_nn::ops::softmax_last_dim(&head)?;
                (p.matmul(&codes.detach())?, Some(head))
            }
            None => (head, None),
        };
        let norm = z.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-6, f64::MAX)?;
        let latent = z.broadcast_div(&norm)?;
        Ok(CssOutput {
            nocs,
            mask_logit,
            latent,
            code_logits,
        })
    }
}

/// Name of the fixed `[K, L]` code table of a network whose latent head scores the prior's codes.
pub const LATENT_CODES: &str = "latent.codes";

/// Sets the code table of a network built with `latent_codes` = K from the prior's K unit codes
/// (`codes`, K × L values, row-major).
pub fn set_latent_codes(varmap: &VarMap, codes: &[f32]) -> Result<()> {
    let vars = sorted_vars(varmap)?;
    let var = vars
        .get(LATENT_CODES)
        .ok_or_else(|| CssError::InvalidInput("this network has no code table (latent_codes = 0)".into()))?;
    if var.elem_count() != codes.len() {
        return Err(CssError::InvalidInput(format!(
            "the code table holds {} values, {} were given",
            var.elem_count(),
            codes.len()
        )));
    }
    var.set(&Tensor::from_vec(codes.to_vec(), var.dims(), var.device())?)?;
    Ok(())
}

/// Fills every variable of `varmap` from a seeded generator (candle's own CPU generator cannot be
/// seeded): He-uniform convolution and linear weights, zero biases, unit GroupNorm scales. Variables
/// are visited in name order, so the result depends only on the seed.
pub fn seeded_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    for (name, var) in sorted_vars(varmap)? {
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if dims.len() == 1 {
            let one = name.contains("norm") && name.ends_with("weight");
            vec![if one { 1.0 } else { 0.0 }; n]
        } else {
            let fan_in: usize = dims[1..].iter().product();
            let bound = (6.0 / fan_in as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}

/// The variables of `varmap` in name order.
pub fn sorted_vars(varmap: &VarMap) -> Result<BTreeMap<String, candle_core::Var>> {
    Ok(varmap
        .data()
        .lock()
        .map_err(|_| CssError::InvalidInput("variable map lock poisoned".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

/// A fresh, seeded network and its variables.
pub fn build(config: &ModelConfig, seed: u64, device: &Device) -> Result<(CssNet, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let net = CssNet::new(config, vb)?;
    seeded_init(&varmap, seed)?;
    Ok((net, varmap))
}

/// Number of parameters.
pub fn parameter_count(varmap: &VarMap) -> usize {
    varmap.all_vars().iter().map(|v| v.elem_count()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct bilinear 2× upsampling of one channel (half-pixel centres, clamped edges).
    fn reference(x: &[f32], h: usize, w: usize) -> Vec<f32> {
        let src = |i: f32, n: usize| {
            let s = ((i + 0.5) / 2.0 - 0.5).max(0.0);
            let i0 = (s.floor() as usize).min(n - 1);
            let i1 = (i0 + 1).min(n - 1);
            (i0, i1, s - i0 as f32)
        };
        let mut out = vec![0.0; 4 * h * w];
        for y in 0..2 * h {
            let (y0, y1, fy) = src(y as f32, h);
            for xx in 0..2 * w {
                let (x0, x1, fx) = src(xx as f32, w);
                let v = |yy: usize, xq: usize| x[yy * w + xq];
                out[y * 2 * w + xx] = (1.0 - fy) * ((1.0 - fx) * v(y0, x0) + fx * v(y0, x1))
                    + fy * ((1.0 - fx) * v(y1, x0) + fx * v(y1, x1));
            }
        }
        out
    }

    #[test]
    fn upsample_matches_direct_bilinear() {
        let (h, w) = (3, 5);
        let data: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 11) as f32 - 3.0).collect();
        let t = Tensor::from_vec(data.clone(), (1, 1, h, w), &Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let up: Vec<f32> = upsample2x(&t)
            .and_then(|u| u.flatten_all()?.to_vec1())
            .unwrap_or_else(|e| panic!("{e}"));
        let want = reference(&data, h, w);
        for (a, b) in up.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn paper_config_is_valid_and_default_is_small() {
        ModelConfig::paper().validate().unwrap_or_else(|e| panic!("{e}"));
        let dev = Device::Cpu;
        let (_, small) = build(&ModelConfig::default(), 0, &dev).unwrap_or_else(|e| panic!("{e}"));
        let n = parameter_count(&small);
        assert!(n < 2_000_000, "{n} parameters");
    }
}
