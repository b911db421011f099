//! The colour of a decoded surface for the monocular mode's pixel loss (METHODS.md §2, "texture").
//!
//! MonoDR decodes colour from a texture latent. We learn less and estimate more: a **material
//! atlas** — for every point of the canonical cube, the probability that a car's surface there is
//! body paint, glass, tyre or lamp — fitted on the synthetic library's meshes (the statistics of
//! where windows, wheels and lights sit on KITTI-sized cars), and per object a **palette** of four
//! colours (one per material) estimated from its image by the optimiser. A surfel's colour is
//! `Σ_k P_k(p) · palette_k`. The palette plays the texture latent's part (a low-dimensional
//! appearance code), but is linear, so it can be initialised from the image and fitted in closed
//! form or with the pose; the atlas is the trained part.
//!
//! Fitting: area-weighted random points on every training mesh's triangles, in the canonical frame
//! of [`crate::samples::Normalisation`], splatted trilinearly into a grid of `cells + 1` nodes per
//! axis; each node's counts are smoothed towards the library-wide material frequencies
//! (`prior_weight` pseudo-samples) and normalised. Lookup is trilinear, outside the cube clamped.

use crate::error::{DeepSdfError, Result};
use crate::samples::Normalisation;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use sim::mesh::{Material, TriMesh};
use std::path::Path;

/// Number of materials (in [`Material::ALL`] order: body, window, wheel, light).
pub const MATERIALS: usize = 4;

/// Settings of [`MaterialAtlas::fit`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AtlasConfig {
    /// Grid cells per axis over [−1, 1]³.
    pub cells: usize,
    /// Random surface points per mesh.
    pub samples_per_shape: usize,
    /// Pseudo-samples of the library-wide frequencies added at every node.
    pub prior_weight: f32,
    /// Metres per canonical unit (the shape prior's).
    pub metres_per_unit: f32,
    /// Seed of the surface points.
    pub seed: u64,
}

impl Default for AtlasConfig {
    fn default() -> Self {
        AtlasConfig {
            cells: 16,
            samples_per_shape: 4000,
            prior_weight: 2.0,
            metres_per_unit: crate::samples::DEFAULT_METRES_PER_UNIT,
            seed: 0,
        }
    }
}

/// Material probabilities over the canonical cube.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaterialAtlas {
    /// Cells per axis (nodes per axis = cells + 1).
    pub cells: usize,
    /// Meshes it was fitted on.
    pub shapes: usize,
    /// The settings it was fitted with.
    pub config: AtlasConfig,
    /// Library-wide frequency of each material.
    pub frequencies: [f32; MATERIALS],
    /// Probabilities per node, x fastest, then y, then z.
    pub nodes: Vec<[f32; MATERIALS]>,
}

fn material_index(m: Material) -> usize {
    match m {
        Material::Body => 0,
        Material::Window => 1,
        Material::Wheel => 2,
        Material::Light => 3,
    }
}

/// Trilinear corner weights of canonical point `p` on a grid of `cells` cells over [−1, 1]³:
/// the eight (node index, weight) pairs.
fn corners(cells: usize, p: [f32; 3]) -> [(usize, f32); 8] {
    let n = cells + 1;
    let mut base = [0usize; 3];
    let mut frac = [0f32; 3];
    for k in 0..3 {
        let g = ((p[k].clamp(-1.0, 1.0) + 1.0) * 0.5 * cells as f32).clamp(0.0, cells as f32);
        let i = (g.floor() as usize).min(cells - 1);
        base[k] = i;
        frac[k] = g - i as f32;
    }
    std::array::from_fn(|c| {
        let d = [c & 1, (c >> 1) & 1, (c >> 2) & 1];
        let w: f32 = (0..3)
            .map(|k| if d[k] == 1 { frac[k] } else { 1.0 - frac[k] })
            .product();
        let idx = (base[0] + d[0]) + n * ((base[1] + d[1]) + n * (base[2] + d[2]));
        (idx, w)
    })
}

impl MaterialAtlas {
    /// Fits the atlas on `meshes` (model frame, metres, with materials). Errors: no mesh, a grid of
    /// no cells.
    pub fn fit(meshes: &[TriMesh], config: &AtlasConfig) -> Result<Self> {
        if meshes.is_empty() {
            return Err(DeepSdfError::Empty("a material atlas needs meshes".into()));
        }
        if config.cells == 0 || config.samples_per_shape == 0 {
            return Err(DeepSdfError::InvalidInput(format!("atlas settings {config:?}")));
        }
        let n = config.cells + 1;
        let mut counts = vec![[0f64; MATERIALS]; n * n * n];
        let mut totals = [0f64; MATERIALS];
        let mut rng = StdRng::seed_from_u64(config.seed);
        for mesh in meshes {
            let norm = Normalisation::for_mesh(mesh, config.metres_per_unit)?;
            let areas: Vec<f64> = (0..mesh.triangles.len())
                .map(|t| {
                    let [a, b, c] = mesh.corners(t);
                    f64::from((b - a).cross(&(c - a)).norm() * 0.5)
                })
                .collect();
            let mut cumulative = Vec::with_capacity(areas.len());
            let mut acc = 0.0;
            for a in &areas {
                acc += a;
                cumulative.push(acc);
            }
            if acc <= 0.0 {
                continue;
            }
            for _ in 0..config.samples_per_shape {
                let r = rng.random_range(0.0..acc);
                let t = cumulative.partition_point(|&c| c < r).min(areas.len() - 1);
                let [a, b, c] = mesh.corners(t);
                let (mut r1, mut r2): (f32, f32) = (rng.random(), rng.random());
                if r1 + r2 > 1.0 {
                    (r1, r2) = (1.0 - r1, 1.0 - r2);
                }
                let p = a.coords + (b - a) * r1 + (c - a) * r2;
                let q = norm.to_unit([p.x, p.y, p.z]);
                let m = material_index(mesh.materials[t]);
                totals[m] += 1.0;
                for (idx, w) in corners(config.cells, q) {
                    counts[idx][m] += f64::from(w);
                }
            }
        }
        let all: f64 = totals.iter().sum::<f64>().max(1.0);
        let frequencies: [f32; MATERIALS] = std::array::from_fn(|m| (totals[m] / all) as f32);
        let prior = f64::from(config.prior_weight.max(0.0));
        let nodes = counts
            .iter()
            .map(|c| {
                let sum: f64 = c.iter().sum::<f64>() + prior;
                std::array::from_fn(|m| {
                    if sum > 0.0 {
                        ((c[m] + prior * f64::from(frequencies[m])) / sum) as f32
                    } else {
                        frequencies[m]
                    }
                })
            })
            .collect();
        Ok(MaterialAtlas {
            cells: config.cells,
            shapes: meshes.len(),
            config: config.clone(),
            frequencies,
            nodes,
        })
    }

