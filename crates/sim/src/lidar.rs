//! A Velodyne HDL-64E model: casts every beam of one revolution into a [`Scene`] (its objects
//! through a [`Bvh`], the analytic ground plane directly) and returns a KITTI-style point cloud with
//! range noise, dropout and reflectivity-based intensity, plus the object each point hit.
//!
//! The sensor sits at the Velodyne-frame origin (see [`crate::world`]). A scan is deterministic for a
//! given seed whatever the thread count: every random number of a ray is drawn from a generator
//! seeded by a hash of `(seed, column, beam)`.

use crate::bvh::Bvh;
use crate::car::splitmix64;
use crate::mesh::Material;
use crate::scene::{GroundKind, Scene, Surface};
use crate::world::{GROUND, ObjectId, WorldMesh};
use kitti::velodyne::VeloPoint;
use nalgebra::{Point3, Vector3};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Beams per block of the HDL-64E (upper and lower block).
const BEAMS_PER_BLOCK: usize = 32;

/// Diffuse reflectivity (0–1) of every surface the LIDAR can hit; a return's intensity is the
/// reflectivity times |cos| of the incidence angle.
///
/// Defaults, chosen to match the relative brightness of surfaces in KITTI scans: lane markings 0.70
/// (retro-reflective paint), asphalt 0.15, sidewalk 0.25, verge 0.20; car paint 0.30, glass 0.05,
/// tyres 0.05, lights 0.80 (retro-reflectors); facade 0.35, concrete 0.30, painted metal 0.40,
/// foliage 0.25, bark 0.20, cloth 0.20.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reflectivity {
    /// Road surface.
    pub asphalt: f32,
    /// Painted lane markings.
    pub marking: f32,
    /// Paved sidewalk.
    pub sidewalk: f32,
    /// Grass or soil beyond the sidewalk.
    pub verge: f32,
    /// Car body ([`Surface::CarPaint`], [`Material::Body`] triangles).
    pub car_paint: f32,
    /// Glass ([`Material::Window`] triangles of any surface).
    pub window: f32,
    /// Tyres and rims ([`Material::Wheel`]).
    pub wheel: f32,
    /// Head and tail lights ([`Material::Light`]).
    pub light: f32,
    /// [`Surface::Facade`].
    pub facade: f32,
    /// [`Surface::Concrete`].
    pub concrete: f32,
    /// [`Surface::Metal`].
    pub metal: f32,
    /// [`Surface::Foliage`].
    pub foliage: f32,
    /// [`Surface::Bark`].
    pub bark: f32,
    /// [`Surface::Cloth`].
    pub cloth: f32,
}

impl Default for Reflectivity {
    fn default() -> Self {
        Reflectivity {
            asphalt: 0.15,
            marking: 0.70,
            sidewalk: 0.25,
            verge: 0.20,
            car_paint: 0.30,
            window: 0.05,
            wheel: 0.05,
            light: 0.80,
            facade: 0.35,
            concrete: 0.30,
            metal: 0.40,
            foliage: 0.25,
            bark: 0.20,
            cloth: 0.20,
        }
    }
}

impl Reflectivity {
    /// Reflectivity of the ground where it is `kind`.
    pub fn ground(&self, kind: GroundKind) -> f32 {
        match kind {
            GroundKind::Asphalt => self.asphalt,
            GroundKind::Marking => self.marking,
            GroundKind::Sidewalk => self.sidewalk,
            GroundKind::Verge => self.verge,
        }
    }

    /// Reflectivity of a triangle of `material` on an object with `surface`: window, wheel and light
    /// triangles use their material's value whatever the surface, body triangles the surface's.
    pub fn object(&self, surface: Surface, material: Material) -> f32 {
        match material {
            Material::Window => self.window,
            Material::Wheel => self.wheel,
            Material::Light => self.light,
            Material::Body => match surface {
                Surface::CarPaint => self.car_paint,
                Surface::Facade => self.facade,
                Surface::Concrete => self.concrete,
                Surface::Metal => self.metal,
                Surface::Foliage => self.foliage,
                Surface::Bark => self.bark,
                Surface::Cloth => self.cloth,
            },
        }
    }
}

