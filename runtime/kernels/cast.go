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
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x0040
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
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
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 31 {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			// Below half the smallest subnormal (2^-25): rounds to zero.
			return sign
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 != 0) {
			h++ // may carry into the smallest normal, which is the right encoding
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 != 0) {
		h++ // a carry into the exponent is correct, up to infinity
	}
	return sign | uint16(h)
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
