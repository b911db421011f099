//! Procedural non-car shapes: vans, pedestrians, cyclists, buildings, walls, poles, trees and bushes.
//!
//! Every shape is a [`TriMesh`] in the model frame of the crate docs (metres, origin at the bottom
//! centre, +y up, +z forward, +x left), built from closed primitives (boxes, cylinders, spheres), and
//! depends only on its parameters and seed. Sizes follow the KITTI class statistics where there are
//! some: Van h 2.21 ± 0.32, w 1.90 ± 0.13, l 5.08 ± 0.50 m; Pedestrian h 1.76 ± 0.11, w 0.66 ± 0.14,
//! l 0.84 ± 0.23 m; Cyclist h 1.74 ± 0.09, w 0.60 ± 0.12, l 1.76 ± 0.18 m.

use crate::car::{BodyStyle, CarParams, car_mesh};
use crate::mesh::{Material, TriMesh};
use nalgebra::{Point3, Vector3};
use rand::{RngExt, rngs::StdRng};
use rand_distr::{Distribution, Normal};
use std::f32::consts::{PI, TAU};

fn gauss(rng: &mut StdRng, mean: f64, std: f64, lo: f64, hi: f64) -> f32 {
    let n = Normal::new(mean, std).map_or(mean, |d| d.sample(rng));
    n.clamp(lo, hi) as f32
}

/// Appends an axis-aligned closed box spanning `lo..hi`.
pub fn push_box(mesh: &mut TriMesh, lo: Point3<f32>, hi: Point3<f32>, material: Material) {
    let ring = |z: f32| {
        vec![
            Point3::new(lo.x, lo.y, z),
            Point3::new(hi.x, lo.y, z),
            Point3::new(hi.x, hi.y, z),
            Point3::new(lo.x, hi.y, z),
        ]
    };
    mesh.push_closed_loft(&[ring(lo.z), ring(hi.z)], material);
}

/// Appends a closed cylinder of `radius` around the segment `a → b` with `segments` sides.
pub fn push_cylinder(
    mesh: &mut TriMesh,
    a: Point3<f32>,
    b: Point3<f32>,
    radius: f32,
    segments: usize,
    material: Material,
) {
    let axis = (b - a).try_normalize(1e-9).unwrap_or_else(Vector3::y);
    let helper = if axis.x.abs() < 0.9 {
        Vector3::x()
    } else {
        Vector3::z()
    };
    let u = axis.cross(&helper).normalize();
    let v = axis.cross(&u);
    let ring = |c: Point3<f32>| {
        (0..segments.max(3))
            .map(|k| {
                let t = TAU * k as f32 / segments.max(3) as f32;
                c + (u * t.cos() + v * t.sin()) * radius
            })
            .collect::<Vec<_>>()
    };
    mesh.push_closed_loft(&[ring(a), ring(b)], material);
}

/// Appends a closed ellipsoid with semi-axes `radii` centred at `centre`, its surface displaced
/// radially by up to `bumpiness` (fraction of the radius) with a smooth pattern from `seed`.
pub fn push_ellipsoid(
    mesh: &mut TriMesh,
    centre: Point3<f32>,
    radii: Vector3<f32>,
    bumpiness: f32,
    seed: u64,
    material: Material,
) {
    const RINGS: usize = 8;
    const SEGMENTS: usize = 12;
    let phase: Vec<f32> = (0..6)
        .map(|k| (crate::car::splitmix64(seed ^ k) % 10_000) as f32 / 10_000.0 * TAU)
        .collect();
    let bump = |th: f32, ph: f32| {
        1.0 + bumpiness
            * ((3.0 * ph + phase[0]).sin() * (2.0 * th + phase[1]).sin() * 0.5
                + (5.0 * ph + phase[2]).sin() * (3.0 * th + phase[3]).cos() * 0.3
                + (7.0 * ph + phase[4]).cos() * (5.0 * th + phase[5]).sin() * 0.2)
    };
    // Rings from near the bottom pole to near the top pole; the loft caps close the poles.
    let rings: Vec<Vec<Point3<f32>>> = (1..RINGS)
        .map(|i| {
            let th = PI * i as f32 / RINGS as f32; // polar angle from the bottom
            (0..SEGMENTS)
                .map(|k| {
                    let ph = TAU * k as f32 / SEGMENTS as f32;
                    let r = bump(th, ph);
                    centre
                        + Vector3::new(
                            radii.x * th.sin() * ph.cos() * r,
                            -radii.y * th.cos() * r,
                            radii.z * th.sin() * ph.sin() * r,
                        )
                })
                .collect()
        })
        .collect();
    mesh.push_closed_loft(&rings, material);
}

