//! Reading and writing a frame's detection files: `<id>.txt` result lines and the optional mask file
//! (`<id>.png` instance map or `<id>.json` run-length encoding). The crate documentation describes the
//! formats.

use crate::error::{DetectionError, Result};
use crate::mask::{Mask, PixelWindow};
use crate::rle::{Rle, RleEncoding, RleEntry};
use crate::types::Detection;
use geom::Box2d;
use kitti::image::InstanceMap;
use kitti::{Object, ObjectType};
use std::path::{Path, PathBuf};

/// Which mask file [`write_detections`] writes beside `<id>.txt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaskFormat {
    /// `<id>.png`: a 16-bit instance map of the image's size, pixel = line index + 1.
    Png,
    /// `<id>.json`: one COCO run-length encoding per line (`null` for a detection without mask).
    Rle(RleEncoding),
    /// No mask file: the detections are read back without masks.
    BoxOnly,
}

/// The three files of frame `id` in `dir`: `(<id>.txt, <id>.png, <id>.json)`.
fn paths(dir: &Path, id: &str) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.join(format!("{id}.txt")),
        dir.join(format!("{id}.png")),
        dir.join(format!("{id}.json")),
    )
}

/// The mask map of a frame's detections: pixel = index + 1 of the highest-scored detection whose mask
/// covers it (the lower index on equal scores), 0 = none. Mask pixels outside the image are dropped.
fn mask_map(width: u32, height: u32, dets: &[Detection]) -> InstanceMap {
    let mut order: Vec<usize> = (0..dets.len()).collect();
    order.sort_by(|&a, &b| dets[b].score.total_cmp(&dets[a].score));
    let mut map = InstanceMap::new(width, height);
    for i in order {
        let Some(mask) = &dets[i].mask else {
            continue;
        };
        for (x, y) in mask.pixels() {
            if x < width && y < height {
                let p = &mut map.ids[y as usize * width as usize + x as usize];
                if *p == 0 {
                    *p = (i + 1) as u16;
                }
            }
        }
    }
    map
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DetectionError::Io {
            path: path.into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Writes frame `id`'s detections into `dir` (created when missing): the mask file of `format`
/// first, then `<id>.txt` (one result line per detection, in the given order), each atomically, so a
/// present `.txt` has its mask file. A mask file of the other format left from an earlier run is
/// removed (two mask files would be ambiguous). `image_size` = (width, height) px sizes the PNG and
/// the run-length encodings; mask pixels outside the image are dropped.
///
/// With [`MaskFormat::Png`], where masks overlap the pixel goes to the higher-scored detection (the
/// earlier line on equal scores), and a detection without mask owns no pixel.
pub fn write_detections(
    dir: &Path,
    id: &str,
    image_size: (u32, u32),
    dets: &[Detection],
    format: MaskFormat,
) -> Result<()> {
    let (txt, png, json) = paths(dir, id);
    let (width, height) = image_size;
    match format {
        MaskFormat::Png => {
            if dets.len() > usize::from(u16::MAX) {
                return Err(DetectionError::TooManyDetections {
                    path: png,
                    count: dets.len(),
                });
            }
            kitti::image::write_instance_png(&png, &mask_map(width, height, dets))?;
            remove_if_present(&json)?;
        }
        MaskFormat::Rle(encoding) => {
            let entries: Vec<String> = dets
                .iter()
                .map(|d| match &d.mask {
                    Some(m) => Rle::from_mask(m, width, height).to_json(encoding).to_string(),
                    None => "null".to_owned(),
                })
                .collect();
            let text = if entries.is_empty() {
                "[]\n".to_owned()
            } else {
                format!("[\n{}\n]\n", entries.join(",\n"))
            };
            kitti::io::write_atomic(&json, text.as_bytes())?;
            remove_if_present(&png)?;
        }
        MaskFormat::BoxOnly => {
            remove_if_present(&png)?;
            remove_if_present(&json)?;
        }
    }
    let objects: Vec<Object> = dets.iter().map(Detection::to_object).collect();
    kitti::label::write_labels(&txt, &objects)?;
    Ok(())
}

/// One parsed result line.
struct Line {
    kind: ObjectType,
    bbox: Box2d,
    score: f64,
    /// 1-based line number.
    line: usize,
}

fn read_lines(txt: &Path) -> Result<Vec<Line>> {
    let text = std::fs::read_to_string(txt).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DetectionError::MissingFile { path: txt.into() },
        _ => DetectionError::Io {
            path: txt.into(),
            source: e,
        },
    })?;
    let mut lines = Vec::new();
    for (i, text) in text.lines().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        // Rejects wrong field counts, non-numbers and NaN or infinite fields, naming file and line.
        let object = Object::parse(text, txt, i + 1)?;
        let Some(score) = object.score else {
            return Err(DetectionError::MissingScore {
                path: txt.into(),
                line: i + 1,
            });
        };
        let b = object.bbox;
        if b.right < b.left || b.bottom < b.top {
            return Err(DetectionError::InvertedBox {
                path: txt.into(),
                line: i + 1,
                left: b.left,
                top: b.top,
                right: b.right,
                bottom: b.bottom,
            });
        }
        lines.push(Line {
            kind: object.kind,
            bbox: b,
            score,
            line: i + 1,
        });
    }
    Ok(lines)
}

