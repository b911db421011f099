//! The math of one disc: placing it in the camera frame, its screen window, and its hit by one pixel
//! ray with the forward blend and the backward pass. The CPU path uses these functions; the CUDA
//! kernels (`kernels/render.cu`) transcribe them line by line.
//!
//! For pixel ray d = ((u − cx)/fx, (v − cy)/fy, 1) and a disc with centre c, normal n and radius r
//! in the camera frame:
//! - plane hit t = (n·c)/(n·d) (the depth, as d_z = 1), hit point h = t·d, offset e = h − c, ρ = |e|;
//! - coverage logit x = κ(1 − ρ/r) and coverage α = (σ(x) − σ(x_c))/(1 − σ(x_c)), a sigmoid shifted
//!   to reach 0 exactly at the cut x_c = [`X_CUT`], so that coverage is continuous where a disc ends
//!   (finite differences and optimisers never see a jump); the disc is ignored where x < x_c, where t is
//!   below [`NEAR_M`], and where it faces away (n·c ≥ 0: then no ray hits its front);
//! - blend weight w = cov·exp(−β(z − z_ref)), with z the depth of the disc's *centre* (not of the hit:
//!   a disc seen obliquely reaches nearer than its centre, and a faint rim weighted by its hit depth
//!   would outweigh the surface behind it by orders of magnitude) and z_ref the nearest such depth at
//!   the pixel, a common factor; colour C = Σwc/Σw, normal N = Σwn/Σw, depth D = Σwt/Σw,
//!   each output composited over a zero background: M·C, M·N, M·D (continuous where coverage ends);
//! - discs seen at a grazing angle fade out: cov = α·φ(cos), see [`GRAZING_COS`];
//! - mask M = 1 − Π(1 − cov), where log(1 − α) = softplus(x_c) − softplus(x) is exact and stable.

#![allow(
    clippy::needless_range_loop,
    reason = "index loops, like the CUDA kernels they mirror"
)]

/// Discs are cut where their coverage logit x = κ(1 − ρ/r) is below this (σ(x) < 2.5·10⁻³): with
/// κ = 6 the cut lies at twice the radius.
pub const X_CUT: f32 = -6.0;
/// Hits nearer than this depth are ignored, m.
pub const NEAR_M: f32 = 0.01;

/// A disc placed in the camera frame, with its inclusive pixel window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Disc {
    /// Centre, camera frame, m.
    pub c: [f32; 3],
    /// Unit normal, camera frame.
    pub n: [f32; 3],
    /// Colour.
    pub col: [f32; 3],
    /// Radius, m.
    pub r: f32,
    /// n·c (negative: the disc faces the camera).
    pub nc: f32,
    /// First and last pixel column and row the disc may cover (inclusive; u0 > u1 when none).
    pub window: [i32; 4],
}

/// Pixel ray, unit depth.
#[inline]
pub fn ray(cam: &crate::CropCamera, u: i32, v: i32) -> [f32; 3] {
    [(u as f32 - cam.cx) / cam.fx, (v as f32 - cam.cy) / cam.fy, 1.0]
}

/// The rays of every pixel of a crop, with their inverse lengths.
#[derive(Clone, Debug)]
pub struct Rays {
    width: usize,
    rays: Vec<[f32; 3]>,
    inv_len: Vec<f32>,
}

impl Rays {
    /// The rays of `cam`'s pixels.
    pub fn new(cam: &crate::CropCamera) -> Self {
        let mut rays = Vec::with_capacity(cam.pixels());
        for v in 0..cam.height {
            for u in 0..cam.width {
                rays.push(ray(cam, u as i32, v as i32));
            }
        }
        let inv_len = rays.iter().map(|d| 1.0 / dot(d, d).sqrt()).collect();
        Rays {
            width: cam.width,
            rays,
            inv_len,
        }
    }

    /// Pixel `(u, v)`'s index, ray and inverse ray length.
    #[inline]
    pub fn at(&self, u: i32, v: i32) -> (usize, &[f32; 3], f32) {
        let i = v as usize * self.width + u as usize;
        (i, &self.rays[i], self.inv_len[i])
    }
}

