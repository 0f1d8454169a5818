// kernels.cu: the CUDA kernels of mapper's cuda backend, compiled at run time
// with NVRTC (no #include: NVRTC provides the intrinsics used here).
//
// Every kernel must produce exactly the bytes of the CPU reference in
// runtime/kernels. All float formats are handled on their integer bits, the
// way runtime/kernels does it; the only float arithmetic (MXFP4 decode's
// product, the encoder's amax/6, 1/ds and x*(1/ds)) uses the explicitly
// IEEE round-to-nearest intrinsics, and the program is compiled with
// --fmad=false --ftz=false --prec-div=true.
//
// Conventions: every argument is 8 bytes (a device pointer or a long long)
// so the host side can pass them uniformly. Element counts are long long and
// every kernel uses a grid-stride loop, so any grid size is correct.

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

// ---------------------------------------------------------------------------
// Scalar conversions (mirror runtime/kernels/cast.go).

// bf16 -> f32 bits; a NaN is quieted.
__device__ __forceinline__ u32 bf16_to_f32(u16 h) {
    u32 b = (u32)h << 16;
    if ((b & 0x7fffffffu) > 0x7f800000u) b |= 0x00400000u;
    return b;
}

// f32 bits -> bf16, round to nearest even; NaN -> quiet NaN with its sign.
__device__ __forceinline__ u16 f32_to_bf16(u32 b) {
    if ((b & 0x7fffffffu) > 0x7f800000u) return (u16)((b >> 16) | 0x0040u);
    return (u16)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

// f16 -> f32 bits, exact (subnormals normalised); a NaN is quieted.
__device__ __forceinline__ u32 f16_to_f32(u16 h) {
    u32 sign = (u32)(h & 0x8000u) << 16;
    u32 exp = ((u32)h >> 10) & 0x1fu;
    u32 mant = (u32)h & 0x3ffu;
    if (exp == 0) {
        if (mant == 0) return sign;
        // mant * 2^-24: normalise so that bit 10 is set.
        u32 e = 113; // biased exponent of 2^-14
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            e--;
        }
        return sign | (e << 23) | ((mant & 0x3ffu) << 13);
    }
    if (exp == 0x1f) {
        if (mant == 0) return sign | 0x7f800000u;
        return sign | 0x7fc00000u | (mant << 13);
    }
    return sign | ((exp + 112u) << 23) | (mant << 13);
}

// f32 bits -> f16, round to nearest even, subnormals included, overflow to
// infinity; NaN -> quiet NaN with its sign and leading payload bits.
__device__ __forceinline__ u16 f32_to_f16(u32 b) {
    u16 sign = (u16)((b >> 16) & 0x8000u);
    int exp = (int)((b >> 23) & 0xffu);
    u32 mant = b & 0x7fffffu;
    if (exp == 0xff) {
        if (mant != 0) return (u16)(sign | 0x7e00u | (u16)(mant >> 13));
        return (u16)(sign | 0x7c00u);
    }
    int e = exp - 127 + 15;
    if (e >= 31) return (u16)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10) return sign;
        u32 m = mant | 0x800000u;
        u32 shift = (u32)(14 - e); // 14..24
        u32 h = m >> shift;
        u32 rem = m & ((1u << shift) - 1u);
        u32 half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (h & 1u) != 0)) h++;
        return (u16)(sign | (u16)h);
    }
    u32 h = ((u32)e << 10) | (mant >> 13);
    u32 rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0)) h++;
    return (u16)(sign | (u16)h);
}

// OCP F8 E4M3 (FN) -> f32 bits: bias 7, no infinities, S.1111.111 is NaN.
__device__ __forceinline__ u32 f8e4m3_to_f32(u8 v) {
    u32 sign = (u32)(v & 0x80u) << 24;
    u32 exp = ((u32)v >> 3) & 0xfu;
    u32 mant = (u32)v & 7u;
    if (exp == 0xf && mant == 7) return sign | 0x7fc00000u;
    if (exp == 0) {
        if (mant == 0) return sign;
        u32 e = 127 - 6;
        while ((mant & 8u) == 0) {
            mant <<= 1;
            e--;
        }
        return sign | (e << 23) | ((mant & 7u) << 20);
    }
    return sign | ((exp + 120u) << 23) | (mant << 20);
}

