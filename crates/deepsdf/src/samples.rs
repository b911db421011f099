//! Signed-distance samples from triangle meshes.

/// SDF samples of one shape in canonical units.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SdfSamples {
    /// Sample points.
    pub points: Vec<[f32; 3]>,
    /// Signed distance at each point (negative inside).
    pub sdf: Vec<f32>,
}