/// A van: a one-box [`BodyStyle::Van`] body at KITTI `Van` dimensions.
pub fn van_mesh(rng: &mut StdRng) -> TriMesh {
    let mut p = CarParams::sample(BodyStyle::Van, rng);
    p.height_m = gauss(rng, 2.21, 0.25, 1.8, 2.8);
    p.width_m = gauss(rng, 1.90, 0.10, 1.7, 2.15);
    p.length_m = gauss(rng, 5.08, 0.45, 4.2, 6.0);
    p.wheel_radius_m = rng.random_range(0.32..0.38);
    p.ground_clearance_m = rng.random_range(0.16..0.24);
    p.hood_length = rng.random_range(0.08..0.16);
    p.trunk_length = 0.0;
    car_mesh(&p.sanitised())
}

/// A person (legs, torso, arms, head) in a walking pose; `+z` is the walking direction.
pub fn pedestrian_mesh(rng: &mut StdRng) -> TriMesh {
    let h = gauss(rng, 1.76, 0.11, 1.45, 2.0);
    let shoulder = gauss(rng, 0.46, 0.05, 0.36, 0.58) / 2.0;
    let stride = rng.random_range(0.0..0.35f32);
    let mut m = TriMesh::new();
    let leg_len = 0.47 * h;
    let hip = Point3::new(0.0, leg_len, 0.0);
    for (side, dir) in [(-1.0f32, 1.0f32), (1.0, -1.0)] {
        let x = side * 0.1;
        let foot = Point3::new(x, 0.05, dir * stride);
        push_cylinder(&mut m, foot, Point3::new(x, hip.y, 0.0), 0.075, 6, Material::Body);
        push_box(
            &mut m,
            Point3::new(x - 0.05, 0.0, dir * stride - 0.06),
            Point3::new(x + 0.05, 0.07, dir * stride + 0.2),
            Material::Wheel,
        );
    }
    let torso_top = 0.82 * h;
    push_box(
        &mut m,
        Point3::new(-shoulder, leg_len - 0.05, -0.12),
        Point3::new(shoulder, torso_top, 0.12),
        Material::Body,
    );
    for (side, dir) in [(-1.0f32, -1.0f32), (1.0, 1.0)] {
        let s = Point3::new(side * (shoulder + 0.05), torso_top - 0.05, 0.0);
        let hand = Point3::new(side * (shoulder + 0.08), leg_len, dir * stride * 0.6);
        push_cylinder(&mut m, s, hand, 0.045, 6, Material::Body);
    }
    let head_r = 0.09 * h / 1.76 + 0.01;
    push_ellipsoid(
        &mut m,
        Point3::new(0.0, h - head_r * 1.15, 0.0),
        Vector3::new(head_r, head_r * 1.15, head_r * 1.05),
        0.0,
        0,
        Material::Light,
    );
    m.recentre_bottom();
    m
}

