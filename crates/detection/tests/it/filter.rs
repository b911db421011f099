//! The detection filter: classes, score and height thresholds, greedy per-class NMS, order, config.

use crate::det;
use detection::{Detection, DetectionFilter};
use kitti::ObjectType;

fn scores(dets: &[Detection]) -> Vec<f64> {
    dets.iter().map(|d| d.score).collect()
}

#[test]
fn defaults_keep_cars_and_suppress_their_duplicates() {
    let f = DetectionFilter::default();
    assert_eq!(f.classes, vec!["Car".to_owned()]);
    assert_eq!((f.min_score, f.min_height_px, f.nms_iou), (0.0, 0.0, Some(0.7)));
    let dets = vec![
        det(ObjectType::Pedestrian, (0.0, 0.0, 10.0, 30.0), 0.99, None),
        det(ObjectType::Car, (100.0, 100.0, 200.0, 150.0), 0.6, None),
        det(ObjectType::Van, (300.0, 100.0, 400.0, 150.0), 0.95, None),
        // IoU with the 0.6 car: 95 × 50 / (100 × 50) = 0.95 → suppressed by the higher score.
        det(ObjectType::Car, (105.0, 100.0, 200.0, 150.0), 0.8, None),
        det(ObjectType::Car, (500.0, 100.0, 560.0, 140.0), 0.7, None),
    ];
    let kept = f.apply(dets);
    assert_eq!(scores(&kept), vec![0.8, 0.7]);
    assert!(kept.iter().all(|d| d.kind == ObjectType::Car));
    assert_eq!(kept[0].bbox.left, 105.0);
}

#[test]
fn nms_is_per_class_and_uses_the_threshold() {
    let a = det(ObjectType::Car, (0.0, 0.0, 100.0, 100.0), 0.9, None);
    // IoU with `a`: 60 / 100 = 0.6.
    let b = det(ObjectType::Car, (0.0, 0.0, 60.0, 100.0), 0.8, None);
    // Same box as `a`, another class.
    let c = det(ObjectType::Pedestrian, (0.0, 0.0, 100.0, 100.0), 0.7, None);
    let all = DetectionFilter {
        classes: Vec::new(),
        ..DetectionFilter::default()
    };
    assert_eq!(
        scores(&all.apply(vec![c.clone(), b.clone(), a.clone()])),
        vec![0.9, 0.8, 0.7]
    );
    let strict = DetectionFilter {
        nms_iou: Some(0.5),
        ..all.clone()
    };
    assert_eq!(
        scores(&strict.apply(vec![c.clone(), b.clone(), a.clone()])),
        vec![0.9, 0.7]
    );
    // A suppressed box does not suppress others: `e` overlaps `b` (IoU 0.625) but `a` only by 0.42.
    let e = det(ObjectType::Car, (-20.0, 0.0, 50.0, 100.0), 0.75, None);
    assert_eq!(
        scores(&strict.apply(vec![e, b.clone(), a.clone()])),
        vec![0.9, 0.75]
    );
    // Identical boxes: IoU 1 is not above 1.0, so nms_iou = 1.0 keeps everything.
    let off = DetectionFilter {
        nms_iou: Some(1.0),
        ..all.clone()
    };
    assert_eq!(off.apply(vec![a.clone(), a.clone()]).len(), 2);
    let none = DetectionFilter { nms_iou: None, ..all };
    assert_eq!(none.apply(vec![a.clone(), a.clone(), b]).len(), 3);
}

#[test]
fn classes_score_and_height_thresholds() {
    let f = DetectionFilter {
        classes: vec!["car".into(), "CYCLIST".into()],
        min_score: 0.5,
        min_height_px: 25.0,
        nms_iou: None,
    };
    let dets = vec![
        det(ObjectType::Car, (0.0, 0.0, 50.0, 25.0), 0.5, None),
        det(ObjectType::Cyclist, (0.0, 0.0, 50.0, 40.0), 0.55, None),
        det(ObjectType::Car, (0.0, 0.0, 50.0, 24.99), 0.9, None),
        det(ObjectType::Car, (0.0, 0.0, 50.0, 40.0), 0.4999, None),
        det(ObjectType::Van, (0.0, 0.0, 50.0, 40.0), 0.9, None),
        det(ObjectType::Other("bus".into()), (0.0, 0.0, 50.0, 40.0), 0.9, None),
    ];
    let kept = f.apply(dets);
    assert_eq!(scores(&kept), vec![0.55, 0.5]);
    assert_eq!(kept[0].kind, ObjectType::Cyclist);
    // Any class name, not only the known ones.
    let bus = DetectionFilter {
        classes: vec!["Bus".into()],
        ..DetectionFilter::default()
    };
    let d = det(ObjectType::Other("bus".into()), (0.0, 0.0, 50.0, 40.0), 0.9, None);
    assert!(bus.accepts(&d));
}

#[test]
fn equal_scores_keep_their_order() {
    let f = DetectionFilter {
        nms_iou: None,
        ..DetectionFilter::default()
    };
    let dets: Vec<Detection> = (0..5)
        .map(|i| {
            let x = f64::from(i) * 100.0;
            det(
                ObjectType::Car,
                (x, 0.0, x + 50.0, 50.0),
                if i == 3 { 0.9 } else { 0.5 },
                None,
            )
        })
        .collect();
    let lefts: Vec<f64> = f.apply(dets).iter().map(|d| d.bbox.left).collect();
    assert_eq!(lefts, vec![300.0, 0.0, 100.0, 200.0, 400.0]);
}

#[test]
fn partial_configs_keep_the_defaults() {
    let f: DetectionFilter = toml::from_str("min_score = 0.3").unwrap();
    assert_eq!(
        f,
        DetectionFilter {
            min_score: 0.3,
            ..DetectionFilter::default()
        }
    );
    let f: DetectionFilter = toml::from_str("classes = [\"Car\", \"Van\"]\nnms_iou = 0.5").unwrap();
    assert_eq!((f.classes.len(), f.nms_iou), (2, Some(0.5)));
    let f: DetectionFilter = serde_json::from_str(r#"{"nms_iou": null}"#).unwrap();
    assert_eq!(f.nms_iou, None);
    assert_eq!(f.classes, vec!["Car".to_owned()]);
    assert!(toml::from_str::<DetectionFilter>("min_score = \"high\"").is_err());
}
