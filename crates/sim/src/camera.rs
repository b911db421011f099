//! Geometry rasteriser: a frame's triangles and analytic ground seen by one camera, as per-pixel depth,
//! object id, material and surface normal, plus each object's visible and unoccluded pixel coverage
//! (from which the labels' 2D boxes, occlusion and truncation are taken).
//!
//! Pixel `(u, v)` samples the ray through the point `(u, v)` of the camera's projection
//! `calib.image_from_velo(camera)`: pixel centres sit at integer coordinates, as in KITTI's labels.
//! Triangles are clipped against the near plane (rect z = [`NEAR_PLANE_M`]), snapped to 1/256 px and
//! rasterised with exact integer edge functions and a top-left fill rule, so that meshes sharing an
//! edge cover every pixel exactly once. Visibility is decided per pixel on the homogeneous depth `w`
//! (distance along the pixel's ray), interpolated perspective-correctly as `1/w`; the ground is
//! intersected analytically for every pixel. Work is split into horizontal bands rasterised in
//! parallel, one task per band, and depth ties go to the lower triangle index, so the output does not
//! depend on the number of threads.

use crate::mesh::Material;
use crate::scene::Scene;
use crate::world::{GROUND, ObjectId, SKY, WorldMesh};
use geom::{Box2d, Calib, Camera};
use nalgebra::{Matrix3, Matrix3x4, Point3, RowVector4, Vector3};
use rayon::prelude::*;

/// The near clipping plane: geometry closer than this (rect z, m) is not drawn.
pub const NEAR_PLANE_M: f64 = 0.05;

/// Sub-pixel precision of snapped vertex positions (1/256 px).
const SUBPIXEL_BITS: u32 = 8;
const SUBPIXEL: f64 = (1u32 << SUBPIXEL_BITS) as f64;
/// Screen coordinates are clipped to ±this many pixels before snapping, which bounds the edge
/// functions' products well inside `i64` (2^(15+8+1) squared < 2^49).
const GUARD_BAND_PX: f64 = 32_768.0;
/// Rows per parallel band.
const BAND_ROWS: i32 = 16;
/// Bounding boxes at most this wide are scanned pixel by pixel; wider ones get exact spans by division.
const SCAN_MAX_WIDTH_PX: i32 = 24;
/// Triangles per parallel set-up chunk.
const SETUP_CHUNK: usize = 4096;
/// "No triangle" in the per-pixel triangle buffer and "no object" in the coverage stamps.
const NONE: u32 = u32::MAX;

/// The rays of a camera's pixels in the Velodyne frame, from its `image_from_velo` projection `M`.
///
/// The ray of image point `(u, v)` is `C + w·d(u, v)`, `C` the camera centre (the null vector of `M`)
/// and `d = M₃⁻¹ (u, v, 1)ᵀ`; the parameter `w` is then exactly the homogeneous depth that `M`
/// assigns to the point.
#[derive(Clone, Debug, PartialEq)]
pub struct PixelRays {
    centre_velo: Point3<f64>,
    /// `M₃⁻¹`: its columns are `∂d/∂u`, `∂d/∂v` and `d(0, 0)`.
    dir_from_pixel: Matrix3<f64>,
    /// Row of `rect_from_velo` giving rect z.
    rect_z_row: RowVector4<f64>,
    image_from_velo: Matrix3x4<f64>,
}

impl PixelRays {
    /// The rays of `camera`; `None` when its projection is singular (not a valid calibration).
    pub fn new(calib: &Calib, camera: Camera) -> Option<PixelRays> {
        let m = calib.image_from_velo(camera);
        let dir_from_pixel = m.fixed_view::<3, 3>(0, 0).into_owned().try_inverse()?;
        let centre_velo = Point3::from(-(dir_from_pixel * m.column(3)));
        Some(PixelRays {
            centre_velo,
            dir_from_pixel,
            rect_z_row: calib.rect_from_velo().row(2).into_owned(),
            image_from_velo: m,
        })
    }

    /// The camera's optical centre in the Velodyne frame, m.
    pub fn centre_velo(&self) -> Point3<f64> {
        self.centre_velo
    }

    /// The (unnormalised) direction of the ray through image point `(u_px, v_px)`, scaled so that
    /// `centre + w·dir` has homogeneous depth `w`.
    pub fn dir_velo(&self, u_px: f64, v_px: f64) -> Vector3<f64> {
        self.dir_from_pixel * Vector3::new(u_px, v_px, 1.0)
    }

    /// Rect z (the KITTI depth) of the point at homogeneous depth `w` on the ray through `(u_px, v_px)`.
    pub fn rect_depth_m(&self, u_px: f64, v_px: f64, w: f64) -> f64 {
        let p = self.centre_velo + self.dir_velo(u_px, v_px) * w;
        self.rect_z_row.dot(&p.to_homogeneous().transpose())
    }

    /// The point on the ray through `(u_px, v_px)` whose rect z is `depth_m`; `None` when no point in
    /// front of the camera has that depth.
    pub fn point_at_depth(&self, u_px: f64, v_px: f64, depth_m: f64) -> Option<Point3<f64>> {
        let d = self.dir_velo(u_px, v_px);
        let z_centre = self
            .rect_z_row
            .dot(&self.centre_velo.to_homogeneous().transpose());
        let dz_dw = self.rect_z_row.fixed_view::<1, 3>(0, 0).dot(&d.transpose());
        if dz_dw.abs() < 1e-12 || !depth_m.is_finite() {
            return None;
        }
        let w = (depth_m - z_centre) / dz_dw;
        (w > 0.0).then(|| self.centre_velo + d * w)
    }

