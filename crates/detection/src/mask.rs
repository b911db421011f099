//! Instance masks: a binary mask over an integer pixel window of the image, and the pixel window of a
//! box.

use geom::Box2d;
use kitti::image::InstanceMap;

/// An integer pixel window of an image: columns `x0 .. x0 + width`, rows `y0 .. y0 + height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PixelWindow {
    /// Column of the window's left pixel, px.
    pub x0: u32,
    /// Row of the window's top pixel, px.
    pub y0: u32,
    /// Window width, px.
    pub width: u32,
    /// Window height, px.
    pub height: u32,
}

impl PixelWindow {
    /// The pixel window of a box in an image of `image_width` × `image_height` pixels: columns
    /// `floor(left) ..= ceil(right)` and rows `floor(top) ..= ceil(bottom)`, clipped to the image;
    /// `None` when the box is not finite, misses the image or the image is empty. A detection's mask
    /// lives in the window of its box.
    pub fn of_box(bbox: &Box2d, image_width: u32, image_height: u32) -> Option<Self> {
        let finite = [bbox.left, bbox.top, bbox.right, bbox.bottom]
            .iter()
            .all(|v| v.is_finite());
        if !finite || image_width == 0 || image_height == 0 {
            return None;
        }
        let x0 = bbox.left.floor().max(0.0);
        let y0 = bbox.top.floor().max(0.0);
        let x1 = bbox.right.ceil().min(f64::from(image_width - 1));
        let y1 = bbox.bottom.ceil().min(f64::from(image_height - 1));
        if x1 < x0 || y1 < y0 {
            return None;
        }
        Some(Self {
            x0: x0 as u32,
            y0: y0 as u32,
            width: (x1 - x0) as u32 + 1,
            height: (y1 - y0) as u32 + 1,
        })
    }

    /// Whether image pixel `(x, y)` lies in the window.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x0 && y >= self.y0 && x - self.x0 < self.width && y - self.y0 < self.height
    }
}

/// A binary mask over an integer pixel window of the image: the window's top-left pixel is
/// `(x0, y0)`, it is `width` × `height` pixels, and `bits` holds one flag per window pixel, row-major.
/// Pixel `(x, y)` of the image is in the mask when it lies in the window and
/// `bits[(y − y0) · width + (x − x0)]` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    /// Column of the window's left pixel, px.
    pub x0: u32,
    /// Row of the window's top pixel, px.
    pub y0: u32,
    /// Window width, px.
    pub width: u32,
    /// Window height, px.
    pub height: u32,
    /// Row-major flags, `width · height` of them.
    pub bits: Vec<bool>,
}

impl Mask {
    /// A mask with an empty window at `(0, 0)`.
    pub fn empty() -> Self {
        Self {
            x0: 0,
            y0: 0,
            width: 0,
            height: 0,
            bits: Vec::new(),
        }
    }

    /// The pixels of `window` for which `inside(x, y)` holds (`x`, `y`: image pixel).
    pub fn from_fn(window: PixelWindow, inside: impl Fn(u32, u32) -> bool) -> Self {
        let bits = (0..window.height)
            .flat_map(|dy| (0..window.width).map(move |dx| (dx, dy)))
            .map(|(dx, dy)| inside(window.x0 + dx, window.y0 + dy))
            .collect();
        Self {
            x0: window.x0,
            y0: window.y0,
            width: window.width,
            height: window.height,
            bits,
        }
    }

    /// The pixels of `map` holding `id`, over the window of their bounding box (empty when none).
    pub fn from_instance(map: &InstanceMap, id: u16) -> Self {
        let width = map.width.max(1) as usize;
        let mut extent: Option<(u32, u32, u32, u32)> = None;
        for (i, _) in map.ids.iter().enumerate().filter(|(_, v)| **v == id) {
            let (x, y) = ((i % width) as u32, (i / width) as u32);
            extent = Some(match extent {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
        let Some((x0, y0, x1, y1)) = extent else {
            return Self::empty();
        };
        let window = PixelWindow {
            x0,
            y0,
            width: x1 - x0 + 1,
            height: y1 - y0 + 1,
        };
        Self::from_fn(window, |x, y| map.get(x, y) == id)
    }

    /// The window the mask is defined over.
    pub fn window(&self) -> PixelWindow {
        PixelWindow {
            x0: self.x0,
            y0: self.y0,
            width: self.width,
            height: self.height,
        }
    }

    /// Whether image pixel `(x, y)` is in the mask.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        if !self.window().contains(x, y) {
            return false;
        }
        let i = (y - self.y0) as usize * self.width as usize + (x - self.x0) as usize;
        self.bits.get(i).copied().unwrap_or(false)
    }

    /// Number of pixels in the mask.
    pub fn area_px(&self) -> usize {
        self.bits.iter().filter(|&&b| b).count()
    }

    /// The image pixels `(x, y)` in the mask, row by row.
    pub fn pixels(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let width = self.width.max(1) as usize;
        self.bits
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .map(move |(i, _)| (self.x0 + (i % width) as u32, self.y0 + (i / width) as u32))
    }

    /// Intersection over union of the two pixel sets; 0 when both are empty.
    pub fn iou(&self, other: &Mask) -> f64 {
        let inter = self.pixels().filter(|&(x, y)| other.contains(x, y)).count();
        let union = self.area_px() + other.area_px() - inter;
        if union == 0 {
            0.0
        } else {
            inter as f64 / union as f64
        }
    }
}
