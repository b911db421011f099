//! Signed-distance samples from triangle meshes.
