//! Procedural car shapes: body styles, their continuous parameters, sampling, and mesh construction.
//!
//! The body is a loft along z of closed cross-sections (superellipses whose squareness follows
//! `rounding`), bottom at the ground clearance, top following a side profile (bumper → bonnet →
//! windscreen → roof → rear window → boot, tailgate or bed), narrowing towards the ends and in the
//! greenhouse (tumblehome). Four wheels are separate closed cylinders. The finished mesh is scaled per
//! axis (by a few per cent at most) so that its bounding box is exactly the requested size.

use crate::mesh::{Material, TriMesh};
use nalgebra::{Point3, Vector3};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use std::f32::consts::PI;

/// A car body style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BodyStyle {
    /// Three-box saloon: bonnet, cabin, boot.
    Sedan,
    /// Short two-box car with a steep hatch.
    Hatchback,
    /// Estate: long roof and an upright tailgate.
    Wagon,
    /// Low car with a long bonnet and a fastback.
    Coupe,
    /// Tall two-box car with high ground clearance.
    Suv,
    /// One-box minivan: short bonnet, long tall roof.
    Van,
    /// Cab plus an open bed (modelled as a closed box at rim height).
    Pickup,
}

impl BodyStyle {
    /// Every style.
    pub const ALL: [BodyStyle; 7] = [
        BodyStyle::Sedan,
        BodyStyle::Hatchback,
        BodyStyle::Wagon,
        BodyStyle::Coupe,
        BodyStyle::Suv,
        BodyStyle::Van,
        BodyStyle::Pickup,
    ];

    /// Lower-case name ("sedan", …).
    pub fn name(self) -> &'static str {
        match self {
            BodyStyle::Sedan => "sedan",
            BodyStyle::Hatchback => "hatchback",
            BodyStyle::Wagon => "wagon",
            BodyStyle::Coupe => "coupe",
            BodyStyle::Suv => "suv",
            BodyStyle::Van => "van",
            BodyStyle::Pickup => "pickup",
        }
    }

    /// The style's share of a procedural library (the shares sum to 1).
    pub fn library_share(self) -> f64 {
        spec(self).share / BodyStyle::ALL.iter().map(|&s| spec(s).share).sum::<f64>()
    }
}

/// The continuous parameters of one procedural car. Fractions are of the car's length or height as
/// named; angles are in radians above the horizontal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CarParams {
    /// Body style.
    pub style: BodyStyle,
    /// Bounding-box extent along z.
    pub length_m: f32,
    /// Bounding-box extent along x (mirrors excluded).
    pub width_m: f32,
    /// Bounding-box extent along y, ground to roof.
    pub height_m: f32,
    /// Front end to the windscreen base, as a fraction of the length.
    pub hood_length: f32,
    /// Rear end to the base of the rear window (boot lid; bed for a pickup), fraction of the length.
    pub trunk_length: f32,
    /// Belt line (bottom edge of the side windows), fraction of the height. Cabin profile.
    pub belt_height: f32,
    /// Greenhouse narrowing: fraction of the half-width lost between belt line and roof. Cabin profile.
    pub tumblehome: f32,
    /// Top of the front bumper, fraction of the height.
    pub nose_height: f32,
    /// Windscreen angle above the horizontal.
    pub windscreen_slope_rad: f32,
    /// Roof drop towards the rear, angle below the horizontal.
    pub roof_slope_rad: f32,
    /// Rear window / hatch / cab back angle above the horizontal.
    pub rear_slope_rad: f32,
    /// Front end to front axle, fraction of the length.
    pub front_overhang: f32,
    /// Rear end to rear axle, fraction of the length.
    pub rear_overhang: f32,
    /// Tyre outer radius.
    pub wheel_radius_m: f32,
    /// Tyre width.
    pub wheel_width_m: f32,
    /// Height of the body's underside above the ground.
    pub ground_clearance_m: f32,
    /// 0 = boxy sections and sharp profile corners, 1 = round.
    pub rounding: f32,
}