#[inline]
fn dot(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The cut radius ρ at which x = X_CUT.
#[inline]
pub fn cut_radius(r: f32, sharpness: f32) -> f32 {
    r * (1.0 - X_CUT / sharpness)
}

/// Places a disc (camera-frame centre, normal, colour) and bounds its window: the projection of the
/// cube of half-size ρ_cut around the centre, which contains every hit within the cut radius.
/// `None` when the disc faces away, comes within ρ_cut of the near plane, or lies outside the crop.
pub fn place(
    cam: &crate::CropCamera,
    c: [f32; 3],
    n: [f32; 3],
    col: [f32; 3],
    r: f32,
    sharpness: f32,
) -> Option<Disc> {
    let nc = dot(&n, &c);
    if nc >= 0.0 || !nc.is_finite() {
        return None;
    }
    let cut = cut_radius(r, sharpness);
    if c[2] - cut <= NEAR_M {
        return None;
    }
    let (mut umin, mut umax, mut vmin, mut vmax) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for k in 0..8 {
        let sx = if k & 1 == 0 { -cut } else { cut };
        let sy = if k & 2 == 0 { -cut } else { cut };
        let sz = if k & 4 == 0 { -cut } else { cut };
        let z = c[2] + sz;
        let u = cam.fx * (c[0] + sx) / z + cam.cx;
        let v = cam.fy * (c[1] + sy) / z + cam.cy;
        umin = umin.min(u);
        umax = umax.max(u);
        vmin = vmin.min(v);
        vmax = vmax.max(v);
    }
    let u0 = umin.ceil().max(0.0);
    let u1 = umax.floor().min(cam.width as f32 - 1.0);
    let v0 = vmin.ceil().max(0.0);
    let v1 = vmax.floor().min(cam.height as f32 - 1.0);
    if !(u0 <= u1 && v0 <= v1) {
        return None;
    }
    Some(Disc {
        c,
        n,
        col,
        r,
        nc,
        window: [u0 as i32, u1 as i32, v0 as i32, v1 as i32],
    })
}

/// A disc's hit by one pixel ray.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    /// Depth, m.
    pub t: f32,
    /// n·d.
    pub nd: f32,
    /// Offset of the hit from the centre, m.
    pub e: [f32; 3],
    /// |e|.
    pub rho: f32,
    /// Coverage logit.
    pub x: f32,
    /// exp(−|x|).
    pub q: f32,
    /// σ(x).
    pub sigma: f32,
    /// cos of the incidence, −n·d/|d|.
    pub cos: f32,
    /// The grazing fade φ(cos).
    pub fade: f32,
    /// Coverage used in the blend and the mask: α(x)·φ(cos).
    pub cov: f32,
    /// ∂cov/∂x.
    pub dcov_dx: f32,
    /// ∂cov/∂cos.
    pub dcov_dcos: f32,
}

/// σ(X_CUT).
const SIGMA_CUT: f32 = 2.472_623_2e-3;
/// softplus(X_CUT) = −log(1 − σ(X_CUT)).
const SOFTPLUS_CUT: f32 = 2.475_685_1e-3;

/// Discs seen at a grazing angle fade out: coverage is multiplied by φ = smoothstep(cos / GRAZING_COS),
/// cos = −n·d/|d| the cosine of the incidence. An edge-on disc covers a sliver whose coverage
/// changes abruptly with the pose; the fade makes it vanish smoothly instead (and keeps the
/// coverage continuous where a disc turns away). A sphere's outline moves inwards by under 0.5 %.
pub const GRAZING_COS: f32 = 0.15;

/// The hit of ray `d` (inverse length `inv_len`) on `disc`, or `None` where the disc does not count
/// for this pixel.
#[inline]
pub fn hit(disc: &Disc, d: &[f32; 3], inv_len: f32, sharpness: f32) -> Option<Hit> {
    let nd = dot(&disc.n, d);
    if nd >= 0.0 {
        return None;
    }
    let t = disc.nc / nd;
    if t < NEAR_M {
        return None;
    }
    let e = [t * d[0] - disc.c[0], t * d[1] - disc.c[1], t * d[2] - disc.c[2]];
    let rho = dot(&e, &e).sqrt();
    let x = sharpness * (1.0 - rho / disc.r);
    if x < X_CUT {
        return None;
    }
    let q = (-x.abs()).exp();
    let sigma = if x >= 0.0 { 1.0 / (1.0 + q) } else { q / (1.0 + q) };
    let inv = 1.0 / (1.0 - SIGMA_CUT);
    let alpha = ((sigma - SIGMA_CUT) * inv).max(0.0);
    let dalpha_dx = sigma * (1.0 - sigma) * inv;
    let cos = -nd * inv_len;
    let (cov, dcov_dx, dcov_dcos, fade) = if cos >= GRAZING_COS {
        (alpha, dalpha_dx, 0.0, 1.0)
    } else {
        let s = cos / GRAZING_COS;
        let fade = s * s * (3.0 - 2.0 * s);
        let dfade = 6.0 * s * (1.0 - s) / GRAZING_COS;
        (alpha * fade, dalpha_dx * fade, alpha * dfade, fade)
    };
    Some(Hit {
        t,
        nd,
        e,
        rho,
        x,
        q,
        sigma,
        cos,
        fade,
        cov,
        dcov_dx,
        dcov_dcos,
    })
}

