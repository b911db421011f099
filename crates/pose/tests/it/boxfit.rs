//! The geometry-only baseline box: recovered from noisy points on the faces a sensor sees, exact from
//! all faces, on a sloped road, and typed errors for degenerate input; the convex hull and the
//! rotating calipers against brute force.

use geom::polygon::Point2;
use geom::{Box3d, Size3, normalize_angle};
use nalgebra::{Point3, Unit, Vector3};
use pose::PoseError;
use pose::boxfit::{BoxFitConfig, convex_hull, fit_box, min_area_rectangle};
use pose::ground::Plane;
use rand::{RngExt, SeedableRng, rngs::StdRng};

/// The road `ground_y_m` below the camera (rect y = `ground_y_m`), normal up (rect −y).
fn level_ground(ground_y_m: f64) -> Plane {
    Plane {
        normal: -Vector3::y_axis(),
        offset: ground_y_m,
    }
}

/// The box's six faces as corner quads (cyclic order, indices of [`Box3d::corners_rect`]).
const FACES: [[usize; 4]; 6] = [
    [0, 1, 2, 3], // bottom
    [4, 5, 6, 7], // top
    [0, 1, 5, 4], // front
    [2, 3, 7, 6], // back
    [1, 2, 6, 5],
    [3, 0, 4, 7],
];

/// Points on the faces of `b` that `sensor_rect` sees (all faces but the bottom when `None`), about
/// `per_m2` per square metre, with Gaussian noise of σ = `noise_m` in each coordinate.
fn face_points(
    rng: &mut StdRng,
    b: &Box3d,
    sensor_rect: Option<Point3<f64>>,
    per_m2: f64,
    noise_m: f64,
) -> Vec<Point3<f64>> {
    let c = b.corners_rect();
    let center = b.center_rect();
    let mut out = Vec::new();
    for face in &FACES[1..] {
        let [p0, p1, _, p3] = face.map(|k| c[k]);
        let face_center = Point3::from((p0.coords + c[face[2]].coords) / 2.0);
        let outward = face_center - center;
        if let Some(s) = sensor_rect
            && outward.dot(&(s - face_center)) <= 0.0
        {
            continue;
        }
        let (e1, e2) = (p1 - p0, p3 - p0);
        let n = (e1.cross(&e2).norm() * per_m2).round() as usize;
        for _ in 0..n {
            let noise = Vector3::from_fn(|_, _| noise_m * rng.sample::<f64, _>(rand_distr::StandardNormal));
            out.push(p0 + e1 * rng.random_range(0.0..=1.0) + e2 * rng.random_range(0.0..=1.0) + noise);
        }
    }
    out
}

/// Points on a `steps` × `steps` grid (edges and corners included) on every face but the bottom.
fn grid_points(b: &Box3d, steps: usize) -> Vec<Point3<f64>> {
    let c = b.corners_rect();
    let mut out = Vec::new();
    for face in &FACES[1..] {
        let [p0, p1, _, p3] = face.map(|k| c[k]);
        for i in 0..=steps {
            for j in 0..=steps {
                let (s, t) = (i as f64 / steps as f64, j as f64 / steps as f64);
                out.push(p0 + (p1 - p0) * s + (p3 - p0) * t);
            }
        }
    }
    out
}

/// Yaw difference modulo π (front and back are ambiguous), rad.
fn yaw_error_mod_pi(a_rad: f64, b_rad: f64) -> f64 {
    let d = normalize_angle(a_rad - b_rad).abs();
    d.min(std::f64::consts::PI - d)
}

fn random_car(rng: &mut StdRng, ground_y_m: f64) -> Box3d {
    Box3d::new(
        Point3::new(
            rng.random_range(-8.0..8.0),
            ground_y_m,
            rng.random_range(8.0..30.0),
        ),
        Size3::new(
            rng.random_range(1.4..1.6),
            rng.random_range(1.6..1.9),
            rng.random_range(3.8..4.6),
        ),
        rng.random_range(-3.1..3.1),
    )
}

/// Worst and mean errors of fits to 50 random cars seen from the camera (two or three sides and
/// the roof: the camera is 1.65 m above the road, the cars are lower), `per_m2` points per square
/// metre with σ = `noise_m`: centre (m), yaw mod π (°), and the size error range (m; noise widens
/// the hull, so the fitted box is larger).
struct Errors {
    worst_center_m: f64,
    worst_yaw_deg: f64,
    mean_center_m: f64,
    mean_yaw_deg: f64,
    size_range_m: (f64, f64),
}

