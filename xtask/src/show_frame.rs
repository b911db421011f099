//! `cargo xtask show-frame`: one PNG to look at a KITTI-layout frame (real KITTI or our synthetic
//! data). The top panel is the camera image with the LIDAR points projected into it (coloured by
//! depth), each label's 3D box (front face crossed), DontCare regions and the simulated 2D detections;
//! a header strip holds the title and the legend; the bottom panel is a bird's-eye view of the LIDAR
//! points and the label boxes in the Velodyne frame, with the camera's field of view.
//!
//! The drawing primitives (layout, lines, boxes, bird's-eye panel, text) are in `draw.rs`, shared
//! with the autolabel pictures.

use crate::draw::{
    BACKGROUND, DEPTH_FAR_M, Layout, MIN_WIDTH_PX, Rect, Rgb8, Stroke, TEXT, TextItem, depth_color,
    draw_bev_axes, draw_bev_box, draw_bev_fov, draw_bev_points, draw_box_in_image, draw_color_bar,
    draw_legend_entry, draw_points_in_image, draw_rect, draw_texts, text_size,
};
use anyhow::{Context, bail};
use geom::Calib;
use image::{Rgb, RgbImage};
use kitti::velodyne::VeloPoint;
use kitti::{KittiDataset, KittiError, Modality, Object, ObjectType, Split};
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
// Style
// ---------------------------------------------------------------------------------------------

// Class colours; classes and detections avoid the hues of one another.
const CAR: Rgb8 = [0, 230, 0];
const VAN: Rgb8 = [0, 200, 255];
const PEDESTRIAN: Rgb8 = [255, 0, 255];
const CYCLIST: Rgb8 = [255, 140, 0];
const OTHER: Rgb8 = [190, 130, 255];
const DONT_CARE: Rgb8 = [150, 150, 150];
const DETECTION: Rgb8 = [255, 255, 255];

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

// ---------------------------------------------------------------------------------------------
// Drawing the frame
// ---------------------------------------------------------------------------------------------

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
            let rect = Rect::from(b);
            draw_rect(&mut canvas, &layout.camera, &rect, &Stroke::solid(DONT_CARE, 1.0));
        } else {
            draw_label_box(&mut canvas, &layout.camera, &frame.calib, i, object, &mut texts);
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

/// Draws a label's 3D box projected into the camera panel, its front face crossed, with its index.
fn draw_label_box(
    img: &mut RgbImage,
    camera: &Rect,
    calib: &Calib,
    index: usize,
    object: &Object,
    texts: &mut Vec<TextItem>,
) {
    let color = class_color(&object.kind);
    let stroke = Stroke::solid(color, 2.0).outlined();
    if let Some(at) = draw_box_in_image(img, camera, calib, &object.box3d, &stroke) {
        texts.push(
            TextItem::new(index.to_string(), at, 13.0, color)
                .anchored(0.5, 1.0)
                .with_backdrop(),
        );
    }
}

/// Draws a 2D detection as a dashed rectangle with its class and score.
fn draw_detection(img: &mut RgbImage, camera: &Rect, det: &Object, texts: &mut Vec<TextItem>) {
    let b = &det.bbox;
    let rect = Rect::from(b);
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
    draw_bev_axes(img, view, texts);
    if let Some(points) = &frame.points {
        draw_bev_points(img, view, points);
    }
    draw_bev_fov(img, view, &frame.calib, &layout.camera);

    // Label boxes: the bottom face, a line from the centre to the front, the index beside it.
    let velo_from_rect = frame.calib.velo_from_rect();
    let labels = frame.labels.as_deref().unwrap_or_default();
    for (i, object) in labels.iter().enumerate() {
        if object.kind == ObjectType::DontCare {
            continue;
        }
        let color = class_color(&object.kind);
        let stroke = Stroke::solid(color, 2.0);
        if let Some(at) = draw_bev_box(img, view, &velo_from_rect, &object.box3d, &stroke) {
            texts.push(TextItem::new(i.to_string(), at, 12.0, color).anchored(0.0, 0.5));
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
        x = draw_legend_entry(img, &header, [x, row_y], name, &stroke, texts)?;
    }
    let label = "LIDAR depth 0";
    texts.push(TextItem::new(label, [x, row_y], 14.0, TEXT).anchored(0.0, 0.5));
    x += text_size(label, 14.0)?.0 as f64 + 6.0;
    let bar_px = 120.0;
    draw_color_bar(img, &header, [x, row_y], bar_px, |t| depth_color(t * DEPTH_FAR_M));
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
    use geom::{Box2d, Box3d, Camera, Real, Size3};
    use nalgebra::Point3;

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
