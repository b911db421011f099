// Surfel renderer kernels: a line-by-line transcription of src/disc.rs (placement, hit, blend,
// backward) batched over many objects. Compiled at run time by NVRTC (src/cuda.rs).
//
// Layout (all arrays flat, f32 unless noted):
//   per object o: cam[o*4 + 0..4] = fx fy cx cy; pose[o*14 + 0..14] = R (row-major 9), t (3), scale,
//     radius_m; dims[o*4 + 0..4] (int) = width height pixel_offset disc_offset
//   per surfel i: pos/nrm/col[i*3 + k] model frame; obj[i] (int)
//   per placed disc i: disc[i*DISC + ...] (see the D_* offsets), win[i*4 + 0..4] (int, u0 u1 v0 v1)
//   per tile b: tile_obj[b], tile_xy[b*2 + 0..2] (int, first pixel of the tile)
//   per pixel p (global): out[p*8 + 0..8] = colour normal depth mask (premultiplied),
//     state[p*3 + 0..3] = weight_sum z_ref log_transmittance; grad[p*8 + 0..8] likewise ordered.

#define TILE 16
#define THREADS (TILE * TILE)
#define X_CUT (-6.0f)
#define NEAR_M 0.01f
#define GRAZING_COS 0.15f
#define SIGMA_CUT 2.4726232e-3f
#define SOFTPLUS_CUT 2.4756851e-3f

#define D_C 0
#define D_N 3
#define D_COL 6
#define D_R 9
#define D_NC 10
#define DISC 11

struct Hit {
    float t, nd, e0, e1, e2, rho, x, q, sigma, cos_, fade, cov, dcov_dx, dcov_dcos;
};

__device__ __forceinline__ float dot3(const float* a, const float* b) {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

// disc::hit. Returns false where the disc does not count for this pixel.
__device__ __forceinline__ bool hit_disc(const float* dsc, const float* d, float inv_len, float kappa, Hit& h) {
    const float* c = dsc + D_C;
    const float* n = dsc + D_N;
    h.nd = dot3(n, d);
    if (h.nd >= 0.0f) return false;
    h.t = dsc[D_NC] / h.nd;
    if (h.t < NEAR_M) return false;
    h.e0 = h.t * d[0] - c[0];
    h.e1 = h.t * d[1] - c[1];
    h.e2 = h.t * d[2] - c[2];
    h.rho = sqrtf(h.e0 * h.e0 + h.e1 * h.e1 + h.e2 * h.e2);
    h.x = kappa * (1.0f - h.rho / dsc[D_R]);
    if (h.x < X_CUT) return false;
    h.q = expf(-fabsf(h.x));
    h.sigma = h.x >= 0.0f ? 1.0f / (1.0f + h.q) : h.q / (1.0f + h.q);
    const float inv = 1.0f / (1.0f - SIGMA_CUT);
    const float alpha = fmaxf((h.sigma - SIGMA_CUT) * inv, 0.0f);
    const float dalpha_dx = h.sigma * (1.0f - h.sigma) * inv;
    h.cos_ = -h.nd * inv_len;
    if (h.cos_ >= GRAZING_COS) {
        h.fade = 1.0f;
        h.cov = alpha;
        h.dcov_dx = dalpha_dx;
        h.dcov_dcos = 0.0f;
    } else {
        const float s = h.cos_ / GRAZING_COS;
        h.fade = s * s * (3.0f - 2.0f * s);
        const float dfade = 6.0f * s * (1.0f - s) / GRAZING_COS;
        h.cov = alpha * h.fade;
        h.dcov_dx = dalpha_dx * h.fade;
        h.dcov_dcos = alpha * dfade;
    }
    return true;
}

__device__ __forceinline__ float log1m_cov(const Hit& h) {
    if (h.fade == 1.0f) {
        const float softplus = fmaxf(h.x, 0.0f) + log1pf(h.q);
        return fminf(SOFTPLUS_CUT - softplus, 0.0f);
    }
    return log1pf(-h.cov);
}

// disc::place for every surfel of the batch.
extern "C" __global__ void place_discs(
    const float* __restrict__ pos, const float* __restrict__ nrm, const float* __restrict__ col,
    const int* __restrict__ obj, const float* __restrict__ cam, const float* __restrict__ pose,
    const int* __restrict__ dims, float kappa, int n_surfels,
    float* __restrict__ disc, int* __restrict__ win)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_surfels) return;
    const int o = obj[i];
    const float* R = pose + o * 14;
    const float* tr = R + 9;
    const float s = R[12];
    const float r = R[13];
    const float* p = pos + i * 3;
    const float* nm = nrm + i * 3;
    float c[3], n[3];
    for (int a = 0; a < 3; ++a) {
        c[a] = s * (R[a * 3] * p[0] + R[a * 3 + 1] * p[1] + R[a * 3 + 2] * p[2]) + tr[a];
        n[a] = R[a * 3] * nm[0] + R[a * 3 + 1] * nm[1] + R[a * 3 + 2] * nm[2];
    }
    float* dsc = disc + (size_t)i * DISC;
    for (int a = 0; a < 3; ++a) {
        dsc[D_C + a] = c[a];
        dsc[D_N + a] = n[a];
        dsc[D_COL + a] = col[i * 3 + a];
    }
    dsc[D_R] = r;
    const float nc = dot3(n, c);
    dsc[D_NC] = nc;
    int* w = win + i * 4;
    w[0] = 1; w[1] = 0; w[2] = 1; w[3] = 0;  // empty
    if (!(nc < 0.0f)) return;
    const float cut = r * (1.0f - X_CUT / kappa);
    if (c[2] - cut <= NEAR_M) return;
    const float fx = cam[o * 4], fy = cam[o * 4 + 1], cx = cam[o * 4 + 2], cy = cam[o * 4 + 3];
    const int width = dims[o * 4], height = dims[o * 4 + 1];
    float umin = 3.4e38f, umax = -3.4e38f, vmin = 3.4e38f, vmax = -3.4e38f;
    for (int k = 0; k < 8; ++k) {
        const float sx = (k & 1) == 0 ? -cut : cut;
        const float sy = (k & 2) == 0 ? -cut : cut;
        const float sz = (k & 4) == 0 ? -cut : cut;
        const float z = c[2] + sz;
        const float u = fx * (c[0] + sx) / z + cx;
        const float v = fy * (c[1] + sy) / z + cy;
        umin = fminf(umin, u); umax = fmaxf(umax, u);
        vmin = fminf(vmin, v); vmax = fmaxf(vmax, v);
    }
    const float u0 = fmaxf(ceilf(umin), 0.0f);
    const float u1 = fminf(floorf(umax), (float)width - 1.0f);
    const float v0 = fmaxf(ceilf(vmin), 0.0f);
    const float v1 = fminf(floorf(vmax), (float)height - 1.0f);
    if (!(u0 <= u1 && v0 <= v1)) return;
    w[0] = (int)u0; w[1] = (int)u1; w[2] = (int)v0; w[3] = (int)v1;
}

