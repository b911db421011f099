//! Plain-Rust inference of the decoder for one latent and many points: values, and values with
//! their gradient with respect to the input (latent and point), by a hand-written backward pass.
//!
//! Training uses candle's autograd; inference is the hot loop of surface extraction and fitting,
//! where candle's per-op allocations dominate. Here the latent's share of the first and skip
//! layers is computed once per call, each block of points goes through the layers as dense matrix
//! products (ndarray → matrixmultiply's packed sgemm kernels), forward and backward, and blocks run
//! in parallel — with no reduction across blocks, so results do not depend on the thread count.
//! Agrees with the candle path to float rounding (tested).

use crate::decoder::Decoder;
use crate::error::Result;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, s};
use rayon::prelude::*;

/// Every hidden layer's pre-activation and its sigmoid, `[n, width]` each.
type Activations = Vec<(Array2<f32>, Array2<f32>)>;

/// Points per parallel block.
const BLOCK: usize = 128;

#[derive(Clone, Debug)]
struct Layer {
    /// `[out, in]`.
    w_mat: Array2<f32>,
    b: Vec<f32>,
    fan_in: usize,
    fan_out: usize,
}

/// The decoder's weights as plain arrays.
#[derive(Clone, Debug)]
pub struct FastDecoder {
    layers: Vec<Layer>,
    latent_dim: usize,
    skip: usize,
}

/// e^x to ~1 ulp (Cephes' expf: x = n·ln 2 + r, a degree-7 polynomial in r, 2^n from the exponent
/// bits), branch-free so that the activation loops vectorise; libm's `exp` was about half of the
/// decoder's run time.
#[inline]
fn exp_fast(x: f32) -> f32 {
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer in f32 arithmetic.
    const ROUND: f32 = 12_582_912.0;
    #[allow(
        clippy::manual_clamp,
        reason = "max/min vectorise; clamp's NaN checks did not"
    )]
    let x = x.max(-87.0).min(88.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    // n as an integer without a (saturating, scalar) float → int cast: t's low mantissa bits.
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits());
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    f32::from_bits(n_int.wrapping_add(127) << 23) * y
}

/// σ(a) into `sig` and a·σ(a) into `act`, in lanes of 8 so that the compiler vectorises the loop.
fn silu(a: &[f32], sig: &mut [f32], act: &mut [f32]) {
    const LANES: usize = 8;
    let mut a8 = a.chunks_exact(LANES);
    let mut s8 = sig.chunks_exact_mut(LANES);
    let mut h8 = act.chunks_exact_mut(LANES);
    for ((a, s), h) in (&mut a8).zip(&mut s8).zip(&mut h8) {
        let mut e = [0.0f32; LANES];
        for i in 0..LANES {
            e[i] = exp_fast(-a[i]);
        }
        for i in 0..LANES {
            s[i] = 1.0 / (1.0 + e[i]);
            h[i] = a[i] * s[i];
        }
    }
    for ((a, s), h) in a8
        .remainder()
        .iter()
        .zip(s8.into_remainder())
        .zip(h8.into_remainder())
    {
        *s = 1.0 / (1.0 + exp_fast(-a));
        *h = a * *s;
    }
}

impl FastDecoder {
    /// Copies the weights out of `decoder`.
    pub fn new(decoder: &Decoder) -> Result<Self> {
        let layers = decoder
            .tensors()
            .iter()
            .map(|(w, b)| {
                let (fan_out, fan_in) = w.dims2()?;
                let w: Vec<f32> = w.flatten_all()?.to_vec1()?;
                let w_mat = Array2::from_shape_vec((fan_out, fan_in), w)
                    .map_err(|e| crate::error::DeepSdfError::Shape(e.to_string()))?;
                Ok(Layer {
                    w_mat,
                    b: b.to_vec1()?,
                    fan_in,
                    fan_out,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FastDecoder {
            layers,
            latent_dim: decoder.config.latent_dim,
            skip: decoder.config.skip_layer(),
        })
    }

    /// The latent size the decoder was trained with.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn is_skip(&self, k: usize) -> bool {
        k == self.skip && k != 0 && k + 1 != self.layers.len()
    }

    /// The constant part of layers 0 and the skip layer for latent `z`: bias + W_z·z.
    fn latent_bias(&self, z: &[f32]) -> Vec<Vec<f32>> {
        self.layers
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let mut c = l.b.clone();
                let offset = if k == 0 {
                    Some(0)
                } else if self.is_skip(k) {
                    Some(l.fan_in - self.latent_dim - 3)
                } else {
                    None
                };
                if let Some(off) = offset {
                    for (o, c) in c.iter_mut().enumerate() {
                        *c += (0..self.latent_dim)
                            .map(|j| l.w_mat[(o, off + j)] * z[j])
                            .sum::<f32>();
                    }
                }
                c
            })
            .collect()
    }

