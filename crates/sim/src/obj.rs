//! Wavefront OBJ in and out: `v` and `f` lines, one `usemtl` per run of same-material triangles.
//!
//! Reading accepts the usual variants (`f 1/2/3`, `f 1//3`, negative relative indices, polygons,
//! which are fan-triangulated) and ignores normals, texture coordinates, groups and `mtllib`. Material
//! names map to [`Material`] with [`Material::from_name`]. The read mesh is recentred so that the
//! origin is the bottom centre of its bounding box; the file is expected in metres, +y up, +z forward.

use crate::error::{Result, SimError};
use crate::mesh::{Material, TriMesh};
use nalgebra::Point3;
use std::fmt::Write as _;
use std::path::Path;

/// The OBJ text of `mesh` (`{}` formatting of `f32` round-trips exactly), headed by the comment
/// of a simulator mesh (metres, +y up, +z forward, origin at the bottom centre).
pub fn to_obj_string(mesh: &TriMesh) -> String {
    to_obj_string_with(
        mesh,
        "autolabel sim mesh: metres, +y up, +z forward, origin at the bottom centre",
    )
}

/// The OBJ text of `mesh` headed by the comment line `header` (what frame and units it is in).
pub fn to_obj_string_with(mesh: &TriMesh, header: &str) -> String {
    let mut s = String::with_capacity(mesh.vertices.len() * 32 + mesh.triangles.len() * 24);
    let _ = writeln!(s, "# {header}");
    for v in &mesh.vertices {
        let _ = writeln!(s, "v {} {} {}", v.x, v.y, v.z);
    }
    let mut current = None;
    for (t, m) in mesh.triangles.iter().zip(&mesh.materials) {
        if current != Some(*m) {
            let _ = writeln!(s, "usemtl {}", m.name());
            current = Some(*m);
        }
        let _ = writeln!(s, "f {} {} {}", t[0] + 1, t[1] + 1, t[2] + 1);
    }
    s
}

/// Writes `mesh` to `path` as OBJ, atomically.
pub fn write_obj(mesh: &TriMesh, path: &Path) -> Result<()> {
    Ok(kitti::io::write_atomic(path, to_obj_string(mesh).as_bytes())?)
}

/// Reads an OBJ file and recentres it (see the module docs).
pub fn read_obj(path: &Path) -> Result<TriMesh> {
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_obj(&text, path)
}

