//! Curriculum tests: verification, acceptance order and budget, the target crops rendered from a
//! label, and the settings file.
#![allow(clippy::unwrap_used, reason = "tests")]

use curriculum::CurriculumConfig;
use curriculum::verify::accept;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_settings_file_equals_the_defaults() {
    let text = std::fs::read_to_string(root().join("configs/curriculum.toml")).unwrap();
    let from_file: CurriculumConfig = toml::from_str(&text).unwrap();
    assert_eq!(from_file, CurriculumConfig::default());
}

#[test]
fn acceptance_takes_the_easiest_verified_within_the_budget() {
    let d = [Some(0.9), None, Some(0.1), Some(0.5), None, Some(0.3)];
    assert_eq!(accept(&d, 0.5), vec![2, 5]);
    assert_eq!(accept(&d, 1.0), vec![2, 5, 3, 0]);
    assert_eq!(accept(&d, 0.0), Vec::<usize>::new());
    // Rounded up: a quarter of four is one.
    assert_eq!(accept(&d, 0.25), vec![2]);
    let config = CurriculumConfig::default();
    assert_eq!(config.budget_of(1), 0.5);
    assert_eq!(config.budget_of(3), 1.0);
    assert_eq!(config.budget_of(7), 1.0);
}

#[test]
fn a_budget_outside_the_unit_interval_is_refused() {
    let config = CurriculumConfig {
        budget: vec![0.5, 1.5],
        ..CurriculumConfig::default()
    };
    assert!(config.validate().is_err());
}

fn labelled(score: f64) -> pipeline::LabelledObject {
    use geom::{Box2d, Box3d, Size3};
    use nalgebra::{Point3, Vector3};
    let box3d = Box3d::new(
        Point3::new(2.0, 1.7, 20.0),
        Size3 {
            height_m: 1.5,
            width_m: 1.7,
            length_m: 4.2,
        },
        0.3,
    );
    pipeline::LabelledObject {
        detection_index: 0,
        label: kitti::Object {
            kind: kitti::ObjectType::Car,
            truncated: 0.0,
            occluded: 0,
            alpha_rad: box3d.alpha_rad(),
            bbox: Box2d::new(600.0, 170.0, 700.0, 220.0),
            box3d,
            score: Some(score),
        },
        evidence: optim::confidence::Evidence {
            detection_score: 0.9,
            box_iou: 0.85,
            box_protrusion: 0.05,
            silhouette_iou: Some(0.8),
            lidar_points: 200,
            lidar_inliers: 195,
            lidar_rms_m: 0.04,
        },
        method: "sdf",
        surface_rect: Vec::new(),
        nocs: Vec::new(),
        state: Some(optim::ObjectState {
            yaw_rad: 0.3,
            translation_rect_m: Vector3::new(2.0, 0.9, 20.0),
            scale: 2.75,
            latent: vec![0.0; 8],
        }),
        seconds: 0.0,
    }
}

#[test]
fn verification_names_the_first_failed_check() {
    use curriculum::verify::{Rejection, verify};
    let config = curriculum::config::VerifyConfig::default();
    assert_eq!(verify(&labelled(0.8), &config), Ok(()));
    assert_eq!(verify(&labelled(0.1), &config), Err(Rejection::LowScore));
    let mut o = labelled(0.8);
    o.evidence.box_iou = f64::NAN;
    assert_eq!(verify(&o, &config), Err(Rejection::BoxMismatch));
    let mut o = labelled(0.8);
    o.evidence.lidar_points = 10;
    o.evidence.lidar_inliers = 10;
    assert_eq!(verify(&o, &config), Err(Rejection::FewLidarPoints));
    let mut o = labelled(0.8);
    o.evidence.lidar_inliers = 120;
    assert_eq!(verify(&o, &config), Err(Rejection::PoorLidarFit));
    let mut o = labelled(0.8);
    o.evidence.silhouette_iou = Some(0.3);
    assert_eq!(verify(&o, &config), Err(Rejection::PoorSilhouette));
    let mut o = labelled(0.8);
    o.label.box3d.size.length_m = 6.5;
    assert_eq!(verify(&o, &config), Err(Rejection::ImplausibleSize));
    let mut o = labelled(0.8);
    o.state = None;
    assert_eq!(verify(&o, &config), Err(Rejection::NoShape));
}