    /// Forward pass of one block: the output, and every hidden layer's pre-activation and its
    /// sigmoid `[n, fan_out]` (for the backward pass).
    fn forward_block(&self, consts: &[Vec<f32>], xs: &[[f32; 3]]) -> (Vec<f32>, Activations) {
        let n = xs.len();
        let x = Array2::from_shape_vec((n, 3), xs.concat()).unwrap_or_else(|_| Array2::zeros((n, 3)));
        let last = self.layers.len() - 1;
        let mut pre = Vec::with_capacity(self.layers.len());
        let mut h: Option<Array2<f32>> = None;
        for (k, l) in self.layers.iter().enumerate() {
            // Every row starts as the layer's constant part (bias + latent share).
            let mut init = Vec::with_capacity(n * l.fan_out);
            for _ in 0..n {
                init.extend_from_slice(&consts[k]);
            }
            let mut a = Array2::from_shape_vec((n, l.fan_out), init)
                .unwrap_or_else(|_| Array2::zeros((n, l.fan_out)));
            if let Some(h) = &h {
                let wh = l.w_mat.slice(s![.., ..h.ncols()]);
                general_mat_mul(1.0, h, &wh.t(), 1.0, &mut a);
            }
            if k == 0 || self.is_skip(k) {
                let off = if k == 0 { self.latent_dim } else { l.fan_in - 3 };
                let wx = l.w_mat.slice(s![.., off..off + 3]);
                general_mat_mul(1.0, &x, &wx.t(), 1.0, &mut a);
            }
            if k == last {
                let out = a.iter().map(|v| v.tanh()).collect();
                return (out, pre);
            }
            // Plain slice loops: these vectorise (ndarray's index-mapped iterators did not).
            let a_flat: &[f32] = a.as_slice().unwrap_or(&[]);
            let mut sig = vec![0.0f32; a_flat.len()];
            let mut act = vec![0.0f32; a_flat.len()];
            silu(a_flat, &mut sig, &mut act);
            let shape = (n, l.fan_out);
            h = Some(Array2::from_shape_vec(shape, act).unwrap_or_else(|_| Array2::zeros(shape)));
            pre.push((
                a,
                Array2::from_shape_vec(shape, sig).unwrap_or_else(|_| Array2::zeros(shape)),
            ));
        }
        (Vec::new(), pre)
    }

    /// f(z, x) for every point; `latent` must already be on the unit sphere.
    pub fn eval(&self, latent: &[f32], points: &[[f32; 3]]) -> Vec<f32> {
        let consts = self.latent_bias(latent);
        points
            .par_chunks(BLOCK)
            .flat_map_iter(|xs| self.forward_block(&consts, xs).0)
            .collect()
    }

