//! The devkit's `cleanData`, `computeStatistics`, `getThresholds` and `eval_class`, over overlap
//! matrices computed once per frame.

use super::report::Curve;
use super::{Class, Difficulty, FrameLabels, Metric, N_SAMPLE_PTS};
use crate::label::ObjectType;
use geom::{Box2d, Box3d, Real};

/// What the matcher needs of a ground-truth object.
struct Gt {
    kind: ObjectType,
    truncated: Real,
    occluded: i32,
    height_px: Real,
    alpha_rad: Real,
}

/// What the matcher needs of a detection.
struct Det {
    kind: ObjectType,
    /// `int32_t height = fabs(y1 - y2)`: truncated to an integer, as the devkit does.
    height_px: i32,
    score: Real,
    alpha_rad: Real,
}

/// One frame with its detection × ground-truth overlaps for each metric.
pub(super) struct PreparedFrame {
    gt: Vec<Gt>,
    det: Vec<Det>,
    /// Indices of DontCare ground truths.
    dc: Vec<usize>,
    /// `overlap[metric][d * n_gt + g]`: IoU (criterion −1) of detection `d` with ground truth `g`.
    overlap: [Vec<Real>; 3],
    /// `dc_overlap[metric][d * n_dc + k]`: intersection over the detection's own area/volume (criterion 0)
    /// with DontCare region `k`.
    dc_overlap: [Vec<Real>; 3],
}

/// Half the BEV diagonal: no two boxes whose centres are further apart than the sum can overlap.
fn bev_radius(b: &Box3d) -> Real {
    0.5 * b.size.length_m.hypot(b.size.width_m)
}

fn bev_may_overlap(a: &Box3d, b: &Box3d) -> bool {
    let (ca, cb) = (a.bottom_center_rect, b.bottom_center_rect);
    (ca.x - cb.x).hypot(ca.z - cb.z) <= bev_radius(a) + bev_radius(b)
}

/// The devkit's `groundBoxOverlap` and `box3DOverlap` at once, sharing one polygon clipping:
/// `(bev, 3d)` overlaps, criterion −1 (IoU) or 0 (`over_detection`: intersection over the detection's
/// own area or volume).
fn overlap_bev_3d(det: &Box3d, gt: &Box3d, over_detection: bool) -> (Real, Real) {
    if !bev_may_overlap(det, gt) {
        return (0.0, 0.0);
    }
    let inter_area = det.bev_intersection_area(gt);
    if inter_area == 0.0 {
        return (0.0, 0.0);
    }
    let inter_vol = inter_area * det.height_overlap_m(gt);
    let area = |b: &Box3d| geom::polygon::area(&b.bev_corners());
    let (det_area, det_vol) = (area(det), det.size.volume_m3());
    if over_detection {
        (inter_area / det_area, inter_vol / det_vol)
    } else {
        (
            inter_area / (det_area + area(gt) - inter_area),
            inter_vol / (det_vol + gt.size.volume_m3() - inter_vol),
        )
    }
}

fn overlap_2d(det: &Box2d, gt: &Box2d, over_detection: bool) -> Real {
    if over_detection {
        det.intersection_over_self(gt)
    } else {
        det.iou(gt)
    }
}