impl Hit {
    /// log(1 − cov): exact where the coverage is near 1 (log(1 − α) = softplus(x_c) − softplus(x)
    /// for unfaded discs).
    #[inline]
    pub fn log1m_cov(&self) -> f32 {
        if self.fade == 1.0 {
            let softplus = self.x.max(0.0) + self.q.ln_1p();
            (SOFTPLUS_CUT - softplus).min(0.0)
        } else {
            (-self.cov).ln_1p()
        }
    }

    /// −∂log(1 − cov)/∂x and −∂log(1 − cov)/∂cos.
    #[inline]
    pub fn log1m_cov_grads(&self) -> (f32, f32) {
        if self.fade == 1.0 {
            (self.sigma, 0.0)
        } else {
            let inv1m = 1.0 / (1.0 - self.cov);
            (self.dcov_dx * inv1m, self.dcov_dcos * inv1m)
        }
    }
}

/// Running blend of one pixel: an online softmax over depth (z_ref follows the nearest hit so far,
/// rescaling the sums).
#[derive(Clone, Copy, Debug, Default)]
pub struct Blend {
    /// Nearest disc-centre depth so far (z_ref), m; meaningless while `s` is 0.
    pub m: f32,
    /// Σ w.
    pub s: f32,
    /// Σ w·colour.
    pub sc: [f32; 3],
    /// Σ w·normal.
    pub sn: [f32; 3],
    /// Σ w·t.
    pub sd: f32,
    /// Σ log(1 − α) = log Π(1 − α).
    pub log_t: f32,
}

impl Blend {
    /// Adds a disc's hit.
    #[inline]
    pub fn add(&mut self, disc: &Disc, h: &Hit, beta: f32) {
        let z = disc.c[2];
        let w = if self.s == 0.0 {
            self.m = z;
            h.cov
        } else if z < self.m {
            let f = (-beta * (self.m - z)).exp();
            self.s *= f;
            self.sd *= f;
            for k in 0..3 {
                self.sc[k] *= f;
                self.sn[k] *= f;
            }
            self.m = z;
            h.cov
        } else {
            h.cov * (-beta * (z - self.m)).exp()
        };
        self.s += w;
        self.sd += w * h.t;
        for k in 0..3 {
            self.sc[k] += w * disc.col[k];
            self.sn[k] += w * disc.n[k];
        }
        self.log_t += h.log1m_cov();
    }
}

/// Writes a finished blend into pixel `i` of `image`: colour, normal and depth composited over a zero
/// background (premultiplied by the mask), so that every output fades continuously to 0 where the
/// coverage does.
#[inline]
pub fn finish(b: &Blend, image: &mut crate::Image, i: usize) {
    if b.s > 0.0 {
        let mask = -b.log_t.exp_m1();
        let k = mask / b.s;
        image.colour[i] = b.sc.map(|v| v * k);
        image.normal[i] = b.sn.map(|v| v * k);
        image.depth_m[i] = b.sd * k;
        image.mask[i] = mask;
        image.weight_sum[i] = b.s;
        image.z_ref_m[i] = b.m;
        image.log_transmittance[i] = b.log_t;
    }
}

/// Gradient of one disc, camera frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscGrad {
    /// ∂L/∂c.
    pub c: [f32; 3],
    /// ∂L/∂n.
    pub n: [f32; 3],
    /// ∂L/∂colour.
    pub col: [f32; 3],
    /// ∂L/∂r.
    pub r: f32,
}