    /// Projects a Velodyne point to image coordinates `[u, v]`; `None` when it is not in front of the
    /// camera (homogeneous depth ≤ 1 mm).
    pub fn project_velo(&self, p_velo: &Point3<f64>) -> Option<[f64; 2]> {
        let h = self.image_from_velo * p_velo.to_homogeneous();
        (h.z > 1e-3).then(|| [h.x / h.z, h.y / h.z])
    }
}

/// What one camera sees of a frame, per pixel, row-major (`index = y·width + x`).
#[derive(Clone, Debug, PartialEq)]
pub struct CameraGeometry {
    /// Image width, px.
    pub width: u32,
    /// Image height, px.
    pub height: u32,
    /// Rect-frame z of the visible surface point, m (what KITTI depth maps hold); `f32::INFINITY` for
    /// sky.
    pub depth_m: Vec<f32>,
    /// Scene object index of the visible surface, [`GROUND`] or [`SKY`].
    pub object: Vec<ObjectId>,
    /// Material of the visible triangle; [`Material::Body`] for ground and sky.
    pub material: Vec<Material>,
    /// Unit surface normal in the Velodyne frame, turned towards the camera (a triangle seen from
    /// behind reports its reversed normal); the ground's normal for ground pixels, zero for sky.
    pub normal_velo: Vec<[f32; 3]>,
}

impl CameraGeometry {
    /// A `width` × `height` image of nothing but sky.
    pub fn sky(width: u32, height: u32) -> CameraGeometry {
        let n = width as usize * height as usize;
        CameraGeometry {
            width,
            height,
            depth_m: vec![f32::INFINITY; n],
            object: vec![SKY; n],
            material: vec![Material::Body; n],
            normal_velo: vec![[0.0; 3]; n],
        }
    }

    /// The buffer index of pixel `(x, y)`.
    pub fn index(&self, x: u32, y: u32) -> usize {
        y as usize * self.width as usize + x as usize
    }

    /// The Velodyne-frame point seen at pixel `(x, y)`, back-projected from its depth with the rays of
    /// the camera that rendered it; `None` for sky or a pixel outside the image.
    pub fn point_velo(&self, rays: &PixelRays, x: u32, y: u32) -> Option<Point3<f64>> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let depth_m = self.depth_m[self.index(x, y)];
        rays.point_at_depth(f64::from(x), f64::from(y), f64::from(depth_m))
    }
}

/// How much of one object the camera sees.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ObjectCoverage {
    /// Pixels where the object is the visible surface.
    pub visible_pixels: u32,
    /// Inclusive pixel-index extent of the visible pixels (left = min x, top = min y, right = max x,
    /// bottom = max y); `None` when no pixel is visible.
    pub visible_box: Option<Box2d>,
    /// Pixels inside the image that the object covers with every other object (and the ground)
    /// removed.
    pub silhouette_pixels_in_image: u32,
    /// The same over the image extended by half its width left and right and half its height above
    /// and below (rounded down); `1 − in_image / extended` is the object's truncation.
    pub silhouette_pixels_extended: u32,
}

/// Renders `world` (the triangles of `scene`) and `scene.ground` into `camera`, `width` × `height` px.
///
/// Returns the per-pixel geometry and one [`ObjectCoverage`] per scene object (indexed like
/// `scene.objects`; triangles tagged with other ids are drawn but not counted). A calibration whose
/// projection is singular yields an all-sky image.
pub fn render_geometry(
    scene: &Scene,
    world: &WorldMesh,
    calib: &Calib,
    camera: Camera,
    width: u32,
    height: u32,
) -> (CameraGeometry, Vec<ObjectCoverage>) {
    let n_objects = scene.objects.len();
    let mut geometry = CameraGeometry::sky(width, height);
    let mut coverage = vec![ObjectCoverage::default(); n_objects];
    let Some(rays) = PixelRays::new(calib, camera) else {
        return (geometry, coverage);
    };
    if width == 0 || height == 0 {
        return (geometry, coverage);
    }
    let frame = Frame::new(width, height);
    let screen = setup_triangles(world, &rays, &frame);
    let bins = bin_by_band(&screen, &frame);

    let ctx = BandContext {
        scene,
        world,
        rays: &rays,
        frame: &frame,
        screen: &screen,
        n_objects,
    };
    let chunk = BAND_ROWS as usize * width as usize;
    let mut image_rows = geometry
        .depth_m
        .chunks_mut(chunk)
        .zip(geometry.object.chunks_mut(chunk))
        .zip(geometry.material.chunks_mut(chunk))
        .zip(geometry.normal_velo.chunks_mut(chunk))
        .map(|(((depth_m, object), material), normal_velo)| BandPixels {
            depth_m,
            object,
            material,
            normal_velo,
        });
    let mut jobs = Vec::with_capacity(bins.len());
    for (k, tris) in bins.into_iter().enumerate() {
        let band = frame.first_band + k as i32;
        let y0 = (band * BAND_ROWS).max(frame.ext_y0());
        let y1 = ((band + 1) * BAND_ROWS).min(frame.ext_y1());
        let pixels = if band >= 0 && band * BAND_ROWS < frame.height {
            image_rows.next()
        } else {
            None
        };
        jobs.push((y0, y1, tris, pixels));
    }
    let partials: Vec<BandCoverage> = jobs
        .into_par_iter()
        .map(|(y0, y1, mut tris, pixels)| rasterise_band(&ctx, y0, y1, &mut tris, pixels))
        .collect();

    for part in partials {
        for (o, c) in coverage.iter_mut().enumerate() {
            c.visible_pixels += part.visible[o];
            c.silhouette_pixels_in_image += part.silhouette_in_image[o];
            c.silhouette_pixels_extended += part.silhouette_extended[o];
            if let Some([x0, y0, x1, y1]) = part.boxes[o] {
                let b = c.visible_box.get_or_insert_with(|| {
                    Box2d::new(f64::from(x0), f64::from(y0), f64::from(x1), f64::from(y1))
                });
                b.left = b.left.min(f64::from(x0));
                b.top = b.top.min(f64::from(y0));
                b.right = b.right.max(f64::from(x1));
                b.bottom = b.bottom.max(f64::from(y1));
            }
        }
    }
    (geometry, coverage)
}

