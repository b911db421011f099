//! COCO run-length encoding: known examples (hand-computed, and strings pycocotools 2.0.11 wrote for
//! masks built here), round trips in both count forms, clipping to a window.

use detection::{Mask, PixelWindow, Rle, RleEncoding};

/// The whole `width` × `height` image as a window.
fn image(width: u32, height: u32) -> PixelWindow {
    PixelWindow {
        x0: 0,
        y0: 0,
        width,
        height,
    }
}

fn pixels(mask: &Mask) -> Vec<(u32, u32)> {
    let mut p: Vec<(u32, u32)> = mask.pixels().collect();
    p.sort_unstable();
    p
}

#[test]
fn compressed_decoder_on_the_hand_computed_example() {
    // 10 rows × 11 columns, column-major runs [100, 5, 3, 2]: 100 zeros (columns 0–9), then in
    // column 10: rows 0–4 set, 5–7 clear, 8–9 set. Characters: 100 = 4 + 3·32 → 'T' (48 + 4 + 32
    // for "more follows"), '3'; 5 → '5'; 3 → '3'; the fourth run is stored as 2 − 5 = −3 → 5-bit
    // two's complement 29 → 'M'. pycocotools.mask.encode gives the same "T353M".
    let rle = Rle::from_compressed(10, 11, "T353M").unwrap();
    assert_eq!(rle.counts(), &[100, 5, 3, 2]);
    assert_eq!(rle.area_px(), 7);
    let mask = rle.to_mask(image(11, 10));
    let expected: Vec<(u32, u32)> = [0, 1, 2, 3, 4, 8, 9].iter().map(|&y| (10, y)).collect();
    assert_eq!(pixels(&mask), expected);
    // And back.
    assert_eq!(Rle::from_mask(&mask, 11, 10).to_compressed(), "T353M");
    assert_eq!(Rle::from_mask(&mask, 11, 10), rle);
}

#[test]
fn agrees_with_pycocotools_on_a_kitti_sized_mask() {
    // pycocotools.mask.encode of a 375 × 1242 mask: rows 100–179 of columns 400–559, rows 150–169 of
    // columns 600–602, and the two corner pixels (0, 0) and (1241, 374). Area 12,862.
    const COCO: &str = "01cbb4_2df]K00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000Zf>TNb[A000bkY7]O";
    let rle = Rle::from_compressed(375, 1242, COCO).unwrap();
    assert_eq!(rle.area_px(), 12_862);
    let inside = |x: u32, y: u32| {
        ((400..560).contains(&x) && (100..180).contains(&y))
            || ((600..603).contains(&x) && (150..170).contains(&y))
            || (x, y) == (0, 0)
            || (x, y) == (1241, 374)
    };
    let whole = rle.to_mask(image(1242, 375));
    let expected = Mask::from_fn(image(1242, 375), inside);
    assert_eq!(whole, expected);
    assert_eq!(Rle::from_mask(&expected, 1242, 375).to_compressed(), COCO);
}

#[test]
fn agrees_with_pycocotools_on_a_patterned_mask() {
    // pycocotools.mask.encode of a 20 × 30 (height × width) mask set where 5 ≤ x < 25, 2 ≤ y < 17
    // and (7x + 13y) mod 11 < 3: many short runs, negative differences. Area 83.
    const COCO: &str = "Y31410O10O00150KO0150KO0010O10O60J10O60J150KO0150KO0150KO60J10O60J10O10O00150KO0150KO0010O10O60J10O60J150KO0150KO01S3";
    let inside = |x: u32, y: u32| (5..25).contains(&x) && (2..17).contains(&y) && (x * 7 + y * 13) % 11 < 3;
    let mask = Mask::from_fn(image(30, 20), inside);
    let rle = Rle::from_mask(&mask, 30, 20);
    assert_eq!(rle.area_px(), 83);
    assert_eq!(rle.to_compressed(), COCO);
    assert_eq!(Rle::from_compressed(20, 30, COCO).unwrap(), rle);
}

#[test]
fn round_trips_in_both_count_forms() {
    let (w, h) = (37, 23);
    let window = PixelWindow {
        x0: 4,
        y0: 3,
        width: 20,
        height: 15,
    };
    let masks = [
        Mask::from_fn(window, |x, y| (x + 2 * y) % 5 < 2),
        Mask::from_fn(window, |_, _| true),
        Mask::from_fn(window, |_, _| false),
        // Touches the image's first pixel (a leading run of 0 zeros) and last column.
        Mask::from_fn(image(w, h), |x, y| x == 0 && y == 0 || x == w - 1),
    ];
    for mask in &masks {
        let rle = Rle::from_mask(mask, w, h);
        assert_eq!(
            rle.counts().iter().map(|&c| u64::from(c)).sum::<u64>(),
            u64::from(w * h)
        );
        assert_eq!(rle.area_px(), mask.area_px() as u64);
        for encoding in [RleEncoding::Uncompressed, RleEncoding::Compressed] {
            let json = rle.to_json(encoding).to_string();
            let entry: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(entry["size"], serde_json::json!([h, w]));
            let back = match &entry["counts"] {
                serde_json::Value::String(s) => Rle::from_compressed(h, w, s).unwrap(),
                serde_json::Value::Array(list) => {
                    let counts = list.iter().map(|c| c.as_u64().unwrap() as u32).collect();
                    Rle::new(h, w, counts).unwrap()
                }
                other => panic!("{other}"),
            };
            assert_eq!(back, rle, "{encoding:?}");
            assert_eq!(back.to_mask(mask.window()), *mask, "{encoding:?}");
        }
    }
    // The first pixel set: the runs start with a run of zero 0s.
    assert_eq!(Rle::from_mask(&masks[3], w, h).counts()[..2], [0, 1]);
}

#[test]
fn pixels_outside_the_image_or_window_are_dropped() {
    // A mask whose window reaches past the image's right and bottom edges.
    let mask = Mask::from_fn(
        PixelWindow {
            x0: 8,
            y0: 5,
            width: 6,
            height: 6,
        },
        |_, _| true,
    );
    let rle = Rle::from_mask(&mask, 10, 8);
    assert_eq!(rle.area_px(), 2 * 3);
    // Decoding into a window smaller than the mask clips it.
    let small = PixelWindow {
        x0: 9,
        y0: 6,
        width: 3,
        height: 1,
    };
    let clipped = rle.to_mask(small);
    assert_eq!(clipped.window(), small);
    assert_eq!(clipped.bits, vec![true, false, false]);
    // An empty window (a box that misses the image) gives an empty mask.
    let empty = rle.to_mask(PixelWindow {
        x0: 0,
        y0: 0,
        width: 0,
        height: 0,
    });
    assert_eq!(empty, Mask::empty());
}

#[test]
fn run_lengths_must_cover_the_image() {
    assert!(Rle::new(2, 3, vec![1, 5]).is_ok());
    assert_eq!(
        Rle::new(2, 3, vec![1, 4]),
        Err(detection::RleError::CountSum {
            sum: 5,
            height: 2,
            width: 3,
            expected: 6
        })
    );
    assert!(Rle::from_compressed(10, 11, "T353").is_err());
}
