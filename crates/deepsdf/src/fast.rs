//! Plain-Rust inference of the decoder for one latent and many points: values, and values with
//! their gradient with respect to the input (latent and point), by a hand-written backward pass.
//!
//! Training uses candle's autograd; inference is the hot loop of surface extraction and fitting,
//! where candle's per-op allocations dominate. Here the latent's share of the first and skip
//! layers is computed once per call, every matrix product is an axpy over contiguous rows (which
//! the compiler vectorises), and points are processed in blocks in parallel — with no reduction
//! across blocks, so results do not depend on the thread count. Agrees with the candle path to
//! float rounding (tested).

use crate::decoder::Decoder;
use crate::error::Result;
use rayon::prelude::*;

/// Points per parallel block.
const BLOCK: usize = 64;

#[derive(Clone, Debug)]
struct Layer {
    /// Row-major `[out][in]`.
    w: Vec<f32>,
    /// Transposed, row-major `[in][out]`.
    wt: Vec<f32>,
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

fn sigmoid(a: f32) -> f32 {
    1.0 / (1.0 + (-a).exp())
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
                let mut wt = vec![0.0; w.len()];
                for o in 0..fan_out {
                    for i in 0..fan_in {
                        wt[i * fan_out + o] = w[o * fan_in + i];
                    }
                }
                Ok(Layer {
                    w,
                    wt,
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
                            .map(|j| l.w[o * l.fan_in + off + j] * z[j])
                            .sum::<f32>();
                    }
                }
                c
            })
            .collect()
    }

    /// Forward pass of one block; returns the output and, if `keep`, every layer's pre-activation.
    fn forward_block(&self, consts: &[Vec<f32>], xs: &[[f32; 3]], keep: bool) -> (Vec<f32>, Vec<Vec<f32>>) {
        let n = xs.len();
        let mut pre_acts = Vec::new();
        let mut h: Vec<f32> = Vec::new(); // [n][width] activations of the previous layer
        let mut width = 0;
        let last = self.layers.len() - 1;
        for (k, l) in self.layers.iter().enumerate() {
            let mut a = vec![0.0f32; n * l.fan_out];
            for p in 0..n {
                let row = &mut a[p * l.fan_out..(p + 1) * l.fan_out];
                row.copy_from_slice(&consts[k]);
                // Hidden inputs.
                if k > 0 {
                    for i in 0..width {
                        let v = h[p * width + i];
                        let wrow = &l.wt[i * l.fan_out..(i + 1) * l.fan_out];
                        for (r, w) in row.iter_mut().zip(wrow) {
                            *r += v * w;
                        }
                    }
                }
                // Point coordinates (layer 0 and the skip layer; the latent part is in `consts`).
                if k == 0 || self.is_skip(k) {
                    let off = if k == 0 {
                        self.latent_dim
                    } else {
                        width + self.latent_dim
                    };
                    for (j, &v) in xs[p].iter().enumerate() {
                        let wrow = &l.wt[(off + j) * l.fan_out..(off + j + 1) * l.fan_out];
                        for (r, w) in row.iter_mut().zip(wrow) {
                            *r += v * w;
                        }
                    }
                }
            }
            if k == last {
                let out = a.iter().map(|v| v.tanh()).collect();
                if keep {
                    pre_acts.push(a);
                }
                return (out, pre_acts);
            }
            h = a.iter().map(|&v| v * sigmoid(v)).collect();
            width = l.fan_out;
            if keep {
                pre_acts.push(a);
            }
        }
        (Vec::new(), pre_acts)
    }

    /// f(z, x) for every point; `latent` must already be on the unit sphere.
    pub fn eval(&self, latent: &[f32], points: &[[f32; 3]]) -> Vec<f32> {
        let consts = self.latent_bias(latent);
        points
            .par_chunks(BLOCK)
            .flat_map_iter(|xs| self.forward_block(&consts, xs, false).0)
            .collect()
    }

    /// f and ∂f/∂(z, x) (`latent_dim + 3` entries, latent first) for every point.
    pub fn eval_with_gradient(&self, latent: &[f32], points: &[[f32; 3]]) -> (Vec<f32>, Vec<Vec<f32>>) {
        let consts = self.latent_bias(latent);
        let dim = self.latent_dim;
        let blocks: Vec<(Vec<f32>, Vec<Vec<f32>>)> = points
            .par_chunks(BLOCK)
            .map(|xs| {
                let (out, pre) = self.forward_block(&consts, xs, true);
                let n = xs.len();
                let last = self.layers.len() - 1;
                let mut grads = vec![vec![0.0f32; dim + 3]; n];
                let max_in = self.layers.iter().map(|l| l.fan_in).max().unwrap_or(0);
                let (mut g, mut gin) = (Vec::with_capacity(max_in), vec![0.0f32; max_in]);
                for p in 0..n {
                    // d out / d pre-activation of the output layer.
                    g.clear();
                    g.push(1.0 - out[p] * out[p]);
                    for k in (0..=last).rev() {
                        let l = &self.layers[k];
                        // Gradient w.r.t. this layer's input vector.
                        let gin = &mut gin[..l.fan_in];
                        gin.fill(0.0);
                        for (o, &go) in g.iter().enumerate() {
                            if go == 0.0 {
                                continue;
                            }
                            let wrow = &l.w[o * l.fan_in..(o + 1) * l.fan_in];
                            for (gi, w) in gin.iter_mut().zip(wrow) {
                                *gi += go * w;
                            }
                        }
                        // Split off the input's share (layer 0 and the skip layer).
                        if k == 0 {
                            for (j, v) in gin.iter().enumerate() {
                                grads[p][j] += v;
                            }
                            break;
                        }
                        let hidden = if self.is_skip(k) {
                            let width = l.fan_in - dim - 3;
                            for (j, v) in gin[width..].iter().enumerate() {
                                grads[p][j] += v;
                            }
                            &gin[..width]
                        } else {
                            &gin[..]
                        };
                        // Through the previous layer's SiLU.
                        let prev = &pre[k - 1];
                        let width = self.layers[k - 1].fan_out;
                        g.clear();
                        g.extend(hidden.iter().enumerate().map(|(i, &gh)| {
                            let a = prev[p * width + i];
                            let s = sigmoid(a);
                            gh * s * (1.0 + a * (1.0 - s))
                        }));
                    }
                }
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