fn visible_face_errors(per_m2: f64, noise_m: f64) -> Errors {
    let mut rng = StdRng::seed_from_u64(21);
    let ground = level_ground(1.65);
    let config = BoxFitConfig::default();
    let trials = 50;
    let mut e = Errors {
        worst_center_m: 0.0,
        worst_yaw_deg: 0.0,
        mean_center_m: 0.0,
        mean_yaw_deg: 0.0,
        size_range_m: (f64::INFINITY, f64::NEG_INFINITY),
    };
    for trial in 0..trials {
        let truth = random_car(&mut rng, 1.65);
        let points = face_points(&mut rng, &truth, Some(Point3::origin()), per_m2, noise_m);
        let got = fit_box(&points, &ground, &config).unwrap();
        let dc = (got.bottom_center_rect - truth.bottom_center_rect).norm();
        let dyaw = yaw_error_mod_pi(got.rotation_y_rad, truth.rotation_y_rad).to_degrees();
        e.worst_center_m = e.worst_center_m.max(dc);
        e.worst_yaw_deg = e.worst_yaw_deg.max(dyaw);
        e.mean_center_m += dc / trials as f64;
        e.mean_yaw_deg += dyaw / trials as f64;
        for d in [
            got.size.height_m - truth.size.height_m,
            got.size.width_m - truth.size.width_m,
            got.size.length_m - truth.size.length_m,
        ] {
            e.size_range_m = (e.size_range_m.0.min(d), e.size_range_m.1.max(d));
        }
        // The bottom is on the road and the heading points away from the camera.
        assert!((got.bottom_center_rect.y - 1.65).abs() < 1e-9);
        let c = got.bottom_center_rect;
        let (s, co) = got.rotation_y_rad.sin_cos();
        assert!(
            co * c.x - s * c.z >= 0.0,
            "trial {trial}: heading towards the camera"
        );
    }
    eprintln!(
        "{per_m2} points/m², σ {noise_m} m: centre worst {:.3} m (mean {:.3}), yaw worst {:.2}° (mean {:.2}), size error {:+.3}..{:+.3} m",
        e.worst_center_m,
        e.mean_center_m,
        e.worst_yaw_deg,
        e.mean_yaw_deg,
        e.size_range_m.0,
        e.size_range_m.1
    );
    e
}

#[test]
fn exact_points_on_the_visible_faces_give_back_the_box() {
    // Random samples miss the very corners, so the box comes out a little small.
    let e = visible_face_errors(400.0, 0.0);
    assert!(
        e.worst_center_m < 0.01 && e.worst_yaw_deg < 0.1,
        "{:.4} m, {:.3}°",
        e.worst_center_m,
        e.worst_yaw_deg
    );
    assert!(
        e.size_range_m.0 > -0.02 && e.size_range_m.1 <= 1e-9,
        "{:?}",
        e.size_range_m
    );
}

#[test]
fn noisy_points_on_the_visible_faces_give_back_the_box() {
    // σ = 2 cm widens the hull by a few σ on each side: the box grows by up to ~12 cm, its centre
    // moves by a few cm (unevenly: the hidden sides have only roof points), the yaw stays ~1°.
    let e = visible_face_errors(40.0, 0.02);
    assert!(
        e.worst_center_m < 0.07 && e.mean_center_m < 0.04,
        "centre {:.3} / {:.3} m",
        e.worst_center_m,
        e.mean_center_m
    );
    assert!(
        e.worst_yaw_deg < 1.5 && e.mean_yaw_deg < 0.4,
        "yaw {:.2} / {:.2}°",
        e.worst_yaw_deg,
        e.mean_yaw_deg
    );
    assert!(
        e.size_range_m.0 > -0.03 && e.size_range_m.1 < 0.15,
        "size {:?}",
        e.size_range_m
    );
}

#[test]
fn exact_points_on_all_faces_give_the_exact_box() {
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..20 {
        let truth = random_car(&mut rng, 1.7);
        let points = grid_points(&truth, 12);
        // Either orientation of the plane's normal.
        for ground in [
            level_ground(1.7),
            Plane {
                normal: Vector3::y_axis(),
                offset: -1.7,
            },
        ] {
            let got = fit_box(&points, &ground, &BoxFitConfig::default()).unwrap();
            assert!(
                (got.bottom_center_rect - truth.bottom_center_rect).norm() < 1e-9,
                "{truth:?}\n{got:?}"
            );
            assert!((got.size.height_m - truth.size.height_m).abs() < 1e-9);
            assert!((got.size.width_m - truth.size.width_m).abs() < 1e-9);
            assert!((got.size.length_m - truth.size.length_m).abs() < 1e-9);
            assert!(yaw_error_mod_pi(got.rotation_y_rad, truth.rotation_y_rad) < 1e-9);
        }
    }
}