// One block per 16 x 16 tile of one object. The object's discs stream through shared memory in
// chunks of 256; those whose window meets the tile are compacted in index order (ballot + prefix
// over warps), so every pixel blends its discs in the order of the CPU path.
extern "C" __global__ void blend_tiles(
    const float* __restrict__ disc, const int* __restrict__ win,
    const float* __restrict__ cam, const int* __restrict__ dims, const int* __restrict__ n_discs,
    const int* __restrict__ tile_obj, const int* __restrict__ tile_xy,
    float kappa, float beta,
    float* __restrict__ out, float* __restrict__ state)
{
    __shared__ float s_disc[THREADS * DISC];
    __shared__ int s_win[THREADS * 4];
    __shared__ int s_count[THREADS / 32];
    const int b = blockIdx.x;
    const int o = tile_obj[b];
    const int x0 = tile_xy[b * 2], y0 = tile_xy[b * 2 + 1];
    const int tid = threadIdx.x;
    const int lane = tid & 31, warp = tid >> 5;
    const int u = x0 + (tid % TILE), v = y0 + (tid / TILE);
    const int width = dims[o * 4], height = dims[o * 4 + 1];
    const int pix0 = dims[o * 4 + 2], disc0 = dims[o * 4 + 3];
    const int count = n_discs[o];
    const bool inside = u < width && v < height;
    const float fx = cam[o * 4], fy = cam[o * 4 + 1], cx = cam[o * 4 + 2], cy = cam[o * 4 + 3];
    float d[3] = {((float)u - cx) / fx, ((float)v - cy) / fy, 1.0f};
    const float inv_len = 1.0f / sqrtf(dot3(d, d));
    float m = 0.0f, S = 0.0f, sd = 0.0f, log_t = 0.0f;
    float sc[3] = {0.0f, 0.0f, 0.0f}, sn[3] = {0.0f, 0.0f, 0.0f};
    for (int base = 0; base < count; base += THREADS) {
        const int i = base + tid;
        bool keep = false;
        if (i < count) {
            const int* w = win + (size_t)(disc0 + i) * 4;
            keep = w[0] <= w[1] && w[0] <= x0 + TILE - 1 && w[1] >= x0 && w[2] <= y0 + TILE - 1 && w[3] >= y0;
        }
        const unsigned ballot = __ballot_sync(0xffffffffu, keep);
        if (lane == 0) s_count[warp] = __popc(ballot);
        __syncthreads();
        int offset = 0, total = 0;
        for (int k = 0; k < THREADS / 32; ++k) {
            if (k < warp) offset += s_count[k];
            total += s_count[k];
        }
        if (keep) {
            const int slot = offset + __popc(ballot & ((1u << lane) - 1u));
            const float* src = disc + (size_t)(disc0 + i) * DISC;
            for (int a = 0; a < DISC; ++a) s_disc[slot * DISC + a] = src[a];
            for (int a = 0; a < 4; ++a) s_win[slot * 4 + a] = win[(size_t)(disc0 + i) * 4 + a];
        }
        __syncthreads();
        if (inside) {
            for (int j = 0; j < total; ++j) {
                const float* dsc = s_disc + j * DISC;
                const int* sw = s_win + j * 4;
                // Only pixels inside the disc's window, as on the CPU (the window is conservative,
                // so this changes nothing but rounding-level edge cases).
                if (u < sw[0] || u > sw[1] || v < sw[2] || v > sw[3]) continue;
                Hit h;
                if (!hit_disc(dsc, d, inv_len, kappa, h)) continue;
                const float z = dsc[D_C + 2];
                float w;
                if (S == 0.0f) {
                    m = z;
                    w = h.cov;
                } else if (z < m) {
                    const float f = expf(-beta * (m - z));
                    S *= f; sd *= f;
                    for (int k = 0; k < 3; ++k) { sc[k] *= f; sn[k] *= f; }
                    m = z;
                    w = h.cov;
                } else {
                    w = h.cov * expf(-beta * (z - m));
                }
                S += w;
                sd += w * h.t;
                for (int k = 0; k < 3; ++k) {
                    sc[k] += w * dsc[D_COL + k];
                    sn[k] += w * dsc[D_N + k];
                }
                log_t += log1m_cov(h);
            }
        }
        __syncthreads();
    }
    if (!inside) return;
    const size_t p = (size_t)pix0 + (size_t)v * width + u;
    float* o8 = out + p * 8;
    float* st = state + p * 3;
    if (S > 0.0f) {
        const float mask = -expm1f(log_t);
        const float k = mask / S;
        for (int a = 0; a < 3; ++a) {
            o8[a] = sc[a] * k;
            o8[3 + a] = sn[a] * k;
        }
        o8[6] = sd * k;
        o8[7] = mask;
        st[0] = S; st[1] = m; st[2] = log_t;
    } else {
        for (int a = 0; a < 8; ++a) o8[a] = 0.0f;
        st[0] = 0.0f; st[1] = 0.0f; st[2] = 0.0f;
    }
}