/// A cyclist: a bicycle (two wheels, frame) and a rider leaning forward; `+z` is forward.
pub fn cyclist_mesh(rng: &mut StdRng) -> TriMesh {
    let l = gauss(rng, 1.76, 0.12, 1.5, 2.0);
    let wheel_r = (l / 2.0 - 0.55).clamp(0.3, 0.36);
    let axle = l / 2.0 - wheel_r;
    let mut m = TriMesh::new();
    for z in [-axle, axle] {
        push_cylinder(
            &mut m,
            Point3::new(-0.02, wheel_r, z),
            Point3::new(0.02, wheel_r, z),
            wheel_r,
            16,
            Material::Wheel,
        );
    }
    let seat = Point3::new(0.0, wheel_r + 0.55, -0.15 * l);
    let bar = Point3::new(0.0, wheel_r + 0.65, 0.28 * l);
    for (a, b) in [
        (Point3::new(0.0, wheel_r, -axle), seat),
        (seat, Point3::new(0.0, wheel_r, 0.0)),
        (Point3::new(0.0, wheel_r, 0.0), bar),
        (bar, Point3::new(0.0, wheel_r, axle)),
        (seat, bar),
    ] {
        push_cylinder(&mut m, a, b, 0.025, 6, Material::Body);
    }
    // Rider: legs to the pedals, torso leaning to the bar, head.
    let h = gauss(rng, 1.74, 0.08, 1.55, 1.95);
    for x in [-0.1f32, 0.1] {
        push_cylinder(
            &mut m,
            Point3::new(x, seat.y + 0.05, seat.z),
            Point3::new(x, wheel_r + 0.05, 0.0),
            0.07,
            6,
            Material::Body,
        );
    }
    let shoulder = Point3::new(0.0, h - 0.3, 0.05 * l);
    push_cylinder(
        &mut m,
        Point3::new(0.0, seat.y + 0.05, seat.z),
        shoulder,
        0.16,
        8,
        Material::Body,
    );
    for x in [-0.18f32, 0.18] {
        push_cylinder(
            &mut m,
            Point3::new(x, shoulder.y, shoulder.z),
            Point3::new(x * 1.4, bar.y, bar.z),
            0.04,
            6,
            Material::Body,
        );
    }
    push_ellipsoid(
        &mut m,
        Point3::new(0.0, h - 0.12, shoulder.z + 0.08),
        Vector3::new(0.11, 0.12, 0.12),
        0.0,
        0,
        Material::Light,
    );
    m.recentre_bottom();
    m
}

/// A building block `width_m` along its facade (x), `depth_m` deep (z, facade at +z), `height_m`
/// tall, with storeys of windows on the facade.
pub fn building_mesh(width_m: f32, depth_m: f32, height_m: f32, rng: &mut StdRng) -> TriMesh {
    let mut m = TriMesh::new();
    push_box(
        &mut m,
        Point3::new(-width_m / 2.0, 0.0, -depth_m / 2.0),
        Point3::new(width_m / 2.0, height_m, depth_m / 2.0),
        Material::Body,
    );
    let storey = rng.random_range(2.8..3.4f32);
    let bay = rng.random_range(2.2..3.5f32);
    let win_w = bay * rng.random_range(0.35..0.6f32);
    let win_h = storey * rng.random_range(0.4..0.55f32);
    let ground_floor = rng.random_range(0.5..1.2f32);
    let bays = ((width_m - 1.0) / bay).floor().max(0.0) as usize;
    let x0 = -(bays as f32) * bay / 2.0;
    let mut y = ground_floor;
    while y + win_h < height_m - 0.6 {
        for b in 0..bays {
            let xc = x0 + (b as f32 + 0.5) * bay;
            push_box(
                &mut m,
                Point3::new(xc - win_w / 2.0, y, depth_m / 2.0),
                Point3::new(xc + win_w / 2.0, y + win_h, depth_m / 2.0 + 0.03),
                Material::Window,
            );
        }
        y += storey;
    }
    m
}

/// A wall or fence `length_m` long (x), `height_m` tall and `thickness_m` thick (z).
pub fn wall_mesh(length_m: f32, height_m: f32, thickness_m: f32) -> TriMesh {
    let mut m = TriMesh::new();
    push_box(
        &mut m,
        Point3::new(-length_m / 2.0, 0.0, -thickness_m / 2.0),
        Point3::new(length_m / 2.0, height_m, thickness_m / 2.0),
        Material::Body,
    );
    m
}

/// A pole (street light or sign post), sometimes with a sign or lamp head.
pub fn pole_mesh(rng: &mut StdRng) -> TriMesh {
    let h = rng.random_range(2.8..8.0f32);
    let r = rng.random_range(0.05..0.12f32);
    let mut m = TriMesh::new();
    push_cylinder(
        &mut m,
        Point3::origin(),
        Point3::new(0.0, h, 0.0),
        r,
        8,
        Material::Body,
    );
    if h < 4.0 {
        let s = rng.random_range(0.3..0.45f32);
        push_box(
            &mut m,
            Point3::new(-s, h - 2.0 * s, r),
            Point3::new(s, h, r + 0.03),
            Material::Light,
        );
    } else {
        let arm = rng.random_range(0.8..2.0f32);
        push_box(
            &mut m,
            Point3::new(-0.05, h - 0.1, -0.05),
            Point3::new(0.05, h, arm),
            Material::Body,
        );
        push_box(
            &mut m,
            Point3::new(-0.15, h - 0.25, arm - 0.5),
            Point3::new(0.15, h - 0.1, arm),
            Material::Light,
        );
    }
    m.recentre_bottom();
    m
}