/// Image and extended-image extents, px.
struct Frame {
    width: i32,
    height: i32,
    pad_x: i32,
    pad_y: i32,
    /// Band index of the first band (bands are `[k·BAND_ROWS, (k+1)·BAND_ROWS)`, aligned on row 0).
    first_band: i32,
    n_bands: usize,
}

impl Frame {
    fn new(width: u32, height: u32) -> Frame {
        let width = i32::try_from(width).unwrap_or(i32::MAX / 4);
        let height = i32::try_from(height).unwrap_or(i32::MAX / 4);
        let (pad_x, pad_y) = (width / 2, height / 2);
        let first_band = (-pad_y).div_euclid(BAND_ROWS);
        let last_band = (height + pad_y - 1).div_euclid(BAND_ROWS);
        Frame {
            width,
            height,
            pad_x,
            pad_y,
            first_band,
            n_bands: (last_band - first_band + 1) as usize,
        }
    }

    fn ext_x0(&self) -> i32 {
        -self.pad_x
    }

    fn ext_x1(&self) -> i32 {
        self.width + self.pad_x
    }

    fn ext_y0(&self) -> i32 {
        -self.pad_y
    }

    fn ext_y1(&self) -> i32 {
        self.height + self.pad_y
    }

    fn ext_width(&self) -> usize {
        (self.ext_x1() - self.ext_x0()) as usize
    }
}

/// A triangle ready to rasterise: snapped, oriented, with its `1/w` plane and pixel bounding box.
#[derive(Clone, Copy, Debug)]
struct ScreenTri {
    /// Corners in 1/256 px, ordered so that the signed area is positive.
    xy: [[i64; 2]; 3],
    /// `1/w` at corner 0 and its derivatives per pixel along u and v.
    inv_w: [f64; 3],
    /// Range of `1/w` over the corners (interpolated values are clamped to it).
    inv_w_range: [f64; 2],
    /// Inclusive pixel bounds `[x0, y0, x1, y1]`, inside the extended image.
    bbox: [i32; 4],
    /// The source triangle in the world mesh.
    tri: u32,
    object: ObjectId,
}

/// A clip-space vertex: homogeneous image coordinates `(hx, hy, w)` and rect z.
type ClipVertex = [f64; 4];

fn clip_vertex(rays: &PixelRays, p: &Point3<f32>) -> ClipVertex {
    let p = Point3::new(f64::from(p.x), f64::from(p.y), f64::from(p.z)).to_homogeneous();
    let h = rays.image_from_velo * p;
    [h.x, h.y, h.z, rays.rect_z_row.dot(&p.transpose())]
}

/// Signed distances to the clip planes (inside ≥ 0): near plane, then the four guard-band planes.
const CLIP_PLANES: [fn(&ClipVertex) -> f64; 5] = [
    |v| v[3] - NEAR_PLANE_M,
    |v| GUARD_BAND_PX * v[2] - v[0],
    |v| GUARD_BAND_PX * v[2] + v[0],
    |v| GUARD_BAND_PX * v[2] - v[1],
    |v| GUARD_BAND_PX * v[2] + v[1],
];

fn inside_all(v: &ClipVertex) -> bool {
    v[2] > 0.0 && CLIP_PLANES.iter().all(|plane| plane(v) >= 0.0)
}

/// Snapped screen position (1/256 px) and `1/w` of a vertex inside every clip plane.
fn project(v: &ClipVertex) -> ([i64; 2], f64) {
    let inv_w = 1.0 / v[2];
    let snap = |c: f64| (c * inv_w * SUBPIXEL).round() as i64;
    ([snap(v[0]), snap(v[1])], inv_w)
}

/// Convex polygon of at most 3 + one vertex per clip plane.
struct Polygon {
    vertices: [ClipVertex; 8],
    len: usize,
}

impl Polygon {
    fn clip(&mut self, plane: fn(&ClipVertex) -> f64) {
        let mut out = [[0.0; 4]; 8];
        let mut n = 0;
        for i in 0..self.len {
            let p = self.vertices[i];
            let q = self.vertices[(i + 1) % self.len];
            let (dp, dq) = (plane(&p), plane(&q));
            if dp >= 0.0 && n < out.len() {
                out[n] = p;
                n += 1;
            }
            if (dp >= 0.0) != (dq >= 0.0) && n < out.len() {
                out[n] = intersect(p, dp, q, dq);
                n += 1;
            }
        }
        self.vertices = out;
        self.len = n;
    }
}

