//! The depth sources and the choice between them.

use crate::error::{DepthError, Result};
use geom::{Calib, Camera};
use kitti::image::{DepthMap, read_depth_png};
use nalgebra::Vector4;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Folders of a KITTI-layout split that hold ground truth, never an autolabeler input.
pub const GROUND_TRUTH_FOLDERS: &[&str] = &["depth_2"];

/// A per-frame dense depth map (metres, `image_2` pixels, 0 = no value).
pub trait DepthSource: Send + Sync {
    /// Short name for logs and reports.
    fn name(&self) -> String;
    /// The depth map of frame `id`, whose image is `image_size` = (width, height) px and whose
    /// calibration is `calib`. Errors name the file.
    fn depth(&self, id: &str, calib: &Calib, image_size: (u32, u32)) -> Result<DepthMap>;
}

/// A folder of KITTI depth PNGs, `<dir>/<id>.png` (uint16 = metres × 256, 0 = no value).
#[derive(Clone, Debug)]
pub struct PngDepth {
    dir: PathBuf,
}

impl PngDepth {
    /// Depth maps from `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PngDepth { dir: dir.into() }
    }
}

impl DepthSource for PngDepth {
    fn name(&self) -> String {
        format!("png:{}", self.dir.display())
    }

    fn depth(&self, id: &str, _calib: &Calib, image_size: (u32, u32)) -> Result<DepthMap> {
        let path = self.dir.join(format!("{id}.png"));
        let map = read_depth_png(&path)?;
        if (map.width, map.height) != image_size {
            return Err(DepthError::Size {
                path,
                expected_w: image_size.0,
                expected_h: image_size.1,
                found_w: map.width,
                found_h: map.height,
            });
        }
        Ok(map)
    }
}

/// The LIDAR sweep `<dir>/<id>.bin` projected into the left colour camera: every pixel hit by a
/// point gets the nearest such point's camera depth (sparse).
#[derive(Clone, Debug)]
pub struct LidarDepth {
    dir: PathBuf,
}

impl LidarDepth {
    /// Sweeps from `dir` (a `velodyne` folder).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LidarDepth { dir: dir.into() }
    }
}

/// Projects Velodyne points into a `width × height` map with `calib`'s `P2`, nearest point per
/// pixel (pixel centres at integer coordinates).
pub fn project_points(points_velo: &[[f32; 3]], calib: &Calib, image_size: (u32, u32)) -> DepthMap {
    let (w, h) = image_size;
    let mut map = DepthMap::new(w, h);
    let image_from_velo = calib.image_from_velo(Camera::Cam2);
    for p in points_velo {
        let q = image_from_velo * Vector4::new(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]), 1.0);
        let depth_m = q.z;
        if depth_m.is_nan() || depth_m <= 0.1 || !depth_m.is_finite() {
            continue;
        }
        let (u, v) = ((q.x / depth_m).round(), (q.y / depth_m).round());
        if u < 0.0 || v < 0.0 || u >= f64::from(w) || v >= f64::from(h) {
            continue;
        }
        let (u, v) = (u as u32, v as u32);
        let d = depth_m as f32;
        if map.get(u, v).is_none_or(|old| d < old) {
            map.set(u, v, d);
        }
    }
    map
}

impl DepthSource for LidarDepth {
    fn name(&self) -> String {
        format!("lidar:{}", self.dir.display())
    }

    fn depth(&self, id: &str, calib: &Calib, image_size: (u32, u32)) -> Result<DepthMap> {
        let path = self.dir.join(format!("{id}.bin"));
        let points: Vec<[f32; 3]> = kitti::velodyne::read_velodyne(&path)?
            .iter()
            .map(|p| [p.x, p.y, p.z])
            .collect();
        Ok(project_points(&points, calib, image_size))
    }
}

/// Which kind of source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepthKind {
    /// KITTI depth PNGs from `folder`.
    #[default]
    Png,
    /// The LIDAR sweeps of `folder` projected into the image.
    Lidar,
}

/// Where a run's depth comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DepthConfig {
    /// The kind.
    pub source: DepthKind,
    /// Folder under the split (`training/`), or an absolute path: `mono_depth_2` (PNG) or
    /// `velodyne` (LIDAR).
    pub folder: PathBuf,
    /// Allow a ground-truth folder ([`GROUND_TRUTH_FOLDERS`]): only for an oracle ablation.
    pub allow_ground_truth: bool,
    /// The camera's height above the road, m: when positive, the user of the map (the monocular
    /// labeler) rescales each map so that the road plane fitted to it lies this far below the
    /// camera — a self-supervised network's metric scale is off by several per cent per frame, and
    /// the rig's camera height is known (KITTI: 1.65 m). 0 keeps the map as it is.
    pub camera_height_m: f64,
    /// Road pixels farther than this are not used for that plane, m.
    pub road_max_depth_m: f64,
    /// After that rescaling, the local correction by the road plane ([`crate::road`]):
    /// `sigma_px = 0` turns it off.
    pub road_correction: crate::road::RoadCorrection,
}

impl Default for DepthConfig {
    fn default() -> Self {
        DepthConfig {
            source: DepthKind::Png,
            folder: PathBuf::from("mono_depth_2"),
            allow_ground_truth: false,
            camera_height_m: 1.65,
            road_max_depth_m: 30.0,
            road_correction: crate::road::RoadCorrection::default(),
        }
    }
}

/// The source of `config` for the split folder `split_dir` (e.g. `ROOT/training`). Errors: a
/// missing folder, or ground truth without `allow_ground_truth`.
pub fn open(split_dir: &Path, config: &DepthConfig) -> Result<Box<dyn DepthSource>> {
    let named = config
        .folder
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if !config.allow_ground_truth && GROUND_TRUTH_FOLDERS.contains(&named) {
        return Err(DepthError::GroundTruth {
            folder: config.folder.display().to_string(),
        });
    }
    let dir = if config.folder.is_absolute() {
        config.folder.clone()
    } else {
        split_dir.join(&config.folder)
    };
    if !dir.is_dir() {
        return Err(DepthError::MissingFolder(dir));
    }
    tracing::debug!(dir = %dir.display(), kind = ?config.source, "depth source");
    Ok(match config.source {
        DepthKind::Png => Box::new(PngDepth::new(dir)),
        DepthKind::Lidar => Box::new(LidarDepth::new(dir)),
    })
}

/// The median of the valid depths at the pixels `pixels` of `map` (None if none is valid).
pub fn median_depth_m(map: &DepthMap, pixels: impl Iterator<Item = (u32, u32)>) -> Option<f32> {
    let mut v: Vec<f32> = pixels.filter_map(|(x, y)| map.get(x, y)).collect();
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    Some(*m)
}
