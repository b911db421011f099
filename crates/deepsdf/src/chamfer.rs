//! The Chamfer distance between point sets and between meshes, for evaluating reconstructed shapes.
//!
//! Definition used throughout (not squared, symmetric, a mean of the two directions):
//!
//! ```text
//! CD(A, B) = ½ · ( mean_{a ∈ A} min_{b ∈ B} ‖a − b‖ + mean_{b ∈ B} min_{a ∈ A} ‖a − b‖ )
//! ```
//!
//! It is in the units of the points (metres for meshes in the model frame). DeepSDF reports the
//! *sum* of mean *squared* distances instead; ours reads directly as a typical surface error.

use crate::error::{DeepSdfError, Result};
use crate::samples::{MeshSdf, surface_samples_with};
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rayon::prelude::*;
use sim::TriMesh;

/// The symmetric Chamfer distance between point sets `a` and `b` (see the module docs), computed
/// with k-d trees; deterministic (parallel nearest-neighbour queries, sums in a fixed order).
///
/// Errors: [`DeepSdfError::Empty`] when either set is empty, [`DeepSdfError::InvalidInput`] for a
/// coordinate that is not finite.
pub fn chamfer_distance(a: &[[f32; 3]], b: &[[f32; 3]]) -> Result<f64> {
    Ok(0.5 * (mean_nearest_distance(a, b)? + mean_nearest_distance(b, a)?))
}

/// The Chamfer distance between the visible surfaces of two meshes: `n` points drawn on each by
/// [`surface_samples`](crate::samples::surface_samples), each measured by its exact distance to the *other mesh's surface* (not to
/// the other's samples, which would add a sampling floor of about half the sample spacing), the
/// two directional means averaged. Identical meshes give 0 up to float rounding. In the meshes' units: metres
/// for meshes in the model frame.
///
/// Errors: those of [`surface_samples`](crate::samples::surface_samples); [`DeepSdfError::Empty`] for `n == 0`.
pub fn mesh_chamfer_m(a: &TriMesh, b: &TriMesh, n: usize, seed: u64) -> Result<f64> {
    Ok(MeshSide::new(a, n, seed)?.chamfer_to(&MeshSide::new(b, n, seed)?))
}

/// One mesh's half of [`mesh_chamfer_m`]: its exact distance structure and its `n` surface
/// samples, built once to compare the mesh with many others (an evaluation comparing several
/// reconstructions with one true shape).
pub struct MeshSide {
    sdf: MeshSdf,
    samples: Vec<[f32; 3]>,
}

impl MeshSide {
    /// Prepares `mesh` with `n` samples drawn with `seed`.
    pub fn new(mesh: &TriMesh, n: usize, seed: u64) -> Result<Self> {
        let sdf = MeshSdf::new(mesh)?;
        let (samples, _) = surface_samples_with(mesh, &sdf, n, seed)?;
        Ok(MeshSide { sdf, samples })
    }

    /// The Chamfer distance between the two meshes ([`mesh_chamfer_m`]'s definition).
    pub fn chamfer_to(&self, other: &MeshSide) -> f64 {
        let mean_to = |points: &[[f32; 3]], sdf: &MeshSdf| {
            let d: Vec<f64> = points.par_iter().map(|&p| sdf.distance(p) as f64).collect();
            d.iter().sum::<f64>() / d.len().max(1) as f64
        };
        0.5 * (mean_to(&self.samples, &other.sdf) + mean_to(&other.samples, &self.sdf))
    }
}

/// A point set prepared for many Chamfer comparisons (one shape against a whole library): a k-d
/// tree of its dense samples, and its first `queries` samples as the points measured against the
/// other set's tree. [`PointSide::chamfer_to`] is [`chamfer_distance`]'s definition between the
/// query points and the dense sets, so its floor is set by the dense sampling (about half the
/// sample spacing), its cost by the queries.
pub struct PointSide {
    tree: ImmutableKdTree<f32, 3>,
    queries: Vec<[f32; 3]>,
}

impl PointSide {
    /// Prepares `points` (dense, in any order that makes a prefix representative, e.g. random
    /// draws), querying with the first `queries` of them.
    ///
    /// Errors: [`DeepSdfError::Empty`] for no points or no queries, [`DeepSdfError::InvalidInput`]
    /// for a coordinate that is not finite.
    pub fn new(points: &[[f32; 3]], queries: usize) -> Result<Self> {
        if points.is_empty() || queries == 0 {
            return Err(DeepSdfError::Empty(format!(
                "a point side of {} points and {queries} queries",
                points.len()
            )));
        }
        if let Some(p) = points.iter().find(|p| !p.iter().all(|x| x.is_finite())) {
            return Err(DeepSdfError::InvalidInput(format!("point {p:?} is not finite")));
        }
        let tree = ImmutableKdTree::new_from_slice(points)
            .map_err(|e| DeepSdfError::InvalidInput(format!("k-d tree of {} points: {e}", points.len())))?;
        Ok(PointSide {
            tree,
            queries: points[..queries.min(points.len())].to_vec(),
        })
    }

    /// The symmetric Chamfer distance between the two sets (each side's queries against the other
    /// side's tree); sequential, to be called from parallel loops over many pairs.
    pub fn chamfer_to(&self, other: &PointSide) -> f64 {
        let mean = |from: &[[f32; 3]], to: &ImmutableKdTree<f32, 3>| {
            from.iter()
                .map(|p| {
                    f64::from(
                        to.query(p)
                            .nearest_one::<SquaredEuclidean<f32>>()
                            .execute()
                            .distance,
                    )
                    .sqrt()
                })
                .sum::<f64>()
                / from.len() as f64
        };
        0.5 * (mean(&self.queries, &other.tree) + mean(&other.queries, &self.tree))
    }
}