/// Where segment `pq` crosses a plane (signed distances `dp`, `dq` of opposite signs). Computed from
/// the lexicographically smaller end, so that both triangles sharing an edge get the same vertex.
fn intersect(p: ClipVertex, dp: f64, q: ClipVertex, dq: f64) -> ClipVertex {
    let (a, da, b, db) = if p < q { (p, dp, q, dq) } else { (q, dq, p, dp) };
    let t = da / (da - db);
    std::array::from_fn(|i| a[i] + t * (b[i] - a[i]))
}

fn ceil_div_px(fixed: i64) -> i64 {
    -((-fixed).div_euclid(SUBPIXEL as i64))
}

fn floor_div_px(fixed: i64) -> i64 {
    fixed.div_euclid(SUBPIXEL as i64)
}

/// Orients, bounds and sets up one snapped triangle; `None` when it has no area or covers no pixel
/// centre of the extended image.
fn screen_tri(corners: [([i64; 2], f64); 3], frame: &Frame, tri: u32, object: ObjectId) -> Option<ScreenTri> {
    let [a, mut b, mut c] = corners;
    let area2 =
        |a: [i64; 2], b: [i64; 2], c: [i64; 2]| (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
    let mut area = area2(a.0, b.0, c.0);
    if area == 0 {
        return None;
    }
    if area < 0 {
        std::mem::swap(&mut b, &mut c);
        area = -area;
    }
    let xs = [a.0[0], b.0[0], c.0[0]];
    let ys = [a.0[1], b.0[1], c.0[1]];
    let min = |v: [i64; 3]| v[0].min(v[1]).min(v[2]);
    let max = |v: [i64; 3]| v[0].max(v[1]).max(v[2]);
    let clamp = |v: i64, lo: i32, hi: i32| v.clamp(i64::from(lo), i64::from(hi)) as i32;
    let x0 = ceil_div_px(min(xs));
    let x1 = floor_div_px(max(xs));
    let y0 = ceil_div_px(min(ys));
    let y1 = floor_div_px(max(ys));
    if x0 > x1
        || y0 > y1
        || x1 < i64::from(frame.ext_x0())
        || x0 >= i64::from(frame.ext_x1())
        || y1 < i64::from(frame.ext_y0())
        || y0 >= i64::from(frame.ext_y1())
    {
        return None;
    }
    let bbox = [
        clamp(x0, frame.ext_x0(), frame.ext_x1() - 1),
        clamp(y0, frame.ext_y0(), frame.ext_y1() - 1),
        clamp(x1, frame.ext_x0(), frame.ext_x1() - 1),
        clamp(y1, frame.ext_y0(), frame.ext_y1() - 1),
    ];
    // 1/w is affine in screen space: fit its plane through the snapped corners.
    let px = |p: [i64; 2]| [p[0] as f64 / SUBPIXEL, p[1] as f64 / SUBPIXEL];
    let (pa, pb, pc) = (px(a.0), px(b.0), px(c.0));
    let e1 = [pb[0] - pa[0], pb[1] - pa[1]];
    let e2 = [pc[0] - pa[0], pc[1] - pa[1]];
    let det = area as f64 / (SUBPIXEL * SUBPIXEL);
    let (q1, q2) = (b.1 - a.1, c.1 - a.1);
    let dq_du = (q1 * e2[1] - q2 * e1[1]) / det;
    let dq_dv = (q2 * e1[0] - q1 * e2[0]) / det;
    // Value at pixel (0, 0), so that a pixel's value is inv_w[0] + u·inv_w[1] + v·inv_w[2].
    let q00 = a.1 - dq_du * pa[0] - dq_dv * pa[1];
    let lo = a.1.min(b.1).min(c.1);
    let hi = a.1.max(b.1).max(c.1);
    Some(ScreenTri {
        xy: [a.0, b.0, c.0],
        inv_w: [q00, dq_du, dq_dv],
        inv_w_range: [lo, hi],
        bbox,
        tri,
        object,
    })
}

/// Transforms, clips and sets up every triangle, in triangle order.
fn setup_triangles(world: &WorldMesh, rays: &PixelRays, frame: &Frame) -> Vec<ScreenTri> {
    let vertices: Vec<(ClipVertex, bool)> = world
        .vertices
        .par_iter()
        .map(|p| {
            let v = clip_vertex(rays, p);
            (v, inside_all(&v))
        })
        .collect();
    let chunks: Vec<Vec<ScreenTri>> = world
        .triangles
        .par_chunks(SETUP_CHUNK)
        .enumerate()
        .map(|(chunk, tris)| {
            let mut out = Vec::new();
            for (j, t) in tris.iter().enumerate() {
                let index = chunk * SETUP_CHUNK + j;
                let object = world.object.get(index).copied().unwrap_or(SKY);
                let [Some(&c0), Some(&c1), Some(&c2)] = t.map(|i| vertices.get(i as usize)) else {
                    continue;
                };
                let corners = [c0, c1, c2];
                let index = index as u32;
                if corners.iter().all(|c| c.1) {
                    let projected = corners.map(|c| project(&c.0));
                    out.extend(screen_tri(projected, frame, index, object));
                    continue;
                }
                let mut poly = Polygon {
                    vertices: [[0.0; 4]; 8],
                    len: 3,
                };
                for (k, c) in corners.iter().enumerate() {
                    poly.vertices[k] = c.0;
                }
                for plane in CLIP_PLANES {
                    if poly.vertices[..poly.len].iter().any(|v| plane(v) < 0.0) {
                        poly.clip(plane);
                    }
                }
                if poly.len < 3 || poly.vertices[..poly.len].iter().any(|v| v[2] <= 0.0) {
                    continue;
                }
                let first = project(&poly.vertices[0]);
                for k in 1..poly.len - 1 {
                    let fan = [first, project(&poly.vertices[k]), project(&poly.vertices[k + 1])];
                    out.extend(screen_tri(fan, frame, index, object));
                }
            }
            out
        })
        .collect();
    chunks.concat()
}

/// For each band, the screen triangles whose bounding box meets it.
fn bin_by_band(screen: &[ScreenTri], frame: &Frame) -> Vec<Vec<u32>> {
    let mut bins = vec![Vec::new(); frame.n_bands];
    for (i, t) in screen.iter().enumerate() {
        let first = (t.bbox[1].div_euclid(BAND_ROWS) - frame.first_band) as usize;
        let last = (t.bbox[3].div_euclid(BAND_ROWS) - frame.first_band) as usize;
        for bin in &mut bins[first..=last.min(frame.n_bands - 1)] {
            bin.push(i as u32);
        }
    }
    bins
}

/// What a band task reads.
struct BandContext<'a> {
    scene: &'a Scene,
    world: &'a WorldMesh,
    rays: &'a PixelRays,
    frame: &'a Frame,
    screen: &'a [ScreenTri],
    n_objects: usize,
}

