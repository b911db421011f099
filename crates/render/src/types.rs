//! What goes into a rendering and what comes out of it.

use crate::error::{RenderError, Result};
use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};

/// Settings of the renderer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RenderConfig {
    /// Disc radius in model units (metres = this × the pose's scale), as in SDFLabel. Enough for
    /// the default surface extraction (points from cells 0.0625 units wide, about 0.05 apart on
    /// the surface); the cost grows with its square.
    pub radius_units: f32,
    /// Coverage sharpness κ: a disc covers a pixel with α = σ(κ·(1 − ρ/r)), ρ the distance of the
    /// ray's hit on the disc plane from the disc centre and r the radius. α = ½ on the rim; the
    /// transition is r/κ wide. Discs are cut where σ < σ(−6) (see [`crate::disc::X_CUT`]).
    pub sharpness: f32,
    /// Depth sharpness β, 1/m: covered discs are blended with weights α·exp(−β·depth of their centre).
    /// SDFLabel uses 150 with hard coverage; with soft coverage the faint rim of a disc 10 cm in
    /// front would outweigh the surface behind it by e^15, so the default is 30: surfaces 30 cm apart
    /// still separate by e^9, while neighbouring discs of one surface blend smoothly.
    pub depth_sharpness_per_m: f32,
}

impl Default for RenderConfig {
    fn default() -> Self {
        RenderConfig {
            radius_units: 0.04,
            sharpness: 6.0,
            depth_sharpness_per_m: 30.0,
        }
    }
}

impl RenderConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let ok = |v: f32| v.is_finite() && v > 0.0;
        if ok(self.radius_units) && ok(self.sharpness) && ok(self.depth_sharpness_per_m) {
            Ok(())
        } else {
            Err(RenderError::InvalidInput(format!(
                "render settings must be positive and finite: {self:?}"
            )))
        }
    }
}

/// The pinhole camera of a crop: focal lengths and principal point in crop pixels (pixel centres at
/// integers, as [`geom::Intrinsics`]), and the crop's size. Pixel `(u, v)` sees along the ray
/// `((u − cx)/fx, (v − cy)/fy, 1)` of the camera frame (x right, y down, z forward).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CropCamera {
    /// Focal length along u, px.
    pub fx: f32,
    /// Focal length along v, px.
    pub fy: f32,
    /// Principal point, u, px.
    pub cx: f32,
    /// Principal point, v, px.
    pub cy: f32,
    /// Crop width, px.
    pub width: usize,
    /// Crop height, px.
    pub height: usize,
}

impl CropCamera {
    /// The crop camera of intrinsics already adjusted to the crop (see [`geom::Intrinsics::cropped`]).
    pub fn new(intrinsics: &geom::Intrinsics, width: usize, height: usize) -> Self {
        CropCamera {
            fx: intrinsics.fx as f32,
            fy: intrinsics.fy as f32,
            cx: intrinsics.cx as f32,
            cy: intrinsics.cy as f32,
            width,
            height,
        }
    }

    /// Number of pixels.
    pub fn pixels(&self) -> usize {
        self.width * self.height
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let ok = |v: f32| v.is_finite() && v > 0.0;
        if ok(self.fx)
            && ok(self.fy)
            && self.cx.is_finite()
            && self.cy.is_finite()
            && self.width > 0
            && self.height > 0
        {
            Ok(())
        } else {
            Err(RenderError::InvalidInput(format!("crop camera {self:?}")))
        }
    }
}

/// A similarity transform from the model frame (canonical units) to the camera frame (metres):
/// `p_cam = scale · rotation · p_model + translation_m`; normals turn with `rotation` only.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pose {
    /// `cam_from_model` rotation.
    pub rotation: Matrix3<f32>,
    /// Translation, camera frame, m.
    pub translation_m: Vector3<f32>,
    /// Metres per model unit.
    pub scale: f32,
}

impl Pose {
    /// The identity rotation at `translation_m`, with `scale`.
    pub fn new(translation_m: Vector3<f32>, scale: f32) -> Self {
        Pose {
            rotation: Matrix3::identity(),
            translation_m,
            scale,
        }
    }

    /// A model point in the camera frame.
    pub fn apply(&self, p_model: &[f32; 3]) -> [f32; 3] {
        let p = self.rotation * Vector3::from(*p_model) * self.scale + self.translation_m;
        [p.x, p.y, p.z]
    }