/// Sampling ranges of one style. Dimension offsets are in units of the library-wide standard deviation.
struct StyleSpec {
    share: f64,
    /// Offsets of (height, width, length) from the KITTI mean, in KITTI standard deviations.
    dim_offset: [f64; 3],
    hood: (f32, f32),
    trunk: (f32, f32),
    belt: (f32, f32),
    tumblehome: (f32, f32),
    nose: (f32, f32),
    windscreen_deg: (f32, f32),
    roof_deg: (f32, f32),
    rear_deg: (f32, f32),
    front_overhang: (f32, f32),
    rear_overhang: (f32, f32),
    wheel_radius_m: (f32, f32),
    wheel_width_m: (f32, f32),
    clearance_m: (f32, f32),
    rounding: (f32, f32),
}

/// KITTI `Car` dimensions (height, width, length): mean and standard deviation in metres.
pub const KITTI_CAR_MEAN_HWL: [f64; 3] = [1.53, 1.63, 3.88];
/// See [`KITTI_CAR_MEAN_HWL`].
pub const KITTI_CAR_STD_HWL: [f64; 3] = [0.14, 0.10, 0.43];

fn spec(style: BodyStyle) -> &'static StyleSpec {
    match style {
        BodyStyle::Sedan => &SEDAN,
        BodyStyle::Hatchback => &HATCHBACK,
        BodyStyle::Wagon => &WAGON,
        BodyStyle::Coupe => &COUPE,
        BodyStyle::Suv => &SUV,
        BodyStyle::Van => &VAN,
        BodyStyle::Pickup => &PICKUP,
    }
}

