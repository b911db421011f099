//! Raster drawing shared by the pictures of `xtask` (`show-frame`, the autolabel views): the layout
//! (camera panel, header strip, square bird's-eye panel), lines with clipping and outlines, 3D boxes
//! projected into the image, the bird's-eye panel's axes, points, field of view and boxes, legend
//! entries, and text.
//!
//! Pixels (points, lines) are drawn straight into an RGB buffer, which is fast for 100k+ points; text
//! is collected as [`TextItem`]s and drawn last onto the same buffer with plotters and the embedded
//! font (see `plot.rs`), so that it stays on top.

use geom::{Box3d, Calib, Camera, Real};
use image::{Rgb, RgbImage};
use kitti::velodyne::VeloPoint;
use nalgebra::{Matrix4, Point2, Point3, Vector4};
use plotters::backend::RGBPixel;
use plotters::prelude::*;

// ---------------------------------------------------------------------------------------------
// Layout and style
// ---------------------------------------------------------------------------------------------

/// An RGB colour.
pub type Rgb8 = [u8; 3];

/// The narrowest image the layout is made for, px.
pub const MIN_WIDTH_PX: u32 = 400;
/// Height of the strip between the panels (title and legend), px.
pub const HEADER_PX: u32 = 56;
/// Room left of the bird's-eye plot for the forward tick labels, px.
pub const BEV_AXIS_LEFT_PX: f64 = 52.0;
/// Room below the bird's-eye plot for the lateral tick labels and the axis name, px.
pub const BEV_AXIS_BOTTOM_PX: f64 = 46.0;
/// Padding above and right of the bird's-eye plot, px.
pub const BEV_PAD_PX: f64 = 12.0;
/// Forward range the bird's-eye plot shows at least, m.
pub const BEV_FORWARD_M: Real = 80.0;
/// Lateral range the bird's-eye plot shows at least on each side, m.
pub const BEV_LATERAL_M: Real = 40.0;
/// Grid spacing of the bird's-eye plot, m.
pub const BEV_GRID_M: Real = 10.0;
/// Edges are clipped at this depth in front of the camera (rect z), m.
pub const NEAR_M: Real = 0.1;
/// Depth mapped to the far end (blue) of the colour map, m.
pub const DEPTH_FAR_M: f32 = 60.0;

// Colours. Boxes get a black outline, so that they stand out on the image and on the depth-coloured
// points.
/// Background of the header strip and around the bird's-eye plot.
pub const BACKGROUND: Rgb8 = [22, 22, 26];
/// Grid lines of the bird's-eye plot.
pub const GRID: Rgb8 = [58, 58, 66];
/// Tick labels and axis names.
pub const AXIS_TEXT: Rgb8 = [200, 200, 205];
/// The outline of outlined strokes.
pub const OUTLINE: Rgb8 = [0, 0, 0];
/// Titles and legend text.
pub const TEXT: Rgb8 = [255, 255, 255];
/// The camera's field of view in the bird's-eye plot.
pub const FOV: Rgb8 = [190, 190, 120];

/// The colour of a LIDAR point at `depth_m` in the camera panel: red/yellow near, blue far.
pub fn depth_color(depth_m: f32) -> Rgb8 {
    const STOPS: [Rgb8; 6] = [
        [255, 0, 0],
        [255, 150, 0],
        [255, 255, 0],
        [0, 220, 90],
        [0, 190, 255],
        [30, 40, 255],
    ];
    let t = (depth_m / DEPTH_FAR_M).clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    std::array::from_fn(|k| (a[k] as f32 + f * (b[k] as f32 - a[k] as f32)).round() as u8)
}

/// The grey of a LIDAR point at height `z_m` (velo frame) in the bird's-eye panel: brighter is higher.
pub fn height_grey(z_m: f32) -> u8 {
    let t = ((z_m + 2.2) / 3.0).clamp(0.0, 1.0);
    (70.0 + 185.0 * t).round() as u8
}

/// A pixel rectangle: `x0 ≤ x < x1`, `y0 ≤ y < y1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    /// Left edge, px.
    pub x0: f64,
    /// Top edge, px.
    pub y0: f64,
    /// Right edge (exclusive), px.
    pub x1: f64,
    /// Bottom edge (exclusive), px.
    pub y1: f64,
}