/// The mean over `from` of the distance to the nearest point of `to`.
fn mean_nearest_distance(from: &[[f32; 3]], to: &[[f32; 3]]) -> Result<f64> {
    if from.is_empty() || to.is_empty() {
        return Err(DeepSdfError::Empty(format!(
            "Chamfer distance between sets of {} and {} points",
            from.len(),
            to.len()
        )));
    }
    for set in [from, to] {
        if let Some(p) = set.iter().find(|p| !p.iter().all(|x| x.is_finite())) {
            return Err(DeepSdfError::InvalidInput(format!("point {p:?} is not finite")));
        }
    }
    let tree: ImmutableKdTree<f32, 3> = ImmutableKdTree::new_from_slice(to)
        .map_err(|e| DeepSdfError::InvalidInput(format!("k-d tree of {} points: {e}", to.len())))?;
    let distances: Vec<f64> = from
        .par_iter()
        .map(|p| {
            let nearest = tree.query(p).nearest_one::<SquaredEuclidean<f32>>().execute();
            f64::from(nearest.distance).sqrt()
        })
        .collect();
    Ok(distances.iter().sum::<f64>() / distances.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    use sim::ShapeLibrary;

    fn cloud(n: usize, seed: u64) -> Vec<[f32; 3]> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| std::array::from_fn(|_| rng.random_range(-1.0..1.0)))
            .collect()
    }

    fn shifted(points: &[[f32; 3]], t: [f32; 3]) -> Vec<[f32; 3]> {
        points
            .iter()
            .map(|p| std::array::from_fn(|k| p[k] + t[k]))
            .collect()
    }

    #[test]
    fn identical_sets_are_at_zero_and_distance_is_symmetric() {
        let a = cloud(2000, 1);
        let b = cloud(1500, 2);
        assert_eq!(chamfer_distance(&a, &a).unwrap(), 0.0);
        let ab = chamfer_distance(&a, &b).unwrap();
        assert!(ab > 0.0);
        assert!((ab - chamfer_distance(&b, &a).unwrap()).abs() < 1e-12);
    }

    #[test]
    fn translation_gives_its_length() {
        // A dense plane moved along its normal: every nearest neighbour is the moved point.
        let plane: Vec<[f32; 3]> = (0..100 * 100)
            .map(|i| [(i % 100) as f32 * 0.01, (i / 100) as f32 * 0.01, 0.0])
            .collect();
        let cd = chamfer_distance(&plane, &shifted(&plane, [0.0, 0.0, 0.05])).unwrap();
        assert!((cd - 0.05).abs() < 1e-6, "{cd}");
        // A sparse cloud moved by much less than its spacing.
        let a = cloud(500, 3);
        let t = [3e-4, -2e-4, 1e-4];
        let cd = chamfer_distance(&a, &shifted(&a, t)).unwrap();
        let norm = (t.iter().map(|x| x * x).sum::<f32>()).sqrt();
        assert!((cd - f64::from(norm)).abs() < 1e-6, "{cd} vs {norm}");
    }

    #[test]
    fn point_sides_agree_with_the_direct_distance() {
        let (a, b) = (cloud(800, 5), cloud(600, 6));
        // Querying with every point: exactly the direct definition.
        let all = PointSide::new(&a, a.len())
            .unwrap()
            .chamfer_to(&PointSide::new(&b, b.len()).unwrap());
        let direct = chamfer_distance(&a, &b).unwrap();
        assert!((all - direct).abs() < 1e-9, "{all} vs {direct}");
        // A prefix of random draws estimates it; the plane moved along its normal gives the move.
        let some = PointSide::new(&a, 300)
            .unwrap()
            .chamfer_to(&PointSide::new(&b, 300).unwrap());
        assert!((some - direct).abs() < 0.15 * direct, "{some} vs {direct}");
        let plane: Vec<[f32; 3]> = (0..50 * 50)
            .map(|i| [(i % 50) as f32 * 0.02, (i / 50) as f32 * 0.02, 0.0])
            .collect();
        let moved = PointSide::new(&shifted(&plane, [0.0, 0.0, 0.1]), 100).unwrap();
        let cd = PointSide::new(&plane, 100).unwrap().chamfer_to(&moved);
        assert!((cd - 0.1).abs() < 1e-6, "{cd}");
        assert!(matches!(PointSide::new(&a, 0), Err(DeepSdfError::Empty(_))));
        assert!(matches!(
            PointSide::new(&[[f32::NAN; 3]], 1),
            Err(DeepSdfError::InvalidInput(_))
        ));
    }

    #[test]
    fn moved_mesh_is_at_most_its_translation_away() {
        let car = ShapeLibrary::procedural(2020, 1).shape(0).unwrap();
        let mut moved = car.clone();
        for v in &mut moved.vertices {
            v.y += 0.01;
        }
        let cd = mesh_chamfer_m(&car, &moved, 5000, 7).unwrap();
        assert!(cd > 0.0 && cd <= 0.01 + 1e-6, "{cd}");
        // A mesh against itself: only float rounding of the exact point–surface distances.
        assert!(mesh_chamfer_m(&car, &car, 5000, 7).unwrap() < 1e-6);
    }

    #[test]
    fn empty_or_non_finite_sets_fail() {
        let a = cloud(10, 4);
        assert!(matches!(chamfer_distance(&a, &[]), Err(DeepSdfError::Empty(_))));
        assert!(matches!(chamfer_distance(&[], &a), Err(DeepSdfError::Empty(_))));
        let mut b = a.clone();
        b[3][1] = f32::INFINITY;
        assert!(matches!(
            chamfer_distance(&a, &b),
            Err(DeepSdfError::InvalidInput(_))
        ));
    }
}
