//! Local correction of a monocular depth map by the road plane.
//!
//! A monocular network's error is not only a per-frame scale: whole regions come out too near or
//! too far together (the synthetic world's model: a smooth log-depth error field with a correlation
//! length of ~100 px, 10 % σ at 50 m). Where the road is visible its true depth is known from the
//! plane (the camera's height fixes it), so the log ratio `ln(plane depth / map depth)` on road
//! pixels measures that field; [`correct_by_road`] spreads it by normalised convolution (a Gaussian
//! of `sigma_px`, weighted by road pixels) and multiplies every pixel of the map by its exponential.
//! A car standing on the road gets the correction measured on the road around and below it.

use geom::Intrinsics;
use kitti::image::{Border, DepthMap, box_blur};
use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

/// Settings of [`correct_by_road`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoadCorrection {
    /// σ of the Gaussian that spreads the road's log ratio, px; 0 (the default) turns the
    /// correction off; 15 is the value measured in BENCHMARKS.md ("Monocular mode").
    pub sigma_px: f64,
    /// A pixel is road when its point lies within this distance of the plane, m.
    pub inlier_m: f64,
    /// Road pixels farther than this are not used, m.
    pub max_depth_m: f64,
    /// Smallest Gaussian-weighted share of road pixels around a pixel for it to be corrected (below
    /// that the pixel keeps its depth).
    pub min_support: f64,
    /// Largest |ln(correction)| applied (0.3: ±35 %).
    pub max_log_correction: f64,
}

impl Default for RoadCorrection {
    fn default() -> Self {
        RoadCorrection {
            sigma_px: 0.0,
            inlier_m: 0.15,
            max_depth_m: 45.0,
            min_support: 0.005,
            max_log_correction: 0.3,
        }
    }
}

/// What [`correct_by_road`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CorrectionStats {
    /// Road pixels that measured the error.
    pub road_pixels: usize,
    /// Pixels whose depth changed.
    pub corrected_pixels: usize,
    /// Mean |ln(correction)| over the changed pixels.
    pub mean_abs_log: f64,
}

/// Corrects `map` in place by the road plane `normal_cam · p + offset_m = 0` (in the frame of the
/// camera whose pixels `k` describes, metres, the normal pointing up from the road) measured on the
/// pixels below the horizon for which `excluded` is false (pass the detections' boxes there: a car
/// is not road). Does nothing when `config.sigma_px` is 0 or no pixel is road.
pub fn correct_by_road(
    map: &mut DepthMap,
    k: &Intrinsics,
    normal_cam: &Vector3<f64>,
    offset_m: f64,
    excluded: &dyn Fn(u32, u32) -> bool,
    config: &RoadCorrection,
) -> CorrectionStats {
    let mut stats = CorrectionStats::default();
    if config.sigma_px <= 0.0 {
        return stats;
    }
    let (w, h) = (map.width as usize, map.height as usize);
    let mut ratio = vec![0.0f32; w * h];
    let mut weight = vec![0.0f32; w * h];
    let first_row = (k.cy.max(0.0) as usize + 1).min(h);
    for v in first_row..h {
        for u in 0..w {
            let Some(d) = map.get(u as u32, v as u32) else {
                continue;
            };
            let d = f64::from(d);
            if d > config.max_depth_m || excluded(u as u32, v as u32) {
                continue;
            }
            let ray = k.ray(u as f64, v as f64);
            let along = normal_cam.dot(&ray);
            if (along * d + offset_m).abs() > config.inlier_m || along >= 0.0 {
                continue;
            }
            // The ray meets the plane at depth t: along · t + offset = 0 (the road is below the
            // camera, so `along` is negative and t positive).
            let t = -offset_m / along;
            if !(t > 0.0 && t <= config.max_depth_m) {
                continue;
            }
            ratio[v * w + u] = (t / d).ln() as f32;
            weight[v * w + u] = 1.0;
            stats.road_pixels += 1;
        }
    }
    if stats.road_pixels == 0 {
        return stats;
    }
    gaussian_blur(&mut ratio, w, h, config.sigma_px);
    gaussian_blur(&mut weight, w, h, config.sigma_px);
    let limit = config.max_log_correction as f32;
    let mut sum_abs = 0.0f64;
    for (d, (num, den)) in map.depth_m.iter_mut().zip(ratio.iter().zip(&weight)) {
        if *d <= 0.0 || f64::from(*den) < config.min_support {
            continue;
        }
        let log = (num / den).clamp(-limit, limit);
        *d *= log.exp();
        sum_abs += f64::from(log.abs());
        stats.corrected_pixels += 1;
    }
    stats.mean_abs_log = sum_abs / stats.corrected_pixels.max(1) as f64;
    stats
}

