//! Scenes: a road with lanes and sidewalks, parked rows and traffic, and clutter, each object a mesh
//! placed in the Velodyne frame.

use crate::mesh::TriMesh;
use crate::world::{Ground, ObjectId, WorldMesh};
use kitti::ObjectType;
use nalgebra::Isometry3;
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
}

impl RoadLayout {
    /// What the ground is at `(x, y)` (Velodyne frame).
    pub fn ground_kind(&self, x_m: f64, y_m: f64) -> GroundKind {
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