/// The output rows of one band that lies (partly) in the image.
struct BandPixels<'a> {
    depth_m: &'a mut [f32],
    object: &'a mut [ObjectId],
    material: &'a mut [Material],
    normal_velo: &'a mut [[f32; 3]],
}

/// One band's share of every object's coverage.
struct BandCoverage {
    visible: Vec<u32>,
    boxes: Vec<Option<[i32; 4]>>,
    silhouette_in_image: Vec<u32>,
    silhouette_extended: Vec<u32>,
}

/// The edge functions of a screen triangle, evaluated on pixel rows.
struct Edges {
    /// Per edge: the value at pixel x = 0 of row y is `row0 + y·dy`, and grows by `dx` per pixel.
    row0: [i64; 3],
    dy: [i64; 3],
    dx: [i64; 3],
    /// 0 for top-left edges (pixel centres on them are inside), 1 for the others.
    bias: [i64; 3],
}

impl Edges {
    fn new(xy: &[[i64; 2]; 3]) -> Edges {
        let mut e = Edges {
            row0: [0; 3],
            dy: [0; 3],
            dx: [0; 3],
            bias: [0; 3],
        };
        for i in 0..3 {
            let a = xy[i];
            let b = xy[(i + 1) % 3];
            let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
            // E(p) = ex·(p.y − a.y) − ey·(p.x − a.x), positive inside.
            e.row0[i] = -ex * a[1] + ey * a[0];
            e.dy[i] = ex * SUBPIXEL as i64;
            e.dx[i] = -ey * SUBPIXEL as i64;
            let top_left = ey < 0 || (ey == 0 && ex > 0);
            e.bias[i] = i64::from(!top_left);
        }
        e
    }

    /// The covered pixels `[lo, hi]` of row `y` within `[x0, x1]`, if any.
    fn span(&self, y: i32, x0: i32, x1: i32) -> Option<(i32, i32)> {
        let c: [i64; 3] = std::array::from_fn(|i| self.row0[i] + i64::from(y) * self.dy[i]);
        if x1 - x0 < SCAN_MAX_WIDTH_PX {
            let inside = |x: i32| (0..3).all(|i| c[i] + i64::from(x) * self.dx[i] >= self.bias[i]);
            let lo = (x0..=x1).find(|&x| inside(x))?;
            let hi = (lo..=x1).rev().find(|&x| inside(x))?;
            return Some((lo, hi));
        }
        let (mut lo, mut hi) = (i64::from(x0), i64::from(x1));
        for ((c, bias), dx) in c.into_iter().zip(self.bias).zip(self.dx) {
            // c + dx·x ≥ bias  ⇔  dx·x ≥ need
            let need = bias - c;
            match dx.signum() {
                1 => lo = lo.max(-((-need).div_euclid(dx))),
                -1 => hi = hi.min((-need).div_euclid(-dx)),
                _ if need > 0 => return None,
                _ => {}
            }
        }
        (lo <= hi).then_some((lo as i32, hi as i32))
    }
}

