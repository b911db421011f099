//! A trained shape prior on disk: the decoder weights and the training shapes' latent codes in one
//! safetensors file, with the metadata needed to use it (decoder size, canonical-frame scale, shape
//! names, how it was trained) as JSON under the header key `autolabel`.
//!
//! Tensors: `decoder.{k}.weight` `[out, in]` and `decoder.{k}.bias` `[out]` for every layer `k`
//! (output layer last), `latents` `[shapes, latent_dim]` (unit codes, one row per training shape, in
//! the order of `shape_names`). All f32, little-endian. One metadata key only, so that the file's
//! bytes are reproducible (safetensors writes its metadata map in hash order).

use crate::decoder::{Decoder, DecoderConfig};
use crate::error::{DeepSdfError, Result};
use candle_core::{Device, Tensor};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// What a weights file says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriorMetadata {
    /// File format tag, [`FORMAT`].
    pub format: String,
    /// Decoder size.
    pub decoder: DecoderConfig,
    /// Canonical frame scale: metres per canonical unit (see [`crate::samples::Normalisation`]).
    pub metres_per_unit: f32,
    /// Names of the training shapes, in latent order.
    pub shape_names: Vec<String>,
    /// How it was made (training config, library, sampling, time): free-form JSON.
    pub training: serde_json::Value,
}

/// The current format tag.
pub const FORMAT: &str = "autolabel-deepsdf-1";

/// A decoder with its training latents.
#[derive(Clone, Debug)]
pub struct ShapePrior {
    /// The decoder.
    pub decoder: Decoder,
    /// Unit latent per training shape.
    pub latents: Vec<Vec<f32>>,
    /// Metadata.
    pub meta: PriorMetadata,
}

fn weights_err(path: &Path, message: impl Into<String>) -> DeepSdfError {
    DeepSdfError::Weights {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn bytes_of(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl ShapePrior {
    /// Latent dimension.
    pub fn latent_dim(&self) -> usize {
        self.decoder.config.latent_dim
    }

    /// The normalised mean of the training latents (a neutral starting shape).
    pub fn mean_latent(&self) -> Vec<f32> {
        let dim = self.latent_dim();
        let mut m = vec![0.0f32; dim];
        for z in &self.latents {
            for (a, b) in m.iter_mut().zip(z) {
                *a += b;
            }
        }
        crate::decoder::normalised(&m)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (k, (w, b)) in self.decoder.tensors().iter().enumerate() {
            buffers.push((
                format!("decoder.{k}.weight"),
                w.dims().to_vec(),
                bytes_of(&w.flatten_all()?.to_vec1()?),
            ));
            buffers.push((
                format!("decoder.{k}.bias"),
                b.dims().to_vec(),
                bytes_of(&b.to_vec1()?),
            ));
        }
        let flat: Vec<f32> = self.latents.iter().flatten().copied().collect();
        buffers.push((
            "latents".into(),
            vec![self.latents.len(), self.latent_dim()],
            bytes_of(&flat),
        ));
        let views = buffers
            .iter()
            .map(|(name, shape, data)| {
                TensorView::new(Dtype::F32, shape.clone(), data)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| DeepSdfError::Shape(format!("{name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let meta = serde_json::to_string(&self.meta).map_err(|e| DeepSdfError::Shape(e.to_string()))?;
        let info = HashMap::from([("autolabel".to_string(), meta)]);
        safetensors::serialize(views, Some(info)).map_err(|e| DeepSdfError::Shape(e.to_string()))
    }

    /// Writes the prior atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        kitti::io::write_atomic(path, &bytes).map_err(|e| weights_err(path, e.to_string()))
    }

    /// Reads a prior written by [`ShapePrior::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| DeepSdfError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses a prior; `path` only names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| weights_err(path, format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| weights_err(path, format!("unreadable header: {e}")))?;
        let meta_text = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("autolabel"))
            .ok_or_else(|| weights_err(path, "no `autolabel` metadata: not an autolabel shape prior"))?;
        let meta: PriorMetadata =
            serde_json::from_str(meta_text).map_err(|e| weights_err(path, format!("bad metadata: {e}")))?;
        if meta.format != FORMAT {
            return Err(weights_err(
                path,
                format!("format {:?}, expected {FORMAT:?}", meta.format),
            ));
        }
        let tensor = |name: &str| -> Result<Tensor> {
            let view = st
                .tensor(name)
                .map_err(|e| weights_err(path, format!("tensor {name}: {e}")))?;
            if view.dtype() != Dtype::F32 {
                return Err(weights_err(
                    path,
                    format!("tensor {name} is {:?}, expected F32", view.dtype()),
                ));
            }
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(Tensor::from_vec(data, view.shape(), &Device::Cpu)?)
        };
        let layers = meta.decoder.layer_shapes().len();
        let tensors = (0..layers)
            .map(|k| {
                Ok((
                    tensor(&format!("decoder.{k}.weight"))?,
                    tensor(&format!("decoder.{k}.bias"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder = Decoder::from_tensors(meta.decoder.clone(), tensors)
            .map_err(|e| weights_err(path, e.to_string()))?;
        let latents: Vec<Vec<f32>> = tensor("latents")?.to_vec2()?;
        if latents.len() != meta.shape_names.len()
            || latents.iter().any(|z| z.len() != meta.decoder.latent_dim)
        {
            return Err(weights_err(
                path,
                format!(
                    "{} latents for {} shape names (latent_dim {})",
                    latents.len(),
                    meta.shape_names.len(),
                    meta.decoder.latent_dim
                ),
            ));
        }
        Ok(ShapePrior {
            decoder,
            latents,
            meta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prior() -> ShapePrior {
        let config = DecoderConfig {
            latent_dim: 3,
            width: 8,
            depth: 2,
        };
        ShapePrior {
            decoder: Decoder::new(config.clone(), 1, &Device::Cpu).unwrap(),
            latents: vec![vec![1.0, 0.0, 0.0], vec![0.0, 0.6, 0.8]],
            meta: PriorMetadata {
                format: FORMAT.into(),
                decoder: config,
                metres_per_unit: 2.75,
                shape_names: vec!["a".into(), "b".into()],
                training: serde_json::json!({"steps": 3}),
            },
        }
    }

    #[test]
    fn save_load_round_trip_is_exact_and_bytes_are_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.safetensors");
        let p = prior();
        p.save(&path).unwrap();
        let q = ShapePrior::load(&path).unwrap();
        assert_eq!(q.latents, p.latents);
        assert_eq!(q.meta, p.meta);
        let x = [[0.1f32, 0.2, 0.3]];
        assert_eq!(
            q.decoder.eval(&p.latents[1], &x).unwrap(),
            p.decoder.eval(&p.latents[1], &x).unwrap()
        );
        assert_eq!(p.to_bytes().unwrap(), q.to_bytes().unwrap());
    }

    #[test]
    fn bad_files_are_typed_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        std::fs::write(&path, b"definitely not safetensors").unwrap();
        let err = ShapePrior::load(&path).unwrap_err();
        assert!(
            matches!(err, DeepSdfError::Weights { .. }) && err.to_string().contains("bad.safetensors"),
            "{err}"
        );
        assert!(matches!(
            ShapePrior::load(&dir.path().join("missing")).unwrap_err(),
            DeepSdfError::Io { .. }
        ));
    }
}
