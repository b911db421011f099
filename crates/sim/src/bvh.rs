//! A bounding volume hierarchy over the triangles of a [`WorldMesh`], for casting LIDAR (and other)
//! rays: binned-SAH build, flattened depth-first node array, ordered stack traversal without
//! allocation.
//!
//! The hierarchy stores only boxes and a triangle permutation; triangle corners are read from the
//! [`WorldMesh`] it was built from, which every query takes again and which must not change in
//! between.

use crate::world::WorldMesh;
use nalgebra::{Point3, Vector3};

/// Number of SAH bins (along the widest centroid axis of a node).
const BINS: usize = 16;
/// Most triangles in a leaf.
const MAX_LEAF_TRIANGLES: usize = 4;
/// Depth from which nodes are split at the object median instead of by SAH, which halves the
/// triangle count per level and so bounds the total depth by `SAH_MAX_DEPTH + 32`.
const SAH_MAX_DEPTH: usize = 31;
/// Nodes with at least this many triangles build their two subtrees in parallel.
const PARALLEL_MIN_TRIANGLES: usize = 16 * 1024;
/// Traversal stack size; at least the deepest possible tree (`SAH_MAX_DEPTH + 32` levels).
const STACK_SIZE: usize = 64;
/// Cost of visiting an inner node relative to one ray–triangle test, for the SAH.
const TRAVERSAL_COST: f32 = 1.0;
/// Rays with a Möller–Trumbore determinant below this (parallel to the triangle plane) miss.
const PARALLEL_EPS: f32 = 1e-12;

/// The closest intersection of a ray with a triangle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// Ray parameter of the hit: the point is `origin + t·dir`, so `t` is in units of `|dir|`.
    pub t: f32,
    /// Index of the triangle in the [`WorldMesh`].
    pub triangle: u32,
    /// Barycentric weight of the triangle's second corner.
    pub u: f32,
    /// Barycentric weight of the triangle's third corner.
    pub v: f32,
}

/// One node of the flattened tree (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Node {
    lo: [f32; 3],
    /// Triangles in a leaf; 0 for an inner node.
    count: u32,
    hi: [f32; 3],
    /// Leaf: first entry in [`Bvh::order`]. Inner node: index of the right child (the left child
    /// follows its parent directly).
    index: u32,
}

/// Axis-aligned box used while building.
#[derive(Clone, Copy, Debug)]
struct Aabb {
    lo: [f32; 3],
    hi: [f32; 3],
}

impl Aabb {
    const EMPTY: Aabb = Aabb {
        lo: [f32::INFINITY; 3],
        hi: [f32::NEG_INFINITY; 3],
    };

    /// Grows the box to contain `other` (plain compares: coordinates are assumed not NaN, which
    /// keeps this the single instruction per axis that the build's inner loops need).
    #[inline(always)]
    fn grow_box(&mut self, other: &Aabb) {
        for k in 0..3 {
            self.lo[k] = if other.lo[k] < self.lo[k] {
                other.lo[k]
            } else {
                self.lo[k]
            };
            self.hi[k] = if other.hi[k] > self.hi[k] {
                other.hi[k]
            } else {
                self.hi[k]
            };
        }
    }

    fn grow_point(&mut self, p: &[f32; 3]) {
        self.grow_box(&Aabb { lo: *p, hi: *p });
    }

    /// Half the surface area (enough for SAH ratios); 0 for an empty box.
    fn half_area(&self) -> f32 {
        let d = [
            self.hi[0] - self.lo[0],
            self.hi[1] - self.lo[1],
            self.hi[2] - self.lo[2],
        ];
        if d.iter().any(|&x| x.is_nan() || x < 0.0) {
            return 0.0;
        }
        d[0] * d[1] + d[1] * d[2] + d[2] * d[0]
    }
}

/// A bounding volume hierarchy over the triangles of one [`WorldMesh`].
#[derive(Clone, Debug, Default)]
pub struct Bvh {
    nodes: Vec<Node>,
    /// Triangle indices in leaf order.
    order: Vec<u32>,
}

/// A triangle while building: its bounding box and index, moved around in one contiguous array so
/// that every pass over a node's triangles reads memory in order.
#[derive(Clone, Copy, Debug)]
struct Prim {
    bounds: Aabb,
    triangle: u32,
}