const CALIB: &str = "P0: 7.070493000000e+02 0.000000000000e+00 6.040814000000e+02 0.000000000000e+00 0.000000000000e+00 7.070493000000e+02 1.805066000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00\nP1: 7.070493000000e+02 0.000000000000e+00 6.040814000000e+02 -3.797842000000e+02 0.000000000000e+00 7.070493000000e+02 1.805066000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00\nP2: 7.070493000000e+02 0.000000000000e+00 6.040814000000e+02 4.575831000000e+01 0.000000000000e+00 7.070493000000e+02 1.805066000000e+02 -3.454157000000e-01 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 4.981016000000e-03\nP3: 7.070493000000e+02 0.000000000000e+00 6.040814000000e+02 -3.341081000000e+02 0.000000000000e+00 7.070493000000e+02 1.805066000000e+02 2.330660000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 3.201153000000e-03\nR0_rect: 9.999128000000e-01 1.009263000000e-02 -8.511932000000e-03 -1.012729000000e-02 9.999406000000e-01 -4.037671000000e-03 8.470675000000e-03 4.123522000000e-03 9.999556000000e-01\nTr_velo_to_cam: 6.927964000000e-03 -9.999722000000e-01 -2.757829000000e-03 -2.457729000000e-02 -1.162982000000e-03 2.749836000000e-03 -9.999955000000e-01 -6.127237000000e-02 9.999753000000e-01 6.931141000000e-03 -1.143899000000e-03 -3.321029000000e-01\nTr_imu_to_velo: 9.999976000000e-01 7.553071000000e-04 -2.035826000000e-03 -8.086759000000e-01 -7.854027000000e-04 9.998898000000e-01 -1.482298000000e-02 3.195559000000e-01 2.024406000000e-03 1.482454000000e-02 9.998881000000e-01 -7.997231000000e-01\n";

