//! Camera images (`image_2/*.png`, any size) and depth maps (`depth_2/*.png`: uint16, metres × 256,
//! 0 = no value, the KITTI depth benchmark's encoding), and [`box_blur`] for per-pixel maps.

use crate::{KittiError, Result, io};
use ::image::{DynamicImage, ImageBuffer, ImageFormat, Luma, RgbImage};
use std::path::Path;

/// Reads a colour image (PNG or any format the `image` crate decodes) as 8-bit RGB.
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = io::read(path)?;
    let img = ::image::load_from_memory(&bytes).map_err(|source| KittiError::Image {
        path: path.into(),
        source,
    })?;
    Ok(img.to_rgb8())
}

/// Encodes an image as PNG bytes (no copy of the pixels).
fn encode_png<P>(img: &ImageBuffer<P, Vec<P::Subpixel>>, path: &Path) -> Result<Vec<u8>>
where
    P: ::image::PixelWithColorType,
    [P::Subpixel]: ::image::EncodableLayout,
{
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, ImageFormat::Png)
        .map_err(|source| KittiError::Image {
            path: path.into(),
            source,
        })?;
    Ok(bytes.into_inner())
}

/// Writes an RGB image as PNG, atomically.
pub fn write_rgb_png(path: &Path, img: &RgbImage) -> Result<()> {
    io::write_atomic(path, &encode_png(img, path)?)
}

/// A dense depth map in metres; pixels without a value hold `0.0`.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthMap {
    /// Width, px.
    pub width: u32,
    /// Height, px.
    pub height: u32,
    /// Row-major depth, m (0 = no value).
    pub depth_m: Vec<f32>,
}

impl DepthMap {
    /// An empty (all-invalid) map.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            depth_m: vec![0.0; width as usize * height as usize],
        }
    }

    /// Depth at pixel `(x, y)`, `None` when out of bounds or without a value.
    pub fn get(&self, x: u32, y: u32) -> Option<f32> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let d = self.depth_m[y as usize * self.width as usize + x as usize];
        (d > 0.0).then_some(d)
    }

    /// Sets the depth at pixel `(x, y)` (0 clears it). Out-of-bounds pixels are ignored.
    pub fn set(&mut self, x: u32, y: u32, depth_m: f32) {
        if x < self.width && y < self.height {
            self.depth_m[y as usize * self.width as usize + x as usize] = depth_m;
        }
    }
}

/// Decodes a 16-bit greyscale image; any other format is an error saying `expected`.
fn read_luma16(path: &Path, expected: &'static str) -> Result<ImageBuffer<Luma<u16>, Vec<u16>>> {
    let bytes = io::read(path)?;
    let img = ::image::load_from_memory(&bytes).map_err(|source| KittiError::Image {
        path: path.into(),
        source,
    })?;
    match img {
        DynamicImage::ImageLuma16(buf) => Ok(buf),
        other => Err(KittiError::ImageFormat {
            path: path.into(),
            expected,
            found: format!("{:?}", other.color()),
        }),
    }
}

/// Reads a KITTI depth PNG. The file must be 16-bit greyscale.
pub fn read_depth_png(path: &Path) -> Result<DepthMap> {
    let buf = read_luma16(path, "16-bit greyscale PNG (metres × 256)")?;
    Ok(DepthMap {
        width: buf.width(),
        height: buf.height(),
        depth_m: buf.as_raw().iter().map(|&v| v as f32 / 256.0).collect(),
    })
}

/// Writes a depth map as a KITTI depth PNG, atomically. Depths are rounded to 1/256 m and clamped to
/// the uint16 range (≤ 255.99 m); non-finite or non-positive values become "no value".
pub fn write_depth_png(path: &Path, depth: &DepthMap) -> Result<()> {
    let raw: Vec<u16> = depth
        .depth_m
        .iter()
        .map(|&d| {
            if d.is_finite() && d > 0.0 {
                (d * 256.0).round().clamp(1.0, u16::MAX as f32) as u16
            } else {
                0
            }
        })
        .collect();
    write_luma16(
        path,
        depth.width,
        depth.height,
        raw,
        "width × height depth values",
    )
}

