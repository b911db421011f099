//! COCO run-length encoding (RLE) of binary masks, as `pycocotools.mask` writes it.
//!
//! A mask over a whole `height` × `width` image is read in **column-major** order (down the first
//! column, then down the second, …) and stored as the lengths of its runs, alternating between 0s
//! and 1s and **starting with 0s** (so a mask whose first pixel is set starts with a run of length
//! 0). The lengths add up to `height · width`. In JSON:
//!
//! - uncompressed: `{"size": [height, width], "counts": [3, 2, 4]}`;
//! - compressed (pycocotools' `rleToString`): `{"size": [height, width], "counts": "32l1"}`, each run
//!   length written like LEB128 but with 6 bits per character: the value is split into 5-bit groups,
//!   least significant first; each group becomes one character `48 + group`, plus 32 when more
//!   groups follow; the last group's bit 4 is the sign (two's complement). From the fourth run on
//!   (index ≥ 3), the value written is the difference to the run two places before (same colour), so
//!   it may be negative. Characters are ASCII `'0'` (48) to `'o'` (111).
//!
//! Example (hand-computed, and what pycocotools gives): a 10 × 11 (height × width) mask whose last
//! column holds rows 0–4 and 8–9 has runs `[100, 5, 3, 2]`; 100 = 3·32 + 4 → groups 4, 3 → `'T'`
//! (48 + 4 + 32), `'3'`; 5 → `'5'`; 3 → `'3'`; the fourth run is written as 2 − 5 = −3, one group
//! 29 (bit 4 set: negative) → `'M'`. Compressed: `"T353M"`.

use crate::error::RleError;
use crate::mask::{Mask, PixelWindow};
use serde::{Deserialize, Serialize};

/// How the run lengths of an [`Rle`] are written in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RleEncoding {
    /// A list of integers (`"counts": [3, 2, 4]`), pycocotools' uncompressed RLE.
    Uncompressed,
    /// pycocotools' compressed string (`"counts": "32l1"`), what `pycocotools.mask.encode` returns.
    #[default]
    Compressed,
}

/// The run-length encoding of a binary mask over a whole image (see the module documentation). The
/// run lengths always add up to `height · width`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rle {
    /// Image height, px.
    height: u32,
    /// Image width, px.
    width: u32,
    /// Run lengths in column-major order, alternating 0s and 1s, starting with 0s.
    counts: Vec<u32>,
}

impl Rle {
    /// An encoding from its run lengths; they must add up to `height · width`.
    pub fn new(height: u32, width: u32, counts: Vec<u32>) -> Result<Self, RleError> {
        let sum: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        let expected = u64::from(height) * u64::from(width);
        if sum != expected {
            return Err(RleError::CountSum {
                sum,
                height,
                width,
                expected,
            });
        }
        Ok(Self {
            height,
            width,
            counts,
        })
    }

    /// Decodes pycocotools' compressed counts string for a `height` × `width` image.
    pub fn from_compressed(height: u32, width: u32, counts: &str) -> Result<Self, RleError> {
        Self::new(height, width, decompress_counts(counts)?)
    }

    /// Encodes `mask` over a whole `image_width` × `image_height` image; mask pixels outside the
    /// image are dropped.
    pub fn from_mask(mask: &Mask, image_width: u32, image_height: u32) -> Self {
        let mut runs = Runs::default();
        let h = u64::from(image_height);
        // Rows of the mask's window inside the image.
        let row_end = mask.y0.saturating_add(mask.height).min(image_height);
        let row_start = mask.y0.min(row_end);
        for x in 0..image_width {
            if !(mask.x0..mask.x0.saturating_add(mask.width)).contains(&x) {
                runs.push(false, h);
                continue;
            }
            runs.push(false, u64::from(row_start));
            for y in row_start..row_end {
                runs.push(mask.contains(x, y), 1);
            }
            runs.push(false, u64::from(image_height - row_end));
        }
        Self {
            height: image_height,
            width: image_width,
            counts: runs.finish(),
        }
    }

    /// Image height, px.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Image width, px.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The run lengths (column-major, alternating 0s and 1s, starting with 0s).
    pub fn counts(&self) -> &[u32] {
        &self.counts
    }

    /// Number of set pixels.
    pub fn area_px(&self) -> u64 {
        self.counts.iter().skip(1).step_by(2).map(|&c| u64::from(c)).sum()
    }

    /// pycocotools' compressed string of the run lengths.
    pub fn to_compressed(&self) -> String {
        compress_counts(&self.counts)
    }

    /// The mask over `window`: set pixels outside the window are clipped off, window pixels outside
    /// the encoded image are unset.
    pub fn to_mask(&self, window: PixelWindow) -> Mask {
        let mut mask = Mask::from_fn(window, |_, _| false);
        let h = u64::from(self.height);
        if h == 0 || window.width == 0 || window.height == 0 {
            return mask;
        }
        let (wx0, wx1) = (
            u64::from(window.x0),
            u64::from(window.x0) + u64::from(window.width),
        );
        let (wy0, wy1) = (
            u64::from(window.y0),
            u64::from(window.y0) + u64::from(window.height),
        );
        let mut start = 0u64;
        for (i, &count) in self.counts.iter().enumerate() {
            let end = start + u64::from(count);
            if i % 2 == 1 && count > 0 {
                // Columns the run touches, clipped to the window's columns.
                let (first_col, last_col) = (start / h, (end - 1) / h);
                for col in first_col.max(wx0)..=last_col.min(wx1.saturating_sub(1)) {
                    let r0 = if col == first_col { start % h } else { 0 };
                    let r1 = if col == last_col { (end - 1) % h + 1 } else { h };
                    for row in r0.max(wy0)..r1.min(wy1) {
                        let i = (row - wy0) as usize * window.width as usize + (col - wx0) as usize;
                        mask.bits[i] = true;
                    }
                }
            }
            start = end;
        }
        mask
    }