impl PreparedFrame {
    pub(super) fn new(frame: &FrameLabels) -> Self {
        let gt: Vec<Gt> = frame
            .gt
            .iter()
            .map(|o| Gt {
                kind: o.kind.clone(),
                truncated: o.truncated,
                occluded: o.occluded,
                height_px: o.bbox.bottom - o.bbox.top,
                alpha_rad: o.alpha_rad,
            })
            .collect();
        let det: Vec<Det> = frame
            .det
            .iter()
            .map(|o| Det {
                kind: o.kind.clone(),
                height_px: (o.bbox.top - o.bbox.bottom).abs() as i32,
                score: o.score.unwrap_or(Real::NEG_INFINITY),
                alpha_rad: o.alpha_rad,
            })
            .collect();
        let dc: Vec<usize> = gt
            .iter()
            .enumerate()
            .filter(|(_, g)| g.kind == ObjectType::DontCare)
            .map(|(i, _)| i)
            .collect();
        // Ground truths that are never matched (no evaluated or neighbour class) need no overlaps.
        let relevant_gt: Vec<bool> = gt
            .iter()
            .map(|g| {
                Class::ALL
                    .iter()
                    .any(|c| c.is(&g.kind) || c.is_neighbour(&g.kind))
            })
            .collect();

        let (n_gt, n_dc) = (gt.len(), dc.len());
        let mut overlap = [
            vec![0.0; det.len() * n_gt],
            vec![0.0; det.len() * n_gt],
            vec![0.0; det.len() * n_gt],
        ];
        let mut dc_overlap = [
            vec![0.0; det.len() * n_dc],
            vec![0.0; det.len() * n_dc],
            vec![0.0; det.len() * n_dc],
        ];
        for (d, det_obj) in frame.det.iter().enumerate() {
            for (g, gt_obj) in frame.gt.iter().enumerate() {
                if !relevant_gt[g] {
                    continue;
                }
                let i = d * n_gt + g;
                overlap[0][i] = overlap_2d(&det_obj.bbox, &gt_obj.bbox, false);
                (overlap[1][i], overlap[2][i]) = overlap_bev_3d(&det_obj.box3d, &gt_obj.box3d, false);
            }
            for (k, &g) in dc.iter().enumerate() {
                let gt_obj = &frame.gt[g];
                let i = d * n_dc + k;
                dc_overlap[0][i] = overlap_2d(&det_obj.bbox, &gt_obj.bbox, true);
                (dc_overlap[1][i], dc_overlap[2][i]) = overlap_bev_3d(&det_obj.box3d, &gt_obj.box3d, true);
            }
        }
        Self {
            gt,
            det,
            dc,
            overlap,
            dc_overlap,
        }
    }
}

/// `ignored_gt` / `ignored_det` states of the devkit: 0 valid, 1 ignored (may match, never counts),
/// −1 not of this class.
struct Cleaned {
    /// `(index, state)` of ground truths with state ≠ −1, in file order.
    gt: Vec<(usize, i8)>,
    /// `(index, state)` of detections with state ≠ −1, in file order.
    det: Vec<(usize, i8)>,
    n_gt: usize,
}

/// The devkit's `cleanData` for one frame.
fn clean(frame: &PreparedFrame, class: Class, difficulty: Difficulty) -> Cleaned {
    let mut gt = Vec::new();
    let mut n_gt = 0;
    for (i, g) in frame.gt.iter().enumerate() {
        let valid_class = if class.is(&g.kind) {
            1
        } else if class.is_neighbour(&g.kind) {
            0
        } else {
            -1
        };
        let ignore = g.occluded > difficulty.max_occlusion()
            || g.truncated > difficulty.max_truncation()
            || g.height_px <= difficulty.min_height_px();
        if valid_class == 1 && !ignore {
            gt.push((i, 0));
            n_gt += 1;
        } else if valid_class == 0 || (ignore && valid_class == 1) {
            gt.push((i, 1));
        }
    }
    let mut det = Vec::new();
    for (i, d) in frame.det.iter().enumerate() {
        // The height test comes first: a small detection of any class is "ignored", not "other class".
        if (d.height_px as Real) < difficulty.min_height_px() {
            det.push((i, 1));
        } else if class.is(&d.kind) {
            det.push((i, 0));
        }
    }
    Cleaned { gt, det, n_gt }
}

/// TP/FP/FN and orientation similarity of one frame at one score threshold.
#[derive(Clone, Copy, Default)]
struct Stat {
    tp: usize,
    fp: usize,
    fn_: usize,
    /// Sum of `(1 + cos Δα) / 2` over TPs; `None` when the frame has neither TP nor FP.
    similarity: Option<Real>,
}

const NO_DETECTION: Real = -10_000_000.0;

