//! The geometry-only baseline: a ground-aligned minimum-area box around a detection's frustum
//! points, with no shape prior and no image. The autolabeler is compared against it.
//!
//! The fit, all in the rect frame (x right, y down, z forward, metres):
//! 1. Footprint: the points dropped onto the rect x–z plane (not onto the fitted ground plane: a
//!    KITTI box turns about rect y only, so its footprint is an x–z rectangle whatever the road's
//!    slope), their convex hull ([`convex_hull`]), and the minimum-area enclosing rectangle by
//!    rotating calipers ([`min_area_rectangle`]). Length is the longer side, width the shorter.
//! 2. Height: each point's height above the ground plane measured along rect −y (vertically, as the
//!    upright box stands), and the box height a high quantile of those (the top
//!    [`BoxFitConfig::height_trim_fraction`] ignored: stray returns above the roof).
//! 3. The box bottom on the ground plane, below the rectangle's centre.
//! 4. Front or back: a point cloud cannot tell, so the heading is the direction along the length
//!    that points away from the camera (positive dot product with the camera → centre ray in x–z);
//!    when exactly perpendicular to that ray, the one with positive rect x (or, failing that, z).
//!
//! Known limitations: the minimum-area rectangle of an L-shaped footprint (two sides seen, no
//! roof) is ambiguous — a right triangle's enclosing rectangle along its hypotenuse has the same
//! area as the one along its legs — so such fits can be off by the angle of the car's diagonal
//! (about 20°); a LIDAR above the roof usually sees it. Range noise widens the hull by a few σ on
//! every side, so boxes come out a little large (tested: σ = 2 cm gives up to +10 cm).

use crate::error::{PoseError, Result};
use crate::ground::Plane;
use geom::polygon::Point2;
use geom::{Box3d, Size3};
use nalgebra::{Point3, Vector3};
use serde::{Deserialize, Serialize};

/// Settings of [`fit_box`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoxFitConfig {
    /// Fewer points than this is [`PoseError::NotEnoughPoints`] (at least one is always needed).
    pub min_points: usize,
    /// Share of the highest points ignored for the height, in `[0, 1)`; 0 takes the highest point.
    pub height_trim_fraction: f64,
    /// The smallest length, width and height of a fitted box, m: line-like or flat point sets give
    /// boxes this thin rather than of zero size.
    pub min_size_m: f64,
    /// Ground planes tilted more than this from level (rect −y) are rejected, degrees.
    pub max_ground_tilt_deg: f64,
}

impl Default for BoxFitConfig {
    fn default() -> Self {
        BoxFitConfig {
            min_points: 5,
            height_trim_fraction: 0.02,
            min_size_m: 0.1,
            max_ground_tilt_deg: 25.0,
        }
    }
}

impl BoxFitConfig {
    /// Checks that every setting is in range.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.height_trim_fraction) {
            return Err(PoseError::InvalidInput(format!(
                "height_trim_fraction {} is outside [0, 1)",
                self.height_trim_fraction
            )));
        }
        if !(self.min_size_m.is_finite() && self.min_size_m >= 0.0) {
            return Err(PoseError::InvalidInput(format!(
                "min_size_m {} is not a finite size ≥ 0",
                self.min_size_m
            )));
        }
        if !(self.max_ground_tilt_deg > 0.0 && self.max_ground_tilt_deg < 90.0) {
            return Err(PoseError::InvalidInput(format!(
                "max_ground_tilt_deg {} is outside (0, 90)",
                self.max_ground_tilt_deg
            )));
        }
        Ok(())
    }
}

/// A rectangle in the plane, as found by [`min_area_rectangle`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrientedRect {
    /// Centre.
    pub center: Point2,
    /// Unit direction of the long side (either of its two signs).
    pub direction: Point2,
    /// Length of the long side, in the points' unit (m here).
    pub length_m: f64,
    /// Length of the short side, in the points' unit (m here).
    pub width_m: f64,
}

impl OrientedRect {
    /// Area, in the points' unit squared.
    pub fn area_m2(&self) -> f64 {
        self.length_m * self.width_m
    }
}