impl From<&geom::Box2d> for Rect {
    /// The rectangle of a KITTI 2D box (image pixels).
    fn from(b: &geom::Box2d) -> Self {
        Rect {
            x0: b.left,
            y0: b.top,
            x1: b.right,
            y1: b.bottom,
        }
    }
}

impl Rect {
    /// Whether `(x, y)` lies inside.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
}

/// The bird's-eye plot: velo `x` (forward) points up, velo `y` (left) points left, one scale for both.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BevView {
    /// The plot area in the output image.
    pub plot: Rect,
    /// Scale, px per m.
    pub px_per_m: Real,
}

impl BevView {
    /// The largest scale that shows [`BEV_FORWARD_M`] × ±[`BEV_LATERAL_M`] in `plot`.
    pub fn new(plot: Rect) -> Self {
        let px_per_m = ((plot.x1 - plot.x0) / (2.0 * BEV_LATERAL_M)).min((plot.y1 - plot.y0) / BEV_FORWARD_M);
        Self { plot, px_per_m }
    }

    /// The pixel of the velo point `forward_m` ahead of and `left_m` left of the LIDAR.
    pub fn pixel(&self, forward_m: Real, left_m: Real) -> [f64; 2] {
        let center_u = 0.5 * (self.plot.x0 + self.plot.x1);
        [
            center_u - left_m * self.px_per_m,
            self.plot.y1 - forward_m * self.px_per_m,
        ]
    }

    /// The forward range shown, m.
    pub fn forward_max_m(&self) -> Real {
        (self.plot.y1 - self.plot.y0) / self.px_per_m
    }

    /// The lateral range shown on each side, m.
    pub fn lateral_max_m(&self) -> Real {
        0.5 * (self.plot.x1 - self.plot.x0) / self.px_per_m
    }
}

/// Where the parts lie in the output image: camera panel, header strip, square bird's-eye panel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    /// The camera image.
    pub camera: Rect,
    /// Title and legend.
    pub header: Rect,
    /// The bird's-eye plot.
    pub bev: BevView,
    /// Output size, px.
    pub size: (u32, u32),
}

