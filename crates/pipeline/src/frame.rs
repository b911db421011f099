//! A frame's inputs as the autolabeler sees them (never its labels), its timings and its results.

use crate::error::Result;
use geom::Calib;
use image::RgbImage;
use kitti::velodyne::VeloPoint;
use kitti::{KittiDataset, Split};
use std::collections::BTreeMap;
use std::time::Instant;

/// Everything the autolabeler reads of one frame: camera image, LIDAR sweep and calibration.
/// Ground truth (`label_2`, `instance_2`, `depth_2`) is never loaded.
#[derive(Clone, Debug)]
pub struct FrameInput {
    /// Frame id (`000123`).
    pub id: String,
    /// `image_2`.
    pub image: RgbImage,
    /// `velodyne`, Velodyne frame.
    pub points_velo: Vec<VeloPoint>,
    /// `calib`.
    pub calib: Calib,
}

impl FrameInput {
    /// Loads frame `id` of `split`; errors name the missing or malformed file.
    pub fn load(dataset: &KittiDataset, split: Split, id: &str) -> Result<Self> {
        Ok(FrameInput {
            id: id.to_owned(),
            calib: dataset.calib(split, id)?,
            image: dataset.image_2(split, id)?,
            points_velo: dataset.velodyne(split, id)?,
        })
    }

    /// Loads frame `id` of `split` without its LIDAR sweep (`points_velo` empty): image and
    /// calibration only, for the monocular mode.
    pub fn load_camera(dataset: &KittiDataset, split: Split, id: &str) -> Result<Self> {
        Ok(FrameInput {
            id: id.to_owned(),
            calib: dataset.calib(split, id)?,
            image: dataset.image_2(split, id)?,
            points_velo: Vec::new(),
        })
    }

    /// The image size, px.
    pub fn image_size(&self) -> (u32, u32) {
        (self.image.width(), self.image.height())
    }
}

/// Wall-clock seconds per stage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageTimer {
    /// Seconds per stage name.
    pub seconds: BTreeMap<&'static str, f64>,
}

impl StageTimer {
    /// Runs `f` and adds its duration to `stage`.
    pub fn time<T>(&mut self, stage: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        *self.seconds.entry(stage).or_insert(0.0) += start.elapsed().as_secs_f64();
        out
    }

    /// Adds every stage of `other`.
    pub fn add(&mut self, other: &StageTimer) {
        for (k, v) in &other.seconds {
            *self.seconds.entry(k).or_insert(0.0) += v;
        }
    }

    /// The sum over stages.
    pub fn total(&self) -> f64 {
        self.seconds.values().sum()
    }
}