#[test]
fn on_a_sloped_road_the_box_stands_on_the_plane() {
    let mut rng = StdRng::seed_from_u64(8);
    // 4 % uphill ahead: y = 1.65 − 0.04 z, i.e. −y − 0.04 z + 1.65 = 0 (normal up, rect −y).
    let k = 1.0_f64.hypot(0.04);
    let ground = Plane {
        normal: Unit::new_normalize(Vector3::new(0.0, -1.0, -0.04)),
        offset: 1.65 / k,
    };
    let ground_y =
        |x: f64, z: f64| -(ground.normal.x * x + ground.normal.z * z + ground.offset) / ground.normal.y;
    let mut truth = random_car(&mut rng, 0.0);
    let c = truth.bottom_center_rect;
    truth.bottom_center_rect.y = ground_y(c.x, c.z);
    let points = grid_points(&truth, 12);
    let got = fit_box(&points, &ground, &BoxFitConfig::default()).unwrap();
    assert!(ground.distance(&got.bottom_center_rect).abs() < 1e-9, "{got:?}");
    assert!((got.bottom_center_rect - truth.bottom_center_rect).norm() < 1e-9);
    assert!(yaw_error_mod_pi(got.rotation_y_rad, truth.rotation_y_rad) < 1e-9);
    // Heights are measured vertically from the road below each point, which differs from the
    // centre's by at most slope × half-diagonal.
    let half_diagonal = 0.5 * truth.size.length_m.hypot(truth.size.width_m);
    assert!((got.size.height_m - truth.size.height_m).abs() <= 0.04 * half_diagonal + 1e-9);
}

#[test]
fn degenerate_inputs_give_typed_errors_or_thin_boxes() {
    let ground = level_ground(1.65);
    let config = BoxFitConfig::default();
    let four: Vec<Point3<f64>> = (0..4).map(|i| Point3::new(i as f64, 1.0, 10.0)).collect();
    let r = fit_box(&four, &ground, &config);
    assert_eq!(r, Err(PoseError::NotEnoughPoints { got: 4, need: 5 }));
    let r = fit_box(
        &[],
        &ground,
        &BoxFitConfig {
            min_points: 0,
            ..config.clone()
        },
    );
    assert_eq!(r, Err(PoseError::NotEnoughPoints { got: 0, need: 1 }));

    let mut line: Vec<Point3<f64>> = (0..10)
        .map(|i| Point3::new(0.1 * i as f64, 1.0, 10.0 + 0.2 * i as f64))
        .collect();
    line[3].y = f64::NAN;
    assert!(matches!(
        fit_box(&line, &ground, &config),
        Err(PoseError::InvalidInput(_))
    ));
    line[3].y = 1.0;

    // A wall, not a road; a bad setting.
    let wall = Plane {
        normal: Vector3::x_axis(),
        offset: 2.0,
    };
    assert!(matches!(
        fit_box(&line, &wall, &config),
        Err(PoseError::InvalidInput(_))
    ));
    for bad in [
        BoxFitConfig {
            height_trim_fraction: 1.0,
            ..config.clone()
        },
        BoxFitConfig {
            min_size_m: f64::NAN,
            ..config.clone()
        },
        BoxFitConfig {
            max_ground_tilt_deg: 90.0,
            ..config.clone()
        },
    ] {
        assert!(
            matches!(fit_box(&line, &ground, &bad), Err(PoseError::InvalidInput(_))),
            "{bad:?}"
        );
    }

    // Points on a line in the footprint: a box as thin as allowed along the line, 0.65 m high.
    let b = fit_box(&line, &ground, &config).unwrap();
    let along = (0.9_f64).hypot(1.8);
    assert!((b.size.length_m - along).abs() < 1e-9, "{b:?}");
    assert_eq!(b.size.width_m, config.min_size_m);
    assert!((b.size.height_m - 0.65).abs() < 1e-9);
    // All in one spot below the road: the smallest box, on the road.
    let spot = vec![Point3::new(1.0, 2.0, 10.0); 6];
    let b = fit_box(&spot, &ground, &config).unwrap();
    assert_eq!(b.size, Size3::new(0.1, 0.1, 0.1));
    assert!((b.bottom_center_rect - Point3::new(1.0, 1.65, 10.0)).norm() < 1e-12);
}

