//! Surface points of a decoded shape by 0-isosurface projection, coarse to fine.
//!
//! 1. Evaluate f at the centres of a coarse grid of cells over [−1, 1]³ and keep the cells whose
//!    |f| is below `keep_factor` × their half diagonal (the surface may pass through them).
//! 2. Split every kept cell into 2³ children and repeat, `levels` times — only cells near the
//!    surface are ever evaluated, never a dense fine grid.
//! 3. Project the centres x of the finest kept cells onto the surface, p = x − f(x)·n(x) with
//!    n = ∇ₓf/|∇ₓf| (analytic input gradients, by the hand-written backward pass of [`crate::fast`]), and keep the points whose |f(p)| is below
//!    `max_residual_units`.
//!
//! Returns points, unit normals and NOCS ((p + 1)/2) in canonical units, and on request the Jacobian
//! of every point with respect to the latent code: ∂p/∂c = −n ⊗ ∂f/∂c, with the normal held fixed as
//! in SDFLabel (the f·∂n/∂c term vanishes on the surface), chained through the code's
//! normalisation c ↦ c/|c| so that it is the derivative with respect to the code as given.

use crate::decoder::{Decoder, normalised};
use crate::error::Result;
use crate::fast::FastDecoder;
use serde::{Deserialize, Serialize};

/// Settings of the extraction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SurfaceConfig {
    /// Cells per axis of the coarse grid over [−1, 1]³.
    pub coarse_cells: usize,
    /// Number of 2× refinements of the cells near the surface.
    pub levels: usize,
    /// A cell is kept when |f(centre)| < keep_factor × half its diagonal.
    pub keep_factor: f32,
    /// Projected points with |f(p)| above this are dropped, canonical units.
    pub max_residual_units: f32,
}

impl Default for SurfaceConfig {
    fn default() -> Self {
        SurfaceConfig {
            coarse_cells: 8,
            levels: 2,
            keep_factor: 1.1,
            max_residual_units: 0.01,
        }
    }
}

/// Surface samples of one decoded shape, canonical units.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Surface {
    /// Points on the 0-isosurface.
    pub points: Vec<[f32; 3]>,
    /// Outward unit normals.
    pub normals: Vec<[f32; 3]>,
    /// NOCS colours, (p + 1)/2.
    pub nocs: Vec<[f32; 3]>,
    /// With [`extract_surface`]'s `with_jacobian`: ∂p/∂c per point, row-major 3 × latent_dim
    /// (`jacobian[i][r * latent_dim + k]` = ∂p_r/∂c_k); empty otherwise.
    pub jacobian: Vec<Vec<f32>>,
}