impl Layout {
    /// The layout for a camera image of `width` × `image_height`: the bottom panel (header strip and
    /// bird's-eye plot) is square, as tall as the image is wide.
    pub fn new(width: u32, image_height: u32) -> Self {
        let (w, h) = (width as f64, image_height as f64);
        let height = image_height + width;
        let header = Rect {
            x0: 0.0,
            y0: h,
            x1: w,
            y1: h + HEADER_PX as f64,
        };
        let plot = Rect {
            x0: BEV_AXIS_LEFT_PX,
            y0: header.y1 + BEV_PAD_PX,
            x1: w - BEV_PAD_PX,
            y1: height as f64 - BEV_AXIS_BOTTOM_PX,
        };
        Self {
            camera: Rect {
                x0: 0.0,
                y0: 0.0,
                x1: w,
                y1: h,
            },
            header,
            bev: BevView::new(plot),
            size: (width, height),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raster primitives
// ---------------------------------------------------------------------------------------------

/// How a line is drawn.
#[derive(Clone, Copy, Debug)]
pub struct Stroke {
    /// Colour.
    pub color: Rgb8,
    /// Width, px.
    pub width_px: f64,
    /// Dash and gap lengths, px; `None` for a solid line.
    pub dash_px: Option<(f64, f64)>,
    /// Whether a 1-px black outline is drawn around the line (visible on any background).
    pub outline: bool,
}

impl Stroke {
    /// A solid line without outline.
    pub fn solid(color: Rgb8, width_px: f64) -> Self {
        Self {
            color,
            width_px,
            dash_px: None,
            outline: false,
        }
    }

    /// The same line with a black outline.
    pub fn outlined(self) -> Self {
        Self {
            outline: true,
            ..self
        }
    }

    /// The same line dashed: `on_px` drawn, `off_px` left out.
    pub fn dashed(self, on_px: f64, off_px: f64) -> Self {
        Self {
            dash_px: Some((on_px, off_px)),
            ..self
        }
    }
}

/// Fills the `size_px` × `size_px` square centred on `(x, y)`, inside `clip`.
pub fn stamp(img: &mut RgbImage, clip: &Rect, x: f64, y: f64, size_px: f64, color: Rgb8) {
    let n = size_px.round().max(1.0) as i64;
    let (x0, y0) = (
        (x - 0.5 * size_px).round() as i64,
        (y - 0.5 * size_px).round() as i64,
    );
    for py in y0..y0 + n {
        for px in x0..x0 + n {
            if clip.contains(px as f64, py as f64) {
                img.put_pixel(px as u32, py as u32, Rgb(color));
            }
        }
    }
}

/// Blends `color` with opacity `alpha` over the pixels of `rect` (clipped to the image).
pub fn fill_rect(img: &mut RgbImage, rect: &Rect, color: Rgb8, alpha: f32) {
    let (w, h) = img.dimensions();
    let x0 = rect.x0.max(0.0).round() as u32;
    let y0 = rect.y0.max(0.0).round() as u32;
    let x1 = (rect.x1.round().max(0.0) as u32).min(w);
    let y1 = (rect.y1.round().max(0.0) as u32).min(h);
    for y in y0..y1 {
        for x in x0..x1 {
            let p = img.get_pixel_mut(x, y);
            for (channel, &c) in p.0.iter_mut().zip(&color) {
                *channel = (alpha * c as f32 + (1.0 - alpha) * *channel as f32).round() as u8;
            }
        }
    }
}

/// The part of the segment `a`–`b` inside `r` (Liang–Barsky), or `None`.
pub fn clip_segment(a: [f64; 2], b: [f64; 2], r: &Rect) -> Option<([f64; 2], [f64; 2])> {
    if !a.iter().chain(&b).all(|v| v.is_finite()) {
        return None;
    }
    let d = [b[0] - a[0], b[1] - a[1]];
    let (mut t0, mut t1) = (0.0_f64, 1.0_f64);
    for (p, q) in [
        (-d[0], a[0] - r.x0),
        (d[0], r.x1 - a[0]),
        (-d[1], a[1] - r.y0),
        (d[1], r.y1 - a[1]),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return None;
            }
        }
    }
    Some((
        [a[0] + t0 * d[0], a[1] + t0 * d[1]],
        [a[0] + t1 * d[0], a[1] + t1 * d[1]],
    ))
}

/// Draws the segment `a`–`b` (pixel coordinates) inside `clip`.
pub fn draw_line(img: &mut RgbImage, clip: &Rect, a: [f64; 2], b: [f64; 2], stroke: &Stroke) {
    let margin = stroke.width_px + 2.0;
    let bounds = Rect {
        x0: clip.x0 - margin,
        y0: clip.y0 - margin,
        x1: clip.x1 + margin,
        y1: clip.y1 + margin,
    };
    let Some((a, b)) = clip_segment(a, b, &bounds) else {
        return;
    };
    if stroke.outline {
        stamp_line(img, clip, a, b, stroke.width_px + 2.0, OUTLINE, stroke.dash_px);
    }
    stamp_line(img, clip, a, b, stroke.width_px, stroke.color, stroke.dash_px);
}

/// Stamps squares of `width_px` every half pixel along `a`–`b`.
pub fn stamp_line(
    img: &mut RgbImage,
    clip: &Rect,
    a: [f64; 2],
    b: [f64; 2],
    width_px: f64,
    color: Rgb8,
    dash_px: Option<(f64, f64)>,
) {
    let len = (b[0] - a[0]).hypot(b[1] - a[1]);
    let steps = (2.0 * len).ceil().max(1.0) as usize;
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        if let Some((on, off)) = dash_px
            && (t * len) % (on + off) >= on
        {
            continue;
        }
        let (x, y) = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]));
        stamp(img, clip, x, y, width_px, color);
    }
}

/// Draws the outline of `rect`.
pub fn draw_rect(img: &mut RgbImage, clip: &Rect, rect: &Rect, stroke: &Stroke) {
    let c = [
        [rect.x0, rect.y0],
        [rect.x1, rect.y0],
        [rect.x1, rect.y1],
        [rect.x0, rect.y1],
    ];
    for i in 0..4 {
        draw_line(img, clip, c[i], c[(i + 1) % 4], stroke);
    }
}

// ---------------------------------------------------------------------------------------------
// Text (plotters with the embedded font)
// ---------------------------------------------------------------------------------------------

