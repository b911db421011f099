//! Pictures of autolabelled frames (`viz/<id>.png` of `cargo xtask autolabel`). The top panel is the
//! camera image, dimmed, with each predicted shape's surface points splatted in their NOCS colours
//! (z-buffered, semi-transparent), the predicted 3D boxes coloured by score (front face crossed,
//! score above), the 2D detections that were labelled (thin), and the ground-truth boxes (dashed,
//! in their own colour); a header strip holds the title and the legend; the bottom panel is a
//! bird's-eye view of the LIDAR points, ground-truth and predicted boxes, like `show-frame`'s.

use crate::draw::{
    BACKGROUND, Layout, MIN_WIDTH_PX, NEAR_M, Rect, Rgb8, Stroke, TEXT, TextItem, draw_bev_axes,
    draw_bev_box, draw_bev_fov, draw_bev_points, draw_box_in_image, draw_color_bar, draw_legend_entry,
    draw_rect, draw_texts, text_size,
};
use anyhow::bail;
use geom::{Box2d, Calib, Camera, Real};
use image::{Rgb, RgbImage};
use kitti::velodyne::VeloPoint;
use kitti::{Object, ObjectType};
use nalgebra::Vector4;

/// One autolabelled object to draw (borrowed from the labeler's output).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ObjectViz<'a> {
    /// The predicted KITTI label (with its score).
    pub label: &'a Object,
    /// Surface points of its fitted shape, rect frame, m (may be empty, e.g. for the baseline).
    pub surface_rect: &'a [[f32; 3]],
    /// One colour per surface point in `[0, 1]³` (its NOCS coordinates), as many as `surface_rect`.
    pub nocs: &'a [[f32; 3]],
}

/// Everything drawn for one autolabelled frame.
#[derive(Clone, Copy, Debug)]
pub struct FrameViz<'a> {
    /// Frame id, for the title.
    pub id: &'a str,
    /// The left colour image (`image_2`).
    pub image: &'a RgbImage,
    /// The frame's calibration; shapes and boxes are projected with its `P2`.
    pub calib: &'a Calib,
    /// The LIDAR sweep (velo frame), for the bird's-eye panel.
    pub points_velo: &'a [VeloPoint],
    /// The 2D detections that were labelled, px.
    pub detections: &'a [Box2d],
    /// Ground-truth labels; empty when there are none.
    pub ground_truth: &'a [Object],
    /// The autolabelled objects.
    pub predictions: &'a [ObjectViz<'a>],
}

// Style. Prediction colours run red → yellow → green with the score; ground truth is cyan and
// dashed, so that it reads apart from any score and from the NOCS colours under it.
const GROUND_TRUTH: Rgb8 = [0, 215, 255];
const DETECTION: Rgb8 = [235, 235, 235];
const DONT_CARE: Rgb8 = [150, 150, 150];
/// A prediction without a score.
const UNSCORED: Rgb8 = [255, 255, 255];
/// Share of the image's brightness kept under the overlays.
const IMAGE_BRIGHTNESS: f32 = 0.6;
/// Opacity of the shape splats.
const SHAPE_ALPHA: f32 = 0.7;
/// A surface point's disc has this radius in units of the mean point spacing (so that the shape
/// reads as closed at any sampling density and distance), within the bounds below.
const SPLAT_RADIUS_PER_SPACING: Real = 0.7;
/// Bounds of a disc's radius at the object, m.
const SPLAT_RADIUS_M: (Real, Real) = (0.01, 0.15);
/// Bounds of a disc's radius in the image, px.
const SPLAT_RADIUS_PX: (Real, Real) = (1.0, 6.0);

fn ground_truth_stroke() -> Stroke {
    Stroke::solid(GROUND_TRUTH, 2.0).dashed(6.0, 4.0).outlined()
}

fn detection_stroke() -> Stroke {
    Stroke::solid(DETECTION, 1.0).dashed(4.0, 3.0)
}

/// The colour of a score in `[0, 1]`: red at 0, yellow at ½, green at 1 (clamped).
fn score_color(score: f32) -> Rgb8 {
    const STOPS: [Rgb8; 3] = [[235, 40, 40], [255, 220, 0], [40, 225, 70]];
    let t = if score.is_finite() {
        score.clamp(0.0, 1.0)
    } else {
        0.0
    } * 2.0;
    let i = (t.floor() as usize).min(1);
    let f = t - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    std::array::from_fn(|k| (a[k] as f32 + f * (b[k] as f32 - a[k] as f32)).round() as u8)
}