/// The devkit's `computeStatistics`. With `thresh = None` it runs the recall-threshold pass (matching
/// by highest score, pushing TP scores into `tp_scores`); otherwise the precision pass at `thresh`.
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the devkit's signature, one place"
)]
fn compute_statistics(
    frame: &PreparedFrame,
    cleaned: &Cleaned,
    metric: Metric,
    min_overlap: Real,
    thresh: Option<Real>,
    compute_aos: bool,
    assigned: &mut [bool],
    tp_scores: &mut Vec<Real>,
) -> Stat {
    let overlap = &frame.overlap[metric as usize];
    let n_gt = frame.gt.len();
    let compute_fp = thresh.is_some();
    let below = |d: usize| thresh.is_some_and(|t| frame.det[d].score < t);
    for &(d, _) in &cleaned.det {
        assigned[d] = false;
    }
    let mut stat = Stat::default();
    let mut similarity = 0.0;
    for &(g, gt_state) in &cleaned.gt {
        let mut det_idx: Option<(usize, i8)> = None;
        let mut valid_detection = NO_DETECTION;
        let mut max_iou = 0.0;
        let mut assigned_ignored_det = false;
        for &(d, det_state) in &cleaned.det {
            if assigned[d] || below(d) {
                continue;
            }
            let o = overlap[d * n_gt + g];
            if !compute_fp && o > min_overlap && frame.det[d].score > valid_detection {
                det_idx = Some((d, det_state));
                valid_detection = frame.det[d].score;
            } else if compute_fp && o > min_overlap && (o > max_iou || assigned_ignored_det) && det_state == 0
            {
                max_iou = o;
                det_idx = Some((d, det_state));
                valid_detection = 1.0;
                assigned_ignored_det = false;
            } else if compute_fp && o > min_overlap && valid_detection == NO_DETECTION && det_state == 1 {
                det_idx = Some((d, det_state));
                valid_detection = 1.0;
                assigned_ignored_det = true;
            }
        }
        match det_idx {
            None if gt_state == 0 => stat.fn_ += 1,
            None => {}
            Some((d, det_state)) if gt_state == 1 || det_state == 1 => assigned[d] = true,
            Some((d, _)) => {
                stat.tp += 1;
                tp_scores.push(frame.det[d].score);
                if compute_aos {
                    similarity += (1.0 + (frame.gt[g].alpha_rad - frame.det[d].alpha_rad).cos()) / 2.0;
                }
                assigned[d] = true;
            }
        }
    }
    if compute_fp {
        for &(d, det_state) in &cleaned.det {
            if !(assigned[d] || det_state == 1 || below(d)) {
                stat.fp += 1;
            }
        }
        let dc_overlap = &frame.dc_overlap[metric as usize];
        let n_dc = frame.dc.len();
        let mut n_stuff = 0;
        for k in 0..n_dc {
            for &(d, det_state) in &cleaned.det {
                if assigned[d] || det_state == 1 || below(d) {
                    continue;
                }
                if dc_overlap[d * n_dc + k] > min_overlap {
                    assigned[d] = true;
                    n_stuff += 1;
                }
            }
        }
        stat.fp -= n_stuff;
        if compute_aos && (stat.tp > 0 || stat.fp > 0) {
            stat.similarity = Some(similarity);
        }
    }
    stat
}

/// The devkit's `getThresholds`: scores giving (approximately) linearly spaced recall.
fn get_thresholds(scores: &mut [Real], n_gt: usize) -> Vec<Real> {
    scores.sort_by(|a, b| b.total_cmp(a));
    let n = n_gt as Real;
    let mut t = Vec::new();
    let mut current_recall = 0.0;
    for i in 0..scores.len() {
        let l_recall = (i + 1) as Real / n;
        let r_recall = if i < scores.len() - 1 {
            (i + 2) as Real / n
        } else {
            l_recall
        };
        if (r_recall - current_recall) < (current_recall - l_recall) && i < scores.len() - 1 {
            continue;
        }
        t.push(scores[i]);
        current_recall += 1.0 / (N_SAMPLE_PTS as Real - 1.0);
    }
    t
}

/// C++ `*std::max_element(first, last)`: the first greatest element by `<`, NaN-faithful.
fn max_element(v: &[Real]) -> Real {
    let mut best = v[0];
    for &x in &v[1..] {
        if best < x {
            best = x;
        }
    }
    best
}