impl Prim {
    /// Twice the centroid along `axis` (bins are computed on this, so the factor is harmless).
    #[inline(always)]
    fn centre2(&self, axis: usize) -> f32 {
        self.bounds.lo[axis] + self.bounds.hi[axis]
    }

    fn centre2_point(&self) -> [f32; 3] {
        [0, 1, 2].map(|k| self.centre2(k))
    }
}

/// The boxes of a set of prims and of their (doubled) centroids.
#[derive(Clone, Copy, Debug)]
struct Extent {
    bounds: Aabb,
    centres: Aabb,
}

impl Extent {
    const EMPTY: Extent = Extent {
        bounds: Aabb::EMPTY,
        centres: Aabb::EMPTY,
    };

    fn of(prims: &[Prim]) -> Extent {
        let mut e = Extent::EMPTY;
        for p in prims {
            e.add(p);
        }
        e
    }

    #[inline(always)]
    fn add(&mut self, p: &Prim) {
        self.bounds.grow_box(&p.bounds);
        self.centres.grow_point(&p.centre2_point());
    }
}

impl Bvh {
    /// Builds the hierarchy over every triangle of `world`: binned surface-area heuristic (16 bins
    /// along each node's widest centroid axis), leaves of at most 4 triangles; large nodes build
    /// their two subtrees in parallel (rayon). Deterministic: the same mesh always gives the same
    /// tree, whatever the thread count. An empty mesh gives an empty tree that no ray hits.
    pub fn build(world: &WorldMesh) -> Bvh {
        let n = world.len();
        if n == 0 {
            return Bvh::default();
        }
        let mut prims: Vec<Prim> = (0..n)
            .map(|t| {
                let mut bounds = Aabb::EMPTY;
                for p in world.corners(t) {
                    bounds.grow_point(&[p.x, p.y, p.z]);
                }
                Prim {
                    bounds,
                    triangle: t as u32,
                }
            })
            .collect();
        // A binary tree over n leaves of at least one triangle has at most 2n − 1 nodes.
        let mut nodes = Vec::with_capacity(2 * n);
        let extent = Extent::of(&prims);
        build_node(&mut prims, extent, 0, &mut nodes, 0);
        let order = prims.iter().map(|p| p.triangle).collect();
        Bvh { nodes, order }
    }

    /// Number of nodes (inner nodes and leaves).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree holds no triangle.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The closest triangle of `world` hit by the ray `origin + t·dir` with `0 < t < t_max`, either
    /// face (no back-face culling); `None` if there is none. `world` must be the mesh the tree was
    /// built from. `dir` need not be unit; `t` is in units of it.
    pub fn closest_hit(
        &self,
        world: &WorldMesh,
        origin: &Point3<f32>,
        dir: &Vector3<f32>,
        t_max: f32,
    ) -> Option<Hit> {
        let root = self.nodes.first()?;
        let o = [origin.x, origin.y, origin.z];
        let d = [dir.x, dir.y, dir.z];
        let inv = d.map(|x| 1.0 / x);
        let mut best: Option<Hit> = None;
        let mut best_t = t_max;
        slab_entry(root, &o, &inv, best_t)?;

        let mut stack = [(0u32, 0.0f32); STACK_SIZE];
        let mut sp = 0usize;
        let mut node = 0usize;
        loop {
            let n = &self.nodes[node];
            let mut next = None;
            if n.count > 0 {
                let first = n.index as usize;
                for &tri in &self.order[first..first + n.count as usize] {
                    if let Some(h) = intersect(world, tri, &o, &d, best_t) {
                        best_t = h.t;
                        best = Some(h);
                    }
                }
            } else {
                let left = node + 1;
                let right = n.index as usize;
                let tl = slab_entry(&self.nodes[left], &o, &inv, best_t);
                let tr = slab_entry(&self.nodes[right], &o, &inv, best_t);
                next = match (tl, tr) {
                    (Some(a), Some(b)) => {
                        let (near, far, far_t) = if a <= b {
                            (left, right, b)
                        } else {
                            (right, left, a)
                        };
                        // The build bounds the depth by STACK_SIZE, so this never overflows.
                        if sp < STACK_SIZE {
                            stack[sp] = (far as u32, far_t);
                            sp += 1;
                        }
                        Some(near)
                    }
                    (Some(_), None) => Some(left),
                    (None, Some(_)) => Some(right),
                    (None, None) => None,
                };
            }
            node = match next {
                Some(k) => k,
                None => loop {
                    if sp == 0 {
                        return best;
                    }
                    sp -= 1;
                    let (k, entry_t) = stack[sp];
                    if entry_t < best_t {
                        break k as usize;
                    }
                },
            };
        }
    }
}