#[test]
fn a_target_crop_renders_the_label_inside_its_detection_and_mask() {
    use curriculum::config::TargetConfig;
    use curriculum::targets::target_crop;
    use geom::{Box3d, Camera, Size3};
    use nalgebra::{Point3, Vector3};
    let calib = kitti::calib::parse_calib(CALIB, std::path::Path::new("calib.txt")).unwrap();
    let prior = deepsdf::ShapePrior::load(&root().join("data/weights/deepsdf.safetensors")).unwrap();
    let frame = pipeline::FrameInput {
        id: "000000".into(),
        image: image::RgbImage::from_pixel(1242, 375, image::Rgb([90, 90, 90])),
        points_velo: Vec::new(),
        calib,
    };
    let ground = optim::GroundPlane::level(1.65);
    let state = optim::ObjectState {
        yaw_rad: 0.4,
        translation_rect_m: Vector3::new(2.0, 0.9, 15.0),
        scale: 2.75,
        latent: prior.mean_latent(),
    };
    let label = Box3d::new(
        Point3::new(2.0, 1.65, 15.0),
        Size3 {
            height_m: 1.5,
            width_m: 1.8,
            length_m: 4.3,
        },
        state.rotation_y(&ground),
    );
    let bbox = label.project_to_image(&frame.calib, Camera::Cam2).unwrap();
    let mut detection = detection::Detection {
        kind: kitti::ObjectType::Car,
        bbox,
        score: 0.9,
        mask: None,
    };
    let render_with = |detection: &detection::Detection, config: &TargetConfig| {
        target_crop(&frame, detection, &state, &ground, &prior.decoder, config, (0, 0))
            .unwrap()
            .unwrap()
    };
    // The rendered silhouette as the mask target (the detection's mask is the default's).
    let rendered_mask = TargetConfig {
        mask_from_detection: false,
        ..TargetConfig::default()
    };
    let render = |detection: &detection::Detection| render_with(detection, &rendered_mask);
    let t = render(&detection);
    let s = t.crop.size;
    let pixels: Vec<(usize, usize)> = (0..s * s)
        .filter(|&p| t.crop.mask[p])
        .map(|p| (p % s, p / s))
        .collect();
    let art: String = (0..s)
        .map(|y| {
            (0..s)
                .map(|x| if t.crop.mask[y * s + x] { '#' } else { '.' })
                .collect::<String>()
                + "\n"
        })
        .collect();
    // The window is square around a wide box: the car fills its width, not its height.
    let (min_x, max_x) = pixels.iter().fold((s, 0), |a, &(x, _)| (a.0.min(x), a.1.max(x)));
    assert!(
        pixels.len() > s * s / 12 && max_x - min_x > s / 2,
        "{} of {} pixels\n{art}",
        pixels.len(),
        s * s
    );
    assert_eq!(t.visible_fraction, 1.0);
    let (cx, cy) = pixels
        .iter()
        .fold((0.0, 0.0), |a, &(x, y)| (a.0 + x as f64, a.1 + y as f64));
    let n = pixels.len() as f64;
    let centre = s as f64 / 2.0;
    assert!((cx / n - centre).abs() < 0.15 * s as f64 && (cy / n - centre).abs() < 0.15 * s as f64);
    // NOCS spread over the car: front to back, and some of its width.
    let spread = |k: usize| {
        let v: Vec<f32> = (0..s * s)
            .filter(|&p| t.crop.mask[p])
            .map(|p| f32::from(t.crop.nocs[p][k]) / 65535.0)
            .collect();
        v.iter().copied().fold(0.0f32, f32::max) - v.iter().copied().fold(1.0f32, f32::min)
    };
    assert!(spread(0) > 0.1 && spread(2) > 0.3, "{} {}", spread(0), spread(2));
    // A detection mask over the box's left half keeps only the left half of the car.
    let (x0, y0) = (bbox.left.floor() as u32, bbox.top.floor() as u32);
    let (w, h) = (
        (bbox.right.ceil() as u32 - x0) + 1,
        (bbox.bottom.ceil() as u32 - y0) + 1,
    );
    let mid = ((bbox.left + bbox.right) / 2.0) as u32;
    detection.mask = Some(detection::Mask {
        x0,
        y0,
        width: w,
        height: h,
        bits: (0..w * h).map(|i| x0 + i % w < mid).collect(),
    });
    let half = render(&detection);
    assert!(
        (0.25..0.75).contains(&half.visible_fraction),
        "{}",
        half.visible_fraction
    );
    let kept = half.crop.mask.iter().filter(|m| **m).count();
    assert!(kept < pixels.len() && kept > pixels.len() / 5);
    assert_eq!(half.crop.latent.len(), 8);
    assert!(half.crop.nocs_mask.is_none());

    // With `mask_from_detection` the mask is the detector's (here the whole box, more than the
    // car), and NOCS stays known exactly where the rendering is.
    detection.mask = Some(detection::Mask {
        bits: vec![true; (w * h) as usize],
        ..detection.mask.clone().unwrap()
    });
    let rendered = render(&detection);
    let from_detection = TargetConfig {
        mask_from_detection: true,
        ..TargetConfig::default()
    };
    let t = render_with(&detection, &from_detection);
    let known = t.crop.nocs_mask.as_ref().expect("a NOCS mask");
    assert_eq!(known, &rendered.crop.mask);
    assert_eq!(t.crop.nocs, rendered.crop.nocs);
    assert_eq!(t.visible_fraction, rendered.visible_fraction);
    let masked = t.crop.mask.iter().filter(|m| **m).count();
    assert!(masked > pixels.len() * 5 / 4, "{masked} vs {}", pixels.len());
    assert!(known.iter().zip(&t.crop.mask).all(|(k, m)| !k || *m));
    // Without a detection mask there is nothing else to take: the rendered silhouette it is.
    detection.mask = None;
    let bare = render_with(&detection, &from_detection);
    assert!(bare.crop.nocs_mask.is_none());
    assert_eq!(bare.crop.mask, t.crop.nocs_mask.unwrap());
}