const SEDAN: StyleSpec = StyleSpec {
    share: 0.27,
    dim_offset: [-0.5, 0.0, 0.3],
    hood: (0.24, 0.29),
    trunk: (0.14, 0.19),
    belt: (0.56, 0.63),
    tumblehome: (0.15, 0.25),
    nose: (0.40, 0.48),
    windscreen_deg: (30.0, 38.0),
    roof_deg: (0.0, 3.0),
    rear_deg: (28.0, 38.0),
    front_overhang: (0.19, 0.22),
    rear_overhang: (0.22, 0.26),
    wheel_radius_m: (0.29, 0.33),
    wheel_width_m: (0.18, 0.23),
    clearance_m: (0.12, 0.17),
    rounding: (0.3, 0.8),
};
const HATCHBACK: StyleSpec = StyleSpec {
    share: 0.25,
    dim_offset: [-0.3, -0.8, -1.3],
    hood: (0.21, 0.27),
    trunk: (0.02, 0.05),
    belt: (0.55, 0.62),
    tumblehome: (0.15, 0.25),
    nose: (0.42, 0.50),
    windscreen_deg: (28.0, 36.0),
    roof_deg: (1.0, 4.0),
    rear_deg: (55.0, 72.0),
    front_overhang: (0.18, 0.22),
    rear_overhang: (0.17, 0.21),
    wheel_radius_m: (0.28, 0.32),
    wheel_width_m: (0.17, 0.21),
    clearance_m: (0.12, 0.16),
    rounding: (0.4, 0.9),
};
const WAGON: StyleSpec = StyleSpec {
    share: 0.15,
    dim_offset: [-0.2, 0.1, 0.4],
    hood: (0.23, 0.28),
    trunk: (0.02, 0.04),
    belt: (0.55, 0.62),
    tumblehome: (0.12, 0.22),
    nose: (0.40, 0.48),
    windscreen_deg: (28.0, 35.0),
    roof_deg: (0.0, 2.0),
    rear_deg: (68.0, 82.0),
    front_overhang: (0.19, 0.22),
    rear_overhang: (0.22, 0.26),
    wheel_radius_m: (0.29, 0.33),
    wheel_width_m: (0.18, 0.23),
    clearance_m: (0.12, 0.17),
    rounding: (0.3, 0.8),
};
const COUPE: StyleSpec = StyleSpec {
    share: 0.05,
    dim_offset: [-1.2, 0.2, 0.0],
    hood: (0.28, 0.33),
    trunk: (0.10, 0.14),
    belt: (0.58, 0.65),
    tumblehome: (0.2, 0.3),
    nose: (0.36, 0.44),
    windscreen_deg: (24.0, 30.0),
    roof_deg: (2.0, 6.0),
    rear_deg: (18.0, 26.0),
    front_overhang: (0.18, 0.21),
    rear_overhang: (0.20, 0.24),
    wheel_radius_m: (0.30, 0.34),
    wheel_width_m: (0.20, 0.25),
    clearance_m: (0.10, 0.14),
    rounding: (0.5, 1.0),
};
const SUV: StyleSpec = StyleSpec {
    share: 0.13,
    dim_offset: [1.1, 0.8, 0.5],
    hood: (0.22, 0.28),
    trunk: (0.02, 0.05),
    belt: (0.55, 0.62),
    tumblehome: (0.10, 0.18),
    nose: (0.50, 0.58),
    windscreen_deg: (28.0, 36.0),
    roof_deg: (0.0, 2.0),
    rear_deg: (70.0, 85.0),
    front_overhang: (0.17, 0.21),
    rear_overhang: (0.18, 0.22),
    wheel_radius_m: (0.33, 0.38),
    wheel_width_m: (0.21, 0.26),
    clearance_m: (0.18, 0.24),
    rounding: (0.2, 0.7),
};
const VAN: StyleSpec = StyleSpec {
    share: 0.10,
    dim_offset: [1.3, 0.6, 0.7],
    hood: (0.10, 0.16),
    trunk: (0.01, 0.03),
    belt: (0.48, 0.55),
    tumblehome: (0.06, 0.14),
    nose: (0.45, 0.55),
    windscreen_deg: (32.0, 42.0),
    roof_deg: (0.0, 1.0),
    rear_deg: (78.0, 88.0),
    front_overhang: (0.15, 0.19),
    rear_overhang: (0.17, 0.21),
    wheel_radius_m: (0.30, 0.34),
    wheel_width_m: (0.19, 0.23),
    clearance_m: (0.13, 0.18),
    rounding: (0.2, 0.6),
};
const PICKUP: StyleSpec = StyleSpec {
    share: 0.05,
    dim_offset: [0.9, 0.6, 1.5],
    hood: (0.25, 0.30),
    trunk: (0.30, 0.36),
    belt: (0.55, 0.62),
    tumblehome: (0.08, 0.15),
    nose: (0.52, 0.60),
    windscreen_deg: (28.0, 35.0),
    roof_deg: (0.0, 1.0),
    rear_deg: (82.0, 89.0),
    front_overhang: (0.16, 0.20),
    rear_overhang: (0.18, 0.22),
    wheel_radius_m: (0.33, 0.38),
    wheel_width_m: (0.21, 0.26),
    clearance_m: (0.18, 0.24),
    rounding: (0.1, 0.5),
};

/// Per style: offsets (height, width, length) centred so that the share-weighted mean is zero, and the
/// within-style standard deviation (in KITTI std units) that makes the mixture's variance exactly 1.
fn dim_model() -> ([[f64; 3]; 7], [f64; 3]) {
    let total: f64 = BodyStyle::ALL.iter().map(|&s| spec(s).share).sum();
    let mut offsets = [[0.0; 3]; 7];
    let mut within = [0.0; 3];
    for d in 0..3 {
        let mean: f64 = BodyStyle::ALL
            .iter()
            .map(|&s| spec(s).share / total * spec(s).dim_offset[d])
            .sum();
        let mut between = 0.0;
        for (i, &s) in BodyStyle::ALL.iter().enumerate() {
            offsets[i][d] = spec(s).dim_offset[d] - mean;
            between += spec(s).share / total * offsets[i][d].powi(2);
        }
        // Truncating the within-style normal at ±3 removes 2.7 % of its variance; give it back.
        within[d] = ((1.0 - between).max(0.01) / TRUNCATED_VARIANCE).sqrt();
    }
    (offsets, within)
}

