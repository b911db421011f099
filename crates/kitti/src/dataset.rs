//! An index over a KITTI-layout directory: `ROOT/{training,testing}/{image_2,velodyne,calib,label_2,…}`
//! and `ROOT/ImageSets/*.txt`.

use crate::image::DepthMap;
use crate::label::Object;
use crate::velodyne::VeloPoint;
use crate::{FrameId, KittiError, Result};
use geom::Calib;
use std::path::{Path, PathBuf};

/// The two halves of the object benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// `training/`: with labels.
    Training,
    /// `testing/`: without labels.
    Testing,
}

impl Split {
    /// Directory name.
    pub fn dir_name(self) -> &'static str {
        match self {
            Split::Training => "training",
            Split::Testing => "testing",
        }
    }
}

/// The per-frame data folders of the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Modality {
    /// `image_2/*.png`: left colour camera.
    Image2,
    /// `image_3/*.png`: right colour camera.
    Image3,
    /// `velodyne/*.bin`: LIDAR.
    Velodyne,
    /// `calib/*.txt`.
    Calib,
    /// `label_2/*.txt`: ground-truth labels.
    Label2,
    /// `depth_2/*.png`: depth maps for the left camera (uint16, m × 256).
    Depth2,
    /// `instance_2/*.png`: instance masks for the left camera.
    Instance2,
    /// `planes/*.txt`: road planes.
    Planes,
}

impl Modality {
    /// Folder name and file extension.
    pub fn dir_and_ext(self) -> (&'static str, &'static str) {
        match self {
            Modality::Image2 => ("image_2", "png"),
            Modality::Image3 => ("image_3", "png"),
            Modality::Velodyne => ("velodyne", "bin"),
            Modality::Calib => ("calib", "txt"),
            Modality::Label2 => ("label_2", "txt"),
            Modality::Depth2 => ("depth_2", "png"),
            Modality::Instance2 => ("instance_2", "png"),
            Modality::Planes => ("planes", "txt"),
        }
    }
}

/// A KITTI-layout dataset on disk. Opening it checks the layout; reading is per frame and per modality.
#[derive(Clone, Debug)]
pub struct KittiDataset {
    root: PathBuf,
}

impl KittiDataset {
    /// Opens `root`, which must contain `training/` or `testing/`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if !root.is_dir() {
            return Err(KittiError::Layout {
                path: root,
                message: "not a directory".into(),
            });
        }
        let ds = Self { root };
        if ![Split::Training, Split::Testing]
            .iter()
            .any(|s| ds.split_dir(*s).is_dir())
        {
            return Err(KittiError::Layout {
                path: ds.root,
                message: "has neither training/ nor testing/".into(),
            });
        }
        Ok(ds)
    }

    /// The dataset root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ROOT/training` or `ROOT/testing`.
    pub fn split_dir(&self, split: Split) -> PathBuf {
        self.root.join(split.dir_name())
    }

    /// The folder of one modality.
    pub fn dir(&self, split: Split, modality: Modality) -> PathBuf {
        self.split_dir(split).join(modality.dir_and_ext().0)
    }

    /// The file of one frame and modality (whether or not it exists).
    pub fn path(&self, split: Split, modality: Modality, id: &str) -> PathBuf {
        let (dir, ext) = modality.dir_and_ext();
        self.split_dir(split).join(dir).join(format!("{id}.{ext}"))
    }

    /// Whether the modality's folder exists.
    pub fn has(&self, split: Split, modality: Modality) -> bool {
        self.dir(split, modality).is_dir()
    }

    /// The ids of the files in one modality's folder, sorted.
    pub fn ids_of(&self, split: Split, modality: Modality) -> Result<Vec<FrameId>> {
        let (_, ext) = modality.dir_and_ext();
        list_ids(&self.dir(split, modality), ext)
    }

    /// The frames of a split: the ids in `image_2`, else `velodyne`, else `label_2`.
    pub fn frame_ids(&self, split: Split) -> Result<Vec<FrameId>> {
        for m in [Modality::Image2, Modality::Velodyne, Modality::Label2] {
            if self.has(split, m) {
                return self.ids_of(split, m);
            }
        }
        Err(KittiError::Layout {
            path: self.split_dir(split),
            message: "has none of image_2/, velodyne/, label_2/".into(),
        })
    }

    /// The ids of `ROOT/ImageSets/{name}.txt`.
    pub fn image_set(&self, name: &str) -> Result<Vec<FrameId>> {
        crate::split::read_split(&self.root.join("ImageSets").join(format!("{name}.txt")))
    }

    /// Labels of a frame.
    pub fn labels(&self, split: Split, id: &str) -> Result<Vec<Object>> {
        crate::label::read_labels(&self.path(split, Modality::Label2, id))
    }

    /// Calibration of a frame.
    pub fn calib(&self, split: Split, id: &str) -> Result<Calib> {
        crate::calib::read_calib(&self.path(split, Modality::Calib, id))
    }

    /// LIDAR points of a frame.
    pub fn velodyne(&self, split: Split, id: &str) -> Result<Vec<VeloPoint>> {
        crate::velodyne::read_velodyne(&self.path(split, Modality::Velodyne, id))
    }

    /// Left colour image of a frame.
    pub fn image_2(&self, split: Split, id: &str) -> Result<::image::RgbImage> {
        crate::image::read_rgb(&self.path(split, Modality::Image2, id))
    }

    /// Depth map of a frame.
    pub fn depth_2(&self, split: Split, id: &str) -> Result<DepthMap> {
        crate::image::read_depth_png(&self.path(split, Modality::Depth2, id))
    }
}

/// Sorted stems of the files in `dir` with extension `ext`.
pub fn list_ids(dir: &Path, ext: &str) -> Result<Vec<FrameId>> {
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| KittiError::io(dir, e))? {
        let path = entry.map_err(|e| KittiError::io(dir, e))?.path();
        if path.extension().is_some_and(|e| e == ext)
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            && !stem.starts_with('.')
        {
            ids.push(stem.to_owned());
        }
    }
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_over_a_small_layout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for id in ["000002", "000000", "000001"] {
            crate::io::write_atomic(&root.join(format!("training/label_2/{id}.txt")), b"").unwrap();
        }
        crate::io::write_atomic(&root.join("training/label_2/notes.md"), b"").unwrap();
        crate::split::write_split(&root.join("ImageSets/val.txt"), &["000001".into()]).unwrap();
        let ds = KittiDataset::open(root).unwrap();
        assert_eq!(
            ds.frame_ids(Split::Training).unwrap(),
            vec!["000000", "000001", "000002"]
        );
        assert_eq!(ds.image_set("val").unwrap(), vec!["000001"]);
        assert!(ds.labels(Split::Training, "000001").unwrap().is_empty());
        assert_eq!(
            ds.path(Split::Testing, Modality::Velodyne, "000003"),
            root.join("testing/velodyne/000003.bin")
        );
        let err = ds.calib(Split::Training, "000001").unwrap_err();
        assert!(err.to_string().contains("training/calib/000001.txt"), "{err}");
        assert!(ds.frame_ids(Split::Testing).is_err());
        assert!(KittiDataset::open(root.join("training")).is_err());
    }
}
