//! The [`Detector`] trait the pipeline runs 2D detection through, and [`FileDetector`], which reads
//! detections written beforehand (by a real detector, the simulator or `cargo xtask make-detections`).

use crate::error::Result;
use crate::files::read_detections;
use crate::types::Detection;
use std::path::PathBuf;

/// A source of 2D detections per frame. Object-safe (`Box<dyn Detector>`), and shareable across the
/// pipeline's worker threads.
pub trait Detector: Send + Sync {
    /// Short name for logs and reports.
    fn name(&self) -> &str;

    /// The detections of frame `id` whose camera image is `image_size` = (width, height) px.
    fn detect(&self, id: &str, image_size: (u32, u32)) -> Result<Vec<Detection>>;
}

/// Detections read from a folder of files (`<dir>/<id>.txt` plus an optional `<id>.png` or
/// `<id>.json` mask file; see the crate documentation), e.g. `training/detection_2`.
///
/// A frame without `<id>.txt` is a [`crate::DetectionError::MissingFile`] naming it; mask files must
/// have the image's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDetector {
    /// The folder holding the files.
    pub dir: PathBuf,
}

impl FileDetector {
    /// A detector reading the files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

impl Detector for FileDetector {
    /// The folder's name (e.g. `detection_2`), or `files` when it has none.
    fn name(&self) -> &str {
        self.dir.file_name().and_then(|n| n.to_str()).unwrap_or("files")
    }

    fn detect(&self, id: &str, image_size: (u32, u32)) -> Result<Vec<Detection>> {
        read_detections(&self.dir, id, Some(image_size))
    }
}