fn check_size(path: &Path, image_size: Option<(u32, u32)>, found: (u32, u32)) -> Result<()> {
    match image_size {
        Some((width, height)) if (width, height) != found => Err(DetectionError::MaskSize {
            path: path.into(),
            width,
            height,
            found_width: found.0,
            found_height: found.1,
        }),
        _ => Ok(()),
    }
}

/// Masks from a PNG instance map, one per line (an empty mask where a line owns no pixel).
fn png_masks(png: &Path, lines: &[Line], image_size: Option<(u32, u32)>) -> Result<Vec<Mask>> {
    let map = kitti::image::read_instance_png(png)?;
    check_size(png, image_size, (map.width, map.height))?;
    let mut masks: Vec<Mask> = lines
        .iter()
        .map(|l| match PixelWindow::of_box(&l.bbox, map.width, map.height) {
            Some(w) => Mask::from_fn(w, |_, _| false),
            None => Mask::empty(),
        })
        .collect();
    let width = map.width.max(1) as usize;
    for (i, &pixel_id) in map.ids.iter().enumerate() {
        if pixel_id == 0 {
            continue;
        }
        let (x, y) = ((i % width) as u32, (i / width) as u32);
        let Some(mask) = masks.get_mut(usize::from(pixel_id) - 1) else {
            return Err(DetectionError::MaskIdOutOfRange {
                path: png.into(),
                id: pixel_id,
                lines: lines.len(),
            });
        };
        if !mask.window().contains(x, y) {
            return Err(DetectionError::MaskOutsideBox {
                path: png.into(),
                id: pixel_id,
                x,
                y,
            });
        }
        let (dx, dy) = (x - mask.x0, y - mask.y0);
        mask.bits[dy as usize * mask.width as usize + dx as usize] = true;
    }
    Ok(masks)
}

/// Masks from a JSON array of run-length encodings, one entry per line (`null`: no mask), each
/// clipped to its box's pixel window.
fn json_masks(json: &Path, lines: &[Line], image_size: Option<(u32, u32)>) -> Result<Vec<Option<Mask>>> {
    let text = kitti::io::read_text(json)?;
    let entries: Vec<Option<RleEntry>> = serde_json::from_str(&text).map_err(|e| DetectionError::Json {
        path: json.into(),
        message: format!("not a JSON array of null or {{\"size\", \"counts\"}} entries: {e}"),
    })?;
    if entries.len() != lines.len() {
        return Err(DetectionError::MaskCount {
            path: json.into(),
            entries: entries.len(),
            lines: lines.len(),
        });
    }
    let mut masks = Vec::with_capacity(lines.len());
    for (entry, (rle, line)) in entries.into_iter().zip(lines).enumerate() {
        let Some(rle) = rle else {
            masks.push(None);
            continue;
        };
        let rle = Rle::from_entry(rle).map_err(|source| DetectionError::Rle {
            path: json.into(),
            entry,
            line: line.line,
            source,
        })?;
        check_size(json, image_size, (rle.width(), rle.height()))?;
        let mask = match PixelWindow::of_box(&line.bbox, rle.width(), rle.height()) {
            Some(w) => rle.to_mask(w),
            None => Mask::empty(),
        };
        masks.push(Some(mask));
    }
    Ok(masks)
}

/// Reads frame `id`'s detections from `dir`: `<id>.txt` and the mask file beside it, if any (see
/// the crate documentation for the formats). `image_size` = (width, height) px, when given, is the
/// size every mask file must have.
///
/// Masks: from `<id>.png`, every detection gets a mask (empty when it owns no pixel); from
/// `<id>.json`, the entries that are not `null`, clipped to the box's pixel window; with neither
/// file, none.
///
/// Errors (each naming the file, and the line where there is one): no `<id>.txt`
/// ([`DetectionError::MissingFile`]), a malformed line or a NaN or infinite field (wrapped
/// [`kitti::KittiError`]), a line without score, an inverted box, both mask files, a mask file of
/// the wrong size, a PNG id without line or a PNG pixel outside its box's window, a JSON file that
/// is not one valid encoding (or `null`) per line.
pub fn read_detections(dir: &Path, id: &str, image_size: Option<(u32, u32)>) -> Result<Vec<Detection>> {
    let (txt, png, json) = paths(dir, id);
    let lines = read_lines(&txt)?;
    let masks: Vec<Option<Mask>> = match (png.is_file(), json.is_file()) {
        (true, true) => return Err(DetectionError::AmbiguousMasks { png, json }),
        (true, false) => png_masks(&png, &lines, image_size)?
            .into_iter()
            .map(Some)
            .collect(),
        (false, true) => json_masks(&json, &lines, image_size)?,
        (false, false) => vec![None; lines.len()],
    };
    Ok(lines
        .into_iter()
        .zip(masks)
        .map(|(l, mask)| Detection {
            kind: l.kind,
            bbox: l.bbox,
            score: l.score,
            mask,
        })
        .collect())
}
