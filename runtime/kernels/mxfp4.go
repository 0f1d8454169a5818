package kernels

import (
	"fmt"
	"math"
)

// MXFP4 (OCP microscaling FP4, E2M1 codes with one E8M0 scale per group of
// 32 elements) as GPT-OSS stores it: a group is 16 block bytes and one scale
// byte; byte j of a group holds element 2j in its low nibble and element
// 2j+1 in its high nibble; value = code_table[nibble] * 2^(scale-127).
//
// Decoding is exact for scales 0..254: every value has at most two
// significant bits and lies in [2^-128, 6*2^127]; results above the float32
// (and BF16) range, i.e. |value| >= 2^128 (codes 2, 3, 4, 6 at scale 254),
// become infinities of the code's sign, which is what exact arithmetic
// rounded to nearest even gives. Scale 255 is the E8M0 NaN: every element of
// such a group decodes to a quiet NaN carrying the code's sign bit
// (F32 0x7fc00000 / 0xffc00000, BF16 0x7fc0 / 0xffc0).

// MXFP4GroupSize is the number of elements sharing one scale byte.
const MXFP4GroupSize = 32

// MXFP4BlockBytes is the number of block bytes per group.
const MXFP4BlockBytes = 16

// fp4Values is the E2M1 code table; bit 3 is the sign.
var fp4Values = [16]float32{0, 0.5, 1, 1.5, 2, 3, 4, 6, float32(math.Copysign(0, -1)), -0.5, -1, -1.5, -2, -3, -4, -6}

// fp4Pair maps a block byte to its two code values (low nibble first).
var fp4Pair [256][2]float32

// scalePow2 maps a scale byte to 2^(s-127) as float32 (exact: 2^-127 is a
// float32 subnormal); 255 maps to NaN.
var scalePow2 [256]float32

func init() {
	for b := range 256 {
		fp4Pair[b] = [2]float32{fp4Values[b&15], fp4Values[b>>4]}
	}
	for s := range 255 {
		scalePow2[s] = float32(math.Ldexp(1, s-127))
	}
	scalePow2[255] = math.Float32frombits(0x7fc00000)
}

// NonFiniteError reports a NaN or infinity handed to the MXFP4 encoder.
// Index is the element index within the src buffer the encoder was given;
// Value is the element widened to float32.
type NonFiniteError struct {
	Index int64
	Value float32
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("cannot quantize non-finite value %v at element %d", e.Value, e.Index)
}

func checkDecode(dst []byte, elemSize int, blocks, scales []byte) error {
	g := len(scales)
	if len(blocks) != MXFP4BlockBytes*g {
		return fmt.Errorf("kernels: mxfp4 decode: %d block bytes for %d scales, want %d", len(blocks), g, MXFP4BlockBytes*g)
	}
	if len(dst) != MXFP4GroupSize*elemSize*g {
		return fmt.Errorf("kernels: mxfp4 decode: destination length %d, want %d for %d groups", len(dst), MXFP4GroupSize*elemSize*g, g)
	}
	return nil
}

// DecodeMXFP4ToF32 decodes len(scales) groups (16 block bytes each) into
// dst, 32 float32 values per group.
func DecodeMXFP4ToF32(dst, blocks, scales []byte) error {
	if err := checkDecode(dst, 4, blocks, scales); err != nil {
		return err
	}
	for g, s := range scales {
		blk := blocks[16*g : 16*g+16 : 16*g+16]
		out := dst[128*g : 128*g+128 : 128*g+128]
		if s == 255 {
			decodeNaNGroup32(out, blk)
			continue
		}
		sc := scalePow2[s]
		for j := range 16 {
			p := &fp4Pair[blk[j]]
			// Both factors are exact and the product needs at most two
			// significant bits, so float32 multiplication is exact (or
			// overflows to infinity, which is the correctly rounded result).
			le.PutUint32(out[8*j:], math.Float32bits(p[0]*sc))
			le.PutUint32(out[8*j+4:], math.Float32bits(p[1]*sc))
		}
	}
	return nil
}

