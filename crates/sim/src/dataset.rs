//! Writing generated frames in the KITTI layout (see `DATASET.md` at the repository root).
//!
//! ```text
//! <root>/dataset.json                    how the dataset was made (seed, frames, library, config)
//! <root>/ImageSets/{train,val,trainval}.txt
//! <root>/training/image_2/<id>.png       colour image (left colour camera)
//! <root>/training/velodyne/<id>.bin      LIDAR sweep, f32 × 4 (x, y, z, intensity) per point
//! <root>/training/calib/<id>.txt         P0–P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo
//! <root>/training/label_2/<id>.txt       KITTI labels (DontCare lines last)
//! <root>/training/instance_2/<id>.png    16-bit, pixel = label line + 1, 0 = none
//! <root>/training/depth_2/<id>.png       dense depth, uint16 = metres × 256, 0 = sky
//! <root>/training/objects_2/<id>.json    per label line: shape, exact pose, visibility; road, light
//! <root>/training/detection_2/<id>.txt   simulated 2D detections (KITTI result lines with scores)
//! <root>/training/detection_2/<id>.png   their masks, 16-bit, pixel = detection line + 1 (formats:
//!                                        the `detection` crate)
//! <root>/training/mono_depth_2/<id>.png  simulated monocular depth, uint16 = metres × 256
//! ```
//!
//! `objects_2/<id>.json` is written last: a frame whose JSON exists is complete, which is how an
//! interrupted run resumes.

use crate::error::{Result, SimError};
use crate::frame::{Frame, FrameConfig, ObjectAnnotation};
use crate::scene::RoadLayout;
use crate::shade::Lighting;
use crate::world::Ground;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the car shapes of a dataset come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LibrarySpec {
    /// `ShapeLibrary::procedural(seed, count)`.
    Procedural {
        /// Library seed.
        seed: u64,
        /// Number of shapes.
        count: usize,
    },
    /// A folder of OBJ meshes (`ShapeLibrary::from_obj_dir`), with the names in index order.
    ObjDir {
        /// The folder as given.
        path: PathBuf,
        /// Shape names (file stems) in index order.
        names: Vec<String>,
    },
}

/// `dataset.json`: everything needed to regenerate the dataset bit for bit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// Generator version (the `sim` crate version).
    pub generator: String,
    /// Dataset seed; frame `i` uses `frame::frame_seed(seed, i)`.
    pub seed: u64,
    /// Number of frames, ids `000000` …
    pub frames: usize,
    /// Car shapes.
    pub library: LibrarySpec,
    /// Everything else.
    pub config: FrameConfig,
}

/// `objects_2/<id>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameAnnotations {
    /// The frame's seed.
    pub seed: u64,
    /// Road plane in the Velodyne frame.
    pub ground: Ground,
    /// Lanes and sidewalks.
    pub road: RoadLayout,
    /// The image's lighting.
    pub lighting: Lighting,
    /// One per label line, in line order.
    pub objects: Vec<ObjectAnnotation>,
}

/// The 6-digit id of frame `index`.
pub fn frame_id(index: usize) -> String {
    format!("{index:06}")
}

/// The folders of a dataset's `training` split.
pub const FOLDERS: [&str; 9] = [
    "image_2",
    "velodyne",
    "calib",
    "label_2",
    "instance_2",
    "depth_2",
    "objects_2",
    "detection_2",
    "mono_depth_2",
];

fn training(root: &Path, folder: &str) -> PathBuf {
    root.join("training").join(folder)
}

/// Creates the folders of a dataset.
pub fn create_layout(root: &Path) -> Result<()> {
    for f in FOLDERS
        .iter()
        .map(|f| training(root, f))
        .chain([root.join("ImageSets")])
    {
        std::fs::create_dir_all(&f).map_err(|source| SimError::Io { path: f, source })?;
    }
    Ok(())
}

/// Whether frame `id` was written completely (its `objects_2` JSON, written last, exists).
pub fn frame_complete(root: &Path, id: &str) -> bool {
    training(root, "objects_2").join(format!("{id}.json")).is_file()
}

/// Writes every file of one frame, each atomically, `objects_2` last.
pub fn write_frame(root: &Path, id: &str, seed: u64, frame: &Frame) -> Result<()> {
    let file = |folder: &str, ext: &str| training(root, folder).join(format!("{id}.{ext}"));
    kitti::image::write_rgb_png(&file("image_2", "png"), &frame.image)?;
    kitti::velodyne::write_velodyne(&file("velodyne", "bin"), &frame.scan.points)?;
    kitti::calib::write_calib(&file("calib", "txt"), &frame.calib)?;
    kitti::label::write_labels(&file("label_2", "txt"), &frame.labels)?;
    kitti::image::write_instance_png(&file("instance_2", "png"), &frame.instance)?;
    kitti::image::write_depth_png(&file("depth_2", "png"), &frame.depth)?;
    detection::write_detections(
        &training(root, "detection_2"),
        id,
        (frame.image.width(), frame.image.height()),
        &frame.detections,
        detection::MaskFormat::Png,
    )?;
    kitti::image::write_depth_png(&file("mono_depth_2", "png"), &frame.mono_depth)?;
    let annotations = FrameAnnotations {
        seed,
        ground: frame.scene.ground,
        road: frame.scene.road.clone(),
        lighting: frame.lighting.clone(),
        objects: frame.annotations.clone(),
    };
    write_json(&file("objects_2", "json"), &annotations)
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| SimError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    kitti::io::write_atomic(path, format!("{text}\n").as_bytes())?;
    Ok(())
}

/// Reads `objects_2/<id>.json`.
pub fn read_annotations(root: &Path, id: &str) -> Result<FrameAnnotations> {
    read_json(&training(root, "objects_2").join(format!("{id}.json")))
}

/// Reads `dataset.json` of `root`.
pub fn read_spec(root: &Path) -> Result<DatasetSpec> {
    read_json(&root.join("dataset.json"))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = kitti::io::read_text(path)?;
    serde_json::from_str(&text).map_err(|e| SimError::Json {
        path: path.to_path_buf(),
        message: format!("line {}: {e}", e.line()),
    })
}

/// Which split frame `index` belongs to: about half train, half val (like KITTI's 3712 / 3769),
/// decided by a hash of `(seed, index)` so that adding frames never moves existing ones.
pub fn is_val(seed: u64, index: usize) -> bool {
    crate::car::splitmix64(seed ^ crate::car::splitmix64(index as u64 ^ 0x5B11)) & 1 == 1
}

/// Writes `ImageSets/{train,val,trainval}.txt` for frames `0..frames`.
pub fn write_splits(root: &Path, seed: u64, frames: usize) -> Result<()> {
    let ids: Vec<String> = (0..frames).map(frame_id).collect();
    let (val, train): (Vec<_>, Vec<_>) = (0..frames).partition(|&i| is_val(seed, i));
    let pick = |v: Vec<usize>| v.into_iter().map(frame_id).collect::<Vec<_>>();
    let sets = root.join("ImageSets");
    kitti::split::write_split(&sets.join("train.txt"), &pick(train))?;
    kitti::split::write_split(&sets.join("val.txt"), &pick(val))?;
    kitti::split::write_split(&sets.join("trainval.txt"), &ids)?;
    Ok(())
}