/// A text to draw once all pixels are drawn.
pub struct TextItem {
    /// The text.
    pub text: String,
    /// Anchor point, px.
    pub at: [f64; 2],
    /// Which point of the text box sits on `at`: `(0, 0)` top-left, `(0.5, 0.5)` centre, `(1, 0)`
    /// top-right.
    pub anchor: (f64, f64),
    /// Font size, px.
    pub size_px: f64,
    /// Colour.
    pub color: Rgb8,
    /// Whether a translucent dark box is drawn behind the text.
    pub backdrop: bool,
}

impl TextItem {
    /// `text` with its top-left corner at `at`, no backdrop.
    pub fn new(text: impl Into<String>, at: [f64; 2], size_px: f64, color: Rgb8) -> Self {
        Self {
            text: text.into(),
            at,
            anchor: (0.0, 0.0),
            size_px,
            color,
            backdrop: false,
        }
    }

    /// The same text with another anchor (see [`TextItem::anchor`]).
    pub fn anchored(self, fx: f64, fy: f64) -> Self {
        Self {
            anchor: (fx, fy),
            ..self
        }
    }

    /// The same text on a translucent dark box.
    pub fn with_backdrop(self) -> Self {
        Self {
            backdrop: true,
            ..self
        }
    }
}

/// The embedded font at `size_px` in `color`.
pub fn text_style(size_px: f64, color: Rgb8) -> TextStyle<'static> {
    ("sans-serif", size_px)
        .into_font()
        .color(&RGBColor(color[0], color[1], color[2]))
}

/// The size of `text` in the embedded font, px.
pub fn text_size(text: &str, size_px: f64) -> anyhow::Result<(u32, u32)> {
    crate::plot::register_font()?;
    let mut buf = [0_u8; 3];
    let area = BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut buf, (1, 1))?.into_drawing_area();
    Ok(area.estimate_text_size(text, &text_style(size_px, TEXT))?)
}

/// Draws the texts (with their backdrops) onto `img`.
pub fn draw_texts(img: &mut RgbImage, texts: &[TextItem]) -> anyhow::Result<()> {
    crate::plot::register_font()?;
    let size = img.dimensions();
    let root = BitMapBackend::<RGBPixel>::with_buffer_and_format(img, size)?.into_drawing_area();
    for t in texts {
        let style = text_style(t.size_px, t.color);
        let (w, h) = root.estimate_text_size(&t.text, &style)?;
        let x = (t.at[0] - t.anchor.0 * w as f64).round() as i32;
        let y = (t.at[1] - t.anchor.1 * h as f64).round() as i32;
        if t.backdrop {
            root.draw(&Rectangle::new(
                [(x - 3, y - 2), (x + w as i32 + 3, y + h as i32 + 2)],
                BLACK.mix(0.6).filled(),
            ))?;
        }
        root.draw_text(&t.text, &style, (x, y))?;
    }
    root.present()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Camera panel: points and 3D boxes
// ---------------------------------------------------------------------------------------------

/// Corner pairs of a box's 12 edges (corner order of [`geom::Box3d::corners_rect`]).
pub const BOX_EDGES: [(usize, usize); 12] = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 0),
    (4, 5),
    (5, 6),
    (6, 7),
    (7, 4),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
];

/// The diagonals of the front face (corners 0, 1 at the bottom, 4, 5 above them: `+l/2`).
pub const FRONT_CROSS: [(usize, usize); 2] = [(0, 5), (1, 4)];

/// Projects the LIDAR points into the camera panel as small dots coloured by depth, far ones first.
/// Returns how many land in the image.
pub fn draw_points_in_image(img: &mut RgbImage, camera: &Rect, calib: &Calib, points: &[VeloPoint]) -> usize {
    let image_from_velo = calib.image_from_velo(Camera::Cam2);
    let mut visible: Vec<(f32, f64, f64)> = points
        .iter()
        .filter_map(|p| {
            let h = image_from_velo * Vector4::new(p.x as Real, p.y as Real, p.z as Real, 1.0);
            if !h.z.is_finite() || h.z < NEAR_M {
                return None;
            }
            let (u, v) = (h.x / h.z, h.y / h.z);
            camera.contains(u, v).then_some((h.z as f32, u, v))
        })
        .collect();
    visible.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    for &(depth_m, u, v) in &visible {
        stamp(img, camera, u, v, 2.0, depth_color(depth_m));
    }
    visible.len()
}

