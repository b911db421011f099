//! `cargo xtask show-frame`: one PNG to look at a KITTI-layout frame (real KITTI or our synthetic
//! data). The top panel is the camera image with the LIDAR points projected into it (coloured by
//! depth), each label's 3D box (front face crossed), DontCare regions and the simulated 2D detections;
//! a header strip holds the title and the legend; the bottom panel is a bird's-eye view of the LIDAR
//! points and the label boxes in the Velodyne frame, with the camera's field of view.
//!
//! Pixels (points, lines) are drawn straight into an RGB buffer, which is fast for 100k+ points; text
//! is drawn onto the same buffer with plotters and the embedded font (see `plot.rs`).

use anyhow::{Context, bail};
use geom::{Calib, Camera, Real};
use image::{Rgb, RgbImage};
use kitti::velodyne::VeloPoint;
use kitti::{KittiDataset, KittiError, Modality, Object, ObjectType, Split};
use nalgebra::{Point2, Point3, Vector4};
use plotters::backend::RGBPixel;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Arguments of `cargo xtask show-frame`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset root with the KITTI object layout: `DIR/training/{image_2,calib,velodyne,label_2}`
    /// (velodyne, label_2 and the simulated detections in detection_2 are drawn when present).
    dir: PathBuf,
    /// Frame id: the file stem, e.g. `000042`.
    id: String,
    /// Output PNG (default: `DIR/show/ID.png`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The half of the dataset the frame is in.
    #[arg(long, value_enum, default_value_t = SplitArg::Training)]
    split: SplitArg,
}

/// `--split` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SplitArg {
    Training,
    Testing,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Training => Split::Training,
            SplitArg::Testing => Split::Testing,
        }
    }
}

/// Reads the frame, draws it and writes the PNG; prints the PNG's path.
pub fn run(args: Args) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let frame = load_frame(&args.dir, args.split.into(), &args.id)?;
    let canvas = render(&frame)?;
    let out = args
        .out
        .unwrap_or_else(|| args.dir.join("show").join(format!("{}.png", args.id)));
    kitti::image::write_rgb_png(&out, &canvas).with_context(|| format!("writing {}", out.display()))?;
    tracing::debug!("drew frame {} in {:.3} s", args.id, start.elapsed().as_secs_f64());
    #[allow(clippy::print_stdout, reason = "the written path is the command's output")]
    {
        println!("{}", out.display());
    }
    Ok(())
}

/// The files of one frame. The optional ones are `None` when their file does not exist.
pub struct Frame {
    /// Frame id.
    pub id: String,
    /// Left colour image (`image_2`).
    pub image: RgbImage,
    /// Calibration (`calib`).
    pub calib: Calib,
    /// LIDAR points in the velo frame (`velodyne`).
    pub points: Option<Vec<VeloPoint>>,
    /// Ground-truth labels (`label_2`).
    pub labels: Option<Vec<Object>>,
    /// Simulated 2D detections with scores (`detection_2`, KITTI result lines).
    pub detections: Option<Vec<Object>>,
}

/// Reads a frame: image and calibration are required, the rest is read when its file exists.
pub fn load_frame(dir: &Path, split: Split, id: &str) -> anyhow::Result<Frame> {
    let ds = KittiDataset::open(dir).with_context(|| format!("opening the dataset {}", dir.display()))?;
    let image_path = ds.path(split, Modality::Image2, id);
    let image = kitti::image::read_rgb(&image_path)
        .with_context(|| format!("reading the camera image {}", image_path.display()))?;
    let calib_path = ds.path(split, Modality::Calib, id);
    let calib = kitti::calib::read_calib(&calib_path)
        .with_context(|| format!("reading the calibration {}", calib_path.display()))?;
    let points = read_optional(
        &ds.path(split, Modality::Velodyne, id),
        kitti::velodyne::read_velodyne,
    )?;
    let labels = read_optional(&ds.path(split, Modality::Label2, id), kitti::label::read_labels)?;
    let detections = read_optional(
        &ds.split_dir(split).join("detection_2").join(format!("{id}.txt")),
        kitti::label::read_labels,
    )?;
    Ok(Frame {
        id: id.to_owned(),
        image,
        calib,
        points,
        labels,
        detections,
    })
}

