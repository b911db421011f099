//! Saving and loading the network (and training checkpoints) as safetensors with JSON metadata.

use crate::error::{CssError, Result};
use crate::model::{CssNet, ModelConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The format tag of CSS weight files.
pub const FORMAT: &str = "autolabel-css-1";

/// What a weights file says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// [`FORMAT`].
    pub format: String,
    /// The architecture.
    pub model: ModelConfig,
    /// Free-form training record (config, steps, time, final losses, or a checkpoint's step).
    pub training: serde_json::Value,
}

fn weights_err(path: &Path, message: impl Into<String>) -> CssError {
    CssError::Weights {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Writes `tensors` and `meta` to `path` atomically (temporary file, then rename). Names are
/// written in sorted order and the metadata under one key, so equal inputs give equal bytes.
pub fn save_tensors(path: &Path, tensors: &BTreeMap<String, Tensor>, meta: &Metadata) -> Result<()> {
    save_with_metadata(path, tensors, meta)
}

/// Reads every tensor and the metadata of `path`.
pub fn load_tensors(path: &Path, device: &Device) -> Result<(BTreeMap<String, Tensor>, Metadata)> {
    let (tensors, meta): (_, Metadata) = load_with_metadata(path, device, "CSS")?;
    if meta.format != FORMAT {
        return Err(weights_err(
            path,
            format!("format {} is not {FORMAT}", meta.format),
        ));
    }
    Ok((tensors, meta))
}

/// The weight-file format of every network of the project (CSS, the refinement network): f32
/// tensors in safetensors, and `meta` (any serialisable record) as JSON under the one metadata key
/// `autolabel`. Written atomically (temporary file, then rename), names in sorted order, so equal
/// inputs give equal bytes.
pub fn save_with_metadata<M: Serialize>(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    meta: &M,
) -> Result<()> {
    let json = serde_json::to_string(meta).map_err(|e| weights_err(path, e.to_string()))?;
    let info = HashMap::from([("autolabel".to_owned(), json)]);
    let data: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, t)| {
            let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
            let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            Ok((k.clone(), bytes, t.dims().to_vec()))
        })
        .collect::<Result<_>>()?;
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(k, b, dims)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, dims.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| weights_err(path, e.to_string()))
        })
        .collect::<Result<_>>()?;
    let bytes = safetensors::serialize(views, Some(info)).map_err(|e| weights_err(path, e.to_string()))?;
    kitti::io::write_atomic(path, &bytes).map_err(|e| weights_err(path, e.to_string()))
}

/// Reads a file of [`save_with_metadata`]: every tensor and the metadata as `M`. `kind` names
/// the network in the error for a file without our metadata ("not a {kind} weights file").
pub fn load_with_metadata<M: DeserializeOwned>(
    path: &Path,
    device: &Device,
    kind: &str,
) -> Result<(BTreeMap<String, Tensor>, M)> {
    let bytes = std::fs::read(path).map_err(|e| weights_err(path, e.to_string()))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| weights_err(path, e.to_string()))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("autolabel"))
        .ok_or_else(|| {
            weights_err(
                path,
                format!("no `autolabel` metadata: not a {kind} weights file"),
            )
        })?;
    let meta: M = serde_json::from_str(json)
        .map_err(|e| weights_err(path, format!("not a {kind} weights file: {e}")))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| weights_err(path, e.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(weights_err(path, format!("{name} is not f32")));
        }
        let v: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.insert(name.clone(), Tensor::from_vec(v, view.shape().to_vec(), device)?);
    }
    Ok((tensors, meta))
}

/// The network's variables by name.
pub fn variables(varmap: &VarMap) -> Result<BTreeMap<String, Tensor>> {
    Ok(crate::model::sorted_vars(varmap)?
        .into_iter()
        .map(|(k, v)| (k, v.as_tensor().clone()))
        .collect())
}

/// Sets every variable of `varmap` to its tensor in `tensors` (each must be present, with the
/// variable's shape); `path` names the weights file in the errors.
pub fn assign(varmap: &VarMap, tensors: &BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
    for (name, var) in crate::model::sorted_vars(varmap)? {
        let t = tensors
            .get(&name)
            .ok_or_else(|| weights_err(path, format!("missing tensor {name}")))?;
        if t.dims() != var.dims() {
            return Err(weights_err(
                path,
                format!("{name}: shape {:?}, expected {:?}", t.dims(), var.dims()),
            ));
        }
        var.set(t)?;
    }
    Ok(())
}

