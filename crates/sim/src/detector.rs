//! A simulated 2D instance detector (Mask R-CNN-like): turns a frame's ground truth (visible instance
//! map, label lines, occlusion, clutter) into scored boxes with instance masks, with the errors a real
//! detector makes, so that later stages can be built and tested before a real network replaces it.
//!
//! # Error model
//!
//! [`detect`] draws everything from one `StdRng` seeded with the caller's seed (same inputs and seed,
//! same output). Numbers are the [`DetectorModel::default`] ones.
//!
//! - **Targets.** Label lines of type `Car`, `Van`, `Pedestrian` and `Cyclist` with at least 10 visible
//!   pixels in the instance map. `DontCare` and every other type are never detected as objects.
//! - **Class.** A `Van` is reported as `Car` with probability 0.6 (COCO-trained detectors say "car" or
//!   "truck"), otherwise as `Van`; a `Cyclist` as `Pedestrian` with probability 0.05.
//! - **Misses.** `logit p_miss = logit 0.02 + 2.8 · max(0, ln(100 px / h)) + 4.9 · (1 − v)` with `h` the
//!   label's box height and `v` its visible fraction: 2 % for an unoccluded object ≥ 100 px tall, 50 %
//!   for an unoccluded one 25 px tall or a 100 px one 80 % occluded, 98 % for both.
//! - **Box.** The reported box is the true *visible* box (the extent of the instance pixels, as COCO
//!   boxes are) with each edge moved by Gaussian noise of σ = `√((0.04 · (1 + (1 − v)) · s)² + (1 px)²)`,
//!   `s` the box width for left/right and its height for top/bottom: 4 % of the size for unoccluded
//!   objects, 8 % for fully occluded ones, never below 1 px. Boxes are clipped to the image and
//!   rounded to 0.01 px (what the result file keeps).
//! - **Score.** `logit score = −4 + 5 · IoU + 1.5 · v − 0.8 · max(0, ln(100 px / h)) + N(0, 0.5²)`, IoU
//!   between the reported and the true visible box: ≈ 0.87 for a well-placed large unoccluded car,
//!   ≈ 0.6 for a 25 px one, lower for occluded or badly placed boxes. Scores are rounded to 1e-4 and
//!   kept in [0.0001, 0.9999].
//! - **Mask.** The true visible mask (instance pixels equal to the label's id) within the reported
//!   box's pixel window, degraded like a Mask R-CNN head: (1) resampled to at most 28 × 28 cells over
//!   the window and back (bilinear, threshold 0.5), which rounds corners and drops parts thinner than
//!   about half a cell (a 150 px wide box loses parts under ~3 px); (2) the boundary moves by an
//!   offset `round(b + 1.0 px · F)` clamped to ±2 px (positive dilates, negative erodes), with `b ~
//!   N(0, 0.5²)` px per detection and `F` a smooth unit random field with an 8 px correlation length,
//!   so erosion removes thin parts where the field is negative. The mask never leaves the box window.
//! - **Duplicates.** With probability 0.01 a detected object gets a second box: the first one with
//!   each edge shifted by N(0, (0.08 · s)²), a score of U(0.5, 0.9) × the first's, its own mask. NMS
//!   would remove it.
//! - **False positives on clutter.** Each [`ClutterView`] yields a false positive with probability
//!   0.08 (pole), 0.05 (tree) as `Pedestrian`, 0.03 (bush), 0.01 (wall, building) as `Car`. Its box is
//!   sized like the hallucinated object at the clutter's distance with the focal length 721.5 px
//!   (1.7 m × 0.4 aspect for a pedestrian, 1.5 m × 2.0 aspect for a car, at most 1.1 × the clutter's
//!   box height + 2 px), bottom on the clutter's bottom, centred at a uniform position across the
//!   clutter's box, every edge jittered by 10 % of the size. Score: `sigmoid(N(−1.5, 0.8²))` (median
//!   0.18). Boxes under 8 px tall after clipping are dropped.
//! - **Random false positives.** A Poisson number with mean 0.3 per frame: `Car` (60 %, aspect 1.6),
//!   `Pedestrian` (30 %, aspect 0.4) or `Cyclist` (10 %, aspect 0.8), height log-uniform in 15–150 px,
//!   centre uniform across the image, bottom uniform in the lower 60 % of the image; score as for
//!   clutter false positives.
//! - False-positive masks are the ellipse inscribed in the box, degraded like true masks.
//!
//! The output is sorted by descending score (ties keep the generation order: labels in line order,
//! then clutter, then random false positives).
//!
//! # Files
//!
//! [`crate::dataset::write_frame`] writes the output into `training/detection_2` with
//! [`detection::write_detections`] and [`detection::MaskFormat::Png`]: `<id>.txt` (one KITTI result
//! line per detection, in the order of [`detect`]'s output, descending score) and `<id>.png` (the
//! masks as a 16-bit instance map, pixel = line index + 1; where masks overlap the higher-scored
//! detection keeps the pixel). The [`detection`] crate documents the formats and reads them back
//! ([`detection::read_detections`], [`detection::FileDetector`]). [`Detection`] and [`Mask`] are that
//! crate's types, re-exported here; every simulated detection has a mask.

pub use detection::{Detection, Mask};

use crate::random_field::smooth_field;
use crate::scene::ObjectClass;
use detection::PixelWindow;
use geom::Box2d;
use kitti::image::InstanceMap;
use kitti::{Object, ObjectType};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// The visible 2D box of one unlabelled clutter object (pole, tree, bush, wall, building part).
#[derive(Clone, Debug, PartialEq)]
pub struct ClutterView {
    /// What it is; labelled classes (car, van, pedestrian, cyclist) never cause clutter false positives.
    pub class: ObjectClass,
    /// Visible box, px, inclusive pixel extents.
    pub bbox: Box2d,
    /// Distance from the camera, m.
    pub distance_m: f64,
}