// disc::backward_pixel over each disc's window, one thread per surfel, then the chain to the model
// frame: g_out[i*9 + 0..9] = dL/d(position, normal, colour) model frame; g_pose[i*13 + 0..13] =
// this surfel's share of dL/dR (9, row-major), dL/dt (3), dL/ds (1), summed per object afterwards.
extern "C" __global__ void backward_discs(
    const float* __restrict__ disc, const int* __restrict__ win, const int* __restrict__ obj,
    const float* __restrict__ pos, const float* __restrict__ nrm,
    const float* __restrict__ cam, const float* __restrict__ pose, const int* __restrict__ dims,
    const float* __restrict__ out, const float* __restrict__ state, const float* __restrict__ grad,
    float kappa, float beta, float radius_units, int n_surfels,
    float* __restrict__ g_out, float* __restrict__ g_pose)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_surfels) return;
    const int o = obj[i];
    const float* dsc = disc + (size_t)i * DISC;
    const int* w = win + (size_t)i * 4;
    float gc[3] = {0.0f, 0.0f, 0.0f}, gn[3] = {0.0f, 0.0f, 0.0f}, gcol[3] = {0.0f, 0.0f, 0.0f};
    float gr = 0.0f;
    const float fx = cam[o * 4], fy = cam[o * 4 + 1], cx = cam[o * 4 + 2], cy = cam[o * 4 + 3];
    const int width = dims[o * 4];
    const int pix0 = dims[o * 4 + 2];
    const float* col = dsc + D_COL;
    const float* n = dsc + D_N;
    const float r = dsc[D_R];
    for (int v = w[2]; v <= w[3]; ++v) {
        for (int u = w[0]; u <= w[1]; ++u) {
            float d[3] = {((float)u - cx) / fx, ((float)v - cy) / fy, 1.0f};
            const float inv_len = 1.0f / sqrtf(dot3(d, d));
            Hit h;
            if (!hit_disc(dsc, d, inv_len, kappa, h)) continue;
            const size_t p = (size_t)pix0 + (size_t)v * width + u;
            const float* st = state + p * 3;
            const float S = st[0];
            if (S <= 0.0f) continue;
            const float inv_s = 1.0f / S;
            const float big_e = expf(-beta * (dsc[D_C + 2] - st[1]));
            const float wgt = h.cov * big_e;
            const float* o8 = out + p * 8;
            const float* g8 = grad + p * 8;
            const float mask = o8[7];
            const float inv_m = mask > 0.0f ? 1.0f / mask : 0.0f;
            float big_c[3], big_n[3];
            for (int a = 0; a < 3; ++a) { big_c[a] = o8[a] * inv_m; big_n[a] = o8[3 + a] * inv_m; }
            const float big_d = o8[6] * inv_m;
            float g_m = g8[7] + g8[6] * big_d;
            for (int a = 0; a < 3; ++a) g_m += g8[a] * big_c[a] + g8[3 + a] * big_n[a];
            float g_c[3], g_n[3];
            for (int a = 0; a < 3; ++a) { g_c[a] = g8[a] * mask; g_n[a] = g8[3 + a] * mask; }
            const float g_d = g8[6] * mask;
            float g_w = g_d * (h.t - big_d);
            for (int a = 0; a < 3; ++a) g_w += g_c[a] * (col[a] - big_c[a]) + g_n[a] * (n[a] - big_n[a]);
            g_w *= inv_s;
            const float wn = wgt * inv_s;
            for (int a = 0; a < 3; ++a) { gcol[a] += g_c[a] * wn; gn[a] += g_n[a] * wn; }
            const float transmittance = 1.0f - mask;
            float glog_x, glog_cos;
            if (h.fade == 1.0f) {
                glog_x = h.sigma; glog_cos = 0.0f;
            } else {
                const float inv1m = 1.0f / (1.0f - h.cov);
                glog_x = h.dcov_dx * inv1m; glog_cos = h.dcov_dcos * inv1m;
            }
            const float g_x = g_w * big_e * h.dcov_dx + g_m * transmittance * glog_x;
            const float g_cos = g_w * big_e * h.dcov_dcos + g_m * transmittance * glog_cos;
            if (g_cos != 0.0f) {
                const float k = g_cos * inv_len;
                for (int a = 0; a < 3; ++a) gn[a] -= k * d[a];
            }
            gc[2] -= beta * wgt * g_w;
            float g_t = g_d * wn;
            const float g_rho = -g_x * kappa / r;
            gr += g_x * kappa * h.rho / (r * r);
            if (h.rho > 1e-12f) {
                const float k = g_rho / h.rho;
                const float ge[3] = {h.e0 * k, h.e1 * k, h.e2 * k};
                g_t += dot3(ge, d);
                for (int a = 0; a < 3; ++a) gc[a] -= ge[a];
            }
            const float k = g_t / h.nd;
            const float e[3] = {h.e0, h.e1, h.e2};
            for (int a = 0; a < 3; ++a) { gc[a] += k * n[a]; gn[a] -= k * e[a]; }
        }
    }
    // Chain to the model frame (cpu::chain_to_model).
    const float* R = pose + o * 14;
    const float s = R[12];
    const float* p = pos + i * 3;
    const float* nm = nrm + i * 3;
    float* go = g_out + (size_t)i * 9;
    for (int a = 0; a < 3; ++a) {
        go[a] = s * (R[a] * gc[0] + R[3 + a] * gc[1] + R[6 + a] * gc[2]);
        go[3 + a] = R[a] * gn[0] + R[3 + a] * gn[1] + R[6 + a] * gn[2];
        go[6 + a] = gcol[a];
    }
    float* gp = g_pose + (size_t)i * 13;
    float rp[3];
    for (int a = 0; a < 3; ++a) {
        rp[a] = R[a * 3] * p[0] + R[a * 3 + 1] * p[1] + R[a * 3 + 2] * p[2];
        for (int b2 = 0; b2 < 3; ++b2) gp[a * 3 + b2] = gc[a] * p[b2] * s + gn[a] * nm[b2];
        gp[9 + a] = gc[a];
    }
    gp[12] = dot3(gc, rp) + gr * radius_units;
}

// Sums every object's per-surfel pose shares in surfel order (one thread per object and component:
// deterministic, in double).
extern "C" __global__ void reduce_pose(
    const float* __restrict__ g_pose, const int* __restrict__ dims, const int* __restrict__ n_discs,
    int n_objects, double* __restrict__ pose_out)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n_objects * 13) return;
    const int o = k / 13, c = k % 13;
    const int disc0 = dims[o * 4 + 3];
    double acc = 0.0;
    for (int i = 0; i < n_discs[o]; ++i) acc += (double)g_pose[(size_t)(disc0 + i) * 13 + c];
    pose_out[k] = acc;
}