/// Builds a network from `tensors` (every variable must be present with its shape).
pub fn network_from(
    config: &ModelConfig,
    tensors: &BTreeMap<String, Tensor>,
    device: &Device,
    path: &Path,
) -> Result<(CssNet, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let net = CssNet::new(config, vb)?;
    assign(&varmap, tensors, path)?;
    Ok((net, varmap))
}

/// Starting weights for a network of architecture `config` taken from another network's
/// `tensors` (a trained body under a new head): every variable found there with its shape is
/// copied; a weight matrix whose inputs grew (same rows, more columns: `box_input` turned on) keeps
/// its trained columns and starts with zeros in the new ones, so the network first computes what it
/// did (likewise the latent head's first weights when `latent_spatial` is turned on: each channel's
/// weight spread evenly over its positions, so the head first computes the mean-pooling one's
/// output); the others keep their values seeded with `seed`. Returns the variables and the names of
/// those not taken from `tensors` (a widened matrix counts as taken).
pub fn warm_start(
    config: &ModelConfig,
    tensors: &BTreeMap<String, Tensor>,
    seed: u64,
    device: &Device,
) -> Result<(VarMap, Vec<String>)> {
    let (_, varmap) = crate::model::build(config, seed, device)?;
    let mut fresh = Vec::new();
    for (name, var) in crate::model::sorted_vars(&varmap)? {
        match tensors.get(&name) {
            Some(t) if t.dims() == var.dims() => var.set(t)?,
            Some(t) if name == LATENT_HIDDEN && config.latent_spatial && t.rank() == 2 => {
                var.set(&spread_over_positions(t, config)?)?;
            }
            Some(t)
                if t.rank() == 2
                    && var.rank() == 2
                    && t.dim(0)? == var.dim(0)?
                    && t.dim(1)? < var.dim(1)? =>
            {
                let extra = Tensor::zeros((t.dim(0)?, var.dim(1)? - t.dim(1)?), t.dtype(), t.device())?;
                var.set(&Tensor::cat(&[t, &extra], 1)?)?;
            }
            _ => fresh.push(name),
        }
    }
    Ok((varmap, fresh))
}

/// Name of the latent head's first weight matrix.
const LATENT_HIDDEN: &str = "latent.hidden.weight";

/// The latent head's first weights of a mean-pooling network (`[R, C (+ box)]`) spread over the
/// `P` positions a spatial head reads (`[R, C·P (+ box)]`, channel-major as `flatten_from(1)`
/// lays them out): each channel's column divided by `P` at each of its positions, so the spatial
/// head first computes the mean-pooling head's output. Box columns, when the source has them, are
/// kept; when it lacks them they start at zero.
fn spread_over_positions(t: &Tensor, config: &ModelConfig) -> Result<Tensor> {
    let channels = config.widths[2];
    let positions = config.latent_positions();
    let rows = t.dim(0)?;
    let boxes = if config.box_input {
        crate::data::BOX_FEATURES
    } else {
        0
    };
    let source_boxes = t.dim(1)?.checked_sub(channels).filter(|b| *b == 0 || *b == boxes);
    let Some(source_boxes) = source_boxes else {
        return Err(CssError::InvalidInput(format!(
            "{LATENT_HIDDEN}: {:?} is not the weight of a mean-pooling head over {channels} channels",
            t.dims()
        )));
    };
    let mean = t.narrow(1, 0, channels)?;
    let spread = (mean
        .unsqueeze(2)?
        .broadcast_as((rows, channels, positions))?
        .contiguous()?
        .reshape((rows, channels * positions))?
        / positions as f64)?;
    let mut parts = vec![spread];
    if boxes > 0 {
        parts.push(if source_boxes > 0 {
            t.narrow(1, channels, boxes)?
        } else {
            Tensor::zeros((rows, boxes), t.dtype(), t.device())?
        });
    }
    Ok(Tensor::cat(&parts, 1)?)
}

/// Saves a trained network.
pub fn save(path: &Path, varmap: &VarMap, model: &ModelConfig, training: serde_json::Value) -> Result<()> {
    let meta = Metadata {
        format: FORMAT.to_owned(),
        model: model.clone(),
        training,
    };
    save_tensors(path, &variables(varmap)?, &meta)
}

/// Loads a trained network.
pub fn load(path: &Path, device: &Device) -> Result<(CssNet, VarMap, Metadata)> {
    let (tensors, meta) = load_tensors(path, device)?;
    let (net, varmap) = network_from(&meta.model, &tensors, device, path)?;
    Ok((net, varmap, meta))
}