/// Rasterises the screen triangles `tris` into extended rows `[y0, y1)`; fills `pixels` (the band's
/// image rows) and returns the band's coverage counts.
fn rasterise_band(
    ctx: &BandContext,
    y0: i32,
    y1: i32,
    tris: &mut [u32],
    pixels: Option<BandPixels>,
) -> BandCoverage {
    let frame = ctx.frame;
    let n = ctx.n_objects;
    let mut cov = BandCoverage {
        visible: vec![0; n],
        boxes: vec![None; n],
        silhouette_in_image: vec![0; n],
        silhouette_extended: vec![0; n],
    };
    // Each object's triangles together, so that a per-pixel stamp counts its union once.
    tris.sort_unstable_by_key(|&i| (ctx.screen[i as usize].object, i));

    let width = frame.width as usize;
    let img_y0 = y0.max(0);
    let img_y1 = y1.min(frame.height);
    let img_rows = (img_y1 - img_y0).max(0) as usize;
    // Best 1/w so far (0 = infinitely far) and its screen triangle, seeded with the ground.
    let mut best = vec![0.0f64; img_rows * width];
    let mut best_tri = vec![NONE; img_rows * width];
    let centre = ctx.rays.centre_velo();
    for r in 0..img_rows {
        let y = f64::from(img_y0 + r as i32);
        for x in 0..width {
            let d = ctx.rays.dir_velo(x as f64, y);
            if let Some(w) = ctx.scene.ground.ray_hit(&centre, &d) {
                best[r * width + x] = 1.0 / w;
            }
        }
    }

    let ext_w = frame.ext_width();
    let mut stamp = vec![NONE; (y1 - y0).max(0) as usize * ext_w];
    for &si in tris.iter() {
        let t = &ctx.screen[si as usize];
        let counted = (t.object as usize) < n;
        let (mut in_image, mut extended) = (0u32, 0u32);
        let edges = Edges::new(&t.xy);
        for y in t.bbox[1].max(y0)..=t.bbox[3].min(y1 - 1) {
            let Some((lo, hi)) = edges.span(y, t.bbox[0], t.bbox[2]) else {
                continue;
            };
            let stamp_row = (y - y0) as usize * ext_w;
            let row_in_image = (0..frame.height).contains(&y);
            let img_lo = lo.max(0);
            let img_hi = hi.min(frame.width - 1);
            for x in lo..=hi {
                let s = &mut stamp[stamp_row + (x - frame.ext_x0()) as usize];
                if *s != t.object {
                    *s = t.object;
                    extended += 1;
                    if row_in_image && x >= img_lo && x <= img_hi {
                        in_image += 1;
                    }
                }
            }
            if row_in_image && img_lo <= img_hi {
                let row = (y - img_y0) as usize * width;
                let q_row = t.inv_w[0] + f64::from(y) * t.inv_w[2];
                for x in img_lo..=img_hi {
                    let q = (q_row + f64::from(x) * t.inv_w[1]).clamp(t.inv_w_range[0], t.inv_w_range[1]);
                    let i = row + x as usize;
                    if q > best[i] || (q == best[i] && si < best_tri[i]) {
                        best[i] = q;
                        best_tri[i] = si;
                    }
                }
            }
        }
        if counted {
            cov.silhouette_in_image[t.object as usize] += in_image;
            cov.silhouette_extended[t.object as usize] += extended;
        }
    }

    let Some(out) = pixels else {
        return cov;
    };
    let ground_normal = ctx.scene.ground.normal_velo().cast::<f32>();
    for r in 0..img_rows {
        let y = img_y0 + r as i32;
        for x in 0..frame.width {
            let i = r * width + x as usize;
            let (u, v) = (f64::from(x), f64::from(y));
            if best[i] <= 0.0 {
                continue; // sky, as initialised
            }
            let w = 1.0 / best[i];
            out.depth_m[i] = ctx.rays.rect_depth_m(u, v, w) as f32;
            if best_tri[i] == NONE {
                out.object[i] = GROUND;
                out.normal_velo[i] = ground_normal.into();
                continue;
            }
            let tri = ctx.screen[best_tri[i] as usize].tri as usize;
            let object = ctx.world.object[tri];
            out.object[i] = object;
            out.material[i] = ctx.world.material[tri];
            let normal = ctx.world.normal(tri);
            let towards_pixel = ctx.rays.dir_velo(u, v).cast::<f32>();
            out.normal_velo[i] = if normal.dot(&towards_pixel) > 0.0 {
                -normal
            } else {
                normal
            }
            .into();
            if (object as usize) < n {
                let o = object as usize;
                cov.visible[o] += 1;
                let b = cov.boxes[o].get_or_insert([x, y, x, y]);
                *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
            }
        }
    }
    cov
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::TriMesh;
    use crate::scene::{ObjectClass, SceneObject, Surface};
    use crate::world::{Ground, LIDAR_MOUNT_HEIGHT_M};
    use nalgebra::Isometry3;

    const W: u32 = 1242;
    const H: u32 = 375;

    use crate::scene::testing::{cuboid as box_mesh, scene};

    fn object(mesh: TriMesh, velo_from_model: Isometry3<f64>) -> SceneObject {
        crate::scene::testing::object(
            ObjectClass::Car,
            mesh,
            velo_from_model,
            [0.5, 0.1, 0.1],
            Surface::CarPaint,
        )
    }

    /// A box standing on the ground at `(x, y)`, its length along velo x.
    fn standing_box(s: &Ground, x: f64, y: f64, dims: (f32, f32, f32)) -> SceneObject {
        object(box_mesh(dims.0, dims.1, dims.2), s.velo_from_model(x, y, 0.0))
    }

    fn render(s: &Scene) -> (CameraGeometry, Vec<ObjectCoverage>) {
        render_geometry(s, &s.world_mesh(), &Calib::kitti_reference(), Camera::Cam2, W, H)
    }

    fn mask_extent(g: &CameraGeometry, id: ObjectId) -> Option<Box2d> {
        let mut pts = Vec::new();
        for y in 0..g.height {
            for x in 0..g.width {
                if g.object[g.index(x, y)] == id {
                    pts.push([f64::from(x), f64::from(y)]);
                }
            }
        }
        Box2d::enclosing(pts)
    }

    #[test]
    fn box_in_front_covers_its_projected_corners() {
        let g0 = Ground::level(LIDAR_MOUNT_HEIGHT_M);
        let s = scene(vec![standing_box(&g0, 12.0, 1.0, (4.0, 1.8, 1.5))]);
        let (geo, cov) = render(&s);
        let b = cov[0].visible_box.unwrap();
        assert_eq!(Some(b), mask_extent(&geo, 0));
        let rays = PixelRays::new(&Calib::kitti_reference(), Camera::Cam2).unwrap();
        let o = &s.objects[0];
        let corners: Vec<[f64; 2]> = o
            .mesh
            .vertices
            .iter()
            .map(|v| {
                rays.project_velo(&(o.velo_from_model * Point3::new(v.x, v.y, v.z).cast()))
                    .unwrap()
            })
            .collect();
        let proj = Box2d::enclosing(corners).unwrap();
        for (got, want) in [
            (b.left, proj.left),
            (b.top, proj.top),
            (b.right, proj.right),
            (b.bottom, proj.bottom),
        ] {
            assert!((got - want).abs() <= 1.0, "{b:?} vs {proj:?}");
        }
        assert_eq!(cov[0].visible_pixels, cov[0].silhouette_pixels_in_image);
        assert_eq!(
            cov[0].silhouette_pixels_in_image,
            cov[0].silhouette_pixels_extended
        );
        let area = (b.width() + 1.0) * (b.height() + 1.0);
        assert!(f64::from(cov[0].visible_pixels) <= area && f64::from(cov[0].visible_pixels) > 0.6 * area);
        // The centre pixel sees the box's rear face (velo x = 10 m), facing the camera.
        let (cx, cy) = (
            ((b.left + b.right) / 2.0) as u32,
            ((b.top + b.bottom) / 2.0) as u32,
        );
        let centre = geo.index(cx, cy);
        let n = geo.normal_velo[centre];
        assert!((n[0] + 1.0).abs() < 1e-4, "{n:?}");
        let p = geo.point_velo(&rays, cx, cy).unwrap();
        assert!((p.x - 10.0).abs() < 1e-3, "{p}");
        let want = Calib::kitti_reference().velo_to_rect(&p).z;
        assert!((f64::from(geo.depth_m[centre]) - want).abs() < 1e-4, "{want}");
    }

    #[test]
    fn ground_pixels_have_the_analytic_depth_and_sky_is_infinite() {
        let s = scene(vec![]);
        let (geo, cov) = render(&s);
        assert!(cov.is_empty());
        let calib = Calib::kitti_reference();
        let rays = PixelRays::new(&calib, Camera::Cam2).unwrap();
        for (x, y) in [(600, 300), (100, 370), (1200, 200)] {
            let i = geo.index(x, y);
            assert_eq!(geo.object[i], GROUND);
            let d = rays.dir_velo(f64::from(x), f64::from(y));
            let t = s.ground.ray_hit(&rays.centre_velo(), &d).unwrap();
            let p = rays.centre_velo() + d * t;
            let want = calib.velo_to_rect(&p).z;
            assert!(
                (f64::from(geo.depth_m[i]) - want).abs() < 1e-4 * want,
                "{} vs {want}",
                geo.depth_m[i]
            );
            assert!((geo.point_velo(&rays, x, y).unwrap() - p).norm() < 1e-3 * want);
            assert!((geo.normal_velo[i][2] - 1.0).abs() < 1e-6);
        }
        let top = geo.index(600, 10);
        assert_eq!(geo.object[top], SKY);
        assert!(geo.depth_m[top].is_infinite());
        assert!(geo.point_velo(&rays, 600, 10).is_none());
    }

    #[test]
    fn nearer_object_occludes_farther_one() {
        let g0 = Ground::level(LIDAR_MOUNT_HEIGHT_M);
        let s = scene(vec![
            standing_box(&g0, 25.0, 0.5, (4.0, 1.8, 1.5)),
            standing_box(&g0, 12.0, 0.0, (4.0, 1.8, 1.2)),
        ]);
        let (geo, cov) = render(&s);
        let (far, near) = (cov[0], cov[1]);
        assert!(
            far.visible_pixels > 0 && far.visible_pixels < far.silhouette_pixels_in_image,
            "{far:?}"
        );
        assert_eq!(near.visible_pixels, near.silhouette_pixels_in_image);
        assert_eq!(far.visible_box, mask_extent(&geo, 0));
        assert_eq!(near.visible_box, mask_extent(&geo, 1));
        // Alone, the far box is fully visible and covers exactly its silhouette.
        let (_, alone) = render(&scene(vec![s.objects[0].clone()]));
        assert_eq!(alone[0].visible_pixels, far.silhouette_pixels_in_image);
        assert_eq!(
            alone[0].silhouette_pixels_extended,
            far.silhouette_pixels_extended
        );
    }

    #[test]
    fn object_half_out_of_the_image_is_half_truncated() {
        let calib = Calib::kitti_reference();
        let rays = PixelRays::new(&calib, Camera::Cam2).unwrap();
        // A thin upright square centred on the ray through the left image edge (u = -0.5), facing the
        // camera: its left half projects left of the image.
        let d = rays.dir_velo(-0.5, 180.0);
        let at = rays.centre_velo() + d * (15.0 / d.x);
        // box_mesh's x is the plate's thickness; with the identity pose model axes are velo axes.
        let mut mesh = box_mesh(2.0, 0.02, 2.0);
        for v in &mut mesh.vertices {
            *v += Vector3::new(at.x, at.y - 1.0, at.z).cast::<f32>();
        }
        let s = scene(vec![object(mesh, Isometry3::identity())]);
        let (_, cov) = render(&s);
        let c = cov[0];
        let ratio = f64::from(c.silhouette_pixels_in_image) / f64::from(c.silhouette_pixels_extended);
        assert!((ratio - 0.5).abs() < 0.03, "{c:?}");
        assert!(c.visible_pixels <= c.silhouette_pixels_in_image);
        assert_eq!(c.visible_box.unwrap().left, 0.0);
    }

    #[test]
    fn object_straddling_the_camera_renders_without_panicking() {
        // A long wall beside the car, from 10 m behind to 30 m ahead.
        let g0 = Ground::level(LIDAR_MOUNT_HEIGHT_M);
        let wall = standing_box(&g0, 10.0, 3.0, (40.0, 0.3, 3.0));
        let s = scene(vec![wall, standing_box(&g0, 0.0, 0.0, (0.5, 0.5, 0.5))]);
        let (geo, cov) = render(&s);
        assert!(cov[0].visible_pixels > 10_000, "{:?}", cov[0]);
        assert_eq!(cov[0].visible_box, mask_extent(&geo, 0));
        assert_eq!(cov[0].visible_box.unwrap().left, 0.0);
        assert!(cov[0].silhouette_pixels_extended > cov[0].silhouette_pixels_in_image);
        assert!(geo.depth_m.iter().all(|d| *d > 0.0));
        // The wall's near end is cut by the near plane; the wall is watertight, so no sky shows
        // through it on its own rows.
        for x in [0, 100, 300] {
            assert_eq!(geo.object[geo.index(x, 150)], 0, "pixel ({x}, 150)");
        }
    }

    #[test]
    fn rendering_is_deterministic_and_independent_of_thread_count() {
        let lib = crate::ShapeLibrary::procedural(3, 6);
        let g0 = Ground::level(LIDAR_MOUNT_HEIGHT_M);
        let objects = (0..6)
            .map(|i| {
                let pose = g0.velo_from_model(8.0 + 4.0 * i as f64, -3.0 + 1.3 * i as f64, 0.4 * i as f64);
                object(lib.shape(i).unwrap(), pose)
            })
            .collect();
        let s = scene(objects);
        let a = render(&s);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let b = one.install(|| render(&s));
        let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let c = three.install(|| render(&s));
        assert!(a == b && b == c);
        for (o, cov) in a.1.iter().enumerate() {
            assert_eq!(cov.visible_box, mask_extent(&a.0, o as ObjectId));
            assert!(cov.visible_pixels <= cov.silhouette_pixels_in_image);
            assert!(cov.silhouette_pixels_in_image <= cov.silhouette_pixels_extended);
        }
    }

    #[test]
    fn shared_edges_are_covered_exactly_once_by_scan_and_span() {
        // A fan of triangles around a centre covers each pixel of its hull once: check by summing
        // per-triangle pixel counts against the union, for both span strategies.
        let frame = Frame::new(W, H);
        let centre = [300 * 256 + 77, 150 * 256 + 13];
        let mut ring = Vec::new();
        for k in 0..13 {
            let a = k as f64 / 13.0 * std::f64::consts::TAU;
            let r = if k % 2 == 0 { 60.3 } else { 140.7 };
            ring.push([
                centre[0] + (r * a.cos() * 256.0) as i64,
                centre[1] + (r * a.sin() * 256.0) as i64,
            ]);
        }
        let mut count = std::collections::HashMap::new();
        for k in 0..ring.len() {
            let corners = [(centre, 1.0), (ring[k], 1.0), (ring[(k + 1) % ring.len()], 1.0)];
            let t = screen_tri(corners, &frame, k as u32, 0).unwrap();
            let e = Edges::new(&t.xy);
            for y in t.bbox[1]..=t.bbox[3] {
                let wide = e.span(y, t.bbox[0], t.bbox[2]);
                // the scan strategy on the same row, in narrow windows
                let mut scanned: Option<(i32, i32)> = None;
                let mut x = t.bbox[0];
                while x <= t.bbox[2] {
                    let x_end = (x + SCAN_MAX_WIDTH_PX - 1).min(t.bbox[2]);
                    if let Some((lo, hi)) = e.span(y, x, x_end) {
                        scanned = Some(scanned.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
                    }
                    x = x_end + 1;
                }
                assert_eq!(wide, scanned, "row {y} of triangle {k}");
                if let Some((lo, hi)) = wide {
                    for x in lo..=hi {
                        *count.entry((x, y)).or_insert(0) += 1;
                    }
                }
            }
        }
        assert!(count.len() > 10_000);
        assert!(count.values().all(|&c| c == 1));
    }
}