impl Surface {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there is no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// The centres of the cells near the surface after the coarse-to-fine search, and the finest cell size.
pub fn near_surface_cells(
    decoder: &Decoder,
    latent: &[f32],
    config: &SurfaceConfig,
) -> Result<(Vec<[f32; 3]>, f32)> {
    let fast = FastDecoder::new(decoder)?;
    check_latent(&fast, latent)?;
    Ok(cells_near_surface(&fast, &normalised(latent), config))
}

fn cells_near_surface(fast: &FastDecoder, unit: &[f32], config: &SurfaceConfig) -> (Vec<[f32; 3]>, f32) {
    let n = config.coarse_cells.max(1);
    let mut size = 2.0 / n as f32;
    let mut centres: Vec<[f32; 3]> = Vec::with_capacity(n * n * n);
    for k in 0..n {
        for j in 0..n {
            for i in 0..n {
                let c = |v: usize| -1.0 + (v as f32 + 0.5) * size;
                centres.push([c(i), c(j), c(k)]);
            }
        }
    }
    for level in 0..=config.levels {
        let f = fast.eval(unit, &centres);
        let limit = config.keep_factor * size * 3f32.sqrt() / 2.0;
        let kept: Vec<[f32; 3]> = centres
            .iter()
            .zip(&f)
            .filter(|(_, v)| v.abs() < limit)
            .map(|(c, _)| *c)
            .collect();
        if level == config.levels {
            return (kept, size);
        }
        let q = size / 4.0;
        centres = kept
            .iter()
            .flat_map(|c| {
                (0..8).map(move |o| {
                    let s = |bit: usize| if o >> bit & 1 == 1 { q } else { -q };
                    [c[0] + s(0), c[1] + s(1), c[2] + s(2)]
                })
            })
            .collect();
        size /= 2.0;
    }
    (centres, size)
}

/// Extracts surface points of the shape with code `latent` (the decoder's latent size, any norm:
/// normalised inside).
pub fn extract_surface(
    decoder: &Decoder,
    latent: &[f32],
    config: &SurfaceConfig,
    with_jacobian: bool,
) -> Result<Surface> {
    let fast = FastDecoder::new(decoder)?;
    check_latent(&fast, latent)?;
    let (seeds, _) = cells_near_surface(&fast, &normalised(latent), config);
    project_fast(&fast, latent, &seeds, config.max_residual_units, with_jacobian)
}

/// Projects `seeds` onto the 0-isosurface of `latent`'s shape (one Newton step along the normal)
/// and keeps the points with |f(p)| < `max_residual_units`.
pub fn project(
    decoder: &Decoder,
    latent: &[f32],
    seeds: &[[f32; 3]],
    max_residual_units: f32,
    with_jacobian: bool,
) -> Result<Surface> {
    project_fast(
        &FastDecoder::new(decoder)?,
        latent,
        seeds,
        max_residual_units,
        with_jacobian,
    )
}

/// The decoder's latent size must be the code's (a shorter code would index out of bounds, a longer
/// one would read the wrong gradient columns).
fn check_latent(fast: &FastDecoder, latent: &[f32]) -> Result<()> {
    if latent.len() == fast.latent_dim() {
        Ok(())
    } else {
        Err(crate::error::DeepSdfError::Shape(format!(
            "a code of {} values for a decoder with latent size {}",
            latent.len(),
            fast.latent_dim()
        )))
    }
}

fn project_fast(
    fast: &FastDecoder,
    latent: &[f32],
    seeds: &[[f32; 3]],
    max_residual_units: f32,
    with_jacobian: bool,
) -> Result<Surface> {
    check_latent(fast, latent)?;
    let dim = latent.len();
    let unit = normalised(latent);
    let code_norm = latent.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    let (f, grad) = fast.eval_with_gradient(&unit, seeds);
    // Projected point, its normal and the index of its gradient row.
    let mut projected = Vec::with_capacity(seeds.len());
    for (k, ((x, &fx), g)) in seeds.iter().zip(&f).zip(&grad).enumerate() {
        let gx = [g[dim], g[dim + 1], g[dim + 2]];
        let len = (gx[0] * gx[0] + gx[1] * gx[1] + gx[2] * gx[2]).sqrt();
        if len < 1e-6 {
            continue;
        }
        let nrm = gx.map(|v| v / len);
        projected.push((
            [x[0] - fx * nrm[0], x[1] - fx * nrm[1], x[2] - fx * nrm[2]],
            nrm,
            k,
        ));
    }
    let points: Vec<[f32; 3]> = projected.iter().map(|p| p.0).collect();
    let residual = fast.eval(&unit, &points);
    let mut out = Surface::default();
    for ((p, nrm, k), r) in projected.iter().zip(&residual) {
        if r.abs() >= max_residual_units {
            continue;
        }
        out.points.push(*p);
        out.normals.push(*nrm);
        out.nocs.push(crate::samples::unit_to_nocs(*p));
        if with_jacobian {
            // ∂f/∂c = (I − ẑẑᵀ)/|c| · ∂f/∂ẑ, and ∂p/∂c = −n ⊗ ∂f/∂c; only for the points kept.
            let gz = &grad[*k][..dim];
            let along: f32 = gz.iter().zip(&unit).map(|(a, b)| a * b).sum();
            let mut jac = vec![0.0f32; 3 * dim];
            for (c, (a, u)) in gz.iter().zip(&unit).enumerate() {
                let dc = (a - along * u) / code_norm;
                for r in 0..3 {
                    jac[r * dim + c] = -nrm[r] * dc;
                }
            }
            out.jacobian.push(jac);
        }
    }
    Ok(out)
}

/// The decoded shape as a closed mesh in canonical units: f sampled at the vertices of a grid of
/// `resolution` cells per axis over [−1.05, 1.05]³ (a margin so that the zero set never touches the
/// grid's boundary), marching tetrahedra, then every vertex projected onto the zero set (two steps
/// of p ← p − f(p)·∇f/|∇f|²), which removes most of the grid's discretisation error (rounded edges)
/// without changing the mesh's connectivity.
pub fn decode_mesh(decoder: &Decoder, latent: &[f32], resolution: usize) -> Result<sim::TriMesh> {
    let cells = resolution.max(2);
    let n = cells + 1;
    let half = 1.05f32;
    let spacing = 2.0 * half / cells as f32;
    let mut points = Vec::with_capacity(n * n * n);
    for k in 0..n {
        for j in 0..n {
            for i in 0..n {
                points.push([
                    -half + i as f32 * spacing,
                    -half + j as f32 * spacing,
                    -half + k as f32 * spacing,
                ]);
            }
        }
    }
    let fast = FastDecoder::new(decoder)?;
    check_latent(&fast, latent)?;
    let unit = normalised(latent);
    let values = fast.eval(&unit, &points);
    let mut mesh = crate::marching::marching_tetrahedra(&values, [n, n, n], [-half; 3], spacing)?;
    let dim = unit.len();
    for _ in 0..2 {
        let vs: Vec<[f32; 3]> = mesh.vertices.iter().map(|v| [v.x, v.y, v.z]).collect();
        let (f, g) = fast.eval_with_gradient(&unit, &vs);
        for ((v, fv), gv) in mesh.vertices.iter_mut().zip(&f).zip(&g) {
            let gx = nalgebra::Vector3::new(gv[dim], gv[dim + 1], gv[dim + 2]);
            let len2 = gx.norm_squared();
            if len2 > 1e-8 {
                // Never move a vertex by more than a cell: the projection is a local correction.
                let step = gx * (fv / len2);
                let step = if step.norm() > spacing {
                    step * (spacing / step.norm())
                } else {
                    step
                };
                *v -= step;
            }
        }
    }
    Ok(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::DecoderConfig;
    use crate::samples::SdfSamples;
    use crate::train::{TrainConfig, train};
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    use std::sync::OnceLock;

    /// A decoder trained on two ellipsoids (semi-axes 0.6/0.3/0.4 and 0.4/0.3/0.7), shared by the tests.
    fn trained() -> &'static (Decoder, Vec<Vec<f32>>) {
        static T: OnceLock<(Decoder, Vec<Vec<f32>>)> = OnceLock::new();
        T.get_or_init(|| {
            let mut rng = StdRng::seed_from_u64(3);
            let shapes: Vec<SdfSamples> = [[0.6f32, 0.3, 0.4], [0.4, 0.3, 0.7]]
                .iter()
                .map(|a| {
                    let mut s = SdfSamples::default();
                    for _ in 0..4000 {
                        let p = [0; 3].map(|_| rng.random_range(-1.0f32..1.0));
                        // Approximate ellipsoid SDF: (|p/a| − 1)·min(a).
                        let q = (0..3).map(|i| (p[i] / a[i]).powi(2)).sum::<f32>().sqrt();
                        s.points.push(p);
                        s.sdf.push((q - 1.0) * 0.3);
                    }
                    s
                })
                .collect();
            let config = TrainConfig {
                decoder: DecoderConfig {
                    latent_dim: 3,
                    width: 48,
                    depth: 4,
                },
                steps: 1500,
                shapes_per_batch: 2,
                points_per_shape: 512,
                lr_decoder: 5e-3,
                ..Default::default()
            };
            let t = train(&shapes, &config, |_, _| {}).unwrap();
            (t.decoder, t.latents)
        })
    }

    #[test]
    fn projected_points_lie_on_the_surface() {
        let (decoder, latents) = trained();
        let s = extract_surface(decoder, &latents[0], &SurfaceConfig::default(), false).unwrap();
        assert!(s.len() > 500, "{} points", s.len());
        let f = decoder.eval(&latents[0], &s.points).unwrap();
        let worst = f.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(worst < 0.01, "max |f(p)| = {worst}");
        // The ellipsoid's extent: |x| reaches about 0.6, |y| about 0.3.
        let max_x = s.points.iter().fold(0.0f32, |m, p| m.max(p[0].abs()));
        let max_y = s.points.iter().fold(0.0f32, |m, p| m.max(p[1].abs()));
        assert!(
            (max_x - 0.6).abs() < 0.08 && (max_y - 0.3).abs() < 0.08,
            "{max_x} {max_y}"
        );
        for (p, n) in s.points.iter().zip(&s.normals) {
            // Outward normals of a convex shape point away from the centre.
            assert!(p[0] * n[0] + p[1] * n[1] + p[2] * n[2] > 0.0);
        }
        for (p, c) in s.points.iter().zip(&s.nocs) {
            assert!((0..3).all(|i| (c[i] - (p[i] + 1.0) / 2.0).abs() < 1e-6));
        }
    }

    #[test]
    fn jacobian_matches_finite_differences_of_the_projection() {
        let (decoder, latents) = trained();
        // An unnormalised code: the Jacobian must include the normalisation.
        let code: Vec<f32> = latents[0].iter().map(|v| v * 1.7 + 0.05).collect();
        let seeds = [[0.55f32, 0.05, 0.1], [0.0, 0.28, 0.1], [-0.2, -0.1, 0.37]];
        let s = project(decoder, &code, &seeds, 1.0, true).unwrap();
        assert_eq!(s.len(), 3);
        let h = 1e-2f32;
        for k in 0..3 {
            let mut plus = code.clone();
            let mut minus = code.clone();
            plus[k] += h;
            minus[k] -= h;
            // Finite differences of p with the normal held fixed, as the Jacobian defines it.
            let shift = |c: &[f32]| decoder.eval(c, &seeds).unwrap();
            let (fp, fm) = (shift(&plus), shift(&minus));
            for i in 0..3 {
                for r in 0..3 {
                    let fd = -s.normals[i][r] * (fp[i] - fm[i]) / (2.0 * h);
                    let an = s.jacobian[i][r * 3 + k];
                    assert!(
                        (fd - an).abs() < 2e-3 + 0.05 * fd.abs(),
                        "point {i} row {r} code {k}: {an} vs {fd}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_code_of_the_wrong_length_is_an_error() {
        let (decoder, latents) = trained();
        let short = &latents[0][..latents[0].len() - 1];
        assert!(extract_surface(decoder, short, &SurfaceConfig::default(), false).is_err());
        let mut long = latents[0].clone();
        long.push(0.5);
        assert!(project(decoder, &long, &[[0.0, 0.3, 0.0]], 1.0, true).is_err());
        assert!(decode_mesh(decoder, short, 8).is_err());
    }

    #[test]
    fn decoded_meshes_are_closed_and_match_the_surface_points() {
        let (decoder, latents) = trained();
        let mesh = decode_mesh(decoder, &latents[0], 40).unwrap();
        assert!(mesh.is_watertight());
        assert!(mesh.signed_volume() > 0.0);
        let s = extract_surface(decoder, &latents[0], &SurfaceConfig::default(), false).unwrap();
        let vertices: Vec<[f32; 3]> = mesh.vertices.iter().map(|v| [v.x, v.y, v.z]).collect();
        let d = crate::chamfer::chamfer_distance(&vertices, &s.points).unwrap();
        assert!(d < 0.03, "chamfer {d}");
    }

    #[test]
    fn the_coarse_to_fine_search_evaluates_far_fewer_points_than_a_dense_grid() {
        let (decoder, latents) = trained();
        let config = SurfaceConfig::default();
        let (cells, size) = near_surface_cells(decoder, &latents[1], &config).unwrap();
        let dense = (2.0 / size).powi(3) as usize;
        assert!(cells.len() * 10 < dense, "{} cells of {dense}", cells.len());
        assert!((size - 2.0 / 32.0).abs() < 1e-6);
    }
}