/// A spinning multi-beam LIDAR. [`Default`] is the Velodyne HDL-64E as mounted on the KITTI car
/// (see [`LidarModel::hdl64e`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LidarModel {
    /// Elevation of each beam above the horizontal, degrees, in output order (top to bottom for the
    /// HDL-64E).
    pub beam_elevations_deg: Vec<f64>,
    /// Azimuth between consecutive columns, degrees; a revolution has `round(360 / step)` columns.
    pub azimuth_step_deg: f64,
    /// Returns closer than this are discarded (the recording car's own body), m.
    pub min_range_m: f64,
    /// Surfaces farther than this give no return, m.
    pub max_range_m: f64,
    /// Standard deviation of the Gaussian range error, applied along the ray, m.
    pub range_noise_sigma_m: f64,
    /// Probability that a return is lost at random.
    pub dropout_prob: f64,
    /// Probability that a return from glass ([`Material::Window`]) is lost: most of the beam passes
    /// through or is reflected away from the sensor.
    pub window_dropout_prob: f64,
    /// Standard deviation of the Gaussian noise added to the intensity (before clamping to 0–1).
    pub intensity_noise_sigma: f64,
    /// Received-power scale of the detector, in units of reflectivity × |cos incidence| / range²
    /// (m⁻²): a return of power `P` is detected with probability `1 / (1 + (P₀ / P)²)`, so dark or
    /// grazing surfaces fade out with range (asphalt seen from 1.73 m: ~96 % at 30 m, ~50 % at 50 m,
    /// ~13 % at 70 m), as in real sweeps. 0 detects every return.
    pub detection_power: f64,
    /// Reflectivity of each surface.
    pub reflectivity: Reflectivity,
}

impl Default for LidarModel {
    fn default() -> Self {
        Self::hdl64e()
    }
}

impl LidarModel {
    /// The Velodyne HDL-64E of the KITTI car: 64 beams in two blocks of 32, the upper block evenly
    /// from +2.0° to −8.33° (1/3° apart), the lower block evenly from −8.83° to −24.9° (about 0.52°
    /// apart); 0.09° azimuth step (4000 columns); 0.9–120 m range; σ = 0.02 m range noise; 2 % random
    /// dropout and 60 % on glass; intensity noise σ = 0.02; detection power 2·10⁻⁶ m⁻²;
    /// [`Reflectivity::default`].
    pub fn hdl64e() -> Self {
        let block = |top_deg: f64, bottom_deg: f64| {
            let step = (top_deg - bottom_deg) / (BEAMS_PER_BLOCK - 1) as f64;
            (0..BEAMS_PER_BLOCK).map(move |i| top_deg - step * i as f64)
        };
        LidarModel {
            beam_elevations_deg: block(2.0, -8.33).chain(block(-8.83, -24.9)).collect(),
            azimuth_step_deg: 0.09,
            min_range_m: 0.9,
            max_range_m: 120.0,
            range_noise_sigma_m: 0.02,
            dropout_prob: 0.02,
            window_dropout_prob: 0.6,
            intensity_noise_sigma: 0.02,
            detection_power: 2.0e-6,
            reflectivity: Reflectivity::default(),
        }
    }

    /// Number of beams (rows).
    pub fn beam_count(&self) -> usize {
        self.beam_elevations_deg.len()
    }

    /// Number of azimuth columns per revolution; 0 if the step is not a positive number.
    pub fn column_count(&self) -> usize {
        if self.azimuth_step_deg > 0.0 && self.azimuth_step_deg.is_finite() {
            (360.0 / self.azimuth_step_deg).round() as usize
        } else {
            0
        }
    }

    /// Number of rays per revolution.
    pub fn ray_count(&self) -> usize {
        self.beam_count() * self.column_count()
    }

    /// Azimuth of column `column`, radians from velo +x towards +y.
    pub fn azimuth_rad(&self, column: usize) -> f64 {
        (column as f64 * self.azimuth_step_deg).to_radians()
    }

    /// Unit direction of the ray of `beam` in `column`, Velodyne frame; `beam` must be below
    /// [`LidarModel::beam_count`].
    pub fn ray_direction(&self, column: usize, beam: usize) -> Vector3<f64> {
        let elevation_rad = self.beam_elevations_deg[beam].to_radians();
        direction(elevation_rad.sin_cos(), self.azimuth_rad(column).sin_cos())
    }
}

/// One revolution's point cloud and what each point hit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LidarScan {
    /// Returns in the Velodyne frame, column by column (azimuth increasing), within a column beam by
    /// beam in [`LidarModel::beam_elevations_deg`] order.
    pub points: Vec<VeloPoint>,
    /// What each point hit: a scene object index or [`GROUND`] (same length as `points`).
    pub object: Vec<ObjectId>,
}