/// The ground truth of one frame, as the detector "sees" it.
#[derive(Clone, Copy, Debug)]
pub struct DetectorTruth<'a> {
    /// Ground-truth visible instance map: pixel = label line index + 1, 0 = none.
    pub instance: &'a InstanceMap,
    /// The frame's label_2 lines (DontCare lines included; they are never detected as objects).
    pub labels: &'a [Object],
    /// Visible fraction (0–1, occlusion only) of each label line; a missing entry counts as 1.
    pub visible_fraction: &'a [f64],
    /// Visible 2D boxes (inclusive pixel extents) of unlabelled clutter: poles, trees, bushes, walls,
    /// building parts.
    pub clutter: &'a [ClutterView],
}

/// Parameters of the simulated detector. [`Default`] gives the numbers of the module documentation
/// (a detector of roughly Mask R-CNN quality on KITTI-like images); a partial serde config keeps the
/// defaults of the fields it omits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectorModel {
    /// Miss probability of an unoccluded object at least `miss_easy_height_px` tall (default 0.02).
    pub miss_floor_prob: f64,
    /// Box height from which on size no longer lowers the miss probability, px (default 100).
    pub miss_easy_height_px: f64,
    /// Miss logit added per unit of `ln(miss_easy_height_px / h)` for smaller boxes (default 2.8:
    /// 50 % at 25 px).
    pub miss_logit_per_log_height: f64,
    /// Miss logit added per unit of occlusion `1 − v` (default 4.9: 50 % at 80 % occlusion).
    pub miss_logit_per_occlusion: f64,
    /// Objects with fewer visible pixels are never detected (default 10).
    pub min_visible_px: usize,
    /// Probability that a `Van` is reported as `Car` (default 0.6).
    pub van_as_car_prob: f64,
    /// Probability that a `Cyclist` is reported as `Pedestrian` (default 0.05).
    pub cyclist_as_pedestrian_prob: f64,
    /// σ of each edge's jitter as a fraction of the box width (left/right) or height (top/bottom)
    /// for an unoccluded object (default 0.04).
    pub box_jitter_frac: f64,
    /// Relative growth of that σ per unit of occlusion `1 − v` (default 1.0: doubled when fully
    /// occluded).
    pub box_jitter_occlusion_gain: f64,
    /// σ floor of the edge jitter, px, added in quadrature (default 1.0).
    pub box_jitter_floor_px: f64,
    /// Score logit intercept (default −4.0).
    pub score_logit_bias: f64,
    /// Score logit per unit of IoU between the reported and the true visible box (default 5.0).
    pub score_logit_per_iou: f64,
    /// Score logit per unit of visible fraction (default 1.5).
    pub score_logit_per_visible: f64,
    /// Score logit subtracted per unit of `ln(miss_easy_height_px / h)` for smaller boxes (default 0.8).
    pub score_logit_per_log_height: f64,
    /// σ of the score logit noise (default 0.5).
    pub score_logit_noise_sigma: f64,
    /// Cells per side of the mask head (default 28, Mask R-CNN's).
    pub mask_resolution: usize,
    /// σ of the smooth mask-boundary offset field, px (default 1.0).
    pub mask_boundary_sigma_px: f64,
    /// σ of the per-detection mask-boundary offset (global dilation or erosion), px (default 0.5).
    pub mask_boundary_bias_sigma_px: f64,
    /// Largest boundary offset, px (default 2).
    pub mask_boundary_max_px: u8,
    /// Correlation length of the boundary offset field, px (default 8).
    pub mask_boundary_cell_px: f64,
    /// Probability that a detected object gets a duplicate box (default 0.01).
    pub duplicate_prob: f64,
    /// σ of a duplicate's edge shift as a fraction of the box size (default 0.08).
    pub duplicate_shift_frac: f64,
    /// Mean number of random false positives per frame, Poisson (default 0.3).
    pub random_fp_per_frame: f64,
    /// False-positive probability per visible pole (default 0.08).
    pub clutter_fp_prob_pole: f64,
    /// False-positive probability per visible tree (default 0.05).
    pub clutter_fp_prob_tree: f64,
    /// False-positive probability per visible bush (default 0.03).
    pub clutter_fp_prob_bush: f64,
    /// False-positive probability per visible wall (default 0.01).
    pub clutter_fp_prob_wall: f64,
    /// False-positive probability per visible building part (default 0.01).
    pub clutter_fp_prob_building: f64,
    /// Mean of false positives' score logit (default −1.5: median score 0.18).
    pub fp_score_logit_mean: f64,
    /// σ of false positives' score logit (default 0.8).
    pub fp_score_logit_sigma: f64,
    /// Focal length used to size clutter false positives from their distance, px (default 721.5,
    /// KITTI's).
    pub focal_px: f64,
    /// False positives less tall than this after clipping are dropped, px (default 8).
    pub min_box_height_px: f64,
}