/// Variance of a standard normal truncated to ±3.
const TRUNCATED_VARIANCE: f64 = 0.9733;

fn normal(rng: &mut StdRng) -> f64 {
    rng.sample(rand_distr::StandardNormal)
}

fn uniform(rng: &mut StdRng, (lo, hi): (f32, f32)) -> f32 {
    if hi > lo { rng.random_range(lo..hi) } else { lo }
}

impl CarParams {
    /// Samples a car of `style`: dimensions from the style's share of the KITTI distribution, the
    /// other parameters uniformly from the style's ranges.
    pub fn sample(style: BodyStyle, rng: &mut StdRng) -> CarParams {
        let s = spec(style);
        let (offsets, within) = dim_model();
        let idx = BodyStyle::ALL.iter().position(|&x| x == style).unwrap_or(0);
        // Correlated within-style sizes: one common "size" factor drives length, width and height.
        let g = normal(rng);
        let e1 = normal(rng);
        let e2 = normal(rng);
        let z = [
            0.3 * g + (1.0f64 - 0.09).sqrt() * e2,
            0.5 * g + (1.0f64 - 0.25).sqrt() * e1,
            g,
        ];
        let dim = |d: usize| {
            let zd = z[d].clamp(-3.0, 3.0);
            (KITTI_CAR_MEAN_HWL[d] + KITTI_CAR_STD_HWL[d] * (offsets[idx][d] + within[d] * zd)) as f32
        };
        let deg = |r: (f32, f32)| (r.0.to_radians(), r.1.to_radians());
        CarParams {
            style,
            height_m: dim(0),
            width_m: dim(1),
            length_m: dim(2),
            hood_length: uniform(rng, s.hood),
            trunk_length: uniform(rng, s.trunk),
            belt_height: uniform(rng, s.belt),
            tumblehome: uniform(rng, s.tumblehome),
            nose_height: uniform(rng, s.nose),
            windscreen_slope_rad: uniform(rng, deg(s.windscreen_deg)),
            roof_slope_rad: uniform(rng, deg(s.roof_deg)),
            rear_slope_rad: uniform(rng, deg(s.rear_deg)),
            front_overhang: uniform(rng, s.front_overhang),
            rear_overhang: uniform(rng, s.rear_overhang),
            wheel_radius_m: uniform(rng, s.wheel_radius_m),
            wheel_width_m: uniform(rng, s.wheel_width_m),
            ground_clearance_m: uniform(rng, s.clearance_m),
            rounding: uniform(rng, s.rounding),
        }
    }

    /// Samples a style by its library share, then a car of that style.
    pub fn sample_any(rng: &mut StdRng) -> CarParams {
        let mut u: f64 = rng.random();
        let mut style = BodyStyle::Sedan;
        for s in BodyStyle::ALL {
            style = s;
            u -= s.library_share();
            if u < 0.0 {
                break;
            }
        }
        CarParams::sample(style, rng)
    }

    /// Shape `index` of the procedural library with seed `seed`: the same whatever else is generated.
    pub fn procedural(seed: u64, index: u64) -> CarParams {
        let mut rng = StdRng::seed_from_u64(splitmix64(seed ^ splitmix64(index)));
        CarParams::sample_any(&mut rng)
    }

