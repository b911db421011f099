//! Scenes: a road with lanes and sidewalks, parked rows and traffic, and clutter, each object a mesh
//! placed in the Velodyne frame.

use crate::car::splitmix64;
use crate::clutter;
use crate::library::ShapeLibrary;
use crate::mesh::TriMesh;
use crate::world::{Ground, LIDAR_MOUNT_HEIGHT_M, ObjectId, WorldMesh};
use kitti::ObjectType;
use nalgebra::Isometry3;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// What a scene object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectClass {
    /// A car from the shape library; labelled `Car`.
    Car,
    /// A van (large one-box body); labelled `Van`.
    Van,
    /// A person; labelled `Pedestrian`.
    Pedestrian,
    /// A person on a bicycle; labelled `Cyclist`.
    Cyclist,
    /// A building block with a facade.
    Building,
    /// A wall or fence.
    Wall,
    /// A street-light or sign pole.
    Pole,
    /// A tree: trunk and crown.
    Tree,
    /// A bush or hedge.
    Bush,
}

impl ObjectClass {
    /// The KITTI type objects of this class are labelled with; `None` for unlabelled clutter.
    pub fn label_type(self) -> Option<ObjectType> {
        match self {
            ObjectClass::Car => Some(ObjectType::Car),
            ObjectClass::Van => Some(ObjectType::Van),
            ObjectClass::Pedestrian => Some(ObjectType::Pedestrian),
            ObjectClass::Cyclist => Some(ObjectType::Cyclist),
            _ => None,
        }
    }

    /// Whether this is a vehicle (car or van).
    pub fn is_vehicle(self) -> bool {
        matches!(self, ObjectClass::Car | ObjectClass::Van)
    }
}

/// How an object's surface looks (the camera's shading model picks its texture from this).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Surface {
    /// Glossy car paint (body), with the mesh's window, wheel and light materials.
    CarPaint,
    /// Brick or plaster facade; `Material::Window` triangles are its windows.
    Facade,
    /// Concrete or stone (walls, kerbs).
    Concrete,
    /// Painted metal (poles, bicycle frames).
    Metal,
    /// Leaves.
    Foliage,
    /// Tree bark.
    Bark,
    /// Clothing and skin of a person.
    Cloth,
}

/// Where a shape came from, so that later stages can rebuild it (NOCS targets, shape priors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ShapeRef {
    /// Shape `index` of the frame's [`crate::ShapeLibrary`], named `name`.
    Library {
        /// Index in the library.
        index: usize,
        /// The library's name of the shape.
        name: String,
    },
    /// A procedural clutter or van shape, rebuilt from its kind and seed.
    Procedural {
        /// Generator name (`"van"`, `"pedestrian"`, `"tree"`, …).
        kind: String,
        /// Its seed.
        seed: u64,
    },
}

/// One object of a scene.
#[derive(Clone, Debug)]
pub struct SceneObject {
    /// What it is.
    pub class: ObjectClass,
    /// Where its shape came from.
    pub shape: ShapeRef,
    /// The mesh in the model frame (metres, origin at the bottom centre, +y up, +z forward).
    pub mesh: TriMesh,
    /// Model → Velodyne frame (standing on the ground, tilted with it).
    pub velo_from_model: Isometry3<f64>,
    /// Base colour (linear RGB, 0–1): paint, clothing, facade.
    pub colour_rgb: [f32; 3],
    /// Surface type.
    pub surface: Surface,
    /// A labelled class too far away or too small to label: written as `DontCare`.
    pub dont_care: bool,
}

/// What the ground is at a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroundKind {
    /// Road surface.
    Asphalt,
    /// Painted lane marking.
    Marking,
    /// Paved sidewalk.
    Sidewalk,
    /// Grass or soil beyond the sidewalk.
    Verge,
}

/// A straight road along the Velodyne +x axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoadLayout {
    /// Lateral position (velo y) of the road's right edge, m (negative).
    pub right_edge_y_m: f64,
    /// Lateral position of the road's left edge, m (positive).
    pub left_edge_y_m: f64,
    /// Lateral positions of the dashed lane markings, m.
    pub lane_lines_y_m: Vec<f64>,
    /// Width of the sidewalk on each side, m.
    pub sidewalk_width_m: f64,
    /// A cross street: its centre along the road (velo x) and its half width (kerb to kerb), m.
    pub cross_street: Option<(f64, f64)>,
}