impl LidarScan {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there is no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Casts every ray of one revolution of `model` into `scene` (objects through `bvh`, built from
/// `world = scene.world_mesh()`; ground analytically) and keeps the closest hit of each ray within
/// `[min_range_m, max_range_m]`, less random dropouts.
///
/// Each return's range gets Gaussian noise along its ray; its intensity is the surface's
/// [`Reflectivity`] × |cos incidence| plus Gaussian noise, clamped to 0–1. Triangles whose object is
/// not in `scene` are treated as concrete. Parallel over columns; the result depends only on the
/// inputs and `seed`, never on the number of threads.
pub fn scan(model: &LidarModel, scene: &Scene, world: &WorldMesh, bvh: &Bvh, seed: u64) -> LidarScan {
    let elevations: Vec<(f64, f64)> = model
        .beam_elevations_deg
        .iter()
        .map(|e| e.to_radians().sin_cos())
        .collect();
    let ctx = ScanContext {
        model,
        scene,
        world,
        bvh,
        elevations: &elevations,
        seed_hash: splitmix64(seed),
    };
    let columns: Vec<Vec<(VeloPoint, ObjectId)>> = (0..model.column_count())
        .into_par_iter()
        .with_min_len(16)
        .map(|column| ctx.column(column))
        .collect();
    let n = columns.iter().map(Vec::len).sum();
    let mut out = LidarScan {
        points: Vec::with_capacity(n),
        object: Vec::with_capacity(n),
    };
    for (p, o) in columns.into_iter().flatten() {
        out.points.push(p);
        out.object.push(o);
    }
    out
}

/// Direction from `(sin, cos)` of elevation and azimuth.
fn direction((sin_el, cos_el): (f64, f64), (sin_az, cos_az): (f64, f64)) -> Vector3<f64> {
    Vector3::new(cos_el * cos_az, cos_el * sin_az, sin_el)
}

/// What one ray hit, before noise and dropout.
struct RayHit {
    range_m: f64,
    object: ObjectId,
    /// |cos| of the angle between the ray and the surface normal.
    cos_incidence: f64,
    reflectivity: f64,
    dropout_prob: f64,
}

struct ScanContext<'a> {
    model: &'a LidarModel,
    scene: &'a Scene,
    world: &'a WorldMesh,
    bvh: &'a Bvh,
    /// `(sin, cos)` of each beam's elevation.
    elevations: &'a [(f64, f64)],
    seed_hash: u64,
}

impl ScanContext<'_> {
    fn column(&self, column: usize) -> Vec<(VeloPoint, ObjectId)> {
        let azimuth = self.model.azimuth_rad(column).sin_cos();
        let column_hash = splitmix64(self.seed_hash ^ column as u64);
        let mut out = Vec::new();
        for (beam, &elevation) in self.elevations.iter().enumerate() {
            let dir = direction(elevation, azimuth);
            let Some(hit) = self.trace(&dir) else { continue };
            if hit.range_m < self.model.min_range_m {
                continue;
            }
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(splitmix64(column_hash ^ beam as u64));
            if rng.random::<f64>() < hit.dropout_prob {
                continue;
            }
            let power = hit.reflectivity * hit.cos_incidence / (hit.range_m * hit.range_m).max(1e-9);
            let missed = (self.model.detection_power / power.max(1e-300)).powi(2);
            let p_detect = 1.0 / (1.0 + missed);
            if rng.random::<f64>() >= p_detect {
                continue;
            }
            let range_error_m: f64 =
                rng.sample::<f64, _>(rand_distr::StandardNormal) * self.model.range_noise_sigma_m;
            let intensity_noise: f64 =
                rng.sample::<f64, _>(rand_distr::StandardNormal) * self.model.intensity_noise_sigma;
            let p = dir * (hit.range_m + range_error_m).max(0.0);
            let intensity = (hit.reflectivity * hit.cos_incidence + intensity_noise).clamp(0.0, 1.0);
            out.push((
                VeloPoint {
                    x: p.x as f32,
                    y: p.y as f32,
                    z: p.z as f32,
                    intensity: intensity as f32,
                },
                hit.object,
            ));
        }
        out
    }

