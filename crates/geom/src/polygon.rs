//! Exact area of the intersection of two convex polygons (Sutherland–Hodgman clipping), the kernel of
//! BEV and 3D IoU. No rasterisation: the result is exact up to floating-point rounding, and two
//! identical polygons give their own area (IoU 1).

use crate::Real;

/// A 2D point.
pub type Point2 = [Real; 2];

/// Signed area (shoelace): positive for counter-clockwise vertex order.
pub fn signed_area(poly: &[Point2]) -> Real {
    let n = poly.len();
    if n < 3 {
        return 0.0;
    }
    let mut twice = 0.0;
    for i in 0..n {
        let [x0, y0] = poly[i];
        let [x1, y1] = poly[(i + 1) % n];
        twice += x0 * y1 - x1 * y0;
    }
    0.5 * twice
}

/// Area of a simple polygon, either orientation.
pub fn area(poly: &[Point2]) -> Real {
    signed_area(poly).abs()
}

/// The polygon with counter-clockwise orientation (reversed if it was clockwise).
fn counter_clockwise(poly: &[Point2]) -> Vec<Point2> {
    let mut p = poly.to_vec();
    if signed_area(&p) < 0.0 {
        p.reverse();
    }
    p
}

/// Intersection of two convex polygons (either orientation). The result is counter-clockwise and
/// empty when the polygons do not overlap (or only touch).
pub fn convex_intersection(subject: &[Point2], clip: &[Point2]) -> Vec<Point2> {
    if subject.len() < 3 || clip.len() < 3 {
        return Vec::new();
    }
    let clip = counter_clockwise(clip);
    let mut output = counter_clockwise(subject);
    // Tolerance relative to the size of the inputs: vertices within it of a clip line count as on it,
    // so identical or edge-sharing polygons never produce near-parallel intersections.
    let scale = subject
        .iter()
        .chain(clip.iter())
        .fold(1.0 as Real, |m, p| m.max(p[0].abs()).max(p[1].abs()));
    let eps = 1e-12 * scale * scale;
    let mut input = Vec::with_capacity(8);
    let mut dist = Vec::with_capacity(8);
    for i in 0..clip.len() {
        if output.is_empty() {
            break;
        }
        let a = clip[i];
        let b = clip[(i + 1) % clip.len()];
        std::mem::swap(&mut input, &mut output);
        output.clear();
        // Signed distance (times |b − a|) of each vertex to the line a→b; ≥ 0 means inside (left side).
        dist.clear();
        dist.extend(
            input
                .iter()
                .map(|p| (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])),
        );
        for j in 0..input.len() {
            let k = (j + 1) % input.len();
            let (p, q, dp, dq) = (input[j], input[k], dist[j], dist[k]);
            if dp >= -eps {
                output.push(p);
            }
            // Strict crossing only: both ends clearly on opposite sides, so the denominator is > 2·eps.
            if (dp > eps && dq < -eps) || (dp < -eps && dq > eps) {
                let t = dp / (dp - dq);
                output.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
            }
        }
    }
    if output.len() < 3 { Vec::new() } else { output }
}

/// Area of the intersection of two convex polygons.
pub fn convex_intersection_area(a: &[Point2], b: &[Point2]) -> Real {
    area(&convex_intersection(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(cx: Real, cy: Real, side: Real, angle_rad: Real) -> Vec<Point2> {
        let (s, c) = angle_rad.sin_cos();
        let h = side / 2.0;
        [[h, h], [-h, h], [-h, -h], [h, -h]]
            .iter()
            .map(|[x, y]| [cx + c * x - s * y, cy + s * x + c * y])
            .collect()
    }

    #[test]
    fn identical_polygons_intersect_in_themselves() {
        for angle in [0.0, 0.3, 1.0, std::f64::consts::FRAC_PI_4, 2.9] {
            let p = square(1234.5, -987.25, 1.7, angle);
            assert!(
                (convex_intersection_area(&p, &p) - 1.7 * 1.7).abs() < 1e-9,
                "angle {angle}"
            );
        }
    }

    #[test]
    fn square_and_its_45_degree_rotation_form_an_octagon() {
        // Regular octagon inscribed between a unit square and its 45° rotation: area 2(√2 − 1).
        let a = square(0.0, 0.0, 1.0, 0.0);
        let b = square(0.0, 0.0, 1.0, std::f64::consts::FRAC_PI_4);
        let inter = convex_intersection(&a, &b);
        assert_eq!(inter.len(), 8);
        assert!((area(&inter) - 2.0 * (2.0_f64.sqrt() - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn disjoint_touching_and_contained() {
        let a = square(0.0, 0.0, 2.0, 0.0);
        assert_eq!(convex_intersection_area(&a, &square(5.0, 0.0, 2.0, 0.3)), 0.0);
        assert_eq!(convex_intersection_area(&a, &square(2.0, 0.0, 2.0, 0.0)), 0.0);
        assert!((convex_intersection_area(&a, &square(0.1, 0.2, 0.5, 0.7)) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn orientation_does_not_matter() {
        let a = square(0.0, 0.0, 2.0, 0.2);
        let mut b = square(0.7, 0.4, 1.5, 1.1);
        let forward = convex_intersection_area(&a, &b);
        b.reverse();
        assert!((convex_intersection_area(&a, &b) - forward).abs() < 1e-12);
        assert!((convex_intersection_area(&b, &a) - forward).abs() < 1e-12);
    }

    #[test]
    fn shifted_axis_aligned_rectangles() {
        // 4×2 rectangle and the same shifted by (1, 0.5): overlap 3 × 1.5.
        let r = |x0: Real, y0: Real| vec![[x0, y0], [x0 + 4.0, y0], [x0 + 4.0, y0 + 2.0], [x0, y0 + 2.0]];
        assert!((convex_intersection_area(&r(0.0, 0.0), &r(1.0, 0.5)) - 4.5).abs() < 1e-12);
    }
}
