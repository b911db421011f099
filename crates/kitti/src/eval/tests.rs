//! Hand-built cases, one per rule of the devkit protocol.

use super::*;
use crate::label::Object;
use geom::{Box2d, Box3d, Size3};
use nalgebra::Point3;

/// A car at lateral position `x` (m) and depth 20 m with a 2D box of height `height_px`.
fn obj(kind: ObjectType, x: Real, height_px: Real) -> Object {
    let left = 100.0 + 40.0 * x;
    Object {
        kind,
        truncated: 0.0,
        occluded: 0,
        alpha_rad: 0.3,
        bbox: Box2d::new(left, 150.0, left + 60.0, 150.0 + height_px),
        box3d: Box3d::new(Point3::new(x, 1.7, 20.0), Size3::new(1.5, 1.6, 3.9), 0.3),
        score: None,
    }
}

fn det(kind: ObjectType, x: Real, height_px: Real, score: Real) -> Object {
    Object {
        score: Some(score),
        ..obj(kind, x, height_px)
    }
}

fn frame(gt: Vec<Object>, det: Vec<Object>) -> FrameLabels {
    FrameLabels {
        id: "t".into(),
        gt,
        det,
    }
}

/// `n` frames, each with one easy car detected perfectly: enough ground truth for a full curve.
fn perfect_frames(n: usize) -> Vec<FrameLabels> {
    (0..n)
        .map(|i| {
            frame(
                vec![obj(ObjectType::Car, 0.0, 50.0)],
                vec![det(ObjectType::Car, 0.0, 50.0, 0.5 + i as Real / 1000.0)],
            )
        })
        .collect()
}

/// Score just above the true positive of frame `f`: such a false positive ranks next to it, so at
/// every threshold there are as many false as true positives.
fn shadow_score(f: &FrameLabels) -> Real {
    f.det[0].score.unwrap() + 1e-4
}

fn car(report: &EvalReport) -> &ClassEval {
    report.class(Class::Car).expect("car evaluated")
}

#[test]
fn perfect_detections_give_full_ap_in_every_metric() {
    let report = evaluate(&perfect_frames(80)).unwrap();
    for set in OverlapSet::ALL {
        for (key, m) in car(&report).set(set).rows() {
            for ap in m.r11().into_iter().chain(m.r40()) {
                assert!((ap - 100.0).abs() < 1e-9, "{key}: {ap}");
            }
        }
    }
    assert_eq!(car(&report).n_gt, [80, 80, 80]);
    assert!(
        report.class(Class::Pedestrian).is_none(),
        "classes without ground truth are omitted"
    );
}

#[test]
fn a_single_perfect_detection_gives_the_devkit_values() {
    // One valid ground truth, one TP: precision 1 at the first recall position only.
    let report = evaluate(&perfect_frames(1)).unwrap();
    let m = &car(&report).strict.bbox;
    assert!((m.r11()[0] - 100.0 / 11.0).abs() < 1e-9);
    assert_eq!(m.r40()[0], 0.0);
}

#[test]
fn exactly_40_ground_truths_top_out_at_97_5_like_the_devkit() {
    // 40 TPs for 40 ground truths make 40 thresholds at indices 0…39; index 40 stays 0.
    let report = evaluate(&perfect_frames(40)).unwrap();
    assert!((car(&report).strict.bbox.r40()[0] - 97.5).abs() < 1e-9);
}

#[test]
fn r11_and_r40_differ_for_a_half_recall_curve() {
    // 80 cars, only the first 40 detected: precision 1 up to recall 0.5, then 0.
    let mut frames = perfect_frames(80);
    for f in &mut frames[40..] {
        f.det.clear();
    }
    let report = evaluate(&frames).unwrap();
    let m = &car(&report).strict.bev;
    // R40: positions 1…20 are 1 → 20/40. R11: positions 0,4,…,20 → 6/11.
    assert!((m.r40()[0] - 50.0).abs() < 1e-9, "{:?}", m.r40());
    assert!((m.r11()[0] - 600.0 / 11.0).abs() < 1e-9, "{:?}", m.r11());
}

#[test]
fn false_positives_lower_precision() {
    // 80 TPs with high scores and 80 FPs (far away) with low scores: the PR curve stays at 1 because
    // every FP ranks below every TP.
    let mut frames = perfect_frames(80);
    for f in &mut frames {
        f.det.push(det(ObjectType::Car, 8.0, 50.0, 0.1));
    }
    assert!((car(&evaluate(&frames).unwrap()).strict.bbox.r40()[0] - 100.0).abs() < 1e-9);
    // Each FP just above its frame's TP: precision 0.5 everywhere.
    for f in &mut frames {
        f.det[1].score = Some(shadow_score(f));
    }
    let ap = car(&evaluate(&frames).unwrap()).strict.bbox.r40()[0];
    assert!((ap - 50.0).abs() < 1e-9, "{ap}");
}

