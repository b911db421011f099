//! Appearance: turns a camera's [`CameraGeometry`] into the RGB image of one of the two visual
//! [`Domain`]s.
//!
//! Shading happens in linear RGB: Lambert sunlight plus hemispherical sky light, a Blinn highlight
//! and a Fresnel-weighted reflection of the sky on glossy surfaces, procedural textures (value noise
//! by model- or world-frame position, faded out where they are finer than a pixel), contact and
//! cast shadows of vehicles on the ground, then haze by distance, colour cast, exposure, vignetting,
//! a soft highlight shoulder, sRGB encoding and sensor noise. Everything is a pure function of the
//! inputs: per-pixel noise comes from a hash of `(seed, pixel index)`, never from shared RNG state,
//! so rows can be shaded in parallel.

use crate::camera::{CameraGeometry, PixelRays};
use crate::car::splitmix64;
use crate::domain::Domain;
use crate::mesh::Material;
use crate::scene::{GroundKind, ObjectClass, Scene, SceneObject, Surface};
use crate::world::{GROUND, SKY};
use geom::{Calib, Camera};
use image::RgbImage;
use nalgebra::{Isometry3, Matrix3, Point3, Vector3};
use rand::RngExt;
use rand::rngs::StdRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Linear RGB.
type Rgb = Vector3<f32>;

/// The light, atmosphere and camera response of one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lighting {
    /// Unit vector towards the sun, Velodyne frame.
    pub sun_dir_velo: [f32; 3],
    /// Direct sunlight on a surface facing the sun, linear RGB (colour × intensity).
    pub sun_rgb: [f32; 3],
    /// Sky light on an upward-facing surface, linear RGB.
    pub ambient_rgb: [f32; 3],
    /// Sky radiance at the horizon, linear RGB.
    pub sky_horizon_rgb: [f32; 3],
    /// Sky radiance at the zenith, linear RGB.
    pub sky_zenith_rgb: [f32; 3],
    /// Brightness of the glow around the sun in the sky (0: none).
    pub sun_glow: f32,
    /// Fraction of the sky covered by clouds, 0–1.
    pub cloud_cover: f32,
    /// Colour that distant surfaces fade to, linear RGB.
    pub haze_rgb: [f32; 3],
    /// Haze extinction per metre along the ray (0: clear air).
    pub haze_per_m: f32,
    /// Per-channel gains of the colour cast (1: neutral).
    pub cast_rgb: [f32; 3],
    /// Exposure multiplier.
    pub exposure: f32,
    /// Strength of highlights and reflections on glossy surfaces (0: matte, Lambert + ambient only).
    pub specular: f32,
    /// Read-noise σ in 8-bit code values (DN).
    pub noise_sigma_dn: f32,
    /// Shot noise: variance added per DN of signal, DN.
    pub shot_noise_dn: f32,
    /// Relative darkening in the image corners (0: none).
    pub vignetting: f32,
    /// Strength of the procedural textures (0: flat colours, 1: full).
    pub texture_strength: f32,
}

impl Lighting {
    /// The fixed lighting of the clean domain: high sun behind the camera, neutral white light, plain
    /// sky gradient, no haze, cast, noise, vignetting, gloss or texture.
    pub fn clean() -> Lighting {
        let (elevation, azimuth) = (50f32.to_radians(), 160f32.to_radians());
        Lighting {
            sun_dir_velo: [
                elevation.cos() * azimuth.cos(),
                elevation.cos() * azimuth.sin(),
                elevation.sin(),
            ],
            sun_rgb: [1.6; 3],
            ambient_rgb: [0.55; 3],
            sky_horizon_rgb: [0.78, 0.82, 0.88],
            sky_zenith_rgb: [0.32, 0.48, 0.8],
            sun_glow: 0.0,
            cloud_cover: 0.0,
            haze_rgb: [0.78, 0.82, 0.88],
            haze_per_m: 0.0,
            cast_rgb: [1.0; 3],
            exposure: 1.0,
            specular: 0.0,
            noise_sigma_dn: 0.0,
            shot_noise_dn: 0.0,
            vignetting: 0.0,
            texture_strength: 0.0,
        }
    }

    /// The lighting of one image of `domain`: [`Lighting::clean`] (the rng is not used) or a random
    /// target-domain lighting: sun elevation 10°–70° at any azimuth, overcast to sunny, warm or cool
    /// casts, haze, sensor noise (σ 1–4 DN plus shot noise), vignetting and full textures.
    pub fn sample(domain: Domain, rng: &mut StdRng) -> Lighting {
        if domain == Domain::Clean {
            return Lighting::clean();
        }
        let elevation = rng.random_range(10f32..70.0).to_radians();
        let azimuth = rng.random_range(0.0..std::f32::consts::TAU);
        let overcast: f32 = rng.random_range(0f32..1.0);
        // Low sun is warmer.
        let low = ((25f32.to_radians() - elevation) / 15f32.to_radians()).clamp(0.0, 1.0);
        let sun = 2.3 * (1.0 - 0.88 * overcast);
        let sun_rgb = [sun, sun * (0.96 - 0.08 * low), sun * (0.9 - 0.22 * low)];
        let mix = |a: [f32; 3], b: [f32; 3], t: f32| std::array::from_fn(|i| a[i] + (b[i] - a[i]) * t);
        let ambient = mix([0.5, 0.56, 0.68], [1.05, 1.07, 1.1], overcast);
        let horizon = mix([0.75, 0.8, 0.88], [0.8, 0.82, 0.85], overcast);
        let zenith = mix([0.22, 0.38, 0.75], [0.62, 0.64, 0.68], overcast);
        let haze_tint = rng.random_range(0.85f32..1.05);
        let warm = rng.sample::<f32, _>(rand_distr::StandardNormal).clamp(-2.5, 2.5) * 0.05;
        let green = rng.sample::<f32, _>(rand_distr::StandardNormal).clamp(-2.5, 2.5) * 0.015;
        Lighting {
            sun_dir_velo: [
                elevation.cos() * azimuth.cos(),
                elevation.cos() * azimuth.sin(),
                elevation.sin(),
            ],
            sun_rgb,
            ambient_rgb: ambient,
            sky_horizon_rgb: horizon,
            sky_zenith_rgb: zenith,
            sun_glow: (1.0 - overcast) * rng.random_range(0.5f32..1.0),
            cloud_cover: (rng.random_range(0f32..0.6) + 0.5 * overcast).min(1.0),
            haze_rgb: horizon.map(|c| c * haze_tint),
            haze_per_m: rng.random_range(0.0005f32..0.006),
            cast_rgb: [1.0 + warm, 1.0 + green, 1.0 - warm],
            exposure: rng.random_range(0.75f32..1.3),
            specular: rng.random_range(0.6f32..1.0),
            noise_sigma_dn: rng.random_range(1f32..4.0),
            shot_noise_dn: rng.random_range(0.02f32..0.12),
            vignetting: rng.random_range(0.1f32..0.45),
            texture_strength: rng.random_range(0.7f32..1.0),
        }
    }
}