impl Default for DetectorModel {
    fn default() -> Self {
        Self {
            miss_floor_prob: 0.02,
            miss_easy_height_px: 100.0,
            miss_logit_per_log_height: 2.8,
            miss_logit_per_occlusion: 4.9,
            min_visible_px: 10,
            van_as_car_prob: 0.6,
            cyclist_as_pedestrian_prob: 0.05,
            box_jitter_frac: 0.04,
            box_jitter_occlusion_gain: 1.0,
            box_jitter_floor_px: 1.0,
            score_logit_bias: -4.0,
            score_logit_per_iou: 5.0,
            score_logit_per_visible: 1.5,
            score_logit_per_log_height: 0.8,
            score_logit_noise_sigma: 0.5,
            mask_resolution: 28,
            mask_boundary_sigma_px: 1.0,
            mask_boundary_bias_sigma_px: 0.5,
            mask_boundary_max_px: 2,
            mask_boundary_cell_px: 8.0,
            duplicate_prob: 0.01,
            duplicate_shift_frac: 0.08,
            random_fp_per_frame: 0.3,
            clutter_fp_prob_pole: 0.08,
            clutter_fp_prob_tree: 0.05,
            clutter_fp_prob_bush: 0.03,
            clutter_fp_prob_wall: 0.01,
            clutter_fp_prob_building: 0.01,
            fp_score_logit_mean: -1.5,
            fp_score_logit_sigma: 0.8,
            focal_px: 721.5,
            min_box_height_px: 8.0,
        }
    }
}

impl DetectorModel {
    /// Probability of missing an object whose label box is `height_px` tall and whose visible
    /// fraction is `visible_fraction`.
    pub fn miss_probability(&self, height_px: f64, visible_fraction: f64) -> f64 {
        let p0 = self.miss_floor_prob.clamp(1e-9, 1.0 - 1e-9);
        let logit = (p0 / (1.0 - p0)).ln()
            + self.miss_logit_per_log_height * self.smallness(height_px)
            + self.miss_logit_per_occlusion * (1.0 - visible_fraction.clamp(0.0, 1.0));
        sigmoid(logit)
    }

    /// `max(0, ln(miss_easy_height_px / h))`: how much smaller than "easy" a box is.
    fn smallness(&self, height_px: f64) -> f64 {
        (self.miss_easy_height_px / height_px.max(1.0)).ln().max(0.0)
    }

    fn clutter_fp(&self, class: ObjectClass) -> Option<(f64, ObjectType)> {
        match class {
            ObjectClass::Pole => Some((self.clutter_fp_prob_pole, ObjectType::Pedestrian)),
            ObjectClass::Tree => Some((self.clutter_fp_prob_tree, ObjectType::Pedestrian)),
            ObjectClass::Bush => Some((self.clutter_fp_prob_bush, ObjectType::Car)),
            ObjectClass::Wall => Some((self.clutter_fp_prob_wall, ObjectType::Car)),
            ObjectClass::Building => Some((self.clutter_fp_prob_building, ObjectType::Car)),
            ObjectClass::Car | ObjectClass::Van | ObjectClass::Pedestrian | ObjectClass::Cyclist => None,
        }
    }
}

/// Runs the simulated detector on one frame's ground truth. Deterministic in `seed`; the output is
/// sorted by descending score. See the module documentation for the error model.
pub fn detect(model: &DetectorModel, truth: &DetectorTruth, seed: u64) -> Vec<Detection> {
    let mut rng = StdRng::seed_from_u64(seed);
    let map = truth.instance;
    let (width, height) = (map.width, map.height);
    let extents = instance_extents(map, truth.labels.len());
    let mut dets = Vec::new();

    for (index, label) in truth.labels.iter().enumerate() {
        let Some(true_kind) = target_kind(&label.kind) else {
            continue;
        };
        let Some(Some(extent)) = extents.get(index + 1) else {
            continue;
        };
        if extent.count < model.min_visible_px {
            continue;
        }
        let id = (index + 1) as u16;
        let visible = truth
            .visible_fraction
            .get(index)
            .copied()
            .filter(|v| v.is_finite())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        let true_box = extent.bbox();
        let label_height = label.bbox.height();
        let height_px = if label_height.is_finite() && label_height > 0.0 {
            label_height
        } else {
            true_box.height()
        };
        if rng.random::<f64>() < model.miss_probability(height_px, visible) {
            continue;
        }
        let kind = match true_kind {
            ObjectType::Van if rng.random::<f64>() < model.van_as_car_prob => ObjectType::Car,
            ObjectType::Cyclist if rng.random::<f64>() < model.cyclist_as_pedestrian_prob => {
                ObjectType::Pedestrian
            }
            k => k,
        };
        let frac = model.box_jitter_frac * (1.0 + model.box_jitter_occlusion_gain * (1.0 - visible));
        let sigma = |size: f64| ((frac * size).powi(2) + model.box_jitter_floor_px.powi(2)).sqrt();
        let (sigma_x, sigma_y) = (sigma(true_box.width()), sigma(true_box.height()));
        let Some(bbox) = jitter_box(&mut rng, &true_box, sigma_x, sigma_y, width, height) else {
            continue;
        };
        let logit = model.score_logit_bias
            + model.score_logit_per_iou * bbox.iou(&true_box)
            + model.score_logit_per_visible * visible
            - model.score_logit_per_log_height * model.smallness(height_px)
            + model.score_logit_noise_sigma * normal(&mut rng);
        let score = round_score(sigmoid(logit));
        let inside = |x: u32, y: u32| map.get(x, y) == id;
        let mask = noisy_mask(model, &mut rng, &bbox, width, height, inside);
        let duplicate = rng.random::<f64>() < model.duplicate_prob;
        dets.push(Detection {
            kind: kind.clone(),
            bbox,
            score,
            mask: Some(mask),
        });
        if duplicate {
            let (sx, sy) = (
                model.duplicate_shift_frac * bbox.width(),
                model.duplicate_shift_frac * bbox.height(),
            );
            if let Some(dup_box) = jitter_box(&mut rng, &bbox, sx, sy, width, height) {
                let dup_score = round_score(score * rng.random_range(0.5..0.9));
                let mask = noisy_mask(model, &mut rng, &dup_box, width, height, inside);
                dets.push(Detection {
                    kind,
                    bbox: dup_box,
                    score: dup_score,
                    mask: Some(mask),
                });
            }
        }
    }

    for clutter in truth.clutter {
        let Some((prob, kind)) = model.clutter_fp(clutter.class) else {
            continue;
        };
        if rng.random::<f64>() >= prob || clutter.bbox.height().is_nan() || clutter.bbox.height() <= 0.0 {
            continue;
        }
        let (object_height_m, aspect) = match kind {
            ObjectType::Pedestrian => (1.7, 0.4),
            _ => (1.5, 2.0),
        };
        let h = (model.focal_px * object_height_m / clutter.distance_m.max(1.0))
            .min(1.1 * clutter.bbox.height() + 2.0);
        let w = aspect * h;
        let cx = clutter.bbox.left + rng.random::<f64>() * clutter.bbox.width().max(0.0);
        let bottom = clutter.bbox.bottom;
        let nominal = Box2d::new(cx - 0.5 * w, bottom - h, cx + 0.5 * w, bottom);
        push_false_positive(model, &mut rng, &mut dets, kind, &nominal, width, height);
    }

    for _ in 0..poisson(&mut rng, model.random_fp_per_frame) {
        let (kind, aspect) = match rng.random::<f64>() {
            u if u < 0.6 => (ObjectType::Car, 1.6),
            u if u < 0.9 => (ObjectType::Pedestrian, 0.4),
            _ => (ObjectType::Cyclist, 0.8),
        };
        let h = (15.0f64.ln() + rng.random::<f64>() * (150.0f64 / 15.0).ln()).exp();
        let w = aspect * h;
        let cx = rng.random::<f64>() * f64::from(width);
        let bottom = f64::from(height) * (0.4 + 0.6 * rng.random::<f64>());
        let nominal = Box2d::new(cx - 0.5 * w, bottom - h, cx + 0.5 * w, bottom);
        push_false_positive(model, &mut rng, &mut dets, kind, &nominal, width, height);
    }

    // Stable: equal scores keep the generation order.
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    dets
}

