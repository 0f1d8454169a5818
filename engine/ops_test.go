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

func randShape(r *rand.Rand, rank int) tensor.Shape {
	s := make(tensor.Shape, rank)
	for i := range s {
		s[i] = 1 + r.IntN(5)
	}
	return s
}

func randValue(r *rand.Rand, dt tensor.DType, s tensor.Shape) value {
	n, _ := s.ByteSize(dt)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return value{t: tensor.Tensor{DType: dt, Shape: s.Clone(), Data: b}}
}

// randCase returns a random call with an inverse and a valid input tuple.
func randCase(r *rand.Rand, name string) (ir.Call, []value) {
	dts := []tensor.DType{tensor.U8, tensor.BF16, tensor.F32, tensor.I64}
	dt := dts[r.IntN(len(dts))]
	rank := 1 + r.IntN(4)
	s := randShape(r, rank)
	ax := r.IntN(rank)
	one := func() []value { return []value{randValue(r, dt, s)} }
	switch name {
	case "transpose":
		return ir.MustCall(name, ir.ArgValue{Int: ax}, ir.ArgValue{Int: r.IntN(rank)}), one()
	case "concat", "zip":
		n := 2 + r.IntN(2)
		var in []value
		for range n {
			s2 := s.Clone()
			if name == "concat" {
				s2[ax] = 1 + r.IntN(4)
			}
			in = append(in, randValue(r, dt, s2))
		}
		return ir.MustCall(name, ir.ArgValue{Int: ax}), in
	case "split":
		s[ax] = 2 + r.IntN(6)
		cut := 1 + r.IntN(s[ax]-1)
		return ir.MustCall(name, ir.ArgValue{Int: ax}, ir.ArgValue{Ints: []int{cut, -1}}), one()
	case "unzip":
		n := 2 + r.IntN(2)
		s[ax] = n * (1 + r.IntN(3))
		return ir.MustCall(name, ir.ArgValue{Int: ax}, ir.ArgValue{Int: n}), one()
	case "flatten":
		b := ax + r.IntN(rank-ax)
		return ir.MustCall(name, ir.ArgValue{Int: ax}, ir.ArgValue{Int: b}), one()
	case "unflatten":
		s[ax] = 6
		return ir.MustCall(name, ir.ArgValue{Int: ax}, ir.ArgValue{Ints: []int{2, -1}}), one()
	case "cast":
		// Widening casts are exact; narrowing ones lose precision by nature.
		// NaNs are excluded: narrowing quiets a signalling NaN on purpose,
		// which is the one bit pattern a widen-narrow trip may change.
		src := []tensor.DType{tensor.BF16, tensor.F16}[r.IntN(2)]
		v := randValue(r, src, s)
		expMask := uint16(0x7F80)
		if src == tensor.F16 {
			expMask = 0x7C00
		}
		for i := 0; i < len(v.t.Data); i += 2 {
			if h := uint16(v.t.Data[i]) | uint16(v.t.Data[i+1])<<8; h&expMask == expMask && h&^(expMask|0x8000) != 0 {
				v.t.Data[i+1] &^= 0x7F // clear the exponent's high bits: no longer NaN
			}
		}
		return ir.MustCall(name, ir.ArgValue{DType: tensor.F32}), []value{v}
	case "mxfp4":
		blocks := randValue(r, tensor.U8, append(s.Clone(), 16))
		scales := randValue(r, tensor.U8, s)
		for i := range scales.t.Data {
			scales.t.Data[i] = byte(110 + r.IntN(30))
		}
		// Give every group a code of magnitude 6 so that re-encoding
		// reproduces the bytes (formats.md, MXFP4).
		for g := 0; g < len(blocks.t.Data); g += 16 {
			blocks.t.Data[g] = blocks.t.Data[g]&0xF0 | 0x7
		}
		return ir.MustCall(name), []value{blocks, scales}
	}
	panic("no generator for " + name)
}

// TestEngineOps: every op of the ir table has its entry in the executor's,
// with the pieces its declared properties call for, and the executor's
// table holds nothing else.
func TestEngineOps(t *testing.T) {
	for _, d := range ir.Ops() {
		op, ok := engineOps[d]
		switch {
		case !ok:
			t.Errorf("op %s: no entry in engineOps", d.Name)
		case d.Gather != ir.GatherNone && (op.gather == nil || op.run != nil):
			t.Errorf("op %s: a gather op needs a gather function and no run", d.Name)
		case d.Gather == ir.GatherNone && (op.run == nil || op.gather != nil):
			t.Errorf("op %s: needs a run function (its kernel) and no gather", d.Name)
		case d.Layout != (op.lazy != nil):
			t.Errorf("op %s: Layout is %v in the op table, so it needs a lazy form exactly then (has one: %v)", d.Name, d.Layout, op.lazy != nil)
		}
	}
	for d := range engineOps {
		if ir.LookupOp(d.Name) != d {
			t.Errorf("engineOps has op %s, which is not in the ir table", d.Name)
		}
	}
}