    /// A copy with every parameter clamped to a range the mesh builder handles.
    pub fn sanitised(&self) -> CarParams {
        let c = |x: f32, lo: f32, hi: f32| if x.is_finite() { x.clamp(lo, hi) } else { lo };
        let height_m = c(self.height_m, 0.8, 3.5);
        let width_m = c(self.width_m, 1.0, 3.0);
        let length_m = c(self.length_m, 2.0, 8.0);
        let wheel_radius_m = c(self.wheel_radius_m, 0.1, 0.3 * height_m.min(length_m / 3.0));
        CarParams {
            style: self.style,
            length_m,
            width_m,
            height_m,
            hood_length: c(self.hood_length, 0.02, 0.5),
            trunk_length: c(self.trunk_length, 0.0, 0.4),
            belt_height: c(self.belt_height, 0.3, 0.8),
            tumblehome: c(self.tumblehome, 0.0, 0.45),
            nose_height: c(self.nose_height, 0.2, 0.7),
            windscreen_slope_rad: c(self.windscreen_slope_rad, 0.2, 1.55),
            roof_slope_rad: c(self.roof_slope_rad, 0.0, 0.3),
            rear_slope_rad: c(self.rear_slope_rad, 0.2, 1.56),
            front_overhang: c(self.front_overhang, wheel_radius_m / length_m + 0.02, 0.35),
            rear_overhang: c(self.rear_overhang, wheel_radius_m / length_m + 0.02, 0.35),
            wheel_radius_m,
            wheel_width_m: c(self.wheel_width_m, 0.05, 0.3 * width_m),
            ground_clearance_m: c(self.ground_clearance_m, 0.02, 0.3 * height_m),
            rounding: c(self.rounding, 0.0, 1.0),
        }
    }
}

/// SplitMix64 finaliser: a good 64-bit mix for deriving seeds.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The side profile and landmarks of one car, z from rear (−L/2) to front (+L/2).
struct Profile {
    length_m: f32,
    width_m: f32,
    height_m: f32,
    z_cowl: f32,
    z_roof_front: f32,
    z_roof_rear: f32,
    z_deck: f32,
    y_belt: f32,
    y_nose: f32,
    y_tail: f32,
    clearance_m: f32,
    tumblehome: f32,
    rounding: f32,
    /// Top of the body: (z, y) points in increasing z.
    top: Vec<(f32, f32)>,
}

impl Profile {
    fn new(p: &CarParams) -> Profile {
        let (l, h) = (p.length_m, p.height_m);
        let (zf, zr) = (l / 2.0, -l / 2.0);
        let y_belt = p.belt_height * h;
        let y_nose = (p.nose_height * h).max(p.ground_clearance_m + 0.1);
        let z_cowl = zf - p.hood_length * l;
        let y_cowl = (y_belt + 0.02 * h).min(0.95 * h);
        let min_roof = 0.08 * l;
        let z_roof_front = (z_cowl - (h - y_cowl) / p.windscreen_slope_rad.tan()).max(zr + 0.3 * l);
        let y_deck = match p.style {
            BodyStyle::Sedan | BodyStyle::Coupe => y_belt + 0.04 * h,
            _ => y_belt,
        };
        let z_deck = (zr + p.trunk_length * l).min(z_roof_front - min_roof - 0.02 * l);
        let (t1, t2) = (p.roof_slope_rad.tan(), p.rear_slope_rad.tan());
        // Roof line y = h − (z_rf − z)·t1 meets the rear line y = y_deck + (z − z_deck)·t2.
        let z_meet = if t2 - t1 > 1e-3 {
            (h - z_roof_front * t1 - y_deck + z_deck * t2) / (t2 - t1)
        } else {
            z_deck
        };
        let z_roof_rear = z_meet.min(z_roof_front - min_roof).max(z_deck + 0.01 * l);
        let y_roof_rear = (h - (z_roof_front - z_roof_rear) * t1).max(y_deck + 0.05 * h);
        let y_tail = match p.style {
            BodyStyle::Sedan | BodyStyle::Coupe => y_deck - 0.05 * h,
            BodyStyle::Pickup => y_deck,
            _ => y_deck - 0.03 * h,
        };
        let y_hood_front = (y_nose + 0.05 * h).min(y_cowl);
        let top = vec![
            (zr, y_tail),
            (z_deck, y_deck),
            (z_roof_rear, y_roof_rear),
            (z_roof_front, h),
            (z_cowl, y_cowl),
            (zf - 0.04 * l, y_hood_front),
            (zf, y_nose),
        ];
        Profile {
            length_m: l,
            width_m: p.width_m,
            height_m: h,
            z_cowl,
            z_roof_front,
            z_roof_rear,
            z_deck,
            y_belt,
            y_nose,
            y_tail,
            clearance_m: p.ground_clearance_m,
            tumblehome: p.tumblehome,
            rounding: p.rounding,
            top,
        }
    }

