//! The error type of the shape library: every variant names the file, and the line where there is one.

use std::path::PathBuf;

/// Errors reading or writing shape files.
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
    /// Writing failed (atomic write of `kitti::io`).
    #[error(transparent)]
    Write(#[from] kitti::KittiError),
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
}

/// `Result` with [`SimError`].
pub type Result<T> = std::result::Result<T, SimError>;