/// Jitters `nominal` by 10 % of its size per edge, scores it like a false positive, gives it an
/// elliptic mask and appends it, unless it ends up less than `min_box_height_px` tall.
fn push_false_positive(
    model: &DetectorModel,
    rng: &mut StdRng,
    dets: &mut Vec<Detection>,
    kind: ObjectType,
    nominal: &Box2d,
    width: u32,
    height: u32,
) {
    let (sx, sy) = (0.1 * nominal.width(), 0.1 * nominal.height());
    let Some(bbox) = jitter_box(rng, nominal, sx, sy, width, height) else {
        return;
    };
    if bbox.height() < model.min_box_height_px {
        return;
    }
    let score = round_score(sigmoid(
        model.fp_score_logit_mean + model.fp_score_logit_sigma * normal(rng),
    ));
    let (cx, cy) = (
        0.5 * (bbox.left + bbox.right + 1.0),
        0.5 * (bbox.top + bbox.bottom + 1.0),
    );
    let (rx, ry) = (0.5 * (bbox.width() + 1.0), 0.5 * (bbox.height() + 1.0));
    let inside = |x: u32, y: u32| {
        let u = (f64::from(x) + 0.5 - cx) / rx;
        let v = (f64::from(y) + 0.5 - cy) / ry;
        u * u + v * v <= 1.0
    };
    let mask = noisy_mask(model, rng, &bbox, width, height, inside);
    dets.push(Detection {
        kind,
        bbox,
        score,
        mask: Some(mask),
    });
}

/// The reported class of a label type; `None` for types the detector does not look for.
fn target_kind(kind: &ObjectType) -> Option<ObjectType> {
    detection::is_detected_type(kind).then(|| kind.clone())
}

/// Moves each edge of `b` by Gaussian noise (σ `sigma_x` for left/right, `sigma_y` for top/bottom),
/// keeps the box at least 1 px wide and tall, clips it to the image and rounds it to 0.01 px. `None`
/// when the box ends up outside the image.
fn jitter_box(
    rng: &mut StdRng,
    b: &Box2d,
    sigma_x: f64,
    sigma_y: f64,
    width: u32,
    height: u32,
) -> Option<Box2d> {
    let mut left = b.left + sigma_x * normal(rng);
    let mut right = b.right + sigma_x * normal(rng);
    let mut top = b.top + sigma_y * normal(rng);
    let mut bottom = b.bottom + sigma_y * normal(rng);
    if right - left < 1.0 {
        let c = 0.5 * (left + right);
        (left, right) = (c - 0.5, c + 0.5);
    }
    if bottom - top < 1.0 {
        let c = 0.5 * (top + bottom);
        (top, bottom) = (c - 0.5, c + 0.5);
    }
    let (w, h) = (f64::from(width), f64::from(height));
    if width == 0 || height == 0 || right < 0.0 || bottom < 0.0 || left > w - 1.0 || top > h - 1.0 {
        return None;
    }
    let clipped = Box2d::new(left, top, right, bottom).clipped(w, h);
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let out = Box2d::new(
        round(clipped.left),
        round(clipped.top),
        round(clipped.right),
        round(clipped.bottom),
    );
    (out.width() > 0.0 && out.height() > 0.0).then_some(out)
}

/// Bounding extent and pixel count of one instance id.
#[derive(Clone, Copy, Debug)]
struct Extent {
    min_x: u32,
    min_y: u32,
    max_x: u32,
    max_y: u32,
    count: usize,
}

impl Extent {
    /// The visible box, inclusive pixel extents.
    fn bbox(&self) -> Box2d {
        Box2d::new(
            f64::from(self.min_x),
            f64::from(self.min_y),
            f64::from(self.max_x),
            f64::from(self.max_y),
        )
    }
}