/// The box of `points_rect` (a detection's frustum points, rect frame, m) standing on `ground` (a
/// plane in the rect frame; its normal may point either way). See the module docs for the method.
///
/// Errors: [`PoseError::NotEnoughPoints`] for fewer than [`BoxFitConfig::min_points`] points,
/// [`PoseError::InvalidInput`] for a non-finite point or plane, a ground plane steeper than
/// [`BoxFitConfig::max_ground_tilt_deg`], or a setting out of range.
pub fn fit_box(points_rect: &[Point3<f64>], ground: &Plane, config: &BoxFitConfig) -> Result<Box3d> {
    config.validate()?;
    let need = config.min_points.max(1);
    if points_rect.len() < need {
        return Err(PoseError::NotEnoughPoints {
            got: points_rect.len(),
            need,
        });
    }
    if let Some((i, p)) = points_rect
        .iter()
        .enumerate()
        .find(|(_, p)| !p.coords.iter().all(|v| v.is_finite()))
    {
        return Err(PoseError::InvalidInput(format!(
            "point {i} ({p:?}) is not finite"
        )));
    }
    let ground_y = ground_height_fn(ground, config.max_ground_tilt_deg)?;

    // Footprint in x–z, relative to the points' mean so that the hull and the calipers work on
    // small numbers.
    let n = points_rect.len() as f64;
    let mean = points_rect.iter().fold(Vector3::zeros(), |a, p| a + p.coords) / n;
    let footprint: Vec<Point2> = points_rect.iter().map(|p| [p.x - mean.x, p.z - mean.z]).collect();
    let hull = convex_hull(&footprint);
    let rect = min_area_rectangle(&hull).ok_or_else(|| PoseError::Degenerate("empty footprint".into()))?;
    let (cx, cz) = (rect.center[0] + mean.x, rect.center[1] + mean.z);

    // Heading along the length, away from the camera (see the module docs).
    let [mut ux, mut uz] = rect.direction;
    let away = ux * cx + uz * cz;
    if away < 0.0 || (away == 0.0 && (ux < 0.0 || (ux == 0.0 && uz < 0.0))) {
        (ux, uz) = (-ux, -uz);
    }
    // KITTI's heading at rotation_y = ry is (cos ry, 0, −sin ry).
    let rotation_y_rad = (-uz).atan2(ux);

    // Height: a high quantile of the vertical heights above the ground.
    let mut heights_m: Vec<f64> = points_rect.iter().map(|p| ground_y(p.x, p.z) - p.y).collect();
    let height_m = upper_quantile(&mut heights_m, config.height_trim_fraction);

    let floor = config.min_size_m;
    Ok(Box3d::new(
        Point3::new(cx, ground_y(cx, cz), cz),
        Size3::new(
            height_m.max(floor),
            rect.width_m.max(floor),
            rect.length_m.max(floor),
        ),
        rotation_y_rad,
    ))
}

/// The ground's rect y below `(x, z)`, as a function; errors for a non-finite or too steep plane.
fn ground_height_fn(ground: &Plane, max_tilt_deg: f64) -> Result<impl Fn(f64, f64) -> f64> {
    let (normal, offset) = (ground.normal.into_inner(), ground.offset);
    if !(normal.iter().all(|v| v.is_finite()) && offset.is_finite()) {
        return Err(PoseError::InvalidInput(format!(
            "ground plane {ground:?} is not finite"
        )));
    }
    let norm = normal.norm();
    let cos_tilt = if norm > 0.0 { normal.y.abs() / norm } else { 0.0 };
    if cos_tilt < max_tilt_deg.to_radians().cos() {
        return Err(PoseError::InvalidInput(format!(
            "ground plane normal {normal:?} (rect) is {:.1}° from level; at most {max_tilt_deg}° allowed",
            cos_tilt.clamp(0.0, 1.0).acos().to_degrees()
        )));
    }
    // n · (x, y, z) + d = 0 solved for y; |n_y| is bounded away from 0 by the tilt check.
    Ok(move |x: f64, z: f64| -(normal.x * x + normal.z * z + offset) / normal.y)
}

