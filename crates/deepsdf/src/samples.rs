//! Signed-distance samples from triangle meshes, and the canonical frame of the shape prior.
//!
//! # The canonical frame
//!
//! Every shape the prior sees lives in one **canonical frame**: the model frame of `sim` (metres,
//! +y up, +z front, +x left) shifted so that the centre of the mesh's axis-aligned bounding box is
//! the origin, then divided by a scale `metres_per_unit` that is fixed for a whole library
//! ([`DEFAULT_METRES_PER_UNIT`] = 2.75 m, so that every KITTI-sized car, up to 5.5 m long, lies
//! inside the cube [−1, 1]³). A point converts as
//!
//! ```text
//! p_unit    = (p_model_m − centre_model_m) / metres_per_unit
//! p_model_m = p_unit · metres_per_unit + centre_model_m
//! ```
//!
//! and signed distances convert by the scale alone (`sdf_m = sdf_unit · metres_per_unit`). The
//! normalised object coordinates used for NOCS maps are `nocs = (p_unit + 1) / 2` ∈ [0, 1]³
//! ([`unit_to_nocs`]). Because the scale is shared, a shape's size survives normalisation: the
//! latent code describes shape *and* size, and the box dimensions of a decoded shape are metric.
//!
//! # Signed distances
//!
//! [`MeshSdf`] answers signed-distance queries for a closed mesh that may be made of several
//! overlapping closed components (a body and its wheels). The sign comes from the exact winding
//! number (a signed count of ray crossings), so it describes the union of the components with no
//! reliance on pseudo-normals, which overlapping parts would confuse. Outside, the magnitude is the
//! exact distance to the nearest triangle (bounding-volume hierarchies searched branch-and-bound,
//! then Ericson's closest point on a triangle); inside, it is the depth in the deepest component
//! containing the point (the CSG union `minᵢ sdfᵢ`), so faces buried inside another component
//! create no spurious near-zero values.
//!
//! # Samples
//!
//! [`sample_sdf`] draws DeepSDF's training samples: surface points perturbed by isotropic Gaussian
//! noise at two scales plus uniform points in [−1, 1]³, all in canonical units. Surface points are
//! drawn from the *visible* (outer) surface of the union only — patches of one component buried
//! inside another (a tyre inside its wheel arch) are rejected, see [`surface_samples`].

use crate::error::{DeepSdfError, Result};
use nalgebra::{Point3, Vector3};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use rand_distr::Normal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sim::TriMesh;
use std::collections::HashMap;

/// Metres per canonical unit for a library of cars: half of the longest car we expect (5.5 m), so
/// every such car fits inside [−1, 1]³.
pub const DEFAULT_METRES_PER_UNIT: f32 = 2.75;

/// Most triangles in a leaf of the distance hierarchy.
const MAX_LEAF_TRIANGLES: usize = 4;
/// Traversal stack size: the hierarchy is split at the object median, so its depth is at most
/// ⌈log₂ n⌉ + 1 ≤ 33 for any `u32` triangle count.
const STACK_SIZE: usize = 64;
/// Target number of crossing-grid cells per triangle.
const CELLS_PER_TRIANGLE: f64 = 1.0;
/// Most crossing-grid cells along one axis.
const MAX_CELLS_PER_AXIS: usize = 1024;
/// Offset along the face normal, relative to the bounding-box diagonal, at which a surface sample is
/// tested for visibility (see [`surface_samples`]).
const VISIBILITY_OFFSET_REL: f32 = 1e-4;
/// Most rounds of candidate draws in [`surface_samples`] before giving up.
const MAX_SURFACE_ROUNDS: usize = 64;

/// The map between a mesh's model frame (metres) and the canonical frame (units) of the shape
/// prior; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// Centre of the mesh's axis-aligned bounding box in the model frame, in metres: the canonical
    /// origin.
    pub centre_model_m: [f32; 3],
    /// Metres per canonical unit (the same for every shape of a library).
    pub metres_per_unit: f32,
}

impl Normalisation {
    /// The normalisation of `mesh`: its bounding-box centre and the library-wide scale
    /// `metres_per_unit` (usually [`DEFAULT_METRES_PER_UNIT`]).
    ///
    /// Errors: [`DeepSdfError::Empty`] for a mesh without vertices, [`DeepSdfError::InvalidInput`]
    /// for a scale that is not finite and positive.
    pub fn for_mesh(mesh: &TriMesh, metres_per_unit: f32) -> Result<Self> {
        if !(metres_per_unit.is_finite() && metres_per_unit > 0.0) {
            return Err(DeepSdfError::InvalidInput(format!(
                "metres_per_unit must be finite and positive, got {metres_per_unit}"
            )));
        }
        let (lo, hi) = mesh
            .bounds()
            .ok_or_else(|| DeepSdfError::Empty("cannot normalise a mesh without vertices".into()))?;
        Ok(Normalisation {
            centre_model_m: ((lo.coords + hi.coords) / 2.0).into(),
            metres_per_unit,
        })
    }

    /// A point of the model frame (metres) in the canonical frame (units).
    pub fn to_unit(&self, p_model_m: [f32; 3]) -> [f32; 3] {
        let s = 1.0 / self.metres_per_unit;
        std::array::from_fn(|k| (p_model_m[k] - self.centre_model_m[k]) * s)
    }

    /// A point of the canonical frame (units) in the model frame (metres).
    pub fn to_model_m(&self, p_unit: [f32; 3]) -> [f32; 3] {
        std::array::from_fn(|k| p_unit[k] * self.metres_per_unit + self.centre_model_m[k])
    }

    /// A copy of `mesh_model_m` with every vertex in the canonical frame.
    pub fn mesh_to_unit(&self, mesh_model_m: &TriMesh) -> TriMesh {
        self.map_vertices(mesh_model_m, |p| self.to_unit(p))
    }

    /// A copy of `mesh_unit` (for instance an extracted isosurface) with every vertex in the model
    /// frame, in metres.
    pub fn mesh_to_model_m(&self, mesh_unit: &TriMesh) -> TriMesh {
        self.map_vertices(mesh_unit, |p| self.to_model_m(p))
    }

    fn map_vertices(&self, mesh: &TriMesh, f: impl Fn([f32; 3]) -> [f32; 3]) -> TriMesh {
        TriMesh {
            vertices: mesh
                .vertices
                .iter()
                .map(|v| Point3::from(f((*v).into())))
                .collect(),
            triangles: mesh.triangles.clone(),
            materials: mesh.materials.clone(),
        }
    }
}

/// Normalised object coordinates of a canonical point: `(p_unit + 1) / 2`, in [0, 1]³ for points
/// of the canonical cube.
pub fn unit_to_nocs(p_unit: [f32; 3]) -> [f32; 3] {
    p_unit.map(|x| (x + 1.0) / 2.0)
}

/// One triangle's corners, copied out of the mesh (in the order of the distance hierarchies).
#[derive(Clone, Copy, Debug)]
struct Tri {
    a: Vector3<f64>,
    b: Vector3<f64>,
    c: Vector3<f64>,
    /// Whether the corners are (numerically) collinear: distances then use the three edges.
    degenerate: bool,
}