impl RoadLayout {
    /// What the ground is at `(x, y)` (Velodyne frame).
    pub fn ground_kind(&self, x_m: f64, y_m: f64) -> GroundKind {
        if let Some((cx, half)) = self.cross_street
            && (x_m - cx).abs() < half
        {
            let inner = y_m > self.right_edge_y_m && y_m < self.left_edge_y_m;
            // A stop line across the main road's lanes at each side of the crossing.
            if inner && ((x_m - cx).abs() - (half - 0.5)).abs() < 0.2 {
                return GroundKind::Marking;
            }
            return GroundKind::Asphalt;
        }
        if y_m < self.right_edge_y_m - self.sidewalk_width_m
            || y_m > self.left_edge_y_m + self.sidewalk_width_m
        {
            return GroundKind::Verge;
        }
        if y_m < self.right_edge_y_m || y_m > self.left_edge_y_m {
            return GroundKind::Sidewalk;
        }
        const LINE_HALF_WIDTH_M: f64 = 0.075;
        // Edge lines are solid, inner lines dashed 3 m on, 6 m off.
        if (y_m - self.right_edge_y_m) < 2.0 * LINE_HALF_WIDTH_M + 0.2 && (y_m - self.right_edge_y_m) > 0.2
            || (self.left_edge_y_m - y_m) < 2.0 * LINE_HALF_WIDTH_M + 0.2 && (self.left_edge_y_m - y_m) > 0.2
        {
            return GroundKind::Marking;
        }
        let dashed_on = x_m.rem_euclid(9.0) < 3.0;
        if dashed_on
            && self
                .lane_lines_y_m
                .iter()
                .any(|&l| (y_m - l).abs() < LINE_HALF_WIDTH_M)
        {
            return GroundKind::Marking;
        }
        GroundKind::Asphalt
    }
}

/// A frame's world: ground, road and objects.
#[derive(Clone, Debug)]
pub struct Scene {
    /// The road plane.
    pub ground: Ground,
    /// Lanes and sidewalks on it.
    pub road: RoadLayout,
    /// Every object; an object's index is its [`ObjectId`].
    pub objects: Vec<SceneObject>,
}

impl Scene {
    /// Every object's triangles in the Velodyne frame, tagged with the object's index.
    pub fn world_mesh(&self) -> WorldMesh {
        let mut world = WorldMesh::default();
        for (i, o) in self.objects.iter().enumerate() {
            world.push(&o.mesh, &o.velo_from_model, i as ObjectId);
        }
        world
    }
}

/// Parameters of scene generation. Distances are along the road (Velodyne x) unless named otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SceneConfig {
    /// Labelled objects farther than this (horizontal distance from the sensor) become `DontCare`.
    pub max_label_distance_m: f64,
    /// The nearest distance ahead at which traffic and parked objects are placed in front of the camera.
    pub min_object_distance_m: f64,
    /// How far behind the sensor the world extends (the LIDAR sees all around), m.
    pub extent_behind_m: f64,
    /// How far ahead the world extends, m.
    pub extent_ahead_m: f64,
    /// Share of vehicles that are vans.
    pub van_fraction: f64,
    /// Mean number of pedestrians per frame.
    pub pedestrians_mean: f64,
    /// Mean number of cyclists per frame.
    pub cyclists_mean: f64,
    /// Largest road slope (rise per metre) along the road.
    pub max_slope: f64,
    /// Largest road roll (rise per metre) across the road.
    pub max_roll: f64,
    /// Probability of a cross street with crossing traffic.
    pub intersection_probability: f64,
}

impl Default for SceneConfig {
    fn default() -> Self {
        SceneConfig {
            max_label_distance_m: 80.0,
            min_object_distance_m: 4.0,
            extent_behind_m: 30.0,
            extent_ahead_m: 110.0,
            van_fraction: 0.09,
            pedestrians_mean: 1.5,
            cyclists_mean: 0.5,
            max_slope: 0.04,
            max_roll: 0.02,
            intersection_probability: 0.2,
        }
    }
}

/// An object's footprint on the road: an oriented rectangle in the Velodyne xy plane.
#[derive(Clone, Copy, Debug)]
struct Footprint {
    centre: [f64; 2],
    /// Half extents along and across the heading.
    half: [f64; 2],
    yaw_rad: f64,
}

impl Footprint {
    fn axes(&self) -> [[f64; 2]; 2] {
        let (s, c) = self.yaw_rad.sin_cos();
        [[c, s], [-s, c]]
    }