/// Shades `geometry` (rendered from `scene` into `camera`) under `lighting` into an 8-bit sRGB image.
/// `seed` drives the sensor noise only. A calibration whose projection is singular yields a black
/// image.
pub fn shade(
    geometry: &CameraGeometry,
    scene: &Scene,
    calib: &Calib,
    camera: Camera,
    lighting: &Lighting,
    seed: u64,
) -> RgbImage {
    let (width, height) = (geometry.width, geometry.height);
    let Some(rays) = PixelRays::new(calib, camera) else {
        return RgbImage::new(width, height);
    };
    let ctx = Shader::new(geometry, scene, calib, camera, lighting, rays, seed);
    let row_len = width as usize * 3;
    let mut buf = vec![0u8; row_len * height as usize];
    if row_len > 0 {
        buf.par_chunks_mut(row_len)
            .enumerate()
            .for_each(|(y, row)| ctx.shade_row(y as u32, row));
    }
    RgbImage::from_raw(width, height, buf).unwrap_or_else(|| RgbImage::new(width, height))
}

/// How far the contact shadow reaches beyond a vehicle's footprint, m.
const CONTACT_FADE_M: f32 = 0.5;

/// A rigid transform in `f32`, applied as `rotation · p + translation`.
#[derive(Clone, Copy, Debug)]
struct Affine {
    rotation: Matrix3<f32>,
    translation: Vector3<f32>,
}

impl Affine {
    fn from_isometry(iso: &Isometry3<f64>) -> Affine {
        Affine {
            rotation: iso.rotation.to_rotation_matrix().matrix().cast::<f32>(),
            translation: iso.translation.vector.cast::<f32>(),
        }
    }

    fn point(&self, p: &Point3<f32>) -> Point3<f32> {
        Point3::from(self.rotation * p.coords + self.translation)
    }

    fn vector(&self, v: &Vector3<f32>) -> Vector3<f32> {
        self.rotation * v
    }
}

/// A vehicle that darkens the ground: a contact shadow under its footprint and the sun's shadow.
struct Caster {
    model_from_velo: Affine,
    /// Footprint in the model frame: `[x0, x1, z0, z1]`.
    footprint: [f32; 4],
    /// The sun's shadows on the ground (model frame, `(x, z)`) of the boxes that approximate the
    /// vehicle: convex polygons, as outward unit edge normals `n` and offsets `c` (inside: `n·p < c`).
    shadows: Vec<Vec<([f32; 2], f32)>>,
    /// Ground region `[x0, x1, y0, y1]` (velo, m) that may be darkened.
    region_velo: [f32; 4],
    /// Image rows and columns `[v0, v1, u0, u1]` (inclusive) that may see that region.
    pixels: [i32; 4],
}

/// What the shader needs of one scene object.
struct ObjectLook {
    model_from_velo: Affine,
    colour: Rgb,
    surface: Surface,
    /// A number in [0, 1) drawn from the object's index (brick or plaster, …).
    variant: f32,
}

/// The tone curve (linear up to [`SHOULDER_START`], then a soft shoulder towards 1).
const SHOULDER_START: f32 = 0.8;

fn tone(x: f32) -> f32 {
    if x <= SHOULDER_START {
        x.max(0.0)
    } else {
        let room = 1.0 - SHOULDER_START;
        SHOULDER_START + room * (1.0 - (-(x - SHOULDER_START) / room).exp())
    }
}

fn srgb_encode(x: f32) -> f32 {
    if x <= 0.003_130_8 {
        12.92 * x
    } else {
        1.055 * x.powf(1.0 / 2.4) - 0.055
    }
}

/// The encoding table is indexed by the top bits of a linear value's `f32` representation:
/// `2^ENCODE_STEP_BITS` steps per octave (0.4 %, under 0.25 DN) from 2^ENCODE_MIN_EXP (0.05 DN) to
/// 2^ENCODE_MAX_EXP, where the tone curve has long saturated.
const ENCODE_STEP_BITS: u32 = 8;
const ENCODE_MIN_EXP: i32 = -16;
const ENCODE_MAX_EXP: i32 = 3;
const ENCODE_SIZE: usize = ((ENCODE_MAX_EXP - ENCODE_MIN_EXP) as usize) << ENCODE_STEP_BITS;
const ENCODE_BASE_BITS: u32 = ((127 + ENCODE_MIN_EXP) as u32) << 23;
const ENCODE_SHIFT: u32 = 23 - ENCODE_STEP_BITS;

/// Tone curve and sRGB encoding of linear values, in DN.
struct Encoder {
    dn: Vec<f32>,
    dn_u8: Vec<u8>,
}

impl Encoder {
    fn new() -> Encoder {
        let dn: Vec<f32> = (0..ENCODE_SIZE)
            .map(|i| {
                let mid = ENCODE_BASE_BITS + ((i as u32) << ENCODE_SHIFT) + (1 << (ENCODE_SHIFT - 1));
                255.0 * srgb_encode(tone(f32::from_bits(mid)))
            })
            .collect();
        let dn_u8 = dn.iter().map(|&d| (d + 0.5).min(255.0) as u8).collect();
        Encoder { dn, dn_u8 }
    }

    fn index(x: f32) -> usize {
        let bits = x.max(0.0).to_bits();
        ((bits.saturating_sub(ENCODE_BASE_BITS) >> ENCODE_SHIFT) as usize).min(ENCODE_SIZE - 1)
    }
}