    /// f and ∂f/∂(z, x) (`latent_dim + 3` entries, latent first) for every point.
    pub fn eval_with_gradient(&self, latent: &[f32], points: &[[f32; 3]]) -> (Vec<f32>, Vec<Vec<f32>>) {
        let consts = self.latent_bias(latent);
        let dim = self.latent_dim;
        let blocks: Vec<(Vec<f32>, Vec<Vec<f32>>)> = points
            .par_chunks(BLOCK)
            .map(|xs| {
                let (out, pre) = self.forward_block(&consts, xs);
                let n = xs.len();
                let last = self.layers.len() - 1;
                let mut grads = Array2::<f32>::zeros((n, dim + 3));
                // d out / d pre-activation of the output layer.
                let mut g = Array2::from_shape_vec((n, 1), out.iter().map(|o| 1.0 - o * o).collect())
                    .unwrap_or_else(|_| Array2::zeros((n, 1)));
                for k in (0..=last).rev() {
                    let l = &self.layers[k];
                    // Gradient w.r.t. this layer's input vectors: G · W.
                    let gin = g.dot(&l.w_mat);
                    if k == 0 {
                        grads += &gin;
                        break;
                    }
                    let width = self.layers[k - 1].fan_out;
                    if self.is_skip(k) {
                        grads += &gin.slice(s![.., width..]);
                    }
                    // Through the previous layer's SiLU: d(a·σ(a))/da = σ(1 + a(1 − σ)).
                    let (a, sig) = &pre[k - 1];
                    let mut next = gin.slice(s![.., ..width]).as_standard_layout().into_owned();
                    if let (Some(g), Some(a), Some(sg)) = (next.as_slice_mut(), a.as_slice(), sig.as_slice())
                    {
                        for ((g, &a), &s) in g.iter_mut().zip(a).zip(sg) {
                            *g *= s * (1.0 + a * (1.0 - s));
                        }
                    }
                    g = next;
                }
                let grads: Vec<Vec<f32>> = grads.outer_iter().map(|r| r.to_vec()).collect();
                (out, grads)
            })
            .collect();
        let mut values = Vec::with_capacity(points.len());
        let mut gradients = Vec::with_capacity(points.len());
        for (v, g) in blocks {
            values.extend(v);
            gradients.extend(g);
        }
        (values, gradients)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_fast_is_accurate() {
        let mut worst = 0.0f64;
        for i in -8000..=8000 {
            let x = i as f32 * 0.01;
            let want = f64::from(x).exp();
            worst = worst.max(((f64::from(exp_fast(x)) - want) / want).abs());
        }
        assert!(worst < 3e-7, "relative error {worst:e}");
        assert!(exp_fast(-200.0) < 1e-37 && exp_fast(200.0) > 1e38);
    }
    use crate::decoder::{DecoderConfig, normalised};
    use candle_core::Device;

    #[test]
    fn agrees_with_candle_on_values_and_gradients() {
        let d = Decoder::new(
            DecoderConfig {
                latent_dim: 5,
                width: 24,
                depth: 4,
            },
            3,
            &Device::Cpu,
        )
        .unwrap();
        // Make the output layer large enough that tanh is not linear.
        let mut t = d.tensors();
        let last = t.len() - 1;
        t[last].0 = (t[last].0.clone() * 300.0).unwrap();
        let d = Decoder::from_tensors(d.config.clone(), t).unwrap();
        let fast = FastDecoder::new(&d).unwrap();
        let z = normalised(&[0.3, -0.2, 0.5, 0.1, 0.7]);
        let pts: Vec<[f32; 3]> = (0..150)
            .map(|i| {
                let t = i as f32 * 0.1;
                [t.sin() * 0.8, (1.7 * t).cos() * 0.5, (0.3 * t).sin()]
            })
            .collect();
        let (fc, gc) = d.eval_with_gradient(&z, &pts).unwrap();
        let (ff, gf) = fast.eval_with_gradient(&z, &pts);
        assert_eq!(ff, fast.eval(&z, &pts));
        for i in 0..pts.len() {
            assert!((fc[i] - ff[i]).abs() < 1e-5, "value {i}: {} vs {}", fc[i], ff[i]);
            for j in 0..8 {
                assert!(
                    (gc[i][j] - gf[i][j]).abs() < 1e-4 * (1.0 + gc[i][j].abs()),
                    "grad {i},{j}: {} vs {}",
                    gc[i][j],
                    gf[i][j]
                );
            }
        }
        assert!(fc.iter().any(|v| v.abs() > 0.05), "test function too flat");
    }
}