    /// Separating-axis test of two oriented rectangles, each grown by `margin_m`.
    fn overlaps(&self, other: &Footprint, margin_m: f64) -> bool {
        let (a, b) = (self.axes(), other.axes());
        let d = [other.centre[0] - self.centre[0], other.centre[1] - self.centre[1]];
        let dot = |u: [f64; 2], v: [f64; 2]| u[0] * v[0] + u[1] * v[1];
        for axis in [a[0], a[1], b[0], b[1]] {
            let ra = (self.half[0] + margin_m) * dot(a[0], axis).abs()
                + (self.half[1] + margin_m) * dot(a[1], axis).abs();
            let rb = other.half[0] * dot(b[0], axis).abs() + other.half[1] * dot(b[1], axis).abs();
            if dot(d, axis).abs() > ra + rb {
                return false;
            }
        }
        true
    }
}

/// Linear-RGB car paint, drawn with the frequencies of real car colours (white, grey, black and silver
/// dominate), each jittered.
fn car_paint(rng: &mut StdRng) -> [f32; 3] {
    const PAINTS: [(f64, [f32; 3]); 9] = [
        (0.24, [0.80, 0.80, 0.78]),   // white
        (0.18, [0.22, 0.23, 0.24]),   // grey
        (0.18, [0.025, 0.025, 0.03]), // black
        (0.14, [0.50, 0.52, 0.55]),   // silver
        (0.09, [0.03, 0.08, 0.32]),   // blue
        (0.09, [0.48, 0.03, 0.02]),   // red
        (0.03, [0.04, 0.15, 0.06]),   // green
        (0.03, [0.45, 0.38, 0.25]),   // beige
        (0.02, [0.70, 0.55, 0.02]),   // yellow
    ];
    let mut u: f64 = rng.random();
    let mut base = PAINTS[0].1;
    for (p, c) in PAINTS {
        base = c;
        u -= p;
        if u < 0.0 {
            break;
        }
    }
    let k: f32 = rng.random_range(0.85..1.15);
    base.map(|c| (c * k * rng.random_range(0.95..1.05f32)).clamp(0.0, 1.0))
}

fn pick_colour(rng: &mut StdRng, options: &[[f32; 3]]) -> [f32; 3] {
    let c = options[rng.random_range(0..options.len())];
    let k: f32 = rng.random_range(0.8..1.2);
    c.map(|v| (v * k).clamp(0.0, 1.0))
}

/// A scene under construction: the objects placed so far and their footprints.
struct Builder<'a> {
    rng: StdRng,
    seed: u64,
    config: &'a SceneConfig,
    library: &'a ShapeLibrary,
    ground: Ground,
    objects: Vec<SceneObject>,
    footprints: Vec<Footprint>,
}