/// Extents of ids `0..=max_id` in one pass (index = id; ids above `max_id` are ignored).
fn instance_extents(map: &InstanceMap, max_id: usize) -> Vec<Option<Extent>> {
    let mut out: Vec<Option<Extent>> = vec![None; max_id + 1];
    let width = map.width.max(1) as usize;
    for (i, &id) in map.ids.iter().enumerate() {
        let Some(slot) = out.get_mut(id as usize) else {
            continue;
        };
        let (x, y) = ((i % width) as u32, (i / width) as u32);
        match slot {
            Some(e) => {
                e.min_x = e.min_x.min(x);
                e.max_x = e.max_x.max(x);
                e.min_y = e.min_y.min(y);
                e.max_y = e.max_y.max(y);
                e.count += 1;
            }
            None => {
                *slot = Some(Extent {
                    min_x: x,
                    min_y: y,
                    max_x: x,
                    max_y: y,
                    count: 1,
                });
            }
        }
    }
    out
}

/// The mask head: the pixels `inside` within the pixel window of `bbox`, resampled through the head's
/// resolution and with a randomly moved boundary.
fn noisy_mask(
    model: &DetectorModel,
    rng: &mut StdRng,
    bbox: &Box2d,
    width: u32,
    height: u32,
    inside: impl Fn(u32, u32) -> bool,
) -> Mask {
    let Some(window) = PixelWindow::of_box(bbox, width, height) else {
        return Mask::empty();
    };
    let mut mask = Mask::from_fn(window, inside);
    let (w, h) = (window.width as usize, window.height as usize);
    mask.bits = resample_through_head(&mask.bits, w, h, model.mask_resolution.max(1));
    perturb_boundary(model, rng, &mut mask.bits, w, h);
    mask
}

/// Averages the mask over at most `resolution` × `resolution` cells and interpolates it back
/// (bilinear, threshold 0.5), like a mask head's fixed-size output pasted into the box.
fn resample_through_head(bits: &[bool], w: usize, h: usize, resolution: usize) -> Vec<bool> {
    let (rw, rh) = (resolution.min(w), resolution.min(h));
    if rw == w && rh == h {
        return bits.to_vec();
    }
    let mut sum = vec![0.0f32; rw * rh];
    let mut count = vec![0u32; rw * rh];
    for y in 0..h {
        let cy = y * rh / h;
        for x in 0..w {
            let c = cy * rw + x * rw / w;
            sum[c] += f32::from(u8::from(bits[y * w + x]));
            count[c] += 1;
        }
    }
    let occupancy: Vec<f32> = sum
        .iter()
        .zip(&count)
        .map(|(&s, &n)| if n > 0 { s / n as f32 } else { 0.0 })
        .collect();
    let axis = |n: usize, cells: usize| -> Vec<(usize, usize, f32)> {
        (0..n)
            .map(|p| {
                let u = ((p as f32 + 0.5) * cells as f32 / n as f32 - 0.5).clamp(0.0, (cells - 1) as f32);
                let i0 = u.floor() as usize;
                (i0, (i0 + 1).min(cells - 1), u - i0 as f32)
            })
            .collect()
    };
    let cols = axis(w, rw);
    let rows = axis(h, rh);
    let mut out = vec![false; w * h];
    for (y, &(j0, j1, ty)) in rows.iter().enumerate() {
        for (x, &(i0, i1, tx)) in cols.iter().enumerate() {
            let top = (1.0 - tx) * occupancy[j0 * rw + i0] + tx * occupancy[j0 * rw + i1];
            let bottom = (1.0 - tx) * occupancy[j1 * rw + i0] + tx * occupancy[j1 * rw + i1];
            out[y * w + x] = (1.0 - ty) * top + ty * bottom >= 0.5;
        }
    }
    out
}

/// Moves the mask boundary by a smooth random offset (positive dilates, negative erodes), at most
/// `mask_boundary_max_px`: an inside pixel survives when its distance to the outside exceeds the
/// erosion there; an outside pixel joins when its distance to the inside is within the dilation.
fn perturb_boundary(model: &DetectorModel, rng: &mut StdRng, bits: &mut [bool], w: usize, h: usize) {
    if w == 0 || h == 0 {
        return;
    }
    let max = i32::from(model.mask_boundary_max_px);
    let cap = model.mask_boundary_max_px.saturating_add(1);
    let field = smooth_field(rng, w, h, model.mask_boundary_cell_px);
    let bias = model.mask_boundary_bias_sigma_px * normal(rng);
    let dist_in = chessboard_distance(bits, w, h, false, cap);
    let dist_out = chessboard_distance(bits, w, h, true, cap);
    for (i, b) in bits.iter_mut().enumerate() {
        let offset = (bias + model.mask_boundary_sigma_px * f64::from(field[i]))
            .round()
            .clamp(-f64::from(max), f64::from(max)) as i32;
        *b = if *b {
            i32::from(dist_in[i]) > -offset
        } else {
            i32::from(dist_out[i]) <= offset
        };
    }
}