/// The value below which a share `1 − trim_fraction` of `values` lies (the highest value for 0);
/// reorders `values`, which must not be empty.
fn upper_quantile(values: &mut [f64], trim_fraction: f64) -> f64 {
    let n = values.len();
    let keep = ((1.0 - trim_fraction) * n as f64).ceil() as usize;
    let k = keep.clamp(1, n) - 1;
    let (_, kth, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    *kth
}

/// Twice the signed area of the triangle `o`, `a`, `b`: positive when `o → a → b` turns left.
fn cross(o: Point2, a: Point2, b: Point2) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// The convex hull of `points` (Andrew's monotone chain): counter-clockwise, starting at the lowest
/// x (then lowest y), without repeated or collinear vertices. One point for coincident input, two
/// for collinear input, none for none. Non-finite points are skipped.
pub fn convex_hull(points: &[Point2]) -> Vec<Point2> {
    let mut sorted: Vec<Point2> = points
        .iter()
        .copied()
        .filter(|p| p[0].is_finite() && p[1].is_finite())
        .collect();
    sorted.sort_unstable_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    sorted.dedup();
    if sorted.len() < 3 {
        return sorted;
    }
    // Lower chain left to right, upper chain right to left; each chain's last point starts the
    // other. Collinear input leaves the two ends.
    let chain = |points: &mut dyn Iterator<Item = Point2>| {
        let mut out: Vec<Point2> = Vec::new();
        for p in points {
            while out.len() >= 2 && cross(out[out.len() - 2], out[out.len() - 1], p) <= 0.0 {
                out.pop();
            }
            out.push(p);
        }
        out.pop();
        out
    };
    let mut hull = chain(&mut sorted.iter().copied());
    hull.extend(chain(&mut sorted.iter().rev().copied()));
    hull
}

/// The minimum-area rectangle enclosing the convex polygon `hull` (counter-clockwise, as from
/// [`convex_hull`]) by rotating calipers: one side of an optimal rectangle lies on a hull edge, and
/// as the edge advances the three other supporting points only move forward, so all edges take
/// O(n) in all. Two points give a zero-width rectangle along them, one point a zero-size rectangle
/// (direction +x); `None` for an empty hull.
pub fn min_area_rectangle(hull: &[Point2]) -> Option<OrientedRect> {
    let n = hull.len();
    match n {
        0 => return None,
        1 => {
            return Some(OrientedRect {
                center: hull[0],
                direction: [1.0, 0.0],
                length_m: 0.0,
                width_m: 0.0,
            });
        }
        2 => {
            let (a, b) = (hull[0], hull[1]);
            let d = [b[0] - a[0], b[1] - a[1]];
            let len = d[0].hypot(d[1]);
            return Some(OrientedRect {
                center: [0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1])],
                direction: if len > 0.0 {
                    [d[0] / len, d[1] / len]
                } else {
                    [1.0, 0.0]
                },
                length_m: len,
                width_m: 0.0,
            });
        }
        _ => {}
    }
    let dot = |p: Point2, d: Point2| p[0] * d[0] + p[1] * d[1];
    // Moves `k` forward while the next vertex is at least as far along `d`; the support function of
    // a convex polygon is unimodal around it, so this finds the maximum (at most n steps).
    let advance = |mut k: usize, d: Point2| {
        for _ in 0..n {
            let next = (k + 1) % n;
            if dot(hull[next], d) >= dot(hull[k], d) {
                k = next;
            } else {
                break;
            }
        }
        k
    };
    let argmax = |d: Point2| {
        (0..n)
            .max_by(|&i, &j| dot(hull[i], d).total_cmp(&dot(hull[j], d)))
            .unwrap_or(0)
    };

    let mut best: Option<(f64, OrientedRect)> = None;
    // Supporting vertices: furthest along the edge, furthest from it (inward normal), furthest back.
    let (mut ahead, mut across, mut behind) = (0, 0, 0);
    for i in 0..n {
        let (a, b) = (hull[i], hull[(i + 1) % n]);
        let len = (b[0] - a[0]).hypot(b[1] - a[1]);
        if len == 0.0 {
            continue;
        }
        let e = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
        // Counter-clockwise hull: the interior is on the left of every edge.
        let normal = [-e[1], e[0]];
        let back = [-e[0], -e[1]];
        if best.is_none() {
            (ahead, across, behind) = (argmax(e), argmax(normal), argmax(back));
        } else {
            ahead = advance(ahead, e);
            across = advance(across, normal);
            behind = advance(behind, back);
        }
        let rel = |k: usize| [hull[k][0] - a[0], hull[k][1] - a[1]];
        let (lo, hi) = (dot(rel(behind), e), dot(rel(ahead), e));
        let height = dot(rel(across), normal);
        let area = (hi - lo) * height;
        if best.as_ref().is_none_or(|(best_area, _)| area < *best_area) {
            let (s, t) = (0.5 * (lo + hi), 0.5 * height);
            let center = [a[0] + s * e[0] + t * normal[0], a[1] + s * e[1] + t * normal[1]];
            let rect = if hi - lo >= height {
                OrientedRect {
                    center,
                    direction: e,
                    length_m: hi - lo,
                    width_m: height,
                }
            } else {
                OrientedRect {
                    center,
                    direction: normal,
                    length_m: height,
                    width_m: hi - lo,
                }
            };
            best = Some((area, rect));
        }
    }
    best.map(|(_, rect)| rect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upper_quantile_trims_the_top() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(upper_quantile(&mut v, 0.0), 100.0);
        assert_eq!(upper_quantile(&mut v, 0.02), 98.0);
        assert_eq!(upper_quantile(&mut [3.0], 0.5), 3.0);
        assert_eq!(upper_quantile(&mut [1.0, 2.0], 0.99), 1.0);
    }
}