    fn top_linear(&self, z: f32) -> f32 {
        let z = z.clamp(-self.length_m / 2.0, self.length_m / 2.0);
        for w in self.top.windows(2) {
            let ((z0, y0), (z1, y1)) = (w[0], w[1]);
            if z <= z1 {
                let t = if z1 > z0 { (z - z0) / (z1 - z0) } else { 1.0 };
                return y0 + t.clamp(0.0, 1.0) * (y1 - y0);
            }
        }
        self.top.last().map_or(self.height_m, |&(_, y)| y)
    }

    /// Top of the body at `z`: the polyline, softened by `rounding`.
    fn top_y(&self, z: f32) -> f32 {
        let step = self.rounding * 0.012 * self.length_m;
        let sum: f32 = (-2..=2).map(|k| self.top_linear(z + k as f32 * step)).sum();
        (sum / 5.0).max(self.bottom_y(z) + 0.1)
    }

    /// 0 in the middle of the car, rising to 1 at either end over `zone` (fraction of length).
    fn end_ramp(&self, z: f32, zone: f32) -> f32 {
        let e = zone * self.length_m;
        ((z.abs() - (self.length_m / 2.0 - e)) / e).clamp(0.0, 1.0)
    }

    fn bottom_y(&self, z: f32) -> f32 {
        let t = self.end_ramp(z, 0.08);
        self.clearance_m + 0.06 * self.height_m * t * t
    }

    fn half_width(&self, z: f32) -> f32 {
        let t = self.end_ramp(z, 0.04 + 0.08 * self.rounding);
        self.width_m / 2.0 * (1.0 - 0.25 * (1.0 - (1.0 - t * t).sqrt()))
    }

    /// Greenhouse narrowing factor at height `y`.
    fn tumble(&self, y: f32) -> f32 {
        let t = ((y - self.y_belt) / (self.height_m - self.y_belt).max(1e-3)).clamp(0.0, 1.0);
        1.0 - self.tumblehome * t
    }

    fn body_material(&self, c: Point3<f32>, n: Vector3<f32>) -> Material {
        let (l, hw) = (self.length_m, self.width_m / 2.0);
        if c.z > l / 2.0 - 0.04 * l
            && c.x.abs() > 0.45 * hw
            && c.y > self.y_nose - 0.16
            && c.y < self.y_nose - 0.03
        {
            return Material::Light;
        }
        if c.z < -l / 2.0 + 0.04 * l
            && c.x.abs() > 0.55 * hw
            && c.y > self.y_tail - 0.16
            && c.y < self.y_tail - 0.04
        {
            return Material::Light;
        }
        if c.y < self.y_belt + 0.03 {
            return Material::Body;
        }
        let windscreen = c.z > self.z_roof_front && c.z < self.z_cowl - 0.03;
        let rear_glass = c.z > self.z_deck + 0.03 && c.z < self.z_roof_rear;
        let mid = (self.z_roof_front + self.z_roof_rear) / 2.0;
        let side = c.z >= self.z_roof_rear
            && c.z <= self.z_roof_front
            && n.y.abs() < 0.5
            && c.y < self.top_y(c.z) - 0.06
            && (c.z - mid).abs() > 0.05;
        if windscreen || rear_glass || side {
            Material::Window
        } else {
            Material::Body
        }
    }
}

/// Stations along the body (cross-sections of the loft).
const STATIONS: usize = 60;
/// Points per cross-section (a multiple of 4, so that the extremes are vertices).
const SECTION_POINTS: usize = 40;
/// Points around a wheel.
const WHEEL_POINTS: usize = 28;

fn spow(x: f32, e: f32) -> f32 {
    x.signum() * x.abs().powf(e)
}