/// Everything the pixels of one image share.
struct Shader<'a> {
    geometry: &'a CameraGeometry,
    scene: &'a Scene,
    rays: PixelRays,
    lighting: &'a Lighting,
    /// `splitmix64(seed)`: the root of the per-pixel noise hashes.
    noise_key: u64,
    sun: Rgb,
    sun_dir: Vector3<f32>,
    ambient: Rgb,
    haze: Rgb,
    /// How much the sky at the horizon is hazed over.
    sky_haze: f32,
    sky_horizon: Rgb,
    sky_zenith: Rgb,
    cloud_rgb: Rgb,
    gain: Rgb,
    /// Size of a pixel 1 m away, m (1 / focal length in px).
    footprint_per_m: f32,
    objects: Vec<ObjectLook>,
    casters: Vec<Caster>,
    encoder: Encoder,
    /// Sensor noise σ (read and shot noise) by signal level, DN.
    noise_sigma_lut: [f32; 256],
    /// What glossy surfaces reflect below the horizon: the ground's mean radiance.
    ground_glow: Rgb,
}

impl<'a> Shader<'a> {
    fn new(
        geometry: &'a CameraGeometry,
        scene: &'a Scene,
        calib: &Calib,
        camera: Camera,
        lighting: &'a Lighting,
        rays: PixelRays,
        seed: u64,
    ) -> Shader<'a> {
        let v = |a: [f32; 3]| Vector3::from(a);
        let sun_dir = v(lighting.sun_dir_velo)
            .try_normalize(1e-9)
            .unwrap_or_else(Vector3::z);
        let focal_px = calib.image_from_rect(camera)[(0, 0)].abs().max(1.0) as f32;
        let (sun, ambient) = (v(lighting.sun_rgb), v(lighting.ambient_rgb));
        let objects = scene
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| ObjectLook {
                model_from_velo: Affine::from_isometry(&o.velo_from_model.inverse()),
                colour: v(o.colour_rgb),
                surface: o.surface,
                variant: unit_hash(splitmix64(i as u64 ^ 0x0b1e_c700)),
            })
            .collect();
        let mut shader = Shader {
            geometry,
            scene,
            rays,
            lighting,
            noise_key: splitmix64(seed),
            sun,
            sun_dir,
            ambient,
            haze: v(lighting.haze_rgb),
            sky_haze: 1.0 - (-lighting.haze_per_m.max(0.0) * 800.0).exp(),
            sky_horizon: v(lighting.sky_horizon_rgb),
            sky_zenith: v(lighting.sky_zenith_rgb),
            cloud_rgb: sun * 0.12 + ambient * 0.75,
            gain: v(lighting.cast_rgb) * lighting.exposure,
            footprint_per_m: 1.0 / focal_px,
            objects,
            casters: Vec::new(),
            encoder: Encoder::new(),
            noise_sigma_lut: std::array::from_fn(|dn| {
                let read = lighting.noise_sigma_dn.max(0.0);
                (read * read + lighting.shot_noise_dn.max(0.0) * dn as f32).sqrt()
            }),
            ground_glow: (sun * sun_dir.z.max(0.0) + ambient) * 0.1,
        };
        shader.casters = scene
            .objects
            .iter()
            .filter(|o| o.class.is_vehicle())
            .filter_map(|o| shader.caster(o))
            .collect();
        shader
    }

    /// The shadow caster of a vehicle; `None` for an empty mesh.
    fn caster(&self, o: &SceneObject) -> Option<Caster> {
        let (lo, hi) = o.mesh.bounds()?;
        let h = hi.y - lo.y;
        let len = hi.z - lo.z;
        // Boxes approximating the body (above the wheels' ground clearance) and, for cars, the cabin.
        let blockers = if o.class == ObjectClass::Van {
            vec![(
                [lo.x * 0.98, lo.y + 0.18, lo.z * 0.98],
                [hi.x * 0.98, hi.y * 0.98, hi.z * 0.98],
            )]
        } else {
            vec![
                (
                    [lo.x * 0.97, lo.y + 0.18, lo.z * 0.98],
                    [hi.x * 0.97, lo.y + 0.55 * h, hi.z * 0.98],
                ),
                (
                    [lo.x * 0.8, lo.y + 0.55 * h, lo.z + 0.22 * len],
                    [hi.x * 0.8, hi.y * 0.98, lo.z + 0.78 * len],
                ),
            ]
        };
        let model_from_velo = Affine::from_isometry(&o.velo_from_model.inverse());
        let mut sun_model = model_from_velo.vector(&self.sun_dir);
        sun_model.y = sun_model.y.max(0.05);
        let shadows = blockers
            .iter()
            .map(|(lo, hi)| {
                let ground_points: Vec<[f32; 2]> = (0..8)
                    .map(|k| {
                        let c = Vector3::new(
                            if k & 1 == 0 { lo[0] } else { hi[0] },
                            if k & 2 == 0 { lo[1] } else { hi[1] },
                            if k & 4 == 0 { lo[2] } else { hi[2] },
                        );
                        let g = c - sun_model * (c.y / sun_model.y);
                        [g.x, g.z]
                    })
                    .collect();
                convex_polygon_edges(&ground_points)
            })
            .collect();
        // The ground that may darken: the footprint with the contact fade, and its shadow's reach.
        let reach = if self.sun_dir.z > 0.05 {
            -self.sun_dir.xy() / self.sun_dir.z * h
        } else {
            -self.sun_dir.xy().try_normalize(1e-9).unwrap_or_default() * 30.0
        };
        let m = f64::from(CONTACT_FADE_M);
        let mut region = [f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY];
        for (x, z) in [(lo.x, lo.z), (lo.x, hi.z), (hi.x, lo.z), (hi.x, hi.z)] {
            let foot = o.velo_from_model * Point3::new(f64::from(x), 0.0, f64::from(z));
            for shift in [
                Vector3::zeros(),
                Vector3::new(f64::from(reach.x), f64::from(reach.y), 0.0),
            ] {
                let p = foot + shift;
                region = [
                    region[0].min(p.x - m),
                    region[1].max(p.x + m),
                    region[2].min(p.y - m),
                    region[3].max(p.y + m),
                ];
            }
        }
        let (w, h_px) = (self.geometry.width as i32, self.geometry.height as i32);
        let mut pixels = [i32::MAX, i32::MIN, i32::MAX, i32::MIN];
        'corners: for x in [region[0], region[1]] {
            for y in [region[2], region[3]] {
                let corner = Point3::new(x, y, self.scene.ground.height_m(x, y));
                match self.rays.project_velo(&corner) {
                    Some([u, v]) => {
                        let (u, v) = (u.clamp(-1.0, f64::from(w)), v.clamp(-1.0, f64::from(h_px)));
                        pixels = [
                            pixels[0].min(v.floor() as i32),
                            pixels[1].max(v.ceil() as i32),
                            pixels[2].min(u.floor() as i32),
                            pixels[3].max(u.ceil() as i32),
                        ];
                    }
                    // A corner behind the camera: the region may show anywhere.
                    None => {
                        pixels = [0, h_px, 0, w];
                        break 'corners;
                    }
                }
            }
        }
        Some(Caster {
            model_from_velo,
            footprint: [lo.x, hi.x, lo.z, hi.z],
            shadows,
            region_velo: region.map(|r| r as f32),
            pixels,
        })
    }

    fn shade_row(&self, y: u32, row: &mut [u8]) {
        let g = self.geometry;
        let yi = y as i32;
        let casters: Vec<&Caster> = self
            .casters
            .iter()
            .filter(|c| c.pixels[0] <= yi && yi <= c.pixels[1])
            .collect();
        let (cx, cy) = (g.width as f32 / 2.0, g.height as f32 / 2.0);
        let vignette_per_r2 = self.lighting.vignetting / (cx * cx + cy * cy).max(1.0);
        let dy2 = (y as f32 + 0.5 - cy).powi(2);
        // Along the row the ray `d` and its rect-z rate are affine in x.
        let v = f64::from(y);
        let centre = self.rays.centre_velo();
        let d0 = self.rays.dir_velo(0.0, v);
        let du = self.rays.dir_velo(1.0, v) - d0;
        let z_centre = self.rays.rect_depth_m(0.0, v, 0.0);
        let dz0 = self.rays.rect_depth_m(0.0, v, 1.0) - z_centre;
        let dzu = self.rays.rect_depth_m(1.0, v, 1.0) - z_centre - dz0;
        for x in 0..g.width {
            let i = g.index(x, y);
            let xf = f64::from(x);
            let d = d0 + du * xf;
            let d_norm = d.norm();
            let dir = (d / d_norm).cast::<f32>();
            let object = g.object[i];
            let w = (f64::from(g.depth_m[i]) - z_centre) / (dz0 + dzu * xf);
            let mut radiance = if object == SKY || !(w > 0.0 && w.is_finite()) {
                self.sky(&dir, true)
            } else {
                let dist = (w * d_norm) as f32;
                let hit = Hit {
                    point: (centre + d * w).cast::<f32>(),
                    normal: Vector3::from(g.normal_velo[i]),
                    dir,
                    footprint_m: dist * self.footprint_per_m,
                };
                let lit = if object == GROUND {
                    self.ground(&hit, x as i32, &casters)
                } else {
                    self.object(object as usize, g.material[i], &hit)
                };
                if self.lighting.haze_per_m > 0.0 {
                    let keep = (-self.lighting.haze_per_m * dist).exp();
                    lit * keep + self.haze * (1.0 - keep)
                } else {
                    lit
                }
            };
            let dx = x as f32 + 0.5 - cx;
            let vignette = (1.0 - vignette_per_r2 * (dx * dx + dy2)).max(0.0);
            radiance = radiance.component_mul(&self.gain) * vignette;
            let out = &mut row[x as usize * 3..x as usize * 3 + 3];
            self.encode(&radiance, i, out);
        }
    }

    /// Tone, sRGB and sensor noise of one pixel into `out`.
    fn encode(&self, radiance: &Rgb, index: usize, out: &mut [u8]) {
        let l = self.lighting;
        let e = &self.encoder;
        let idx = [radiance.x, radiance.y, radiance.z].map(Encoder::index);
        if l.noise_sigma_dn <= 0.0 && l.shot_noise_dn <= 0.0 {
            for (o, k) in out.iter_mut().zip(idx) {
                *o = e.dn_u8[k];
            }
            return;
        }
        // Two hashes give 128 bits: four 10-bit uniforms per channel.
        let h1 = splitmix64(self.noise_key ^ index as u64);
        let h2 = splitmix64(h1);
        let words = [h1, (h1 >> 40) | (h2 << 24), h2 >> 16];
        for ((o, k), bits) in out.iter_mut().zip(idx).zip(words) {
            let dn = e.dn[k] + self.noise_sigma_lut[usize::from(e.dn_u8[k])] * gaussian(bits);
            *o = ((dn + 0.5) as i32).clamp(0, 255) as u8;
        }
    }

    /// Sky radiance along the unit direction `dir`; with clouds and the sun's glow if `detailed`
    /// (reflections need only the gradient).
    fn sky(&self, dir: &Vector3<f32>, detailed: bool) -> Rgb {
        let l = self.lighting;
        let t = (dir.z.max(0.0) / 0.6).min(1.0).sqrt();
        let mut c = self.sky_horizon.lerp(&self.sky_zenith, t);
        if !detailed {
            return c;
        }
        if l.cloud_cover > 0.0 && dir.z > 0.01 {
            // Clouds on a plane 1 km up.
            let s = 1000.0 / dir.z;
            let n = fbm2(dir.x * s, dir.y * s, 900.0, 2, 0.0);
            let threshold = 0.72 - 0.45 * l.cloud_cover;
            let cloud = smoothstep(threshold - 0.08, threshold + 0.12, n) * smoothstep(0.01, 0.12, dir.z);
            c = c.lerp(&self.cloud_rgb, cloud * 0.9);
        }
        if l.sun_glow > 0.0 {
            let a = dir.dot(&self.sun_dir).max(0.0);
            let a8 = a.powi(8);
            let a64 = a8.powi(8);
            let a2048 = a64.powi(32);
            c += self.sun * (l.sun_glow * (0.25 * a8 + 0.6 * a64 + 6.0 * a2048));
        }
        if self.sky_haze > 0.0 {
            c = c.lerp(&self.haze, self.sky_haze * (1.0 - t) * (1.0 - t));
        }
        c
    }

    /// Light arriving at a surface with unit normal `n` from the sun (scaled by `sun_visible`) and
    /// the sky (scaled by `sky_visible`), and the sun's cosine.
    fn irradiance(&self, n: &Vector3<f32>, sun_visible: f32, sky_visible: f32) -> (Rgb, f32) {
        let ndl = n.dot(&self.sun_dir).max(0.0);
        let sky = self.ambient * ((0.6 + 0.4 * n.z) * sky_visible);
        (self.sun * (ndl * sun_visible) + sky, ndl)
    }

    /// A Blinn highlight of the sun plus a Fresnel-weighted reflection of the sky (Schlick, normal
    /// reflectance `f0`), scaled by the lighting's specular strength.
    fn gloss(&self, hit: &Hit, f0: f32, shininess: u32, highlight: f32) -> Rgb {
        let strength = self.lighting.specular;
        if strength <= 0.0 {
            return Rgb::zeros();
        }
        let n = hit.normal;
        let view = -hit.dir;
        let cos_v = n.dot(&view).clamp(0.0, 1.0);
        let fresnel = f0 + (1.0 - f0) * (1.0 - cos_v).powi(5);
        let reflected = hit.dir - n * (2.0 * hit.dir.dot(&n));
        let env = self
            .ground_glow
            .lerp(&self.sky(&reflected, false), smoothstep(-0.05, 0.05, reflected.z));
        let half = (self.sun_dir + view).try_normalize(1e-9).unwrap_or(n);
        let spec = if n.dot(&self.sun_dir) > 0.0 {
            pow_u32(n.dot(&half).max(0.0), shininess) * highlight
        } else {
            0.0
        };
        (env * fresnel + self.sun * spec) * strength
    }

    fn ground(&self, hit: &Hit, x: i32, casters: &[&Caster]) -> Rgb {
        let p = hit.point;
        let s = self.lighting.texture_strength;
        // A grazing view stretches the pixel's footprint along the ray.
        let cos_v = hit.normal.dot(&-hit.dir).abs().max(0.02);
        let pixel_m = hit.footprint_m / cos_v.sqrt();
        let fp = texture_footprint(s, pixel_m);
        let albedo = match self.scene.road.ground_kind(f64::from(p.x), f64::from(p.y)) {
            GroundKind::Asphalt => {
                let grain = fbm2(p.x, p.y, 0.1, 2, fp);
                let patches = fbm2(p.x + 31.7, p.y - 7.3, 5.0, 2, fp);
                Rgb::new(0.1, 0.1, 0.105) * (1.0 + s * (0.5 * (grain - 0.5) + 0.6 * (patches - 0.5)))
            }
            GroundKind::Marking => {
                let wear = fbm2(p.x * 3.0, p.y, 0.5, 2, fp);
                Rgb::new(0.6, 0.6, 0.58) * (1.0 - s * 0.35 * smoothstep(0.45, 0.8, wear))
            }
            GroundKind::Sidewalk => {
                const TILE_M: f32 = 0.4;
                let (tx, ty) = (floor_i32(p.x / TILE_M), floor_i32(p.y / TILE_M));
                let (fx, fy) = (p.x / TILE_M - tx as f32, p.y / TILE_M - ty as f32);
                let on_joint = fx < 0.04 || fy < 0.04 || fx > 0.96 || fy > 0.96;
                let joint = if on_joint {
                    1.0 - smoothstep(0.01, 0.04, fp)
                } else {
                    0.0
                };
                let stone = lattice3(tx, ty, 17);
                let grain = fbm2(p.x, p.y, 0.2, 2, fp);
                Rgb::new(0.24, 0.23, 0.21)
                    * (1.0 + s * (0.25 * (stone - 0.5) + 0.3 * (grain - 0.5) - 0.4 * joint))
            }
            GroundKind::Verge => {
                let patches = fbm2(p.x, p.y, 1.5, 3, fp);
                let blades = fbm2(p.x, p.y, 0.08, 2, fp);
                let grass = Rgb::new(0.07, 0.1, 0.03);
                let soil = Rgb::new(0.11, 0.085, 0.05);
                grass.lerp(&soil, s * smoothstep(0.45, 0.75, patches)) * (1.0 + s * 0.6 * (blades - 0.5))
            }
        };
        let (sun_visible, sky_visible) = self.ground_shadow(&p, x, casters, 0.03 + 0.5 * pixel_m);
        albedo.component_mul(&self.irradiance(&hit.normal, sun_visible, sky_visible).0)
    }

    /// Sun and sky visibility of a ground point near vehicles; shadow edges are blurred over
    /// `penumbra_m` either side.
    fn ground_shadow(&self, p: &Point3<f32>, x: i32, casters: &[&Caster], penumbra_m: f32) -> (f32, f32) {
        let (mut sun, mut sky) = (1.0f32, 1.0f32);
        for c in casters {
            let r = c.region_velo;
            if x < c.pixels[2] || x > c.pixels[3] || p.x < r[0] || p.x > r[1] || p.y < r[2] || p.y > r[3] {
                continue;
            }
            let q = c.model_from_velo.point(p);
            let f = c.footprint;
            // Signed distance to the footprint rectangle (negative inside).
            let (ex, ez) = ((f[0] - q.x).max(q.x - f[1]), (f[2] - q.z).max(q.z - f[3]));
            let outside = (ex.max(0.0).powi(2) + ez.max(0.0).powi(2)).sqrt();
            let inside = ex.max(ez).min(0.0);
            // Under the car the sky is mostly hidden; the shadow fades out beyond the footprint.
            let under = 0.35 - 0.2 * smoothstep(0.0, 0.6, -inside);
            sky = sky.min(under + (1.0 - under) * smoothstep(0.0, CONTACT_FADE_M, outside));
            for edges in &c.shadows {
                let distance = edges
                    .iter()
                    .map(|(n, offset)| n[0] * q.x + n[1] * q.z - offset)
                    .fold(f32::NEG_INFINITY, f32::max);
                sun = sun.min(smoothstep(-penumbra_m, penumbra_m, distance));
            }
        }
        (sun, sky)
    }

    fn object(&self, index: usize, material: Material, hit: &Hit) -> Rgb {
        let Some(look) = self.objects.get(index) else {
            return self.ambient * 0.2;
        };
        let s = self.lighting.texture_strength;
        let fp = texture_footprint(s, hit.footprint_m);
        let q = look.model_from_velo.point(&hit.point);
        let n_model = look.model_from_velo.vector(&hit.normal);
        let (tu, tv) = box_uv(&q, &n_model);
        let n = &hit.normal;
        let matte = |albedo: Rgb| albedo.component_mul(&self.irradiance(n, 1.0, 1.0).0);
        match (look.surface, material) {
            (_, Material::Window) => matte(Rgb::new(0.025, 0.03, 0.035)) + self.gloss(hit, 0.08, 200, 3.0),
            (_, Material::Wheel) => {
                // The side of a wheel (the hub) is lighter than the tread.
                let albedo = if n_model.x.abs() > 0.7 { 0.07 } else { 0.025 };
                matte(Rgb::repeat(albedo)) + self.gloss(hit, 0.03, 10, 0.1)
            }
            (_, Material::Light) => {
                // +z is the front of the model: head lights white, tail lights red.
                let (albedo, glow) = if q.z > 0.0 {
                    (Rgb::new(0.75, 0.75, 0.72), Rgb::repeat(0.08))
                } else {
                    (Rgb::new(0.45, 0.02, 0.02), Rgb::new(0.08, 0.0, 0.0))
                };
                matte(albedo) + glow + self.gloss(hit, 0.05, 120, 2.0)
            }
            (Surface::CarPaint, Material::Body) => {
                let dirt = fbm2(tu, tv, 0.7, 1, fp);
                matte(look.colour * (1.0 + s * 0.1 * (dirt - 0.5))) + self.gloss(hit, 0.05, 80, 1.5)
            }
            (Surface::Facade, Material::Body) => matte(self.facade(look, &q, &n_model, fp)),
            (Surface::Concrete, _) => {
                let blotches = fbm2(tu, tv, 1.5, 2, fp);
                let grain = fbm2(tu, tv, 0.05, 2, fp);
                matte(look.colour * (1.0 + s * (0.35 * (blotches - 0.5) + 0.3 * (grain - 0.5))))
            }
            (Surface::Metal, _) => {
                let n = fbm2(tu, tv, 0.4, 2, fp);
                matte(look.colour * (1.0 + s * 0.15 * (n - 0.5))) + self.gloss(hit, 0.1, 30, 0.6)
            }
            (Surface::Foliage, _) => {
                let clusters = fbm2(tu, tv, 0.5, 3, fp);
                let leaves = fbm2(tu + 7.0, tv, 0.08, 2, fp);
                let yellow = Rgb::new(0.16, 0.17, 0.04);
                let textured = look.colour.lerp(&yellow, smoothstep(0.55, 0.85, clusters) * 0.6)
                    * (0.35 + 1.3 * clusters * (0.6 + 0.8 * leaves));
                // Leaves scatter light: less dependence on the sun's angle.
                let (light, ndl) = self.irradiance(n, 1.0, 1.0);
                let soft = light + self.sun * (0.25 * (1.0 - ndl));
                look.colour.lerp(&textured, s).component_mul(&soft)
            }
            (Surface::Bark, _) => {
                let streaks = fbm2(tu * 6.0, tv * 0.8, 0.4, 3, fp);
                matte(look.colour * (1.0 + s * 0.9 * (streaks - 0.5)))
            }
            (Surface::Cloth, _) => {
                let n = fbm2(tu, tv, 0.15, 2, fp);
                matte(look.colour * (1.0 + s * 0.25 * (n - 0.5)))
            }
        }
    }

    /// Brick or plaster (by the object's variant), laid out in the facade's model frame.
    fn facade(&self, look: &ObjectLook, q: &Point3<f32>, n_model: &Vector3<f32>, fp: f32) -> Rgb {
        let s = self.lighting.texture_strength;
        // Horizontal coordinate along the wall.
        let along = if n_model.z.abs() > n_model.x.abs() {
            q.x
        } else {
            q.z
        };
        if look.variant < 0.5 {
            const COURSE_M: f32 = 0.075;
            const BRICK_M: f32 = 0.225;
            let course = floor_i32(q.y / COURSE_M);
            let offset = if course % 2 == 0 { 0.0 } else { 0.5 * BRICK_M };
            let brick = floor_i32((along + offset) / BRICK_M);
            let fy = q.y / COURSE_M - course as f32;
            let fx = (along + offset) / BRICK_M - brick as f32;
            let mortar = if fy < 0.14 || fx < 0.045 {
                1.0 - smoothstep(0.012, 0.04, fp)
            } else {
                0.0
            };
            let tone = lattice3(brick, course, 5);
            let grime = fbm2(along, q.y, 2.0, 2, fp);
            let brick_rgb = look.colour * (1.0 + 0.25 * (tone - 0.5) + 0.3 * (grime - 0.5));
            let textured = brick_rgb.lerp(&Rgb::new(0.32, 0.3, 0.27), mortar * 0.8);
            look.colour.lerp(&textured, s)
        } else {
            let stains = fbm2(along, q.y * 0.5, 1.5, 3, fp);
            let grain = fbm2(along + 5.0, q.y, 0.06, 2, fp);
            look.colour * (1.0 + s * (0.3 * (stains - 0.5) + 0.15 * (grain - 0.5)))
        }
    }
}