// DecodeMXFP4ToBF16 decodes len(scales) groups (16 block bytes each) into
// dst, 32 BF16 values per group. Exact (see the package notes on MXFP4).
func DecodeMXFP4ToBF16(dst, blocks, scales []byte) error {
	if err := checkDecode(dst, 2, blocks, scales); err != nil {
		return err
	}
	for g, s := range scales {
		blk := blocks[16*g : 16*g+16 : 16*g+16]
		out := dst[64*g : 64*g+64 : 64*g+64]
		if s == 255 {
			decodeNaNGroup16(out, blk)
			continue
		}
		sc := scalePow2[s]
		for j := range 16 {
			p := &fp4Pair[blk[j]]
			// The exact float32 product has at most two significant bits,
			// all within BF16's 8-bit significand (subnormals down to
			// 2^-128 included), so its top half is the exact BF16.
			lo := math.Float32bits(p[0]*sc) >> 16
			hi := math.Float32bits(p[1]*sc) >> 16
			le.PutUint32(out[4*j:], lo|hi<<16)
		}
	}
	return nil
}

func decodeNaNGroup32(out, blk []byte) {
	for j := range 16 {
		b := uint32(blk[j])
		le.PutUint32(out[8*j:], 0x7fc00000|(b&8)<<28)
		le.PutUint32(out[8*j+4:], 0x7fc00000|(b&0x80)<<24)
	}
}

func decodeNaNGroup16(out, blk []byte) {
	for j := range 16 {
		b := uint16(blk[j])
		le.PutUint16(out[4*j:], 0x7fc0|(b&8)<<12)
		le.PutUint16(out[4*j+2:], 0x7fc0|(b&0x80)<<8)
	}
}

func checkEncode(blocks, scales []byte, srcLen, elemSize int) error {
	g := len(scales)
	if len(blocks) != MXFP4BlockBytes*g {
		return fmt.Errorf("kernels: mxfp4 encode: %d block bytes for %d scales, want %d", len(blocks), g, MXFP4BlockBytes*g)
	}
	if srcLen != MXFP4GroupSize*elemSize*g {
		return fmt.Errorf("kernels: mxfp4 encode: source length %d, want %d for %d groups", srcLen, MXFP4GroupSize*elemSize*g, g)
	}
	return nil
}

// EncodeMXFP4FromF32 quantizes 32*len(scales) float32 values into blocks and
// scales with the reference quantizer (formats.md section 2, triton's
// downcast_to_mxfp_torch with ROUND_UP). A NaN or infinity returns a
// *NonFiniteError naming the first such element; groups before it have been
// written, the rest of the output is unspecified.
func EncodeMXFP4FromF32(blocks, scales, src []byte) error {
	if err := checkEncode(blocks, scales, len(src), 4); err != nil {
		return err
	}
	var grp [32]uint32
	for g := range scales {
		s := src[128*g : 128*g+128 : 128*g+128]
		for i := range grp {
			grp[i] = le.Uint32(s[4*i:])
		}
		if err := encodeGroup(&grp, blocks[16*g:16*g+16:16*g+16], &scales[g]); err != nil {
			err.Index += int64(32 * g)
			return err
		}
	}
	return nil
}

// EncodeMXFP4FromBF16 is EncodeMXFP4FromF32 for BF16 input (widened exactly).
func EncodeMXFP4FromBF16(blocks, scales, src []byte) error {
	if err := checkEncode(blocks, scales, len(src), 2); err != nil {
		return err
	}
	var grp [32]uint32
	for g := range scales {
		s := src[64*g : 64*g+64 : 64*g+64]
		for i := range grp {
			grp[i] = uint32(le.Uint16(s[2*i:])) << 16
		}
		if err := encodeGroup(&grp, blocks[16*g:16*g+16:16*g+16], &scales[g]); err != nil {
			err.Index += int64(32 * g)
			return err
		}
	}
	return nil
}

