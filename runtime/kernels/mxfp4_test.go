package kernels

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

var refCodes = [16]float64{0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6}

func refCode(n byte) float64 {
	v := refCodes[n&15]
	if n&8 != 0 && v == 0 {
		return math.Copysign(0, -1)
	}
	return v
}

// refMXFP4 is the reference decode of element k of a group.
func refMXFP4(blk []byte, scale byte, k int) float64 {
	b := blk[k/2]
	n := b & 15
	if k%2 == 1 {
		n = b >> 4
	}
	if scale == 255 {
		return math.NaN()
	}
	return refCode(n) * math.Ldexp(1, int(scale)-127) // exact in float64
}

func TestDecodeMXFP4Exhaustive(t *testing.T) {
	// For every scale 0..255, 16 groups whose block bytes cover all 256
	// byte values, each at a different position.
	const groups = 256 * 16
	blocks := make([]byte, 16*groups)
	scales := make([]byte, groups)
	for g := range groups {
		scales[g] = byte(g / 16)
		for j := range 16 {
			blocks[16*g+j] = byte(16*(g%16) + (j+g)%16)
		}
	}
	f32 := make([]byte, 128*groups)
	bf := make([]byte, 64*groups)
	if err := DecodeMXFP4ToF32(f32, blocks, scales); err != nil {
		t.Fatal(err)
	}
	if err := DecodeMXFP4ToBF16(bf, blocks, scales); err != nil {
		t.Fatal(err)
	}
	seen := make(map[[2]byte]bool)
	for g := range groups {
		blk := blocks[16*g : 16*g+16]
		for k := range 32 {
			ref := refMXFP4(blk, scales[g], k)
			nib := blk[k/2] >> (4 * (k % 2)) & 15
			neg := nib&8 != 0
			i := 32*g + k
			checkNarrowed(t, "mxfp4->F32", uint64(i), neg, f16or32{fmtF32, uint64(le.Uint32(f32[4*i:]))}, refRound(fmtF32, ref))
			checkNarrowed(t, "mxfp4->BF16", uint64(i), neg, f16or32{fmtBF16, uint64(le.Uint16(bf[2*i:]))}, refRound(fmtBF16, ref))
			if scales[g] != 255 && !math.IsInf(refRound(fmtBF16, ref), 0) && refRound(fmtBF16, ref) != ref {
				t.Fatalf("decoded value %v is not exact in BF16", ref)
			}
			seen[[2]byte{scales[g], blk[k/2]}] = true
		}
	}
	if len(seen) != 256*256 {
		t.Fatalf("covered %d (scale, byte) pairs, want 65536", len(seen))
	}
	// Scale 255 (E8M0 NaN) gives quiet NaNs with the code's sign, exactly.
	nanBlk := make([]byte, 16)
	nanBlk[0] = 0x8f // element 0: code 15 (negative), element 1: code 8 (-0)
	out := make([]byte, 128)
	if err := DecodeMXFP4ToF32(out, nanBlk, []byte{255}); err != nil {
		t.Fatal(err)
	}
	if le.Uint32(out) != 0xffc00000 || le.Uint32(out[4:]) != 0xffc00000 || le.Uint32(out[8:]) != 0x7fc00000 {
		t.Fatalf("scale 255 decode: %#x %#x %#x", le.Uint32(out), le.Uint32(out[4:]), le.Uint32(out[8:]))
	}
	// Overflow at scale 254 is an infinity of the code's sign.
	if err := DecodeMXFP4ToF32(out, []byte{0xf7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{254}); err != nil {
		t.Fatal(err)
	}
	if le.Uint32(out) != 0x7f800000 || le.Uint32(out[4:]) != 0xff800000 {
		t.Fatalf("scale 254 overflow: %#x %#x", le.Uint32(out), le.Uint32(out[4:]))
	}
}

func TestDecodeMXFP4Errors(t *testing.T) {
	if err := DecodeMXFP4ToF32(make([]byte, 128), make([]byte, 15), []byte{127}); err == nil {
		t.Error("short blocks accepted")
	}
	if err := DecodeMXFP4ToBF16(make([]byte, 128), make([]byte, 16), []byte{127}); err == nil {
		t.Error("wrong destination accepted")
	}
	if err := EncodeMXFP4FromF32(make([]byte, 16), make([]byte, 1), make([]byte, 64)); err == nil {
		t.Error("short source accepted")
	}
}

func randomMXFP4(rng *rand.Rand, groups int, lo, hi int, forceMax bool) (blocks, scales []byte) {
	blocks = make([]byte, 16*groups)
	scales = make([]byte, groups)
	for g := range groups {
		scales[g] = byte(lo + rng.IntN(hi-lo+1))
		for j := range 16 {
			blocks[16*g+j] = byte(rng.Uint32())
		}
		if forceMax {
			// One nibble of magnitude 4 or 6 (codes 6, 7) with a random sign.
			k := rng.IntN(32)
			code := byte(6+rng.IntN(2)) | byte(rng.IntN(2))<<3
			b := &blocks[16*g+k/2]
			if k%2 == 0 {
				*b = *b&0xf0 | code
			} else {
				*b = *b&0x0f | code<<4
			}
		}
	}
	return
}

func TestMXFP4RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const groups = 4096
	// Scales 4..252 keep every decoded value finite and every re-encoding
	// scale normal (see formats.md: value-identical round trips).
	blocks, scales := randomMXFP4(rng, groups, 4, 252, false)
	vals := make([]byte, 128*groups)
	if err := DecodeMXFP4ToF32(vals, blocks, scales); err != nil {
		t.Fatal(err)
	}
	b2, s2 := make([]byte, len(blocks)), make([]byte, len(scales))
	if err := EncodeMXFP4FromF32(b2, s2, vals); err != nil {
		t.Fatal(err)
	}
	vals2 := make([]byte, len(vals))
	if err := DecodeMXFP4ToF32(vals2, b2, s2); err != nil {
		t.Fatal(err)
	}
	if string(vals) != string(vals2) {
		t.Fatal("decode(encode(decode(x))) differs from decode(x)")
	}

	// With a magnitude-4 or -6 code in every group the round trip is
	// byte-identical, through F32 and through BF16.
	blocks, scales = randomMXFP4(rng, groups, 4, 252, true)
	if err := DecodeMXFP4ToF32(vals, blocks, scales); err != nil {
		t.Fatal(err)
	}
	if err := EncodeMXFP4FromF32(b2, s2, vals); err != nil {
		t.Fatal(err)
	}
	if string(b2) != string(blocks) || string(s2) != string(scales) {
		t.Fatal("F32 round trip is not byte-identical")
	}
	bf := make([]byte, 64*groups)
	if err := DecodeMXFP4ToBF16(bf, blocks, scales); err != nil {
		t.Fatal(err)
	}
	clear(b2)
	clear(s2)
	if err := EncodeMXFP4FromBF16(b2, s2, bf); err != nil {
		t.Fatal(err)
	}
	if string(b2) != string(blocks) || string(s2) != string(scales) {
		t.Fatal("BF16 round trip is not byte-identical")
	}
	// Through F16, with scales whose values F16 holds exactly.
	blocks, scales = randomMXFP4(rng, groups, 104, 140, true)
	if err := DecodeMXFP4ToF32(vals, blocks, scales); err != nil {
		t.Fatal(err)
	}
	hf := make([]byte, 64*groups)
	ConvertF32ToF16(hf, vals)
	clear(b2)
	clear(s2)
	if err := EncodeMXFP4FromF16(b2, s2, hf); err != nil {
		t.Fatal(err)
	}
	if string(b2) != string(blocks) || string(s2) != string(scales) {
		t.Fatal("F16 round trip is not byte-identical")
	}
}

