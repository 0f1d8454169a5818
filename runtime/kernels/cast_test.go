package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Independent slow references, computed with float64 math from the bit
// layouts.

type floatFormat struct {
	expBits, mantBits int
	bias              int
}

var (
	fmtBF16 = floatFormat{8, 7, 127}
	fmtF16  = floatFormat{5, 10, 15}
	fmtF32  = floatFormat{8, 23, 127}
)

// refDecode decodes an IEEE-style pattern (with infinities and NaNs) to
// float64.
func refDecode(f floatFormat, bits uint64) float64 {
	sign := 1.0
	if bits>>(f.expBits+f.mantBits)&1 == 1 {
		sign = -1
	}
	e := int(bits>>f.mantBits) & (1<<f.expBits - 1)
	m := float64(bits & (1<<f.mantBits - 1))
	switch e {
	case 0:
		return sign * math.Ldexp(m, 1-f.bias-f.mantBits)
	case 1<<f.expBits - 1:
		if m != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+m/math.Ldexp(1, f.mantBits), e-f.bias)
}

// refRound rounds x to format f with round to nearest even, returning the
// rounded value as float64 (infinity on overflow).
func refRound(f floatFormat, x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	ax := math.Abs(x)
	_, exp := math.Frexp(ax) // ax = frac * 2^exp, frac in [0.5, 1)
	e := exp - 1
	emin := 1 - f.bias
	if e < emin {
		e = emin
	}
	ulp := math.Ldexp(1, e-f.mantBits)
	r := math.RoundToEven(ax/ulp) * ulp
	emax := (1<<f.expBits - 2) - f.bias
	if r >= math.Ldexp(1, emax+1) {
		r = math.Inf(1)
	}
	return math.Copysign(r, x)
}

// sameValue compares float64 values, treating NaNs as equal and zeros by sign.
func sameValue(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b && math.Signbit(a) == math.Signbit(b)
}

func isQuietNaN(f floatFormat, bits uint64) bool {
	e := bits >> f.mantBits & (1<<f.expBits - 1)
	m := bits & (1<<f.mantBits - 1)
	return e == 1<<f.expBits-1 && m>>(f.mantBits-1) == 1
}

func signOf(f floatFormat, bits uint64) uint64 { return bits >> (f.expBits + f.mantBits) & 1 }

func TestBF16Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := BF16ToF32(h)
		ref := refDecode(fmtBF16, uint64(h))
		if !sameValue(float64(f), ref) {
			t.Fatalf("BF16ToF32(%#04x) = %v, want %v", h, f, ref)
		}
		back := F32ToBF16(f)
		if math.IsNaN(ref) {
			fb := math.Float32bits(f)
			if !isQuietNaN(fmtF32, uint64(fb)) || signOf(fmtF32, uint64(fb)) != signOf(fmtBF16, uint64(h)) {
				t.Fatalf("BF16ToF32(%#04x) = %#08x, want a quiet NaN with the sign", h, fb)
			}
			if !isQuietNaN(fmtBF16, uint64(back)) || back>>15 != h>>15 {
				t.Fatalf("BF16 NaN %#04x round-tripped to %#04x", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("BF16 %#04x round-tripped to %#04x", h, back)
		}
	}
}

func TestF16Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := F16ToF32(h)
		ref := refDecode(fmtF16, uint64(h))
		if !sameValue(float64(f), ref) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, f, ref)
		}
		back := F32ToF16(f)
		if math.IsNaN(ref) {
			fb := math.Float32bits(f)
			if !isQuietNaN(fmtF32, uint64(fb)) || signOf(fmtF32, uint64(fb)) != signOf(fmtF16, uint64(h)) {
				t.Fatalf("F16ToF32(%#04x) = %#08x, want a quiet NaN with the sign", h, fb)
			}
			if !isQuietNaN(fmtF16, uint64(back)) || back>>15 != h>>15 {
				t.Fatalf("F16 NaN %#04x round-tripped to %#04x", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("F16 %#04x round-tripped to %#04x", h, back)
		}
	}
}