/// A node of a distance hierarchy: a box and either two children (`count == 0`, children at
/// `first` and `first + 1`) or the leaf triangles `first..first + count`.
#[derive(Clone, Copy, Debug)]
struct Node {
    lo: [f64; 3],
    hi: [f64; 3],
    first: u32,
    count: u32,
}

/// Triangles binned by the bounding boxes of their projections onto the (y, z) plane, for counting
/// the crossings of rays cast along +x.
#[derive(Clone, Debug)]
struct CrossingGrid {
    lo: [f64; 2],
    hi: [f64; 2],
    cells_per_unit: [f64; 2],
    dims: [usize; 2],
    /// Start of each cell's slice of `cell_tris` (CSR layout, `dims[0]·dims[1] + 1` entries).
    cell_start: Vec<u32>,
    /// Triangle indices (into [`MeshSdf::tris`], increasing within a cell) of every cell.
    cell_tris: Vec<u32>,
}

/// Signed distances to a closed triangle mesh, built once per mesh ([`MeshSdf::new`]).
///
/// Distances are in the mesh's own units and negative inside. The mesh may consist of several
/// closed, outward-oriented components that overlap (body and wheels): the inside is their union.
/// Components are the connected sets of triangles, vertices being joined by position (so a mesh
/// whose vertices are duplicated along seams is still one component).
///
/// **Sign.** The winding number of a query point p is the signed number of triangles crossed by
/// the ray from p along +x: +1 for a triangle whose normal has a positive x component (the ray
/// leaves that component), −1 otherwise; p is inside when it exceeds ½. To find the crossed
/// triangles a query tests only the triangles of one cell of a grid over the (y, z) plane, into
/// which every triangle was binned by its projected bounding box.
///
/// Rays through edges and vertices are resolved by *simulation of simplicity*: the 2D point
/// (p_y, p_z) is treated as if moved by an infinitesimal (ε, ε²), so it never lies on a projected
/// edge. Each edge test is evaluated with its endpoints in a canonical (lexicographic) order, so
/// the two triangles sharing an edge always agree on which side of it the point is; a ray through
/// a shared edge or vertex is thus counted exactly once, also for axis-aligned meshes queried on
/// a grid. Triangles parallel to the ray (zero projected area) cross nothing. The only remaining
/// inexactness is `f64` rounding in the 2D orientation tests, which can matter only for points
/// within ~1e-15 (relative) of a projected edge.
///
/// **Distance.** Outside, the magnitude is the exact distance to the nearest triangle: Ericson's
/// closest point on a triangle, in `f64`, found by a branch-and-bound search of bounding-volume
/// hierarchies (one per component, object-median splits, at most four triangles per leaf); no
/// approximation beyond rounding. Inside, it is the depth in the deepest component containing p,
/// i.e. the signed distance is the CSG union `minᵢ sdfᵢ` of the components' exact SDFs: faces of
/// one component buried inside another do not create spurious near-zero values inside the shape.
/// This is exact unless the nearest point of that component's boundary is itself buried (then
/// the true depth of the union is larger); the zero set and the sign are exact either way.
#[derive(Clone, Debug)]
pub struct MeshSdf {
    /// Triangles grouped by component, each group in the order of its hierarchy.
    tris: Vec<Tri>,
    /// The component of each triangle (non-decreasing).
    tri_component: Vec<u32>,
    /// Nodes of every component's hierarchy.
    nodes: Vec<Node>,
    /// The root node of each component's hierarchy.
    roots: Vec<u32>,
    grid: CrossingGrid,
}

impl MeshSdf {
    /// Builds the distance hierarchies and the crossing grid of `mesh`.
    ///
    /// Errors: [`DeepSdfError::Empty`] for a mesh without triangles, [`DeepSdfError::InvalidInput`]
    /// for a triangle index past the vertex list or a vertex that is not finite.
    pub fn new(mesh: &TriMesh) -> Result<Self> {
        if mesh.triangles.is_empty() {
            return Err(DeepSdfError::Empty("mesh has no triangles".into()));
        }
        if let Some(v) = mesh
            .vertices
            .iter()
            .position(|v| !v.coords.iter().all(|x| x.is_finite()))
        {
            return Err(DeepSdfError::InvalidInput(format!(
                "vertex {v} is not finite: {:?}",
                mesh.vertices[v]
            )));
        }
        let n_vertices = mesh.vertices.len();
        if let Some((t, i)) = mesh
            .triangles
            .iter()
            .enumerate()
            .find_map(|(t, tri)| tri.iter().find(|&&i| i as usize >= n_vertices).map(|&i| (t, i)))
        {
            return Err(DeepSdfError::InvalidInput(format!(
                "triangle {t} refers to vertex {i} of {n_vertices}"
            )));
        }
        let component = triangle_components(mesh);
        let mut by_component: Vec<u32> = (0..mesh.triangles.len() as u32).collect();
        by_component.sort_by_key(|&t| component[t as usize]);
        let tris: Vec<Tri> = by_component
            .iter()
            .map(|&t| {
                let [a, b, c] =
                    mesh.triangles[t as usize].map(|i| mesh.vertices[i as usize].coords.cast::<f64>());
                Tri::new(a, b, c)
            })
            .collect();
        let mut tri_component: Vec<u32> = by_component.iter().map(|&t| component[t as usize]).collect();
        let mut order: Vec<u32> = (0..tris.len() as u32).collect();
        let mut nodes = Vec::with_capacity(2 * tris.len() / MAX_LEAF_TRIANGLES + 2);
        let mut roots = Vec::new();
        let mut start = 0;
        while start < tris.len() {
            let end = start + tri_component[start..].partition_point(|&c| c == tri_component[start]);
            roots.push(nodes.len() as u32);
            nodes.push(Node {
                lo: [0.0; 3],
                hi: [0.0; 3],
                first: 0,
                count: 0,
            });
            let root = nodes.len() - 1;
            build_node(&tris, &mut order[start..end], start, root, &mut nodes);
            start = end;
        }
        let tris: Vec<Tri> = order.iter().map(|&i| tris[i as usize]).collect();
        tri_component = order.iter().map(|&i| tri_component[i as usize]).collect();
        let grid = CrossingGrid::new(&tris);
        Ok(MeshSdf {
            tris,
            tri_component,
            nodes,
            roots,
            grid,
        })
    }

    /// The number of triangles.
    pub fn triangle_count(&self) -> usize {
        self.tris.len()
    }

    /// The number of connected components (vertices joined by position).
    pub fn component_count(&self) -> usize {
        self.roots.len()
    }