// encodeOne encodes a single group given as float32 values.
func encodeOne(t *testing.T, x [32]float32) (blk [16]byte, scale byte) {
	t.Helper()
	src := make([]byte, 128)
	for i, v := range x {
		le.PutUint32(src[4*i:], math.Float32bits(v))
	}
	s := []byte{0xaa}
	if err := EncodeMXFP4FromF32(blk[:], s, src); err != nil {
		t.Fatal(err)
	}
	return blk, s[0]
}

func nibble(blk [16]byte, k int) byte { return blk[k/2] >> (4 * (k % 2)) & 15 }

func TestEncodeMXFP4HandWorked(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	type elem struct {
		k    int
		x    float32
		code byte
	}
	cases := []struct {
		name  string
		scale byte
		elems []elem // unlisted elements are +0 and must encode to code 0
	}{
		// amax 6: d = 1 is already a power of two, scale 127, q = x.
		{"exact max", 127, []elem{{0, 6, 7}, {1, -4, 14}, {2, 1.5, 3}, {3, 0.5, 1}}},
		// amax 7: d = 7/6 rounds up to 2 (scale 128); q = x/2.
		{"scale rounded up", 128, []elem{
			{0, 7, 6},     // q = 3.5: tie between 3 and 4 goes up to 4
			{1, 1, 1},     // q = 0.5
			{2, 0.3, 0},   // q = 0.15 -> 0
			{3, 0.5, 1},   // q = 0.25: tie between 0 and 0.5 goes up
			{4, -2.5, 11}, // q = -1.25: tie between 1 and 1.5 goes up in magnitude
			{5, 5, 5},     // q = 2.5: tie between 2 and 3 goes up
			{6, 3, 3},     // q = 1.5 exactly
		}},
		// Subnormal alignment (|q| < 1) with amax 6 (scale 127, q = x).
		{"subnormal alignment", 127, []elem{
			{0, 6, 7},
			{1, 0.75, 2},  // tie between 0.5 and 1 goes up
			{2, 0.74, 1},  // nearer 0.5
			{3, 0.24, 0},  // below the 0.25 tie
			{4, 0.25, 1},  // the tie goes up
			{5, -0.26, 9}, // -0.5
			{6, 1e-30, 0}, // far below: the alignment shift runs out
			{7, 0.999, 2}, // rounds to 1
		}},
		// Saturation: everything at or above 5 becomes 6 (code 7).
		{"saturation", 127, []elem{{0, 6, 7}, {1, 5, 7}, {2, -5.5, 15}, {3, 4.99, 6}}},
		// All zeros: scale 0; signs survive as signed zeros.
		{"all zero", 0, []elem{{0, 0, 0}, {1, negZero, 8}, {31, negZero, 8}}},
		{"negative zero in a group", 127, []elem{{0, -6, 15}, {1, negZero, 8}}},
		// Powers of two: amax 4 -> d = 2/3 rounds up to 1, q = 4 (code 6).
		{"power of two 4", 127, []elem{{0, 4, 6}, {1, 2, 4}, {2, 1, 2}}},
		{"power of two 1", 125, []elem{{0, 1, 6}, {1, -0.25, 10}, {2, 0.125, 1}}},
		{"power of two 2^20", 145, []elem{{0, 0x1p20, 6}, {1, 0x1p19, 4}}},
		{"6 * 2^-20", 107, []elem{{0, 6 * 0x1p-20, 7}}},
		// The smallest subnormal: d = 2^-149/6 underflows to 0, scale 0.
		{"smallest subnormal", 0, []elem{{0, 0x1p-149, 0}, {1, -0x1p-149, 8}}},
		// A tiny group: d is subnormal and rounds up to 2^-126 (scale 1).
		{"tiny", 1, []elem{{0, 0x1p-140, 0}, {1, 0x1p-127, 1}, {2, 0x3p-128, 2}, {3, 0x3p-127, 3}}},
		// The largest float: d rounds up to 2^126 (scale 253), q just
		// below 4 rounds to 4 (the decode then overflows to infinity).
		{"max float", 253, []elem{{0, math.MaxFloat32, 6}, {1, -0x1p126, 10}}},
	}
	for _, c := range cases {
		var x [32]float32
		want := [32]byte{}
		for _, e := range c.elems {
			x[e.k] = e.x
			want[e.k] = e.code
		}
		blk, scale := encodeOne(t, x)
		if scale != c.scale {
			t.Errorf("%s: scale %d, want %d", c.name, scale, c.scale)
		}
		for k := range 32 {
			if got := nibble(blk, k); got != want[k] {
				t.Errorf("%s: element %d (%g): code %d, want %d", c.name, k, x[k], got, want[k])
			}
		}
	}
}

