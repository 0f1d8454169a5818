// Package backendtest holds the conformance checks every backend must pass:
// each runs one transform on the backend under test and on a reference
// (the CPU backend) and requires identical bytes, and identical errors for
// the encoder's non-finite inputs and for invalid arguments. A new backend's
// tests call [Convert], [DecodeMXFP4], [EncodeMXFP4] and [Transpose] (or
// [All]) against backend.CPU.
package backendtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

var le = binary.LittleEndian

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// RequireSame fails t unless got and want are equal, naming the first
// differing element (elem bytes each) and how many differ.
func RequireSame(t testing.TB, what string, got, want []byte, elem int) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	i := firstDiff(got, want) / elem * elem
	n := 0
	for j := 0; j < len(got); j += elem {
		if !bytes.Equal(got[j:j+elem], want[j:j+elem]) {
			n++
		}
	}
	t.Fatalf("%s: %d of %d elements differ; first at element %d: got % x, want % x",
		what, n, len(got)/elem, i/elem, got[i:i+elem], want[i:i+elem])
}

// all16 is every 16-bit pattern, little endian.
func all16() []byte {
	b := make([]byte, 2<<16)
	for i := range 1 << 16 {
		le.PutUint16(b[2*i:], uint16(i))
	}
	return b
}

func all8() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// f32Cases are float32 patterns around every rounding boundary of BF16 and
// F16 (each half/bfloat pattern widened, plus and minus the half-way point
// and one ulp around it), the specials, and n random patterns.
func f32Cases(r *rand.Rand, n int) []byte {
	var out []uint32
	for h := range 1 << 16 {
		// BF16 boundaries: h<<16 and the points half an ulp above.
		b := uint32(h) << 16
		out = append(out, b, b|0x8000, b|0x8001, b|0x7fff)
		// F16 boundaries: the widened value and its half-ulp neighbours.
		f := math.Float32bits(float32FromF16(uint16(h)))
		out = append(out, f, f+0x1000, f+0xfff, f+0x1001)
	}
	out = append(out, 0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001,
		0x7fbfffff, 0x7f7fffff, 0xff7fffff, 0x00000001, 0x807fffff, 0x33000000, 0x33000001, 0x337fffff,
		0x387fc000, 0x477fe000, 0x477fefff, 0x477ff000)
	for range n {
		out = append(out, r.Uint32())
	}
	b := make([]byte, 4*len(out))
	for i, v := range out {
		le.PutUint32(b[4*i:], v)
	}
	return b
}