// OCP F8 E5M2 -> f32 bits: the top byte of an IEEE half.
__device__ __forceinline__ u32 f8e5m2_to_f32(u8 v) { return f16_to_f32((u16)((u16)v << 8)); }

// ---------------------------------------------------------------------------
// Casts. One kernel per (source, destination) pair; n elements.

#define GRID_STRIDE(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

#define CAST_KERNEL(NAME, SRC_T, DST_T, EXPR)                                          \
    extern "C" __global__ void NAME(DST_T* __restrict__ dst, const SRC_T* __restrict__ src, i64 n) { \
        GRID_STRIDE(i, n) {                                                            \
            SRC_T x = src[i];                                                          \
            dst[i] = (EXPR);                                                           \
        }                                                                              \
    }

CAST_KERNEL(cast_bf16_f32, u16, u32, bf16_to_f32(x))
CAST_KERNEL(cast_f16_f32, u16, u32, f16_to_f32(x))
CAST_KERNEL(cast_f32_bf16, u32, u16, f32_to_bf16(x))
CAST_KERNEL(cast_f32_f16, u32, u16, f32_to_f16(x))
CAST_KERNEL(cast_bf16_f16, u16, u16, f32_to_f16(bf16_to_f32(x)))
CAST_KERNEL(cast_f16_bf16, u16, u16, f32_to_bf16(f16_to_f32(x)))
CAST_KERNEL(cast_e4m3_f32, u8, u32, f8e4m3_to_f32(x))
CAST_KERNEL(cast_e4m3_bf16, u8, u16, f32_to_bf16(f8e4m3_to_f32(x)))
CAST_KERNEL(cast_e4m3_f16, u8, u16, f32_to_f16(f8e4m3_to_f32(x)))
CAST_KERNEL(cast_e5m2_f32, u8, u32, f8e5m2_to_f32(x))
CAST_KERNEL(cast_e5m2_bf16, u8, u16, f32_to_bf16(f8e5m2_to_f32(x)))
CAST_KERNEL(cast_e5m2_f16, u8, u16, f32_to_f16(f8e5m2_to_f32(x)))

// ---------------------------------------------------------------------------
// MXFP4 decode (mirror runtime/kernels/mxfp4.go). One thread per block byte;
// nbytes = 16 * groups. Byte k of the blocks holds elements 2k (low nibble)
// and 2k+1 (high nibble); its scale is scales[k / 16].

