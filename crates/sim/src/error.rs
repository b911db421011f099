//! The error type of the `sim` crate: every variant names the file, and the line where there is one.

use std::path::PathBuf;

/// Errors reading or writing shape files and simulated sensor outputs.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading or writing a KITTI-format file (text, PNG, atomic write) failed; the error names the
    /// file and, for text, the line.
    #[error(transparent)]
    Kitti(#[from] kitti::KittiError),
    /// A number on an OBJ line is not a finite number.
    #[error("{path}:{line}: {what} is not a finite number: {text:?}")]
    ParseNumber {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the number is (e.g. "vertex coordinate").
        what: &'static str,
        /// The offending text.
        text: String,
    },
    /// A vertex line has fewer than 3 coordinates.
    #[error("{path}:{line}: a vertex needs 3 coordinates, found {found}")]
    ShortVertex {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Coordinates found.
        found: usize,
    },
    /// A face refers to a vertex that does not exist (yet).
    #[error("{path}:{line}: vertex index {index} is out of range ({count} vertices defined so far)")]
    IndexOutOfRange {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The index as written (1-based, or negative = relative).
        index: i64,
        /// Vertices defined before this line.
        count: usize,
    },
    /// A face has fewer than 3 vertices.
    #[error("{path}:{line}: a face needs at least 3 vertices, found {found}")]
    ShortFace {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Vertices found.
        found: usize,
    },
    /// The file holds no triangles.
    #[error("{path}: the mesh has no faces")]
    EmptyMesh {
        /// The file.
        path: PathBuf,
    },
    /// A library folder holds no `.obj` file.
    #[error("{path}: no .obj files in this folder")]
    NoMeshes {
        /// The folder.
        path: PathBuf,
    },
    /// Writing a frame's detection files failed; the error names the file.
    #[error(transparent)]
    Detection(#[from] detection::DetectionError),
    /// A JSON file could not be written or parsed.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What went wrong (with the line for parse errors).
        message: String,
    },
}

/// `Result` with [`SimError`].
pub type Result<T> = std::result::Result<T, SimError>;
