//! Writing and reading detection files: round trips in every mask format, and a typed error naming
//! the file (and line) for every kind of bad input.

use crate::{det, mask_in_box};
use detection::{
    DetectionError, Detector, FileDetector, Mask, MaskFormat, RleEncoding, RleError, read_detections,
    write_detections,
};
use kitti::{KittiError, ObjectType};
use std::path::Path;

const SIZE: (u32, u32) = (64, 40);
const LINE: &str =
    "Car -1.00 -1 -10.00 10.00 5.00 20.00 15.00 -1.00 -1.00 -1.00 -1000.00 -1000.00 -1000.00 -10.00";

/// The car's box in [`sample`], px.
const CAR_BOX: (f64, f64, f64, f64) = (10.25, 5.5, 30.75, 25.0);

/// Three detections, descending score: a car with a disc mask, a pedestrian with a rectangular
/// mask, a box-only cyclist. The masks do not overlap.
fn sample() -> Vec<detection::Detection> {
    let car_mask = mask_in_box(CAR_BOX, SIZE, |x, y| {
        (f64::from(x) - 20.0).powi(2) + (f64::from(y) - 15.0).powi(2) < 64.0
    });
    let ped_box = (40.0, 2.0, 47.33, 30.0);
    let ped_mask = mask_in_box(ped_box, SIZE, |x, y| {
        (41..46).contains(&x) && (4..29).contains(&y)
    });
    vec![
        det(ObjectType::Car, CAR_BOX, 0.9312, Some(car_mask)),
        det(ObjectType::Pedestrian, ped_box, 0.5, Some(ped_mask)),
        det(ObjectType::Cyclist, (50.0, 30.0, 63.0, 39.0), 0.25, None),
    ]
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn png_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let dets = sample();
    write_detections(dir.path(), "000001", SIZE, &dets, MaskFormat::Png).unwrap();
    assert!(dir.path().join("000001.png").is_file());
    assert!(!dir.path().join("000001.json").exists());
    let back = read_detections(dir.path(), "000001", Some(SIZE)).unwrap();
    assert_eq!(back[..2], dets[..2]);
    // A PNG cannot tell "no mask" from an empty one: the box-only line reads back as an empty mask
    // over its box's window.
    let third = back[2].mask.as_ref().unwrap();
    assert_eq!(third.area_px(), 0);
    assert_eq!((third.x0, third.y0, third.width, third.height), (50, 30, 14, 10));
    assert_eq!(
        detection::Detection {
            mask: None,
            ..back[2].clone()
        },
        dets[2]
    );
    // Without an image size the PNG's own size is used.
    assert_eq!(read_detections(dir.path(), "000001", None).unwrap(), back);

    // No detections: empty files that read back as nothing.
    write_detections(dir.path(), "000002", SIZE, &[], MaskFormat::Png).unwrap();
    assert!(
        read_detections(dir.path(), "000002", Some(SIZE))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn png_overlaps_go_to_the_higher_score() {
    let full = |x0: u32, score: f64| {
        let b = (f64::from(x0), 0.0, f64::from(x0 + 9), 9.0);
        det(
            ObjectType::Car,
            b,
            score,
            Some(mask_in_box(b, (20, 12), |_, _| true)),
        )
    };
    // Line 0 has the lower score: it loses the 5 overlapping columns.
    let dets = [full(0, 0.4), full(5, 0.8)];
    let dir = tempfile::tempdir().unwrap();
    write_detections(dir.path(), "a", (20, 12), &dets, MaskFormat::Png).unwrap();
    let back = read_detections(dir.path(), "a", Some((20, 12))).unwrap();
    assert_eq!(back[1], dets[1]);
    let first = back[0].mask.as_ref().unwrap();
    assert_eq!(first.area_px(), 50);
    assert!(first.contains(4, 3) && !first.contains(5, 3));
}

#[test]
fn json_round_trip_in_both_count_forms() {
    let dir = tempfile::tempdir().unwrap();
    let mut dets = sample();
    // Run-length masks are independent of one another: an overlap survives.
    let overlap = mask_in_box(CAR_BOX, SIZE, |x, y| x >= 25 && y >= 20);
    dets.push(det(ObjectType::Car, CAR_BOX, 0.125, Some(overlap)));
    for (encoding, marker) in [
        (RleEncoding::Uncompressed, "\"counts\":["),
        (RleEncoding::Compressed, "\"counts\":\""),
    ] {
        write_detections(dir.path(), "000003", SIZE, &dets, MaskFormat::Rle(encoding)).unwrap();
        let text = std::fs::read_to_string(dir.path().join("000003.json")).unwrap();
        assert!(text.contains(marker), "{encoding:?}: {text}");
        assert!(text.contains("\"size\":[40,64]"), "{text}");
        assert_eq!(
            text.lines().filter(|l| l.trim_end_matches(',') == "null").count(),
            1
        );
        assert_eq!(
            read_detections(dir.path(), "000003", Some(SIZE)).unwrap(),
            dets,
            "{encoding:?}"
        );
        assert!(!dir.path().join("000003.png").exists());
    }
    // Rewriting as PNG replaces the JSON, box-only removes every mask file.
    write_detections(dir.path(), "000003", SIZE, &dets, MaskFormat::Png).unwrap();
    assert!(!dir.path().join("000003.json").exists());
    write_detections(dir.path(), "000003", SIZE, &dets, MaskFormat::BoxOnly).unwrap();
    assert!(!dir.path().join("000003.png").exists());
    let back = read_detections(dir.path(), "000003", Some(SIZE)).unwrap();
    assert!(back.iter().all(|d| d.mask.is_none()));
    assert_eq!(back.len(), dets.len());
    assert_eq!(back[0].bbox, dets[0].bbox);
}

#[test]
fn json_masks_are_clipped_to_their_box() {
    let dir = tempfile::tempdir().unwrap();
    // A 4 × 5 image (height 4, width 5), box columns 1–2 and rows 1–2; the mask is the whole image.
    write(
        dir.path(),
        "a.txt",
        &format!(
            "{}\n",
            LINE.replace("10.00 5.00 20.00 15.00", "1.00 1.00 2.00 2.00") + " 0.5"
        ),
    );
    write(dir.path(), "a.json", r#"[{"size": [4, 5], "counts": [0, 20]}]"#);
    let back = read_detections(dir.path(), "a", Some((5, 4))).unwrap();
    let mask = back[0].mask.as_ref().unwrap();
    assert_eq!((mask.x0, mask.y0, mask.width, mask.height), (1, 1, 2, 2));
    assert_eq!(mask.bits, vec![true; 4]);
    // The box straddles the image's edge: its window is clipped to the image.
    write(
        dir.path(),
        "b.txt",
        &format!(
            "{}\n",
            LINE.replace("10.00 5.00 20.00 15.00", "3.50 -2.00 9.00 1.00") + " 0.5"
        ),
    );
    write(dir.path(), "b.json", r#"[{"size": [4, 5], "counts": "0d0"}]"#);
    let back = read_detections(dir.path(), "b", None).unwrap();
    let mask = back[0].mask.as_ref().unwrap();
    assert_eq!((mask.x0, mask.y0, mask.width, mask.height), (3, 0, 2, 2));
    assert_eq!(mask.area_px(), 4);
}

#[test]
fn no_mask_file_means_no_masks() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", &format!("{LINE} 0.5\n\n{LINE} 0.25\n"));
    let back = read_detections(dir.path(), "a", Some(SIZE)).unwrap();
    assert_eq!(back.len(), 2);
    assert!(back.iter().all(|d| d.mask.is_none()));
    assert_eq!(back[1].score, 0.25);
    assert_eq!(back[0].kind, ObjectType::Car);
}

#[test]
fn a_missing_txt_is_a_missing_file_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_detections(dir.path(), "000007", None).unwrap_err();
    assert!(
        matches!(&err, DetectionError::MissingFile { path } if path.ends_with("000007.txt")),
        "{err}"
    );
    assert!(err.to_string().contains("000007.txt"), "{err}");
    // Even with a mask file present.
    write(dir.path(), "000007.json", "[]");
    assert!(matches!(
        read_detections(dir.path(), "000007", None),
        Err(DetectionError::MissingFile { .. })
    ));
}

#[test]
fn bad_lines_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = format!("{LINE} 0.5");

    write(d, "a.txt", &format!("{good}\nCar 1 2 3\n"));
    let err = read_detections(d, "a", None).unwrap_err();
    assert!(
        matches!(
            err,
            DetectionError::Kitti(KittiError::FieldCount {
                line: 2,
                found: 4,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("a.txt:2:"), "{err}");

    write(d, "a.txt", &format!("{good}\n\n{LINE} nan\n"));
    let err = read_detections(d, "a", None).unwrap_err();
    assert!(
        matches!(&err, DetectionError::Kitti(KittiError::NonFinite { line: 3, field, .. }) if field == "score"),
        "{err}"
    );
    assert!(err.to_string().contains("a.txt:3:"), "{err}");

    write(d, "a.txt", &format!("{}\n", good.replace("20.00", "inf")));
    let err = read_detections(d, "a", None).unwrap_err();
    assert!(
        matches!(&err, DetectionError::Kitti(KittiError::NonFinite { line: 1, field, .. }) if field == "bbox_right"),
        "{err}"
    );

    write(d, "a.txt", &format!("{good}\n{LINE}\n"));
    let err = read_detections(d, "a", None).unwrap_err();
    assert!(
        matches!(err, DetectionError::MissingScore { line: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("a.txt:2:"), "{err}");

    write(
        d,
        "a.txt",
        &format!("{}\n", good.replace("5.00 20.00 15.00", "5.00 20.00 4.00")),
    );
    let err = read_detections(d, "a", None).unwrap_err();
    assert!(
        matches!(err, DetectionError::InvertedBox { line: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("a.txt:1:"), "{err}");
}

#[test]
fn bad_pngs_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.txt", &format!("{LINE} 0.5\n"));
    let mut map = kitti::image::InstanceMap::new(SIZE.0, SIZE.1);
    // Id 2, but there is one line.
    map.ids[10 * 64 + 12] = 2;
    kitti::image::write_instance_png(&d.join("a.png"), &map).unwrap();
    let err = read_detections(d, "a", Some(SIZE)).unwrap_err();
    assert!(
        matches!(err, DetectionError::MaskIdOutOfRange { id: 2, lines: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("a.png"), "{err}");

    // Id 1 outside the box's window (columns 10–20, rows 5–15).
    map.ids[10 * 64 + 12] = 1;
    map.ids[30 * 64 + 40] = 1;
    kitti::image::write_instance_png(&d.join("a.png"), &map).unwrap();
    let err = read_detections(d, "a", Some(SIZE)).unwrap_err();
    assert!(
        matches!(
            err,
            DetectionError::MaskOutsideBox {
                id: 1,
                x: 40,
                y: 30,
                ..
            }
        ),
        "{err}"
    );

    // The right ids in a map of the wrong size.
    map.ids[30 * 64 + 40] = 0;
    kitti::image::write_instance_png(&d.join("a.png"), &map).unwrap();
    assert_eq!(
        read_detections(d, "a", Some(SIZE)).unwrap()[0]
            .mask
            .as_ref()
            .unwrap()
            .area_px(),
        1
    );
    let err = read_detections(d, "a", Some((1242, 375))).unwrap_err();
    assert!(
        matches!(
            err,
            DetectionError::MaskSize {
                width: 1242,
                height: 375,
                found_width: 64,
                found_height: 40,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("a.png"), "{err}");

    // Not a PNG at all.
    write(d, "a.png", "not a png");
    let err = read_detections(d, "a", None).unwrap_err();
    assert!(
        matches!(err, DetectionError::Kitti(KittiError::Image { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("a.png"), "{err}");
}

#[test]
fn both_mask_files_are_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_detections(d, "a", SIZE, &sample(), MaskFormat::Png).unwrap();
    write(d, "a.json", "[null, null, null]");
    let err = read_detections(d, "a", Some(SIZE)).unwrap_err();
    assert!(matches!(err, DetectionError::AmbiguousMasks { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("a.png") && message.contains("a.json"),
        "{message}"
    );
}

#[test]
fn bad_json_names_file_entry_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Line 1 blank: the detections are on lines 2 and 3.
    write(d, "a.txt", &format!("\n{LINE} 0.5\n{LINE} 0.4\n"));

    write(d, "a.json", "[null]");
    let err = read_detections(d, "a", None).unwrap_err();
    assert!(
        matches!(
            err,
            DetectionError::MaskCount {
                entries: 1,
                lines: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("a.json"), "{err}");

    write(d, "a.json", "[null, {\"size\": [40, 64]}]");
    let err = read_detections(d, "a", None).unwrap_err();
    assert!(matches!(err, DetectionError::Json { .. }), "{err}");
    assert!(err.to_string().contains("a.json"), "{err}");

    write(d, "a.json", "{\"size\": [40, 64], \"counts\": [2560]}");
    assert!(matches!(
        read_detections(d, "a", None),
        Err(DetectionError::Json { .. })
    ));

    write(d, "a.json", "[null, {\"size\": [40, 64], \"counts\": [5, 3]}]");
    let err = read_detections(d, "a", None).unwrap_err();
    assert!(
        matches!(
            err,
            DetectionError::Rle {
                entry: 1,
                line: 3,
                source: RleError::CountSum {
                    sum: 8,
                    expected: 2560,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("a.json"), "{err}");

    write(d, "a.json", "[null, {\"size\": [40, 64], \"counts\": \"0d 0\"}]");
    let err = read_detections(d, "a", None).unwrap_err();
    assert!(
        matches!(
            err,
            DetectionError::Rle {
                source: RleError::BadCharacter { character: ' ', .. },
                ..
            }
        ),
        "{err}"
    );

    // A valid encoding of another image size.
    let rle = detection::Rle::new(4, 5, vec![20]).unwrap();
    write(
        d,
        "a.json",
        &format!("[{}, null]", rle.to_json(RleEncoding::Compressed)),
    );
    assert!(read_detections(d, "a", None).is_ok());
    let err = read_detections(d, "a", Some(SIZE)).unwrap_err();
    assert!(
        matches!(
            err,
            DetectionError::MaskSize {
                found_width: 5,
                found_height: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("a.json"), "{err}");
}

#[test]
fn file_detector_reads_the_files_with_the_image_size() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("detection_2");
    let dets = sample();
    write_detections(
        &folder,
        "000001",
        SIZE,
        &dets[..2],
        MaskFormat::Rle(RleEncoding::Compressed),
    )
    .unwrap();
    let detector: Box<dyn Detector> = Box::new(FileDetector::new(&folder));
    assert_eq!(detector.name(), "detection_2");
    assert_eq!(detector.detect("000001", SIZE).unwrap(), dets[..2]);
    assert!(matches!(
        detector.detect("000001", (65, 40)),
        Err(DetectionError::MaskSize { .. })
    ));
    let err = detector.detect("000002", SIZE).unwrap_err();
    assert!(matches!(err, DetectionError::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("detection_2/000002.txt"), "{err}");

    fn shareable<T: Send + Sync + ?Sized>(_: &T) {}
    shareable(detector.as_ref());
    assert_eq!(FileDetector::new("/").name(), "files");
}

#[test]
fn too_many_detections_for_a_png() {
    let dir = tempfile::tempdir().unwrap();
    let one = det(ObjectType::Car, (1.0, 1.0, 2.0, 2.0), 0.5, None::<Mask>);
    let dets = vec![one; 65_536];
    let err = write_detections(dir.path(), "a", SIZE, &dets, MaskFormat::Png).unwrap_err();
    assert!(
        matches!(err, DetectionError::TooManyDetections { count: 65_536, .. }),
        "{err}"
    );
    assert!(!dir.path().join("a.txt").exists());
}
