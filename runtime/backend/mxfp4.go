package backend

import (
	"encoding/binary"

	"github.com/mapper-dev/mapper/runtime/kernels"
)

// Integer-only MXFP4 paths for the common case, byte for byte the
// runtime/kernels reference (which the tests check exhaustively): the
// reference multiplies floats per element; scaling by a power of two is an
// exponent addition, which here works on the BF16 bits directly. Groups
// outside the range where that is exact (a few extreme scales, non-finite
// input) go through the reference.

var le = binary.LittleEndian

// decodeLo and decodeHi bound the scales whose every nonzero code value
// (0.5 to 6, exponents 126 to 129 at scale 127) stays a normal BF16 after
// the scale's exponent is added: 126+s-127 >= 1 and 129+s-127 <= 254.
const decodeLo, decodeHi = 2, 252

// bf16Pair[b] holds the two BF16 values of block byte b (low nibble in the
// low half) at scale decodeLo; nonzeroPair[b] is 0xffff in each half whose
// code is not a zero, where adding the scale's exponent applies.
var bf16Pair, nonzeroPair = func() (v, m [256]uint32) {
	// BF16 bits of the E2M1 magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6 at scale 2^0.
	mag := [8]uint32{0, 0x3f00, 0x3f80, 0x3fc0, 0x4000, 0x4040, 0x4080, 0x40c0}
	half := func(c int) (uint32, uint32) {
		bits := uint32(c>>3) << 15
		if c&7 == 0 {
			return bits, 0
		}
		return bits | (mag[c&7] - (127-decodeLo)<<7), 0xffff
	}
	for b := range 256 {
		lo, lm := half(b & 15)
		hi, hm := half(b >> 4)
		v[b], m[b] = lo|hi<<16, lm|hm<<16
	}
	return
}()

// decodeMXFP4ToBF16 is kernels.DecodeMXFP4ToBF16 with lengths already
// checked.
func decodeMXFP4ToBF16(dst, blocks, scales []byte) {
	for g, s := range scales {
		out := dst[64*g : 64*g+64 : 64*g+64]
		blk := blocks[16*g : 16*g+16 : 16*g+16]
		if s < decodeLo || s > decodeHi {
			_ = kernels.DecodeMXFP4ToBF16(out, blk, scales[g:g+1])
			continue
		}
		add := uint32(s-decodeLo) << 7
		add |= add << 16
		for j := 0; j < 16; j += 2 {
			b0, b1 := blk[j], blk[j+1]
			w := uint64(bf16Pair[b0]+add&nonzeroPair[b0]) | uint64(bf16Pair[b1]+add&nonzeroPair[b1])<<32
			le.PutUint64(out[4*j:], w)
		}
	}
}

// e2m1Code[i] is the E2M1 magnitude code of a float32 whose bits 30..21
// (exponent and top two mantissa bits, the only bits the reference's
// rounding reads) are i: round half away from zero, saturate at 6.
func e2m1Code(i int) byte {
	e, m := i>>2, i&3 // value (4+m)/4 * 2^(e-127) for e > 0
	switch {
	case e < 125: // below 0.25, rounds to 0 (exponent 0 included)
		return 0
	case e == 125: // [0.25, 0.5): rounds up to 0.5
		return 1
	case e == 126: // [0.5, 1): 0.5, 0.625 -> 0.5; 0.75, 0.875 -> 1
		return byte(1 + m>>1)
	}
	// From 1 on, (e-126)*4 + m counts quarter steps of the exponent; the
	// code is that plus one, halved (half away from zero), at most 7.
	return byte(min(((e-126)<<2|m+1)>>1, 7))
}

// codeBias offsets e2m1Table's index so that it is never negative.
const codeBias = 512

// e2m1Table[sign<<11 | j+codeBias] is the 4-bit code of a value whose bits
// 30..21 are j after scaling (j < 0: underflow, code 0), with its sign.
var e2m1Table = func() (t [4096]byte) {
	for k := range 2048 {
		var c byte
		if j := k - codeBias; j >= 0 && j < 1024 {
			c = e2m1Code(j)
		} else if j >= 1024 {
			c = 7
		}
		t[k], t[2048+k] = c, c|8
	}
	return
}()