    /// The signed distance from `p` to the mesh surface (mesh units, negative inside); see the
    /// type docs for its exact meaning inside overlapping components.
    pub fn signed_distance(&self, p: [f32; 3]) -> f32 {
        let q = Vector3::from(p).cast::<f64>();
        let mut winding = 0;
        let mut depth_squared: Option<f64> = None;
        self.grid
            .component_crossings(&self.tris, &self.tri_component, p, |component, crossings| {
                winding += crossings;
                if crossings > 0 {
                    let root = self.roots[component as usize];
                    let d2 = self.nearest_squared(root, &q, f64::INFINITY);
                    depth_squared = Some(depth_squared.map_or(d2, |d| d.max(d2)));
                }
            });
        if winding > 0 {
            let d2 = depth_squared.unwrap_or_else(|| self.nearest_squared_all(&q));
            -(d2.sqrt() as f32)
        } else {
            self.nearest_squared_all(&q).sqrt() as f32
        }
    }

    /// Signed distances of many points, in parallel (rayon); the result does not depend on the
    /// number of threads.
    pub fn signed_distances(&self, points: &[[f32; 3]]) -> Vec<f32> {
        points.par_iter().map(|&p| self.signed_distance(p)).collect()
    }

    /// The unsigned distance from `p` to the nearest triangle (mesh units), buried or not.
    pub fn distance(&self, p: [f32; 3]) -> f32 {
        self.nearest_squared_all(&Vector3::from(p).cast::<f64>()).sqrt() as f32
    }

    /// The winding number of the surface around `p`: how many components contain it (an integer,
    /// returned as `f32`); 0 outside, 1 inside one component, 2 where two overlap. Points exactly
    /// on the surface get either neighbouring value.
    pub fn winding_number(&self, p: [f32; 3]) -> f32 {
        let mut winding = 0;
        self.grid
            .component_crossings(&self.tris, &self.tri_component, p, |_, k| winding += k);
        winding as f32
    }

    /// Whether `p` is inside the mesh (winding number > ½).
    pub fn is_inside(&self, p: [f32; 3]) -> bool {
        self.winding_number(p) > 0.5
    }

    /// The squared distance to the nearest triangle of any component.
    fn nearest_squared_all(&self, p: &Vector3<f64>) -> f64 {
        self.roots
            .iter()
            .fold(f64::INFINITY, |best, &root| self.nearest_squared(root, p, best))
    }

    /// The squared distance to the nearest triangle under `root` if below `bound`, else `bound`.
    fn nearest_squared(&self, root: u32, p: &Vector3<f64>, bound: f64) -> f64 {
        let mut best = bound;
        let mut stack = [(0u32, 0f64); STACK_SIZE];
        stack[0] = (root, box_distance_squared(&self.nodes[root as usize], p));
        let mut len = 1;
        while len > 0 {
            len -= 1;
            let (index, d2) = stack[len];
            if d2 >= best {
                continue;
            }
            let node = &self.nodes[index as usize];
            if node.count > 0 {
                let first = node.first as usize;
                for tri in &self.tris[first..first + node.count as usize] {
                    best = best.min(tri.distance_squared(p));
                }
                continue;
            }
            let (l, r) = (node.first, node.first + 1);
            let dl = box_distance_squared(&self.nodes[l as usize], p);
            let dr = box_distance_squared(&self.nodes[r as usize], p);
            let (near, far) = if dl <= dr {
                ((l, dl), (r, dr))
            } else {
                ((r, dr), (l, dl))
            };
            for entry in [far, near] {
                if entry.1 < best && len < STACK_SIZE {
                    stack[len] = entry;
                    len += 1;
                }
            }
        }
        best
    }
}

/// The connected component of each triangle, numbered in order of first appearance; vertices with
/// identical coordinates count as one.
fn triangle_components(mesh: &TriMesh) -> Vec<u32> {
    let mut first_at: HashMap<[u32; 3], u32> = HashMap::with_capacity(mesh.vertices.len());
    // Adding 0.0 turns −0.0 into +0.0, so both key alike.
    let welded: Vec<u32> = (0..mesh.vertices.len() as u32)
        .map(|i| {
            let key = mesh.vertices[i as usize]
                .coords
                .map(|x| (x + 0.0).to_bits())
                .into();
            *first_at.entry(key).or_insert(i)
        })
        .collect();
    let mut parent: Vec<u32> = (0..mesh.vertices.len() as u32).collect();
    fn find(parent: &mut [u32], mut i: u32) -> u32 {
        while parent[i as usize] != i {
            let up = parent[parent[i as usize] as usize];
            parent[i as usize] = up;
            i = up;
        }
        i
    }
    for t in &mesh.triangles {
        let r0 = find(&mut parent, welded[t[0] as usize]);
        for &v in &t[1..] {
            let r = find(&mut parent, welded[v as usize]);
            let r0 = find(&mut parent, r0);
            if r != r0 {
                parent[r.max(r0) as usize] = r.min(r0);
            }
        }
    }
    let mut ids: HashMap<u32, u32> = HashMap::new();
    mesh.triangles
        .iter()
        .map(|t| {
            let root = find(&mut parent, welded[t[0] as usize]);
            let next = ids.len() as u32;
            *ids.entry(root).or_insert(next)
        })
        .collect()
}

impl Tri {
    fn new(a: Vector3<f64>, b: Vector3<f64>, c: Vector3<f64>) -> Self {
        let cross = (b - a).cross(&(c - a)).norm_squared();
        let longest = (b - a)
            .norm_squared()
            .max((c - a).norm_squared())
            .max((c - b).norm_squared());
        Tri {
            a,
            b,
            c,
            degenerate: cross <= 1e-20 * longest * longest,
        }
    }

    fn lo(&self) -> Vector3<f64> {
        self.a.inf(&self.b).inf(&self.c)
    }

    fn hi(&self) -> Vector3<f64> {
        self.a.sup(&self.b).sup(&self.c)
    }

    fn distance_squared(&self, p: &Vector3<f64>) -> f64 {
        if self.degenerate {
            segment_distance_squared(p, &self.a, &self.b)
                .min(segment_distance_squared(p, &self.b, &self.c))
                .min(segment_distance_squared(p, &self.c, &self.a))
        } else {
            (closest_point_on_triangle(p, &self.a, &self.b, &self.c) - p).norm_squared()
        }
    }
}

/// The point of triangle (a, b, c) closest to p, by Voronoi regions (Ericson, *Real-Time Collision
/// Detection*, §5.1.5). The triangle must not be degenerate.
fn closest_point_on_triangle(
    p: &Vector3<f64>,
    a: &Vector3<f64>,
    b: &Vector3<f64>,
    c: &Vector3<f64>,
) -> Vector3<f64> {
    let ab = b - a;
    let ac = c - a;
    let ap = p - a;
    let d1 = ab.dot(&ap);
    let d2 = ac.dot(&ap);
    if d1 <= 0.0 && d2 <= 0.0 {
        return *a;
    }
    let bp = p - b;
    let d3 = ab.dot(&bp);
    let d4 = ac.dot(&bp);
    if d3 >= 0.0 && d4 <= d3 {
        return *b;
    }
    let vc = d1 * d4 - d3 * d2;
    if vc <= 0.0 && d1 >= 0.0 && d3 <= 0.0 {
        return a + ab * (d1 / (d1 - d3));
    }
    let cp = p - c;
    let d5 = ab.dot(&cp);
    let d6 = ac.dot(&cp);
    if d6 >= 0.0 && d5 <= d6 {
        return *c;
    }
    let vb = d5 * d2 - d1 * d6;
    if vb <= 0.0 && d2 >= 0.0 && d6 <= 0.0 {
        return a + ac * (d2 / (d2 - d6));
    }
    let va = d3 * d6 - d5 * d4;
    if va <= 0.0 && d4 - d3 >= 0.0 && d5 - d6 >= 0.0 {
        return b + (c - b) * ((d4 - d3) / ((d4 - d3) + (d5 - d6)));
    }
    let denom = va + vb + vc;
    if denom.abs() <= f64::MIN_POSITIVE {
        return *a;
    }
    a + ab * (vb / denom) + ac * (vc / denom)
}

