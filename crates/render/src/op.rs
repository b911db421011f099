//! The renderer as a candle `CustomOp3`, so that candle's autograd can differentiate through it.
//!
//! Inputs: camera-frame disc centres `[N, 3]` (m), camera-frame unit normals `[N, 3]` and colours
//! `[N, 3]`, f32, contiguous. Output `[H, W, 8]`: colour (3), normal (3), depth (1), mask (1). Build
//! the camera-frame points from pose, scale and latent with tensor operations and autograd reaches
//! all of them. The disc radius is a fixed setting of the op (metres), so its dependence on the
//! scale is not differentiated here ([`crate::backward`] includes it).

use crate::{CropCamera, Image, ImageGrad, Pose, RenderConfig, Surfels, cpu};
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

/// Output channels per pixel.
pub const CHANNELS: usize = 8;

/// The render op.
#[derive(Clone, Debug)]
pub struct RenderOp {
    /// The crop camera.
    pub camera: CropCamera,
    /// Renderer settings (`radius_units` is ignored: see `radius_m`).
    pub config: RenderConfig,
    /// Disc radius, m.
    pub radius_m: f32,
}

impl RenderOp {
    fn identity_setup(&self) -> (Pose, RenderConfig) {
        let pose = Pose::new(nalgebra::Vector3::zeros(), 1.0);
        let config = RenderConfig {
            radius_units: self.radius_m,
            ..self.config.clone()
        };
        (pose, config)
    }

    /// Renders camera-frame tensors: `[H, W, 8]`.
    pub fn apply(
        &self,
        positions: &Tensor,
        normals: &Tensor,
        colours: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let node = RenderNode {
            op: self.clone(),
            forward: std::sync::Mutex::new(None),
        };
        positions.apply_op3(normals, colours, node)
    }
}

/// One application of a [`RenderOp`] in a graph: it keeps the forward image (with the blend state
/// the backward pass needs, which the op's output does not carry) so that `bwd` need not render
/// again.
struct RenderNode {
    op: RenderOp,
    forward: std::sync::Mutex<Option<Image>>,
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("render op: {what} must be f32")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("render op: {what} must be contiguous")
    };
    if l.dims().len() != 2 || l.dims()[1] != 3 {
        candle_core::bail!("render op: {what} must be [N, 3], got {:?}", l.dims())
    }
    Ok(&v[a..b])
}

fn triples(v: &[f32]) -> Vec<[f32; 3]> {
    v.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

fn surfels_of(p: &[f32], n: &[f32], c: &[f32]) -> Surfels {
    Surfels {
        positions: triples(p),
        normals: triples(n),
        colours: triples(c),
    }
}

fn to_err(e: crate::RenderError) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

/// Packs an image as `[H·W·8]` in channel order colour, normal, depth, mask.
pub fn pack(image: &Image) -> Vec<f32> {
    let mut out = Vec::with_capacity(image.width * image.height * CHANNELS);
    for i in 0..image.width * image.height {
        out.extend_from_slice(&image.colour[i]);
        out.extend_from_slice(&image.normal[i]);
        out.push(image.depth_m[i]);
        out.push(image.mask[i]);
    }
    out
}

/// Unpacks a `[H·W·8]` gradient.
pub fn unpack_grad(g: &[f32]) -> ImageGrad {
    let mut out = ImageGrad::default();
    for p in g.chunks_exact(CHANNELS) {
        out.colour.push([p[0], p[1], p[2]]);
        out.normal.push([p[3], p[4], p[5]]);
        out.depth_m.push(p[6]);
        out.mask.push(p[7]);
    }
    out
}

impl CustomOp3 for RenderNode {
    fn name(&self) -> &'static str {
        "surfel-render"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let surfels = surfels_of(
            slice(s1, l1, "positions")?,
            slice(s2, l2, "normals")?,
            slice(s3, l3, "colours")?,
        );
        let (pose, config) = self.op.identity_setup();
        let image = cpu::render(&self.op.camera, &pose, &surfels, &config).map_err(to_err)?;
        let shape = Shape::from((self.op.camera.height, self.op.camera.width, CHANNELS));
        let packed = pack(&image);
        if let Ok(mut slot) = self.forward.lock() {
            *slot = Some(image);
        }
        Ok((CpuStorage::F32(packed), shape))
    }

    fn bwd(
        &self,
        positions: &Tensor,
        normals: &Tensor,
        colours: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let v = |t: &Tensor| -> candle_core::Result<Vec<f32>> { t.flatten_all()?.to_vec1::<f32>() };
        let surfels = surfels_of(&v(positions)?, &v(normals)?, &v(colours)?);
        let (pose, config) = self.op.identity_setup();
        // The forward pass's image, with its blend state (rendered again only if it is missing).
        let cached = self.forward.lock().ok().and_then(|mut slot| slot.take());
        let image = match cached {
            Some(image) => image,
            None => cpu::render(&self.op.camera, &pose, &surfels, &config).map_err(to_err)?,
        };
        let grad = unpack_grad(&v(grad_res)?);
        let g = cpu::backward(&self.op.camera, &pose, &surfels, &config, &image, &grad).map_err(to_err)?;
        let n = surfels.len();
        let dev = positions.device();
        let t = |rows: &[[f32; 3]]| Tensor::from_vec(rows.concat(), (n, 3), dev);
        Ok((Some(t(&g.positions)?), Some(t(&g.normals)?), Some(t(&g.colours)?)))
    }
}
