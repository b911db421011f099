//! ASCII PLY export: vertices, then faces with a `material` id and a preview colour per face.

use crate::error::Result;
use crate::mesh::TriMesh;
use std::fmt::Write as _;
use std::path::Path;

/// The ASCII PLY text of `mesh`. Each face carries `material` (0 body, 1 window, 2 wheel, 3 light;
/// [`crate::Material::id`]) and `red green blue` ([`crate::Material::preview_rgb`]).
pub fn to_ply_string(mesh: &TriMesh) -> String {
    let mut s = String::with_capacity(mesh.vertices.len() * 32 + mesh.triangles.len() * 32);
    s.push_str("ply\nformat ascii 1.0\n");
    s.push_str("comment autolabel sim mesh: metres, +y up, +z forward, origin at the bottom centre\n");
    s.push_str("comment material: 0 body, 1 window, 2 wheel, 3 light\n");
    let _ = writeln!(s, "element vertex {}", mesh.vertices.len());
    s.push_str("property float x\nproperty float y\nproperty float z\n");
    let _ = writeln!(s, "element face {}", mesh.triangles.len());
    s.push_str("property list uchar int vertex_indices\nproperty uchar material\n");
    s.push_str("property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n");
    for v in &mesh.vertices {
        let _ = writeln!(s, "{} {} {}", v.x, v.y, v.z);
    }
    for (t, m) in mesh.triangles.iter().zip(&mesh.materials) {
        let [r, g, b] = m.preview_rgb();
        let _ = writeln!(s, "3 {} {} {} {} {r} {g} {b}", t[0], t[1], t[2], m.id());
    }
    s
}

/// Writes `mesh` to `path` as ASCII PLY, atomically.
pub fn write_ply(mesh: &TriMesh, path: &Path) -> Result<()> {
    Ok(kitti::io::write_atomic(path, to_ply_string(mesh).as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::{BodyStyle, CarParams, car_mesh};
    use crate::mesh::Material;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn header_counts_and_body_match_the_mesh() {
        let mesh = car_mesh(&CarParams::sample(BodyStyle::Van, &mut StdRng::seed_from_u64(4)));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("van.ply");
        write_ply(&mesh, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let (header, body) = text.split_once("end_header\n").unwrap();
        assert!(header.starts_with("ply\nformat ascii 1.0\n"));
        assert!(header.contains(&format!("element vertex {}\n", mesh.vertices.len())));
        assert!(header.contains(&format!("element face {}\n", mesh.triangles.len())));
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), mesh.vertices.len() + mesh.triangles.len());
        let faces = &lines[mesh.vertices.len()..];
        let windows = faces
            .iter()
            .filter(|l| l.split(' ').nth(4) == Some(&Material::Window.id().to_string()))
            .count();
        assert_eq!(windows, mesh.count(Material::Window));
    }
}