/// An approximate Gaussian blur of σ `sigma_px`, in place: three box passes of radius r
/// (variance r(r + 1)), zero outside the image; each output is a weighted mean of its
/// neighbourhood, so the ratio of two blurred maps is a normalised convolution.
fn gaussian_blur(values: &mut [f32], w: usize, h: usize, sigma_px: f64) {
    let radius = ((sigma_px * sigma_px + 0.25).sqrt() - 0.5).round().max(1.0) as usize;
    for _ in 0..3 {
        box_blur(values, w, h, radius, Border::Zero);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The correction on, with the default settings otherwise.
    fn on() -> RoadCorrection {
        RoadCorrection {
            sigma_px: 15.0,
            ..RoadCorrection::default()
        }
    }

    /// A 200 × 100 camera 1.5 m above a level road (y down), the road's true depth per pixel.
    fn road_scene() -> (Intrinsics, DepthMap, Vector3<f64>, f64) {
        let k = Intrinsics {
            fx: 100.0,
            fy: 100.0,
            cx: 100.0,
            cy: 30.0,
        };
        let mut map = DepthMap::new(200, 100);
        // Up is −y; the road is y = 1.5: (0, −1, 0) · p + 1.5 = 0.
        let normal = Vector3::new(0.0, -1.0, 0.0);
        for v in 0..100u32 {
            for u in 0..200u32 {
                let ry = (f64::from(v) - k.cy) / k.fy;
                let depth = if ry > 0.0 { (1.5 / ry).min(60.0) } else { 60.0 };
                map.set(u, v, depth as f32);
            }
        }
        (k, map, normal, 1.5)
    }

    #[test]
    fn an_exact_map_is_left_as_it_is() {
        let (k, mut map, normal, offset) = road_scene();
        let before = map.depth_m.clone();
        let stats = correct_by_road(&mut map, &k, &normal, offset, &|_, _| false, &on());
        assert!(stats.road_pixels > 1000, "{stats:?}");
        for (a, b) in map.depth_m.iter().zip(&before) {
            assert!((a / b - 1.0).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn a_regional_error_is_removed_near_the_road() {
        let (k, truth, normal, offset) = road_scene();
        // The left half 6 % too far, the right half 5 % too near, smoothly joined (within the
        // plane's inlier distance: a 6 % error lifts a road point 0.09 m).
        let factor = |u: u32| {
            let s = ((f64::from(u) - 100.0) / 15.0).tanh();
            (0.06f64 * (1.0 - s) / 2.0 - 0.05 * (1.0 + s) / 2.0).exp()
        };
        let mut map = truth.clone();
        for v in 0..100u32 {
            for u in 0..200u32 {
                let d = truth.get(u, v).unwrap();
                map.set(u, v, (f64::from(d) * factor(u)) as f32);
            }
        }
        // A "car" at the left: its pixels 6 % too far as well, excluded from the road.
        let car = |u: u32, v: u32| (20..50).contains(&u) && (40..60).contains(&v);
        for v in 40..60u32 {
            for u in 20..50u32 {
                map.set(u, v, 12.0 * factor(u) as f32);
            }
        }
        let stats = correct_by_road(&mut map, &k, &normal, offset, &car, &on());
        assert!(
            stats.corrected_pixels > 0 && stats.mean_abs_log > 0.02,
            "{stats:?}"
        );
        let car_depth = map.get(35, 50).unwrap();
        assert!((car_depth / 12.0 - 1.0).abs() < 0.02, "car {car_depth} vs 12 m");
        for (u, v) in [(30, 80), (170, 80), (100, 90)] {
            let (got, want) = (map.get(u, v).unwrap(), truth.get(u, v).unwrap());
            assert!((got / want - 1.0).abs() < 0.03, "({u}, {v}): {got} vs {want}");
        }
    }

    #[test]
    fn excluded_pixels_do_not_measure_and_zero_sigma_is_off() {
        let (k, mut map, normal, offset) = road_scene();
        // Everything below the horizon excluded: no road, nothing changes.
        let all = |_: u32, _: u32| true;
        let before = map.depth_m.clone();
        let stats = correct_by_road(&mut map, &k, &normal, offset, &all, &on());
        assert_eq!(stats.road_pixels, 0);
        assert_eq!(map.depth_m, before);
        for d in &mut map.depth_m {
            *d *= 1.2;
        }
        let off = RoadCorrection::default();
        let scaled = map.depth_m.clone();
        correct_by_road(&mut map, &k, &normal, offset, &|_, _| false, &off);
        assert_eq!(map.depth_m, scaled);
    }
}