// all16 returns every 16-bit pattern as a little-endian buffer.
func all16() []byte {
	b := make([]byte, 2<<16)
	for i := range 1 << 16 {
		le.PutUint16(b[2*i:], uint16(i))
	}
	return b
}

// checkNarrowed checks an output pattern against the float64 reference
// value: equal value (and zero sign), or for a NaN reference a quiet NaN
// with the input's sign.
func checkNarrowed(t *testing.T, what string, in uint64, inNeg bool, out f16or32, ref float64) {
	t.Helper()
	got := refDecode(out.f, out.bits)
	if math.IsNaN(ref) {
		if !isQuietNaN(out.f, out.bits) || (signOf(out.f, out.bits) == 1) != inNeg {
			t.Fatalf("%s(%#x) = %#x, want a quiet NaN with the input's sign", what, in, out.bits)
		}
		return
	}
	if !sameValue(got, ref) {
		t.Fatalf("%s(%#x) = %#x (%v), want %v", what, in, out.bits, got, ref)
	}
}

type f16or32 struct {
	f    floatFormat
	bits uint64
}

func TestF16ToBF16Exhaustive(t *testing.T) {
	src := all16()
	dst := make([]byte, len(src))
	if err := Convert(dst, tensor.BF16, src, tensor.F16); err != nil {
		t.Fatal(err)
	}
	for i := range 1 << 16 {
		ref := refRound(fmtBF16, refDecode(fmtF16, uint64(i)))
		checkNarrowed(t, "F16->BF16", uint64(i), i>>15 == 1, f16or32{fmtBF16, uint64(le.Uint16(dst[2*i:]))}, ref)
	}
}

func TestBF16ToF16Exhaustive(t *testing.T) {
	src := all16()
	dst := make([]byte, len(src))
	if err := Convert(dst, tensor.F16, src, tensor.BF16); err != nil {
		t.Fatal(err)
	}
	for i := range 1 << 16 {
		ref := refRound(fmtF16, refDecode(fmtBF16, uint64(i)))
		checkNarrowed(t, "BF16->F16", uint64(i), i>>15 == 1, f16or32{fmtF16, uint64(le.Uint16(dst[2*i:]))}, ref)
	}
}

func TestWideningSlicesExhaustive(t *testing.T) {
	src := all16()
	for _, c := range []struct {
		from tensor.DType
		f    floatFormat
	}{{tensor.BF16, fmtBF16}, {tensor.F16, fmtF16}} {
		dst := make([]byte, 2*len(src))
		if err := Convert(dst, tensor.F32, src, c.from); err != nil {
			t.Fatal(err)
		}
		for i := range 1 << 16 {
			ref := refDecode(c.f, uint64(i))
			checkNarrowed(t, c.from.String()+"->F32", uint64(i), i>>15 == 1, f16or32{fmtF32, uint64(le.Uint32(dst[4*i:]))}, ref)
		}
	}
}

func TestF32NarrowingTies(t *testing.T) {
	bf := []struct {
		in  uint32
		out uint16
	}{
		{0x3f800000, 0x3f80},
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81},
		{0x3f807fff, 0x3f80},
		{0xbf818000, 0xbf82},
		{0x7f7f7fff, 0x7f7f},
		{0x7f7f8000, 0x7f80}, // tie above the largest BF16: infinity
		{0x7f7fffff, 0x7f80},
		{0x00008000, 0x0000}, // subnormal tie to even zero
		{0x00018000, 0x0002},
		{0x80008001, 0x8001},
		{0x80000000, 0x8000},
		{0x7f800000, 0x7f80},
		{0xff800000, 0xff80},
		{0x7f800001, 0x7fc0}, // signalling NaN is quieted
		{0xff800001, 0xffc0},
		{0x7fc00000, 0x7fc0},
		{0xffffffff, 0xffff},
	}
	for _, c := range bf {
		if got := F32ToBF16(math.Float32frombits(c.in)); got != c.out {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", c.in, got, c.out)
		}
	}
	f16 := []struct {
		in  float32
		out uint16
	}{
		{1, 0x3c00},
		{1 + 1.0/2048, 0x3c00}, // tie, even stays
		{1 + 3.0/2048, 0x3c02}, // tie, odd rounds up
		{1 + 1.0/2048 + 1.0/(1<<20), 0x3c01},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65519.99, 0x7bff},
		{65520, 0x7c00}, // tie above the largest half: infinity
		{1e9, 0x7c00},
		{-1e9, 0xfc00},
		{0x1p-14, 0x0400},
		{0x1p-24, 0x0001},
		{0x1p-25, 0x0000},           // tie to even zero
		{0x1p-25 + 0x1p-40, 0x0001}, // just above the tie
		{0x3p-25, 0x0002},           // tie between 1 and 2 subnormal ulps
		{0x1p-14 - 0x1p-25, 0x0400}, // tie between the largest subnormal and the smallest normal
		{0x1p-14 - 0x1p-24, 0x03ff}, // largest subnormal
		{0x1p-26, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{-0x1p-30, 0x8000},
		{float32(math.Inf(1)), 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
	}
	for _, c := range f16 {
		if got := F32ToF16(c.in); got != c.out {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.in, got, c.out)
		}
	}
	if got := F32ToF16(math.Float32frombits(0xff800001)); got&0xfe00 != 0xfe00 {
		t.Errorf("F32ToF16(-sNaN) = %#04x, want a negative quiet NaN", got)
	}
}