fn segment_distance_squared(p: &Vector3<f64>, a: &Vector3<f64>, b: &Vector3<f64>) -> f64 {
    let ab = b - a;
    let len2 = ab.norm_squared();
    let t = if len2 > 0.0 {
        ((p - a).dot(&ab) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (a + ab * t - p).norm_squared()
}

fn box_distance_squared(node: &Node, p: &Vector3<f64>) -> f64 {
    (0..3)
        .map(|k| {
            let d = (node.lo[k] - p[k]).max(p[k] - node.hi[k]).max(0.0);
            d * d
        })
        .sum()
}

/// Builds the hierarchy node `index` over the triangles `order` (indices into `tris`), which sit
/// at `offset..offset + order.len()` of the final triangle order; children are appended to `nodes`.
fn build_node(tris: &[Tri], order: &mut [u32], offset: usize, index: usize, nodes: &mut Vec<Node>) {
    let mut lo = Vector3::repeat(f64::INFINITY);
    let mut hi = Vector3::repeat(f64::NEG_INFINITY);
    let mut c_lo = lo;
    let mut c_hi = hi;
    for &i in order.iter() {
        let t = &tris[i as usize];
        lo = lo.inf(&t.lo());
        hi = hi.sup(&t.hi());
        let centroid = (t.a + t.b + t.c) / 3.0;
        c_lo = c_lo.inf(&centroid);
        c_hi = c_hi.sup(&centroid);
    }
    if order.len() <= MAX_LEAF_TRIANGLES {
        nodes[index] = Node {
            lo: lo.into(),
            hi: hi.into(),
            first: offset as u32,
            count: order.len() as u32,
        };
        return;
    }
    let axis = (c_hi - c_lo).imax();
    let mid = order.len() / 2;
    let key = |i: u32| {
        let t = &tris[i as usize];
        t.a[axis] + t.b[axis] + t.c[axis]
    };
    order.select_nth_unstable_by(mid, |&i, &j| key(i).total_cmp(&key(j)));
    let left = nodes.len();
    let placeholder = nodes[index];
    nodes.push(placeholder);
    nodes.push(placeholder);
    nodes[index] = Node {
        lo: lo.into(),
        hi: hi.into(),
        first: left as u32,
        count: 0,
    };
    let (l, r) = order.split_at_mut(mid);
    build_node(tris, l, offset, left, nodes);
    build_node(tris, r, offset + mid, left + 1, nodes);
}

impl CrossingGrid {
    fn new(tris: &[Tri]) -> Self {
        let mut lo = [f64::INFINITY; 2];
        let mut hi = [f64::NEG_INFINITY; 2];
        let mut crossing = Vec::with_capacity(tris.len());
        for (i, t) in tris.iter().enumerate() {
            // Triangles parallel to the ray (zero projected area) can never be crossed.
            if orient(project(&t.a), project(&t.b), project(&t.c)) == 0.0 {
                continue;
            }
            crossing.push(i as u32);
            for k in 0..2 {
                lo[k] = lo[k].min(t.lo()[k + 1]);
                hi[k] = hi[k].max(t.hi()[k + 1]);
            }
        }
        if crossing.is_empty() {
            return CrossingGrid {
                lo: [0.0; 2],
                hi: [-1.0; 2],
                cells_per_unit: [1.0; 2],
                dims: [1, 1],
                cell_start: vec![0, 0],
                cell_tris: Vec::new(),
            };
        }
        let extent = [0, 1].map(|k| (hi[k] - lo[k]).max(1e-12));
        let cell = (extent[0] * extent[1] / (crossing.len() as f64 * CELLS_PER_TRIANGLE)).sqrt();
        let dims = extent.map(|e| ((e / cell).ceil() as usize).clamp(1, MAX_CELLS_PER_AXIS));
        let cells_per_unit = [0, 1].map(|k| dims[k] as f64 / extent[k]);
        let mut grid = CrossingGrid {
            lo,
            hi,
            cells_per_unit,
            dims,
            cell_start: vec![0; dims[0] * dims[1] + 1],
            cell_tris: Vec::new(),
        };
        // Two passes (count, then fill) into a CSR layout; triangles stay in increasing order.
        let ranges: Vec<([usize; 2], [usize; 2])> = crossing
            .iter()
            .map(|&i| {
                let t = &tris[i as usize];
                let (tlo, thi) = (t.lo(), t.hi());
                (grid.cell_of([tlo.y, tlo.z]), grid.cell_of([thi.y, thi.z]))
            })
            .collect();
        for &(a, b) in &ranges {
            for u in a[0]..=b[0] {
                for v in a[1]..=b[1] {
                    grid.cell_start[u * dims[1] + v + 1] += 1;
                }
            }
        }
        for k in 1..grid.cell_start.len() {
            grid.cell_start[k] += grid.cell_start[k - 1];
        }
        let mut fill: Vec<u32> = grid.cell_start[..grid.cell_start.len() - 1].to_vec();
        grid.cell_tris = vec![0; grid.cell_start[grid.cell_start.len() - 1] as usize];
        for (&i, &(a, b)) in crossing.iter().zip(&ranges) {
            for u in a[0]..=b[0] {
                for v in a[1]..=b[1] {
                    let slot = &mut fill[u * dims[1] + v];
                    grid.cell_tris[*slot as usize] = i;
                    *slot += 1;
                }
            }
        }
        grid
    }

    /// The cell of a (y, z) point, clamped to the grid (monotone in each coordinate, so a point
    /// inside a triangle's projected box falls into one of the box's cells).
    fn cell_of(&self, yz: [f64; 2]) -> [usize; 2] {
        [0, 1].map(|k| {
            let f = ((yz[k] - self.lo[k]) * self.cells_per_unit[k]).floor();
            if f.is_nan() || f < 0.0 {
                0
            } else {
                (f as usize).min(self.dims[k] - 1)
            }
        })
    }

    /// Calls `f(component, crossings)` for every component whose signed number of crossings by
    /// the ray from `p` along +x (its winding number around p) is not zero.
    fn component_crossings(
        &self,
        tris: &[Tri],
        tri_component: &[u32],
        p: [f32; 3],
        mut f: impl FnMut(u32, i32),
    ) {
        let q = [f64::from(p[1]), f64::from(p[2])];
        // The perturbed point (p_y + ε, p_z + ε²) lies inside a projected box only if
        // lo ≤ p < hi.
        if !(q[0] >= self.lo[0] && q[0] < self.hi[0] && q[1] >= self.lo[1] && q[1] < self.hi[1]) {
            return;
        }
        let [u, v] = self.cell_of(q);
        let cell = u * self.dims[1] + v;
        let range = self.cell_start[cell] as usize..self.cell_start[cell + 1] as usize;
        let x = f64::from(p[0]);
        let mut current = (u32::MAX, 0);
        // Cell triangles are in increasing order, hence grouped by component.
        for &i in &self.cell_tris[range] {
            let k = ray_crossing(&tris[i as usize], q, x);
            if k == 0 {
                continue;
            }
            let c = tri_component[i as usize];
            if c != current.0 {
                if current.1 != 0 {
                    f(current.0, current.1);
                }
                current = (c, 0);
            }
            current.1 += k;
        }
        if current.1 != 0 {
            f(current.0, current.1);
        }
    }
}

fn project(v: &Vector3<f64>) -> [f64; 2] {
    [v.y, v.z]
}

/// Twice the signed area of the 2D triangle (a, b, p).
fn orient(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> f64 {
    (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
}

/// The side of the directed 2D edge a → b on which the point p + (ε, ε²) lies (+1 left, −1 right,
/// 0 only for a degenerate edge), and the unperturbed `orient(a, b, p)`. The edge is evaluated in
/// lexicographic endpoint order so that `side(b, a, p)` is exactly the negation of `side(a, b, p)`.
fn side(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> (i32, f64) {
    if a[0] > b[0] || (a[0] == b[0] && a[1] > b[1]) {
        let (s, o) = side(b, a, p);
        return (-s, -o);
    }
    let o = orient(a, b, p);
    let s = if o > 0.0 {
        1
    } else if o < 0.0 {
        -1
    } else if b[1] != a[1] {
        // orient(a, b, p + (ε, ε²)) = o − (b_z − a_z)·ε + (b_y − a_y)·ε².
        if b[1] < a[1] { 1 } else { -1 }
    } else if b[0] != a[0] {
        if b[0] > a[0] { 1 } else { -1 }
    } else {
        0
    };
    (s, o)
}

/// +1 or −1 when the ray from (x, q) along +x crosses the triangle (by the sign of its normal's x
/// component), else 0.
fn ray_crossing(t: &Tri, q: [f64; 2], x: f64) -> i32 {
    let (a, b, c) = (project(&t.a), project(&t.b), project(&t.c));
    let (s0, o0) = side(b, c, q);
    let (s1, o1) = side(c, a, q);
    let (s2, o2) = side(a, b, q);
    if s0 == 0 || s0 != s1 || s0 != s2 {
        return 0;
    }
    let sum = o0 + o1 + o2;
    let x_hit = if sum != 0.0 {
        (o0 * t.a.x + o1 * t.b.x + o2 * t.c.x) / sum
    } else {
        (t.a.x + t.b.x + t.c.x) / 3.0
    };
    if x_hit > x { s0 } else { 0 }
}

/// How many samples [`sample_sdf`] draws, and how.
///
/// Near-surface samples are points of the visible surface moved by isotropic Gaussian noise with
/// standard deviation `σ` per axis, at a fine and a coarse scale, as in DeepSDF (whose shapes are
/// normalised to the unit sphere; a car in our canonical frame is about as large). The defaults are
/// σ = 0.01 and 0.05 units (2.75 cm and 13.75 cm at [`DEFAULT_METRES_PER_UNIT`]). Uniform samples
/// fill [−1, 1]³ and teach the decoder the far field. Defaults: 6,000 fine, 6,000 coarse and
/// 3,000 uniform samples (15,000 per shape, 80 % near the surface).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SampleConfig {
    /// Number of surface points perturbed at the fine scale.
    pub near_fine_count: usize,
    /// Standard deviation of the fine perturbation per axis, in canonical units.
    pub near_fine_sigma_unit: f32,
    /// Number of surface points perturbed at the coarse scale.
    pub near_coarse_count: usize,
    /// Standard deviation of the coarse perturbation per axis, in canonical units.
    pub near_coarse_sigma_unit: f32,
    /// Number of points drawn uniformly in the canonical cube [−1, 1]³.
    pub uniform_count: usize,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            near_fine_count: 6000,
            near_fine_sigma_unit: 0.01,
            near_coarse_count: 6000,
            near_coarse_sigma_unit: 0.05,
            uniform_count: 3000,
        }
    }
}

impl SampleConfig {
    /// Total number of samples per shape.
    pub fn total(&self) -> usize {
        self.near_fine_count + self.near_coarse_count + self.uniform_count
    }
}

/// SDF samples of one shape in the canonical frame.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SdfSamples {
    /// Sample points in canonical units: the fine near-surface samples, then the coarse ones,
    /// then the uniform ones.
    pub points: Vec<[f32; 3]>,
    /// Signed distance of each point in canonical units (negative inside).
    pub sdf: Vec<f32>,
}

impl SdfSamples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Draws the SDF samples of `mesh` (model frame, metres) in the canonical frame of `norm`, as
/// configured by `config`. Deterministic in `seed` (one seeded `StdRng`; distances are computed in
/// parallel but are pure functions of the points).
///
/// Errors: those of [`MeshSdf::new`] and [`surface_samples`]; [`DeepSdfError::InvalidInput`] for a
/// standard deviation that is not finite and non-negative.
pub fn sample_sdf(
    mesh: &TriMesh,
    norm: &Normalisation,
    config: &SampleConfig,
    seed: u64,
) -> Result<SdfSamples> {
    let unit_mesh = norm.mesh_to_unit(mesh);
    let sdf = MeshSdf::new(&unit_mesh)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let n_near = config.near_fine_count + config.near_coarse_count;
    let (surface, _) = visible_surface_samples(&unit_mesh, &sdf, n_near, &mut rng)?;
    let fine = normal(config.near_fine_sigma_unit)?;
    let coarse = normal(config.near_coarse_sigma_unit)?;
    let mut points = Vec::with_capacity(config.total());
    for (k, s) in surface.iter().enumerate() {
        let noise = if k < config.near_fine_count { fine } else { coarse };
        points.push(std::array::from_fn(|d| s[d] + rng.sample(noise)));
    }
    for _ in 0..config.uniform_count {
        points.push(std::array::from_fn(|_| rng.random_range(-1.0f32..=1.0)));
    }
    let sdf = sdf.signed_distances(&points);
    Ok(SdfSamples { points, sdf })
}

fn normal(sigma: f32) -> Result<Normal<f32>> {
    let invalid =
        |why: String| DeepSdfError::InvalidInput(format!("noise standard deviation {sigma}: {why}"));
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(invalid("must be finite and non-negative".into()));
    }
    Normal::new(0.0, sigma).map_err(|e| invalid(e.to_string()))
}