/// For every pixel, the chessboard distance (capped at `cap`) to the nearest pixel whose flag equals
/// `target`; 0 on such pixels. Pixels outside the window do not count. Two-pass chamfer transform.
fn chessboard_distance(bits: &[bool], w: usize, h: usize, target: bool, cap: u8) -> Vec<u8> {
    let mut d: Vec<u8> = bits.iter().map(|&b| if b == target { 0 } else { cap }).collect();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if d[i] == 0 {
                continue;
            }
            let mut m = d[i];
            if x > 0 {
                m = m.min(d[i - 1].saturating_add(1));
            }
            if y > 0 {
                let up = i - w;
                m = m.min(d[up].saturating_add(1));
                if x > 0 {
                    m = m.min(d[up - 1].saturating_add(1));
                }
                if x + 1 < w {
                    m = m.min(d[up + 1].saturating_add(1));
                }
            }
            d[i] = m;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = y * w + x;
            if d[i] == 0 {
                continue;
            }
            let mut m = d[i];
            if x + 1 < w {
                m = m.min(d[i + 1].saturating_add(1));
            }
            if y + 1 < h {
                let down = i + w;
                m = m.min(d[down].saturating_add(1));
                if x + 1 < w {
                    m = m.min(d[down + 1].saturating_add(1));
                }
                if x > 0 {
                    m = m.min(d[down - 1].saturating_add(1));
                }
            }
            d[i] = m;
        }
    }
    d
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Rounds to 1e-4 (the result file's precision) and keeps the score strictly inside (0, 1).
fn round_score(score: f64) -> f64 {
    (score.clamp(1e-4, 1.0 - 1e-4) * 1e4).round() / 1e4
}

fn normal(rng: &mut StdRng) -> f64 {
    rng.sample(rand_distr::StandardNormal)
}

/// A Poisson sample (Knuth's product of uniforms; fine for the small means used here).
fn poisson(rng: &mut StdRng, mean: f64) -> usize {
    if mean.is_nan() || mean <= 0.0 {
        return 0;
    }
    let limit = (-mean).exp();
    let mut k = 0;
    let mut p: f64 = rng.random();
    while p > limit && k < 10_000 {
        k += 1;
        p *= rng.random::<f64>();
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use geom::{Box3d, Size3};
    use nalgebra::Point3;

    const W: u32 = 600;
    const H: u32 = 300;

    /// One synthetic object: an ellipse or rectangle, optionally with its left part hidden.
    #[derive(Clone, Copy)]
    struct Shape {
        kind_index: usize,
        cx: f64,
        cy: f64,
        rx: f64,
        ry: f64,
        rect: bool,
        /// Fraction of the object's columns (from the left) hidden by an occluder.
        hidden: f64,
    }

    const KINDS: [ObjectType; 8] = [
        ObjectType::Car,
        ObjectType::Van,
        ObjectType::Pedestrian,
        ObjectType::Cyclist,
        ObjectType::DontCare,
        ObjectType::Truck,
        ObjectType::Misc,
        ObjectType::Tram,
    ];

    fn shape(cx: f64, cy: f64, rx: f64, ry: f64) -> Shape {
        Shape {
            kind_index: 0,
            cx,
            cy,
            rx,
            ry,
            rect: false,
            hidden: 0.0,
        }
    }

    /// Paints the shapes (later ones on top) and returns the instance map, label lines and visible
    /// fractions.
    fn frame(shapes: &[Shape]) -> (InstanceMap, Vec<Object>, Vec<f64>) {
        let mut map = InstanceMap::new(W, H);
        let mut full = vec![0usize; shapes.len()];
        let mut labels = Vec::new();
        for (i, s) in shapes.iter().enumerate() {
            let hidden_right_of = s.cx - s.rx + 2.0 * s.rx * s.hidden;
            for y in 0..H {
                for x in 0..W {
                    let (u, v) = (
                        (f64::from(x) + 0.5 - s.cx) / s.rx,
                        (f64::from(y) + 0.5 - s.cy) / s.ry,
                    );
                    let inside = if s.rect {
                        u.abs() <= 1.0 && v.abs() <= 1.0
                    } else {
                        u * u + v * v <= 1.0
                    };
                    if inside {
                        full[i] += 1;
                        let p = &mut map.ids[(y * W + x) as usize];
                        *p = if f64::from(x) + 0.5 < hidden_right_of {
                            0
                        } else {
                            (i + 1) as u16
                        };
                    }
                }
            }
            let bbox = Box2d::new(s.cx - s.rx, s.cy - s.ry, s.cx + s.rx - 1.0, s.cy + s.ry - 1.0)
                .clipped(f64::from(W), f64::from(H));
            labels.push(Object {
                kind: KINDS[s.kind_index].clone(),
                truncated: 0.0,
                occluded: 0,
                alpha_rad: 0.0,
                bbox,
                box3d: Box3d::new(Point3::new(0.0, 1.6, 20.0), Size3::new(1.5, 1.6, 3.9), 0.0),
                score: None,
            });
        }
        let visible = (0..shapes.len())
            .map(|i| {
                let seen = map.ids.iter().filter(|&&id| usize::from(id) == i + 1).count();
                seen as f64 / full[i].max(1) as f64
            })
            .collect();
        (map, labels, visible)
    }

    fn run(
        model: &DetectorModel,
        shapes: &[Shape],
        clutter: &[ClutterView],
        seed: u64,
    ) -> (InstanceMap, Vec<Detection>) {
        let (map, labels, visible) = frame(shapes);
        let dets = detect(
            model,
            &DetectorTruth {
                instance: &map,
                labels: &labels,
                visible_fraction: &visible,
                clutter,
            },
            seed,
        );
        (map, dets)
    }

    /// The detection best overlapping the visible box of label `index` (IoU > 0.5), if any.
    fn matched<'d>(map: &InstanceMap, dets: &'d [Detection], index: usize) -> Option<(&'d Detection, f64)> {
        let truth = instance_extents(map, index + 1)[index + 1]?.bbox();
        dets.iter()
            .map(|d| (d, d.bbox.iou(&truth)))
            .filter(|&(_, iou)| iou > 0.5)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn no_fp() -> DetectorModel {
        DetectorModel {
            random_fp_per_frame: 0.0,
            duplicate_prob: 0.0,
            ..DetectorModel::default()
        }
    }

    fn pearson(pairs: &[(f64, f64)]) -> f64 {
        let n = pairs.len() as f64;
        let (ma, mb) = (
            pairs.iter().map(|p| p.0).sum::<f64>() / n,
            pairs.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let cov: f64 = pairs.iter().map(|p| (p.0 - ma) * (p.1 - mb)).sum();
        let va: f64 = pairs.iter().map(|p| (p.0 - ma).powi(2)).sum();
        let vb: f64 = pairs.iter().map(|p| (p.1 - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    }

    #[test]
    fn deterministic_sorted_and_seed_dependent() {
        let model = DetectorModel::default();
        let mut shapes = vec![shape(100.0, 150.0, 60.0, 40.0), shape(300.0, 160.0, 15.0, 35.0)];
        shapes[1].kind_index = 2;
        let clutter = [ClutterView {
            class: ObjectClass::Pole,
            bbox: Box2d::new(450.0, 50.0, 455.0, 250.0),
            distance_m: 12.0,
        }];
        let (_, a) = run(&model, &shapes, &clutter, 11);
        let (_, b) = run(&model, &shapes, &clutter, 11);
        assert_eq!(a, b);
        assert!(!a.is_empty());
        assert!(a.windows(2).all(|p| p[0].score >= p[1].score));
        let differs = (12..20).any(|seed| run(&model, &shapes, &clutter, seed).1 != a);
        assert!(differs);
        for d in &a {
            assert!(d.score > 0.0 && d.score < 1.0);
            assert!(d.bbox.left >= 0.0 && d.bbox.right <= f64::from(W - 1));
            assert!(d.bbox.top >= 0.0 && d.bbox.bottom <= f64::from(H - 1));
        }
    }

    #[test]
    fn misses_grow_with_occlusion_and_smallness() {
        let model = no_fp();
        let miss_rate = |s: Shape| {
            let trials = 400;
            let missed = (0..trials)
                .filter(|&seed| {
                    let (map, dets) = run(&model, &[s], &[], seed);
                    matched(&map, &dets, 0).is_none()
                })
                .count();
            missed as f64 / trials as f64
        };
        let big = miss_rate(shape(300.0, 150.0, 90.0, 60.0));
        let small = miss_rate(shape(300.0, 150.0, 18.0, 12.5));
        let mut hidden = shape(300.0, 150.0, 90.0, 60.0);
        hidden.hidden = 0.75;
        let occluded = miss_rate(hidden);
        assert!(big < 0.06, "big unoccluded miss rate {big}");
        assert!((0.3..0.7).contains(&small), "25 px miss rate {small}");
        assert!(occluded > 0.3, "heavily occluded miss rate {occluded}");
        assert!((model.miss_probability(120.0, 1.0) - 0.02).abs() < 1e-9);
        assert!((model.miss_probability(25.0, 1.0) - 0.5).abs() < 0.01);
        assert!((model.miss_probability(120.0, 0.2) - 0.5).abs() < 0.01);
    }

    #[test]
    fn box_jitter_is_about_four_percent() {
        let model = no_fp();
        let mut s = shape(300.0, 150.0, 100.0, 50.0);
        s.rect = true;
        let (mut horizontal, mut vertical) = (Vec::new(), Vec::new());
        for seed in 0..300 {
            let (map, dets) = run(&model, &[s], &[], seed);
            let truth = instance_extents(&map, 1)[1].map(|e| e.bbox()).unwrap();
            if let Some((d, _)) = matched(&map, &dets, 0) {
                horizontal.push((d.bbox.left - truth.left) / truth.width());
                horizontal.push((d.bbox.right - truth.right) / truth.width());
                vertical.push((d.bbox.top - truth.top) / truth.height());
                vertical.push((d.bbox.bottom - truth.bottom) / truth.height());
            }
        }
        for errors in [horizontal, vertical] {
            let n = errors.len() as f64;
            let mean = errors.iter().sum::<f64>() / n;
            let sd = (errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / n).sqrt();
            assert!(mean.abs() < 0.01, "mean edge error {mean}");
            assert!((0.03..0.05).contains(&sd), "σ of the edge error {sd}");
        }
    }

    #[test]
    fn masks_stay_in_their_boxes_and_match_the_truth() {
        let model = DetectorModel::default();
        let shapes = [shape(150.0, 150.0, 80.0, 50.0), shape(420.0, 140.0, 70.0, 60.0)];
        let mut ious = Vec::new();
        for seed in 0..100 {
            let (map, dets) = run(&model, &shapes, &[], seed);
            for d in &dets {
                let window = PixelWindow::of_box(&d.bbox, W, H).unwrap();
                let mask = d.mask.as_ref().expect("every simulated detection has a mask");
                assert_eq!(mask.window(), window);
                assert_eq!(mask.bits.len(), (window.width * window.height) as usize);
                for (x, y) in mask.pixels() {
                    assert!(f64::from(x) >= d.bbox.left.floor() && f64::from(x) <= d.bbox.right.ceil());
                    assert!(f64::from(y) >= d.bbox.top.floor() && f64::from(y) <= d.bbox.bottom.ceil());
                }
            }
            for index in 0..shapes.len() {
                if let Some((d, _)) = matched(&map, &dets, index) {
                    let mask = d.mask.as_ref().unwrap();
                    ious.push(mask.iou(&Mask::from_instance(&map, (index + 1) as u16)));
                }
            }
        }
        let mean = ious.iter().sum::<f64>() / ious.len() as f64;
        assert!(ious.len() > 180);
        assert!(mean > 0.8, "mean mask IoU {mean}");
        // Not perfect either: the boundary is noisy.
        assert!(mean < 0.98, "mean mask IoU {mean}");
    }

    #[test]
    fn thin_parts_are_lost() {
        // A large box whose mask is a solid block with a 2 px wide, 80 px long antenna.
        let model = DetectorModel {
            mask_boundary_sigma_px: 0.0,
            mask_boundary_bias_sigma_px: 0.0,
            ..DetectorModel::default()
        };
        let bits: Vec<bool> = (0..200 * 200)
            .map(|i| {
                let (x, y) = (i % 200, i / 200);
                (y >= 100) || (99..101).contains(&x) && y >= 20
            })
            .collect();
        let out = resample_through_head(&bits, 200, 200, model.mask_resolution);
        let antenna = (20..90)
            .filter(|&y| out[y * 200 + 99] || out[y * 200 + 100])
            .count();
        assert!(antenna < 10, "{antenna} antenna rows kept");
        assert!(out[150 * 200 + 100], "the block survives");
    }

    #[test]
    fn dont_care_and_other_types_are_never_detected() {
        let model = no_fp();
        let mut shapes = Vec::new();
        for (k, kind_index) in [4usize, 5, 6, 7].into_iter().enumerate() {
            let mut s = shape(80.0 + 140.0 * k as f64, 150.0, 60.0, 60.0);
            s.kind_index = kind_index;
            shapes.push(s);
        }
        for seed in 0..50 {
            let (_, dets) = run(&model, &shapes, &[], seed);
            assert!(dets.is_empty(), "seed {seed}: {dets:?}");
        }
    }

    #[test]
    fn scores_follow_box_quality() {
        let model = DetectorModel::default();
        let mut pairs = Vec::new();
        let mut tp_scores = Vec::new();
        for seed in 0..600u64 {
            let size = 12.0 + (seed % 7) as f64 * 10.0;
            let mut s = shape(300.0, 150.0, 1.4 * size, size);
            s.hidden = (seed % 5) as f64 * 0.15;
            s.kind_index = (seed % 4) as usize;
            let (map, dets) = run(&model, &[s], &[], seed);
            if let Some((d, iou)) = matched(&map, &dets, 0) {
                pairs.push((d.score, iou));
                tp_scores.push(d.score);
            }
        }
        let r = pearson(&pairs);
        assert!(
            r > 0.3,
            "score–IoU correlation {r} over {} detections",
            pairs.len()
        );
        let rank = |v: Vec<f64>| {
            let mut idx: Vec<usize> = (0..v.len()).collect();
            idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
            let mut ranks = vec![0.0; v.len()];
            for (rank, i) in idx.into_iter().enumerate() {
                ranks[i] = rank as f64;
            }
            ranks
        };
        let ranked: Vec<(f64, f64)> = rank(pairs.iter().map(|p| p.0).collect())
            .into_iter()
            .zip(rank(pairs.iter().map(|p| p.1).collect()))
            .collect();
        let rho = pearson(&ranked);
        assert!(rho > 0.3, "Spearman score–IoU correlation {rho}");

        // False positives (a frame of clutter only) score lower on average.
        let fp_model = DetectorModel {
            clutter_fp_prob_pole: 1.0,
            clutter_fp_prob_bush: 1.0,
            random_fp_per_frame: 2.0,
            ..DetectorModel::default()
        };
        let clutter = [
            ClutterView {
                class: ObjectClass::Pole,
                bbox: Box2d::new(100.0, 40.0, 104.0, 240.0),
                distance_m: 15.0,
            },
            ClutterView {
                class: ObjectClass::Bush,
                bbox: Box2d::new(300.0, 180.0, 420.0, 240.0),
                distance_m: 20.0,
            },
        ];
        let mut fp_scores = Vec::new();
        for seed in 0..200 {
            let (_, dets) = run(&fp_model, &[], &clutter, seed);
            fp_scores.extend(dets.iter().map(|d| d.score));
        }
        assert!(fp_scores.len() > 500);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (fp, tp) = (mean(&fp_scores), mean(&tp_scores));
        assert!(
            fp + 0.2 < tp,
            "mean false-positive score {fp}, true-positive {tp}"
        );
    }

    #[test]
    fn clutter_false_positives_sit_on_the_clutter() {
        let model = DetectorModel {
            random_fp_per_frame: 0.0,
            ..DetectorModel::default()
        };
        let pole = ClutterView {
            class: ObjectClass::Pole,
            bbox: Box2d::new(300.0, 40.0, 304.0, 240.0),
            distance_m: 15.0,
        };
        let clutter = vec![pole.clone(); 10];
        let mut count = 0;
        for seed in 0..100 {
            let (_, dets) = run(&model, &[], &clutter, seed);
            for d in &dets {
                assert_eq!(d.kind, ObjectType::Pedestrian);
                assert!(d.bbox.left < 320.0 && d.bbox.right > 285.0, "{:?}", d.bbox);
                assert!((d.bbox.bottom - 240.0).abs() < 30.0, "{:?}", d.bbox);
                assert!(d.score < 0.9);
            }
            count += dets.len();
        }
        // 1000 poles at 8 %.
        assert!((40..130).contains(&count), "{count} pole false positives");
    }

    #[test]
    fn output_reads_back_from_the_detection_files() {
        let model = no_fp();
        let mut shapes = vec![
            shape(100.0, 150.0, 60.0, 40.0),
            shape(300.0, 150.0, 50.0, 50.0),
            shape(480.0, 140.0, 20.0, 50.0),
        ];
        shapes[1].kind_index = 1;
        shapes[2].kind_index = 2;
        let (_, dets) = run(&model, &shapes, &[], 5);
        assert!(dets.len() >= 2);
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("detection_2");
        detection::write_detections(&folder, "000005", (W, H), &dets, detection::MaskFormat::Png).unwrap();
        let back = detection::read_detections(&folder, "000005", Some((W, H))).unwrap();
        assert_eq!(back, dets);
        let text = std::fs::read_to_string(folder.join("000005.txt")).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.contains(" -1.00 -1 -10.00 "), "{first}");
        assert!(first.contains(" -1000.00 -1000.00 -1000.00 -10.00 "), "{first}");
    }
}