func TestF32NarrowingRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 1 << 18
	src := make([]byte, 4*n)
	for i := range n {
		b := rng.Uint32()
		if i%2 == 1 {
			// Bias half of the inputs to exponents around the F16 range.
			b = b&0x807fffff | (uint32(127-30+rng.IntN(50)) << 23)
		}
		le.PutUint32(src[4*i:], b)
	}
	bf := make([]byte, 2*n)
	hf := make([]byte, 2*n)
	if err := Convert(bf, tensor.BF16, src, tensor.F32); err != nil {
		t.Fatal(err)
	}
	if err := Convert(hf, tensor.F16, src, tensor.F32); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		in := le.Uint32(src[4*i:])
		x := float64(math.Float32frombits(in))
		neg := in>>31 == 1
		checkNarrowed(t, "F32->BF16", uint64(in), neg, f16or32{fmtBF16, uint64(le.Uint16(bf[2*i:]))}, refRound(fmtBF16, x))
		checkNarrowed(t, "F32->F16", uint64(in), neg, f16or32{fmtF16, uint64(le.Uint16(hf[2*i:]))}, refRound(fmtF16, x))
	}
}

// refF8 decodes an FP8 byte from its bit layout.
func refF8(v uint8, e4m3 bool) float64 {
	sign := 1.0
	if v&0x80 != 0 {
		sign = -1
	}
	if e4m3 {
		e, m := int(v>>3&15), float64(v&7)
		switch {
		case e == 15 && m == 7:
			return math.NaN()
		case e == 0:
			return sign * m / 8 * math.Ldexp(1, -6)
		}
		return sign * (1 + m/8) * math.Ldexp(1, e-7)
	}
	e, m := int(v>>2&31), float64(v&3)
	switch {
	case e == 31 && m == 0:
		return sign * math.Inf(1)
	case e == 31:
		return math.NaN()
	case e == 0:
		return sign * m / 4 * math.Ldexp(1, -14)
	}
	return sign * (1 + m/4) * math.Ldexp(1, e-15)
}