// EncodeMXFP4FromF16 is EncodeMXFP4FromF32 for F16 input (widened exactly).
func EncodeMXFP4FromF16(blocks, scales, src []byte) error {
	if err := checkEncode(blocks, scales, len(src), 2); err != nil {
		return err
	}
	var grp [32]uint32
	for g := range scales {
		s := src[64*g : 64*g+64 : 64*g+64]
		for i := range grp {
			grp[i] = f16ToF32Bits(le.Uint16(s[2*i:]))
		}
		if err := encodeGroup(&grp, blocks[16*g:16*g+16:16*g+16], &scales[g]); err != nil {
			err.Index += int64(32 * g)
			return err
		}
	}
	return nil
}

// encodeGroup quantizes one group of 32 float32 bit patterns, following the
// six steps of formats.md section 2 on the float32 bits.
func encodeGroup(x *[32]uint32, blk []byte, scale *byte) *NonFiniteError {
	// Step 1: amax (on the magnitude bits, which order like the values for
	// finite floats) and d = amax / 6 in float32.
	var amax uint32
	for _, b := range x {
		amax = max(amax, b&0x7fffffff)
	}
	if amax >= 0x7f800000 { // some element is an infinity or a NaN
		for i, b := range x {
			if b&0x7fffffff >= 0x7f800000 {
				return &NonFiniteError{Index: int64(i), Value: math.Float32frombits(b)}
			}
		}
	}
	d := math.Float32frombits(amax) / 6.0
	// Step 2: round d up to a power of two on its bits.
	dsBits := (math.Float32bits(d) + 0x007fffff) & 0x7f800000
	// Step 3: the scale byte is ds's exponent field.
	*scale = byte(dsBits >> 23)
	// Step 4: q = x * (1/ds); the reference multiplies by a quant scale of 0
	// when ds == 0, so the sign of each input survives as a signed zero.
	var inv float32
	if dsBits != 0 {
		inv = 1 / math.Float32frombits(dsBits) // exact: ds is in [2^-126, 2^126]
	}
	for j := range 16 {
		lo := e2m1Fast(math.Float32bits(math.Float32frombits(x[2*j]) * inv))
		hi := e2m1Fast(math.Float32bits(math.Float32frombits(x[2*j+1]) * inv))
		// Step 6: pack pairs, even element in the low nibble.
		blk[j] = lo | hi<<4
	}
	return nil
}

// e2m1Table holds e2m1 for every value of bits 30..21 of q (exponent and
// top two mantissa bits), which are the only bits e2m1 reads: for e >= 127
// it uses m>>21, and for e < 127 the aligned mantissa shifted right by 21
// is m >> (148-e) with 148-e >= 22. The tests check the table against e2m1.
var e2m1Table = func() (t [1024]byte) {
	for i := range t {
		t[i] = e2m1(uint32(i) << 21)
	}
	return
}()

// e2m1Fast is e2m1 by table lookup.
func e2m1Fast(q uint32) byte {
	return e2m1Table[q>>21&0x3ff] | byte(q>>31<<3)
}

// e2m1 is step 5: convert float32 bits q to a 4-bit E2M1 code, as the
// reference does (round half away from zero in magnitude, saturating at 6).
// Branch-free: whether |q| < 1 is data-dependent and would mispredict.
func e2m1(q uint32) byte {
	e := (q >> 23) & 0xff
	m := q & 0x7fffff
	// Subnormal alignment for e < 127, shifting by 127-e-1. Shifts of 23 or
	// more leave 0, so clamping the shift at 31 changes nothing; for
	// e >= 127 the subtraction wraps, the clamp applies and sub is unused.
	sub := (0x400000 | m>>1) >> min(126-e, 31)
	if e < 127 {
		m = sub
	}
	e = max(e, 126) - 126
	code := min((((e<<2)|(m>>21))+1)>>1, 7)
	return byte(q>>31<<3 | code)
}