/// The part of the rect-frame segment `a`–`b` at depth ≥ [`NEAR_M`], or `None`.
pub fn clip_near(a: Point3<Real>, b: Point3<Real>) -> Option<(Point3<Real>, Point3<Real>)> {
    match (a.z >= NEAR_M, b.z >= NEAR_M) {
        (true, true) => Some((a, b)),
        (false, false) => None,
        (a_in, _) => {
            let cut = a + (b - a) * ((NEAR_M - a.z) / (b.z - a.z));
            Some(if a_in { (a, cut) } else { (cut, b) })
        }
    }
}

/// Draws `b` (rect frame) projected into `calib`'s `Cam2` image inside `camera`: its 12 edges with
/// `stroke`, and the diagonals of its front face with the same stroke 1 px wide. Returns where a
/// label goes (above the highest visible corner, centred on the visible corners, kept inside the
/// panel), or `None` when nothing was drawn (a size that is not finite and positive, or a box behind
/// the camera).
pub fn draw_box_in_image(
    img: &mut RgbImage,
    camera: &Rect,
    calib: &Calib,
    b: &Box3d,
    stroke: &Stroke,
) -> Option<[f64; 2]> {
    if ![b.size.height_m, b.size.width_m, b.size.length_m]
        .iter()
        .all(|s| s.is_finite() && *s > 0.0)
    {
        return None;
    }
    let corners = b.corners_rect();
    let project = |p: &Point3<Real>| calib.project_rect_to_image(Camera::Cam2, p).ok();
    let mut drawn = false;
    for (edges, stroke) in [
        (&BOX_EDGES[..], *stroke),
        (
            &FRONT_CROSS[..],
            Stroke {
                width_px: 1.0,
                ..*stroke
            },
        ),
    ] {
        for &(i, j) in edges {
            let Some((a, b)) = clip_near(corners[i], corners[j]) else {
                continue;
            };
            if let (Some(pa), Some(pb)) = (project(&a), project(&b)) {
                draw_line(img, camera, pa, pb, &stroke);
                drawn = true;
            }
        }
    }
    if !drawn {
        return None;
    }
    let tops: Vec<[f64; 2]> = corners
        .iter()
        .filter(|c| c.z >= NEAR_M)
        .filter_map(project)
        .collect();
    let top = tops.iter().min_by(|p, q| p[1].total_cmp(&q[1]))?;
    let u_mid = tops.iter().map(|p| p[0]).sum::<f64>() / tops.len() as f64;
    Some([
        u_mid.clamp(camera.x0 + 12.0, camera.x1 - 12.0),
        top[1].clamp(camera.y0 + 18.0, camera.y1 - 2.0) - 3.0,
    ])
}

// ---------------------------------------------------------------------------------------------
// Bird's-eye panel
// ---------------------------------------------------------------------------------------------

/// The bird's-eye plot's background, grid and tick labels every [`BEV_GRID_M`], and axis names.
pub fn draw_bev_axes(img: &mut RgbImage, view: &BevView, texts: &mut Vec<TextItem>) {
    let plot = view.plot;
    fill_rect(img, &plot, [0, 0, 0], 1.0);
    let forward_ticks = (view.forward_max_m() / BEV_GRID_M).floor() as i64;
    for k in 0..=forward_ticks {
        let x_m = k as Real * BEV_GRID_M;
        let [_, v] = view.pixel(x_m, 0.0);
        draw_line(img, &plot, [plot.x0, v], [plot.x1, v], &Stroke::solid(GRID, 1.0));
        texts
            .push(TextItem::new(format!("{x_m:.0}"), [plot.x0 - 6.0, v], 13.0, AXIS_TEXT).anchored(1.0, 0.5));
    }
    let lateral_ticks = (view.lateral_max_m() / BEV_GRID_M).floor() as i64;
    for k in -lateral_ticks..=lateral_ticks {
        let y_m = k as Real * BEV_GRID_M;
        let [u, _] = view.pixel(0.0, y_m);
        draw_line(img, &plot, [u, plot.y0], [u, plot.y1], &Stroke::solid(GRID, 1.0));
        texts
            .push(TextItem::new(format!("{y_m:.0}"), [u, plot.y1 + 5.0], 13.0, AXIS_TEXT).anchored(0.5, 0.0));
    }
    texts.push(
        TextItem::new(
            "lateral y, m (+ left)",
            [0.5 * (plot.x0 + plot.x1), plot.y1 + 24.0],
            14.0,
            AXIS_TEXT,
        )
        .anchored(0.5, 0.0),
    );
    texts
        .push(TextItem::new("forward x, m", [plot.x0 + 6.0, plot.y0 + 6.0], 14.0, AXIS_TEXT).with_backdrop());
}