/// Builds the subtree over `prims` (whose extent is `extent`; `offset` is the position of
/// `prims[0]` in the whole array) and returns its node index.
fn build_node(
    prims: &mut [Prim],
    extent: Extent,
    offset: usize,
    nodes: &mut Vec<Node>,
    depth: usize,
) -> usize {
    let me = nodes.len();
    let n = prims.len();
    nodes.push(Node {
        lo: extent.bounds.lo,
        count: n as u32,
        hi: extent.bounds.hi,
        index: offset as u32,
    });
    if n <= 1 {
        return me;
    }

    let split = if depth < SAH_MAX_DEPTH {
        sah_split(prims, &extent)
    } else {
        None
    };
    let (mid, left, right) = match split {
        Some(SahSplit::Leaf) if n <= MAX_LEAF_TRIANGLES => return me,
        Some(SahSplit::Plane(plane)) => partition(prims, &plane),
        // SAH found no plane (all centroids coincide), prefers a leaf that is too big, or the tree
        // is already deep: split at the object median of the widest centroid axis.
        _ => median_split(prims, &extent.centres),
    };

    debug_assert!(0 < mid && mid < n, "a split leaves both sides non-empty");
    let (lo, hi) = prims.split_at_mut(mid);
    let right_index = if n >= PARALLEL_MIN_TRIANGLES {
        // Build the right subtree into its own array on another thread, then append it with its
        // node indices shifted: the result is the array the serial build makes.
        let ((), mut right_nodes) = rayon::join(
            || {
                build_node(lo, left, offset, nodes, depth + 1);
            },
            || {
                let mut v = Vec::with_capacity(2 * hi.len());
                build_node(hi, right, offset + mid, &mut v, depth + 1);
                v
            },
        );
        let shift = nodes.len() as u32;
        for node in right_nodes.iter_mut().filter(|node| node.count == 0) {
            node.index += shift;
        }
        nodes.append(&mut right_nodes);
        shift as usize
    } else {
        build_node(lo, left, offset, nodes, depth + 1);
        build_node(hi, right, offset + mid, nodes, depth + 1)
    };
    nodes[me].count = 0;
    nodes[me].index = right_index as u32;
    me
}

enum SahSplit {
    /// Not splitting is cheapest.
    Leaf,
    /// Split at a bin boundary.
    Plane(Plane),
}

/// A split between bins `bin` and `bin + 1` of `binning`, with the boxes of both sides.
struct Plane {
    binning: Binning,
    bin: usize,
    left_bounds: Aabb,
    right_bounds: Aabb,
}

/// Maps (doubled) centroids to bins along one axis.
struct Binning {
    axis: usize,
    lo: f32,
    scale: f32,
    last: usize,
}

impl Binning {
    fn new(centres: &Aabb, axis: usize, bins: usize) -> Binning {
        Binning {
            axis,
            lo: centres.lo[axis],
            scale: bins as f32 / (centres.hi[axis] - centres.lo[axis]),
            last: bins - 1,
        }
    }

    #[inline(always)]
    fn bin(&self, p: &Prim) -> usize {
        // The second `min` is a no-op (`last < BINS`) that lets the compiler drop bounds checks.
        (((p.centre2(self.axis) - self.lo) * self.scale) as usize)
            .min(self.last)
            .min(BINS - 1)
    }
}

/// The axis along which `centres` is widest.
fn widest_axis(centres: &Aabb) -> usize {
    let ext = [0, 1, 2].map(|k| centres.hi[k] - centres.lo[k]);
    if ext[0] >= ext[1] && ext[0] >= ext[2] {
        0
    } else if ext[1] >= ext[2] {
        1
    } else {
        2
    }
}