    /// The material probabilities at canonical point `p` (trilinear; sums to 1).
    pub fn weights(&self, p: [f32; 3]) -> [f32; MATERIALS] {
        let mut out = [0f32; MATERIALS];
        for (idx, w) in corners(self.cells, p) {
            let node = self.nodes.get(idx).copied().unwrap_or(self.frequencies);
            for m in 0..MATERIALS {
                out[m] += w * node[m];
            }
        }
        out
    }

    /// The colours of surface points `points` with `palette` (one colour per material).
    pub fn colours(&self, points: &[[f32; 3]], palette: &[[f32; 3]; MATERIALS]) -> Vec<[f32; 3]> {
        points
            .iter()
            .map(|p| {
                let w = self.weights(*p);
                std::array::from_fn(|ch| (0..MATERIALS).map(|m| w[m] * palette[m][ch]).sum())
            })
            .collect()
    }

    /// Writes the atlas as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self)
            .map_err(|e| DeepSdfError::InvalidInput(format!("atlas to JSON: {e}")))?;
        kitti::io::write_atomic(path, text.as_bytes()).map_err(|e| DeepSdfError::Weights {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads an atlas written by [`MaterialAtlas::save`]. Errors name the file.
    pub fn load(path: &Path) -> Result<Self> {
        let weights_error = |message: String| DeepSdfError::Weights {
            path: path.to_path_buf(),
            message,
        };
        let text = kitti::io::read_text(path).map_err(|e| weights_error(e.to_string()))?;
        let atlas: MaterialAtlas = serde_json::from_str(&text).map_err(|e| weights_error(e.to_string()))?;
        let n = atlas.cells + 1;
        if atlas.cells == 0 || atlas.nodes.len() != n * n * n {
            return Err(weights_error(format!(
                "{} nodes for {} cells per axis",
                atlas.nodes.len(),
                atlas.cells
            )));
        }
        Ok(atlas)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn atlas() -> MaterialAtlas {
        let library = sim::ShapeLibrary::procedural(2020, 8);
        let meshes: Vec<TriMesh> = (0..8).filter_map(|i| library.shape(i)).collect();
        let config = AtlasConfig {
            cells: 8,
            samples_per_shape: 3000,
            ..AtlasConfig::default()
        };
        MaterialAtlas::fit(&meshes, &config).unwrap()
    }

    #[test]
    fn wheels_sit_low_at_the_corners_and_glass_high() {
        let a = atlas();
        assert!(a.frequencies[0] > 0.4, "{:?}", a.frequencies);
        for p in [[0.0, 0.0, 0.0], [0.3, -0.2, 0.5], [2.0, 2.0, 2.0]] {
            let w = a.weights(p);
            assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{w:?}");
        }
        // Canonical +y up, +z front, +x left; the car spans about ±0.75 units in z, ±0.3 in x.
        let wheel = a.weights([0.33, -0.18, 0.5]);
        let roof_side = a.weights([0.3, 0.15, 0.0]);
        assert!(
            wheel[2] > roof_side[2] && wheel[2] > 0.3,
            "{wheel:?} {roof_side:?}"
        );
        assert!(roof_side[1] > wheel[1], "{wheel:?} {roof_side:?}");
    }

    #[test]
    fn colours_mix_the_palette_and_the_atlas_round_trips() {
        let a = atlas();
        let palette = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]];
        let p = [0.1, 0.0, 0.2];
        let w = a.weights(p);
        let c = a.colours(&[p], &palette)[0];
        assert!((c[0] - w[0]).abs() < 1e-6 && (c[1] - w[1]).abs() < 1e-6 && (c[2] - w[2]).abs() < 1e-6);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atlas.json");
        a.save(&path).unwrap();
        assert_eq!(MaterialAtlas::load(&path).unwrap(), a);
        std::fs::write(&path, "{").unwrap();
        let err = MaterialAtlas::load(&path).unwrap_err().to_string();
        assert!(err.contains("atlas.json"), "{err}");
    }
}