/// Reads `path` when it exists; `None` when it does not.
fn read_optional<T>(
    path: &Path,
    read: impl FnOnce(&Path) -> Result<T, KittiError>,
) -> anyhow::Result<Option<T>> {
    if path.exists() {
        Ok(Some(
            read(path).with_context(|| format!("reading {}", path.display()))?,
        ))
    } else {
        tracing::debug!("{} does not exist; not drawn", path.display());
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------
// Layout and style
// ---------------------------------------------------------------------------------------------

/// An RGB colour.
type Rgb8 = [u8; 3];

/// The narrowest image the layout is made for, px.
const MIN_WIDTH_PX: u32 = 400;
/// Height of the strip between the panels (title and legend), px.
const HEADER_PX: u32 = 56;
/// Room left of the bird's-eye plot for the forward tick labels, px.
const BEV_AXIS_LEFT_PX: f64 = 52.0;
/// Room below the bird's-eye plot for the lateral tick labels and the axis name, px.
const BEV_AXIS_BOTTOM_PX: f64 = 46.0;
/// Padding above and right of the bird's-eye plot, px.
const BEV_PAD_PX: f64 = 12.0;
/// Forward range the bird's-eye plot shows at least, m.
const BEV_FORWARD_M: Real = 80.0;
/// Lateral range the bird's-eye plot shows at least on each side, m.
const BEV_LATERAL_M: Real = 40.0;
/// Grid spacing of the bird's-eye plot, m.
const BEV_GRID_M: Real = 10.0;
/// Edges are clipped at this depth in front of the camera (rect z), m.
const NEAR_M: Real = 0.1;
/// Depth mapped to the far end (blue) of the colour map, m.
const DEPTH_FAR_M: f32 = 60.0;

// Colours. Boxes get a black outline, so that they stand out on the image and on the depth-coloured
// points; classes and detections avoid the hues of one another.
const BACKGROUND: Rgb8 = [22, 22, 26];
const GRID: Rgb8 = [58, 58, 66];
const AXIS_TEXT: Rgb8 = [200, 200, 205];
const OUTLINE: Rgb8 = [0, 0, 0];
const CAR: Rgb8 = [0, 230, 0];
const VAN: Rgb8 = [0, 200, 255];
const PEDESTRIAN: Rgb8 = [255, 0, 255];
const CYCLIST: Rgb8 = [255, 140, 0];
const OTHER: Rgb8 = [190, 130, 255];
const TEXT: Rgb8 = [255, 255, 255];
const DONT_CARE: Rgb8 = [150, 150, 150];
const DETECTION: Rgb8 = [255, 255, 255];
const FOV: Rgb8 = [190, 190, 120];

/// The colour of a label class.
fn class_color(kind: &ObjectType) -> Rgb8 {
    match kind {
        ObjectType::Car => CAR,
        ObjectType::Van => VAN,
        ObjectType::Pedestrian | ObjectType::PersonSitting => PEDESTRIAN,
        ObjectType::Cyclist => CYCLIST,
        ObjectType::DontCare => DONT_CARE,
        _ => OTHER,
    }
}

/// The colour of a LIDAR point at `depth_m` in the camera panel: red/yellow near, blue far.
fn depth_color(depth_m: f32) -> Rgb8 {
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
fn height_grey(z_m: f32) -> u8 {
    let t = ((z_m + 2.2) / 3.0).clamp(0.0, 1.0);
    (70.0 + 185.0 * t).round() as u8
}

/// A pixel rectangle: `x0 ≤ x < x1`, `y0 ≤ y < y1`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rect {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Rect {
    fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
}

/// The bird's-eye plot: velo `x` (forward) points up, velo `y` (left) points left, one scale for both.
#[derive(Clone, Copy, Debug, PartialEq)]
struct BevView {
    /// The plot area in the output image.
    plot: Rect,
    /// Scale, px per m.
    px_per_m: Real,
}

impl BevView {
    /// The largest scale that shows [`BEV_FORWARD_M`] × ±[`BEV_LATERAL_M`] in `plot`.
    fn new(plot: Rect) -> Self {
        let px_per_m = ((plot.x1 - plot.x0) / (2.0 * BEV_LATERAL_M)).min((plot.y1 - plot.y0) / BEV_FORWARD_M);
        Self { plot, px_per_m }
    }

    /// The pixel of the velo point `forward_m` ahead of and `left_m` left of the LIDAR.
    fn pixel(&self, forward_m: Real, left_m: Real) -> [f64; 2] {
        let center_u = 0.5 * (self.plot.x0 + self.plot.x1);
        [
            center_u - left_m * self.px_per_m,
            self.plot.y1 - forward_m * self.px_per_m,
        ]
    }

    /// The forward range shown, m.
    fn forward_max_m(&self) -> Real {
        (self.plot.y1 - self.plot.y0) / self.px_per_m
    }

    /// The lateral range shown on each side, m.
    fn lateral_max_m(&self) -> Real {
        0.5 * (self.plot.x1 - self.plot.x0) / self.px_per_m
    }
}

/// Where the parts lie in the output image: camera panel, header strip, square bird's-eye panel.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Layout {
    /// The camera image.
    camera: Rect,
    /// Title and legend.
    header: Rect,
    /// The bird's-eye plot.
    bev: BevView,
    /// Output size, px.
    size: (u32, u32),
}

impl Layout {
    /// The layout for a camera image of `width` × `image_height`: the bottom panel (header strip and
    /// bird's-eye plot) is square, as tall as the image is wide.
    fn new(width: u32, image_height: u32) -> Self {
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
struct Stroke {
    color: Rgb8,
    /// Width, px.
    width_px: f64,
    /// Dash and gap lengths, px; `None` for a solid line.
    dash_px: Option<(f64, f64)>,
    /// Whether a 1-px black outline is drawn around the line (visible on any background).
    outline: bool,
}

impl Stroke {
    fn solid(color: Rgb8, width_px: f64) -> Self {
        Self {
            color,
            width_px,
            dash_px: None,
            outline: false,
        }
    }

    fn outlined(self) -> Self {
        Self {
            outline: true,
            ..self
        }
    }

    fn dashed(self, on_px: f64, off_px: f64) -> Self {
        Self {
            dash_px: Some((on_px, off_px)),
            ..self
        }
    }
}

/// Fills the `size_px` × `size_px` square centred on `(x, y)`, inside `clip`.
fn stamp(img: &mut RgbImage, clip: &Rect, x: f64, y: f64, size_px: f64, color: Rgb8) {
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
fn fill_rect(img: &mut RgbImage, rect: &Rect, color: Rgb8, alpha: f32) {
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
fn clip_segment(a: [f64; 2], b: [f64; 2], r: &Rect) -> Option<([f64; 2], [f64; 2])> {
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
fn draw_line(img: &mut RgbImage, clip: &Rect, a: [f64; 2], b: [f64; 2], stroke: &Stroke) {
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
fn stamp_line(
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
fn draw_rect(img: &mut RgbImage, clip: &Rect, rect: &Rect, stroke: &Stroke) {
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
struct TextItem {
    text: String,
    /// Anchor point, px.
    at: [f64; 2],
    /// Which point of the text box sits on `at`: `(0, 0)` top-left, `(0.5, 0.5)` centre, `(1, 0)`
    /// top-right.
    anchor: (f64, f64),
    /// Font size, px.
    size_px: f64,
    color: Rgb8,
    /// Whether a translucent dark box is drawn behind the text.
    backdrop: bool,
}

impl TextItem {
    fn new(text: impl Into<String>, at: [f64; 2], size_px: f64, color: Rgb8) -> Self {
        Self {
            text: text.into(),
            at,
            anchor: (0.0, 0.0),
            size_px,
            color,
            backdrop: false,
        }
    }

    fn anchored(self, fx: f64, fy: f64) -> Self {
        Self {
            anchor: (fx, fy),
            ..self
        }
    }

    fn with_backdrop(self) -> Self {
        Self {
            backdrop: true,
            ..self
        }
    }
}

fn text_style(size_px: f64, color: Rgb8) -> TextStyle<'static> {
    ("sans-serif", size_px)
        .into_font()
        .color(&RGBColor(color[0], color[1], color[2]))
}

/// The size of `text` in the embedded font, px.
fn text_size(text: &str, size_px: f64) -> anyhow::Result<(u32, u32)> {
    crate::plot::register_font()?;
    let mut buf = [0_u8; 3];
    let area = BitMapBackend::<RGBPixel>::with_buffer_and_format(&mut buf, (1, 1))?.into_drawing_area();
    Ok(area.estimate_text_size(text, &text_style(size_px, TEXT))?)
}

/// Draws the texts (with their backdrops) onto `img`.
fn draw_texts(img: &mut RgbImage, texts: &[TextItem]) -> anyhow::Result<()> {
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
// Drawing the frame
// ---------------------------------------------------------------------------------------------

/// Corner pairs of a box's 12 edges (corner order of [`geom::Box3d::corners_rect`]).
const BOX_EDGES: [(usize, usize); 12] = [
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
const FRONT_CROSS: [(usize, usize); 2] = [(0, 5), (1, 4)];

/// Draws the frame: camera panel, header strip (title and legend), bird's-eye panel.
pub fn render(frame: &Frame) -> anyhow::Result<RgbImage> {
    let (width, height) = frame.image.dimensions();
    if width < MIN_WIDTH_PX || height == 0 {
        bail!(
            "the camera image of frame {} is {width}×{height} px; show-frame needs at least {MIN_WIDTH_PX} px wide",
            frame.id
        );
    }
    let layout = Layout::new(width, height);
    let mut canvas = RgbImage::from_pixel(layout.size.0, layout.size.1, Rgb(BACKGROUND));
    image::imageops::replace(&mut canvas, &frame.image, 0, 0);
    let mut texts = Vec::new();

    let in_image = frame
        .points
        .as_deref()
        .map(|points| draw_points_in_image(&mut canvas, &layout.camera, &frame.calib, points));
    let labels = frame.labels.as_deref().unwrap_or_default();
    for (i, object) in labels.iter().enumerate() {
        if object.kind == ObjectType::DontCare {
            let b = &object.bbox;
            let rect = Rect {
                x0: b.left,
                y0: b.top,
                x1: b.right,
                y1: b.bottom,
            };
            draw_rect(&mut canvas, &layout.camera, &rect, &Stroke::solid(DONT_CARE, 1.0));
        } else {
            draw_box_in_image(&mut canvas, &layout.camera, &frame.calib, i, object, &mut texts);
        }
    }
    for det in frame.detections.as_deref().unwrap_or_default() {
        draw_detection(&mut canvas, &layout.camera, det, &mut texts);
    }

    draw_bev(&mut canvas, &layout, frame, &mut texts);
    draw_header(&mut canvas, &layout, frame, in_image, &mut texts)?;
    draw_texts(&mut canvas, &texts)?;
    Ok(canvas)
}

/// Projects the LIDAR points into the camera panel as small dots coloured by depth, far ones first.
/// Returns how many land in the image.
fn draw_points_in_image(img: &mut RgbImage, camera: &Rect, calib: &Calib, points: &[VeloPoint]) -> usize {
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
fn clip_near(a: Point3<Real>, b: Point3<Real>) -> Option<(Point3<Real>, Point3<Real>)> {
    match (a.z >= NEAR_M, b.z >= NEAR_M) {
        (true, true) => Some((a, b)),
        (false, false) => None,
        (a_in, _) => {
            let cut = a + (b - a) * ((NEAR_M - a.z) / (b.z - a.z));
            Some(if a_in { (a, cut) } else { (cut, b) })
        }
    }
}

/// Draws a label's 3D box projected into the camera panel, its front face crossed, with its index.
fn draw_box_in_image(
    img: &mut RgbImage,
    camera: &Rect,
    calib: &Calib,
    index: usize,
    object: &Object,
    texts: &mut Vec<TextItem>,
) {
    let b = &object.box3d;
    if ![b.size.height_m, b.size.width_m, b.size.length_m]
        .iter()
        .all(|s| s.is_finite() && *s > 0.0)
    {
        return;
    }
    let corners = b.corners_rect();
    let stroke = Stroke::solid(class_color(&object.kind), 2.0).outlined();
    let project = |p: &Point3<Real>| calib.project_rect_to_image(Camera::Cam2, p).ok();
    let mut drawn = false;
    for (edges, stroke) in [
        (&BOX_EDGES[..], stroke),
        (
            &FRONT_CROSS[..],
            Stroke {
                width_px: 1.0,
                ..stroke
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
        return;
    }
    // The index above the box's highest visible corner.
    let tops: Vec<[f64; 2]> = corners
        .iter()
        .filter(|c| c.z >= NEAR_M)
        .filter_map(project)
        .collect();
    if let Some(top) = tops.iter().min_by(|p, q| p[1].total_cmp(&q[1])) {
        let u_mid = tops.iter().map(|p| p[0]).sum::<f64>() / tops.len() as f64;
        let at = [
            u_mid.clamp(camera.x0 + 12.0, camera.x1 - 12.0),
            top[1].clamp(camera.y0 + 18.0, camera.y1 - 2.0) - 3.0,
        ];
        texts.push(
            TextItem::new(index.to_string(), at, 13.0, class_color(&object.kind))
                .anchored(0.5, 1.0)
                .with_backdrop(),
        );
    }
}

/// Draws a 2D detection as a dashed rectangle with its class and score.
fn draw_detection(img: &mut RgbImage, camera: &Rect, det: &Object, texts: &mut Vec<TextItem>) {
    let b = &det.bbox;
    let rect = Rect {
        x0: b.left,
        y0: b.top,
        x1: b.right,
        y1: b.bottom,
    };
    draw_rect(
        img,
        camera,
        &rect,
        &Stroke::solid(DETECTION, 2.0).dashed(7.0, 5.0).outlined(),
    );
    let text = match det.score {
        Some(s) => format!("{} {s:.2}", det.kind),
        None => det.kind.to_string(),
    };
    let at = [
        b.left.clamp(camera.x0, camera.x1 - 60.0),
        (b.bottom + 3.0).clamp(camera.y0, camera.y1 - 14.0),
    ];
    texts.push(TextItem::new(text, at, 11.0, DETECTION).with_backdrop());
}

/// The bird's-eye panel: grid, LIDAR points by height, field of view, label boxes with headings.
fn draw_bev(img: &mut RgbImage, layout: &Layout, frame: &Frame, texts: &mut Vec<TextItem>) {
    let view = &layout.bev;
    let plot = view.plot;
    fill_rect(img, &plot, [0, 0, 0], 1.0);

    // Grid and tick labels every 10 m.
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

    // LIDAR points, brighter where higher; the highest point of a pixel wins.
    if let Some(points) = &frame.points {
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

    let velo_from_rect = frame.calib.velo_from_rect();
    let to_bev = |p: &Point3<Real>| -> [f64; 2] {
        let q = velo_from_rect * p.to_homogeneous();
        view.pixel(q.x / q.w, q.y / q.w)
    };

    // The camera's field of view: the rays of the image's left and right edges.
    let (w, h) = (layout.camera.x1, layout.camera.y1);
    for u in [0.0, w] {
        let ray = |depth_m: Real| {
            frame
                .calib
                .back_project_to_rect(Camera::Cam2, Point2::new(u, 0.5 * h), depth_m)
        };
        if let (Ok(near), Ok(far)) = (ray(0.0), ray(1000.0)) {
            draw_line(
                img,
                &plot,
                to_bev(&near),
                to_bev(&far),
                &Stroke::solid(FOV, 1.0).dashed(8.0, 6.0),
            );
        }
    }
    // The LIDAR itself.
    let origin = view.pixel(0.0, 0.0);
    stamp(img, &plot, origin[0], origin[1] - 3.0, 7.0, TEXT);

    // Label boxes: the bottom face, a line from the centre to the front, the index beside it.
    let labels = frame.labels.as_deref().unwrap_or_default();
    for (i, object) in labels.iter().enumerate() {
        if object.kind == ObjectType::DontCare {
            continue;
        }
        let color = class_color(&object.kind);
        let stroke = Stroke::solid(color, 2.0);
        let c = object.box3d.corners_rect().map(|p| to_bev(&p));
        for k in 0..4 {
            draw_line(img, &plot, c[k], c[(k + 1) % 4], &stroke);
        }
        let center = to_bev(&object.box3d.bottom_center_rect);
        let front = [0.5 * (c[0][0] + c[1][0]), 0.5 * (c[0][1] + c[1][1])];
        draw_line(img, &plot, center, front, &stroke);
        let right = c[..4].iter().map(|p| p[0]).fold(f64::MIN, f64::max);
        if plot.contains(center[0], center[1]) {
            texts
                .push(TextItem::new(i.to_string(), [right + 4.0, center[1]], 12.0, color).anchored(0.0, 0.5));
        }
    }
}

/// Per-class counts in order of first appearance, e.g. `Car 3, DontCare 2`.
fn class_counts(objects: &[Object]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for o in objects {
        match counts.iter_mut().find(|(k, _)| *k == o.kind.as_str()) {
            Some((_, n)) => *n += 1,
            None => counts.push((o.kind.as_str(), 1)),
        }
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The strip between the panels: a title with counts, and the legend with the depth colour bar.
fn draw_header(
    img: &mut RgbImage,
    layout: &Layout,
    frame: &Frame,
    in_image: Option<usize>,
    texts: &mut Vec<TextItem>,
) -> anyhow::Result<()> {
    let header = layout.header;
    let labels = match &frame.labels {
        None => "no label file".to_owned(),
        Some(l) if l.is_empty() => "no labels".to_owned(),
        Some(l) => format!("labels: {}", class_counts(l)),
    };
    let detections = match &frame.detections {
        None => String::new(),
        Some(d) => format!("  ·  {} detections", d.len()),
    };
    let points = match (&frame.points, in_image) {
        (Some(p), Some(n)) => format!("{} LIDAR points ({n} in the image)", p.len()),
        _ => "no LIDAR file".to_owned(),
    };
    texts.push(TextItem::new(
        format!("frame {}  ·  {labels}{detections}  ·  {points}", frame.id),
        [10.0, header.y0 + 6.0],
        17.0,
        TEXT,
    ));

    // Legend: a swatch and a name per entry, then the depth colour bar.
    let row_y = header.y0 + 38.0;
    let mut x = 10.0;
    let entries: [(&str, Stroke); 7] = [
        ("Car", Stroke::solid(CAR, 2.0).outlined()),
        ("Van", Stroke::solid(VAN, 2.0).outlined()),
        ("Pedestrian", Stroke::solid(PEDESTRIAN, 2.0).outlined()),
        ("Cyclist", Stroke::solid(CYCLIST, 2.0).outlined()),
        ("other class", Stroke::solid(OTHER, 2.0).outlined()),
        ("DontCare", Stroke::solid(DONT_CARE, 1.0)),
        (
            "detection (2D, score)",
            Stroke::solid(DETECTION, 2.0).dashed(7.0, 5.0).outlined(),
        ),
    ];
    for (name, stroke) in entries {
        draw_line(img, &header, [x, row_y], [x + 22.0, row_y], &stroke);
        texts.push(TextItem::new(name, [x + 28.0, row_y], 14.0, TEXT).anchored(0.0, 0.5));
        x += 28.0 + text_size(name, 14.0)?.0 as f64 + 18.0;
    }
    let label = "LIDAR depth 0";
    texts.push(TextItem::new(label, [x, row_y], 14.0, TEXT).anchored(0.0, 0.5));
    x += text_size(label, 14.0)?.0 as f64 + 6.0;
    let bar_px = 120.0;
    for k in 0..bar_px as u32 {
        let depth_m = (k as f32 + 0.5) / bar_px as f32 * DEPTH_FAR_M;
        let u = x + k as f64;
        draw_line(
            img,
            &header,
            [u, row_y - 5.0],
            [u, row_y + 5.0],
            &Stroke::solid(depth_color(depth_m), 1.0),
        );
    }
    texts.push(
        TextItem::new(
            format!("{DEPTH_FAR_M:.0}+ m"),
            [x + bar_px + 6.0, row_y],
            14.0,
            TEXT,
        )
        .anchored(0.0, 0.5),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geom::{Box2d, Box3d, Size3};
    use nalgebra::Matrix4;

    fn car(x: Real, z: Real, rotation_y_rad: Real) -> Object {
        Object {
            kind: ObjectType::Car,
            truncated: 0.0,
            occluded: 0,
            alpha_rad: 0.0,
            bbox: Box2d::new(0.0, 0.0, 1.0, 1.0),
            box3d: Box3d::new(Point3::new(x, 1.65, z), Size3::new(1.5, 1.6, 3.9), rotation_y_rad),
            score: None,
        }
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
        let [u, v] = bev(car(0.0, 10.0, 0.0).box3d.bottom_center_rect);
        assert!(((view.plot.y1 - v) / s - 10.27).abs() < 0.1, "{v}");
        assert!((u - 0.5 * (view.plot.x0 + view.plot.x1)).abs() / s < 0.1, "{u}");
        // 5 m to the right in the camera (rect x) is 5 m right in the panel.
        let [u_right, _] = bev(car(5.0, 10.0, 0.0).box3d.bottom_center_rect);
        assert!(((u_right - u) / s - 5.0).abs() < 0.1, "{u_right}");
        // A car heading away from the camera (ry = −π/2) has its front further up.
        let c = car(0.0, 10.0, -std::f64::consts::FRAC_PI_2).box3d.corners_rect();
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

    #[test]
    fn render_draws_the_box_edges_in_the_class_colour() {
        let calib = Calib::kitti_reference();
        let object = car(1.0, 12.0, -std::f64::consts::FRAC_PI_2);
        let frame = Frame {
            id: "000000".into(),
            image: RgbImage::from_pixel(1242, 375, Rgb([90, 90, 90])),
            calib: calib.clone(),
            points: Some(vec![VeloPoint {
                x: 20.0,
                y: 0.0,
                z: -1.0,
                intensity: 0.5,
            }]),
            labels: Some(vec![object.clone()]),
            detections: Some(Vec::new()),
        };
        let canvas = render(&frame).unwrap();
        assert_eq!(canvas.dimensions(), (1242, 375 + 1242));
        // The middle of the rear bottom edge (corners 2, 3 face the camera).
        let c = object.box3d.corners_rect();
        let mid = Point3::from((c[2].coords + c[3].coords) / 2.0);
        let [u, v] = calib.project_rect_to_image(Camera::Cam2, &mid).unwrap();
        assert_eq!(canvas.get_pixel(u as u32, v as u32).0, CAR);
    }
}