/// LIDAR points (velo frame) in the bird's-eye plot, brighter where higher; the highest point of a
/// pixel wins.
pub fn draw_bev_points(img: &mut RgbImage, view: &BevView, points: &[VeloPoint]) {
    let plot = view.plot;
    for p in points {
        let [u, v] = view.pixel(p.x as Real, p.y as Real);
        if plot.contains(u, v) {
            let g = height_grey(p.z);
            let px = img.get_pixel_mut(u as u32, v as u32);
            if px.0[0] < g {
                *px = Rgb([g, g, g]);
            }
        }
    }
}

/// The pixel of a rect-frame point in the bird's-eye plot.
pub fn bev_pixel_of_rect(view: &BevView, velo_from_rect: &Matrix4<Real>, p: &Point3<Real>) -> [f64; 2] {
    let q = velo_from_rect * p.to_homogeneous();
    view.pixel(q.x / q.w, q.y / q.w)
}

/// The camera's field of view in the bird's-eye plot (the rays through the left and right edges of
/// the `camera` panel at mid-height), and the LIDAR as a small square.
pub fn draw_bev_fov(img: &mut RgbImage, view: &BevView, calib: &Calib, camera: &Rect) {
    let plot = view.plot;
    let velo_from_rect = calib.velo_from_rect();
    let (w, h) = (camera.x1, camera.y1);
    for u in [0.0, w] {
        let ray = |depth_m: Real| calib.back_project_to_rect(Camera::Cam2, Point2::new(u, 0.5 * h), depth_m);
        if let (Ok(near), Ok(far)) = (ray(0.0), ray(1000.0)) {
            draw_line(
                img,
                &plot,
                bev_pixel_of_rect(view, &velo_from_rect, &near),
                bev_pixel_of_rect(view, &velo_from_rect, &far),
                &Stroke::solid(FOV, 1.0).dashed(8.0, 6.0),
            );
        }
    }
    let origin = view.pixel(0.0, 0.0);
    stamp(img, &plot, origin[0], origin[1] - 3.0, 7.0, TEXT);
}

/// Draws the bottom face of `b` (rect frame) in the bird's-eye plot with a line from its centre to
/// its front. Returns where a label goes (right of the box, level with its centre) when the centre
/// is inside the plot.
pub fn draw_bev_box(
    img: &mut RgbImage,
    view: &BevView,
    velo_from_rect: &Matrix4<Real>,
    b: &Box3d,
    stroke: &Stroke,
) -> Option<[f64; 2]> {
    let plot = view.plot;
    let c = b
        .corners_rect()
        .map(|p| bev_pixel_of_rect(view, velo_from_rect, &p));
    for k in 0..4 {
        draw_line(img, &plot, c[k], c[(k + 1) % 4], stroke);
    }
    let center = bev_pixel_of_rect(view, velo_from_rect, &b.bottom_center_rect);
    let front = [0.5 * (c[0][0] + c[1][0]), 0.5 * (c[0][1] + c[1][1])];
    draw_line(img, &plot, center, front, stroke);
    let right = c[..4].iter().map(|p| p[0]).fold(f64::MIN, f64::max);
    plot.contains(center[0], center[1])
        .then_some([right + 4.0, center[1]])
}

// ---------------------------------------------------------------------------------------------
// Header strip
// ---------------------------------------------------------------------------------------------

/// A legend entry at `x` on the row `row_y`: a 22-px sample of `stroke` and `name`. Returns the `x`
/// of the next entry.
pub fn draw_legend_entry(
    img: &mut RgbImage,
    header: &Rect,
    [x, row_y]: [f64; 2],
    name: &str,
    stroke: &Stroke,
    texts: &mut Vec<TextItem>,
) -> anyhow::Result<f64> {
    draw_line(img, header, [x, row_y], [x + 22.0, row_y], stroke);
    texts.push(TextItem::new(name, [x + 28.0, row_y], 14.0, TEXT).anchored(0.0, 0.5));
    Ok(x + 28.0 + text_size(name, 14.0)?.0 as f64 + 18.0)
}