/// Precision (and AOS) curves of one class, difficulty, metric and overlap threshold.
pub(super) struct ClassCurves {
    pub(super) n_gt: usize,
    pub(super) precision: Curve,
    pub(super) aos: Option<Curve>,
}

/// The devkit's `eval_class`.
pub(super) fn eval_class(
    frames: &[PreparedFrame],
    class: Class,
    difficulty: Difficulty,
    metric: Metric,
    min_overlap: Real,
    compute_aos: bool,
) -> ClassCurves {
    let cleaned: Vec<Cleaned> = frames.iter().map(|f| clean(f, class, difficulty)).collect();
    let n_gt: usize = cleaned.iter().map(|c| c.n_gt).sum();
    let max_det = frames.iter().map(|f| f.det.len()).max().unwrap_or(0);
    let mut assigned = vec![false; max_det];

    let mut scores = Vec::new();
    for (f, c) in frames.iter().zip(&cleaned) {
        compute_statistics(f, c, metric, min_overlap, None, false, &mut assigned, &mut scores);
    }
    let thresholds = get_thresholds(&mut scores, n_gt);
    let thresholds = &thresholds[..thresholds.len().min(N_SAMPLE_PTS)];

    let mut tp = vec![0usize; thresholds.len()];
    let mut fp = vec![0usize; thresholds.len()];
    let mut similarity = vec![0.0; thresholds.len()];
    let mut sink = Vec::new();
    for (f, c) in frames.iter().zip(&cleaned) {
        // Thresholds descend, so the detections passing them only grow; the statistics change only
        // when that count changes.
        let mut last: Option<(usize, Stat)> = None;
        for (t, &thresh) in thresholds.iter().enumerate() {
            let passing = c.det.iter().filter(|(d, _)| f.det[*d].score >= thresh).count();
            let stat = match last {
                Some((n, s)) if n == passing => s,
                _ => {
                    sink.clear();
                    compute_statistics(
                        f,
                        c,
                        metric,
                        min_overlap,
                        Some(thresh),
                        compute_aos,
                        &mut assigned,
                        &mut sink,
                    )
                }
            };
            last = Some((passing, stat));
            tp[t] += stat.tp;
            fp[t] += stat.fp;
            if let Some(s) = stat.similarity {
                similarity[t] += s;
            }
        }
    }

    let mut precision = [0.0; N_SAMPLE_PTS];
    let mut aos = [0.0; N_SAMPLE_PTS];
    for t in 0..thresholds.len() {
        precision[t] = tp[t] as Real / (tp[t] + fp[t]) as Real;
        aos[t] = similarity[t] / (tp[t] + fp[t]) as Real;
    }
    for t in 0..thresholds.len() {
        precision[t] = max_element(&precision[t..]);
        aos[t] = max_element(&aos[t..]);
    }
    ClassCurves {
        n_gt,
        precision: Curve { precision },
        aos: compute_aos.then_some(Curve { precision: aos }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_with_few_ground_truths_take_every_true_positive() {
        assert_eq!(get_thresholds(&mut [0.2, 0.9, 0.5], 3), vec![0.9, 0.5, 0.2]);
        assert!(get_thresholds(&mut [], 10).is_empty());
    }

    #[test]
    fn thresholds_sample_recall_in_fortieths() {
        // 80 ground truths, all detected: every other score is a threshold (recall steps of 1/40).
        let mut scores: Vec<Real> = (0..80).map(|i| 1.0 - i as Real / 100.0).collect();
        let t = get_thresholds(&mut scores, 80);
        assert_eq!(t.len(), 41);
        assert_eq!(t[0], 1.0);
        assert_eq!(*t.last().unwrap(), scores[79]);
    }

    #[test]
    fn max_element_follows_cpp_semantics() {
        assert_eq!(max_element(&[0.5, 0.7, 0.6]), 0.7);
        assert!(max_element(&[Real::NAN, 0.7]).is_nan());
        assert_eq!(max_element(&[0.7, Real::NAN]), 0.7);
    }
}
