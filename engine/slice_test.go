package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// TestSlice checks slice against the middle piece of a three-way split, on
// random shapes, axes and ranges (empty and full ones included), and that it
// allocates nothing but its output.
func TestSlice(t *testing.T) {
	be := backend.CPU(1)
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 300 {
		dt := []tensor.DType{tensor.U8, tensor.BF16, tensor.F32}[r.IntN(3)]
		s := randShape(r, 1+r.IntN(4))
		ax := r.IntN(len(s))
		start := r.IntN(s[ax] + 1)
		end := start + r.IntN(s[ax]-start+1)
		in := randValue(r, dt, s)
		c := ir.MustCall("slice", ir.ArgValue{Int: ax}, ir.ArgValue{Int: start}, ir.ArgValue{Int: end})
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			mem := newBudget(1 << 30)
			a := &arena{b: mem}
			out, err := runCall(be, c, []value{in}, a)
			if err != nil {
				t.Fatalf("%v on %v%v: %v", c, dt, s, err)
			}
			outer := outerCount(s, ax)
			row := int64(dt.Size()) * (tensor.Shape(s[ax+1:])).Numel()
			parts := [][]byte{make([]byte, outer*int64(start)*row), make([]byte, outer*int64(end-start)*row), make([]byte, outer*int64(s[ax]-end)*row)}
			if err := kernels.Split(parts, in.t.Data, s, dt.Size(), ax, []int{start, end - start, s[ax] - end}); err != nil {
				t.Fatal(err)
			}
			want := s.Clone()
			want[ax] = end - start
			if !out[0].t.Shape.Equal(want) || !bytes.Equal(out[0].t.Data, parts[1]) {
				t.Fatalf("%v on %v%v: got %v, want %v and the middle of a split", c, dt, s, out[0].t.Shape, want)
			}
			if got := mem.peakLive.Load(); got != int64(len(parts[1])) {
				t.Errorf("%v on %v%v: %d bytes allocated, want only the %d of the output", c, dt, s, got, len(parts[1]))
			}
		})
	}
}
