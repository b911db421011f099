//! `ImageSets/*.txt`: one frame id per line (`train.txt`, `val.txt`, …).

use crate::{FrameId, KittiError, Result, io};
use std::path::Path;

/// Parses a split file: one id per non-blank line; an id is a single token of letters, digits, `_`, `-`.
pub fn parse_split(text: &str, path: &Path) -> Result<Vec<FrameId>> {
    let mut ids = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let id = line.trim();
        if id.is_empty() {
            continue;
        }
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(KittiError::Malformed {
                path: path.into(),
                line: i + 1,
                message: format!("not a frame id: {id:?}"),
            });
        }
        ids.push(id.to_owned());
    }
    Ok(ids)
}

/// Reads a split file.
pub fn read_split(path: &Path) -> Result<Vec<FrameId>> {
    parse_split(&io::read_text(path)?, path)
}

/// Writes a split file atomically.
pub fn write_split(path: &Path, ids: &[FrameId]) -> Result<()> {
    let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
    io::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ImageSets/val.txt");
        let ids: Vec<FrameId> = vec!["000001".into(), "000004".into(), "007480".into()];
        write_split(&path, &ids).unwrap();
        assert_eq!(read_split(&path).unwrap(), ids);
        assert_eq!(
            parse_split("000001\r\n\n000002\n", &path).unwrap(),
            vec!["000001", "000002"]
        );
        let err = parse_split("000001\n0000 02\n", &path).unwrap_err();
        assert!(matches!(err, KittiError::Malformed { line: 2, .. }), "{err}");
    }
}
