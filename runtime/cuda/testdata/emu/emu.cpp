// emu.cpp: runs the kernels of ../../kernels.cu on the host, one OS thread
// per CUDA thread, so that their bit manipulation (and the tiled transpose's
// index arithmetic and synchronisation) can be checked against the CPU
// reference without a GPU. Built and driven by TestKernelsHostEmulation.
//
// Protocol (stdin, one directive per line, then the launch):
//   kernel NAME
//   grid GX GY GZ
//   block BX BY BZ
//   alloc SIZE PATH  declares device allocation number i (in order), loaded
//                    from PATH (SIZE bytes), written to PATH+".out" afterwards
//   ptr I OFFSET     a pointer argument: allocation I plus OFFSET bytes
//   int VALUE        a long long argument
// Block-wide __syncthreads uses a barrier per block; warp intrinsics use a
// barrier per warp, so a warp that leaves a loop early must do so as a whole
// (as the CUDA code guarantees).
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x, y, z;
};
struct uint2 {
    unsigned x, y;
};
struct uint4 {
    unsigned x, y, z, w;
};
static inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }

thread_local dim3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

struct WarpShared {
    std::unique_ptr<std::barrier<>> bar;
    unsigned long long slot[32];
};
static std::barrier<>* g_block_barrier;
static std::vector<WarpShared>* g_warps;
static std::mutex g_atomic_mu;

static inline unsigned linear_tid() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }

static inline void __syncthreads() { g_block_barrier->arrive_and_wait(); }

template <typename T>
static inline T warp_exchange(T v, unsigned src_lane) {
    unsigned t = linear_tid();
    WarpShared& w = (*g_warps)[t / 32];
    unsigned long long u = 0;
    std::memcpy(&u, &v, sizeof(T));
    w.slot[t % 32] = u;
    w.bar->arrive_and_wait();
    unsigned long long r = w.slot[src_lane];
    w.bar->arrive_and_wait();
    T out;
    std::memcpy(&out, &r, sizeof(T));
    return out;
}
static inline unsigned __ballot_sync(unsigned, int pred) {
    unsigned t = linear_tid();
    WarpShared& w = (*g_warps)[t / 32];
    w.slot[t % 32] = pred ? 1 : 0;
    w.bar->arrive_and_wait();
    unsigned r = 0;
    for (int i = 0; i < 32; i++)
        if (w.slot[i]) r |= 1u << i;
    w.bar->arrive_and_wait();
    return r;
}
template <typename T>
static inline T __shfl_xor_sync(unsigned, T v, int off) {
    return warp_exchange(v, (linear_tid() % 32) ^ (unsigned)off);
}
template <typename T>
static inline T __shfl_down_sync(unsigned, T v, int off) {
    unsigned l = linear_tid() % 32 + (unsigned)off;
    if (l > 31) l = linear_tid() % 32;
    return warp_exchange(v, l);
}
static inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) {
    std::lock_guard<std::mutex> g(g_atomic_mu);
    unsigned long long old = *p;
    if (v < old) *p = v;
    return old;
}
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline float __uint_as_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
static inline unsigned __float_as_uint(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}
// x86-64 SSE arithmetic is IEEE binary32 with round to nearest even and no
// flush to zero, which is what the CUDA _rn intrinsics compute.
static inline float __fdiv_rn(float a, float b) {
    volatile float r = a / b;
    return r;
}
static inline float __fmul_rn(float a, float b) {
    volatile float r = a * b;
    return r;
}

#define __global__
#define __device__
#define __forceinline__ inline
#define __constant__
#define __shared__ static thread_local_shared

// __shared__ arrays must be shared by the threads of a block; blocks run one
// after another, so a plain static is right.
#define thread_local_shared

#include "../../kernels.cu"

#undef __shared__

typedef void (*kfn)(uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t,
                    uintptr_t, uintptr_t, uintptr_t, uintptr_t);

