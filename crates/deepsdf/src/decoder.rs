//! The decoder f(z, x) → signed distance: an MLP in candle over the concatenation of a latent code on
//! the unit hypersphere and a point of the canonical frame, with the input re-injected half way (as in
//! DeepSDF) and a tanh output.
//!
//! Hidden activations are SiLU rather than DeepSDF's ReLU: the surface normals (∇ₓf) and the
//! latent Jacobians the optimiser uses are then continuous, and finite-difference checks are exact.

use crate::error::Result;
use candle_core::{D, DType, Device, Tensor, Var};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// Size of the decoder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecoderConfig {
    /// Dimension of the latent code z (on the unit sphere S^{latent_dim − 1}).
    pub latent_dim: usize,
    /// Units per hidden layer.
    pub width: usize,
    /// Number of hidden layers.
    pub depth: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            latent_dim: 8,
            width: 64,
            depth: 4,
        }
    }
}

impl DecoderConfig {
    /// Width of the input: latent plus 3 coordinates.
    pub fn input_dim(&self) -> usize {
        self.latent_dim + 3
    }

    /// The hidden layer that also receives the input (DeepSDF's skip connection).
    pub fn skip_layer(&self) -> usize {
        self.depth / 2
    }

    /// `(in, out)` of every linear layer, the output layer last.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut shapes = Vec::with_capacity(self.depth + 1);
        for k in 0..self.depth {
            let input = if k == 0 {
                self.input_dim()
            } else if k == self.skip_layer() {
                self.width + self.input_dim()
            } else {
                self.width
            };
            shapes.push((input, self.width));
        }
        shapes.push((self.width, 1));
        shapes
    }

    /// Number of trainable weights.
    pub fn parameter_count(&self) -> usize {
        self.layer_shapes().iter().map(|(i, o)| i * o + o).sum()
    }
}

/// The decoder's weights: one `(weight [out, in], bias [out])` pair per layer.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// Its size.
    pub config: DecoderConfig,
    layers: Vec<(Var, Var)>,
}

impl Decoder {
    /// A freshly initialised decoder (uniform ±√(6 / fan_in)·½, biases zero; the output layer small),
    /// deterministic from `seed` (candle's own CPU generator cannot be seeded).
    pub fn new(config: DecoderConfig, seed: u64, device: &Device) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let shapes = config.layer_shapes();
        let last = shapes.len() - 1;
        let mut layers = Vec::with_capacity(shapes.len());
        for (k, &(fan_in, fan_out)) in shapes.iter().enumerate() {
            let bound = if k == last {
                1e-3
            } else {
                (6.0 / fan_in as f64).sqrt() * 0.5
            };
            let w: Vec<f32> = (0..fan_in * fan_out)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            let weight = Var::from_tensor(&Tensor::from_vec(w, (fan_out, fan_in), device)?)?;
            let bias = Var::from_tensor(&Tensor::zeros(fan_out, DType::F32, device)?)?;
            layers.push((weight, bias));
        }
        Ok(Decoder { config, layers })
    }

    /// A decoder from stored layer tensors (`(weight, bias)` per layer, shapes as
    /// [`DecoderConfig::layer_shapes`]).
    pub fn from_tensors(config: DecoderConfig, tensors: Vec<(Tensor, Tensor)>) -> Result<Self> {
        let expected = config.layer_shapes();
        if tensors.len() != expected.len() {
            return Err(crate::error::DeepSdfError::Shape(format!(
                "{} layers stored, the config has {}",
                tensors.len(),
                expected.len()
            )));
        }
        let mut layers = Vec::with_capacity(tensors.len());
        for (k, ((w, b), &(fan_in, fan_out))) in tensors.into_iter().zip(&expected).enumerate() {
            if w.dims() != [fan_out, fan_in] || b.dims() != [fan_out] {
                return Err(crate::error::DeepSdfError::Shape(format!(
                    "layer {k}: weight {:?} and bias {:?}, expected [{fan_out}, {fan_in}] and [{fan_out}]",
                    w.dims(),
                    b.dims()
                )));
            }
            layers.push((Var::from_tensor(&w)?, Var::from_tensor(&b)?));
        }
        Ok(Decoder { config, layers })
    }

    /// Every trainable tensor (for an optimiser).
    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    /// The layer tensors `(weight, bias)`, output layer last.
    pub fn tensors(&self) -> Vec<(Tensor, Tensor)> {
        self.layers
            .iter()
            .map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone()))
            .collect()
    }

    /// f for a batch of inputs `[n, latent_dim + 3]` (unit latent first, then the point) → `[n]`.
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let skip = self.config.skip_layer();
        let last = self.layers.len() - 1;
        let mut h = input.clone();
        for (k, (w, b)) in self.layers.iter().enumerate() {
            if k == skip && k != 0 && k != last {
                h = Tensor::cat(&[&h, input], D::Minus1)?;
            }
            h = h.matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor())?;
            h = if k == last {
                h.tanh()?
            } else {
                candle_nn::ops::silu(&h)?
            };
        }
        Ok(h.squeeze(D::Minus1)?)
    }

    /// The decoder input for one latent and many points: `[n, latent_dim + 3]`, the latent
    /// normalised onto the unit sphere.
    pub fn input_for(latent: &[f32], points: &[[f32; 3]], device: &Device) -> Result<Tensor> {
        let z = normalised(latent);
        let mut data = Vec::with_capacity(points.len() * (z.len() + 3));
        for p in points {
            data.extend_from_slice(&z);
            data.extend_from_slice(p);
        }
        Ok(Tensor::from_vec(data, (points.len(), z.len() + 3), device)?)
    }

    /// f at `points` for one latent (normalised first), plain values.
    pub fn eval(&self, latent: &[f32], points: &[[f32; 3]]) -> Result<Vec<f32>> {
        if points.is_empty() {
            return Ok(Vec::new());
        }
        let device = self.device();
        let input = Decoder::input_for(latent, points, &device)?;
        Ok(self.forward(&input)?.to_vec1()?)
    }

    /// f and its gradient with respect to the whole input (`∂f/∂z` for the `latent_dim` unit-latent
    /// entries, then `∂f/∂x`), for one latent at `points`: `(values, gradients [n][latent_dim + 3])`.
    pub fn eval_with_gradient(
        &self,
        latent: &[f32],
        points: &[[f32; 3]],
    ) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
        if points.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let device = self.device();
        let input = Var::from_tensor(&Decoder::input_for(latent, points, &device)?)?;
        let f = self.forward(input.as_tensor())?;
        let grads = f.sum_all()?.backward()?;
        let g = grads
            .get(input.as_tensor())
            .ok_or_else(|| crate::error::DeepSdfError::Shape("no input gradient".into()))?;
        Ok((f.to_vec1()?, g.to_vec2()?))
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.layers
            .first()
            .map_or(Device::Cpu, |(w, _)| w.as_tensor().device().clone())
    }
}