/// Encodes `values` as a 16-bit greyscale PNG and writes it atomically; a value count other than
/// `width × height` is an error saying `expected`.
fn write_luma16(
    path: &Path,
    width: u32,
    height: u32,
    values: Vec<u16>,
    expected: &'static str,
) -> Result<()> {
    let count = values.len();
    let buf: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_raw(width, height, values).ok_or_else(|| KittiError::ImageFormat {
            path: path.into(),
            expected,
            found: format!("{count} values for {width}×{height}"),
        })?;
    io::write_atomic(path, &encode_png(&buf, path)?)
}

/// A 16-bit instance map: each pixel holds `0` (no instance) or an instance id `1..=65535`. In
/// `instance_2` the id is the label line index + 1; in `detection_2` the detection line index + 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceMap {
    /// Width, px.
    pub width: u32,
    /// Height, px.
    pub height: u32,
    /// Row-major ids.
    pub ids: Vec<u16>,
}

impl InstanceMap {
    /// An all-zero map.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            ids: vec![0; width as usize * height as usize],
        }
    }

    /// Id at pixel `(x, y)`; `0` out of bounds.
    pub fn get(&self, x: u32, y: u32) -> u16 {
        if x >= self.width || y >= self.height {
            return 0;
        }
        self.ids[y as usize * self.width as usize + x as usize]
    }
}

/// Reads a 16-bit greyscale instance PNG.
pub fn read_instance_png(path: &Path) -> Result<InstanceMap> {
    let buf = read_luma16(path, "16-bit greyscale PNG (instance ids)")?;
    Ok(InstanceMap {
        width: buf.width(),
        height: buf.height(),
        ids: buf.into_raw(),
    })
}

/// Writes an instance map as a 16-bit greyscale PNG, atomically.
pub fn write_instance_png(path: &Path, map: &InstanceMap) -> Result<()> {
    write_luma16(
        path,
        map.width,
        map.height,
        map.ids.clone(),
        "width × height instance ids",
    )
}

/// What [`box_blur`] sees beyond the image's edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Border {
    /// The edge pixel, repeated.
    Repeat,
    /// Zero (for normalised convolution: outside the image there is nothing to weigh).
    Zero,
}