/// The colour of a prediction's box.
fn prediction_color(label: &Object) -> Rgb8 {
    label.score.map_or(UNSCORED, |s| score_color(s as f32))
}

/// A NOCS coordinate in `[0, 1]³` as a colour, or `None` when not finite.
fn nocs_color(nocs: &[f32; 3]) -> Option<Rgb8> {
    nocs.iter()
        .all(|v| v.is_finite())
        .then(|| nocs.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8))
}

/// Draws the picture of one autolabelled frame: camera panel with shapes and boxes, header strip
/// (title and legend), bird's-eye panel. Errors for an image narrower than the layout needs or a
/// prediction whose NOCS colours do not match its surface points.
pub fn draw_autolabel(frame: &FrameViz) -> anyhow::Result<RgbImage> {
    let (width, height) = frame.image.dimensions();
    if width < MIN_WIDTH_PX || height == 0 {
        bail!(
            "the camera image of frame {} is {width}×{height} px; the autolabel picture needs at least {MIN_WIDTH_PX} px wide",
            frame.id
        );
    }
    for (i, p) in frame.predictions.iter().enumerate() {
        if p.nocs.len() != p.surface_rect.len() {
            bail!(
                "frame {}, prediction {i}: {} NOCS colours for {} surface points",
                frame.id,
                p.nocs.len(),
                p.surface_rect.len()
            );
        }
    }
    let layout = Layout::new(width, height);
    let mut canvas = RgbImage::from_pixel(layout.size.0, layout.size.1, Rgb(BACKGROUND));
    for (x, y, px) in frame.image.enumerate_pixels() {
        let dimmed = px.0.map(|c| (IMAGE_BRIGHTNESS * c as f32).round() as u8);
        canvas.put_pixel(x, y, Rgb(dimmed));
    }
    let mut texts = Vec::new();
    let camera = layout.camera;

    draw_shapes(&mut canvas, &camera, frame.calib, frame.predictions);
    for d in frame.detections {
        let rect = Rect::from(d);
        draw_rect(&mut canvas, &camera, &rect, &detection_stroke());
    }
    // Predictions by rising score, so that the most confident end on top; ground truth over them.
    let mut order: Vec<&ObjectViz> = frame.predictions.iter().collect();
    order.sort_by(|a, b| {
        let score = |o: &ObjectViz| o.label.score.unwrap_or(Real::INFINITY);
        score(a).total_cmp(&score(b))
    });
    for p in &order {
        let color = prediction_color(p.label);
        let stroke = Stroke::solid(color, 2.0).outlined();
        if let Some(at) = draw_box_in_image(&mut canvas, &camera, frame.calib, &p.label.box3d, &stroke)
            && let Some(score) = p.label.score
        {
            texts.push(
                TextItem::new(format!("{score:.2}"), at, 13.0, color)
                    .anchored(0.5, 1.0)
                    .with_backdrop(),
            );
        }
    }
    for g in frame.ground_truth {
        if g.kind == ObjectType::DontCare {
            let b = &g.bbox;
            let rect = Rect::from(b);
            draw_rect(&mut canvas, &camera, &rect, &Stroke::solid(DONT_CARE, 1.0));
        } else {
            draw_box_in_image(
                &mut canvas,
                &camera,
                frame.calib,
                &g.box3d,
                &ground_truth_stroke(),
            );
        }
    }

    draw_bev(&mut canvas, &layout, frame, &order, &mut texts);
    draw_header(&mut canvas, &layout, frame, &mut texts)?;
    draw_texts(&mut canvas, &texts)?;
    Ok(canvas)
}