/// `v / |v|` (a zero vector becomes the first axis).
pub fn normalised(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 1e-12 {
        v.iter().map(|x| x / n).collect()
    } else {
        let mut e = vec![0.0; v.len()];
        if let Some(first) = e.first_mut() {
            *first = 1.0;
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Decoder {
        Decoder::new(
            DecoderConfig {
                latent_dim: 3,
                width: 16,
                depth: 4,
            },
            7,
            &Device::Cpu,
        )
        .unwrap()
    }

    #[test]
    fn shapes_and_parameter_count() {
        let c = DecoderConfig {
            latent_dim: 3,
            width: 16,
            depth: 4,
        };
        assert_eq!(
            c.layer_shapes(),
            vec![(6, 16), (16, 16), (22, 16), (16, 16), (16, 1)]
        );
        assert_eq!(
            c.parameter_count(),
            6 * 16 + 16 + 16 * 16 + 16 + 22 * 16 + 16 + 16 * 16 + 16 + 16 + 1
        );
        let d = small();
        let out = d
            .eval(&[1.0, 0.0, 0.0], &[[0.1, 0.2, 0.3], [0.0, 0.0, 0.0]])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|v| v.abs() < 1.0));
    }

    #[test]
    fn initialisation_is_deterministic() {
        let a = small().eval(&[0.3, 0.4, 0.5], &[[0.1, -0.2, 0.3]]).unwrap();
        let b = small().eval(&[0.3, 0.4, 0.5], &[[0.1, -0.2, 0.3]]).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn input_gradients_match_finite_differences() {
        // Make the function non-trivial: scale up the output layer.
        let d = small();
        let mut t = d.tensors();
        let last = t.len() - 1;
        t[last].0 = (t[last].0.clone() * 400.0).unwrap();
        let d = Decoder::from_tensors(d.config.clone(), t).unwrap();
        let z = normalised(&[0.2, -0.5, 0.7]);
        let p = [0.11f32, -0.23, 0.35];
        let (f, g) = d.eval_with_gradient(&z, &[p]).unwrap();
        assert!(f[0].abs() > 1e-3);
        let h = 1e-3f32;
        for i in 0..6 {
            let mut plus: Vec<f32> = z.iter().copied().chain(p).collect();
            let mut minus = plus.clone();
            plus[i] += h;
            minus[i] -= h;
            let eval = |v: &[f32]| {
                let input = Tensor::from_vec(v.to_vec(), (1, 6), &Device::Cpu).unwrap();
                d.forward(&input).unwrap().to_vec1::<f32>().unwrap()[0]
            };
            let fd = (eval(&plus) - eval(&minus)) / (2.0 * h);
            assert!(
                (fd - g[0][i]).abs() < 2e-3 * (1.0 + fd.abs()),
                "input {i}: analytic {} fd {fd}",
                g[0][i]
            );
        }
    }
}
