//! `velodyne/*.bin`: little-endian `f32` quadruples `x y z reflectance` in the LIDAR frame.

use crate::{KittiError, Result, io};
use std::path::Path;

/// One LIDAR return: position in the `velo` frame, m, and reflectance 0–1.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct VeloPoint {
    /// Forward, m.
    pub x: f32,
    /// Left, m.
    pub y: f32,
    /// Up, m.
    pub z: f32,
    /// Reflectance, 0–1.
    pub intensity: f32,
}

/// Decodes the bytes of a `.bin` file. `path` only names the file in errors.
pub fn parse_velodyne(bytes: &[u8], path: &Path) -> Result<Vec<VeloPoint>> {
    if !bytes.len().is_multiple_of(16) {
        return Err(KittiError::BinSize {
            path: path.into(),
            len: bytes.len() as u64,
        });
    }
    let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    Ok(bytes
        .chunks_exact(16)
        .map(|c| VeloPoint {
            x: f(&c[0..4]),
            y: f(&c[4..8]),
            z: f(&c[8..12]),
            intensity: f(&c[12..16]),
        })
        .collect())
}

/// Reads a `.bin` point cloud.
pub fn read_velodyne(path: &Path) -> Result<Vec<VeloPoint>> {
    parse_velodyne(&io::read(path)?, path)
}

/// Encodes points as the bytes of a `.bin` file.
pub fn encode_velodyne(points: &[VeloPoint]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(points.len() * 16);
    for p in points {
        for v in [p.x, p.y, p.z, p.intensity] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    bytes
}

/// Writes a `.bin` point cloud atomically.
pub fn write_velodyne(path: &Path, points: &[VeloPoint]) -> Result<()> {
    io::write_atomic(path, &encode_velodyne(points))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000000.bin");
        let pts = vec![
            VeloPoint {
                x: 1.5,
                y: -2.25,
                z: 0.125,
                intensity: 0.5,
            },
            VeloPoint {
                x: 80.0,
                y: 3.0,
                z: -1.7,
                intensity: 0.0,
            },
        ];
        write_velodyne(&path, &pts).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 32);
        assert_eq!(read_velodyne(&path).unwrap(), pts);
    }

    #[test]
    fn truncated_file_is_a_typed_error() {
        let bytes = encode_velodyne(&[VeloPoint::default(); 3]);
        let err = parse_velodyne(&bytes[..40], Path::new("velodyne/000009.bin")).unwrap_err();
        assert!(matches!(err, KittiError::BinSize { len: 40, .. }));
        assert!(err.to_string().contains("velodyne/000009.bin"));
    }
}