impl Builder<'_> {
    fn sub_seed(&mut self) -> u64 {
        splitmix64(self.seed ^ splitmix64(self.objects.len() as u64 + 0x5EED))
    }

    /// Places `mesh` at `(x, y)` with heading `yaw_rad` unless its footprint (grown by `margin_m`)
    /// overlaps an object already placed. Returns whether it was placed.
    #[allow(clippy::too_many_arguments)]
    fn try_place(
        &mut self,
        class: ObjectClass,
        shape: ShapeRef,
        mesh: TriMesh,
        (x_m, y_m, yaw_rad): (f64, f64, f64),
        colour_rgb: [f32; 3],
        surface: Surface,
        margin_m: f64,
    ) -> bool {
        let Some((lo, hi)) = mesh.bounds() else {
            return false;
        };
        // Model +z is the heading, +x the left: the footprint is centred on the bounds' centre.
        let (s, c) = yaw_rad.sin_cos();
        let (cz, cx) = (((lo.z + hi.z) / 2.0) as f64, ((lo.x + hi.x) / 2.0) as f64);
        let fp = Footprint {
            centre: [x_m + cz * c - cx * s, y_m + cz * s + cx * c],
            half: [((hi.z - lo.z) / 2.0) as f64, ((hi.x - lo.x) / 2.0) as f64],
            yaw_rad,
        };
        if self.footprints.iter().any(|f| fp.overlaps(f, margin_m)) {
            return false;
        }
        let distance_m = x_m.hypot(y_m);
        let dont_care = class.label_type().is_some() && distance_m > self.config.max_label_distance_m;
        self.footprints.push(fp);
        self.objects.push(SceneObject {
            class,
            shape,
            mesh,
            velo_from_model: self.ground.velo_from_model(x_m, y_m, yaw_rad),
            colour_rgb,
            surface,
            dont_care,
        });
        true
    }

    /// A car from the library or a van, placed if free.
    fn vehicle(&mut self, x_m: f64, y_m: f64, yaw_rad: f64, margin_m: f64) -> bool {
        let seed = self.sub_seed();
        let mut rng = StdRng::seed_from_u64(seed);
        let (class, shape, mesh) = if rng.random_bool(self.config.van_fraction) || self.library.is_empty() {
            let shape = ShapeRef::Procedural {
                kind: "van".into(),
                seed,
            };
            (ObjectClass::Van, shape, clutter::van_mesh(&mut rng))
        } else {
            let index = rng.random_range(0..self.library.len());
            let (Some(mesh), Some(name)) = (self.library.shape(index), self.library.name(index)) else {
                return false;
            };
            (ObjectClass::Car, ShapeRef::Library { index, name }, mesh)
        };
        let paint = car_paint(&mut rng);
        self.try_place(
            class,
            shape,
            mesh,
            (x_m, y_m, yaw_rad),
            paint,
            Surface::CarPaint,
            margin_m,
        )
    }

    fn clutter(
        &mut self,
        class: ObjectClass,
        kind: &str,
        make: impl FnOnce(&mut StdRng, u64) -> TriMesh,
        pose: (f64, f64, f64),
        colour_rgb: [f32; 3],
        surface: Surface,
    ) -> bool {
        let seed = self.sub_seed();
        let mut rng = StdRng::seed_from_u64(seed);
        let mesh = make(&mut rng, seed);
        let shape = ShapeRef::Procedural {
            kind: kind.into(),
            seed,
        };
        self.try_place(class, shape, mesh, pose, colour_rgb, surface, 0.1)
    }
}