/// The cheapest binned-SAH split of `prims` along the widest centroid axis (`min(BINS, n)` bins),
/// or `None` if the centroids all coincide.
fn sah_split(prims: &[Prim], extent: &Extent) -> Option<SahSplit> {
    let n = prims.len();
    let axis = widest_axis(&extent.centres);
    let span = extent.centres.hi[axis] - extent.centres.lo[axis];
    if !(span > 0.0 && span.is_finite()) {
        return None;
    }
    let bins = BINS.min(n);
    let binning = Binning::new(&extent.centres, axis, bins);
    let mut counts = [0u32; BINS];
    let mut boxes = [Aabb::EMPTY; BINS];
    for p in prims {
        let b = binning.bin(p);
        counts[b] += 1;
        boxes[b].grow_box(&p.bounds);
    }
    // right[i]: box and count of bins i+1..bins.
    let mut right = [(Aabb::EMPTY, 0u32); BINS];
    let mut acc = (Aabb::EMPTY, 0u32);
    for i in (1..bins).rev() {
        acc.0.grow_box(&boxes[i]);
        acc.1 += counts[i];
        right[i - 1] = acc;
    }
    let mut best: Option<(f32, usize, Aabb)> = None;
    let mut acc = (Aabb::EMPTY, 0u32);
    for i in 0..bins - 1 {
        acc.0.grow_box(&boxes[i]);
        acc.1 += counts[i];
        if acc.1 == 0 || right[i].1 == 0 {
            continue;
        }
        let cost = acc.0.half_area() * acc.1 as f32 + right[i].0.half_area() * right[i].1 as f32;
        if best.is_none_or(|(c, _, _)| cost < c) {
            best = Some((cost, i, acc.0));
        }
    }
    let (cost, bin, left_bounds) = best?;
    let area = extent.bounds.half_area();
    let split_cost = TRAVERSAL_COST + if area > 0.0 { cost / area } else { 0.0 };
    Some(if split_cost >= n as f32 {
        SahSplit::Leaf
    } else {
        SahSplit::Plane(Plane {
            binning,
            bin,
            left_bounds,
            right_bounds: right[bin].0,
        })
    })
}

/// Splits `prims` at the middle after ordering them by centroid along the widest centroid axis (ties
/// broken by triangle index, so the result is deterministic). Returns the split position and the
/// extents of both halves.
fn median_split(prims: &mut [Prim], centres: &Aabb) -> (usize, Extent, Extent) {
    let axis = widest_axis(centres);
    let mid = prims.len() / 2;
    prims.select_nth_unstable_by(mid, |a, b| {
        a.centre2(axis)
            .total_cmp(&b.centre2(axis))
            .then(a.triangle.cmp(&b.triangle))
    });
    (mid, Extent::of(&prims[..mid]), Extent::of(&prims[mid..]))
}

/// Moves the prims left of `plane` to the front (order within each side not kept); returns how many
/// there are and the extents of both sides.
fn partition(prims: &mut [Prim], plane: &Plane) -> (usize, Extent, Extent) {
    let is_left = |p: &Prim| plane.binning.bin(p) <= plane.bin;
    let mut left = Aabb::EMPTY;
    let mut right = Aabb::EMPTY;
    let mut i = 0;
    let mut j = prims.len();
    loop {
        while i < j && is_left(&prims[i]) {
            left.grow_point(&prims[i].centre2_point());
            i += 1;
        }
        while i < j && !is_left(&prims[j - 1]) {
            right.grow_point(&prims[j - 1].centre2_point());
            j -= 1;
        }
        if i >= j {
            break;
        }
        // prims[i] belongs right and prims[j − 1] left: swap them into place.
        prims.swap(i, j - 1);
        left.grow_point(&prims[i].centre2_point());
        right.grow_point(&prims[j - 1].centre2_point());
        i += 1;
        j -= 1;
    }
    let extent = |bounds, centres| Extent { bounds, centres };
    (
        i,
        extent(plane.left_bounds, left),
        extent(plane.right_bounds, right),
    )
}

