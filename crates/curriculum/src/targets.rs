//! Training crops from accepted labels: the image crop around the detection, with NOCS and mask
//! rendered from the label's own shape and pose (the surfel renderer), and its shape code as the
//! latent target — what the CSS network learns from in the target domain, where no true shape
//! exists. With `targets.mask_from_detection` the mask target is the detection's own mask and the
//! rendering gives the NOCS only.

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
        nocs_mask: None,
        normal: vec![[0; 3]; s * s],
        latent,
        // The crop's own weight; the fine-tuning sets the round's (`fine_tune.target_latent_weight`).
        latent_weight: 1.0,
        rays: BoxRays::new(&detection.bbox, &k),
        shape_index: NO_LIBRARY_SHAPE,
        source,
        shape_weights: Vec::new(),
    };
    let mask_from_detection = config.mask_from_detection && detection.mask.is_some();
    let mut nocs_known = Vec::with_capacity(if mask_from_detection { s * s } else { 0 });
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
            crop.mask
                .push(if mask_from_detection { in_detection } else { mine });
            if mask_from_detection {
                nocs_known.push(mine);
            }
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
    if mask_from_detection {
        crop.nocs_mask = Some(nocs_known);
    }
    Ok(Some(TargetCrop {
        crop,
        visible_fraction: shown as f64 / silhouette.max(1) as f64,
    }))
}

/// Shifts the codes of `crops` by one common vector so that their mean is the mean of
/// `anchor_codes`, and puts each back on the unit sphere. `anchor_codes` are the codes the crops
/// should look like as a set: the shape prior's training codes. The labels' codes share an error
/// (the labeler makes cars a little short) that the network would learn and pass on to the next
/// round's labels; the shift removes what they have in common and keeps what tells them apart.
/// Nothing happens when either side is empty.
pub fn centre_latents(crops: &mut [Crop], anchor_codes: &[Vec<f32>]) {
    let (Some(mean), Some(anchor)) = (
        mean_code(crops.iter().map(|c| c.latent.as_slice())),
        mean_code(anchor_codes.iter().map(Vec::as_slice)),
    ) else {
        return;
    };
    let shift: Vec<f64> = anchor.iter().zip(&mean).map(|(a, m)| a - m).collect();
    for crop in crops.iter_mut() {
        let moved: Vec<f64> = crop
            .latent
            .iter()
            .zip(&shift)
            .map(|(&z, d)| f64::from(z) + d)
            .collect();
        let norm = moved.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        crop.latent = moved.iter().map(|v| (v / norm) as f32).collect();
    }
}

/// The mean (not normalised) of `codes`; `None` for none.
fn mean_code<'a>(codes: impl ExactSizeIterator<Item = &'a [f32]>) -> Option<Vec<f64>> {
    let n = codes.len() as f64;
    let mut mean: Option<Vec<f64>> = None;
    for z in codes {
        let m = mean.get_or_insert_with(|| vec![0.0; z.len()]);
        m.iter_mut().zip(z).for_each(|(a, &b)| *a += f64::from(b) / n);
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        deepsdf::decoder::normalised(&v)
    }

    fn crop_with(latent: Vec<f32>) -> Crop {
        Crop {
            size: 1,
            image: vec![[0; 3]],
            nocs: vec![[0; 3]],
            mask: vec![false],
            nocs_mask: None,
            normal: vec![[0; 3]],
            latent,
            latent_weight: 1.0,
            rays: BoxRays {
                left: -0.1,
                top: -0.1,
                right: 0.1,
                bottom: 0.1,
            },
            shape_index: NO_LIBRARY_SHAPE,
            source: (0, 0),
            shape_weights: Vec::new(),
        }
    }

    #[test]
    fn centring_removes_a_shared_shift_of_the_codes_and_keeps_them_apart() {
        // Deterministic scatter in [-1, 1].
        let noise = |i: usize, k: usize| ((i * 37 + k * 101) as f32 * 0.618).sin();
        let dim = 16;
        let truth: Vec<Vec<f32>> = (0..40)
            .map(|i| unit((0..dim).map(|k| noise(i, k) + 1.0).collect()))
            .collect();
        // Every label's code carries the same error, plus a little of its own.
        let bias: Vec<f32> = (0..dim).map(|k| if k % 3 == 0 { 0.25 } else { -0.1 }).collect();
        let mut crops: Vec<Crop> = truth
            .iter()
            .enumerate()
            .map(|(i, z)| {
                let noisy = z.iter().zip(&bias).enumerate();
                crop_with(unit(
                    noisy.map(|(k, (a, b))| a + b + 0.01 * noise(i + 50, k)).collect(),
                ))
            })
            .collect();
        let error = |crops: &[Crop]| -> f32 {
            crops
                .iter()
                .zip(&truth)
                .map(|(c, z)| {
                    c.latent
                        .iter()
                        .zip(z)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f32>()
                        .sqrt()
                })
                .sum::<f32>()
                / truth.len() as f32
        };
        let before = error(&crops);
        centre_latents(&mut crops, &truth);
        let after = error(&crops);
        assert!(after < 0.25 * before, "mean code error {before:.4} -> {after:.4}");
        for c in &crops {
            let norm = c.latent.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        }
        // Codes whose mean already is the anchor stay where they are.
        let mut centred: Vec<Crop> = truth.iter().cloned().map(crop_with).collect();
        centre_latents(&mut centred, &truth);
        for (c, z) in centred.iter().zip(&truth) {
            for (a, b) in c.latent.iter().zip(z) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
        centre_latents(&mut [], &truth);
        let mut untouched = crops.clone();
        centre_latents(&mut untouched, &[]);
        assert_eq!(untouched, crops);
    }
}