#[test]
fn the_convex_hull_is_counter_clockwise_and_holds_every_point() {
    // A grid: the four corners, counter-clockwise from the lowest x, no edge midpoints.
    let grid: Vec<Point2> = (0..5)
        .flat_map(|i| (0..5).map(move |j| [i as f64, j as f64]))
        .collect();
    assert_eq!(
        convex_hull(&grid),
        vec![[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]]
    );
    assert_eq!(convex_hull(&[]), Vec::<Point2>::new());
    assert_eq!(convex_hull(&[[1.0, 2.0]; 3]), vec![[1.0, 2.0]]);
    assert_eq!(
        convex_hull(&[[2.0, 2.0], [0.0, 0.0], [1.0, 1.0], [3.0, 3.0]]),
        vec![[0.0, 0.0], [3.0, 3.0]]
    );
    assert_eq!(
        convex_hull(&[[0.0, 0.0], [f64::NAN, 1.0], [1.0, 0.0], [0.0, 1.0]]),
        vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    );

    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..200 {
        let n = rng.random_range(3..200);
        let points: Vec<Point2> = (0..n)
            .map(|_| [rng.random_range(-5.0..5.0), rng.random_range(-2.0..2.0)])
            .collect();
        let hull = convex_hull(&points);
        let h = hull.len();
        assert!(h >= 3);
        let cross =
            |o: Point2, a: Point2, b: Point2| (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
        for i in 0..h {
            let (a, b) = (hull[i], hull[(i + 1) % h]);
            // Strictly convex, counter-clockwise …
            assert!(cross(a, b, hull[(i + 2) % h]) > 0.0);
            // … with every point on the inner side of every edge.
            assert!(points.iter().all(|&p| cross(a, b, p) >= -1e-12));
            assert!(points.contains(&a));
        }
    }
}

#[test]
fn rotating_calipers_find_the_brute_force_minimum() {
    let mut rng = StdRng::seed_from_u64(3);
    for trial in 0..300 {
        let n = rng.random_range(3..100);
        let (sx, sy) = (rng.random_range(0.1..5.0), rng.random_range(0.1..5.0));
        let angle: f64 = rng.random_range(-3.2..3.2);
        let (s, c) = angle.sin_cos();
        let points: Vec<Point2> = (0..n)
            .map(|_| {
                let (x, y) = (rng.random_range(-sx..sx), rng.random_range(-sy..sy));
                [3.0 + c * x - s * y, -7.0 + s * x + c * y]
            })
            .collect();
        let hull = convex_hull(&points);
        let rect = min_area_rectangle(&hull).unwrap();
        // Brute force: every hull edge's direction, every point projected.
        let h = hull.len();
        let brute = (0..h)
            .map(|i| {
                let (a, b) = (hull[i], hull[(i + 1) % h]);
                let len = (b[0] - a[0]).hypot(b[1] - a[1]);
                let e = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
                let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
                for p in &points {
                    let q = [p[0] * e[0] + p[1] * e[1], -p[0] * e[1] + p[1] * e[0]];
                    for k in 0..2 {
                        lo[k] = lo[k].min(q[k]);
                        hi[k] = hi[k].max(q[k]);
                    }
                }
                (hi[0] - lo[0]) * (hi[1] - lo[1])
            })
            .fold(f64::INFINITY, f64::min);
        assert!(
            (rect.area_m2() - brute).abs() < 1e-9 * brute.max(1.0),
            "trial {trial}: {} vs {brute}",
            rect.area_m2()
        );
        assert!(rect.length_m >= rect.width_m);
        // Every point lies in the rectangle.
        let [dx, dy] = rect.direction;
        for p in &points {
            let (u, v) = (p[0] - rect.center[0], p[1] - rect.center[1]);
            assert!((u * dx + v * dy).abs() <= 0.5 * rect.length_m + 1e-9);
            assert!((-u * dy + v * dx).abs() <= 0.5 * rect.width_m + 1e-9);
        }
    }
    // Two points: a segment; one point: a spot; none: nothing.
    let r = min_area_rectangle(&[[0.0, 0.0], [3.0, 4.0]]).unwrap();
    assert_eq!((r.center, r.length_m, r.width_m), ([1.5, 2.0], 5.0, 0.0));
    assert_eq!(min_area_rectangle(&[[1.0, 1.0]]).unwrap().area_m2(), 0.0);
    assert!(min_area_rectangle(&[]).is_none());
}