// codes4 returns the 4-bit codes of the four BF16 values of x (elements
// 0..3 in bits 0..15) for the scale whose index offset is bias in every
// lane: per lane, sign<<11 | (bits 14..5) + bias indexes e2m1Table.
func codes4(x, bias uint64) uint64 {
	const lanes = 0x0001000100010001
	k := (x>>5)&(0x3ff*lanes) + bias + (x>>4)&(0x800*lanes)
	return uint64(e2m1Table[k&0xfff]) | uint64(e2m1Table[k>>16&0xfff])<<4 |
		uint64(e2m1Table[k>>32&0xfff])<<8 | uint64(e2m1Table[k>>48&0xfff])<<12
}

// maxLanes is the lane-wise maximum of four 15-bit values in 16-bit lanes:
// a|0x8000 - b keeps a lane's top bit set where a >= b, and no borrow
// crosses lanes since b < 0x8000.
func maxLanes(a, b uint64) uint64 {
	const tops = 0x8000800080008000
	ge := ((a | tops) - b) & tops >> 15 * 0xffff
	return a&ge | b&^ge
}

// encodeMXFP4FromBF16 is kernels.EncodeMXFP4FromBF16 with lengths already
// checked; it returns the reference's error for a group holding a NaN or an
// infinity (its index relative to src).
//
// With the scale's exponent e (the reference's steps 1-3), the reference
// codes q = x * 2^(127-e). For e >= 3 that product only moves x's exponent
// (or underflows below 0.25, code 0; a BF16 subnormal x lands below
// exponent 125 too), so x's bits 14..5 minus 4*(e-127) index the code
// directly. Four values go at a time, 16 bits each in a uint64.
func encodeMXFP4FromBF16(blocks, scales, src []byte) error {
	const (
		mags  = 0x7fff7fff7fff7fff
		lanes = 0x0001000100010001
	)
	for g := range scales {
		s := src[64*g : 64*g+64 : 64*g+64]
		var w [8]uint64
		for i := range w {
			w[i] = le.Uint64(s[8*i:])
		}
		m := maxLanes(maxLanes(maxLanes(w[0]&mags, w[1]&mags), maxLanes(w[2]&mags, w[3]&mags)),
			maxLanes(maxLanes(w[4]&mags, w[5]&mags), maxLanes(w[6]&mags, w[7]&mags)))
		m = maxLanes(m, m>>32)
		m = maxLanes(m, m>>16)
		amax := int32(m & 0x7fff)
		// The reference's steps 1-3: d = amax/6 in float32, rounded up to a
		// power of two; the scale byte is its exponent field. With amax =
		// (1 + f/128) * 2^(x-127), amax/6 = r * 2^(x-129) with r = (128+f)/192,
		// never within float32 rounding of 1 unless exactly 1 (f = 64): the
		// power of two is 2^(x-129) for f <= 64 and 2^(x-128) above, so the
		// exponent is (amax+63)>>7 - 2 (d subnormal only where that is < 3).
		e := (amax+63)>>7 - 2
		if amax >= 0x7f80 || e < 3 {
			// Non-finite input or tiny scales: the reference.
			if err := kernels.EncodeMXFP4FromBF16(blocks[16*g:16*g+16], scales[g:g+1], s); err != nil {
				if nf, ok := err.(*kernels.NonFiniteError); ok {
					nf.Index += int64(32 * g)
				}
				return err
			}
			continue
		}
		scales[g] = byte(e)
		// Per lane: sign<<11 | (bits 14..5) + codeBias - 4*(e-127), at most
		// 2048 + 1023 + 512 + 4*124 < 4096.
		bias := uint64(codeBias-(e-127)<<2) * lanes
		le.PutUint64(blocks[16*g:], codes4(w[0], bias)|codes4(w[1], bias)<<16|codes4(w[2], bias)<<32|codes4(w[3], bias)<<48)
		le.PutUint64(blocks[16*g+8:], codes4(w[4], bias)|codes4(w[5], bias)<<16|codes4(w[6], bias)<<32|codes4(w[7], bias)<<48)
	}
	return nil
}