/// Points on a surface and the unit normals of their triangles, index by index.
pub type SurfaceSamples = (Vec<[f32; 3]>, Vec<[f32; 3]>);

/// `n` points drawn uniformly by area from the visible surface of `mesh`, with the unit normals of
/// their triangles; deterministic in `seed`.
///
/// Only the outer surface of the union of the mesh's components is sampled: a candidate is kept
/// when the point moved a little (10⁻⁴ of the bounding-box diagonal) along its normal is outside
/// the mesh, so patches of one component buried inside another (hidden by overlap) are skipped.
/// Points are in the mesh's units.
///
/// Errors: those of [`MeshSdf::new`]; [`DeepSdfError::Empty`] when the mesh has no area or no
/// visible surface was found.
pub fn surface_samples(mesh: &TriMesh, n: usize, seed: u64) -> Result<SurfaceSamples> {
    surface_samples_with(mesh, &MeshSdf::new(mesh)?, n, seed)
}

/// [`surface_samples`] with the mesh's [`MeshSdf`] already built (`sdf` must be built from
/// `mesh`): the same samples for the same seed.
pub fn surface_samples_with(mesh: &TriMesh, sdf: &MeshSdf, n: usize, seed: u64) -> Result<SurfaceSamples> {
    let mut rng = StdRng::seed_from_u64(seed);
    visible_surface_samples(mesh, sdf, n, &mut rng)
}

