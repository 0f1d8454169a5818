package backend

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// TestMXFP4TransposedMatchesTwoSteps: the fused encode of a transpose and
// decode into a transpose give the bytes of the two separate steps, for
// shapes with ragged edges (columns or rows not a multiple of 4), several
// matrices, extreme and NaN scales, and values that send some groups to
// the reference path.
func TestMXFP4TransposedMatchesTwoSteps(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, sh := range [][3]int{{1, 32, 4}, {2, 64, 7}, {3, 96, 33}, {1, 32, 1}, {2, 160, 130}, {2, 6, 64}, {1, 8, 96}, {3, 5, 32}, {2, 256, 288}} {
		batch, rows, cols := sh[0], sh[1], sh[2]
		name := fmt.Sprint(sh)
		groups := batch * rows * cols / 32
		if rows%32 == 0 {
			encodeT(t, rng, name, batch, rows, cols)
		}
		// Decode: blocks of [batch, rows, cols/32] groups, random scales
		// including 0, 1, 253..255.
		if cols%32 != 0 {
			continue
		}
		blocks := randBytes(rng, 16*groups)
		scales := make([]byte, groups)
		for i := range scales {
			scales[i] = byte(118 + rng.IntN(7))
			if rng.IntN(10) == 0 {
				scales[i] = []byte{0, 1, 2, 252, 253, 254, 255}[rng.IntN(7)]
			}
		}
		dec := make([]byte, 2*batch*rows*cols)
		if err := kernels.DecodeMXFP4ToBF16(dec, blocks, scales); err != nil {
			t.Fatal(err)
		}
		want := make([]byte, len(dec))
		if err := kernels.Transpose(want, dec, tensor.Shape{batch, rows, cols}, 2, 1, 2); err != nil {
			t.Fatal(err)
		}
		for _, be := range append(parallelBackends, CPU(1)) {
			got := make([]byte, len(want))
			ok, err := be.(MXFP4Transposer).DecodeMXFP4T(got, tensor.BF16, blocks, scales, batch, rows, cols)
			if !ok || err != nil {
				t.Fatalf("%s: decode: ok %v, %v", name, ok, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: decode into the transpose differs from decode then transpose", name)
			}
		}
	}
}

// encodeT checks EncodeMXFP4T on a random [batch, rows, cols] BF16 tensor
// against Transpose then EncodeMXFP4.
func encodeT(t *testing.T, rng *rand.Rand, name string, batch, rows, cols int) {
	t.Helper()
	f32 := finiteF32(rng, batch*rows*cols)
	src := make([]byte, len(f32)/2)
	kernels.ConvertF32ToBF16(src, f32)
	// Some whole groups (32 rows of a column) of tiny values: tiny scales,
	// which go to the reference path.
	for range 1 + batch*rows*cols/200 {
		b, g, c := rng.IntN(batch), rng.IntN(rows/32), rng.IntN(cols)
		top := []int{0x100, 0x1c0, 0x240, 0x300}[rng.IntN(4)] // scales 0 to 3
		for i := range 32 {
			le.PutUint16(src[2*((b*rows+32*g+i)*cols+c):], uint16(rng.IntN(top))|uint16(rng.IntN(2))<<15)
		}
	}
	tr := make([]byte, len(src))
	if err := kernels.Transpose(tr, src, tensor.Shape{batch, rows, cols}, 2, 1, 2); err != nil {
		t.Fatal(err)
	}
	groups := batch * rows * cols / 32
	wb, ws := make([]byte, 16*groups), make([]byte, groups)
	if err := kernels.EncodeMXFP4FromBF16(wb, ws, tr); err != nil {
		t.Fatal(err)
	}
	for _, be := range append(parallelBackends, CPU(1)) {
		gb, gs := make([]byte, 16*groups), make([]byte, groups)
		ok, err := be.(MXFP4Transposer).EncodeMXFP4T(gb, gs, src, tensor.BF16, batch, rows, cols)
		if !ok || err != nil {
			t.Fatalf("%s: encode: ok %v, %v", name, ok, err)
		}
		if !bytes.Equal(gb, wb) || !bytes.Equal(gs, ws) {
			t.Fatalf("%s: encode of the transpose differs from transpose then encode", name)
		}
	}
}

// TestMXFP4TransposedCases: other dtypes are declined, bad lengths refused,
// and a non-finite input names the first bad element in transposed order.
func TestMXFP4TransposedCases(t *testing.T) {
	be := CPU(3).(MXFP4Transposer)
	if ok, _ := be.EncodeMXFP4T(nil, nil, nil, tensor.F32, 1, 32, 1); ok {
		t.Error("F32 encode of a transpose accepted")
	}
	if ok, _ := be.DecodeMXFP4T(nil, tensor.F32, nil, nil, 1, 1, 32); ok {
		t.Error("F32 decode to a transpose accepted")
	}
	if _, err := be.EncodeMXFP4T(make([]byte, 16), make([]byte, 1), make([]byte, 62), tensor.BF16, 1, 32, 1); err == nil {
		t.Error("short source accepted")
	}
	if _, err := be.EncodeMXFP4T(make([]byte, 16), make([]byte, 1), make([]byte, 64), tensor.BF16, 1, 16, 2); err == nil {
		t.Error("rows not a multiple of 32 accepted")
	}
	// [2, 64, 40]: NaNs at (b=1, r=40, c=3) and (b=1, r=3, c=9) and
	// (b=0, r=63, c=39); transposed indexes (b*40+c)*64+r.
	const batch, rows, cols = 2, 64, 40
	src := make([]byte, 2*batch*rows*cols)
	for i := range batch * rows * cols {
		le.PutUint16(src[2*i:], 0x3f80)
	}
	put := func(b, r, c int) { le.PutUint16(src[2*((b*rows+r)*cols+c):], 0x7fc0) }
	put(1, 40, 3)
	put(1, 3, 9)
	put(0, 63, 39)
	groups := batch * rows * cols / 32
	_, err := be.EncodeMXFP4T(make([]byte, 16*groups), make([]byte, groups), src, tensor.BF16, batch, rows, cols)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Index != (0*40+39)*64+63 {
		t.Fatalf("err = %v, want the NaN at transposed index %d", err, 39*64+63)
	}
}

// BenchmarkMXFP4Transposed times the fused kernels against the two steps
// on one worker, for one GPT-OSS expert's down projection (2880 x 2880).
func BenchmarkMXFP4Transposed(b *testing.B) {
	const rows, cols = 2880, 2880
	rng := rand.New(rand.NewPCG(9, 9))
	groups := rows * cols / 32
	blocks := randBytes(rng, 16*groups)
	scales := make([]byte, groups)
	for i := range scales {
		scales[i] = byte(118 + rng.IntN(7))
	}
	vals := make([]byte, 2*rows*cols)
	kernels.ConvertF32ToBF16(vals, finiteF32(rng, rows*cols))
	tmp := make([]byte, len(vals))
	be := CPU(1)
	ft := be.(MXFP4Transposer)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"decode/two-steps", func() {
			be.DecodeMXFP4(tmp, tensor.BF16, blocks, scales)
			be.Transpose(vals, tmp, tensor.Shape{rows, cols}, 2, 0, 1)
		}},
		{"decode/fused", func() { ft.DecodeMXFP4T(vals, tensor.BF16, blocks, scales, 1, rows, cols) }},
		{"encode/two-steps", func() {
			be.Transpose(tmp, vals, tensor.Shape{rows, cols}, 2, 0, 1)
			be.EncodeMXFP4(blocks, scales, tmp, tensor.BF16)
		}},
		{"encode/fused", func() { ft.EncodeMXFP4T(blocks, scales, vals, tensor.BF16, 1, rows, cols) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(vals)))
			for range b.N {
				c.f()
			}
		})
	}
}

