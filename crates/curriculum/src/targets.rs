//! Training crops from accepted labels: the image crop around the detection, with NOCS and mask
//! rendered from the label's own shape and pose (the surfel renderer), and its shape code as the
//! latent target — what the CSS network learns from in the target domain, where no true shape
//! exists.

use crate::config::TargetConfig;
use crate::error::Result;
use css::data::{BoxRays, Crop, crop_to_image, crop_window, sample_rgb};
use deepsdf::Decoder;
use deepsdf::surface::extract_surface;
use detection::Detection;
use geom::{Camera, Intrinsics};
use optim::{GroundPlane, ObjectState};
use pipeline::FrameInput;
use render::{CropCamera, Pose, Surfels};

/// `Crop::shape_index` of a crop made from a label (no library shape).
pub const NO_LIBRARY_SHAPE: usize = usize::MAX;

/// A crop made from a label, and how much of the rendered car the detector's mask shows.
#[derive(Clone, Debug)]
pub struct TargetCrop {
    /// The crop with its targets.
    pub crop: Crop,
    /// Detection mask pixels inside the rendered silhouette / silhouette pixels (1 without a mask).
    pub visible_fraction: f64,
}

/// Renders the training crop of the label `state` (on `ground`) fitted to `detection` in `frame`;
/// `source` is recorded in the crop. `None` when the rendered car covers fewer than
/// `min_mask_pixels` pixels of the crop.
pub fn target_crop(
    frame: &FrameInput,
    detection: &Detection,
    state: &ObjectState,
    ground: &GroundPlane,
    decoder: &Decoder,
    config: &TargetConfig,
    source: (usize, usize),
) -> Result<Option<TargetCrop>> {
    let s = config.store_size;
    let window = crop_window(&detection.bbox, config.margin);
    let (k, cam_from_rect) = Intrinsics::from_projection(&frame.calib.image_from_rect(Camera::Cam2));
    let camera = CropCamera::new(&k.cropped(&window, s, s), s, s);
    let mut latent = state.latent.clone();
    let norm = latent.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    latent.iter_mut().for_each(|v| *v /= norm);
    let surface = extract_surface(decoder, &latent, &config.surface, false)?;
    let pose = Pose {
        rotation: state.rotation(ground).cast::<f32>(),
        translation_m: (state.translation_rect_m + cam_from_rect).cast::<f32>(),
        scale: state.scale as f32,
    };
    let surfels = Surfels {
        positions: surface.points,
        normals: surface.normals,
        colours: surface.nocs,
    };
    let rendered = render::render(&camera, &pose, &surfels, &config.render)?;
    let mut crop = Crop {
        size: s,
        image: Vec::with_capacity(s * s),
        nocs: Vec::with_capacity(s * s),
        mask: Vec::with_capacity(s * s),
        normal: vec![[0; 3]; s * s],
        latent,
        latent_weight: 1.0,
        rays: BoxRays::new(&detection.bbox, &k),
        shape_index: NO_LIBRARY_SHAPE,
        source,
        shape_weights: Vec::new(),
    };
    let (mut silhouette, mut shown) = (0usize, 0usize);
    for j in 0..s {
        for i in 0..s {
            let (u, v) = crop_to_image(&window, s, i as f64, j as f64);
            crop.image
                .push(sample_rgb(&frame.image, u, v).map(|c| c.round().clamp(0.0, 255.0) as u8));
            let p = j * s + i;
            let alpha = rendered.mask[p];
            let inside = alpha > 0.5;
            let in_detection = detection.mask.as_ref().is_none_or(|m| {
                let (x, y) = (u.round(), v.round());
                x >= 0.0 && y >= 0.0 && m.contains(x as u32, y as u32)
            });
            silhouette += usize::from(inside);
            shown += usize::from(inside && in_detection);
            let mine = inside && in_detection;
            crop.mask.push(mine);
            crop.nocs.push(if mine {
                rendered.colour[p].map(|c| ((c / alpha).clamp(0.0, 1.0) * 65535.0).round() as u16)
            } else {
                [0; 3]
            });
        }
    }
    if shown < config.min_mask_pixels {
        return Ok(None);
    }
    Ok(Some(TargetCrop {
        crop,
        visible_fraction: shown as f64 / silhouette.max(1) as f64,
    }))
}
