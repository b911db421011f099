//! Correspondence fields: what the network reads of a rendering, the surface point behind each
//! output cell, and the true field a training sample is scored against.
//!
//! The network's output grid has half the crop's resolution: cell `(i, j)` covers crop pixels
//! `2i..2i+1 × 2j..2j+1`. A cell *is rendered* when the mean soft mask of its four pixels exceeds
//! ½; its surface point X is the mean rendered NOCS (mask divided out) taken back to the
//! canonical frame, `X = 2·NOCS − 1`. Its **correspondence** is the 2D offset, in crop pixels, from
//! where X projects under the rendered pose to where it projects under the true pose; it is
//! **visible** when, under the true pose, X lands inside the crop on a pixel the true rendering
//! covers (mask > ½) at X's own depth (within [`VISIBILITY_TOLERANCE_M`]) and, when the image's own
//! object mask is known, on a pixel of that object (nothing else in front).

use crate::geometry::{project, to_camera};
use nalgebra::Vector2;
use render::{CropCamera, Image, Pose};

/// Input channels of the rendering stream: NOCS (3), camera-frame normal (3), mask (1), all
/// premultiplied by the mask as the renderer composites them.
pub const RENDER_CHANNELS: usize = 7;

/// Output cells are this many crop pixels wide.
pub const CELL_PX: usize = 2;

/// How far (m) the true rendering's depth may lie from a point's own for it to count as visible.
pub const VISIBILITY_TOLERANCE_M: f64 = 0.1;

/// The rendering as planar network input `[RENDER_CHANNELS, H, W]`.
pub fn render_features(image: &Image) -> Vec<f32> {
    let n = image.width * image.height;
    let mut out = vec![0.0f32; RENDER_CHANNELS * n];
    for p in 0..n {
        for c in 0..3 {
            out[c * n + p] = image.colour[p][c];
            out[(3 + c) * n + p] = image.normal[p][c];
        }
        out[6 * n + p] = image.mask[p];
    }
    out
}

/// The surface point (canonical units) behind every output cell of a NOCS rendering, row-major
/// over the `(W/2) × (H/2)` grid; `None` where the cell is not rendered.
pub fn cell_points(image: &Image) -> Vec<Option<[f32; 3]>> {
    let (tw, th) = (image.width / CELL_PX, image.height / CELL_PX);
    let mut out = Vec::with_capacity(tw * th);
    for j in 0..th {
        for i in 0..tw {
            let mut nocs = [0.0f32; 3];
            let mut mask = 0.0f32;
            for dy in 0..CELL_PX {
                for dx in 0..CELL_PX {
                    let p = (j * CELL_PX + dy) * image.width + i * CELL_PX + dx;
                    mask += image.mask[p];
                    for (acc, c) in nocs.iter_mut().zip(image.colour[p]) {
                        *acc += c;
                    }
                }
            }
            let cells = (CELL_PX * CELL_PX) as f32;
            out.push((mask / cells > 0.5).then(|| nocs.map(|v| 2.0 * v / mask - 1.0)));
        }
    }
    out
}

/// The true correspondence field of a rendering under `rendered_pose` against the object under
/// `true_pose`, per output cell.
#[derive(Clone, Debug, PartialEq)]
pub struct TrueField {
    /// Offset (du, dv) in crop pixels, zero where not rendered.
    pub offset_px: Vec<[f32; 2]>,
    /// The cell is rendered (has a surface point).
    pub rendered: Vec<bool>,
    /// The point is visible under the true pose.
    pub visible: Vec<bool>,
}