#define K(name) {#name, (kfn)(void*)&name}
static std::map<std::string, kfn> kernels = {
    K(cast_bf16_f32), K(cast_f16_f32), K(cast_f32_bf16), K(cast_f32_f16), K(cast_bf16_f16), K(cast_f16_bf16),
    K(cast_e4m3_f32), K(cast_e4m3_bf16), K(cast_e4m3_f16), K(cast_e5m2_f32), K(cast_e5m2_bf16), K(cast_e5m2_f16),
    K(mxfp4_decode_f32), K(mxfp4_decode_bf16), K(mxfp4_encode_f32), K(mxfp4_encode_bf16), K(mxfp4_encode_f16),
    K(transpose_box_1), K(transpose_box_2), K(transpose_box_4), K(transpose_box_8), K(transpose_box_16),
};

int main() {
    std::string name;
    dim3 grid{1, 1, 1}, block{1, 1, 1};
    std::vector<uintptr_t> args;
    std::vector<std::pair<std::vector<unsigned char>*, std::string>> bufs;
    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream in(line);
        std::string d;
        in >> d;
        if (d == "kernel") {
            in >> name;
        } else if (d == "grid") {
            in >> grid.x >> grid.y >> grid.z;
        } else if (d == "block") {
            in >> block.x >> block.y >> block.z;
        } else if (d == "alloc") {
            size_t size;
            std::string path;
            in >> size >> path;
            // 16 bytes of slack so that vector types stay in bounds of malloc.
            auto* b = new std::vector<unsigned char>(size + 16);
            std::ifstream f(path, std::ios::binary);
            f.read((char*)b->data(), (std::streamsize)size);
            if (!f) {
                std::fprintf(stderr, "short read %s\n", path.c_str());
                return 1;
            }
            bufs.push_back({b, path});
        } else if (d == "ptr") {
            size_t i, off;
            in >> i >> off;
            if (i >= bufs.size() || off > bufs[i].first->size() - 16) {
                std::fprintf(stderr, "bad ptr %zu %zu\n", i, off);
                return 1;
            }
            args.push_back((uintptr_t)(bufs[i].first->data() + off));
        } else if (d == "int") {
            long long v;
            in >> v;
            args.push_back((uintptr_t)v);
        } else if (!d.empty()) {
            std::fprintf(stderr, "bad directive %s\n", d.c_str());
            return 1;
        }
    }
    auto it = kernels.find(name);
    if (it == kernels.end()) {
        std::fprintf(stderr, "unknown kernel %s\n", name.c_str());
        return 1;
    }
    args.resize(12, 0);
    blockDim = block;
    gridDim = grid;
    unsigned nthreads = block.x * block.y * block.z;
    if (nthreads % 32 != 0 && nthreads > 32) {
        std::fprintf(stderr, "block size must be a multiple of 32\n");
        return 1;
    }
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                std::barrier<> bar((std::ptrdiff_t)nthreads);
                std::vector<WarpShared> warps((nthreads + 31) / 32);
                for (unsigned w = 0; w < warps.size(); w++) {
                    unsigned n = std::min(32u, nthreads - 32 * w);
                    warps[w].bar = std::make_unique<std::barrier<>>((std::ptrdiff_t)n);
                }
                g_block_barrier = &bar;
                g_warps = &warps;
                std::vector<std::thread> ts;
                for (unsigned t = 0; t < nthreads; t++) {
                    ts.emplace_back([&, t, bx, by, bz] {
                        threadIdx = dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        blockIdx = dim3{bx, by, bz};
                        it->second(args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8],
                                   args[9], args[10], args[11]);
                    });
                }
                for (auto& th : ts) th.join();
            }
    for (auto& b : bufs) {
        std::ofstream f(b.second + ".out", std::ios::binary);
        f.write((const char*)b.first->data(), (std::streamsize)(b.first->size() - 16));
    }
    return 0;
}