    /// The JSON entry `{"size": [height, width], "counts": …}` in the given encoding.
    pub fn to_json(&self, encoding: RleEncoding) -> serde_json::Value {
        let counts = match encoding {
            RleEncoding::Uncompressed => serde_json::Value::from(self.counts.clone()),
            RleEncoding::Compressed => serde_json::Value::from(self.to_compressed()),
        };
        serde_json::json!({ "size": [self.height, self.width], "counts": counts })
    }

    /// Decodes a parsed JSON entry (either encoding).
    pub(crate) fn from_entry(entry: RleEntry) -> Result<Self, RleError> {
        let [height, width] = entry.size;
        match entry.counts {
            Counts::Compressed(s) => Self::from_compressed(height, width, &s),
            Counts::Uncompressed(list) => {
                let counts = list
                    .iter()
                    .enumerate()
                    .map(|(index, &c)| {
                        u32::try_from(c).map_err(|_| RleError::BadRun {
                            index,
                            value: i64::try_from(c).unwrap_or(i64::MAX),
                        })
                    })
                    .collect::<Result<Vec<u32>, _>>()?;
                Self::new(height, width, counts)
            }
        }
    }
}

/// One JSON entry as written by pycocotools: `{"size": [height, width], "counts": …}`.
#[derive(Debug, Deserialize)]
pub(crate) struct RleEntry {
    /// `[height, width]`, px.
    size: [u32; 2],
    /// The run lengths, either encoding.
    counts: Counts,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Counts {
    Uncompressed(Vec<u64>),
    Compressed(String),
}

/// Collects run lengths, merging pushes of the same value.
#[derive(Default)]
struct Runs {
    counts: Vec<u32>,
    value: bool,
    current: u64,
}

impl Runs {
    fn push(&mut self, value: bool, len: u64) {
        if len == 0 {
            return;
        }
        if value != self.value {
            self.counts.push(self.current as u32);
            self.value = value;
            self.current = 0;
        }
        self.current += len;
    }

    fn finish(mut self) -> Vec<u32> {
        self.counts.push(self.current as u32);
        self.counts
    }
}

/// pycocotools' `rleToString`: run lengths → compressed string (see the module documentation).
pub fn compress_counts(counts: &[u32]) -> String {
    let mut s = String::new();
    for (i, &count) in counts.iter().enumerate() {
        let mut x = i64::from(count);
        if i > 2 {
            x -= i64::from(counts[i - 2]);
        }
        loop {
            let mut c = (x & 0x1f) as u8;
            x >>= 5;
            let more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                c |= 0x20;
            }
            s.push(char::from(c + 48));
            if !more {
                break;
            }
        }
    }
    s
}

/// pycocotools' `rleFrString`: compressed string → run lengths (see the module documentation).
pub fn decompress_counts(s: &str) -> Result<Vec<u32>, RleError> {
    // At most 12 characters (60 bits) per number: far more than a u32 run length needs.
    const MAX_DIGITS: u32 = 12;
    let bytes = s.as_bytes();
    let mut counts: Vec<u32> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let (mut x, mut k) = (0i64, 0u32);
        loop {
            let Some(&b) = bytes.get(p) else {
                return Err(RleError::Truncated);
            };
            if !(48..=111).contains(&b) {
                // Every earlier byte is ASCII, so `p` is a character boundary.
                let character = s[p..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(RleError::BadCharacter {
                    character,
                    position: p,
                });
            }
            if k == MAX_DIGITS {
                return Err(RleError::BadRun {
                    index: counts.len(),
                    value: x,
                });
            }
            let c = i64::from(b - 48);
            x |= (c & 0x1f) << (5 * k);
            p += 1;
            k += 1;
            if c & 0x20 == 0 {
                if c & 0x10 != 0 {
                    x |= -1i64 << (5 * k);
                }
                break;
            }
        }
        let index = counts.len();
        if index > 2 {
            x += i64::from(counts[index - 2]);
        }
        let count = u32::try_from(x).map_err(|_| RleError::BadRun { index, value: x })?;
        counts.push(count);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_example_of_the_module_docs() {
        assert_eq!(compress_counts(&[100, 5, 3, 2]), "T353M");
        assert_eq!(decompress_counts("T353M"), Ok(vec![100, 5, 3, 2]));
    }

    #[test]
    fn long_and_negative_numbers_round_trip() {
        let counts = vec![0, 465_750, 0, 1, 70_000, 3, 2, u32::MAX, 0, 31, 32, 15, 16, 17];
        let s = compress_counts(&counts);
        assert!(s.bytes().all(|b| (48..=111).contains(&b)), "{s}");
        assert_eq!(decompress_counts(&s), Ok(counts));
    }

    #[test]
    fn bad_strings_are_errors() {
        assert_eq!(decompress_counts(""), Ok(vec![]));
        // 'T' has the continuation bit and nothing follows.
        assert_eq!(decompress_counts("T"), Err(RleError::Truncated));
        assert!(matches!(
            decompress_counts("12 3"),
            Err(RleError::BadCharacter {
                character: ' ',
                position: 2
            })
        ));
        assert!(matches!(
            decompress_counts("1é"),
            Err(RleError::BadCharacter { character: 'é', .. })
        ));
        // 'J' = 48 + 26: one group, sign bit set, −6; the fourth run is −6 + 5 = −1.
        assert_eq!(
            decompress_counts("151J"),
            Err(RleError::BadRun { index: 3, value: -1 })
        );
        assert!(matches!(
            decompress_counts(&"o".repeat(20)),
            Err(RleError::BadRun { index: 0, .. })
        ));
    }
}