    /// The closest of the object and ground hits of the unit ray `dir` within the maximum range.
    fn trace(&self, dir: &Vector3<f64>) -> Option<RayHit> {
        let max_range_m = self.model.max_range_m;
        let dir_f32 = dir.cast::<f32>();
        let object = self
            .bvh
            .closest_hit(self.world, &Point3::origin(), &dir_f32, max_range_m as f32);
        let ground_m = self
            .scene
            .ground
            .ray_hit(&Point3::origin(), dir)
            .filter(|&t| t < max_range_m);
        let refl = &self.model.reflectivity;
        let object = object.filter(|h| ground_m.is_none_or(|g| (h.t as f64) < g));
        match (object, ground_m) {
            (Some(h), _) => {
                let tri = h.triangle as usize;
                let id = self.world.object[tri];
                let material = self.world.material[tri];
                let surface = self.scene.objects.get(id as usize).map(|o| o.surface);
                let reflectivity = surface.map_or(refl.concrete, |s| refl.object(s, material));
                let normal = self.world.normal(tri).cast::<f64>();
                Some(RayHit {
                    range_m: h.t as f64,
                    object: id,
                    cos_incidence: normal.dot(dir).abs(),
                    reflectivity: reflectivity as f64,
                    dropout_prob: if material == Material::Window {
                        self.model.window_dropout_prob
                    } else {
                        self.model.dropout_prob
                    },
                })
            }
            (_, Some(range_m)) => {
                let p = dir * range_m;
                let kind = self.scene.road.ground_kind(p.x, p.y);
                Some(RayHit {
                    range_m,
                    object: GROUND,
                    cos_incidence: self.scene.ground.normal_velo().dot(dir).abs(),
                    reflectivity: refl.ground(kind) as f64,
                    dropout_prob: self.model.dropout_prob,
                })
            }
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShapeLibrary;
    use crate::mesh::TriMesh;
    use crate::scene::ObjectClass;
    use crate::world::{Ground, LIDAR_MOUNT_HEIGHT_M};
    use nalgebra::Isometry3;

    fn scene_with(objects: Vec<(TriMesh, Isometry3<f64>, ObjectClass, Surface)>) -> Scene {
        crate::scene::testing::scene(
            objects
                .into_iter()
                .map(|(mesh, pose, class, surface)| {
                    crate::scene::testing::object(class, mesh, pose, [0.5, 0.5, 0.5], surface)
                })
                .collect(),
        )
    }

    fn run(model: &LidarModel, scene: &Scene, seed: u64) -> LidarScan {
        let world = scene.world_mesh();
        let bvh = Bvh::build(&world);
        scan(model, scene, &world, &bvh, seed)
    }

    /// A box in the model frame: x in ±half_width, y in 0..height, z in ±half_depth.
    fn box_mesh(half_width_m: f32, height_m: f32, half_depth_m: f32) -> TriMesh {
        crate::scene::testing::cuboid(2.0 * half_depth_m, 2.0 * half_width_m, height_m)
    }

    /// A concrete wall facing the sensor, 20 m wide and 6 m tall, its front face 10 m ahead.
    fn wall_scene() -> Scene {
        let ground = Ground::level(LIDAR_MOUNT_HEIGHT_M);
        scene_with(vec![(
            box_mesh(10.0, 6.0, 0.15),
            ground.velo_from_model(10.15, 0.0, 0.0),
            ObjectClass::Wall,
            Surface::Concrete,
        )])
    }

    #[test]
    fn beam_layout_is_the_hdl64e() {
        let m = LidarModel::default();
        assert_eq!(m.beam_count(), 64);
        assert_eq!(m.column_count(), 4000);
        assert_eq!(m.ray_count(), 256_000);
        let e = &m.beam_elevations_deg;
        assert!((e[0] - 2.0).abs() < 1e-12 && (e[63] + 24.9).abs() < 1e-12);
        assert!(e.windows(2).all(|w| w[0] > w[1]), "top to bottom");
        let upper_gap = e[0] - e[1];
        let lower_gap = e[62] - e[63];
        assert!(upper_gap < lower_gap, "denser above");
        assert!((e[31] + 8.33).abs() < 1e-9 && (e[32] + 8.83).abs() < 1e-9);
        assert!((m.azimuth_rad(1) - 0.09f64.to_radians()).abs() < 1e-15);
        let d = m.ray_direction(1000, 0);
        assert!((d.norm() - 1.0).abs() < 1e-12 && d.y > 0.999 * 2f64.to_radians().cos());
    }

    #[test]
    fn empty_scene_sees_only_level_ground() {
        let model = LidarModel::default();
        let scene = scene_with(vec![]);
        let s = run(&model, &scene, 1);
        assert!(s.len() > 100_000, "{} points", s.len());
        assert!(s.object.iter().all(|&o| o == GROUND));
        let tol = 4.0 * model.range_noise_sigma_m + 1e-4;
        let mut nearest_m = f64::INFINITY;
        for p in &s.points {
            let dz = p.z as f64 + LIDAR_MOUNT_HEIGHT_M;
            assert!(dz.abs() < tol, "point off the ground: {p:?}");
            nearest_m = nearest_m.min((p.x as f64).hypot(p.y as f64));
        }
        let expected_m = LIDAR_MOUNT_HEIGHT_M / 24.9f64.to_radians().tan();
        assert!(
            (nearest_m - expected_m).abs() < 0.1,
            "nearest ring at {nearest_m} m, expected {expected_m}"
        );
    }

    #[test]
    fn car_points_lie_on_the_car() {
        let model = LidarModel::default();
        let car = ShapeLibrary::procedural(5, 3).shape(1).unwrap();
        let (lo, hi) = car.bounds().unwrap();
        let ground = Ground::level(LIDAR_MOUNT_HEIGHT_M);
        let pose = ground.velo_from_model(10.0, 0.5, 0.4);
        let scene = scene_with(vec![(car, pose, ObjectClass::Car, Surface::CarPaint)]);
        let s = run(&model, &scene, 2);
        let tol = 4.0 * model.range_noise_sigma_m as f32;
        let inverse = pose.inverse();
        let mut n = 0;
        for (p, _) in s.points.iter().zip(&s.object).filter(|&(_, &o)| o == 0) {
            let q = inverse * Point3::new(p.x as f64, p.y as f64, p.z as f64);
            let q = q.cast::<f32>();
            for k in 0..3 {
                assert!(
                    q[k] > lo[k] - tol && q[k] < hi[k] + tol,
                    "point {q:?} outside the car"
                );
            }
            n += 1;
        }
        assert!(n > 300, "only {n} car points");
    }

    #[test]
    fn same_seed_same_scan_other_seed_other_scan() {
        let model = LidarModel::default();
        let scene = wall_scene();
        let a = run(&model, &scene, 11);
        let b = run(&model, &scene, 11);
        let c = run(&model, &scene, 12);
        assert_eq!(a, b);
        assert_ne!(a.points, c.points);
        // Thread count does not matter.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let single = pool.install(|| run(&model, &scene, 11));
        assert_eq!(a, single);
    }

    #[test]
    fn dropout_is_about_two_percent() {
        let scene = wall_scene();
        let model = LidarModel::default();
        let no_dropout = LidarModel {
            dropout_prob: 0.0,
            ..model.clone()
        };
        let count = |s: &LidarScan| s.object.iter().filter(|&&o| o == 0).count();
        let all = count(&run(&no_dropout, &scene, 3));
        let kept = count(&run(&model, &scene, 3));
        assert!(all > 20_000, "{all} wall rays");
        let fraction = 1.0 - kept as f64 / all as f64;
        assert!((fraction - 0.02).abs() < 0.004, "dropout fraction {fraction}");
    }

    #[test]
    fn intensity_falls_with_incidence_angle() {
        let scene = wall_scene();
        let model = LidarModel::default();
        let s = run(&model, &scene, 4);
        let mean_intensity = |lo_deg: f32, hi_deg: f32| {
            let (sum, n) = s
                .points
                .iter()
                .zip(&s.object)
                .filter(|&(p, &o)| {
                    let az = p.y.atan2(p.x).to_degrees().abs();
                    o == 0 && az >= lo_deg && az < hi_deg
                })
                .fold((0.0, 0), |(sum, n), (p, _)| (sum + p.intensity, n + 1));
            assert!(n > 100);
            sum / n as f32
        };
        let head_on = mean_intensity(0.0, 5.0);
        let oblique = mean_intensity(40.0, 44.0);
        let concrete = model.reflectivity.concrete;
        assert!((head_on - concrete).abs() < 0.02, "head-on {head_on}");
        assert!(oblique < 0.85 * head_on, "oblique {oblique} vs head-on {head_on}");
    }
}