/// Generates one scene, deterministically from `seed`: a straight road with 1–4 lanes, optional
/// parking lanes (parallel or perpendicular rows), traffic in both directions, sometimes a cross
/// street with crossing traffic, sidewalks with pedestrians, poles and trees, and buildings, walls or
/// vegetation beyond. No two objects overlap (footprints are tested with a margin).
pub fn generate_scene(library: &ShapeLibrary, config: &SceneConfig, seed: u64) -> Scene {
    let mut rng = StdRng::seed_from_u64(splitmix64(seed ^ 0x5CE7E));
    let normal = |rng: &mut StdRng, std: f64, lim: f64| {
        Normal::new(0.0, std)
            .map_or(0.0, |d| d.sample(rng))
            .clamp(-lim, lim)
    };
    let ground = Ground {
        z0_m: -LIDAR_MOUNT_HEIGHT_M,
        dz_dx: normal(&mut rng, config.max_slope / 2.0, config.max_slope),
        dz_dy: normal(&mut rng, config.max_roll / 2.0, config.max_roll),
    };

    // Lanes, right (−y) to left (+y). The ego car drives in the middle of one same-direction lane.
    let lane_w = rng.random_range(3.0..3.7);
    let n_same = if rng.random_bool(0.5) { 1 } else { 2 };
    let n_opp = [0, 1, 1, 2][rng.random_range(0..4)];
    let ego_lane = rng.random_range(0..n_same);
    // Parking per side: 0 none, 1 parallel, 2 perpendicular.
    let mut parking = [0u8; 2];
    for p in &mut parking {
        let u: f64 = rng.random();
        *p = if u < 0.35 {
            1
        } else if u < 0.43 {
            2
        } else {
            0
        };
    }
    let park_w = |p: u8| match p {
        1 => 2.2,
        2 => 5.2,
        _ => 0.0,
    };
    let right_edge = -((ego_lane as f64 + 0.5) * lane_w + park_w(parking[0]));
    let n_lanes = n_same + n_opp;
    let first_lane = right_edge + park_w(parking[0]);
    let lane_centre = |i: usize| first_lane + (i as f64 + 0.5) * lane_w;
    let left_edge = first_lane + n_lanes as f64 * lane_w + park_w(parking[1]);
    let mut lane_lines: Vec<f64> = (1..n_lanes).map(|i| first_lane + i as f64 * lane_w).collect();
    if parking[0] == 1 {
        lane_lines.push(first_lane);
    }
    if parking[1] == 1 {
        lane_lines.push(first_lane + n_lanes as f64 * lane_w);
    }
    let sidewalk = rng.random_range(1.5..4.0);
    let cross = rng
        .random_bool(config.intersection_probability)
        .then(|| (rng.random_range(15.0..60.0), lane_w * 2.0 + 2.0 * sidewalk));
    let road = RoadLayout {
        right_edge_y_m: right_edge,
        left_edge_y_m: left_edge,
        lane_lines_y_m: lane_lines,
        sidewalk_width_m: sidewalk,
        cross_street: cross.map(|(x, w)| (x, w / 2.0 - sidewalk)),
    };
    let in_cross = |x: f64, pad: f64| cross.is_some_and(|(cx, w)| (x - cx).abs() < w / 2.0 + pad);

    let mut b = Builder {
        rng,
        seed,
        config,
        library,
        ground,
        objects: Vec::new(),
        footprints: vec![Footprint {
            centre: [-0.3, 0.0],
            half: [2.6, 1.0],
            yaw_rad: 0.0,
        }],
    };
    let (x_min, x_max) = (-config.extent_behind_m, config.extent_ahead_m);

    // Beyond the sidewalks: buildings, walls or vegetation, per side.
    for side in [-1.0f64, 1.0] {
        let edge = if side < 0.0 {
            right_edge - sidewalk
        } else {
            left_edge + sidewalk
        };
        let kind = b.rng.random_range(0..10);
        let mut x = x_min + b.rng.random_range(0.0..8.0);
        while x < x_max {
            let setback = b.rng.random_range(0.0..3.0);
            match kind {
                0..=5 => {
                    let w = b.rng.random_range(8.0..25.0);
                    let depth = b.rng.random_range(8.0..15.0);
                    let h = b.rng.random_range(6.0..20.0);
                    let xc = x + w / 2.0;
                    if !in_cross(xc, w / 2.0) {
                        let facade = pick_colour(
                            &mut b.rng,
                            &[
                                [0.55, 0.45, 0.35],
                                [0.6, 0.58, 0.55],
                                [0.45, 0.2, 0.12],
                                [0.7, 0.68, 0.6],
                                [0.35, 0.35, 0.38],
                            ],
                        );
                        // Facade (+z of the model) faces the road.
                        let yaw = if side < 0.0 {
                            std::f64::consts::FRAC_PI_2
                        } else {
                            -std::f64::consts::FRAC_PI_2
                        };
                        let y = edge + side * (setback + depth / 2.0);
                        b.clutter(
                            ObjectClass::Building,
                            "building",
                            |r, _| clutter::building_mesh(w as f32, depth as f32, h as f32, r),
                            (xc, y, yaw),
                            facade,
                            Surface::Facade,
                        );
                    }
                    x += w + b.rng.random_range(0.0..6.0);
                }
                6..=7 => {
                    let len = b.rng.random_range(4.0..20.0);
                    let h = b.rng.random_range(0.6..2.5);
                    let xc = x + len / 2.0;
                    if !in_cross(xc, len / 2.0) {
                        let grey = pick_colour(&mut b.rng, &[[0.45, 0.45, 0.43], [0.5, 0.42, 0.35]]);
                        b.clutter(
                            ObjectClass::Wall,
                            "wall",
                            |_, _| clutter::wall_mesh(len as f32, h as f32, 0.3),
                            (xc, edge + side * (setback + 0.2), 0.0),
                            grey,
                            Surface::Concrete,
                        );
                    }
                    x += len + b.rng.random_range(0.0..10.0);
                }
                _ => {
                    let len = b.rng.random_range(2.0..8.0);
                    let xc = x + len / 2.0;
                    if !in_cross(xc, len / 2.0) {
                        let y = edge + side * (setback + 1.0);
                        if b.rng.random_bool(0.5) {
                            b.clutter(
                                ObjectClass::Bush,
                                "bush",
                                |r, s| clutter::bush_mesh(len as f32, r, s),
                                (xc, y, 0.0),
                                [0.08, 0.2, 0.05],
                                Surface::Foliage,
                            );
                        } else {
                            b.clutter(
                                ObjectClass::Tree,
                                "tree",
                                clutter::tree_mesh,
                                (xc, y + side * 2.0, 0.0),
                                [0.06, 0.17, 0.04],
                                Surface::Foliage,
                            );
                        }
                    }
                    x += len + b.rng.random_range(0.0..6.0);
                }
            }
        }
    }

    // Crossing traffic first (it may stand in the intersection), then traffic along the lanes.
    if let Some((cx, _)) = cross {
        for _ in 0..b.rng.random_range(0..4) {
            let dir = if b.rng.random_bool(0.5) { 1.0 } else { -1.0 };
            let x = cx - dir * lane_w / 2.0;
            let y = b.rng.random_range(-35.0..35.0);
            let yaw = dir * std::f64::consts::FRAC_PI_2 + normal(&mut b.rng, 0.03, 0.1);
            b.vehicle(x, y, yaw, 0.8);
        }
    }
    for lane in 0..n_lanes {
        let same = lane < n_same;
        let dense = b.rng.random_range(0.0..1.0);
        let mut x = x_min + b.rng.random_range(0.0..20.0);
        while x < x_max {
            let is_ego_lane = lane == ego_lane;
            let ahead_ok = !is_ego_lane || x > config.min_object_distance_m + 3.0 || x < -9.0;
            if ahead_ok && x.abs() > 2.0 {
                let yaw = if same { 0.0 } else { std::f64::consts::PI } + normal(&mut b.rng, 0.03, 0.15);
                let y = lane_centre(lane) + normal(&mut b.rng, 0.2, 0.5);
                b.vehicle(x, y, yaw, 0.8);
            }
            x += 8.0 + b.rng.random_range(10.0..30.0 + 60.0 * dense);
        }
    }

    // Parked rows.
    for (k, &p) in parking.iter().enumerate() {
        if p == 0 {
            continue;
        }
        let occupancy = b.rng.random_range(0.15..0.7);
        let (side, edge) = if k == 0 {
            (-1.0, right_edge)
        } else {
            (1.0, left_edge)
        };
        let mut x = x_min + b.rng.random_range(0.0..5.0);
        while x < x_max {
            let slot = if p == 1 { 6.0 } else { 2.6 };
            if b.rng.random_bool(occupancy) && !in_cross(x, 3.0) {
                let (y, yaw) = if p == 1 {
                    let base = if k == 0 || n_opp == 0 {
                        0.0
                    } else {
                        std::f64::consts::PI
                    };
                    (
                        edge - side * 1.1 + normal(&mut b.rng, 0.1, 0.3),
                        base + normal(&mut b.rng, 0.04, 0.15),
                    )
                } else {
                    let nose_in = b.rng.random_bool(0.7);
                    let yaw = side * std::f64::consts::FRAC_PI_2 * if nose_in { 1.0 } else { -1.0 };
                    (edge - side * 2.6, yaw + normal(&mut b.rng, 0.05, 0.2))
                };
                let dx = normal(&mut b.rng, 0.3, 1.0);
                b.vehicle(x + dx, y, yaw, 0.25);
            }
            x += slot;
        }
    }

    // People on the sidewalks (some crossing), cyclists at the road edge.
    let poisson = |rng: &mut StdRng, mean: f64| {
        rand_distr::Poisson::new(mean.max(1e-9)).map_or(0, |d| d.sample(rng) as usize)
    };
    for _ in 0..poisson(&mut b.rng, config.pedestrians_mean) {
        let side = if b.rng.random_bool(0.5) { -1.0 } else { 1.0 };
        let x = b.rng.random_range(config.min_object_distance_m..60.0);
        let crossing = b.rng.random_bool(0.15);
        let (y, yaw) = if crossing {
            (
                b.rng.random_range(right_edge..left_edge),
                side * std::f64::consts::FRAC_PI_2,
            )
        } else {
            let edge = if side < 0.0 { right_edge } else { left_edge };
            let yaw = if b.rng.random_bool(0.5) {
                0.0
            } else {
                std::f64::consts::PI
            };
            (
                edge + side * b.rng.random_range(0.4..sidewalk - 0.3),
                yaw + normal(&mut b.rng, 0.3, 1.0),
            )
        };
        let cloth = pick_colour(
            &mut b.rng,
            &[
                [0.05, 0.05, 0.06],
                [0.1, 0.12, 0.25],
                [0.4, 0.05, 0.05],
                [0.35, 0.33, 0.3],
                [0.6, 0.55, 0.45],
            ],
        );
        b.clutter(
            ObjectClass::Pedestrian,
            "pedestrian",
            |r, _| clutter::pedestrian_mesh(r),
            (x, y, yaw),
            cloth,
            Surface::Cloth,
        );
    }
    for _ in 0..poisson(&mut b.rng, config.cyclists_mean) {
        let x = b.rng.random_range(config.min_object_distance_m..60.0);
        let (y, yaw) = if b.rng.random_bool(0.7) || n_opp == 0 {
            (first_lane + 0.6, 0.0)
        } else {
            (first_lane + n_lanes as f64 * lane_w - 0.6, std::f64::consts::PI)
        };
        let cloth = pick_colour(
            &mut b.rng,
            &[[0.05, 0.05, 0.06], [0.5, 0.45, 0.05], [0.1, 0.2, 0.4]],
        );
        let yaw = yaw + normal(&mut b.rng, 0.05, 0.2);
        b.clutter(
            ObjectClass::Cyclist,
            "cyclist",
            |r, _| clutter::cyclist_mesh(r),
            (x, y, yaw),
            cloth,
            Surface::Cloth,
        );
    }

    // Poles at the kerb and trees along the sidewalks.
    for side in [-1.0f64, 1.0] {
        let edge = if side < 0.0 { right_edge } else { left_edge };
        let mut x = x_min + b.rng.random_range(0.0..20.0);
        while x < x_max {
            if !in_cross(x, 1.0) {
                let yaw = b.rng.random_range(-0.1..0.1);
                b.clutter(
                    ObjectClass::Pole,
                    "pole",
                    |r, _| clutter::pole_mesh(r),
                    (x, edge + side * 0.4, yaw),
                    [0.3, 0.32, 0.3],
                    Surface::Metal,
                );
            }
            x += b.rng.random_range(12.0..40.0);
        }
        if b.rng.random_bool(0.4) {
            let mut x = x_min + b.rng.random_range(0.0..10.0);
            while x < x_max {
                if !in_cross(x, 2.0) {
                    b.clutter(
                        ObjectClass::Tree,
                        "tree",
                        clutter::tree_mesh,
                        (x, edge + side * (sidewalk - 0.8), 0.0),
                        [0.06, 0.17, 0.04],
                        Surface::Foliage,
                    );
                }
                x += b.rng.random_range(7.0..18.0);
            }
        }
    }

    Scene {
        ground,
        road,
        objects: b.objects,
    }
}