    /// A model direction in the camera frame.
    pub fn rotate(&self, n_model: &[f32; 3]) -> [f32; 3] {
        let n = self.rotation * Vector3::from(*n_model);
        [n.x, n.y, n.z]
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let finite = self
            .rotation
            .iter()
            .chain(self.translation_m.iter())
            .all(|v| v.is_finite());
        if finite && self.scale.is_finite() && self.scale > 0.0 {
            Ok(())
        } else {
            Err(RenderError::InvalidInput(format!("pose {self:?}")))
        }
    }
}

/// Oriented surface points with a colour each (NOCS for the LIDAR mode, RGB for the monocular mode),
/// in the model frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Surfels {
    /// Disc centres, model units.
    pub positions: Vec<[f32; 3]>,
    /// Unit normals, pointing out of the object.
    pub normals: Vec<[f32; 3]>,
    /// Per-disc colour, three channels.
    pub colours: Vec<[f32; 3]>,
}

impl Surfels {
    /// `n` points on a sphere of `radius` (a Fibonacci lattice) with outward normals and NOCS
    /// colours: the test scene of this crate's tests and benches.
    pub fn sphere(n: usize, radius: f32) -> Self {
        Self::ellipsoid(n, [radius; 3])
    }

    /// `n` points on an axis-aligned ellipsoid of half-axes `axes` (Fibonacci lattice), outward
    /// unit normals, NOCS colours of the unit-sphere direction.
    pub fn ellipsoid(n: usize, axes: [f32; 3]) -> Self {
        let golden = std::f32::consts::PI * (3.0 - 5f32.sqrt());
        let mut s = Surfels::default();
        for i in 0..n {
            let y = 1.0 - 2.0 * (i as f32 + 0.5) / n as f32;
            let r = (1.0 - y * y).sqrt();
            let phi = golden * i as f32;
            let u = [r * phi.cos(), y, r * phi.sin()];
            let g = [u[0] / axes[0], u[1] / axes[1], u[2] / axes[2]];
            let l = (g[0] * g[0] + g[1] * g[1] + g[2] * g[2]).sqrt();
            s.positions.push([u[0] * axes[0], u[1] * axes[1], u[2] * axes[2]]);
            s.normals.push(g.map(|v| v / l));
            s.colours.push(u.map(|v| (v + 1.0) / 2.0));
        }
        s
    }

    /// Number of discs.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there is no disc.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.normals.len() != self.positions.len() || self.colours.len() != self.positions.len() {
            return Err(RenderError::Shape(format!(
                "{} positions, {} normals, {} colours",
                self.positions.len(),
                self.normals.len(),
                self.colours.len()
            )));
        }
        // A non-finite surfel would be culled by one path and not the other (CPU vs CUDA).
        let all = self.positions.iter().chain(&self.normals).chain(&self.colours);
        if let Some(i) = all.clone().position(|v| !v.iter().all(|c| c.is_finite())) {
            return Err(RenderError::InvalidInput(format!(
                "surfel value {i} (positions, then normals, then colours) is not finite"
            )));
        }
        Ok(())
    }
}

/// One rendering: outputs, and the per-pixel blend state that the backward pass needs. Row-major,
/// `index = v · width + u`. Colour, normal and depth are composited over a zero background
/// (premultiplied by the mask), so every output goes continuously to 0 where the coverage does;
/// [`Image::unpremultiplied`] divides the mask out. Uncovered pixels are 0 in every output.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Image {
    /// Width, px.
    pub width: usize,
    /// Height, px.
    pub height: usize,
    /// Blended surfel colour (NOCS or RGB) × mask.
    pub colour: Vec<[f32; 3]>,
    /// Blended camera-frame normal (not renormalised) × mask.
    pub normal: Vec<[f32; 3]>,
    /// Blended depth (camera z), m, × mask.
    pub depth_m: Vec<f32>,
    /// Soft mask 1 − Π(1 − αᵢ).
    pub mask: Vec<f32>,
    /// Blend state: Σ αᵢ·exp(−β(zᵢ − z_ref)).
    pub weight_sum: Vec<f32>,
    /// Blend state: z_ref, the nearest covering disc-centre depth, m.
    pub z_ref_m: Vec<f32>,
    /// Blend state: log Π(1 − αᵢ) = log(1 − mask).
    pub log_transmittance: Vec<f32>,
}