/// Splats every prediction's surface points into the camera panel as discs of their NOCS colour
/// (radius from the points' mean spacing over the predicted box's surface), nearest first per pixel
/// (one depth buffer for all objects), blended over the image. Returns how many pixels were covered.
fn draw_shapes(img: &mut RgbImage, camera: &Rect, calib: &Calib, predictions: &[ObjectViz]) -> usize {
    let (w, h) = (camera.x1 as usize, camera.y1 as usize);
    let mut depth_m = vec![f32::INFINITY; w * h];
    let mut color = vec![[0_u8; 3]; w * h];
    let image_from_rect = calib.image_from_rect(Camera::Cam2);
    let focal_px = image_from_rect[(0, 0)].abs();
    for p in predictions {
        // Mean spacing of the points if they cover the box's surface evenly.
        let size = p.label.box3d.size;
        let area_m2 = 2.0
            * (size.length_m * size.width_m + size.length_m * size.height_m + size.width_m * size.height_m);
        let spacing_m = (area_m2 / p.surface_rect.len().max(1) as Real).sqrt();
        let radius_m = if spacing_m.is_finite() {
            (SPLAT_RADIUS_PER_SPACING * spacing_m).clamp(SPLAT_RADIUS_M.0, SPLAT_RADIUS_M.1)
        } else {
            SPLAT_RADIUS_M.0
        };
        for (x, nocs) in p.surface_rect.iter().zip(p.nocs) {
            let Some(rgb) = nocs_color(nocs) else {
                continue;
            };
            let hom = image_from_rect * Vector4::new(x[0] as Real, x[1] as Real, x[2] as Real, 1.0);
            if !(hom.iter().all(|v| v.is_finite()) && hom.z >= NEAR_M) {
                continue;
            }
            let (u, v, z) = (hom.x / hom.z, hom.y / hom.z, hom.z as f32);
            let r = (focal_px * radius_m / hom.z).clamp(SPLAT_RADIUS_PX.0, SPLAT_RADIUS_PX.1);
            // Pixel centres are at integer coordinates.
            let (x0, x1) = ((u - r).ceil().max(0.0), (u + r).floor().min(w as Real - 1.0));
            let (y0, y1) = ((v - r).ceil().max(0.0), (v + r).floor().min(h as Real - 1.0));
            if x0 > x1 || y0 > y1 {
                continue;
            }
            for py in y0 as usize..=y1 as usize {
                for px in x0 as usize..=x1 as usize {
                    let (du, dv) = (px as Real - u, py as Real - v);
                    let k = py * w + px;
                    if du * du + dv * dv <= r * r && z < depth_m[k] {
                        depth_m[k] = z;
                        color[k] = rgb;
                    }
                }
            }
        }
    }
    let mut covered = 0;
    for (k, (&z, rgb)) in depth_m.iter().zip(&color).enumerate() {
        if z.is_finite() {
            let px = img.get_pixel_mut((k % w) as u32, (k / w) as u32);
            for (channel, &c) in px.0.iter_mut().zip(rgb) {
                *channel = (SHAPE_ALPHA * c as f32 + (1.0 - SHAPE_ALPHA) * *channel as f32).round() as u8;
            }
            covered += 1;
        }
    }
    covered
}

/// The bird's-eye panel: LIDAR points by height, field of view, ground truth (dashed) and the
/// predicted boxes (by score) with their scores.
fn draw_bev(
    img: &mut RgbImage,
    layout: &Layout,
    frame: &FrameViz,
    predictions: &[&ObjectViz],
    texts: &mut Vec<TextItem>,
) {
    let view = &layout.bev;
    draw_bev_axes(img, view, texts);
    draw_bev_points(img, view, frame.points_velo);
    draw_bev_fov(img, view, frame.calib, &layout.camera);
    let velo_from_rect = frame.calib.velo_from_rect();
    for p in predictions {
        let color = prediction_color(p.label);
        if let Some(at) = draw_bev_box(
            img,
            view,
            &velo_from_rect,
            &p.label.box3d,
            &Stroke::solid(color, 2.0),
        ) && let Some(score) = p.label.score
        {
            texts.push(TextItem::new(format!("{score:.2}"), at, 12.0, color).anchored(0.0, 0.5));
        }
    }
    let gt = Stroke::solid(GROUND_TRUTH, 2.0).dashed(6.0, 4.0);
    for g in frame.ground_truth {
        if g.kind != ObjectType::DontCare {
            draw_bev_box(img, view, &velo_from_rect, &g.box3d, &gt);
        }
    }
}

