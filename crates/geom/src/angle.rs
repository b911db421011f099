//! Angles: wrapping and KITTI's observation angle `alpha` ↔ yaw `rotation_y`.

use crate::Real;
use std::f64::consts::PI;

/// Wraps an angle to `(-π, π]`.
pub fn normalize_angle(angle_rad: Real) -> Real {
    let mut a = angle_rad.rem_euclid(2.0 * PI);
    if a > PI {
        a -= 2.0 * PI;
    }
    a
}

/// KITTI observation angle from yaw and the object's position in the rect frame:
/// `alpha = rotation_y − atan2(x, z)`, wrapped to `(-π, π]`.
pub fn alpha_from_rotation_y(rotation_y_rad: Real, x_rect_m: Real, z_rect_m: Real) -> Real {
    normalize_angle(rotation_y_rad - x_rect_m.atan2(z_rect_m))
}

/// Yaw from the KITTI observation angle (inverse of [`alpha_from_rotation_y`]).
pub fn rotation_y_from_alpha(alpha_rad: Real, x_rect_m: Real, z_rect_m: Real) -> Real {
    normalize_angle(alpha_rad + x_rect_m.atan2(z_rect_m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_into_half_open_interval() {
        for (input, expected) in [
            (0.0, 0.0),
            (PI, PI),
            (-PI, PI),
            (3.0 * PI, PI),
            (2.5 * PI, 0.5 * PI),
        ] {
            assert!(
                (normalize_angle(input) - expected).abs() < 1e-12,
                "{input} -> {}",
                normalize_angle(input)
            );
        }
    }

    #[test]
    fn alpha_matches_a_real_kitti_label() {
        // training/label_2/000000.txt: Pedestrian … alpha -0.20 … x 1.84 z 8.41 rotation_y 0.01
        let alpha = alpha_from_rotation_y(0.01, 1.84, 8.41);
        assert!((alpha - -0.20).abs() < 0.01, "{alpha}");
    }

    #[test]
    fn alpha_round_trips() {
        for i in 0..100 {
            let ry = -3.1 + 0.062 * i as Real;
            let (x, z) = (-12.0 + 0.3 * i as Real, 3.0 + 0.5 * i as Real);
            let back = rotation_y_from_alpha(alpha_from_rotation_y(ry, x, z), x, z);
            assert!((normalize_angle(back - ry)).abs() < 1e-12);
        }
    }
}