func TestF8Exhaustive(t *testing.T) {
	src := make([]byte, 256)
	for i := range src {
		src[i] = byte(i)
	}
	if F8E4M3ToF32(0x7e) != 448 || F8E4M3ToF32(0xfe) != -448 || !math.IsNaN(float64(F8E4M3ToF32(0x7f))) {
		t.Fatal("E4M3 extremes wrong")
	}
	if !math.IsInf(float64(F8E5M2ToF32(0x7c)), 1) || F8E5M2ToF32(0x7b) != 57344 {
		t.Fatal("E5M2 extremes wrong")
	}
	for _, st := range []struct {
		dt   tensor.DType
		e4m3 bool
	}{{tensor.F8_E4M3, true}, {tensor.F8_E5M2, false}} {
		for _, dt := range []struct {
			dt tensor.DType
			f  floatFormat
		}{{tensor.F32, fmtF32}, {tensor.BF16, fmtBF16}, {tensor.F16, fmtF16}} {
			dst := make([]byte, 256*dt.dt.Size())
			if err := Convert(dst, dt.dt, src, st.dt); err != nil {
				t.Fatal(err)
			}
			for i := range 256 {
				ref := refF8(uint8(i), st.e4m3)
				var bits uint64
				if dt.dt == tensor.F32 {
					bits = uint64(le.Uint32(dst[4*i:]))
				} else {
					bits = uint64(le.Uint16(dst[2*i:]))
				}
				// Every FP8 value is exact in each target.
				checkNarrowed(t, st.dt.String()+"->"+dt.dt.String(), uint64(i), i>>7 == 1, f16or32{dt.f, bits}, ref)
			}
			// The scalar decoders agree with the slice loops.
			for i := range 256 {
				var f float32
				if st.e4m3 {
					f = F8E4M3ToF32(uint8(i))
				} else {
					f = F8E5M2ToF32(uint8(i))
				}
				if !sameValue(float64(f), refF8(uint8(i), st.e4m3)) {
					t.Fatalf("scalar %v decode of %#02x = %v", st.dt, i, f)
				}
			}
		}
	}
}

func TestConvertErrors(t *testing.T) {
	if err := Convert(make([]byte, 4), tensor.F32, make([]byte, 3), tensor.BF16); err == nil {
		t.Error("odd source length accepted")
	}
	if err := Convert(make([]byte, 6), tensor.F32, make([]byte, 4), tensor.BF16); err == nil {
		t.Error("wrong destination length accepted")
	}
	if err := Convert(make([]byte, 4), tensor.F8_E4M3, make([]byte, 4), tensor.F32); err == nil {
		t.Error("F32 -> F8 accepted")
	}
	if err := Convert(make([]byte, 8), tensor.F64, make([]byte, 4), tensor.F32); err == nil {
		t.Error("F32 -> F64 accepted")
	}
	// Identity conversions copy.
	src := []byte{1, 2, 3, 4}
	dst := make([]byte, 4)
	if err := Convert(dst, tensor.F32, src, tensor.F32); err != nil || string(dst) != string(src) {
		t.Errorf("identity convert: %v %v", dst, err)
	}
}

// Odd lengths exercise the tail loops after the unrolled ones.
func TestConvertTails(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 11 {
		for _, p := range [][2]tensor.DType{
			{tensor.F32, tensor.BF16}, {tensor.BF16, tensor.F32}, {tensor.F32, tensor.F16}, {tensor.F16, tensor.F32},
			{tensor.BF16, tensor.F16}, {tensor.F16, tensor.BF16}, {tensor.F8_E4M3, tensor.F32}, {tensor.F8_E5M2, tensor.BF16},
		} {
			src := make([]byte, n*p[0].Size())
			for i := range src {
				src[i] = byte(rng.Uint32())
			}
			dst := make([]byte, n*p[1].Size())
			if err := Convert(dst, p[1], src, p[0]); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				var want float32
				switch p[0] {
				case tensor.F32:
					want = math.Float32frombits(le.Uint32(src[4*i:]))
				case tensor.BF16:
					want = BF16ToF32(le.Uint16(src[2*i:]))
				case tensor.F16:
					want = F16ToF32(le.Uint16(src[2*i:]))
				case tensor.F8_E4M3:
					want = F8E4M3ToF32(src[i])
				case tensor.F8_E5M2:
					want = F8E5M2ToF32(src[i])
				}
				var got uint32
				var wantBits uint32
				switch p[1] {
				case tensor.F32:
					got, wantBits = le.Uint32(dst[4*i:]), math.Float32bits(want)
				case tensor.BF16:
					got, wantBits = uint32(le.Uint16(dst[2*i:])), uint32(F32ToBF16(want))
				case tensor.F16:
					got, wantBits = uint32(le.Uint16(dst[2*i:])), uint32(F32ToF16(want))
				}
				if got != wantBits {
					t.Fatalf("%v->%v n=%d element %d: %#x, want %#x", p[0], p[1], n, i, got, wantBits)
				}
			}
		}
	}
}