#[test]
fn dontcare_regions_swallow_detections() {
    // Each frame: a perfect car plus a high-scoring detection inside a DontCare region.
    let mut frames = perfect_frames(80);
    for f in &mut frames {
        let mut dc = obj(ObjectType::DontCare, 8.0, 60.0);
        dc.bbox = Box2d::new(
            dc.bbox.left - 5.0,
            dc.bbox.top - 5.0,
            dc.bbox.right + 5.0,
            dc.bbox.bottom + 5.0,
        );
        f.gt.push(dc);
        let score = shadow_score(f);
        f.det.push(det(ObjectType::Car, 8.0, 50.0, score));
    }
    let report = evaluate(&frames).unwrap();
    // 2D: swallowed, no FP. BEV/3D: the DontCare box is the one from the label (here a real one, so it
    // swallows too); in KITTI files its 3D fields are −1000, which swallows nothing.
    assert!((car(&report).strict.bbox.r40()[0] - 100.0).abs() < 1e-9);
    for f in &mut frames {
        let dc = f.gt.last_mut().unwrap();
        dc.box3d = Box3d::new(
            Point3::new(-1000.0, -1000.0, -1000.0),
            Size3::new(-1.0, -1.0, -1.0),
            -10.0,
        );
    }
    let report = evaluate(&frames).unwrap();
    assert!((car(&report).strict.bbox.r40()[0] - 100.0).abs() < 1e-9);
    assert!((car(&report).strict.bev.r40()[0] - 50.0).abs() < 1e-9);
}

#[test]
fn neighbour_class_ground_truth_is_neither_tp_nor_fn() {
    // 80 cars detected; 80 vans detected as cars. The van detections match ignored ground truth: no FP.
    let mut frames = perfect_frames(80);
    for f in &mut frames {
        f.gt.push(obj(ObjectType::Van, 6.0, 50.0));
        let score = shadow_score(f);
        f.det.push(det(ObjectType::Car, 6.0, 50.0, score));
    }
    let report = evaluate(&frames).unwrap();
    assert!((car(&report).strict.bbox.r40()[0] - 100.0).abs() < 1e-9);
    assert_eq!(car(&report).n_gt[0], 80);
    // A truck is no neighbour: the same detections are false positives.
    for f in &mut frames {
        f.gt[1].kind = ObjectType::Truck;
    }
    assert!((car(&evaluate(&frames).unwrap()).strict.bbox.r40()[0] - 50.0).abs() < 1e-9);
}

#[test]
fn minimum_height_rules_for_ground_truth_and_detections() {
    // Ground truth of height 30 px: not easy (≤ 40), moderate and hard (> 25).
    let frames: Vec<_> = (0..80)
        .map(|i| {
            frame(
                vec![obj(ObjectType::Car, 0.0, 30.0)],
                vec![det(ObjectType::Car, 0.0, 30.0, 0.5 + i as Real / 1000.0)],
            )
        })
        .collect();
    let report = evaluate(&frames).unwrap();
    assert_eq!(car(&report).n_gt, [0, 80, 80]);
    let ap = car(&report).strict.bbox.r40();
    assert_eq!(ap[0], 0.0);
    assert!((ap[1] - 100.0).abs() < 1e-9 && (ap[2] - 100.0).abs() < 1e-9);

    // Height exactly 25 px is not moderate (`<=`), 25.5 px is.
    let tall = |h: Real| vec![frame(vec![obj(ObjectType::Car, 0.0, h)], vec![])];
    assert_eq!(car(&evaluate(&tall(25.0)).unwrap()).n_gt[1], 0);
    assert_eq!(car(&evaluate(&tall(25.5)).unwrap()).n_gt[1], 1);

    // Detections below the minimum height (after truncation to an integer: 39.9 → 39) are ignored:
    // a small false positive costs nothing in easy but counts in moderate.
    let mut frames = perfect_frames(80);
    for f in &mut frames {
        let score = shadow_score(f);
        f.det.push(det(ObjectType::Car, 8.0, 39.9, score));
    }
    let ap = car(&evaluate(&frames).unwrap()).strict.bbox.r40();
    assert!((ap[0] - 100.0).abs() < 1e-9, "{ap:?}");
    assert!((ap[1] - 50.0).abs() < 1e-9, "{ap:?}");
}