impl Image {
    /// Checks that every per-pixel vector has `camera`'s size (the backward pass indexes them all).
    pub(crate) fn validate(&self, camera: &CropCamera) -> Result<()> {
        let n = camera.pixels();
        let sizes = [
            self.colour.len(),
            self.normal.len(),
            self.depth_m.len(),
            self.mask.len(),
            self.weight_sum.len(),
            self.z_ref_m.len(),
            self.log_transmittance.len(),
        ];
        if self.width == camera.width && self.height == camera.height && sizes.iter().all(|&s| s == n) {
            Ok(())
        } else {
            Err(RenderError::Shape(format!(
                "image {}×{} with per-pixel sizes {sizes:?}, camera {}×{}",
                self.width, self.height, camera.width, camera.height
            )))
        }
    }

    /// Pixel `i`'s colour, normal and depth with the mask divided out, where the mask exceeds
    /// `min_mask`.
    pub fn unpremultiplied(&self, i: usize, min_mask: f32) -> Option<([f32; 3], [f32; 3], f32)> {
        let m = self.mask[i];
        (m > min_mask && m > 0.0).then(|| {
            let k = 1.0 / m;
            (
                self.colour[i].map(|v| v * k),
                self.normal[i].map(|v| v * k),
                self.depth_m[i] * k,
            )
        })
    }

    /// An empty (uncovered) image.
    pub fn empty(width: usize, height: usize) -> Self {
        let n = width * height;
        Image {
            width,
            height,
            colour: vec![[0.0; 3]; n],
            normal: vec![[0.0; 3]; n],
            depth_m: vec![0.0; n],
            mask: vec![0.0; n],
            weight_sum: vec![0.0; n],
            z_ref_m: vec![0.0; n],
            log_transmittance: vec![0.0; n],
        }
    }
}

/// The gradient of a scalar loss with respect to every output of an [`Image`] (zeros where the loss
/// does not use an output).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageGrad {
    /// ∂L/∂colour.
    pub colour: Vec<[f32; 3]>,
    /// ∂L/∂normal.
    pub normal: Vec<[f32; 3]>,
    /// ∂L/∂depth.
    pub depth_m: Vec<f32>,
    /// ∂L/∂mask.
    pub mask: Vec<f32>,
}

impl ImageGrad {
    /// All zeros, for an image of `width × height`.
    pub fn zeros(width: usize, height: usize) -> Self {
        let n = width * height;
        ImageGrad {
            colour: vec![[0.0; 3]; n],
            normal: vec![[0.0; 3]; n],
            depth_m: vec![0.0; n],
            mask: vec![0.0; n],
        }
    }

    pub(crate) fn validate(&self, pixels: usize) -> Result<()> {
        let sizes = [
            self.colour.len(),
            self.normal.len(),
            self.depth_m.len(),
            self.mask.len(),
        ];
        if sizes.iter().all(|&s| s == pixels) {
            Ok(())
        } else {
            Err(RenderError::Shape(format!(
                "image gradient sizes {sizes:?}, image has {pixels} pixels"
            )))
        }
    }
}

/// ∂L/∂(pose parameters): the rotation matrix entry by entry, the translation and the scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoseGrad {
    /// ∂L/∂R, entry by entry.
    pub rotation: Matrix3<f32>,
    /// ∂L/∂t.
    pub translation_m: Vector3<f32>,
    /// ∂L/∂s (through the positions and the disc radius).
    pub scale: f32,
}

impl Default for PoseGrad {
    fn default() -> Self {
        PoseGrad {
            rotation: Matrix3::zeros(),
            translation_m: Vector3::zeros(),
            scale: 0.0,
        }
    }
}

/// The gradient of a scalar loss with respect to the surfels (model frame) and the pose.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SurfelGrad {
    /// ∂L/∂position, model frame.
    pub positions: Vec<[f32; 3]>,
    /// ∂L/∂normal, model frame (the normal as given, not renormalised).
    pub normals: Vec<[f32; 3]>,
    /// ∂L/∂colour.
    pub colours: Vec<[f32; 3]>,
    /// ∂L/∂pose.
    pub pose: PoseGrad,
}