/// Parses OBJ text; `path` only names the source in errors. The result is recentred.
pub fn parse_obj(text: &str, path: &Path) -> Result<TriMesh> {
    let mut mesh = TriMesh::new();
    let mut material = Material::Body;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("");
        let mut fields = content.split_whitespace();
        match fields.next() {
            Some("v") => {
                let coords: Vec<&str> = fields.collect();
                if coords.len() < 3 {
                    return Err(SimError::ShortVertex {
                        path: path.to_path_buf(),
                        line,
                        found: coords.len(),
                    });
                }
                let mut xyz = [0.0f32; 3];
                for (x, text) in xyz.iter_mut().zip(&coords) {
                    *x = text
                        .parse::<f32>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| SimError::ParseNumber {
                            path: path.to_path_buf(),
                            line,
                            what: "vertex coordinate",
                            text: (*text).to_string(),
                        })?;
                }
                mesh.vertices.push(Point3::from(xyz));
            }
            Some("f") => {
                let count = mesh.vertices.len();
                let mut corners = Vec::with_capacity(4);
                for field in fields {
                    let first = field.split('/').next().unwrap_or("");
                    let index: i64 = first.parse().map_err(|_| SimError::ParseNumber {
                        path: path.to_path_buf(),
                        line,
                        what: "face index",
                        text: field.to_string(),
                    })?;
                    let resolved = if index > 0 {
                        index - 1
                    } else {
                        count as i64 + index
                    };
                    if index == 0 || resolved < 0 || resolved >= count as i64 {
                        return Err(SimError::IndexOutOfRange {
                            path: path.to_path_buf(),
                            line,
                            index,
                            count,
                        });
                    }
                    corners.push(resolved as u32);
                }
                if corners.len() < 3 {
                    return Err(SimError::ShortFace {
                        path: path.to_path_buf(),
                        line,
                        found: corners.len(),
                    });
                }
                for k in 1..corners.len() - 1 {
                    mesh.triangles.push([corners[0], corners[k], corners[k + 1]]);
                    mesh.materials.push(material);
                }
            }
            Some("usemtl") => {
                material = Material::from_name(fields.next().unwrap_or(""));
            }
            _ => {}
        }
    }
    if mesh.triangles.is_empty() {
        return Err(SimError::EmptyMesh {
            path: path.to_path_buf(),
        });
    }
    mesh.recentre_bottom();
    Ok(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::{BodyStyle, CarParams, car_mesh};
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn export_import_round_trip() {
        let p = CarParams::sample(BodyStyle::Pickup, &mut StdRng::seed_from_u64(9));
        let mesh = car_mesh(&p);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pickup.obj");
        write_obj(&mesh, &path).unwrap();
        let back = read_obj(&path).unwrap();
        assert_eq!(back.vertices.len(), mesh.vertices.len());
        assert_eq!(back.triangles, mesh.triangles);
        assert_eq!(back.materials, mesh.materials);
        for (a, b) in back.vertices.iter().zip(&mesh.vertices) {
            assert!((a - b).norm() < 1e-5);
        }
        assert!(back.is_watertight());
    }

    #[test]
    fn import_recentres_and_triangulates() {
        let text = "# a box-ish thing off origin\n\
                    v 10 5 20\nv 12 5 20\nv 12 6 20\nv 10 6 20\nv 11 5 24\n\
                    usemtl Glass\nf 1/1/1 2/2/2 3/3/3 4/4/4\nusemtl paint\nf -5//1 -4//1 -1//1\n";
        let m = parse_obj(text, Path::new("x.obj")).unwrap();
        assert_eq!(m.triangles.len(), 3);
        assert_eq!(
            m.materials,
            vec![Material::Window, Material::Window, Material::Body]
        );
        let (lo, hi) = m.bounds().unwrap();
        assert_eq!((lo.x, lo.y, lo.z), (-1.0, 0.0, -2.0));
        assert_eq!((hi.x, hi.y, hi.z), (1.0, 1.0, 2.0));
        assert_eq!(m.triangles[2], [0, 1, 4]);
    }

    #[test]
    fn bad_lines_give_typed_errors_naming_file_and_line() {
        let p = Path::new("cars/bad.obj");
        let err = parse_obj("v 0 0 0\nv 1 x 0\n", p).unwrap_err();
        assert!(matches!(err, SimError::ParseNumber { line: 2, .. }), "{err}");
        assert!(err.to_string().starts_with("cars/bad.obj:2:"), "{err}");
        let err = parse_obj("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", p).unwrap_err();
        assert!(matches!(
            err,
            SimError::IndexOutOfRange {
                line: 4,
                index: 4,
                count: 3,
                ..
            }
        ));
        let err = parse_obj("v 0 0 0\nv 1 0 0\nf 1 2\n", p).unwrap_err();
        assert!(matches!(
            err,
            SimError::ShortFace {
                line: 3,
                found: 2,
                ..
            }
        ));
        let err = parse_obj("v 0 0\n", p).unwrap_err();
        assert!(matches!(
            err,
            SimError::ShortVertex {
                line: 1,
                found: 2,
                ..
            }
        ));
        let err = parse_obj("v 0 0 0\nf 1 0 1\n", p).unwrap_err();
        assert!(matches!(err, SimError::IndexOutOfRange { index: 0, .. }));
        let err = parse_obj("v 0 0 inf\n", p).unwrap_err();
        assert!(matches!(err, SimError::ParseNumber { .. }));
        let err = parse_obj("# nothing\nv 0 0 0\n", p).unwrap_err();
        assert!(matches!(err, SimError::EmptyMesh { .. }));
        assert_eq!(err.to_string(), "cars/bad.obj: the mesh has no faces");
        let err = read_obj(Path::new("/nonexistent/car.obj")).unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/car.obj: "));
    }
}