#[test]
fn occlusion_and_truncation_limits() {
    let with = |occluded: i32, truncated: Real| {
        let mut g = obj(ObjectType::Car, 0.0, 50.0);
        g.occluded = occluded;
        g.truncated = truncated;
        car(&evaluate(&[frame(vec![g], vec![])]).unwrap()).n_gt
    };
    assert_eq!(with(0, 0.0), [1, 1, 1]);
    assert_eq!(with(1, 0.0), [0, 1, 1]);
    assert_eq!(with(2, 0.0), [0, 0, 1]);
    assert_eq!(with(3, 0.0), [0, 0, 0]);
    assert_eq!(with(0, 0.15), [1, 1, 1]);
    assert_eq!(with(0, 0.2), [0, 1, 1]);
    assert_eq!(with(0, 0.4), [0, 0, 1]);
    assert_eq!(with(0, 0.6), [0, 0, 0]);
}

#[test]
fn overlap_thresholds_separate_strict_and_loose() {
    // Detections shifted 0.4 m along the 1.6 m width axis (rect (sin ry, cos ry) in x–z):
    // BEV IoU 1.2 / 2.0 = 0.6, so strict misses and loose hits.
    let frames: Vec<_> = (0..80)
        .map(|i| {
            let mut d = det(ObjectType::Car, 0.0, 50.0, 0.5 + i as Real / 1000.0);
            d.box3d.bottom_center_rect.x += 0.4 * 0.3_f64.sin();
            d.box3d.bottom_center_rect.z += 0.4 * 0.3_f64.cos();
            frame(vec![obj(ObjectType::Car, 0.0, 50.0)], vec![d])
        })
        .collect();
    let iou = frames[0].gt[0].box3d.bev_iou(&frames[0].det[0].box3d);
    assert!((iou - 0.6).abs() < 1e-12, "{iou}");
    let report = evaluate(&frames).unwrap();
    assert_eq!(car(&report).strict.bev.r40()[0], 0.0);
    assert!((car(&report).loose.bev.r40()[0] - 100.0).abs() < 1e-9);
}

#[test]
fn aos_weights_precision_by_orientation() {
    // Orientation off by π/2: similarity (1 + cos)/2 = 0.5.
    let mut frames = perfect_frames(80);
    for f in &mut frames {
        f.det[0].alpha_rad += std::f64::consts::FRAC_PI_2;
    }
    let report = evaluate(&frames).unwrap();
    let aos = car(&report).strict.aos.as_ref().unwrap();
    assert!((aos.r40()[0] - 50.0).abs() < 1e-9, "{:?}", aos.r40());
    // One detection without orientation (alpha −10) switches AOS off.
    frames[3].det[0].alpha_rad = -10.0;
    assert!(car(&evaluate(&frames).unwrap()).strict.aos.is_none());
}

#[test]
fn a_small_detection_of_another_class_absorbs_a_ground_truth() {
    // The devkit quirk: a pedestrian detection of height 20 px is "ignored" in the car evaluation and
    // may match a car, which then counts neither as TP nor as FN.
    let frames: Vec<_> = (0..80)
        .map(|i| {
            let mut g = obj(ObjectType::Car, 0.0, 30.0);
            g.bbox.bottom = g.bbox.top + 30.0;
            let mut d = det(ObjectType::Pedestrian, 0.0, 20.0, 0.9);
            d.bbox = g.bbox;
            d.bbox.bottom = d.bbox.top + 24.9;
            let good = det(ObjectType::Car, 0.0, 30.0, 0.5 + i as Real / 1000.0);
            if i % 2 == 0 {
                frame(vec![g], vec![d])
            } else {
                frame(vec![g], vec![good])
            }
        })
        .collect();
    let report = evaluate(&frames).unwrap();
    // Moderate: 80 valid cars; 40 detected as cars, 40 absorbed by the small pedestrian detection
    // (bbox IoU 0.83 > 0.7), which only removes them from the FN count of the precision pass.
    let m = &car(&report).strict.bbox;
    assert_eq!(car(&report).n_gt[1], 80);
    assert!((m.r40()[1] - 50.0).abs() < 1e-9, "{:?}", m.r40());
}

#[test]
fn detections_need_scores() {
    let mut frames = perfect_frames(2);
    frames[1].det[0].score = None;
    assert!(matches!(
        evaluate(&frames),
        Err(EvalError::MissingScore { index: 0, .. })
    ));
}

#[test]
fn json_has_the_documented_shape() {
    let report = evaluate(&perfect_frames(80)).unwrap();
    let json = report.to_json();
    for set in ["strict", "loose"] {
        for metric in ["bbox", "bev", "3d", "aos"] {
            for ap in ["R40", "R11"] {
                let v = &json["Car"][set][metric][ap];
                assert_eq!(v.as_array().map(Vec::len), Some(3), "{set}/{metric}/{ap}: {v}");
            }
        }
    }
    assert!(json.get("Pedestrian").is_none());
    assert!(report.table().contains("Car"));
}