/// A tree: a trunk (`Material::Wheel`, bark) and a bumpy crown (`Material::Body`, foliage).
pub fn tree_mesh(rng: &mut StdRng, seed: u64) -> TriMesh {
    let trunk_h = rng.random_range(1.8..3.5f32);
    let crown_r = rng.random_range(1.2..3.0f32);
    let mut m = TriMesh::new();
    push_cylinder(
        &mut m,
        Point3::origin(),
        Point3::new(0.0, trunk_h + crown_r * 0.5, 0.0),
        rng.random_range(0.1..0.25f32),
        8,
        Material::Wheel,
    );
    push_ellipsoid(
        &mut m,
        Point3::new(0.0, trunk_h + crown_r * 0.9, 0.0),
        Vector3::new(crown_r, crown_r * rng.random_range(0.9..1.3f32), crown_r),
        0.25,
        seed,
        Material::Body,
    );
    m.recentre_bottom();
    m
}

/// A bush or hedge segment `length_m` long (z).
pub fn bush_mesh(length_m: f32, rng: &mut StdRng, seed: u64) -> TriMesh {
    let h = rng.random_range(0.6..1.8f32);
    let w = rng.random_range(0.6..1.5f32);
    let mut m = TriMesh::new();
    push_ellipsoid(
        &mut m,
        Point3::new(0.0, h / 2.0, 0.0),
        Vector3::new(w / 2.0, h / 2.0, length_m / 2.0),
        0.2,
        seed,
        Material::Body,
    );
    m.recentre_bottom();
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    #[test]
    fn every_shape_is_closed_outward_and_stands_on_the_ground() {
        let shapes = vec![
            ("van", van_mesh(&mut rng(1))),
            ("pedestrian", pedestrian_mesh(&mut rng(2))),
            ("cyclist", cyclist_mesh(&mut rng(3))),
            ("building", building_mesh(12.0, 8.0, 10.0, &mut rng(4))),
            ("wall", wall_mesh(6.0, 1.5, 0.3)),
            ("pole", pole_mesh(&mut rng(5))),
            ("tree", tree_mesh(&mut rng(6), 6)),
            ("bush", bush_mesh(3.0, &mut rng(7), 7)),
        ];
        for (name, m) in shapes {
            assert!(m.is_watertight(), "{name} not watertight");
            assert!(m.signed_volume() > 0.0, "{name} inside out");
            let (lo, _) = m.bounds().unwrap();
            assert!(lo.y.abs() < 1e-4, "{name} floats: {}", lo.y);
        }
    }

    #[test]
    fn people_and_vans_have_kitti_like_sizes() {
        let n = 200;
        let mean = |f: &dyn Fn(u64) -> TriMesh| {
            let d: Vec<_> = (0..n).map(|s| f(s).dims()).collect();
            [
                d.iter().map(|d| d.height_m).sum::<f32>() / n as f32,
                d.iter().map(|d| d.width_m).sum::<f32>() / n as f32,
                d.iter().map(|d| d.length_m).sum::<f32>() / n as f32,
            ]
        };
        let van = mean(&|s| van_mesh(&mut rng(s)));
        assert!(
            (van[0] - 2.21).abs() < 0.1 && (van[1] - 1.9).abs() < 0.1 && (van[2] - 5.08).abs() < 0.2,
            "{van:?}"
        );
        let ped = mean(&|s| pedestrian_mesh(&mut rng(s)));
        assert!(
            (ped[0] - 1.76).abs() < 0.05 && ped[1] > 0.45 && ped[1] < 0.8 && ped[2] < 0.9,
            "{ped:?}"
        );
        let cyc = mean(&|s| cyclist_mesh(&mut rng(s)));
        assert!(
            (cyc[0] - 1.74).abs() < 0.1 && cyc[1] < 0.8 && (cyc[2] - 1.76).abs() < 0.15,
            "{cyc:?}"
        );
    }

    #[test]
    fn shapes_are_deterministic() {
        assert_eq!(tree_mesh(&mut rng(9), 9), tree_mesh(&mut rng(9), 9));
        assert_ne!(tree_mesh(&mut rng(9), 9), tree_mesh(&mut rng(10), 10));
    }
}
