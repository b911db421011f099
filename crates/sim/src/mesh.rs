//! Triangle meshes with one material per triangle, in the model frame of the crate docs.

use nalgebra::{Point3, Vector3};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The material of a triangle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Material {
    /// Painted body panels (and everything not listed below).
    Body,
    /// Glass: windscreen, side and rear windows.
    Window,
    /// Tyres and rims.
    Wheel,
    /// Head and tail lights.
    Light,
}

impl Material {
    /// Every material, in id order.
    pub const ALL: [Material; 4] = [Material::Body, Material::Window, Material::Wheel, Material::Light];

    /// The name written after `usemtl` in OBJ files.
    pub fn name(self) -> &'static str {
        match self {
            Material::Body => "body",
            Material::Window => "window",
            Material::Wheel => "wheel",
            Material::Light => "light",
        }
    }

    /// The small integer written to PLY files (0 body, 1 window, 2 wheel, 3 light).
    pub fn id(self) -> u8 {
        match self {
            Material::Body => 0,
            Material::Window => 1,
            Material::Wheel => 2,
            Material::Light => 3,
        }
    }

    /// A material from an OBJ material name, case-insensitively: names containing "window" or
    /// "glass" are [`Material::Window`], "wheel", "tire", "tyre" or "rim" [`Material::Wheel`],
    /// "light" or "lamp" [`Material::Light`]; anything else is [`Material::Body`].
    pub fn from_name(name: &str) -> Material {
        let n = name.to_ascii_lowercase();
        let has = |keys: &[&str]| keys.iter().any(|k| n.contains(k));
        if has(&["window", "glass"]) {
            Material::Window
        } else if has(&["wheel", "tire", "tyre", "rim"]) {
            Material::Wheel
        } else if has(&["light", "lamp"]) {
            Material::Light
        } else {
            Material::Body
        }
    }

    /// An RGB colour for previews (PLY face colours).
    pub fn preview_rgb(self) -> [u8; 3] {
        match self {
            Material::Body => [170, 40, 40],
            Material::Window => [60, 110, 170],
            Material::Wheel => [30, 30, 30],
            Material::Light => [250, 230, 120],
        }
    }
}

/// Extents of a mesh along the model axes, in metres.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dims {
    /// Extent along z (front–back).
    pub length_m: f32,
    /// Extent along x (left–right).
    pub width_m: f32,
    /// Extent along y (up).
    pub height_m: f32,
}

/// An indexed triangle mesh with one [`Material`] per triangle.
///
/// Triangles are counter-clockwise seen from outside, so [`TriMesh::signed_volume`] is positive for a
/// closed mesh. A mesh may be made of several closed components (body, wheels) that share no vertex.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TriMesh {
    /// Vertex positions in metres.
    pub vertices: Vec<Point3<f32>>,
    /// Vertex indices of each triangle.
    pub triangles: Vec<[u32; 3]>,
    /// The material of each triangle (same length as `triangles`).
    pub materials: Vec<Material>,
}

impl TriMesh {
    /// An empty mesh.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `other` as new, unconnected components.
    pub fn append(&mut self, other: &TriMesh) {
        let base = self.vertex_base();
        self.vertices.extend_from_slice(&other.vertices);
        self.triangles
            .extend(other.triangles.iter().map(|t| t.map(|i| i + base)));
        self.materials.extend_from_slice(&other.materials);
    }

    /// The axis-aligned bounding box `(min, max)` of the vertices; `None` for a mesh without vertices.
    pub fn bounds(&self) -> Option<(Point3<f32>, Point3<f32>)> {
        let first = *self.vertices.first()?;
        Some(
            self.vertices
                .iter()
                .fold((first, first), |(lo, hi), v| (lo.inf(v), hi.sup(v))),
        )
    }

    /// Length (z), width (x) and height (y) of the bounding box; zeros for an empty mesh.
    pub fn dims(&self) -> Dims {
        match self.bounds() {
            Some((lo, hi)) => Dims {
                length_m: hi.z - lo.z,
                width_m: hi.x - lo.x,
                height_m: hi.y - lo.y,
            },
            None => Dims {
                length_m: 0.0,
                width_m: 0.0,
                height_m: 0.0,
            },
        }
    }

