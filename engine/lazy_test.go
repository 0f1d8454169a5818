package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

func layoutOp(name string, args ...ir.ArgValue) ir.Call {
	return ir.Call{Def: ir.LookupOp(name), Args: args}
}

func intArgs(v ...int) []ir.ArgValue {
	out := make([]ir.ArgValue, len(v))
	for i, x := range v {
		out[i] = ir.ArgValue{Int: x}
	}
	return out
}

// TestLazyMatchesKernels: every layout op evaluated on byte ranges, then
// materialized, gives the bytes the kernels give, for runs long enough to
// defer; finer layouts are declined.
func TestLazyMatchesKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	be := backend.CPU(1)
	cases := []struct {
		c      ir.Call
		shapes []tensor.Shape
		lazy   bool // deferred (else declined as too fine)
	}{
		{layoutOp("concat", intArgs(0)...), []tensor.Shape{{3, 256}, {5, 256}}, true},
		{layoutOp("concat", intArgs(1)...), []tensor.Shape{{4, 2, 300}, {4, 3, 300}}, true},
		{layoutOp("concat", intArgs(1)...), []tensor.Shape{{64, 2}, {64, 3}}, false},
		{layoutOp("split", ir.ArgValue{Int: 1}, ir.ArgValue{Ints: []int{2, -1}}), []tensor.Shape{{3, 7, 512}}, true},
		{layoutOp("unzip", intArgs(1, 2)...), []tensor.Shape{{4, 10, 256}}, true},
		{layoutOp("unzip", intArgs(0, 3)...), []tensor.Shape{{9, 1000}}, true},
		{layoutOp("unzip", intArgs(1, 2)...), []tensor.Shape{{4, 64}}, false},
		{layoutOp("zip", intArgs(1)...), []tensor.Shape{{4, 5, 256}, {4, 5, 256}}, true},
		{layoutOp("slice", intArgs(1, 2, 5)...), []tensor.Shape{{3, 8, 300}}, true},
		{layoutOp("flatten", intArgs(0, 1)...), []tensor.Shape{{3, 4, 5}}, true},
		{layoutOp("unflatten", ir.ArgValue{Int: 0}, ir.ArgValue{Ints: []int{3, -1}}), []tensor.Shape{{12, 5}}, true},
		{layoutOp("cast", ir.ArgValue{DType: tensor.BF16}), []tensor.Shape{{3, 5}}, true},
	}
	tested := map[*ir.OpDef]bool{}
	for _, tc := range cases {
		tested[tc.c.Def] = tested[tc.c.Def] || tc.lazy
	}
	for _, d := range ir.Ops() {
		if d.Layout && !tested[d] {
			t.Errorf("layout op %s has no deferred case here: its lazy form is untested", d.Name)
		}
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%v%v", tc.c, tc.shapes)
		var in []value
		for _, s := range tc.shapes {
			in = append(in, randValue(rng, tensor.BF16, s))
		}
		a := &arena{b: newBudget(1 << 30)}
		want, err := runCall(be, tc.c, in, a)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !isLayoutCall(tc.c, in) {
			t.Fatalf("%s: not a layout call", name)
		}
		got, ok := lazyCall(tc.c, in)
		if ok != tc.lazy {
			t.Fatalf("%s: deferred %v, want %v", name, ok, tc.lazy)
		}
		if !ok {
			continue
		}
		got = materialize([][]value{got}, a)[0]
		if len(got) != len(want) {
			t.Fatalf("%s: %d outputs, want %d", name, len(got), len(want))
		}
		for i := range want {
			if !got[i].t.Shape.Equal(want[i].t.Shape) || got[i].t.DType != want[i].t.DType || !bytes.Equal(got[i].t.Data, want[i].t.Data) {
				t.Errorf("%s: output %d differs from the kernel's", name, i)
			}
		}
	}
	if isLayoutCall(layoutOp("cast", ir.ArgValue{DType: tensor.F32}), []value{randValue(rng, tensor.BF16, tensor.Shape{2})}) {
		t.Error("a widening cast counted as a layout")
	}
}

// TestLazyStages: layout runs are deferred at the start and the end of a
// pipeline only, and the deferred result of a run (unzip | concat, as
// GPT-OSS gate_up) is the eager one.
func TestLazyStages(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	st := func(c ir.Call) Stage { return Stage{Calls: []ir.Call{c}} }
	transpose := st(layoutOp("transpose", intArgs(0, 1)...))
	layout := []Stage{st(layoutOp("unzip", intArgs(1, 2)...)), st(layoutOp("concat", intArgs(1)...)), st(layoutOp("flatten", intArgs(0, 1)...))}
	in := [][]value{{randValue(rng, tensor.BF16, tensor.Shape{3, 8, 400})}}

	// Trailing: stages 1.. after a kernel.
	stages := append([]Stage{transpose}, layout...)
	if _, _, ok := lazyStages(stages, 0, in); ok {
		t.Error("a kernel stage was deferred")
	}
	end, got, ok := lazyStages(stages, 1, in)
	if !ok || end != len(stages) {
		t.Fatalf("trailing run: ok %v, end %d", ok, end)
	}
	a := &arena{b: newBudget(1 << 30)}
	want := in[0]
	for _, s := range layout {
		var err error
		if want, err = runStage(backend.CPU(1), s, want, a); err != nil {
			t.Fatal(err)
		}
	}
	if m := materialize(got, a); !bytes.Equal(m[0][0].t.Data, want[0].t.Data) || !m[0][0].t.Shape.Equal(want[0].t.Shape) {
		t.Error("deferred unzip | concat | flatten differs from the eager result")
	}
	// Leading: stages 0..k-1 before a kernel.
	stages = append(append([]Stage{}, layout...), transpose)
	if end, _, ok := lazyStages(stages, 0, in); !ok || end != len(layout) {
		t.Errorf("leading run: ok %v, end %d", ok, end)
	}
	// In the middle: not deferred.
	stages = append(append([]Stage{transpose}, layout...), transpose)
	if _, _, ok := lazyStages(stages, 1, in); ok {
		t.Error("a run between kernels was deferred")
	}
}
