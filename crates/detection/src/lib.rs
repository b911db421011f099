//! 2D detections for the autolabel pipeline: the [`Detection`] type (class, box, score, optional
//! instance [`Mask`]), the files detections are stored in, the [`Detector`] trait the pipeline runs
//! detection through ([`FileDetector`] reads the files), and the [`DetectionFilter`] (classes,
//! score, box height, NMS) applied before the 3D stages. It knows nothing of the simulator: real
//! detectors, the simulated one (`sim::detector`) and `cargo xtask make-detections` (ground-truth
//! boxes) all write the same files.
//!
//! # Files
//!
//! A detection folder (`training/detection_2`, `training/detection_gt_2`, …) holds per frame:
//!
//! - `<id>.txt` (required): one KITTI result line per detection, written by
//!   [`kitti::Object::to_line`]: type (`Car`, `Van`, `Pedestrian`, `Cyclist`, …), truncated −1,
//!   occluded −1, alpha −10, the box (px, inclusive extents as in KITTI labels), dimensions −1 −1 −1,
//!   location −1000 −1000 −1000, rotation_y −10 and the score (16th field, required), e.g.
//!   `Car -1.00 -1 -10.00 412.37 170.02 530.88 236.51 -1.00 -1.00 -1.00 -1000.00 -1000.00 -1000.00 -10.00 0.9312`.
//!   Only type, box and score are read; blank lines are skipped. Readers reject (naming file and
//!   line) a wrong field count, a field that is not a number or is NaN or infinite, a missing score
//!   and an inverted box (right < left or bottom < top).
//! - at most one mask file:
//!   - `<id>.png`: a 16-bit greyscale instance map of the image's size; a pixel holds the line index
//!     plus 1 of the detection whose mask covers it (counting non-blank lines), 0 where none does. A
//!     detection's mask is exactly the pixels holding its id, and they must lie in the pixel window
//!     of its box (columns `floor(left) ..= ceil(right)`, rows likewise, [`PixelWindow::of_box`]):
//!     an id without a line or a pixel outside its box is an error. Where masks overlap, the writer
//!     gives the pixel to the higher-scored detection (the earlier line on equal scores), so a
//!     lower-scored detection's mask loses the overlap. Every detection read from a PNG has a mask
//!     (empty when it owns no pixel).
//!   - `<id>.json`: COCO run-length encodings as `pycocotools.mask.encode` makes them, a JSON array
//!     with one entry per line of `<id>.txt`, in order: `null` for a detection without mask, else
//!     `{"size": [height, width], "counts": …}` over the whole image, `counts` either a list of run
//!     lengths (uncompressed RLE) or pycocotools' compressed string ([`rle`] describes both). On
//!     reading, a mask is cut to the pixel window of its box: set pixels outside it are clipped off
//!     without error (Mask R-CNN masks often bleed a pixel or two past the box).
//!   - neither: box-only detections, `mask: None`.
//!
//!   Both files at once are an error naming both. When the caller gives the image size (as
//!   [`Detector::detect`] does), a PNG or an RLE `size` of another size is an error naming the file.
//!
//! [`write_detections`] writes the mask file first and `<id>.txt` last, each atomically, so a present
//! `.txt` always has its mask file. [`read_detections`] gives back what [`write_detections`] wrote
//! when boxes are rounded to 0.01 px and scores to 1e-4 (the line's precision) and every mask lies in
//! its box's pixel window; for the PNG, also when no two masks overlap and every detection has a mask
//! (a PNG cannot tell "no mask" from an empty one).
//!
//! # Modules
//!
//! - [`mask`]: [`Mask`] and [`PixelWindow`].
//! - [`rle`]: COCO run-length encoding ([`Rle`]), both count forms.
//! - [`files`]: [`write_detections`], [`read_detections`], [`MaskFormat`].
//! - [`detector`]: [`Detector`], [`FileDetector`].
//! - [`filter`]: the [`DetectionFilter`] (classes, score, box height, NMS).

pub mod detector;
mod error;
pub mod files;
pub mod filter;
pub mod mask;
pub mod rle;
mod types;

pub use detector::{Detector, FileDetector};
pub use error::{DetectionError, Result, RleError};
pub use files::{MaskFormat, read_detections, write_detections};
pub use filter::DetectionFilter;
pub use mask::{Mask, PixelWindow};
pub use rle::{Rle, RleEncoding};
pub use types::{Detection, is_detected_type};