__constant__ float kFP4[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                               -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// code value * 2^(s-127) as f32 bits; s == 255 (the E8M0 NaN) gives a quiet
// NaN with the code's sign. The product is exact or overflows to infinity.
__device__ __forceinline__ u32 fp4_value(u32 code, u32 s) {
    if (s == 255u) return 0x7fc00000u | ((code & 8u) << 28);
    float sc = __uint_as_float(s == 0u ? 0x00400000u : (s << 23)); // 2^-127 is subnormal
    return __float_as_uint(__fmul_rn(kFP4[code], sc));
}

extern "C" __global__ void mxfp4_decode_f32(uint2* __restrict__ dst, const u8* __restrict__ blocks,
                                            const u8* __restrict__ scales, i64 nbytes) {
    GRID_STRIDE(k, nbytes) {
        u32 b = blocks[k];
        u32 s = scales[k >> 4];
        dst[k] = make_uint2(fp4_value(b & 15u, s), fp4_value(b >> 4, s));
    }
}

extern "C" __global__ void mxfp4_decode_bf16(u32* __restrict__ dst, const u8* __restrict__ blocks,
                                             const u8* __restrict__ scales, i64 nbytes) {
    GRID_STRIDE(k, nbytes) {
        u32 b = blocks[k];
        u32 s = scales[k >> 4];
        // Exact values have at most two significant bits, so the top half of
        // the f32 is the exact BF16 (the NaN case gives 0x7fc0 | sign).
        u32 lo = fp4_value(b & 15u, s) >> 16;
        u32 hi = fp4_value(b >> 4, s) >> 16;
        dst[k] = lo | (hi << 16);
    }
}

// ---------------------------------------------------------------------------
// MXFP4 encode: the reference quantizer (formats.md section 2), one warp per
// group of 32 elements, lane i handling element i of the group. *flag
// receives, by atomicMin, the smallest index of a non-finite element; it must
// be initialised to ~0 by the caller.

// Step 5: float32 bits of q -> 4-bit E2M1 code.
__device__ __forceinline__ u32 e2m1(u32 q) {
    u32 sign = q & 0x80000000u;
    u32 e = (q >> 23) & 0xffu;
    u32 m = q & 0x7fffffu;
    if (e < 127u) {
        u32 sh = 126u - e;                                // 127 - e - 1
        m = sh >= 32u ? 0u : ((0x400000u | (m >> 1)) >> sh); // shifts of 32+ give 0 (as in Go)
    }
    e = (e > 126u ? e : 126u) - 126u;
    u32 code = (((e << 2) | (m >> 21)) + 1u) >> 1;
    if (code > 7u) code = 7u;
    return (sign >> 28) | code;
}

__device__ __forceinline__ void mxfp4_encode_group(u32 x, i64 g, u8* __restrict__ blocks, u8* __restrict__ scales,
                                                   u64* flag) {
    const unsigned full = 0xffffffffu;
    u32 lane = threadIdx.x & 31u;
    u32 mag = x & 0x7fffffffu;
    unsigned bad = __ballot_sync(full, mag >= 0x7f800000u);
    if (bad != 0u) {
        if (lane == 0) atomicMin(flag, (u64)(g * 32 + (i64)(__ffs((int)bad) - 1)));
        return; // uniform across the warp
    }
    // Step 1: amax on the magnitude bits (ordered like the values when finite).
    u32 amax = mag;
    for (int off = 16; off > 0; off >>= 1) {
        u32 o = __shfl_xor_sync(full, amax, off);
        amax = o > amax ? o : amax;
    }
    float d = __fdiv_rn(__uint_as_float(amax), 6.0f);
    // Step 2: round d up to a power of two on its bits.
    u32 ds = (__float_as_uint(d) + 0x007fffffu) & 0x7f800000u;
    // Step 4: q = x * (1/ds); 0 * x (a signed zero) where ds == 0.
    float inv = ds != 0u ? __fdiv_rn(1.0f, __uint_as_float(ds)) : 0.0f;
    u32 code = e2m1(__float_as_uint(__fmul_rn(__uint_as_float(x), inv)));
    // Step 6: even element in the low nibble.
    u32 odd = __shfl_down_sync(full, code, 1);
    if ((lane & 1u) == 0) blocks[g * 16 + (i64)(lane >> 1)] = (u8)(code | (odd << 4));
    // Step 3: the scale byte is ds's exponent field.
    if (lane == 0) scales[g] = (u8)(ds >> 23);
}

#define ENCODE_KERNEL(NAME, SRC_T, WIDEN)                                                          \
    extern "C" __global__ void NAME(u8* __restrict__ blocks, u8* __restrict__ scales,               \
                                    const SRC_T* __restrict__ src, i64 groups, u64* flag) {        \
        i64 warp = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;                              \
        i64 nwarps = ((i64)blockDim.x * gridDim.x) >> 5;                                           \
        i64 lane = threadIdx.x & 31;                                                               \
        for (i64 g = warp; g < groups; g += nwarps) {                                              \
            SRC_T v = src[g * 32 + lane];                                                          \
            mxfp4_encode_group((WIDEN), g, blocks, scales, flag);                                  \
        }                                                                                          \
    }

// The encoder widens BF16 by a plain shift (no NaN quieting) and F16 with
// the exact widening, as runtime/kernels does; only the error's index is
// taken from the device.
ENCODE_KERNEL(mxfp4_encode_f32, u32, v)
ENCODE_KERNEL(mxfp4_encode_bf16, u16, ((u32)v << 16))
ENCODE_KERNEL(mxfp4_encode_f16, u16, f16_to_f32(v))

// ---------------------------------------------------------------------------
// Transpose of a box: dst[o][b][m][a][i] = src[o][a][m][b][i] for o < outer,
// a < A, m < mid, b < B, i < inner, elements of type T (the host picks the
// widest of 1, 2, 4, 8, 16 bytes dividing the run of inner axes). Each block
// moves tiles of at most Ta x Tm x Tb x Ti elements through shared memory:
// it reads a tile in the source's order (i fastest, then b, m, a) and writes
// it in the destination's (i, a, m, b), consecutive threads on consecutive
// addresses both ways. Where a tile spans a whole axis the runs continue
// across it (Tb == B: the source's m rows are one run; Ta == A: the
// destination's), which is how a small A or B (a batch axis swapped with a
// long one) still moves in long runs. The host keeps Ta*Tm*Tb*Ti within
// TILE_BYTES / sizeof(T). Index arithmetic within a tile is 32-bit.

#define TILE_BYTES 16384

__device__ __forceinline__ i64 lmin(i64 a, i64 b) { return a < b ? a : b; }

template <typename T>
__device__ __forceinline__ void transpose_box(T* __restrict__ dst, const T* __restrict__ src, i64 outer, i64 A,
                                              i64 mid, i64 B, i64 inner, i64 Ta, i64 Tm, i64 Tb, i64 Ti) {
    // One padding element every 32: a tile row whose length is a multiple
    // of 32 does not put a warp's reads of a column in one bank.
    __shared__ T tile[TILE_BYTES / sizeof(T) + TILE_BYTES / sizeof(T) / 32];
    const i64 ni = (inner + Ti - 1) / Ti, nb = (B + Tb - 1) / Tb, nm = (mid + Tm - 1) / Tm, na = (A + Ta - 1) / Ta;
    const i64 tiles = outer * na * nm * nb * ni;
    for (i64 k = blockIdx.x; k < tiles; k += gridDim.x) {
        i64 r = k;
        const i64 i0 = (r % ni) * Ti;
        r /= ni;
        const i64 b0 = (r % nb) * Tb;
        r /= nb;
        const i64 m0 = (r % nm) * Tm;
        r /= nm;
        const i64 a0 = (r % na) * Ta;
        const i64 o = r / na;
        const u32 ei = (u32)lmin(Ti, inner - i0), eb = (u32)lmin(Tb, B - b0);
        const u32 em = (u32)lmin(Tm, mid - m0), ea = (u32)lmin(Ta, A - a0);
        const u32 n = ea * em * eb * ei;
        const T* in = src + (((o * A + a0) * mid + m0) * B + b0) * inner + i0;
        T* out = dst + (((o * B + b0) * mid + m0) * A + a0) * inner + i0;
        for (u32 e = threadIdx.x; e < n; e += blockDim.x) {
            u32 i = e % ei, t = e / ei;
            u32 b = t % eb;
            t /= eb;
            u32 m = t % em, a = t / em;
            tile[e + e / 32] = in[((i64)(a * mid + m) * B + b) * inner + i];
        }
        __syncthreads();
        for (u32 e = threadIdx.x; e < n; e += blockDim.x) {
            u32 i = e % ei, t = e / ei;
            u32 a = t % ea;
            t /= ea;
            u32 m = t % em, b = t / em;
            u32 s = ((a * em + m) * eb + b) * ei + i;
            out[((i64)(b * mid + m) * A + a) * inner + i] = tile[s + s / 32];
        }
        __syncthreads();
    }
}

#define TRANSPOSE_BOX(NAME, T)                                                                          \
    extern "C" __global__ void NAME(T* __restrict__ dst, const T* __restrict__ src, i64 outer, i64 A,     \
                                    i64 mid, i64 B, i64 inner, i64 Ta, i64 Tm, i64 Tb, i64 Ti) {          \
        transpose_box<T>(dst, src, outer, A, mid, B, inner, Ta, Tm, Tb, Ti);                            \
    }

TRANSPOSE_BOX(transpose_box_1, u8)
TRANSPOSE_BOX(transpose_box_2, u16)
TRANSPOSE_BOX(transpose_box_4, u32)
TRANSPOSE_BOX(transpose_box_8, u64)
TRANSPOSE_BOX(transpose_box_16, uint4)
