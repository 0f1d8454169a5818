// Package kernels holds the pure, single-threaded tensor kernels the runtime
// is built on: element casts among BF16, F16, F32 and the FP8 formats,
// N-d transposes, stride split/merge (unzip/zip), concat/split along an axis,
// and MXFP4 decode and the reference MXFP4 encoder.
//
// Every kernel works on little-endian []byte buffers, allocates nothing and
// starts no goroutines; runtime/backend splits large inputs across workers.
//
// NaN policy for every cast: a NaN input gives a quiet NaN output with the
// input's sign; the payload's leading bits are kept where they fit and the
// quiet bit (the top mantissa bit) is set. Infinities stay infinities.
// Narrowing rounds to nearest, ties to even, and overflows to infinity.
package kernels

import "math"

// BF16ToF32 widens a bfloat16 (given by its bits) to float32. Exact; a NaN
// is quieted.
func BF16ToF32(h uint16) float32 {
	return math.Float32frombits(bf16ToF32Bits(h))
}

func bf16ToF32Bits(h uint16) uint32 {
	b := uint32(h) << 16
	if b&0x7fffffff > 0x7f800000 {
		b |= 0x00400000
	}
	return b
}

// F32ToBF16 narrows a float32 to bfloat16 bits with round to nearest even.
// A NaN stays a quiet NaN with its sign; infinities are kept; finite values
// beyond the bfloat16 range round to infinity.
func F32ToBF16(f float32) uint16 {
	return f32BitsToBF16(math.Float32bits(f))
}

func f32BitsToBF16(b uint32) uint16 {
	r := (b + 0x7fff + (b>>16)&1) >> 16
	if b&0x7fffffff > 0x7f800000 { // NaN: keep sign and payload top, set quiet bit
		r = b>>16 | 0x0040
	}
	return uint16(r)
}

// F16ToF32 widens an IEEE half (given by its bits) to float32. Exact,
// subnormals included; a NaN is quieted.
func F16ToF32(h uint16) float32 {
	return math.Float32frombits(f16ToF32Bits(h))
}

func f16ToF32Bits(h uint16) uint32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		if mant == 0 {
			return sign
		}
		// Subnormal: mant * 2^-24, exact in float32.
		return sign | math.Float32bits(float32(mant)*(1.0/(1<<24)))
	case 0x1f:
		if mant == 0 {
			return sign | 0x7f800000
		}
		return sign | 0x7fc00000 | mant<<13
	}
	return sign | (exp+112)<<23 | mant<<13
}

// F32ToF16 narrows a float32 to IEEE half bits with round to nearest even,
// subnormal results included; values beyond the half range become infinity.
// A NaN stays a quiet NaN with its sign.
func F32ToF16(f float32) uint16 {
	return f32BitsToF16(math.Float32bits(f))
}

func f32BitsToF16(b uint32) uint16 {
	if h, ok := f16Normal(b); ok {
		return h
	}
	return uint16(b>>16)&0x8000 | f16Rare(b&0x7fffffff)
}

// f16Normal converts b when the result is a normal half (2^-14 <= |x| <
// 2^16, rounding up to infinity included) and reports whether it did. It is
// small enough to inline into the slice loops.
func f16Normal(b uint32) (uint16, bool) {
	a := b & 0x7fffffff
	if a-0x38800000 >= 0x47800000-0x38800000 {
		return 0, false
	}
	// Rebias, then round to nearest even on the 13 dropped bits; a carry
	// into the exponent is correct, up to infinity.
	a += 0xfff + (a>>13)&1 - (127-15)<<23
	return uint16(b>>16)&0x8000 | uint16(a>>13), true
}

// f16Rare is the half for a float32 magnitude outside [2^-14, 2^16): a
// subnormal or zero, an infinity or a NaN (kept out of f32BitsToF16 so that
// the common path inlines).
func f16Rare(a uint32) uint16 {
	switch {
	case a > 0x7f800000:
		return 0x7e00 | uint16(a>>13)&0x3ff
	case a >= 0x47800000:
		return 0x7c00
	}
	// Adding 0.5 (whose ulp, 2^-24, is the half subnormal step) rounds to
	// nearest even in the FPU and leaves the step count in the low mantissa
	// bits; a result of 2^-14 is the smallest normal's encoding.
	f := math.Float32frombits(a) + 0.5
	return uint16(math.Float32bits(f) - 0x3f000000)
}

// F8E4M3ToF32 decodes an OCP F8 E4M3 ("E4M3FN") byte: bias 7, no
// infinities, S.1111.111 is NaN (decoded as a quiet NaN with its sign), the
// largest finite value is 448. Exact.
func F8E4M3ToF32(v uint8) float32 {
	return math.Float32frombits(f8e4m3ToF32Bits(v))
}

func f8e4m3ToF32Bits(v uint8) uint32 {
	sign := uint32(v&0x80) << 24
	exp := uint32(v>>3) & 0xf
	mant := uint32(v & 7)
	switch {
	case exp == 0xf && mant == 7:
		return sign | 0x7fc00000
	case exp == 0:
		if mant == 0 {
			return sign
		}
		// Subnormal: mant * 2^-9; normalise.
		e := uint32(127 - 6) // exponent of 2^-6 as the subnormal base
		for mant&8 == 0 {
			mant <<= 1
			e--
		}
		return sign | e<<23 | (mant&7)<<20
	}
	return sign | (exp+120)<<23 | mant<<20
}

// F8E5M2ToF32 decodes an OCP F8 E5M2 byte: IEEE-like with bias 15,
// infinities and NaNs (decoded as quiet NaNs with their sign). Exact.
func F8E5M2ToF32(v uint8) float32 {
	return F16ToF32(uint16(v) << 8)
}