/// The sampler behind [`surface_samples`], drawing from `rng`; `sdf` must be built from `mesh`.
fn visible_surface_samples(
    mesh: &TriMesh,
    sdf: &MeshSdf,
    n: usize,
    rng: &mut StdRng,
) -> Result<SurfaceSamples> {
    let mut points = Vec::with_capacity(n);
    let mut normals = Vec::with_capacity(n);
    if n == 0 {
        return Ok((points, normals));
    }
    let areas: Vec<f64> = (0..mesh.triangles.len())
        .map(|t| {
            let [a, b, c] = mesh.corners(t);
            f64::from((b - a).cross(&(c - a)).norm()) / 2.0
        })
        .collect();
    let mut cdf = Vec::with_capacity(areas.len());
    let mut total = 0.0;
    for a in &areas {
        total += a;
        cdf.push(total);
    }
    if total.is_nan() || total <= 0.0 {
        return Err(DeepSdfError::Empty("mesh has no surface area".into()));
    }
    let offset = mesh
        .bounds()
        .map_or(0.0, |(lo, hi)| (hi - lo).norm() * VISIBILITY_OFFSET_REL);
    let batch = n.max(1024);
    for _ in 0..MAX_SURFACE_ROUNDS {
        let candidates: Vec<(Point3<f32>, Vector3<f32>)> = (0..batch)
            .map(|_| {
                let u = rng.random_range(0.0..total);
                let t = cdf.partition_point(|&c| c <= u).min(cdf.len() - 1);
                let (r1, r2): (f32, f32) = (rng.random(), rng.random());
                let s = r1.sqrt();
                let [a, b, c] = mesh.corners(t);
                let p =
                    Point3::from(a.coords * (1.0 - s) + b.coords * (s * (1.0 - r2)) + c.coords * (s * r2));
                (p, mesh.normal(t))
            })
            .collect();
        let visible: Vec<bool> = candidates
            .par_iter()
            .map(|(p, nrm)| !sdf.is_inside((p + nrm * offset).coords.into()))
            .collect();
        for ((p, nrm), keep) in candidates.into_iter().zip(visible) {
            if keep && points.len() < n {
                points.push(p.coords.into());
                normals.push(nrm.into());
            }
        }
        if points.len() == n {
            return Ok((points, normals));
        }
    }
    Err(DeepSdfError::Empty(format!(
        "found only {} of {n} visible surface points after {MAX_SURFACE_ROUNDS} rounds",
        points.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::{Material, ShapeLibrary};

    /// Triangles of a convex vertex set, each turned to face away from `centre`.
    fn orient_outward(
        vertices: Vec<Point3<f32>>,
        mut triangles: Vec<[u32; 3]>,
        centre: Point3<f32>,
    ) -> TriMesh {
        for t in &mut triangles {
            let [a, b, c] = t.map(|i| vertices[i as usize]);
            let n = (b - a).cross(&(c - a));
            if n.dot(&((a.coords + b.coords + c.coords) / 3.0 - centre.coords)) < 0.0 {
                t.swap(1, 2);
            }
        }
        let materials = vec![Material::Body; triangles.len()];
        TriMesh {
            vertices,
            triangles,
            materials,
        }
    }

    pub(crate) fn box_mesh(lo: [f32; 3], hi: [f32; 3]) -> TriMesh {
        let vertices: Vec<Point3<f32>> = (0..8)
            .map(|c| {
                Point3::new(
                    if c & 1 == 0 { lo[0] } else { hi[0] },
                    if c & 2 == 0 { lo[1] } else { hi[1] },
                    if c & 4 == 0 { lo[2] } else { hi[2] },
                )
            })
            .collect();
        // Quads (as corner cycles) of the six faces.
        let quads = [
            [0, 2, 6, 4],
            [1, 3, 7, 5],
            [0, 1, 5, 4],
            [2, 3, 7, 6],
            [0, 1, 3, 2],
            [4, 5, 7, 6],
        ];
        let triangles = quads
            .iter()
            .flat_map(|q| [[q[0], q[1], q[2]], [q[0], q[2], q[3]]])
            .collect();
        let centre = Point3::from((Vector3::from(lo) + Vector3::from(hi)) / 2.0);
        orient_outward(vertices, triangles, centre)
    }

    pub(crate) fn sphere_mesh(radius: f32, n_lat: u32, n_lon: u32) -> TriMesh {
        let mut vertices = vec![Point3::new(0.0, radius, 0.0)];
        for i in 1..n_lat {
            let theta = std::f32::consts::PI * i as f32 / n_lat as f32;
            for j in 0..n_lon {
                // A slight twist per ring keeps rings from lining up with the ray axis.
                let phi = 2.0 * std::f32::consts::PI * (j as f32 + 0.37 * i as f32) / n_lon as f32;
                vertices.push(Point3::new(
                    radius * theta.sin() * phi.cos(),
                    radius * theta.cos(),
                    radius * theta.sin() * phi.sin(),
                ));
            }
        }
        let south = vertices.len() as u32;
        vertices.push(Point3::new(0.0, -radius, 0.0));
        let ring = |i: u32, j: u32| 1 + (i - 1) * n_lon + j % n_lon;
        let mut triangles = Vec::new();
        for j in 0..n_lon {
            triangles.push([0, ring(1, j), ring(1, j + 1)]);
            triangles.push([south, ring(n_lat - 1, j), ring(n_lat - 1, j + 1)]);
            for i in 1..n_lat - 1 {
                triangles.push([ring(i, j), ring(i + 1, j), ring(i + 1, j + 1)]);
                triangles.push([ring(i, j), ring(i + 1, j + 1), ring(i, j + 1)]);
            }
        }
        orient_outward(vertices, triangles, Point3::origin())
    }

    fn overlapping_boxes() -> TriMesh {
        let mut m = box_mesh([-1.0, -0.5, -0.5], [0.5, 0.5, 0.5]);
        m.append(&box_mesh([-0.2, -0.3, -0.8], [1.0, 0.8, 0.3]));
        m
    }

    fn cars(n: usize) -> Vec<TriMesh> {
        let lib = ShapeLibrary::procedural(2020, n);
        (0..n).map(|i| lib.shape(i).unwrap()).collect()
    }

    /// The generalised winding number: the sum of signed solid angles over 4π
    /// (Van Oosterom–Strackee), in f64.
    fn generalised_winding_number(mesh: &TriMesh, p: [f32; 3]) -> f64 {
        let p = Vector3::from(p).cast::<f64>();
        let total: f64 = mesh
            .triangles
            .iter()
            .map(|t| {
                let [a, b, c] = t.map(|i| mesh.vertices[i as usize].coords.cast::<f64>() - p);
                let (la, lb, lc) = (a.norm(), b.norm(), c.norm());
                let det = a.dot(&b.cross(&c));
                let den = la * lb * lc + a.dot(&b) * lc + b.dot(&c) * la + c.dot(&a) * lb;
                2.0 * det.atan2(den)
            })
            .sum();
        total / (4.0 * std::f64::consts::PI)
    }

    /// Distance to a triangle by planes and edges, in f64 (independent of Ericson's method).
    fn brute_distance(mesh: &TriMesh, p: [f32; 3]) -> f64 {
        let p = Vector3::from(p).cast::<f64>();
        let seg = |a: Vector3<f64>, b: Vector3<f64>| {
            let ab = b - a;
            let t = ((p - a).dot(&ab) / ab.norm_squared()).clamp(0.0, 1.0);
            (a + ab * t - p).norm()
        };
        mesh.triangles
            .iter()
            .map(|t| {
                let [a, b, c] = t.map(|i| mesh.vertices[i as usize].coords.cast::<f64>());
                let n = (b - a).cross(&(c - a)).normalize();
                let q = p - n * n.dot(&(p - a));
                let inside = [(a, b), (b, c), (c, a)]
                    .iter()
                    .all(|&(u, v)| (v - u).cross(&(q - u)).dot(&n) >= 0.0);
                let edges = seg(a, b).min(seg(b, c)).min(seg(c, a));
                if inside { edges.min((q - p).norm()) } else { edges }
            })
            .fold(f64::INFINITY, f64::min)
    }

    fn random_points(mesh: &TriMesh, n: usize, seed: u64) -> Vec<[f32; 3]> {
        let (lo, hi) = mesh.bounds().unwrap();
        let margin = (hi - lo) * 0.1;
        let (lo, hi) = (lo - margin, hi + margin);
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| std::array::from_fn(|k| rng.random_range(lo[k]..hi[k])))
            .collect()
    }

    #[test]
    fn winding_number_agrees_with_generalised_winding_number() {
        let mut meshes = vec![
            ("cube", box_mesh([-1.0; 3], [1.0; 3])),
            ("sphere", sphere_mesh(0.8, 24, 32)),
            ("two boxes", overlapping_boxes()),
        ];
        meshes.extend(cars(3).into_iter().map(|m| ("car", m)));
        for (k, (name, mesh)) in meshes.iter().enumerate() {
            let sdf = MeshSdf::new(mesh).unwrap();
            let points = random_points(mesh, 2000, k as u64);
            let agree = points
                .par_iter()
                .filter(|&&p| {
                    let reference = generalised_winding_number(mesh, p).round() as f32;
                    sdf.winding_number(p) == reference
                })
                .count();
            let rate = agree as f64 / points.len() as f64;
            eprintln!("{name}: winding agreement {rate:.5}");
            assert!(rate >= 0.999, "{name}: {rate}");
        }
    }

    #[test]
    fn overlapping_components_count_twice_and_union_is_inside() {
        let sdf = MeshSdf::new(&overlapping_boxes()).unwrap();
        assert_eq!(sdf.winding_number([0.0, 0.0, 0.0]), 2.0);
        assert_eq!(sdf.winding_number([-0.8, 0.0, 0.0]), 1.0);
        assert_eq!(sdf.winding_number([0.8, 0.7, -0.7]), 1.0);
        assert_eq!(sdf.winding_number([0.8, -0.7, 0.0]), 0.0);
        // Inside the union, the depth is that in the deepest component (0.2 in the first box, 0.3
        // in the second), not the distance to the nearest (buried) face.
        assert!((sdf.distance([0.3, 0.0, 0.0]) - 0.2).abs() < 1e-6);
        let d = sdf.signed_distance([0.3, 0.0, 0.0]);
        assert!((d + 0.3).abs() < 1e-6, "{d}");
        assert_eq!(sdf.component_count(), 2);
    }

    /// Points on a lattice that shares the cube's vertex and edge coordinates, so rays run through
    /// edges, vertices and the diagonals of the face triangulation.
    #[test]
    fn rays_through_edges_and_vertices_are_counted_once() {
        let sdf = MeshSdf::new(&box_mesh([-1.0; 3], [1.0; 3])).unwrap();
        let ticks = [-1.5f32, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5];
        let mut checked = 0;
        for &x in &ticks {
            for &y in &ticks {
                for &z in &ticks {
                    let p = [x, y, z];
                    let inside = p.iter().all(|c| c.abs() < 1.0);
                    let outside = p.iter().any(|c| c.abs() > 1.0);
                    if inside || outside {
                        assert_eq!(sdf.is_inside(p), inside, "{p:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 7 * 7 * 7 - (5 * 5 * 5 - 3 * 3 * 3));
    }

    #[test]
    fn distances_match_brute_force() {
        let mut meshes = vec![sphere_mesh(0.8, 24, 32), overlapping_boxes()];
        meshes.extend(cars(3));
        for (k, mesh) in meshes.iter().enumerate() {
            let sdf = MeshSdf::new(mesh).unwrap();
            let points = random_points(mesh, 1000, 100 + k as u64);
            let max_err = points
                .par_iter()
                .map(|&p| (f64::from(sdf.distance(p)) - brute_distance(mesh, p)).abs())
                .reduce(|| 0.0, f64::max);
            eprintln!("mesh {k}: max distance error {max_err:.2e}");
            assert!(max_err <= 1e-4, "mesh {k}: {max_err}");
        }
    }

    #[test]
    fn displaced_surface_points_have_the_right_sign() {
        for (k, mesh) in cars(4).iter().enumerate() {
            let sdf = MeshSdf::new(mesh).unwrap();
            let (points, normals) = surface_samples(mesh, 4000, k as u64).unwrap();
            let d_m = 0.002;
            let mut wrong = 0;
            for (p, n) in points.iter().zip(&normals) {
                let out: [f32; 3] = std::array::from_fn(|i| p[i] + d_m * n[i]);
                let inn: [f32; 3] = std::array::from_fn(|i| p[i] - d_m * n[i]);
                wrong += usize::from(sdf.signed_distance(out) <= 0.0);
                wrong += usize::from(sdf.signed_distance(inn) >= 0.0);
                let on = sdf.distance(*p);
                assert!(on < 2e-6, "surface sample at distance {on}");
            }
            eprintln!(
                "car {k}: {wrong} of {} displaced points with the wrong sign",
                2 * points.len()
            );
            assert!(wrong * 1000 <= points.len(), "car {k}: {wrong}");
        }
    }

    #[test]
    fn surface_samples_skip_buried_faces() {
        let mesh = overlapping_boxes();
        let sdf = MeshSdf::new(&mesh).unwrap();
        let (points, normals) = surface_samples(&mesh, 3000, 5).unwrap();
        assert_eq!((points.len(), normals.len()), (3000, 3000));
        for (p, n) in points.iter().zip(&normals) {
            let out: [f32; 3] = std::array::from_fn(|i| p[i] + 1e-3 * n[i]);
            assert_eq!(sdf.winding_number(out), 0.0, "{p:?}");
            assert!((Vector3::from(*n).norm() - 1.0).abs() < 1e-5);
        }
        assert_eq!(surface_samples(&mesh, 3000, 5).unwrap().0, points);
    }

    #[test]
    fn library_cars_fit_the_canonical_cube() {
        let lib = ShapeLibrary::procedural(2020, 200);
        let mut extreme = 0.0f32;
        for i in 0..lib.len() {
            let mesh = lib.shape(i).unwrap();
            let norm = Normalisation::for_mesh(&mesh, DEFAULT_METRES_PER_UNIT).unwrap();
            for v in &mesh.vertices {
                let u = norm.to_unit((*v).into());
                extreme = u.iter().fold(extreme, |m, x| m.max(x.abs()));
                let back = norm.to_model_m(u);
                assert!((Vector3::from(back) - v.coords).norm() < 1e-5);
            }
        }
        eprintln!("largest |coordinate| of 200 cars in units: {extreme:.3}");
        assert!(extreme <= 1.0, "{extreme}");
        assert_eq!(unit_to_nocs([-1.0, 0.0, 1.0]), [0.0, 0.5, 1.0]);
    }

    #[test]
    fn sdf_samples_are_consistent_with_their_noise() {
        let mesh = &cars(1)[0];
        let norm = Normalisation::for_mesh(mesh, DEFAULT_METRES_PER_UNIT).unwrap();
        let config = SampleConfig::default();
        let samples = sample_sdf(mesh, &norm, &config, 11).unwrap();
        assert_eq!(
            (samples.len(), samples.sdf.len()),
            (config.total(), config.total())
        );
        // Recover the surface points and normals the near samples were drawn around.
        let unit_mesh = norm.mesh_to_unit(mesh);
        let sdf = MeshSdf::new(&unit_mesh).unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        let n_near = config.near_fine_count + config.near_coarse_count;
        let (surface, normals) = visible_surface_samples(&unit_mesh, &sdf, n_near, &mut rng).unwrap();
        let mut sign_agree = 0;
        let mut ratio_sum = 0.0;
        for k in 0..config.near_fine_count {
            let noise = Vector3::from(samples.points[k]) - Vector3::from(surface[k]);
            let s = samples.sdf[k];
            assert!(
                s.abs() <= noise.norm() + 1e-6,
                "sample {k}: sdf {s}, noise {}",
                noise.norm()
            );
            sign_agree += usize::from((s > 0.0) == (noise.dot(&Vector3::from(normals[k])) > 0.0));
            ratio_sum += f64::from(s.abs() / noise.norm());
        }
        let agree = sign_agree as f64 / config.near_fine_count as f64;
        let ratio = ratio_sum / config.near_fine_count as f64;
        eprintln!("fine samples: sign agreement {agree:.4}, mean |sdf|/|noise| {ratio:.3}");
        assert!(agree > 0.97, "{agree}");
        // |n·e| / |e| is uniform on [0, 1] for isotropic noise e near a plane.
        assert!((ratio - 0.5).abs() < 0.05, "{ratio}");
        let uniform = &samples.points[n_near..];
        assert!(uniform.iter().flatten().all(|x| x.abs() <= 1.0));
        let inside = samples.sdf.iter().filter(|&&s| s < 0.0).count();
        assert!(inside > config.total() / 5, "{inside} inside");
    }

    #[test]
    fn sdf_samples_are_deterministic() {
        let mesh = &cars(1)[0];
        let norm = Normalisation::for_mesh(mesh, DEFAULT_METRES_PER_UNIT).unwrap();
        let config = SampleConfig {
            near_fine_count: 500,
            near_coarse_count: 500,
            uniform_count: 200,
            ..SampleConfig::default()
        };
        let a = sample_sdf(mesh, &norm, &config, 3).unwrap();
        let b = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| sample_sdf(mesh, &norm, &config, 3).unwrap());
        assert_eq!(a, b);
        assert_ne!(a, sample_sdf(mesh, &norm, &config, 4).unwrap());
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        let empty = TriMesh::new();
        assert!(matches!(MeshSdf::new(&empty), Err(DeepSdfError::Empty(_))));
        assert!(matches!(
            Normalisation::for_mesh(&empty, DEFAULT_METRES_PER_UNIT),
            Err(DeepSdfError::Empty(_))
        ));
        assert!(matches!(
            surface_samples(&empty, 10, 0),
            Err(DeepSdfError::Empty(_))
        ));
        let cube = box_mesh([-1.0; 3], [1.0; 3]);
        assert!(matches!(
            Normalisation::for_mesh(&cube, 0.0),
            Err(DeepSdfError::InvalidInput(_))
        ));
        let mut broken = cube.clone();
        broken.triangles[3][1] = 99;
        assert!(matches!(
            MeshSdf::new(&broken),
            Err(DeepSdfError::InvalidInput(_))
        ));
        let norm = Normalisation::for_mesh(&cube, 1.0).unwrap();
        let config = SampleConfig {
            near_fine_sigma_unit: -1.0,
            ..SampleConfig::default()
        };
        assert!(matches!(
            sample_sdf(&cube, &norm, &config, 0),
            Err(DeepSdfError::InvalidInput(_))
        ));
    }

    #[test]
    fn closest_point_is_never_beaten_by_points_of_the_triangle() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut v = || Vector3::from(std::array::from_fn::<f32, 3, _>(|_| rng.random_range(-1.0..1.0)));
        for _ in 0..200 {
            let (a, b, c, p) = (v(), v(), v(), v() * 2.0);
            let q = closest_point_on_triangle(&p.cast(), &a.cast(), &b.cast(), &c.cast());
            let d = (q - p.cast::<f64>()).norm() as f32;
            let mut best = f32::INFINITY;
            let steps = 60;
            for i in 0..=steps {
                for j in 0..=steps - i {
                    let (s, t) = (i as f32 / steps as f32, j as f32 / steps as f32);
                    best = best.min((a + (b - a) * s + (c - a) * t - p).norm());
                }
            }
            assert!(d <= best + 1e-5, "{d} > {best}");
            assert!(best - d < 0.1, "{d} far below {best}");
        }
    }
}