/// Builders shared by the unit tests of the sensor modules.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::mesh::Material;
    use nalgebra::Point3;

    /// A closed box in the model frame: `length_m` along z, `width_m` along x, `height_m` up from 0.
    pub(crate) fn cuboid(length_m: f32, width_m: f32, height_m: f32) -> TriMesh {
        let mut m = TriMesh::new();
        clutter::push_box(
            &mut m,
            Point3::new(-width_m / 2.0, 0.0, -length_m / 2.0),
            Point3::new(width_m / 2.0, height_m, length_m / 2.0),
            Material::Body,
        );
        m
    }

    /// A labelled-or-not test object with a procedural shape reference.
    pub(crate) fn object(
        class: ObjectClass,
        mesh: TriMesh,
        velo_from_model: Isometry3<f64>,
        colour_rgb: [f32; 3],
        surface: Surface,
    ) -> SceneObject {
        SceneObject {
            class,
            shape: ShapeRef::Procedural {
                kind: "test".into(),
                seed: 0,
            },
            mesh,
            velo_from_model,
            colour_rgb,
            surface,
            dont_care: false,
        }
    }

    /// A level road (two 3.5 m lanes each way of the centre, 2.5 m sidewalks) holding `objects`.
    pub(crate) fn scene(objects: Vec<SceneObject>) -> Scene {
        Scene {
            ground: Ground::level(LIDAR_MOUNT_HEIGHT_M),
            road: RoadLayout {
                right_edge_y_m: -5.25,
                left_edge_y_m: 5.25,
                lane_lines_y_m: vec![-1.75, 1.75],
                sidewalk_width_m: 2.5,
                cross_street: None,
            },
            objects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footprint_of(o: &SceneObject) -> Footprint {
        let (lo, hi) = o.mesh.bounds().unwrap();
        let iso = &o.velo_from_model;
        let centre =
            iso * nalgebra::Point3::new(((lo.x + hi.x) / 2.0) as f64, 0.0, ((lo.z + hi.z) / 2.0) as f64);
        let fwd = iso * nalgebra::Vector3::z();
        Footprint {
            centre: [centre.x, centre.y],
            half: [((hi.z - lo.z) / 2.0) as f64, ((hi.x - lo.x) / 2.0) as f64],
            yaw_rad: fwd.y.atan2(fwd.x),
        }
    }

    #[test]
    fn footprints_overlap_only_when_they_touch() {
        let a = Footprint {
            centre: [0.0, 0.0],
            half: [2.0, 1.0],
            yaw_rad: 0.0,
        };
        let mut b = a;
        b.centre = [4.1, 0.0];
        assert!(!a.overlaps(&b, 0.0));
        assert!(a.overlaps(&b, 0.2));
        b.yaw_rad = std::f64::consts::FRAC_PI_4;
        b.centre = [3.0, 2.0];
        assert!(a.overlaps(&b, 0.0));
    }

    #[test]
    fn scenes_have_no_interpenetration_and_realistic_content() {
        let lib = ShapeLibrary::procedural(1, 50);
        let config = SceneConfig::default();
        let mut yaws = Vec::new();
        let mut classes = std::collections::HashSet::new();
        let mut labelled_ahead = 0;
        for seed in 0..12 {
            let scene = generate_scene(&lib, &config, seed);
            let fps: Vec<Footprint> = scene.objects.iter().map(footprint_of).collect();
            for i in 0..fps.len() {
                for j in i + 1..fps.len() {
                    assert!(
                        !fps[i].overlaps(&fps[j], -0.02),
                        "seed {seed}: {:?} {i} and {:?} {j} overlap",
                        scene.objects[i].class,
                        scene.objects[j].class
                    );
                }
            }
            for o in &scene.objects {
                classes.insert(o.class);
                let t = o.velo_from_model.translation.vector;
                // Everything stands on the ground.
                assert!(scene.ground.signed_distance_m(&t.into()).abs() < 1e-9);
                if o.class.is_vehicle() {
                    let f = o.velo_from_model * nalgebra::Vector3::z();
                    yaws.push(f.y.atan2(f.x));
                    if t.x > 4.0 && t.x < 80.0 {
                        labelled_ahead += 1;
                    }
                    assert_eq!(o.dont_care, t.x.hypot(t.y) > config.max_label_distance_m);
                }
            }
        }
        for c in [
            ObjectClass::Car,
            ObjectClass::Building,
            ObjectClass::Pole,
            ObjectClass::Pedestrian,
        ] {
            assert!(classes.contains(&c), "no {c:?} in 12 scenes");
        }
        assert!(
            labelled_ahead > 12 * 5,
            "only {labelled_ahead} vehicles ahead in 12 scenes"
        );
        // Headings: mostly along the road both ways, some across.
        let along = yaws.iter().filter(|y| y.cos().abs() > 0.9).count();
        let forward = yaws.iter().filter(|y| y.cos() > 0.9).count();
        assert!(along as f64 > 0.6 * yaws.len() as f64);
        assert!(forward > 0 && forward < along, "both directions expected");
    }

    #[test]
    fn scenes_are_deterministic_and_vary_with_the_seed() {
        let lib = ShapeLibrary::procedural(1, 50);
        let c = SceneConfig::default();
        let a = generate_scene(&lib, &c, 5);
        let b = generate_scene(&lib, &c, 5);
        assert_eq!(a.objects.len(), b.objects.len());
        assert_eq!(a.ground, b.ground);
        assert!(
            a.objects
                .iter()
                .zip(&b.objects)
                .all(|(x, y)| x.velo_from_model == y.velo_from_model && x.mesh == y.mesh)
        );
        let d = generate_scene(&lib, &c, 6);
        assert!(a.ground != d.ground || a.objects.len() != d.objects.len());
    }

    #[test]
    fn road_layout_marks_lanes_and_sidewalks() {
        let road = RoadLayout {
            right_edge_y_m: -5.0,
            left_edge_y_m: 5.0,
            lane_lines_y_m: vec![0.0],
            sidewalk_width_m: 2.0,
            cross_street: None,
        };
        assert_eq!(road.ground_kind(1.0, 0.0), GroundKind::Marking);
        assert_eq!(road.ground_kind(5.0, 0.0), GroundKind::Asphalt); // gap of the dashed line
        assert_eq!(road.ground_kind(1.0, 2.0), GroundKind::Asphalt);
        assert_eq!(road.ground_kind(1.0, 6.0), GroundKind::Sidewalk);
        assert_eq!(road.ground_kind(1.0, -8.0), GroundKind::Verge);
    }
}