/// The mesh of one car in the model frame, exactly `length_m × width_m × height_m` (after
/// [`CarParams::sanitised`]), wheels touching y = 0.
pub fn car_mesh(params: &CarParams) -> TriMesh {
    let p = params.sanitised();
    let mut mesh = car_mesh_unscaled(&p);
    mesh.recentre_bottom();
    let d = mesh.dims();
    let scale = Vector3::new(
        p.width_m / d.width_m.max(1e-6),
        p.height_m / d.height_m.max(1e-6),
        p.length_m / d.length_m.max(1e-6),
    );
    mesh.scale_axes(scale);
    mesh.recentre_bottom();
    mesh
}

fn car_mesh_unscaled(p: &CarParams) -> TriMesh {
    let prof = Profile::new(p);
    let exponent = 2.0 / (10.0 - 6.5 * p.rounding);
    let unit: Vec<(f32, f32)> = (0..SECTION_POINTS)
        .map(|k| {
            let a = 2.0 * PI * k as f32 / SECTION_POINTS as f32;
            (spow(a.cos(), exponent), spow(a.sin(), exponent))
        })
        .collect();
    let rings: Vec<Vec<Point3<f32>>> = (0..STATIONS)
        .map(|i| {
            let z = -p.length_m / 2.0 + p.length_m * i as f32 / (STATIONS - 1) as f32;
            let (bot, top) = (prof.bottom_y(z), prof.top_y(z));
            let (yc, b) = ((bot + top) / 2.0, (top - bot) / 2.0);
            let a = prof.half_width(z);
            unit.iter()
                .map(|&(ux, uy)| {
                    let y = yc + b * uy;
                    Point3::new(a * ux * prof.tumble(y), y, z)
                })
                .collect()
        })
        .collect();
    let mut mesh = TriMesh::new();
    let body = mesh.push_closed_loft(&rings, Material::Body);
    // The loft's side triangles come in quad pairs; classify each quad as a whole so that window
    // edges follow the quad grid instead of zig-zagging. The end caps follow.
    let quads = (STATIONS - 1) * SECTION_POINTS;
    for q in 0..quads {
        let (t0, t1) = (body.start + 2 * q, body.start + 2 * q + 1);
        let c = Point3::from((mesh.centroid(t0).coords + mesh.centroid(t1).coords) / 2.0);
        let n = (mesh.normal(t0) + mesh.normal(t1))
            .try_normalize(1e-12)
            .unwrap_or_else(Vector3::zeros);
        let m = prof.body_material(c, n);
        mesh.materials[t0] = m;
        mesh.materials[t1] = m;
    }
    for t in body.start + 2 * quads..body.end {
        mesh.materials[t] = prof.body_material(mesh.centroid(t), mesh.normal(t));
    }
    let r = p.wheel_radius_m;
    let x_out = p.width_m / 2.0 - 0.03;
    let x_in = x_out - p.wheel_width_m;
    let lip = (0.2 * p.wheel_width_m).min(0.03);
    let axles = [
        p.length_m / 2.0 - p.front_overhang * p.length_m,
        -p.length_m / 2.0 + p.rear_overhang * p.length_m,
    ];
    for z_axle in axles {
        for side in [-1.0f32, 1.0] {
            let slices = [
                (x_in, 0.92 * r),
                (x_in + lip, r),
                (x_out - lip, r),
                (x_out, 0.92 * r),
            ];
            let rings: Vec<Vec<Point3<f32>>> = slices
                .iter()
                .map(|&(x, radius)| {
                    (0..WHEEL_POINTS)
                        .map(|k| {
                            let a = 2.0 * PI * k as f32 / WHEEL_POINTS as f32;
                            Point3::new(side * x, r + radius * a.sin(), z_axle + radius * a.cos())
                        })
                        .collect()
                })
                .collect();
            mesh.push_closed_loft(&rings, Material::Wheel);
        }
    }
    mesh
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cars() -> impl Iterator<Item = CarParams> {
        BodyStyle::ALL.into_iter().flat_map(|style| {
            (0..6u64).map(move |seed| CarParams::sample(style, &mut StdRng::seed_from_u64(seed)))
        })
    }

    #[test]
    fn every_style_is_watertight_outward_and_has_all_materials() {
        for p in cars() {
            let m = car_mesh(&p);
            assert!(m.is_watertight(), "{:?}", p.style);
            assert!(m.signed_volume() > 0.0, "{:?}", p.style);
            for mat in [Material::Body, Material::Window, Material::Wheel, Material::Light] {
                assert!(m.count(mat) > 0, "{:?} lacks {mat:?}", p.style);
            }
            // Windows are a sensible share of the body, not everything above the belt.
            let window = m.count(Material::Window) as f32 / m.triangles.len() as f32;
            assert!(
                window > 0.03 && window < 0.4,
                "{:?}: window share {window}",
                p.style
            );
        }
    }

    #[test]
    fn volume_is_plausible() {
        for p in cars() {
            let v = car_mesh(&p).signed_volume() as f32;
            let bbox = p.length_m * p.width_m * p.height_m;
            assert!(v > 0.4 * bbox && v < 1.0 * bbox, "{:?}: {v} of {bbox}", p.style);
        }
    }

    #[test]
    fn bounds_match_the_parameters_and_wheels_touch_the_ground() {
        for p in cars() {
            let m = car_mesh(&p);
            let (lo, hi) = m.bounds().unwrap();
            let d = m.dims();
            assert!((d.length_m - p.length_m).abs() < 0.01, "{:?}", p.style);
            assert!((d.width_m - p.width_m).abs() < 0.01, "{:?}", p.style);
            assert!((d.height_m - p.height_m).abs() < 0.01, "{:?}", p.style);
            assert!(lo.y.abs() < 1e-4 && (lo.x + hi.x).abs() < 1e-4 && (lo.z + hi.z).abs() < 1e-4);
            let wheel_min_y = m
                .triangles
                .iter()
                .zip(&m.materials)
                .filter(|(_, mat)| **mat == Material::Wheel)
                .flat_map(|(t, _)| t.iter().map(|&i| m.vertices[i as usize].y))
                .fold(f32::INFINITY, f32::min);
            assert!(wheel_min_y.abs() < 1e-4, "{:?}: wheels at {wheel_min_y}", p.style);
        }
    }

    #[test]
    fn the_unscaled_build_is_already_close_to_the_requested_size() {
        // The final per-axis scaling is a correction of a few per cent, not a distortion.
        for p in cars().chain((0..300).map(|i| CarParams::procedural(5, i))) {
            let mut m = car_mesh_unscaled(&p.sanitised());
            m.recentre_bottom();
            let d = m.dims();
            for (got, want) in [
                (d.length_m, p.length_m),
                (d.width_m, p.width_m),
                (d.height_m, p.height_m),
            ] {
                assert!((got / want - 1.0).abs() < 0.04, "{:?}: {got} vs {want}", p.style);
            }
        }
    }

    #[test]
    fn styles_differ_in_shape() {
        let mut rng = StdRng::seed_from_u64(1);
        let sedan = CarParams::sample(BodyStyle::Sedan, &mut rng);
        let mut hatch = sedan.clone();
        hatch.style = BodyStyle::Hatchback;
        hatch.trunk_length = 0.03;
        hatch.rear_slope_rad = 1.1;
        let (a, b) = (car_mesh(&sedan), car_mesh(&hatch));
        assert!(b.signed_volume() > a.signed_volume());
    }

    #[test]
    fn extreme_parameters_still_give_closed_meshes() {
        let mut p = CarParams::sample(BodyStyle::Coupe, &mut StdRng::seed_from_u64(3));
        p.hood_length = 0.9;
        p.trunk_length = 0.9;
        p.windscreen_slope_rad = 0.01;
        p.rear_slope_rad = f32::NAN;
        p.rounding = 7.0;
        let m = car_mesh(&p);
        assert!(m.is_watertight());
        assert!(m.signed_volume() > 0.0);
    }

    #[test]
    fn library_shares_sum_to_one() {
        let s: f64 = BodyStyle::ALL.iter().map(|s| s.library_share()).sum();
        assert!((s - 1.0).abs() < 1e-9);
    }
}