/// A visible surface point.
struct Hit {
    /// Velo frame, m.
    point: Point3<f32>,
    /// Unit normal facing the camera, velo.
    normal: Vector3<f32>,
    /// Unit viewing ray, velo.
    dir: Vector3<f32>,
    /// Size of a pixel on a surface facing the camera there, m.
    footprint_m: f32,
}

/// Texture coordinates of a model-frame point: the point projected along the dominant axis of its
/// normal (box mapping), each projection offset so that the faces do not repeat one another.
fn box_uv(q: &Point3<f32>, n: &Vector3<f32>) -> (f32, f32) {
    let a = n.abs();
    if a.y >= a.x && a.y >= a.z {
        (q.x, q.z + 100.0)
    } else if a.x >= a.z {
        (q.z + 200.0, q.y)
    } else {
        (q.x + 300.0, q.y)
    }
}

/// The edges of the convex hull of `points` as outward unit normals and offsets (a point `p` is
/// inside where `n·p − offset < 0` for every edge); empty for fewer than three distinct points.
fn convex_polygon_edges(points: &[[f32; 2]]) -> Vec<([f32; 2], f32)> {
    let mut pts = points.to_vec();
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    pts.dedup();
    if pts.len() < 3 {
        return Vec::new();
    }
    let cross =
        |o: [f32; 2], a: [f32; 2], b: [f32; 2]| (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    // Andrew's monotone chain: counter-clockwise hull.
    let mut hull: Vec<[f32; 2]> = Vec::with_capacity(2 * pts.len());
    let reversed: Vec<[f32; 2]> = pts.iter().rev().copied().collect();
    for chain in [&pts, &reversed] {
        let start = hull.len();
        for &p in chain {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    (0..hull.len())
        .filter_map(|i| {
            let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
            let (ex, ez) = (b[0] - a[0], b[1] - a[1]);
            let len = (ex * ex + ez * ez).sqrt();
            // Counter-clockwise: the outward normal is the edge turned clockwise.
            (len > 1e-6).then(|| {
                let n = [ez / len, -ex / len];
                (n, n[0] * a[0] + n[1] * a[1])
            })
        })
        .collect()
}

/// `x^n` by repeated squaring (no libm call).
fn pow_u32(mut x: f32, mut n: u32) -> f32 {
    let mut r = 1.0;
    while n > 0 {
        if n & 1 == 1 {
            r *= x;
        }
        x *= x;
        n >>= 1;
    }
    r
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A uniform number in [0, 1) from a 64-bit hash.
fn unit_hash(h: u64) -> f32 {
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// An approximately standard normal number from the low 40 bits of a hash (the sum of four 10-bit
/// uniforms).
fn gaussian(bits: u64) -> f32 {
    let sum: u64 = (0..4).map(|k| (bits >> (10 * k)) & 0x3ff).sum();
    // Four uniforms on 0..=1023: mean 2046, variance 4 · (1024² − 1) / 12.
    (sum as f32 - 2046.0) * (1.0 / 591.2)
}

/// Multipliers that spread lattice coordinates before [`finalise`].
const HASH_X: u32 = 0x8da6_b343;
const HASH_Y: u32 = 0xd816_3841;
const HASH_Z: u32 = 0xcb1a_b31f;

/// A value in [0, 1) from a 32-bit key (an integer avalanche mix).
fn finalise(mut h: u32) -> f32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^= h >> 16;
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A lattice value in [0, 1) for integer coordinates.
fn lattice3(i: i32, j: i32, k: i32) -> f32 {
    finalise(
        (i as u32).wrapping_mul(HASH_X) ^ (j as u32).wrapping_mul(HASH_Y) ^ (k as u32).wrapping_mul(HASH_Z),
    )
}

/// `x.floor()` as an integer, without a libm call (inputs are far inside the `i32` range).
fn floor_i32(x: f32) -> i32 {
    let i = x as i32;
    if (i as f32) > x { i - 1 } else { i }
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// Value noise in [0, 1) at `(x, y)`, lattice spacing 1, smoothstep-interpolated.
fn value_noise2(x: f32, y: f32) -> f32 {
    let (i, j) = (floor_i32(x), floor_i32(y));
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    let (tx, ty) = (smooth(x - i as f32), smooth(y - j as f32));
    let a0 = (i as u32).wrapping_mul(HASH_X);
    let a1 = a0.wrapping_add(HASH_X);
    let b0 = (j as u32).wrapping_mul(HASH_Y);
    let b1 = b0.wrapping_add(HASH_Y);
    let a = lerp(finalise(a0 ^ b0), finalise(a1 ^ b0), tx);
    let b = lerp(finalise(a0 ^ b1), finalise(a1 ^ b1), tx);
    lerp(a, b, ty)
}

/// The footprint textures are evaluated with: infinite (every octave faded out, nothing computed)
/// when textures are off.
fn texture_footprint(strength: f32, footprint_m: f32) -> f32 {
    if strength > 0.0 {
        footprint_m
    } else {
        f32::INFINITY
    }
}

/// Fractal value noise with mean 0.5: `octaves` octaves from `wavelength_m` down, each half as long
/// and half as strong. Octaves finer than about two pixels (`footprint_m`) fade to their mean
/// instead of aliasing.
fn fbm2(x: f32, y: f32, wavelength_m: f32, octaves: u32, footprint_m: f32) -> f32 {
    if footprint_m == f32::INFINITY {
        return 0.5;
    }
    // Octave k has wavelength λ/2^k: its lattice coordinates are (x, y)·2^k/λ, its size in pixels
    // (λ/2^k)/footprint.
    let mut freq = 1.0 / wavelength_m;
    let mut pixels = wavelength_m / footprint_m.max(1e-6);
    let (mut sum, mut total, mut amp) = (0.0, 0.0, 1.0);
    for o in 0..octaves {
        let weight = smoothstep(1.5, 4.0, pixels);
        if weight > 0.0 {
            let off = o as f32 * 17.31;
            sum += amp * weight * (value_noise2(x * freq + off, y * freq - off) - 0.5);
        }
        total += amp;
        amp *= 0.5;
        freq *= 2.0;
        pixels *= 0.5;
    }
    0.5 + sum / total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{PixelRays, render_geometry};
    use crate::mesh::TriMesh;
    use crate::world::{Ground, LIDAR_MOUNT_HEIGHT_M};
    use image::Rgb as Px;
    use rand::SeedableRng;

    const W: u32 = 1242;
    const H: u32 = 375;

    use crate::scene::testing::{cuboid, scene};

    fn object(
        class: ObjectClass,
        mesh: TriMesh,
        at: (f64, f64, f64),
        colour_rgb: [f32; 3],
        surface: Surface,
    ) -> SceneObject {
        let pose = Ground::level(LIDAR_MOUNT_HEIGHT_M).velo_from_model(at.0, at.1, at.2);
        crate::scene::testing::object(class, mesh, pose, colour_rgb, surface)
    }

    fn car_scene() -> Scene {
        let car = crate::ShapeLibrary::procedural(5, 1).shape(0).unwrap();
        scene(vec![object(
            ObjectClass::Car,
            car,
            (9.0, 0.0, 0.5),
            [0.6, 0.6, 0.6],
            Surface::CarPaint,
        )])
    }

    fn render(s: &Scene, lighting: &Lighting, seed: u64) -> (CameraGeometry, RgbImage) {
        let calib = Calib::kitti_reference();
        let (geometry, _) = render_geometry(s, &s.world_mesh(), &calib, Camera::Cam2, W, H);
        let image = shade(&geometry, s, &calib, Camera::Cam2, lighting, seed);
        (geometry, image)
    }

    fn target(seed: u64) -> Lighting {
        Lighting::sample(Domain::Target, &mut StdRng::seed_from_u64(seed))
    }

    fn luminance(p: &Px<u8>) -> f64 {
        0.2126 * f64::from(p[0]) + 0.7152 * f64::from(p[1]) + 0.0722 * f64::from(p[2])
    }

    /// Mean luminance of the pixels where `keep(index)` holds; `None` if there are none.
    fn mean_where(image: &RgbImage, keep: impl Fn(usize) -> bool) -> Option<f64> {
        let (mut sum, mut n) = (0.0, 0usize);
        for (i, p) in image.pixels().enumerate() {
            if keep(i) {
                sum += luminance(p);
                n += 1;
            }
        }
        (n > 0).then(|| sum / n as f64)
    }

    #[test]
    fn clean_lighting_is_fixed_and_leaves_the_rng_alone() {
        let mut a = StdRng::seed_from_u64(1);
        let mut b = StdRng::seed_from_u64(2);
        assert_eq!(
            Lighting::sample(Domain::Clean, &mut a),
            Lighting::sample(Domain::Clean, &mut b)
        );
        assert_eq!(Lighting::sample(Domain::Clean, &mut a), Lighting::clean());
        assert_eq!(a.random::<u64>(), StdRng::seed_from_u64(1).random::<u64>());
        let l = Lighting::clean();
        assert_eq!((l.noise_sigma_dn, l.shot_noise_dn, l.vignetting), (0.0, 0.0, 0.0));
        assert_eq!((l.texture_strength, l.haze_per_m, l.specular), (0.0, 0.0, 0.0));
        // Target lightings vary within their documented ranges.
        let (t1, t2) = (target(1), target(2));
        assert_ne!(t1, t2);
        for t in [&t1, &t2] {
            let elevation = f64::from(t.sun_dir_velo[2]).asin().to_degrees();
            assert!((10.0..70.0).contains(&elevation), "{elevation}");
            assert!((1.0..4.0).contains(&t.noise_sigma_dn) && t.texture_strength > 0.0);
        }
        let json = serde_json::to_string(&t1).unwrap();
        assert_eq!(serde_json::from_str::<Lighting>(&json).unwrap(), t1);
    }

    #[test]
    fn flat_wall_is_flat_in_the_clean_domain_and_noisy_in_the_target() {
        // A grey concrete wall across the road 12 m ahead, facing the camera.
        let wall = object(
            ObjectClass::Wall,
            cuboid(8.0, 0.3, 4.0),
            (12.0, 0.0, std::f64::consts::FRAC_PI_2),
            [0.4; 3],
            Surface::Concrete,
        );
        let s = scene(vec![wall]);
        let patch = |geometry: &CameraGeometry, image: &RgbImage| {
            let mut values = Vec::new();
            for y in 140..160 {
                for x in 590..630 {
                    assert_eq!(geometry.object[geometry.index(x, y)], 0);
                    values.push(luminance(image.get_pixel(x, y)));
                }
            }
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
            let spread = values.iter().fold(0.0f64, |m, v| m.max((v - mean).abs()));
            (mean, var.sqrt(), spread)
        };
        let (geometry, clean) = render(&s, &Lighting::clean(), 3);
        let (mean, std, spread) = patch(&geometry, &clean);
        assert!(mean > 40.0 && mean < 220.0, "{mean}");
        assert!(std < 0.3 && spread <= 1.0, "clean: std {std}, spread {spread}");
        let noisy = shade(
            &geometry,
            &s,
            &Calib::kitti_reference(),
            Camera::Cam2,
            &target(4),
            3,
        );
        let (_, std, _) = patch(&geometry, &noisy);
        assert!(std > 0.8, "target: std {std}");
    }

    #[test]
    fn shading_is_deterministic_and_thread_independent() {
        let s = car_scene();
        let lighting = target(7);
        let (geometry, a) = render(&s, &lighting, 11);
        let calib = Calib::kitti_reference();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let b = one.install(|| shade(&geometry, &s, &calib, Camera::Cam2, &lighting, 11));
        assert!(a == b);
        let other_seed = shade(&geometry, &s, &calib, Camera::Cam2, &lighting, 12);
        assert!(a != other_seed, "the seed drives the sensor noise");
    }

    #[test]
    fn car_windows_are_darker_than_its_body_and_tail_lights_red() {
        let s = car_scene();
        for lighting in [Lighting::clean(), target(1), target(2), target(3)] {
            let (g, image) = render(&s, &lighting, 1);
            let on_car = |i: usize, m: Material| g.object[i] == 0 && g.material[i] == m;
            let window = mean_where(&image, |i| on_car(i, Material::Window)).unwrap();
            let body = mean_where(&image, |i| on_car(i, Material::Body)).unwrap();
            assert!(
                window + 20.0 < body,
                "window {window}, body {body} under {lighting:?}"
            );
        }
        // The car drives away from the camera: its visible lights are the rear ones.
        let (g, image) = render(&s, &Lighting::clean(), 1);
        let lights: Vec<&Px<u8>> = image
            .pixels()
            .enumerate()
            .filter(|&(i, _)| g.object[i] == 0 && g.material[i] == Material::Light)
            .map(|(_, p)| p)
            .collect();
        assert!(!lights.is_empty());
        let red = lights
            .iter()
            .filter(|p| u16::from(p[0]) > 2 * u16::from(p[1]))
            .count();
        assert!(red * 10 > lights.len() * 9, "{red} of {}", lights.len());
    }

    #[test]
    fn clean_sky_is_brighter_than_the_road_and_vehicles_shade_the_ground() {
        let s = car_scene();
        let (g, image) = render(&s, &Lighting::clean(), 1);
        let sky = mean_where(&image, |i| g.object[i] == SKY).unwrap();
        let road = mean_where(&image, |i| g.object[i] == GROUND).unwrap();
        assert!(sky > road + 30.0, "sky {sky}, road {road}");
        // Asphalt under the car (between the wheels) is darker than asphalt in the open.
        let rays = PixelRays::new(&Calib::kitti_reference(), Camera::Cam2).unwrap();
        let model_from_velo = s.objects[0].velo_from_model.inverse();
        let (lo, hi) = s.objects[0].mesh.bounds().unwrap();
        let (mut under, mut open) = (Vec::new(), Vec::new());
        for y in 0..H {
            for x in 0..W {
                let i = g.index(x, y);
                if g.object[i] != GROUND {
                    continue;
                }
                let p = g.point_velo(&rays, x, y).unwrap();
                if s.road.ground_kind(p.x, p.y) != GroundKind::Asphalt {
                    continue;
                }
                let q = model_from_velo * p;
                let inside = q.x > f64::from(lo.x)
                    && q.x < f64::from(hi.x)
                    && q.z > f64::from(lo.z)
                    && q.z < f64::from(hi.z);
                let far = q.coords.xz().norm() > 8.0;
                if inside {
                    under.push(luminance(image.get_pixel(x, y)));
                } else if far {
                    open.push(luminance(image.get_pixel(x, y)));
                }
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(!under.is_empty() && !open.is_empty());
        assert!(
            mean(&under) < 0.7 * mean(&open),
            "under {} open {}",
            mean(&under),
            mean(&open)
        );
    }

    #[test]
    fn image_round_trips_through_png() {
        let s = car_scene();
        let (_, image) = render(&s, &target(9), 5);
        assert_eq!(image.dimensions(), (W, H));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000000.png");
        image.save(&path).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert!(back == image);
    }
}
