//! A shape library: procedural cars drawn deterministically from `(seed, index)`, or a user's folder
//! of OBJ meshes.

use crate::car::{CarParams, car_mesh};
use crate::error::{Result, SimError};
use crate::mesh::TriMesh;
use crate::obj::read_obj;
use std::path::Path;

/// An indexed collection of car shapes in the model frame.
#[derive(Clone, Debug)]
pub struct ShapeLibrary {
    entries: Entries,
}

#[derive(Clone, Debug)]
enum Entries {
    Procedural { seed: u64, count: usize },
    Loaded(Vec<(String, TriMesh)>),
}

impl ShapeLibrary {
    /// `count` procedural cars: style by [`crate::BodyStyle::library_share`], dimensions distributed
    /// like KITTI cars. Shape `i` depends only on `(seed, i)` ([`CarParams::procedural`]), never on
    /// `count`; meshes are built on demand.
    pub fn procedural(seed: u64, count: usize) -> Self {
        ShapeLibrary {
            entries: Entries::Procedural { seed, count },
        }
    }

    /// Named meshes, used as given (expected in the model frame).
    pub fn from_meshes(meshes: Vec<(String, TriMesh)>) -> Self {
        ShapeLibrary {
            entries: Entries::Loaded(meshes),
        }
    }

    /// Every `*.obj` file of `dir` (not recursive), sorted by file name, each recentred to the model
    /// frame. Names are the file stems.
    pub fn from_obj_dir(dir: &Path) -> Result<Self> {
        let io = |source| SimError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let is_obj = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("obj"));
            if is_obj && path.is_file() {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(SimError::NoMeshes {
                path: dir.to_path_buf(),
            });
        }
        paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        let meshes = paths
            .iter()
            .map(|p| {
                let name = p
                    .file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                Ok((name, read_obj(p)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::from_meshes(meshes))
    }

    /// Number of shapes.
    pub fn len(&self) -> usize {
        match &self.entries {
            Entries::Procedural { count, .. } => *count,
            Entries::Loaded(m) => m.len(),
        }
    }

    /// Whether the library has no shape.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parameters of procedural shape `i`; `None` for loaded meshes or `i >= len()`.
    pub fn params(&self, i: usize) -> Option<CarParams> {
        match &self.entries {
            Entries::Procedural { seed, count } if i < *count => Some(CarParams::procedural(*seed, i as u64)),
            _ => None,
        }
    }

    /// The mesh of shape `i` (built on demand for procedural shapes); `None` if `i >= len()`.
    pub fn shape(&self, i: usize) -> Option<TriMesh> {
        match &self.entries {
            Entries::Procedural { .. } => self.params(i).map(|p| car_mesh(&p)),
            Entries::Loaded(m) => m.get(i).map(|(_, mesh)| mesh.clone()),
        }
    }

    /// A name for shape `i`: `"{style}_{i:05}"` for procedural shapes, the file stem for loaded ones.
    pub fn name(&self, i: usize) -> Option<String> {
        match &self.entries {
            Entries::Procedural { .. } => self.params(i).map(|p| format!("{}_{i:05}", p.style.name())),
            Entries::Loaded(m) => m.get(i).map(|(name, _)| name.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::car::{BodyStyle, KITTI_CAR_MEAN_HWL, KITTI_CAR_STD_HWL};
    use crate::obj::write_obj;

    fn mean_std(x: &[f64]) -> (f64, f64) {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    }

    #[test]
    fn library_dimensions_are_distributed_like_kitti_cars() {
        let lib = ShapeLibrary::procedural(2024, 2000);
        let mut hwl = [vec![], vec![], vec![]];
        let mut styles = std::collections::BTreeMap::new();
        for i in 0..lib.len() {
            let mesh = lib.shape(i).unwrap();
            assert!(mesh.is_watertight() && mesh.signed_volume() > 0.0, "shape {i}");
            let d = mesh.dims();
            hwl[0].push(f64::from(d.height_m));
            hwl[1].push(f64::from(d.width_m));
            hwl[2].push(f64::from(d.length_m));
            *styles.entry(lib.params(i).unwrap().style).or_insert(0) += 1;
        }
        for d in 0..3 {
            let (mean, std) = mean_std(&hwl[d]);
            eprintln!("dim {d}: mean {mean:.3} std {std:.3}");
            assert!(
                (mean - KITTI_CAR_MEAN_HWL[d]).abs() < 0.03,
                "dim {d}: mean {mean}"
            );
            assert!(
                (std / KITTI_CAR_STD_HWL[d] - 1.0).abs() < 0.3,
                "dim {d}: std {std}"
            );
        }
        assert_eq!(styles.len(), BodyStyle::ALL.len(), "{styles:?}");
    }

    #[test]
    fn shapes_are_deterministic_per_seed_and_index() {
        let big = ShapeLibrary::procedural(7, 50);
        let small = ShapeLibrary::procedural(7, 13);
        let other = ShapeLibrary::procedural(8, 50);
        assert_eq!(big.shape(12), small.shape(12));
        assert_eq!(big.params(12), small.params(12));
        assert_eq!(big.shape(12), ShapeLibrary::procedural(7, 50).shape(12));
        assert_ne!(big.shape(12), other.shape(12));
        assert_ne!(big.shape(12), big.shape(11));
        assert!(small.shape(13).is_none());
        assert_eq!(
            big.name(3).unwrap(),
            format!("{}_00003", big.params(3).unwrap().style.name())
        );
    }

    #[test]
    fn obj_folder_is_loaded_sorted_and_recentred() {
        let lib = ShapeLibrary::procedural(1, 3);
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["c_car", "a_car", "b_car"].into_iter().enumerate() {
            let mut m = lib.shape(i).unwrap();
            for v in &mut m.vertices {
                v.x += 3.0;
                v.y -= 1.0;
                v.z += 100.0;
            }
            write_obj(&m, &dir.path().join(format!("{name}.obj"))).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not a mesh").unwrap();
        let loaded = ShapeLibrary::from_obj_dir(dir.path()).unwrap();
        assert_eq!(loaded.len(), 3);
        assert_eq!(loaded.name(0).unwrap(), "a_car");
        assert!(loaded.params(0).is_none());
        let a = loaded.shape(0).unwrap();
        let original = lib.shape(1).unwrap();
        for (x, y) in a.vertices.iter().zip(&original.vertices) {
            assert!((x - y).norm() < 1e-4);
        }
        assert_eq!(a.materials, original.materials);
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            ShapeLibrary::from_obj_dir(empty.path()),
            Err(SimError::NoMeshes { .. })
        ));
    }
}