/// A colour bar `width_px` wide and 10 px high starting at `x`, centred on the row `row_y`: column `k`
/// has `color((k + 0.5) / width_px)`, so the bar runs over `[0, 1]` left to right.
pub fn draw_color_bar(
    img: &mut RgbImage,
    header: &Rect,
    [x, row_y]: [f64; 2],
    width_px: f64,
    color: impl Fn(f32) -> Rgb8,
) {
    for k in 0..width_px as u32 {
        let t = (k as f32 + 0.5) / width_px as f32;
        let u = x + k as f64;
        draw_line(
            img,
            header,
            [u, row_y - 5.0],
            [u, row_y + 5.0],
            &Stroke::solid(color(t), 1.0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geom::Size3;

    fn car(x: Real, z: Real, rotation_y_rad: Real) -> Box3d {
        Box3d::new(Point3::new(x, 1.65, z), Size3::new(1.5, 1.6, 3.9), rotation_y_rad)
    }

    #[test]
    fn bev_box_ten_metres_ahead_lands_ten_metres_up() {
        let layout = Layout::new(1242, 375);
        let view = layout.bev;
        assert!(view.forward_max_m() >= BEV_FORWARD_M - 1e-9);
        assert!(view.lateral_max_m() >= BEV_LATERAL_M - 1e-9);
        let calib = Calib::kitti_reference();
        let velo_from_rect: Matrix4<Real> = calib.velo_from_rect();
        let bev = |p: Point3<Real>| {
            let q = velo_from_rect * p.to_homogeneous();
            view.pixel(q.x / q.w, q.y / q.w)
        };
        let s = view.px_per_m;
        // 10 m ahead of the camera (the LIDAR sits 0.27 m behind it): 10 m up from the bottom edge.
        let [u, v] = bev(car(0.0, 10.0, 0.0).bottom_center_rect);
        assert!(((view.plot.y1 - v) / s - 10.27).abs() < 0.1, "{v}");
        assert!((u - 0.5 * (view.plot.x0 + view.plot.x1)).abs() / s < 0.1, "{u}");
        // 5 m to the right in the camera (rect x) is 5 m right in the panel.
        let [u_right, _] = bev(car(5.0, 10.0, 0.0).bottom_center_rect);
        assert!(((u_right - u) / s - 5.0).abs() < 0.1, "{u_right}");
        // A car heading away from the camera (ry = −π/2) has its front further up.
        let c = car(0.0, 10.0, -std::f64::consts::FRAC_PI_2).corners_rect();
        let front = bev(Point3::from((c[0].coords + c[1].coords) / 2.0));
        assert!(((v - front[1]) / s - 1.95).abs() < 0.05, "{front:?}");
    }

    #[test]
    fn segments_are_clipped_to_rectangles_and_the_near_plane() {
        let r = Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 10.0,
            y1: 10.0,
        };
        assert_eq!(
            clip_segment([-5.0, 5.0], [15.0, 5.0], &r),
            Some(([0.0, 5.0], [10.0, 5.0]))
        );
        assert_eq!(clip_segment([-5.0, -1.0], [15.0, -1.0], &r), None);
        assert_eq!(
            clip_segment([2.0, 2.0], [3.0, 3.0], &r),
            Some(([2.0, 2.0], [3.0, 3.0]))
        );
        assert_eq!(clip_segment([Real::NAN, 2.0], [3.0, 3.0], &r), None);

        let (a, b) = clip_near(Point3::new(0.0, 0.0, -1.0), Point3::new(0.0, 0.0, 1.0)).unwrap();
        assert!((a.z - NEAR_M).abs() < 1e-12 && b.z == 1.0);
        assert!(clip_near(Point3::new(0.0, 0.0, -1.0), Point3::new(1.0, 0.0, -2.0)).is_none());
    }

    #[test]
    fn depth_colors_run_from_red_near_to_blue_far() {
        assert_eq!(depth_color(0.0), [255, 0, 0]);
        assert_eq!(depth_color(1000.0), [30, 40, 255]);
        let mid = depth_color(0.5 * DEPTH_FAR_M);
        assert!(mid[1] > 150, "{mid:?}");
    }
}