    /// The three corners of triangle `t`.
    pub fn corners(&self, t: usize) -> [Point3<f32>; 3] {
        self.triangles[t].map(|i| self.vertices[i as usize])
    }

    /// The centroid of triangle `t`.
    pub fn centroid(&self, t: usize) -> Point3<f32> {
        let [a, b, c] = self.corners(t);
        Point3::from((a.coords + b.coords + c.coords) / 3.0)
    }

    /// The unit normal of triangle `t` (right-hand rule; outward for a correctly oriented mesh), or
    /// zero for a degenerate triangle.
    pub fn normal(&self, t: usize) -> Vector3<f32> {
        let [a, b, c] = self.corners(t);
        (b - a)
            .cross(&(c - a))
            .try_normalize(1e-12)
            .unwrap_or_else(Vector3::zeros)
    }

    /// The number of triangles with material `m`.
    pub fn count(&self, m: Material) -> usize {
        self.materials.iter().filter(|&&x| x == m).count()
    }

    /// Signed volume in m³ (divergence theorem); positive when the closed components face outward.
    pub fn signed_volume(&self) -> f64 {
        signed_volume_of(&self.vertices, &self.triangles)
    }

    /// Whether every component is closed and consistently oriented: every directed edge occurs in
    /// exactly one triangle and its reverse in exactly one other. Also requires valid, distinct indices
    /// in every triangle and one material per triangle. An empty mesh is not watertight.
    pub fn is_watertight(&self) -> bool {
        if self.triangles.is_empty() || self.materials.len() != self.triangles.len() {
            return false;
        }
        let n = self.vertices.len();
        let mut directed: HashMap<(u32, u32), u32> = HashMap::with_capacity(self.triangles.len() * 3);
        for &[a, b, c] in &self.triangles {
            if [a, b, c].iter().any(|&i| i as usize >= n) || a == b || b == c || a == c {
                return false;
            }
            for e in [(a, b), (b, c), (c, a)] {
                *directed.entry(e).or_insert(0) += 1;
            }
        }
        directed
            .iter()
            .all(|(&(a, b), &k)| k == 1 && directed.get(&(b, a)) == Some(&1))
    }

    /// Reverses the orientation of every triangle.
    pub fn flip(&mut self) {
        for t in &mut self.triangles {
            t.swap(1, 2);
        }
    }

    /// Moves the mesh so that the origin is the centre of the bounding box's bottom face.
    pub fn recentre_bottom(&mut self) {
        if let Some((lo, hi)) = self.bounds() {
            let shift = Vector3::new((lo.x + hi.x) / 2.0, lo.y, (lo.z + hi.z) / 2.0);
            for v in &mut self.vertices {
                *v -= shift;
            }
        }
    }

    /// Scales every vertex by `s` per axis, about the origin.
    pub fn scale_axes(&mut self, s: Vector3<f32>) {
        for v in &mut self.vertices {
            v.coords.component_mul_assign(&s);
        }
    }

    fn vertex_base(&self) -> u32 {
        u32::try_from(self.vertices.len()).unwrap_or(u32::MAX)
    }

    /// Appends a closed loft: consecutive rings (same point count, at least 3) joined by quads, both
    /// ends capped by a fan around the ring's centroid. The component is oriented outward whatever the
    /// rings' direction. Returns the range of the new triangles.
    pub(crate) fn push_closed_loft(
        &mut self,
        rings: &[Vec<Point3<f32>>],
        material: Material,
    ) -> std::ops::Range<usize> {
        let first_tri = self.triangles.len();
        let n = rings.first().map_or(0, Vec::len);
        if rings.len() < 2 || n < 3 || rings.iter().any(|r| r.len() != n) {
            return first_tri..first_tri;
        }
        let base = self.vertex_base();
        let n32 = n as u32;
        for ring in rings {
            self.vertices.extend_from_slice(ring);
        }
        let centre = |ring: &[Point3<f32>]| {
            Point3::from(ring.iter().map(|p| p.coords).sum::<Vector3<f32>>() / ring.len() as f32)
        };
        let c0 = self.vertex_base();
        self.vertices.push(centre(&rings[0]));
        let c1 = self.vertex_base();
        self.vertices.push(centre(&rings[rings.len() - 1]));
        let last = (rings.len() - 1) as u32;
        for r in 0..last {
            for k in 0..n32 {
                let k1 = (k + 1) % n32;
                let a = base + r * n32 + k;
                let b = base + r * n32 + k1;
                let c = base + (r + 1) * n32 + k1;
                let d = base + (r + 1) * n32 + k;
                self.triangles.push([a, b, c]);
                self.triangles.push([a, c, d]);
            }
        }
        for k in 0..n32 {
            let k1 = (k + 1) % n32;
            self.triangles.push([c0, base + k1, base + k]);
            self.triangles
                .push([c1, base + last * n32 + k, base + last * n32 + k1]);
        }
        let range = first_tri..self.triangles.len();
        if signed_volume_of(&self.vertices, &self.triangles[range.clone()]) < 0.0 {
            for t in &mut self.triangles[range.clone()] {
                t.swap(1, 2);
            }
        }
        self.materials.resize(self.triangles.len(), material);
        range
    }
}