// TestInverseProperty: for every op with an inverse, inverse(op(x)) == x bit
// for bit, on random shapes and data.
func TestInverseProperty(t *testing.T) {
	be := backend.CPU(1)
	r := rand.New(rand.NewPCG(1, 2))
	tested := 0
	for _, d := range ir.Ops() {
		if d.Inverse == nil || d.Gather != ir.GatherNone {
			continue // stack/unstack are the executor's own: TestStackUnstack
		}
		tested++
		for i := range 200 {
			c, in := randCase(r, d.Name)
			t.Run(fmt.Sprintf("%s/%d", d.Name, i), func(t *testing.T) {
				a := &arena{b: newBudget(1 << 30)}
				types := make([]ir.TensorType, len(in))
				for i, v := range in {
					types[i] = ir.TensorType{DType: v.t.DType, Shape: v.t.Shape}
				}
				st := Stage{Calls: []ir.Call{c}, PerElement: d.PerElement}
				out, err := runStage(be, st, in, a)
				if err != nil {
					t.Fatalf("%v on %v: %v", c, types, err)
				}
				inv, ok := ir.InverseCalls(c, types)
				if !ok {
					t.Fatalf("%s: no inverse", c)
				}
				back, err := runStage(be, Stage{Calls: inv, PerElement: d.PerElement}, out, a)
				if err != nil {
					t.Fatalf("inverse %v of %v: %v", inv, c, err)
				}
				if len(back) != len(in) {
					t.Fatalf("%v then %v: %d tensors, want %d", c, inv, len(back), len(in))
				}
				for i := range in {
					if back[i].t.DType != in[i].t.DType || !back[i].t.Shape.Equal(in[i].t.Shape) || !bytes.Equal(back[i].t.Data, in[i].t.Data) {
						t.Fatalf("%v then %v: element %d is %v%v, want %v%v (bytes equal: %v)", c, inv, i,
							back[i].t.DType, back[i].t.Shape, in[i].t.DType, in[i].t.Shape, bytes.Equal(back[i].t.Data, in[i].t.Data))
					}
				}
			})
		}
	}
	if tested < 8 {
		t.Fatalf("only %d ops tested", tested)
	}
}

// TestMXFP4ValueRoundTrip: on arbitrary blocks (no byte-exact guarantee) the
// inverse of decode gives back the same decoded values.
func TestMXFP4ValueRoundTrip(t *testing.T) {
	be := backend.CPU(1)
	r := rand.New(rand.NewPCG(3, 4))
	a := &arena{b: newBudget(1 << 30)}
	blocks := randValue(r, tensor.U8, tensor.Shape{8, 3, 16})
	scales := randValue(r, tensor.U8, tensor.Shape{8, 3})
	for i := range scales.t.Data {
		scales.t.Data[i] = byte(100 + r.IntN(50))
	}
	dec, err := runCall(be, ir.MustCall("mxfp4"), []value{blocks, scales}, a)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := runCall(be, ir.MustCall("mxfp4_encode"), dec, a)
	if err != nil {
		t.Fatal(err)
	}
	dec2, err := runCall(be, ir.MustCall("mxfp4"), enc, a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dec[0].t.Data, dec2[0].t.Data) {
		t.Fatal("decode(encode(decode(x))) != decode(x)")
	}
}

func TestStackUnstack(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	a := &arena{b: newBudget(1 << 30)}
	var bindings [][]value
	for range 3 {
		bindings = append(bindings, []value{randValue(r, tensor.BF16, tensor.Shape{2, 5}), randValue(r, tensor.U8, tensor.Shape{4})})
	}
	st, err := stackValues(bindings, a)
	if err != nil {
		t.Fatal(err)
	}
	if got := st[0][0].t.Shape; !got.Equal(tensor.Shape{3, 2, 5}) {
		t.Fatalf("stacked shape %v", got)
	}
	back := unstackValues(st)
	for b := range bindings {
		for i := range bindings[b] {
			if !bytes.Equal(back[b][i].t.Data, bindings[b][i].t.Data) || !back[b][i].t.Shape.Equal(bindings[b][i].t.Shape) {
				t.Fatalf("binding %d element %d differs after stack/unstack", b, i)
			}
		}
	}
}