/// Adds the gradient that pixel `i` (ray `d`, hit `h`) sends to `disc`.
#[inline]
#[allow(clippy::too_many_arguments, reason = "mirrors the kernel's argument list")]
pub fn backward_pixel(
    disc: &Disc,
    d: &[f32; 3],
    inv_len: f32,
    h: &Hit,
    image: &crate::Image,
    grad: &crate::ImageGrad,
    i: usize,
    sharpness: f32,
    beta: f32,
    out: &mut DiscGrad,
) {
    let s = image.weight_sum[i];
    if s <= 0.0 {
        return;
    }
    let inv_s = 1.0 / s;
    let big_e = (-beta * (disc.c[2] - image.z_ref_m[i])).exp();
    let w = h.cov * big_e;
    let mask = image.mask[i];
    // The outputs are M·C, M·N, M·D with C, N, D the normalised blends: recover those, and split the
    // upstream gradient into ∂L/∂C = M·g, ∂L/∂N, ∂L/∂D and ∂L/∂M (+= g·C and so on).
    let inv_m = if mask > 0.0 { 1.0 / mask } else { 0.0 };
    let big_c = image.colour[i].map(|v| v * inv_m);
    let big_n = image.normal[i].map(|v| v * inv_m);
    let big_d = image.depth_m[i] * inv_m;
    let (g_c0, g_n0, g_d0) = (&grad.colour[i], &grad.normal[i], grad.depth_m[i]);
    let mut g_m = grad.mask[i] + g_d0 * big_d;
    for k in 0..3 {
        g_m += g_c0[k] * big_c[k] + g_n0[k] * big_n[k];
    }
    let g_c = g_c0.map(|v| v * mask);
    let g_n = g_n0.map(|v| v * mask);
    let g_d = g_d0 * mask;
    // ∂L/∂w through the three normalised blends.
    let mut g_w = g_d * (h.t - big_d);
    for k in 0..3 {
        g_w += g_c[k] * (disc.col[k] - big_c[k]) + g_n[k] * (disc.n[k] - big_n[k]);
    }
    g_w *= inv_s;
    let wn = w * inv_s;
    for k in 0..3 {
        out.col[k] += g_c[k] * wn;
        out.n[k] += g_n[k] * wn;
    }
    // w = cov·E: ∂w/∂x = E·∂cov/∂x, ∂w/∂c_z = −βw; the mask: ∂M/∂x = −(1 − M)·∂log(1 − cov)/∂x.
    let transmittance = 1.0 - mask;
    let (glog_x, glog_cos) = h.log1m_cov_grads();
    let g_x = g_w * big_e * h.dcov_dx + g_m * transmittance * glog_x;
    let g_cos = g_w * big_e * h.dcov_dcos + g_m * transmittance * glog_cos;
    if g_cos != 0.0 {
        // cos = −n·d/|d|.
        let k = g_cos * inv_len;
        for a in 0..3 {
            out.n[a] -= k * d[a];
        }
    }
    out.c[2] -= beta * w * g_w;
    let mut g_t = g_d * wn;
    // x = κ(1 − ρ/r).
    let g_rho = -g_x * sharpness / disc.r;
    out.r += g_x * sharpness * h.rho / (disc.r * disc.r);
    if h.rho > 1e-12 {
        // e = t·d − c.
        let k = g_rho / h.rho;
        let g_e = h.e.map(|v| v * k);
        g_t += dot(&g_e, d);
        for a in 0..3 {
            out.c[a] -= g_e[a];
        }
    }
    // t = (n·c)/(n·d): ∂t/∂c = n/(n·d), ∂t/∂n = (c − t·d)/(n·d) = −e/(n·d).
    let k = g_t / h.nd;
    for a in 0..3 {
        out.c[a] += k * disc.n[a];
        out.n[a] -= k * h.e[a];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_constants_match_x_cut() {
        let x = f64::from(X_CUT);
        let sigma = 1.0 / (1.0 + (-x).exp());
        let softplus = x.exp().ln_1p();
        assert!((f64::from(SIGMA_CUT) - sigma).abs() < 1e-10);
        assert!((f64::from(SOFTPLUS_CUT) - softplus).abs() < 1e-10);
    }

    #[test]
    fn coverage_is_continuous_at_the_cut_and_one_half_on_the_rim() {
        let cam = crate::CropCamera {
            fx: 100.0,
            fy: 100.0,
            cx: 0.0,
            cy: 0.0,
            width: 1,
            height: 1,
        };
        let kappa = 6.0;
        let place_at = |x_off: f32| {
            place(&cam, [x_off, 0.0, 5.0], [0.0, 0.0, -1.0], [0.0; 3], 0.1, kappa).unwrap_or_default()
        };
        let ray = [0.0, 0.0, 1.0];
        // On the rim.
        let h = hit(&place_at(0.1), &ray, 1.0, kappa).map(|h| h.cov);
        assert!(h.is_some_and(|s| (s - 0.5).abs() < 2e-3), "{h:?}");
        // Just inside the cut: α tiny; just outside: no hit.
        let cut = cut_radius(0.1, kappa);
        let inside = hit(&place_at(cut * 0.9999), &ray, 1.0, kappa).map(|h| h.cov);
        assert!(inside.is_some_and(|a| (0.0..1e-5).contains(&a)), "{inside:?}");
        assert!(hit(&place_at(cut * 1.0001), &ray, 1.0, kappa).is_none());
    }
}