/// One separable box-filter pass of radius `radius` (window `2·radius + 1`) over a row-major
/// `width` × `height` map, in place: each pixel becomes the mean of its window. O(1) per pixel via
/// running sums; the vertical pass keeps one sum per column so memory is walked row by row.
pub fn box_blur(data: &mut [f32], width: usize, height: usize, radius: usize, border: Border) {
    if radius == 0 || width == 0 || height == 0 {
        return;
    }
    let window = (2 * radius + 1) as f32;
    let r = radius as isize;
    let inside = |i: isize, n: usize| -> Option<usize> {
        match border {
            Border::Repeat => Some(i.clamp(0, n as isize - 1) as usize),
            Border::Zero => usize::try_from(i).ok().filter(|&i| i < n),
        }
    };
    // Horizontal, one row at a time.
    let mut row = vec![0.0f32; width];
    for y in 0..height {
        let line = &mut data[y * width..(y + 1) * width];
        row.copy_from_slice(line);
        let at = |x: isize| inside(x, width).map_or(0.0, |x| row[x]);
        let mut sum: f32 = (-r..=r).map(at).sum();
        for (x, out) in line.iter_mut().enumerate() {
            *out = sum / window;
            let x = x as isize;
            sum += at(x + r + 1) - at(x - r);
        }
    }
    // Vertical.
    let source = data.to_vec();
    let zeros = vec![0.0f32; width];
    let row_at = |y: isize| inside(y, height).map_or(&zeros[..], |y| &source[y * width..(y + 1) * width]);
    let mut sums = vec![0.0f32; width];
    for dy in -r..=r {
        for (s, &v) in sums.iter_mut().zip(row_at(dy)) {
            *s += v;
        }
    }
    for y in 0..height {
        let (add, sub) = (row_at(y as isize + r + 1), row_at(y as isize - r));
        let out = &mut data[y * width..(y + 1) * width];
        for (((o, s), &a), &b) in out.iter_mut().zip(sums.iter_mut()).zip(add).zip(sub) {
            *o = *s / window;
            *s += a - b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_round_trip_keeps_any_size() {
        let dir = tempfile::tempdir().unwrap();
        for (w, h) in [(1242, 375), (1224, 370), (3, 2)] {
            let img = RgbImage::from_fn(w, h, |x, y| ::image::Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
            let path = dir.path().join(format!("{w}.png"));
            write_rgb_png(&path, &img).unwrap();
            assert_eq!(read_rgb(&path).unwrap(), img);
        }
    }

    #[test]
    fn depth_round_trip_at_kitti_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.png");
        let mut d = DepthMap::new(5, 4);
        d.set(0, 0, 12.5);
        d.set(4, 3, 20481.0 / 256.0); // exactly representable
        d.set(2, 1, f32::NAN);
        write_depth_png(&path, &d).unwrap();
        let back = read_depth_png(&path).unwrap();
        assert_eq!(back.get(0, 0), Some(12.5));
        assert_eq!(back.get(4, 3), Some(20481.0 / 256.0));
        assert_eq!(back.get(2, 1), None);
        assert_eq!(back.get(1, 1), None);
        assert_eq!(back.get(5, 0), None);
    }

    #[test]
    fn instance_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.png");
        let mut m = InstanceMap::new(7, 3);
        m.ids[0] = 1;
        m.ids[20] = 65535;
        write_instance_png(&path, &m).unwrap();
        let back = read_instance_png(&path).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.get(6, 2), 65535);
        assert_eq!(back.get(7, 0), 0);
        let rgb = dir.path().join("rgb.png");
        write_rgb_png(&rgb, &RgbImage::new(2, 2)).unwrap();
        assert!(matches!(
            read_instance_png(&rgb).unwrap_err(),
            KittiError::ImageFormat { .. }
        ));
    }

    #[test]
    fn unreadable_and_wrong_format_images_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.png");
        std::fs::write(&bad, b"not a png").unwrap();
        assert!(matches!(read_rgb(&bad).unwrap_err(), KittiError::Image { .. }));
        let rgb = dir.path().join("rgb.png");
        write_rgb_png(&rgb, &RgbImage::new(4, 4)).unwrap();
        let err = read_depth_png(&rgb).unwrap_err();
        assert!(matches!(err, KittiError::ImageFormat { .. }), "{err}");
        assert!(err.to_string().contains("rgb.png"));
    }

    /// [`box_blur`] against the direct window mean, for both borders.
    fn check_box_blur(border: Border) {
        let (w, h, r) = (9usize, 5usize, 2isize);
        let src: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 11) as f32).collect();
        let mut fast = src.clone();
        box_blur(&mut fast, w, h, r as usize, border);
        let at = |x: isize, y: isize| match border {
            Border::Repeat => {
                src[y.clamp(0, h as isize - 1) as usize * w + x.clamp(0, w as isize - 1) as usize]
            }
            Border::Zero if x < 0 || y < 0 || x >= w as isize || y >= h as isize => 0.0,
            Border::Zero => src[y as usize * w + x as usize],
        };
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut sum = 0.0;
                for dy in -r..=r {
                    for dx in -r..=r {
                        sum += at(x + dx, y + dy);
                    }
                }
                let direct = sum / ((2 * r + 1) * (2 * r + 1)) as f32;
                let got = fast[y as usize * w + x as usize];
                assert!((got - direct).abs() < 1e-4, "({x}, {y}): {got} vs {direct}");
            }
        }
    }

    #[test]
    fn box_blur_matches_a_direct_average() {
        check_box_blur(Border::Repeat);
    }

    #[test]
    fn box_blur_with_zero_borders_matches_a_direct_average() {
        check_box_blur(Border::Zero);
    }

    #[test]
    fn box_blur_is_a_mean_with_zeros_outside() {
        // One row: the vertical pass sees it once in a window of three.
        let mut got = [1.0f32, 2.0, 3.0, 4.0];
        box_blur(&mut got, 4, 1, 1, Border::Zero);
        let want = [1.0, 2.0, 3.0, 7.0 / 3.0].map(|x| x / 3.0);
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }
}
