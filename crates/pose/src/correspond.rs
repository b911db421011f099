//! NOCS correspondences: every observed point carries the CSS network's NOCS of its pixel; its
//! partner is the model surface point with the nearest NOCS (kiddo k-d tree).

use crate::error::{PoseError, Result};
use kiddo::{ImmutableKdTree, SquaredEuclidean};

/// `(observed, model)` index pairs: for each observed NOCS, the model point with the nearest NOCS,
/// kept when closer than `max_distance` (NOCS units). Non-finite observations are skipped; a
/// non-finite model point is an error.
pub fn nocs_correspondences(
    observed: &[[f32; 3]],
    model: &[[f32; 3]],
    max_distance: f32,
) -> Result<Vec<(usize, usize)>> {
    if model.is_empty() {
        return Ok(Vec::new());
    }
    let tree: ImmutableKdTree<f32, 3> = ImmutableKdTree::new_from_slice(model)
        .map_err(|e| PoseError::InvalidInput(format!("k-d tree of {} model points: {e}", model.len())))?;
    let max2 = max_distance * max_distance;
    Ok(observed
        .iter()
        .enumerate()
        .filter(|(_, q)| q.iter().all(|v| v.is_finite()))
        .filter_map(|(i, q)| {
            let nn = tree.query(q).nearest_one::<SquaredEuclidean<f32>>().execute();
            (nn.distance <= max2).then_some((i, nn.item as usize))
        })
        .collect())
}
