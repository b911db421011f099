//! The error type of the `detection` crate: every variant names the file, and the line (or the
//! detection's line in `<id>.txt`) where there is one.

use std::path::PathBuf;

/// Errors reading or writing detection files.
#[derive(Debug, thiserror::Error)]
pub enum DetectionError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A frame has no result file (`<id>.txt`).
    #[error("{path}: no detection file for this frame")]
    MissingFile {
        /// The missing result file.
        path: PathBuf,
    },
    /// Reading or writing a KITTI-format file (result lines, PNG, atomic write) failed; the error
    /// names the file and, for text, the line. Malformed lines and NaN or infinite numbers (box,
    /// score, any field) are reported this way, by [`kitti::Object::parse`].
    #[error(transparent)]
    Kitti(#[from] kitti::KittiError),
    /// A detection line has no score (16th field).
    #[error("{path}:{line}: a detection needs a score (16th field)")]
    MissingScore {
        /// The result file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A detection box has its right edge left of its left edge, or its bottom above its top.
    #[error("{path}:{line}: inverted box (left {left}, top {top}, right {right}, bottom {bottom}), px")]
    InvertedBox {
        /// The result file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Left edge, px.
        left: f64,
        /// Top edge, px.
        top: f64,
        /// Right edge, px.
        right: f64,
        /// Bottom edge, px.
        bottom: f64,
    },
    /// A frame has both mask files; which one holds the masks is ambiguous.
    #[error("{png} and {json} both exist: ambiguous masks (keep one)")]
    AmbiguousMasks {
        /// The instance-map mask file (`<id>.png`).
        png: PathBuf,
        /// The run-length mask file (`<id>.json`).
        json: PathBuf,
    },
    /// A mask file is not of the image's size.
    #[error("{path}: mask size {found_width}×{found_height} px, but the image is {width}×{height} px")]
    MaskSize {
        /// The mask file.
        path: PathBuf,
        /// Image width, px.
        width: u32,
        /// Image height, px.
        height: u32,
        /// Mask width, px.
        found_width: u32,
        /// Mask height, px.
        found_height: u32,
    },
    /// A mask PNG holds an id that has no result line.
    #[error("{path}: mask id {id} has no detection line ({lines} lines)")]
    MaskIdOutOfRange {
        /// The mask file.
        path: PathBuf,
        /// The offending id (line index + 1).
        id: u16,
        /// Detection lines in the result file.
        lines: usize,
    },
    /// A mask PNG pixel lies outside the pixel window of its detection's box.
    #[error("{path}: pixel ({x}, {y}) of mask id {id} lies outside its detection's box")]
    MaskOutsideBox {
        /// The mask file.
        path: PathBuf,
        /// The mask id (line index + 1).
        id: u16,
        /// Column, px.
        x: u32,
        /// Row, px.
        y: u32,
    },
    /// A run-length mask file is not valid JSON or not an array of `null` / `{"size", "counts"}`.
    #[error("{path}: {message}")]
    Json {
        /// The mask file.
        path: PathBuf,
        /// What went wrong (with line and column for parse errors).
        message: String,
    },
    /// A run-length mask file has not one entry per detection line.
    #[error("{path}: {entries} mask entries for {lines} detection lines")]
    MaskCount {
        /// The mask file.
        path: PathBuf,
        /// Entries in the JSON array.
        entries: usize,
        /// Detection lines in the result file.
        lines: usize,
    },
    /// A run-length mask entry is not a valid encoding.
    #[error("{path}: mask entry {entry} (detection line {line}): {source}")]
    Rle {
        /// The mask file.
        path: PathBuf,
        /// 0-based index in the JSON array.
        entry: usize,
        /// 1-based line of its detection in the result file.
        line: usize,
        /// What is wrong with the encoding.
        source: RleError,
    },
    /// More detections than a 16-bit mask PNG can number.
    #[error("{path}: {count} detections do not fit a 16-bit mask map (at most 65535)")]
    TooManyDetections {
        /// The mask file.
        path: PathBuf,
        /// Detections given.
        count: usize,
    },
}

/// What is wrong with a run-length encoding (the caller adds the file and entry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RleError {
    /// The run lengths do not add up to `height × width`.
    #[error("run lengths add up to {sum}, but the mask has {height}×{width} = {expected} pixels")]
    CountSum {
        /// Sum of the run lengths.
        sum: u64,
        /// Mask height, px.
        height: u32,
        /// Mask width, px.
        width: u32,
        /// `height × width`.
        expected: u64,
    },
    /// A character of a compressed counts string is outside `'0'..='o'` (ASCII 48–111).
    #[error("character {character:?} at byte {position} is not a compressed-RLE digit ('0'..='o')")]
    BadCharacter {
        /// The character.
        character: char,
        /// Byte offset in the string.
        position: usize,
    },
    /// A compressed counts string ends in the middle of a number.
    #[error("the compressed counts string ends inside a number")]
    Truncated,
    /// A compressed number has too many digits, or decodes to a run length outside `0..=u32::MAX`.
    #[error("run {index} decodes to an invalid length ({value})")]
    BadRun {
        /// 0-based index of the run.
        index: usize,
        /// The decoded value (saturated when too long).
        value: i64,
    },
}

/// `Result` with [`DetectionError`].
pub type Result<T, E = DetectionError> = std::result::Result<T, E>;