// float32FromF16 widens without quieting (test input generation only).
func float32FromF16(h uint16) float32 {
	sign := float32(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	e, m := int(h>>10)&0x1f, float64(h&0x3ff)
	switch e {
	case 0:
		return sign * float32(math.Ldexp(m, -24))
	case 0x1f:
		if m == 0 {
			return sign * float32(math.Inf(1))
		}
		return float32(math.NaN())
	}
	return sign * float32(math.Ldexp(1+m/1024, e-15))
}

var floatTypes = []tensor.DType{tensor.BF16, tensor.F16, tensor.F32}

// Convert checks every dtype pair, on exhaustive 16-bit and 8-bit sources and on
// rounding-boundary and random F32 sources; extra random elements are added
// to reach at least minElems per pair.
func Convert(t *testing.T, be, ref backend.Backend, r *rand.Rand, nRandom int) {
	t.Helper()
	sources := map[tensor.DType][]byte{
		tensor.BF16:    all16(),
		tensor.F16:     all16(),
		tensor.F32:     f32Cases(r, nRandom),
		tensor.F8_E4M3: all8(),
		tensor.F8_E5M2: all8(),
	}
	for _, st := range []tensor.DType{tensor.BF16, tensor.F16, tensor.F32, tensor.F8_E4M3, tensor.F8_E5M2} {
		src := sources[st]
		for _, dt := range floatTypes {
			n := len(src) / st.Size()
			got := make([]byte, n*dt.Size())
			want := make([]byte, n*dt.Size())
			for i := range got {
				got[i] = 0xa5 // catch unwritten bytes
			}
			what := fmt.Sprintf("convert %v -> %v (%d elements)", st, dt, n)
			if err := ref.Convert(want, dt, src, st); err != nil {
				t.Fatalf("%s: reference: %v", what, err)
			}
			if err := be.Convert(got, dt, src, st); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			RequireSame(t, what, got, want, dt.Size())
		}
	}
	// Lengths and unsupported pairs are errors, as on the CPU.
	if err := be.Convert(make([]byte, 3), tensor.F32, make([]byte, 2), tensor.BF16); err == nil {
		t.Error("convert with a short destination: no error")
	}
	if err := be.Convert(make([]byte, 2), tensor.F8_E4M3, make([]byte, 4), tensor.F32); err == nil {
		t.Error("convert to F8_E4M3: no error")
	}
	if err := be.Convert(nil, tensor.F32, nil, tensor.BF16); err != nil {
		t.Errorf("empty convert: %v", err)
	}
}

// mxfp4Exhaustive is every block byte under every scale: group 16*s+j has
// scale s and block bytes 16j .. 16j+15.
func mxfp4Exhaustive() (blocks, scales []byte) {
	for s := range 256 {
		for j := range 16 {
			scales = append(scales, byte(s))
			for k := range 16 {
				blocks = append(blocks, byte(16*j+k))
			}
		}
	}
	return
}

// DecodeMXFP4 checks the decode of every block byte under every scale, and
// of randomGroups random groups with realistic scales.
func DecodeMXFP4(t *testing.T, be, ref backend.Backend, r *rand.Rand, randomGroups int) {
	t.Helper()
	blocks, scales := mxfp4Exhaustive()
	rb := make([]byte, 16*randomGroups)
	rs := make([]byte, randomGroups)
	for i := range rb {
		rb[i] = byte(r.Uint32())
	}
	for i := range rs {
		rs[i] = byte(118 + r.IntN(20)) // the scales real checkpoints use
	}
	for _, c := range []struct {
		name           string
		blocks, scales []byte
	}{{"exhaustive", blocks, scales}, {"random", rb, rs}, {"one group", blocks[16*300 : 16*301], scales[300:301]}} {
		for _, dt := range []tensor.DType{tensor.BF16, tensor.F32} {
			g := len(c.scales)
			got := bytes.Repeat([]byte{0xa5}, 32*g*dt.Size())
			want := make([]byte, 32*g*dt.Size())
			what := fmt.Sprintf("mxfp4 decode %s -> %v (%d groups)", c.name, dt, g)
			if err := ref.DecodeMXFP4(want, dt, c.blocks, c.scales); err != nil {
				t.Fatalf("%s: reference: %v", what, err)
			}
			if err := be.DecodeMXFP4(got, dt, c.blocks, c.scales); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			RequireSame(t, what, got, want, dt.Size())
		}
	}
	if err := be.DecodeMXFP4(make([]byte, 64), tensor.F16, make([]byte, 16), make([]byte, 1)); err == nil {
		t.Error("decode to F16: no error")
	}
	if err := be.DecodeMXFP4(make([]byte, 64), tensor.BF16, make([]byte, 15), make([]byte, 1)); err == nil {
		t.Error("decode with 15 block bytes: no error")
	}
}

// EncodeInput returns groups of float32 values: hand-picked groups at the
// quantizer's edges, then random groups with random magnitudes.
func EncodeInput(r *rand.Rand, randomGroups int) []float32 {
	var v []float32
	group := func(f func(i int) float32) {
		for i := range 32 {
			v = append(v, f(i))
		}
	}
	negZero := float32(math.Copysign(0, -1))
	group(func(int) float32 { return 0 })
	group(func(int) float32 { return negZero })
	group(func(i int) float32 { return []float32{0, negZero}[i%2] })
	group(func(i int) float32 { return float32(i-16) * 0.25 })
	group(func(i int) float32 { return 6 * float32(i%3-1) })
	group(func(i int) float32 { return math.MaxFloat32 * float32(i%2*2-1) })
	group(func(i int) float32 { return math.Float32frombits(uint32(i + 1)) })                // subnormals
	group(func(i int) float32 { return math.Float32frombits(0x00800000 + uint32(i)) })       // smallest normals
	group(func(i int) float32 { return float32(math.Ldexp(1, -126-i%20)) * float32(i%3-1) }) // around 2^-126
	group(func(i int) float32 { return float32(math.Ldexp(6, 100)) * float32(i) / 31 })
	for _, a := range []float32{6, 6.0000005, 5.9999995, 3, 12, 0.75, 1.5, 7, 0.1} {
		group(func(i int) float32 {
			if i == 0 {
				return a
			}
			return a * float32(i) / 32 * float32(1-2*(i%2))
		})
	}
	// Values at the E2M1 rounding points for scale 1 (amax 6): 0.25, 0.75,
	// 1.25, 1.75, 2.5, 3.5, 5 and their neighbours.
	for _, p := range []float32{0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5} {
		group(func(i int) float32 {
			switch i {
			case 0:
				return 6
			case 1:
				return p
			case 2:
				return math.Nextafter32(p, 0)
			case 3:
				return math.Nextafter32(p, 10)
			case 4:
				return -p
			}
			return p * float32(i) / 31
		})
	}
	for range randomGroups {
		e := r.IntN(60) - 30
		group(func(int) float32 { return float32(math.Ldexp(r.NormFloat64(), e)) })
	}
	return v
}

// EncodeSource stores vals as t (F16 through the CPU conversion).
func EncodeSource(vals []float32, t tensor.DType) []byte {
	switch t {
	case tensor.F32:
		b := make([]byte, 4*len(vals))
		for i, f := range vals {
			le.PutUint32(b[4*i:], math.Float32bits(f))
		}
		return b
	case tensor.BF16:
		b := make([]byte, 2*len(vals))
		for i, f := range vals {
			le.PutUint16(b[2*i:], uint16(math.Float32bits(f)>>16))
		}
		return b
	default: // F16: through the reference-free path of a plain conversion
		b := make([]byte, 2*len(vals))
		src := EncodeSource(vals, tensor.F32)
		if err := backend.CPU(1).Convert(b, tensor.F16, src, tensor.F32); err != nil {
			panic(err)
		}
		return b
	}
}

// EncodeMXFP4 checks the encode of EncodeInput's groups from every float
// source type, and that the first non-finite input is reported alike.
func EncodeMXFP4(t *testing.T, be, ref backend.Backend, r *rand.Rand, randomGroups int) {
	t.Helper()
	vals := EncodeInput(r, randomGroups)
	for _, st := range floatTypes {
		v := vals
		if st == tensor.F16 {
			// Keep F16 sources finite: scale the out-of-range values down.
			v = make([]float32, len(vals))
			for i, f := range vals {
				if math.Abs(float64(f)) > 65504 {
					f = float32(math.Ldexp(float64(f), -113))
				}
				v[i] = f
			}
		}
		src := EncodeSource(v, st)
		g := len(vals) / 32
		what := fmt.Sprintf("mxfp4 encode %v (%d groups)", st, g)
		gb, gs := bytes.Repeat([]byte{0xa5}, 16*g), bytes.Repeat([]byte{0xa5}, g)
		wb, ws := make([]byte, 16*g), make([]byte, g)
		if err := ref.EncodeMXFP4(wb, ws, src, st); err != nil {
			t.Fatalf("%s: reference: %v", what, err)
		}
		if err := be.EncodeMXFP4(gb, gs, src, st); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		RequireSame(t, what+" scales", gs, ws, 1)
		RequireSame(t, what+" blocks", gb, wb, 1)

		// Non-finite inputs: the first one is reported, wherever it is.
		for _, c := range []struct {
			idx  []int
			bits uint64
		}{
			{[]int{37}, 0x7fc00000}, {[]int{37, 5}, 0xff800000}, {[]int{len(vals) - 1}, 0x7f800000},
			{[]int{len(vals) - 1, len(vals) / 2, len(vals)/2 + 1}, 0x7fa00001}, {[]int{0}, 0xffc00000},
		} {
			bad := bytes.Clone(src)
			for _, i := range c.idx {
				switch st {
				case tensor.F32:
					le.PutUint32(bad[4*i:], uint32(c.bits))
				case tensor.BF16:
					le.PutUint16(bad[2*i:], uint16(c.bits>>16))
				case tensor.F16:
					h := uint16(c.bits>>16)&0x8000 | 0x7c00
					if c.bits&0x7fffff != 0 {
						h |= 0x0201
					}
					le.PutUint16(bad[2*i:], h)
				}
			}
			werr := ref.EncodeMXFP4(make([]byte, 16*g), make([]byte, g), bad, st)
			gerr := be.EncodeMXFP4(make([]byte, 16*g), make([]byte, g), bad, st)
			var wnf, gnf *backend.NonFiniteError
			if !errors.As(werr, &wnf) {
				t.Fatalf("%s, non-finite at %v: reference gave %v", what, c.idx, werr)
			}
			if !errors.As(gerr, &gnf) {
				t.Fatalf("%s, non-finite at %v: got %v, want %v", what, c.idx, gerr, werr)
			}
			if gnf.Index != wnf.Index || math.Float32bits(gnf.Value) != math.Float32bits(wnf.Value) {
				t.Fatalf("%s, non-finite at %v: got index %d value %#x, want index %d value %#x", what, c.idx,
					gnf.Index, math.Float32bits(gnf.Value), wnf.Index, math.Float32bits(wnf.Value))
			}
		}
	}
	if err := be.EncodeMXFP4(make([]byte, 16), make([]byte, 1), make([]byte, 64), tensor.F8_E4M3); err == nil {
		t.Error("encode from F8_E4M3: no error")
	}
	if err := be.EncodeMXFP4(make([]byte, 16), make([]byte, 1), make([]byte, 62), tensor.BF16); err == nil {
		t.Error("encode from a short source: no error")
	}
}

// TransposeCase is one transpose; shapes are random unless listed.
type TransposeCase struct {
	Shape    tensor.Shape
	ElemSize int
	A, B     int // the axes swapped
}

// RandomTransposeCases returns hand-picked cases (every kernel path and
// edge) and n random ones of at most maxElems elements.
func RandomTransposeCases(r *rand.Rand, n, maxElems int) []TransposeCase {
	cases := []TransposeCase{
		{tensor.Shape{7, 5}, 2, 0, 1},
		{tensor.Shape{64, 96}, 2, 1, 0},
		{tensor.Shape{33, 65}, 1, 0, 1},
		{tensor.Shape{33, 65}, 8, 0, 1},
		{tensor.Shape{2, 3, 4, 5}, 4, 1, 3},
		{tensor.Shape{3, 1, 4, 1, 5}, 2, 1, 3},
		{tensor.Shape{1, 40, 3, 2}, 2, 0, 2}, // unit swapped axis across a non-unit middle
		{tensor.Shape{4, 6, 3}, 2, 0, 1},     // run of 6 bytes: generic kernel
		{tensor.Shape{5, 7, 8}, 2, 0, 1},     // run of 16 bytes: generic, 16-byte elements
		{tensor.Shape{5, 7, 3}, 1, 0, 1},     // run of 3 bytes: generic, 1-byte elements
		{tensor.Shape{6, 4}, 4, 1, 1},
		{tensor.Shape{0, 4}, 4, 0, 1},
		{tensor.Shape{}, 4, 0, 0},
	}
	for range n {
		rank := 2 + r.IntN(4)
		shape := make(tensor.Shape, rank)
		elems := 1
		for i := range shape {
			shape[i] = 1 + r.IntN(12)
			if r.IntN(4) == 0 {
				shape[i] = 1 + r.IntN(70)
			}
			elems *= shape[i]
		}
		if elems > maxElems {
			continue
		}
		cases = append(cases, TransposeCase{shape, []int{1, 2, 4, 8}[r.IntN(4)], r.IntN(rank), r.IntN(rank)})
	}
	return cases
}

// Transpose checks each case against the reference, and that invalid axes
// and element sizes are refused.
func Transpose(t *testing.T, be, ref backend.Backend, r *rand.Rand, cases []TransposeCase) {
	t.Helper()
	for _, c := range cases {
		if len(c.Shape) == 0 && c.A == 0 {
			// A scalar has no axes: both must reject it.
			if be.Transpose(make([]byte, 4), make([]byte, 4), c.Shape, c.ElemSize, 0, 0) == nil {
				t.Errorf("transpose of a scalar: no error")
			}
			continue
		}
		n := int(c.Shape.Numel()) * c.ElemSize
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		what := fmt.Sprintf("transpose shape %v elem %d axes %d,%d", c.Shape, c.ElemSize, c.A, c.B)
		want := make([]byte, n)
		got := bytes.Repeat([]byte{0xa5}, n)
		if err := ref.Transpose(want, src, c.Shape, c.ElemSize, c.A, c.B); err != nil {
			t.Fatalf("%s: reference: %v", what, err)
		}
		if err := be.Transpose(got, src, c.Shape, c.ElemSize, c.A, c.B); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		RequireSame(t, what, got, want, c.ElemSize)
	}
	if err := be.Transpose(make([]byte, 8), make([]byte, 8), tensor.Shape{2, 2}, 2, 0, 2); err == nil {
		t.Error("transpose with an axis out of range: no error")
	}
	if err := be.Transpose(make([]byte, 8), make([]byte, 8), tensor.Shape{2, 2}, 3, 0, 1); err == nil {
		t.Error("transpose with element size 3: no error")
	}
}

// All runs every check with small random sets, for backends whose tests
// should stay fast (an emulation, the CPU with other settings).
func All(t *testing.T, be, ref backend.Backend, seed uint64) {
	t.Run("convert", func(t *testing.T) { Convert(t, be, ref, rand.New(rand.NewPCG(seed, 1)), 4096) })
	t.Run("mxfp4", func(t *testing.T) {
		r := rand.New(rand.NewPCG(seed, 2))
		DecodeMXFP4(t, be, ref, r, 200)
		EncodeMXFP4(t, be, ref, r, 300)
	})
	t.Run("transpose", func(t *testing.T) {
		r := rand.New(rand.NewPCG(seed, 3))
		Transpose(t, be, ref, r, RandomTransposeCases(r, 200, 6000))
	})
}