func TestE2M1Table(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for top := range uint32(1 << 11) { // sign, exponent, top two mantissa bits
		for k := range 64 {
			low := rng.Uint32() & (1<<21 - 1)
			switch k {
			case 0:
				low = 0
			case 1:
				low = 1<<21 - 1
			}
			q := top<<21 | low
			if got, want := e2m1Fast(q), e2m1(q); got != want {
				t.Fatalf("e2m1Fast(%#08x) = %d, e2m1 = %d", q, got, want)
			}
		}
	}
}

func TestE2M1Saturates(t *testing.T) {
	for _, q := range []float32{6, 6.5, 7, 8, 100, 1e30, math.MaxFloat32} {
		if got := e2m1(math.Float32bits(q)); got != 7 {
			t.Errorf("e2m1(%g) = %d, want 7", q, got)
		}
		if got := e2m1(math.Float32bits(-q)); got != 15 {
			t.Errorf("e2m1(%g) = %d, want 15", -q, got)
		}
	}
}

func TestEncodeMXFP4NonFinite(t *testing.T) {
	const groups = 3
	for _, c := range []struct {
		name string
		bits uint32
	}{{"NaN", 0x7fc00000}, {"-NaN", 0xffc00001}, {"+Inf", 0x7f800000}, {"-Inf", 0xff800000}} {
		src := make([]byte, 128*groups)
		le.PutUint32(src[4*37:], c.bits)
		le.PutUint32(src[4*70:], c.bits) // a later one is not reported
		err := EncodeMXFP4FromF32(make([]byte, 16*groups), make([]byte, groups), src)
		var nf *NonFiniteError
		if !errors.As(err, &nf) || nf.Index != 37 {
			t.Fatalf("%s: err = %v, want a NonFiniteError at 37", c.name, err)
		}
		if math.Float32bits(nf.Value) != c.bits {
			t.Errorf("%s: Value bits %#x", c.name, math.Float32bits(nf.Value))
		}
	}
	// BF16 and F16 sources.
	src := make([]byte, 64*groups)
	le.PutUint16(src[2*65:], 0xff80) // BF16 -Inf
	var nf *NonFiniteError
	if err := EncodeMXFP4FromBF16(make([]byte, 16*groups), make([]byte, groups), src); !errors.As(err, &nf) || nf.Index != 65 || !math.IsInf(float64(nf.Value), -1) {
		t.Fatalf("BF16: %v", err)
	}
	clear(src)
	le.PutUint16(src[2*95:], 0x7e00) // F16 NaN
	if err := EncodeMXFP4FromF16(make([]byte, 16*groups), make([]byte, groups), src); !errors.As(err, &nf) || nf.Index != 95 || !math.IsNaN(float64(nf.Value)) {
		t.Fatalf("F16: %v", err)
	}
}