/// The field of `points` ([`cell_points`] of the rendering under `rendered_pose`), with
/// `true_image` the rendering under `true_pose` and `object_mask` (crop pixels, row-major) the
/// object's own pixels in the image when known.
pub fn true_field(
    camera: &CropCamera,
    points: &[Option<[f32; 3]>],
    rendered_pose: &Pose,
    true_pose: &Pose,
    true_image: &Image,
    object_mask: Option<&[bool]>,
) -> TrueField {
    let n = points.len();
    let mut field = TrueField {
        offset_px: vec![[0.0; 2]; n],
        rendered: vec![false; n],
        visible: vec![false; n],
    };
    for (k, x) in points.iter().enumerate() {
        let Some(x) = x else { continue };
        let p0 = to_camera(rendered_pose, x);
        let p1 = to_camera(true_pose, x);
        let (Some(u0), Some(u1)) = (project(camera, &p0), project(camera, &p1)) else {
            continue;
        };
        field.rendered[k] = true;
        let d: Vector2<f64> = u1 - u0;
        field.offset_px[k] = [d.x as f32, d.y as f32];
        let (ui, vi) = (u1.x.round(), u1.y.round());
        if ui < 0.0 || vi < 0.0 || ui >= camera.width as f64 || vi >= camera.height as f64 {
            continue;
        }
        let p = vi as usize * camera.width + ui as usize;
        let seen = true_image
            .unpremultiplied(p, 0.5)
            .is_some_and(|(_, _, depth)| (f64::from(depth) - p1.z).abs() < VISIBILITY_TOLERANCE_M);
        field.visible[k] = seen && object_mask.is_none_or(|m| m.get(p).copied().unwrap_or(false));
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Matrix3, Vector3};
    use render::{RenderConfig, Surfels, render};

    /// A flat square of surfels facing the camera (z = const), NOCS-coloured.
    fn plate() -> Surfels {
        let mut s = Surfels::default();
        for a in 0..40 {
            for b in 0..40 {
                let p = [(a as f32 - 19.5) / 40.0, (b as f32 - 19.5) / 40.0, 0.0];
                s.positions.push(p);
                s.normals.push([0.0, 0.0, -1.0]);
                s.colours.push(p.map(|v| (v + 1.0) / 2.0));
            }
        }
        s
    }

    /// A pure image-plane shift: the plate moved sideways at a constant depth moves every visible
    /// point by fx·δx/z pixels, which is what the field says.
    #[test]
    fn field_of_a_sideways_shift_is_uniform() {
        let camera = CropCamera {
            fx: 200.0,
            fy: 200.0,
            cx: 23.5,
            cy: 23.5,
            width: 48,
            height: 48,
        };
        let surfels = plate();
        let config = RenderConfig::default();
        let true_pose = Pose {
            rotation: Matrix3::identity(),
            translation_m: Vector3::new(0.0, 0.0, 10.0),
            scale: 2.0,
        };
        let shift_m = 0.4;
        let rendered_pose = Pose {
            translation_m: Vector3::new(shift_m, -0.2, 10.0),
            ..true_pose
        };
        let img0 = render(&camera, &rendered_pose, &surfels, &config).expect("render");
        let img1 = render(&camera, &true_pose, &surfels, &config).expect("render");
        let points = cell_points(&img0);
        let field = true_field(&camera, &points, &rendered_pose, &true_pose, &img1, None);
        let expected = [-200.0 * shift_m / 10.0, 200.0 * 0.2 / 10.0];
        let rendered = field.rendered.iter().filter(|r| **r).count();
        assert!(rendered > 100, "{rendered} rendered cells");
        for k in 0..points.len() {
            if field.rendered[k] {
                let o = field.offset_px[k];
                assert!(
                    (o[0] - expected[0]).abs() < 1e-3 && (o[1] - expected[1]).abs() < 1e-3,
                    "cell {k}: {o:?}, expected {expected:?}"
                );
            }
        }
        // The same plate under the true pose: its points are seen there (a few rim cells, whose
        // mean point falls where the true mask is below ½, excepted).
        let visible = field.visible.iter().filter(|v| **v).count();
        assert!(visible * 10 > rendered * 8, "{visible} of {rendered}");
        // An object mask that hides everything makes nothing visible.
        let hidden = vec![false; camera.pixels()];
        let none = true_field(&camera, &points, &rendered_pose, &true_pose, &img1, Some(&hidden));
        assert!(none.visible.iter().all(|v| !v));
    }
}