/// Entry distance of the ray into the node's box if it enters before `t_max`.
#[inline(always)]
fn slab_entry(n: &Node, o: &[f32; 3], inv: &[f32; 3], t_max: f32) -> Option<f32> {
    let mut t0 = 0.0f32;
    let mut t1 = t_max;
    for k in 0..3 {
        let a = (n.lo[k] - o[k]) * inv[k];
        let b = (n.hi[k] - o[k]) * inv[k];
        // `min`/`max` drop a NaN (0·∞ for a ray lying in a slab plane) in favour of the other bound.
        t0 = t0.max(a.min(b));
        t1 = t1.min(a.max(b));
    }
    (t0 <= t1).then_some(t0)
}

/// Möller–Trumbore, both faces, accepting `0 < t < t_max`.
#[inline(always)]
fn intersect(world: &WorldMesh, tri: u32, o: &[f32; 3], d: &[f32; 3], t_max: f32) -> Option<Hit> {
    let [a, b, c] = world.triangles[tri as usize].map(|i| world.vertices[i as usize]);
    let e1 = b - a;
    let e2 = c - a;
    let d = Vector3::new(d[0], d[1], d[2]);
    let p = d.cross(&e2);
    let det = e1.dot(&p);
    if det.abs() < PARALLEL_EPS {
        return None;
    }
    let inv_det = 1.0 / det;
    let s = Vector3::new(o[0] - a.x, o[1] - a.y, o[2] - a.z);
    let u = s.dot(&p) * inv_det;
    if !(0.0..=1.0).contains(&u) {
        return None;
    }
    let q = s.cross(&e1);
    let v = d.dot(&q) * inv_det;
    if !(v >= 0.0 && u + v <= 1.0) {
        return None;
    }
    let t = e2.dot(&q) * inv_det;
    (t > 0.0 && t < t_max).then_some(Hit {
        t,
        triangle: tri,
        u,
        v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{Material, TriMesh};
    use nalgebra::Isometry3;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    fn brute_force(world: &WorldMesh, o: &Point3<f32>, d: &Vector3<f32>, t_max: f32) -> Option<Hit> {
        let (o, d) = ([o.x, o.y, o.z], [d.x, d.y, d.z]);
        let mut best: Option<Hit> = None;
        for t in 0..world.len() as u32 {
            let limit = best.map_or(t_max, |h| h.t);
            if let Some(h) = intersect(world, t, &o, &d, limit) {
                best = Some(h);
            }
        }
        best
    }

    fn random_world(rng: &mut StdRng, n: usize) -> WorldMesh {
        let mut world = WorldMesh::default();
        for i in 0..n {
            let centre = Vector3::new(
                rng.random_range(-10.0..10.0f32),
                rng.random_range(-10.0..10.0f32),
                rng.random_range(-10.0..10.0f32),
            );
            let size = rng.random_range(0.05..1.5f32);
            for _ in 0..3 {
                let offset = Vector3::new(
                    rng.random_range(-1.0..1.0f32),
                    rng.random_range(-1.0..1.0f32),
                    rng.random_range(-1.0..1.0f32),
                ) * size;
                world.vertices.push(Point3::from(centre + offset));
            }
            let b = 3 * i as u32;
            world.triangles.push([b, b + 1, b + 2]);
            world.object.push(0);
            world.material.push(Material::Body);
        }
        world
    }

    #[test]
    fn agrees_with_brute_force_on_random_rays() {
        let mut rng = StdRng::seed_from_u64(7);
        let world = random_world(&mut rng, 3000);
        let bvh = Bvh::build(&world);
        let mut hits = 0;
        for _ in 0..2500 {
            let o = Point3::new(
                rng.random_range(-15.0..15.0f32),
                rng.random_range(-15.0..15.0f32),
                rng.random_range(-15.0..15.0f32),
            );
            let d = Vector3::new(
                rng.random_range(-1.0..1.0f32),
                rng.random_range(-1.0..1.0f32),
                rng.random_range(-1.0..1.0f32),
            ) * rng.random_range(0.5..3.0f32);
            let t_max = rng.random_range(1.0..40.0f32);
            let fast = bvh.closest_hit(&world, &o, &d, t_max);
            let slow = brute_force(&world, &o, &d, t_max);
            match (fast, slow) {
                (Some(a), Some(b)) => {
                    assert!(
                        a.triangle == b.triangle || (a.t - b.t).abs() < 1e-4,
                        "{a:?} vs {b:?}"
                    );
                    hits += 1;
                }
                (None, None) => {}
                other => panic!("BVH and brute force disagree: {other:?}"),
            }
        }
        assert!(hits > 300, "too few hits ({hits}) to test anything");
    }

    #[test]
    fn hits_a_unit_cube_at_the_known_distance() {
        let rings = vec![
            vec![
                Point3::new(-0.5, 0.0, -0.5),
                Point3::new(0.5, 0.0, -0.5),
                Point3::new(0.5, 1.0, -0.5),
                Point3::new(-0.5, 1.0, -0.5),
            ],
            vec![
                Point3::new(-0.5, 0.0, 0.5),
                Point3::new(0.5, 0.0, 0.5),
                Point3::new(0.5, 1.0, 0.5),
                Point3::new(-0.5, 1.0, 0.5),
            ],
        ];
        let mut cube = TriMesh::new();
        cube.push_closed_loft(&rings, Material::Body);
        let mut world = WorldMesh::default();
        world.push(&cube, &Isometry3::translation(5.0, 0.0, 0.0), 3);
        let bvh = Bvh::build(&world);
        // Cube spans x 4.5..5.5, y 0..1, z -0.5..0.5.
        let o = Point3::new(0.0, 0.5, 0.1);
        let h = bvh
            .closest_hit(&world, &o, &Vector3::new(2.0, 0.0, 0.0), 100.0)
            .unwrap();
        assert!((h.t - 2.25).abs() < 1e-6, "t = {}", h.t);
        assert_eq!(world.object[h.triangle as usize], 3);
        // From inside, the far face is hit too (no back-face culling).
        let inside = Point3::new(5.0, 0.5, 0.0);
        let h = bvh.closest_hit(&world, &inside, &Vector3::x(), 100.0).unwrap();
        assert!((h.t - 0.5).abs() < 1e-6);
        // t_max cuts the ray short; a ray beside the cube misses.
        assert!(bvh.closest_hit(&world, &o, &Vector3::x(), 4.4).is_none());
        assert!(
            bvh.closest_hit(&world, &Point3::new(0.0, 2.0, 0.0), &Vector3::x(), 100.0)
                .is_none()
        );
    }

    #[test]
    fn empty_mesh_is_never_hit() {
        let world = WorldMesh::default();
        let bvh = Bvh::build(&world);
        assert!(bvh.is_empty());
        assert!(
            bvh.closest_hit(&world, &Point3::origin(), &Vector3::x(), 1e9)
                .is_none()
        );
    }

    #[test]
    fn parallel_build_is_the_serial_build_and_correct() {
        let mut rng = StdRng::seed_from_u64(11);
        let world = random_world(&mut rng, 3 * PARALLEL_MIN_TRIANGLES);
        let build_with = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| Bvh::build(&world))
        };
        let serial = build_with(1);
        let parallel = build_with(4);
        assert_eq!(serial.nodes, parallel.nodes);
        assert_eq!(serial.order, parallel.order);
        for _ in 0..300 {
            let o = Point3::new(
                rng.random_range(-15.0..15.0f32),
                rng.random_range(-15.0..15.0f32),
                rng.random_range(-15.0..15.0f32),
            );
            let d = Vector3::new(
                rng.random_range(-1.0..1.0f32),
                rng.random_range(-1.0..1.0f32),
                rng.random_range(-1.0..1.0f32),
            );
            let fast = parallel.closest_hit(&world, &o, &d, 50.0);
            let slow = brute_force(&world, &o, &d, 50.0);
            assert_eq!(fast.map(|h| h.triangle), slow.map(|h| h.triangle));
        }
    }

    #[test]
    fn leaves_are_small_and_every_triangle_is_in_one() {
        let mut rng = StdRng::seed_from_u64(3);
        let world = random_world(&mut rng, 1000);
        let bvh = Bvh::build(&world);
        let mut seen = vec![0u32; world.len()];
        for n in bvh.nodes.iter().filter(|n| n.count > 0) {
            assert!(n.count as usize <= MAX_LEAF_TRIANGLES);
            for &t in &bvh.order[n.index as usize..(n.index + n.count) as usize] {
                seen[t as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&k| k == 1));
        let again = Bvh::build(&world);
        assert_eq!(again.order, bvh.order);
    }
}
