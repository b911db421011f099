//! The error type of KITTI I/O: every variant names the file, and the line where there is one.

use std::path::PathBuf;

/// Errors reading or writing KITTI files.
#[derive(Debug, thiserror::Error)]
pub enum KittiError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A label line has the wrong number of fields.
    #[error("{path}:{line}: expected {expected} fields, found {found}")]
    FieldCount {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected (e.g. "15 or 16").
        expected: &'static str,
        /// Fields found.
        found: usize,
    },
    /// A field is not a number.
    #[error("{path}:{line}: field `{field}` is not a number: {text:?}")]
    ParseNumber {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field's name.
        field: String,
        /// The offending text.
        text: String,
    },
    /// A field is NaN or infinite.
    #[error("{path}:{line}: field `{field}` is not finite: {text:?}")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field's name.
        field: String,
        /// The offending text.
        text: String,
    },
    /// A calibration key is missing.
    #[error("{path}: missing calibration key `{key}`")]
    MissingCalibKey {
        /// The file.
        path: PathBuf,
        /// The missing key.
        key: &'static str,
    },
    /// A line of a text file has no recognisable structure (e.g. a calib line without `KEY:`).
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A velodyne `.bin` size is not a multiple of 16 bytes (4 × f32): truncated or not a point cloud.
    #[error("{path}: {len} bytes is not a multiple of 16 (x, y, z, intensity as f32): truncated file?")]
    BinSize {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
    },
    /// An image could not be decoded or encoded.
    #[error("{path}: unreadable image: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: ::image::ImageError,
    },
    /// An image has the wrong pixel format (e.g. an 8-bit depth map).
    #[error("{path}: expected {expected}, found {found}")]
    ImageFormat {
        /// The file.
        path: PathBuf,
        /// The expected format.
        expected: &'static str,
        /// The format found.
        found: String,
    },
    /// A dataset directory does not have the KITTI layout.
    #[error("{path}: {message}")]
    Layout {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
}

impl KittiError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
