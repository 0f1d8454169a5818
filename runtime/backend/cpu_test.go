package backend

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// finiteF32 returns n random float32 values of varied magnitude, finite in
// F16 too.
func finiteF32(rng *rand.Rand, n int) []byte {
	b := make([]byte, 4*n)
	for i := range n {
		v := float32(rng.NormFloat64() * math.Ldexp(1, rng.IntN(24)-16))
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// backends under test: the parallel ones must match one worker (which is the
// plain kernel on the calling goroutine) byte for byte.
var parallelBackends = []Backend{CPU(0), CPU(3), CPU(8)}

func TestCPUName(t *testing.T) {
	b := CPU(0)
	if b.Name() != "cpu" || b.Close() != nil {
		t.Fatal("name or close")
	}
}

func TestCPUConvertMatchesKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 300_001 // large enough to be split, odd to leave ragged chunks
	types := []tensor.DType{tensor.BF16, tensor.F16, tensor.F32, tensor.F8_E4M3, tensor.F8_E5M2}
	for _, st := range types {
		src := randBytes(rng, n*st.Size())
		for _, dt := range types {
			if !kernels.ConvertSupported(dt, st) {
				if err := CPU(0).Convert(make([]byte, n*dt.Size()), dt, src, st); err == nil {
					t.Errorf("%v -> %v accepted", st, dt)
				}
				continue
			}
			want := make([]byte, n*dt.Size())
			if err := kernels.Convert(want, dt, src, st); err != nil {
				t.Fatal(err)
			}
			for _, b := range parallelBackends {
				got := make([]byte, len(want))
				if err := b.Convert(got, dt, src, st); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%v -> %v: parallel result differs from the kernel", st, dt)
				}
			}
		}
	}
	if err := CPU(2).Convert(make([]byte, 10), tensor.F32, make([]byte, 4), tensor.BF16); err == nil {
		t.Error("bad destination length accepted")
	}
}

func TestCPUTransposeMatchesKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	cases := []struct {
		shape tensor.Shape
		es    int
		a, b  int
	}{
		{tensor.Shape{513, 700}, 2, 0, 1},
		{tensor.Shape{4, 130, 260}, 4, 1, 2},
		{tensor.Shape{3, 70, 5, 90}, 1, 1, 3},
		{tensor.Shape{6, 50, 40, 3}, 8, 0, 2},
		{tensor.Shape{2, 3, 20000}, 2, 0, 1}, // long runs
		{tensor.Shape{1, 200000}, 2, 0, 1},   // a plain copy
	}
	for _, c := range cases {
		src := randBytes(rng, int(c.shape.Numel())*c.es)
		want := make([]byte, len(src))
		if err := kernels.Transpose(want, src, c.shape, c.es, c.a, c.b); err != nil {
			t.Fatal(err)
		}
		for _, b := range parallelBackends {
			got := make([]byte, len(src))
			if err := b.Transpose(got, src, c.shape, c.es, c.a, c.b); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("transpose %v: parallel result differs from the kernel", c.shape)
			}
		}
	}
	if err := CPU(2).Transpose(make([]byte, 12), make([]byte, 12), tensor.Shape{2, 3}, 2, 0, 5); err == nil {
		t.Error("bad axis accepted")
	}
}

func TestCPUMXFP4MatchesKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const groups = 10_007
	blocks := randBytes(rng, 16*groups)
	scales := randBytes(rng, groups)
	for _, dt := range []tensor.DType{tensor.BF16, tensor.F32} {
		want := make([]byte, 32*dt.Size()*groups)
		var err error
		if dt == tensor.BF16 {
			err = kernels.DecodeMXFP4ToBF16(want, blocks, scales)
		} else {
			err = kernels.DecodeMXFP4ToF32(want, blocks, scales)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range parallelBackends {
			got := make([]byte, len(want))
			if err := b.DecodeMXFP4(got, dt, blocks, scales); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("decode to %v: parallel result differs from the kernel", dt)
			}
		}
	}

	f32 := finiteF32(rng, 32*groups)
	bf := make([]byte, len(f32)/2)
	hf := make([]byte, len(f32)/2)
	kernels.ConvertF32ToBF16(bf, f32)
	kernels.ConvertF32ToF16(hf, f32)
	for _, c := range []struct {
		dt  tensor.DType
		src []byte
		f   func(blocks, scales, src []byte) error
	}{
		{tensor.F32, f32, kernels.EncodeMXFP4FromF32},
		{tensor.BF16, bf, kernels.EncodeMXFP4FromBF16},
		{tensor.F16, hf, kernels.EncodeMXFP4FromF16},
	} {
		wb, ws := make([]byte, 16*groups), make([]byte, groups)
		if err := c.f(wb, ws, c.src); err != nil {
			t.Fatal(err)
		}
		for _, b := range parallelBackends {
			gb, gs := make([]byte, 16*groups), make([]byte, groups)
			if err := b.EncodeMXFP4(gb, gs, c.src, c.dt); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gb, wb) || !bytes.Equal(gs, ws) {
				t.Fatalf("encode from %v: parallel result differs from the kernel", c.dt)
			}
		}
	}
	if err := CPU(2).DecodeMXFP4(make([]byte, 64), tensor.F16, make([]byte, 16), make([]byte, 1)); err == nil {
		t.Error("decode to F16 accepted")
	}
	if err := CPU(2).EncodeMXFP4(make([]byte, 16), make([]byte, 1), make([]byte, 32), tensor.F8_E4M3); err == nil {
		t.Error("encode from F8 accepted")
	}
}

func TestCPUEncodeNonFiniteFirstIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	const groups = 20_000
	src := finiteF32(rng, 32*groups)
	// Non-finite values spread over several chunks; the first is reported.
	bad := []int{32*groups - 1, 500_000, 123_457, 300_000}
	for _, i := range bad {
		binary.LittleEndian.PutUint32(src[4*i:], 0x7f800000)
	}
	binary.LittleEndian.PutUint32(src[4*123_457:], 0xffc00000)
	for _, b := range append(parallelBackends, CPU(1)) {
		err := b.EncodeMXFP4(make([]byte, 16*groups), make([]byte, groups), src, tensor.F32)
		var nf *NonFiniteError
		if !errors.As(err, &nf) || nf.Index != 123_457 || !math.IsNaN(float64(nf.Value)) {
			t.Fatalf("err = %v, want NaN at 123457", err)
		}
		// The alias keeps both names interchangeable.
		var kn *kernels.NonFiniteError
		if !errors.As(err, &kn) {
			t.Fatal("not a *kernels.NonFiniteError")
		}
	}
}