/// The strip between the panels: a title with counts, and the legend with the score colour bar.
fn draw_header(
    img: &mut RgbImage,
    layout: &Layout,
    frame: &FrameViz,
    texts: &mut Vec<TextItem>,
) -> anyhow::Result<()> {
    let header = layout.header;
    let labelled = frame
        .ground_truth
        .iter()
        .filter(|o| o.kind != ObjectType::DontCare)
        .count();
    let ground_truth = if frame.ground_truth.is_empty() {
        "no ground truth".to_owned()
    } else {
        count(labelled, "ground-truth box")
    };
    texts.push(TextItem::new(
        format!(
            "frame {}  ·  autolabel: {} from {}  ·  {ground_truth}  ·  {} LIDAR points",
            frame.id,
            count(frame.predictions.len(), "object"),
            count(frame.detections.len(), "detection"),
            frame.points_velo.len()
        ),
        [10.0, header.y0 + 6.0],
        17.0,
        TEXT,
    ));

    // Legend: box styles, the score colour bar, the NOCS colours.
    let row_y = header.y0 + 38.0;
    let mut x = 10.0;
    let label = "prediction (3D), score 0";
    draw_line_sample(
        img,
        &header,
        [x, row_y],
        &Stroke::solid(score_color(1.0), 2.0).outlined(),
    );
    texts.push(TextItem::new(label, [x + 28.0, row_y], 14.0, TEXT).anchored(0.0, 0.5));
    x += 28.0 + text_size(label, 14.0)?.0 as f64 + 6.0;
    let bar_px = 90.0;
    draw_color_bar(img, &header, [x, row_y], bar_px, score_color);
    texts.push(TextItem::new("1", [x + bar_px + 6.0, row_y], 14.0, TEXT).anchored(0.0, 0.5));
    x += bar_px + 6.0 + text_size("1", 14.0)?.0 as f64 + 18.0;
    for (name, stroke) in [
        ("ground truth (3D)", ground_truth_stroke()),
        ("detection (2D)", detection_stroke()),
    ] {
        x = draw_legend_entry(img, &header, [x, row_y], name, &stroke, texts)?;
    }
    let label = "shape (NOCS colour)";
    draw_color_bar(img, &header, [x, row_y], 22.0, |t| {
        nocs_color(&[t, 1.0 - t, 0.5]).unwrap_or(DETECTION)
    });
    texts.push(TextItem::new(label, [x + 28.0, row_y], 14.0, TEXT).anchored(0.0, 0.5));
    Ok(())
}

/// `n thing` or `n things`.
fn count(n: usize, thing: &str) -> String {
    match (n, thing.ends_with('x')) {
        (1, _) => format!("1 {thing}"),
        (_, true) => format!("{n} {thing}es"),
        (_, false) => format!("{n} {thing}s"),
    }
}

/// A 22-px sample of `stroke` at `x` on the row `row_y` (a legend swatch without its name).
fn draw_line_sample(img: &mut RgbImage, header: &Rect, [x, row_y]: [f64; 2], stroke: &Stroke) {
    crate::draw::draw_line(img, header, [x, row_y], [x + 22.0, row_y], stroke);
}

