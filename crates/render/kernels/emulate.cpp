// Test support: runs the kernels of render.cu on the CPU, so that their logic is checked against the
// Rust renderer on machines without a GPU (src/emulate.rs builds this with g++ and drives it).
// Each block of the tile kernel runs as 256 OS threads; __syncthreads is a std::barrier and
// __ballot_sync a barrier-separated OR. Usage: emulate DIR (reads and writes raw arrays in DIR).
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
struct Dim3 { unsigned x = 0, y = 0, z = 0; };
thread_local Dim3 threadIdx, blockIdx;
Dim3 blockDim;
static std::barrier<>* g_bar = nullptr;
static std::atomic<unsigned> g_ballot[8];
inline void __syncthreads() { g_bar->arrive_and_wait(); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline unsigned __ballot_sync(unsigned, bool p) {
    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    g_bar->arrive_and_wait();
    if (threadIdx.x == 0) for (auto& b : g_ballot) b.store(0);
    g_bar->arrive_and_wait();
    if (p) g_ballot[warp].fetch_or(1u << lane);
    g_bar->arrive_and_wait();
    const unsigned r = g_ballot[warp].load();
    g_bar->arrive_and_wait();
    return r;
}

#include "render.cu"

template <class T> std::vector<T> load(const std::string& dir, const char* name) {
    std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) { std::fprintf(stderr, "cannot open %s\n", path.c_str()); std::exit(2); }
    std::fseek(f, 0, SEEK_END);
    const long bytes = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    std::vector<T> v(bytes / sizeof(T) + 1);
    if (std::fread(v.data(), 1, bytes, f) != (size_t)bytes) std::exit(3);
    std::fclose(f);
    return v;
}

template <class T> void save(const std::string& dir, const char* name, const std::vector<T>& v, size_t n) {
    std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(v.data(), sizeof(T), n, f) != n) std::exit(4);
    std::fclose(f);
}

// Runs `f` for every thread of every block, one block at a time: sequentially (no barriers) or
// as real threads (for kernels that synchronise).
template <class F> void launch(unsigned grid, unsigned block, bool threaded, F f) {
    blockDim.x = block;
    for (unsigned b = 0; b < grid; ++b) {
        if (!threaded) {
            for (unsigned t = 0; t < block; ++t) { blockIdx.x = b; threadIdx.x = t; f(); }
            continue;
        }
        std::barrier<> bar(block);
        g_bar = &bar;
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < block; ++t)
            ts.emplace_back([&, b, t] { blockIdx.x = b; threadIdx.x = t; f(); });
        for (auto& th : ts) th.join();
    }
}

int main(int argc, char** argv) {
    if (argc != 2) return 1;
    const std::string dir = argv[1];
    auto meta = load<float>(dir, "meta.bin");  // surfels objects pixels tiles kappa beta radius_units
    const int surfels = (int)meta[0], objects = (int)meta[1], pixels = (int)meta[2], tiles = (int)meta[3];
    const float kappa = meta[4], beta = meta[5], radius_units = meta[6];
    auto pos = load<float>(dir, "pos.bin"), nrm = load<float>(dir, "nrm.bin"), col = load<float>(dir, "col.bin");
    auto cam = load<float>(dir, "cam.bin"), pose = load<float>(dir, "pose.bin");
    auto obj = load<int>(dir, "obj.bin"), dims = load<int>(dir, "dims.bin"), n_discs = load<int>(dir, "n_discs.bin");
    auto tile_obj = load<int>(dir, "tile_obj.bin"), tile_xy = load<int>(dir, "tile_xy.bin");
    std::vector<float> disc(surfels * DISC + 1);
    std::vector<int> win(surfels * 4 + 1);
    const unsigned pb = (surfels + 255) / 256;
    launch(pb, 256, false, [&] {
        place_discs(pos.data(), nrm.data(), col.data(), obj.data(), cam.data(), pose.data(), dims.data(),
                    kappa, surfels, disc.data(), win.data());
    });
    std::vector<float> out(pixels * 8 + 1), state(pixels * 3 + 1);
    launch(tiles, THREADS, true, [&] {
        blend_tiles(disc.data(), win.data(), cam.data(), dims.data(), n_discs.data(), tile_obj.data(),
                    tile_xy.data(), kappa, beta, out.data(), state.data());
    });
    save(dir, "out.bin", out, pixels * 8);
    save(dir, "state.bin", state, pixels * 3);
    // The backward pass reads the caller's images and gradients, as CudaRenderer::backward_batch does.
    auto out_in = load<float>(dir, "out_in.bin"), state_in = load<float>(dir, "state_in.bin");
    auto grad = load<float>(dir, "grad.bin");
    std::vector<float> g_out(surfels * 9 + 1), g_pose(surfels * 13 + 1);
    launch((surfels + 127) / 128, 128, false, [&] {
        backward_discs(disc.data(), win.data(), obj.data(), pos.data(), nrm.data(), cam.data(), pose.data(),
                       dims.data(), out_in.data(), state_in.data(), grad.data(), kappa, beta, radius_units,
                       surfels, g_out.data(), g_pose.data());
    });
    std::vector<double> pose_out(objects * 13 + 1);
    launch((objects * 13 + 63) / 64, 64, false, [&] {
        reduce_pose(g_pose.data(), dims.data(), n_discs.data(), objects, pose_out.data());
    });
    save(dir, "g_out.bin", g_out, surfels * 9);
    save(dir, "pose_out.bin", pose_out, objects * 13);
    return 0;
}