// TestEncodeMXFP4Parts: encoding pieces gives the bytes of encoding them
// gathered, and a NaN is placed in the gathered order.
func TestEncodeMXFP4Parts(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	f32 := finiteF32(rng, 32*3000)
	src := make([]byte, len(f32)/2)
	kernels.ConvertF32ToBF16(src, f32)
	var parts [][]byte
	for x := 0; x < len(src); {
		n := min(len(src)-x, 64*(1+rng.IntN(90)))
		parts = append(parts, src[x:x+n])
		x += n
	}
	wb, ws := make([]byte, len(src)/4), make([]byte, len(src)/64)
	if err := kernels.EncodeMXFP4FromBF16(wb, ws, src); err != nil {
		t.Fatal(err)
	}
	for _, be := range append(parallelBackends, CPU(1)) {
		gb, gs := make([]byte, len(wb)), make([]byte, len(ws))
		if ok, err := be.(MXFP4Gatherer).EncodeMXFP4Parts(gb, gs, parts, tensor.BF16); !ok || err != nil {
			t.Fatalf("ok %v, %v", ok, err)
		}
		if !bytes.Equal(gb, wb) || !bytes.Equal(gs, ws) {
			t.Fatal("encoding the pieces differs from encoding them gathered")
		}
	}
	be := CPU(3).(MXFP4Gatherer)
	if ok, _ := be.EncodeMXFP4Parts(wb, ws, parts, tensor.F32); ok {
		t.Error("F32 pieces accepted")
	}
	if _, err := be.EncodeMXFP4Parts(wb, ws, [][]byte{src[:62], src[62:]}, tensor.BF16); err == nil {
		t.Error("a piece that splits a group accepted")
	}
	le.PutUint16(src[2*70000:], 0x7fc0)
	le.PutUint16(src[2*90000:], 0x7f80)
	var nf *NonFiniteError
	if _, err := be.EncodeMXFP4Parts(wb, ws, parts, tensor.BF16); !errors.As(err, &nf) || nf.Index != 70000 {
		t.Errorf("err = %v, want a NaN at 70000", err)
	}
}