/// Draws one labelled frame of a run to `dir/<id>.png` (atomically), with the ground truth of
/// `dataset` when it has labels (the pictures are part of the evaluation; the labeler itself never
/// reads them).
pub fn write_frame_viz(
    dir: &std::path::Path,
    outcome: &pipeline::run::FrameOutcome<'_>,
    dataset: &kitti::KittiDataset,
) -> anyhow::Result<()> {
    let frame = outcome.frame;
    let gt_path = dataset.path(kitti::Split::Training, kitti::Modality::Label2, &frame.id);
    let ground_truth = if gt_path.is_file() {
        kitti::label::read_labels(&gt_path)?
    } else {
        Vec::new()
    };
    let predictions: Vec<ObjectViz> = outcome
        .labels
        .objects
        .iter()
        .map(|o| ObjectViz {
            label: &o.label,
            surface_rect: &o.surface_rect,
            nocs: &o.nocs,
        })
        .collect();
    let detections: Vec<Box2d> = outcome.detections.iter().map(|d| d.bbox).collect();
    let picture = draw_autolabel(&FrameViz {
        id: &frame.id,
        image: &frame.image,
        calib: &frame.calib,
        points_velo: &frame.points_velo,
        detections: &detections,
        ground_truth: &ground_truth,
        predictions: &predictions,
    })?;
    kitti::image::write_rgb_png(&dir.join(format!("{}.png", frame.id)), &picture)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geom::{Box3d, Size3};
    use nalgebra::{Matrix3x4, Point3};

    /// The reference rig with a 200-px focal length and the principal point in the middle of a
    /// 400 × 120 image.
    fn small_calib() -> Calib {
        let mut calib = Calib::kitti_reference();
        calib.p[2] = Matrix3x4::new(
            200.0, 0.0, 200.0, 0.0, //
            0.0, 200.0, 60.0, 0.0, //
            0.0, 0.0, 1.0, 0.0,
        );
        calib
    }

    fn car(x: Real, z: Real, rotation_y_rad: Real, score: Option<Real>) -> Object {
        let box3d = Box3d::new(Point3::new(x, 1.0, z), Size3::new(1.5, 1.6, 3.9), rotation_y_rad);
        Object {
            kind: ObjectType::Car,
            truncated: 0.0,
            occluded: 0,
            alpha_rad: box3d.alpha_rad(),
            bbox: Box2d::new(0.0, 0.0, 1.0, 1.0),
            box3d,
            score,
        }
    }

    /// Points on the box's faces (a grid per face) with their normalised box coordinates as NOCS.
    fn surface(b: &Box3d) -> (Vec<[f32; 3]>, Vec<[f32; 3]>) {
        let (mut points, mut nocs) = (Vec::new(), Vec::new());
        let r = b.rect_from_object_rotation();
        let Size3 {
            height_m: h,
            width_m: w,
            length_m: l,
        } = b.size;
        let n = 60;
        for i in 0..=n {
            for j in 0..=n {
                let (s, t) = (i as Real / n as Real, j as Real / n as Real);
                // The six faces in normalised coordinates (x along the length, y down, z across).
                for q in [
                    [s, t, 0.0],
                    [s, t, 1.0],
                    [s, 0.0, t],
                    [s, 1.0, t],
                    [0.0, s, t],
                    [1.0, s, t],
                ] {
                    let local = nalgebra::Vector3::new((q[0] - 0.5) * l, -q[1] * h, (q[2] - 0.5) * w);
                    let p = b.bottom_center_rect + r * local;
                    points.push([p.x as f32, p.y as f32, p.z as f32]);
                    nocs.push(q.map(|v| v as f32));
                }
            }
        }
        (points, nocs)
    }

    #[test]
    fn the_picture_shows_the_shape_the_box_and_the_ground_truth() {
        let calib = small_calib();
        let image = RgbImage::from_pixel(400, 120, Rgb([100, 100, 100]));
        let predicted = car(-1.0, 12.0, -1.2, Some(0.9));
        let (surface_rect, nocs) = surface(&predicted.box3d);
        let predictions = [ObjectViz {
            label: &predicted,
            surface_rect: &surface_rect,
            nocs: &nocs,
        }];
        let truth = [car(4.0, 15.0, -1.5, None)];
        let detection = predicted.box3d.project_to_image(&calib, Camera::Cam2).unwrap();
        let points: Vec<VeloPoint> = (0..200)
            .map(|i| VeloPoint {
                x: 5.0 + 0.2 * i as f32,
                y: 0.0,
                z: -1.7,
                intensity: 0.5,
            })
            .collect();
        let frame = FrameViz {
            id: "000001",
            image: &image,
            calib: &calib,
            points_velo: &points,
            detections: &[detection],
            ground_truth: &truth,
            predictions: &predictions,
        };
        let canvas = draw_autolabel(&frame).unwrap();
        assert_eq!(canvas.dimensions(), (400, 120 + 400));

        // Away from everything the image is dimmed.
        assert_eq!(canvas.get_pixel(3, 3).0, [60, 60, 60]);
        // The middle of the predicted box's rear bottom edge has the score colour …
        let c = predicted.box3d.corners_rect();
        let mid = Point3::from((c[2].coords + c[3].coords) / 2.0);
        let [u, v] = calib.project_rect_to_image(Camera::Cam2, &mid).unwrap();
        assert_eq!(
            canvas.get_pixel(u.round() as u32, v.round() as u32).0,
            score_color(0.9)
        );
        // … the ground truth's its own colour, and the shape colours the pixels inside the box.
        let g = truth[0].box3d.corners_rect();
        let mid = Point3::from((g[0].coords + g[4].coords) / 2.0);
        let [u, v] = calib.project_rect_to_image(Camera::Cam2, &mid).unwrap();
        let near_gt = (-1..=1)
            .flat_map(|du| (-1..=1).map(move |dv| (du, dv)))
            .any(|(du, dv)| {
                canvas.get_pixel((u as i64 + du) as u32, (v as i64 + dv) as u32).0 == GROUND_TRUTH
            });
        assert!(near_gt, "no ground-truth colour near ({u}, {v})");
        let inside = (detection.top as u32 + 3..detection.bottom as u32 - 3)
            .flat_map(|y| (detection.left as u32 + 3..detection.right as u32 - 3).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = canvas.get_pixel(x, y).0;
                p[0] != p[1] || p[1] != p[2]
            })
            .count();
        let area = (detection.width() - 6.0) * (detection.height() - 6.0);
        assert!(inside as f64 > 0.5 * area, "{inside} of {area} pixels coloured");

        // In the bird's-eye panel the predicted box is drawn in its score colour.
        let layout = Layout::new(400, 120);
        let velo_from_rect = calib.velo_from_rect();
        let b = &predicted.box3d;
        let front = Point3::from((c[0].coords + c[1].coords) / 2.0);
        let halfway = Point3::from((b.bottom_center_rect.coords + front.coords) / 2.0);
        let [u, v] = crate::draw::bev_pixel_of_rect(&layout.bev, &velo_from_rect, &halfway);
        let near_box = (-1..=1)
            .flat_map(|du| (-1..=1).map(move |dv| (du, dv)))
            .any(|(du, dv)| {
                canvas.get_pixel((u as i64 + du) as u32, (v as i64 + dv) as u32).0 == score_color(0.9)
            });
        assert!(
            near_box,
            "no prediction colour near ({u}, {v}) in the bird's-eye panel"
        );
    }

    #[test]
    fn mismatched_nocs_and_narrow_images_are_errors() {
        let calib = small_calib();
        let image = RgbImage::from_pixel(400, 120, Rgb([100, 100, 100]));
        let label = car(0.0, 10.0, 0.0, Some(0.5));
        let bad = [ObjectViz {
            label: &label,
            surface_rect: &[[0.0, 0.0, 10.0]],
            nocs: &[],
        }];
        let frame = FrameViz {
            id: "x",
            image: &image,
            calib: &calib,
            points_velo: &[],
            detections: &[],
            ground_truth: &[],
            predictions: &bad,
        };
        assert!(draw_autolabel(&frame).is_err());
        let narrow = RgbImage::new(100, 50);
        assert!(
            draw_autolabel(&FrameViz {
                image: &narrow,
                predictions: &[],
                ..frame
            })
            .is_err()
        );
    }

    #[test]
    fn scores_run_from_red_through_yellow_to_green() {
        assert_eq!(score_color(0.0), [235, 40, 40]);
        assert_eq!(score_color(0.5), [255, 220, 0]);
        assert_eq!(score_color(1.0), [40, 225, 70]);
        assert_eq!(score_color(7.0), score_color(1.0));
        assert_eq!(score_color(f32::NAN), score_color(0.0));
    }

    #[test]
    fn nearer_surface_points_hide_farther_ones() {
        let calib = small_calib();
        let camera = Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 400.0,
            y1: 120.0,
        };
        // Two objects on the optical axis (pixel (200, 60)): a red one 5 m ahead, a blue one 10 m.
        let (near, far) = (car(0.0, 5.0, 0.0, Some(0.5)), car(0.0, 10.0, 0.0, Some(0.5)));
        let (near_point, far_point) = ([[0.0, 0.0, 5.0f32]], [[0.0, 0.0, 10.0f32]]);
        let (red_nocs, blue_nocs) = ([[1.0, 0.0, 0.0f32]], [[0.0, 0.0, 1.0f32]]);
        let red = ObjectViz {
            label: &near,
            surface_rect: &near_point,
            nocs: &red_nocs,
        };
        let blue = ObjectViz {
            label: &far,
            surface_rect: &far_point,
            nocs: &blue_nocs,
        };
        for objects in [[red, blue], [blue, red]] {
            let mut img = RgbImage::from_pixel(400, 120, Rgb([100, 100, 100]));
            let covered = draw_shapes(&mut img, &camera, &calib, &objects);
            assert!(covered >= 1);
            let [r, g, b] = img.get_pixel(200, 60).0;
            // 70 % red over the grey.
            assert!(r > 200 && g < 40 && b < 40, "{:?}", [r, g, b]);
            assert_eq!(img.get_pixel(100, 60).0, [100, 100, 100]);
        }
    }
}