fn signed_volume_of(vertices: &[Point3<f32>], triangles: &[[u32; 3]]) -> f64 {
    let p = |i: u32| vertices[i as usize].coords.cast::<f64>();
    triangles
        .iter()
        .map(|&[a, b, c]| p(a).dot(&p(b).cross(&p(c))) / 6.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cube() -> TriMesh {
        let rings = vec![
            vec![
                Point3::new(-1.0, 0.0, -1.0),
                Point3::new(1.0, 0.0, -1.0),
                Point3::new(1.0, 2.0, -1.0),
                Point3::new(-1.0, 2.0, -1.0),
            ],
            vec![
                Point3::new(-1.0, 0.0, 1.0),
                Point3::new(1.0, 0.0, 1.0),
                Point3::new(1.0, 2.0, 1.0),
                Point3::new(-1.0, 2.0, 1.0),
            ],
        ];
        let mut m = TriMesh::new();
        m.push_closed_loft(&rings, Material::Body);
        m
    }

    #[test]
    fn loft_is_closed_and_outward_in_either_ring_direction() {
        let m = cube();
        assert!(m.is_watertight());
        assert!((m.signed_volume() - 8.0).abs() < 1e-9);
        let mut rev = TriMesh::new();
        let rings: Vec<Vec<_>> = cube_rings_reversed();
        rev.push_closed_loft(&rings, Material::Wheel);
        assert!(rev.is_watertight());
        assert!((rev.signed_volume() - 8.0).abs() < 1e-9);
        assert_eq!(rev.count(Material::Wheel), rev.triangles.len());
    }

    fn cube_rings_reversed() -> Vec<Vec<Point3<f32>>> {
        let m = cube();
        vec![
            m.vertices[0..4].iter().rev().copied().collect(),
            m.vertices[4..8].iter().rev().copied().collect(),
        ]
    }

    #[test]
    fn flipped_or_open_meshes_are_detected() {
        let mut m = cube();
        m.flip();
        assert!(m.is_watertight(), "flipping keeps consistency");
        assert!(m.signed_volume() < 0.0);
        let mut open = cube();
        open.triangles.pop();
        open.materials.pop();
        assert!(!open.is_watertight());
        let mut inconsistent = cube();
        inconsistent.triangles[0].swap(1, 2);
        assert!(!inconsistent.is_watertight());
        assert!(!TriMesh::new().is_watertight());
    }

    #[test]
    fn two_components_are_watertight_and_recentre_works() {
        let mut m = cube();
        let mut other = cube();
        for v in &mut other.vertices {
            v.x += 5.0;
            v.y += 3.0;
        }
        m.append(&other);
        assert!(m.is_watertight());
        assert!((m.signed_volume() - 16.0).abs() < 1e-9);
        m.recentre_bottom();
        let (lo, hi) = m.bounds().unwrap();
        assert!((lo.x + hi.x).abs() < 1e-6 && lo.y.abs() < 1e-6 && (lo.z + hi.z).abs() < 1e-6);
        let d = m.dims();
        assert_eq!((d.length_m, d.width_m, d.height_m), (2.0, 7.0, 5.0));
    }

    #[test]
    fn material_names_round_trip() {
        for m in Material::ALL {
            assert_eq!(Material::from_name(m.name()), m);
        }
        assert_eq!(Material::from_name("Tyre_Front"), Material::Wheel);
        assert_eq!(Material::from_name("GLASS"), Material::Window);
        assert_eq!(Material::from_name("paint"), Material::Body);
    }
}
