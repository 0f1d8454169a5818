package engine

import (
	"fmt"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// value is a tensor flowing through a pipeline, with the buffer that owns its
// bytes (nil when the bytes are mapped from the input file).
type value struct {
	t     tensor.Tensor
	owner *buffer
	// parts, when not nil, holds a lazy value's bytes (t.Data is nil): see
	// lazy.go.
	parts [][]byte
}

// engineOp is how the executor runs one op of the ir table. The op's shape
// rule and the properties the planner goes by (Layout, Gather, ...) live in
// dsl/ir/ops.go; TestEngineOps checks that every op has an entry here with
// the pieces those properties call for.
type engineOp struct {
	// run applies one call to a tuple, into buffers from the arena or as a
	// view of its input. Every op but the gathers has one.
	run func(be backend.Backend, k opCall, a *arena) ([]value, error)
	// gather runs a gather op across all bindings of its variable at once.
	gather func(vals [][]value, a *arena) ([][]value, error)
	// lazy gives a layout call's outputs as byte ranges of its inputs (see
	// lazy.go), one list per output; exactly the Layout ops have one.
	lazy func(k opCall, src []pieces) []pieceList
}

// engineOps is the executor's op table, keyed by the ir table's ops.
var engineOps = map[*ir.OpDef]engineOp{
	ir.OpTranspose:   {run: runTranspose},
	ir.OpConcat:      {run: runConcat, lazy: lazyConcat},
	ir.OpSplit:       {run: runSplit, lazy: lazySplit},
	ir.OpZip:         {run: runZip, lazy: lazyZip},
	ir.OpUnzip:       {run: runUnzip, lazy: lazyUnzip},
	ir.OpSlice:       {run: runSlice, lazy: lazySlice},
	ir.OpFlatten:     {run: runView, lazy: lazySame},
	ir.OpUnflatten:   {run: runView, lazy: lazySame},
	ir.OpCast:        {run: runCast, lazy: lazySame},
	ir.OpMXFP4:       {run: runMXFP4},
	ir.OpMXFP4Encode: {run: runMXFP4Encode},
	ir.OpStack:       {gather: stackValues},
	ir.OpUnstack:     {gather: func(vals [][]value, _ *arena) ([][]value, error) { return unstackValues(vals), nil }},
}

// opCall is one call as a kernel or a lazy form sees it: its inputs and the
// output types the op's shape rule gives them.
type opCall struct {
	ir.Call
	in  []value
	out []ir.TensorType
}

func typesOf(vs []value) []ir.TensorType {
	types := make([]ir.TensorType, len(vs))
	for i, v := range vs {
		types[i] = ir.TensorType{DType: v.t.DType, Shape: v.t.Shape}
	}
	return types
}

func (k opCall) elem() int { return k.in[0].t.DType.Size() }

// alloc gives output i a buffer of its own.
func (k opCall) alloc(a *arena, i int) (value, error) {
	t := k.out[i]
	n, err := t.Shape.ByteSize(t.DType)
	if err != nil {
		return value{}, err
	}
	b := a.alloc(n)
	return value{t: tensor.Tensor{DType: t.DType, Shape: t.Shape, Data: b.data}, owner: b}, nil
}

// allocAll gives every output a buffer, and returns their bytes too.
func (k opCall) allocAll(a *arena) ([]value, [][]byte, error) {
	outs := make([]value, len(k.out))
	dsts := make([][]byte, len(k.out))
	for i := range k.out {
		var err error
		if outs[i], err = k.alloc(a, i); err != nil {
			return nil, nil, err
		}
		dsts[i] = outs[i].t.Data
	}
	return outs, dsts, nil
}

// inputs returns the bytes and shapes of the tuple.
func (k opCall) inputs() ([][]byte, []tensor.Shape) {
	srcs := make([][]byte, len(k.in))
	shapes := make([]tensor.Shape, len(k.in))
	for i, v := range k.in {
		srcs[i], shapes[i] = v.t.Data, v.t.Shape
	}
	return srcs, shapes
}

// runCall applies one call to a tuple. Views (flatten, unflatten, a cast to
// the same dtype) share their input's buffer.
func runCall(be backend.Backend, c ir.Call, in []value, a *arena) ([]value, error) {
	outTypes, err := c.Def.Infer(c.Args, typesOf(in))
	if err != nil {
		return nil, err
	}
	run := engineOps[c.Def].run
	if run == nil {
		return nil, fmt.Errorf("the executor has no kernel for op %s", c.Def.Name)
	}
	return run(be, opCall{Call: c, in: in, out: outTypes}, a)
}

// runView gives output 0 over input 0's bytes: a reshape keeps them as they
// are.
func runView(_ backend.Backend, k opCall, _ *arena) ([]value, error) {
	t := k.out[0]
	return []value{{t: tensor.Tensor{DType: t.DType, Shape: t.Shape, Data: k.in[0].t.Data}, owner: k.in[0].owner}}, nil
}

func runCast(be backend.Backend, k opCall, a *arena) ([]value, error) {
	in := k.in[0].t
	if in.DType == k.out[0].DType {
		return runView(be, k, a)
	}
	o, err := k.alloc(a, 0)
	if err != nil {
		return nil, err
	}
	return []value{o}, be.Convert(o.t.Data, o.t.DType, in.Data, in.DType)
}

func runTranspose(be backend.Backend, k opCall, a *arena) ([]value, error) {
	o, err := k.alloc(a, 0)
	if err != nil {
		return nil, err
	}
	return []value{o}, be.Transpose(o.t.Data, k.in[0].t.Data, k.in[0].t.Shape, k.elem(), k.Args[0].Int, k.Args[1].Int)
}

func runConcat(_ backend.Backend, k opCall, a *arena) ([]value, error) {
	o, err := k.alloc(a, 0)
	if err != nil {
		return nil, err
	}
	srcs, shapes := k.inputs()
	return []value{o}, kernels.Concat(o.t.Data, srcs, shapes, k.elem(), k.Args[0].Int)
}

func runZip(_ backend.Backend, k opCall, a *arena) ([]value, error) {
	o, err := k.alloc(a, 0)
	if err != nil {
		return nil, err
	}
	srcs, _ := k.inputs()
	return []value{o}, kernels.Zip(o.t.Data, srcs, o.t.Shape, k.elem(), k.Args[0].Int, len(k.in))
}

func runSplit(_ backend.Backend, k opCall, a *arena) ([]value, error) {
	outs, dsts, err := k.allocAll(a)
	if err != nil {
		return nil, err
	}
	sizes := make([]int, len(k.out))
	for i, t := range k.out {
		sizes[i] = t.Shape[k.Args[0].Int]
	}
	return outs, kernels.Split(dsts, k.in[0].t.Data, k.in[0].t.Shape, k.elem(), k.Args[0].Int, sizes)
}

func runUnzip(_ backend.Backend, k opCall, a *arena) ([]value, error) {
	outs, dsts, err := k.allocAll(a)
	if err != nil {
		return nil, err
	}
	return outs, kernels.Unzip(dsts, k.in[0].t.Data, k.in[0].t.Shape, k.elem(), k.Args[0].Int, k.Args[1].Int)
}

// runSlice keeps [start, end) of one axis, copying the kept rows straight
// into the output: no buffer beyond it, so a chunk holds no more than the
// planner reserved for it (in + out).
func runSlice(_ backend.Backend, k opCall, a *arena) ([]value, error) {
	out, err := k.alloc(a, 0)
	if err != nil {
		return nil, err
	}
	in := k.in[0]
	ax, start, end := k.Args[0].Int, k.Args[1].Int, k.Args[2].Int
	shape := in.t.Shape
	rowBytes := int64(in.t.DType.Size())
	for _, d := range shape[ax+1:] {
		rowBytes *= int64(d)
	}
	outer := outerCount(shape, ax)
	span, keep := int64(shape[ax])*rowBytes, int64(end-start)*rowBytes
	if int64(len(in.t.Data)) != outer*span || int64(len(out.t.Data)) != outer*keep {
		return nil, fmt.Errorf("slice: %d input and %d output bytes for shape %v, axis %d, [%d, %d)",
			len(in.t.Data), len(out.t.Data), shape, ax, start, end)
	}
	skip := int64(start) * rowBytes
	for o := range outer {
		copy(out.t.Data[o*keep:(o+1)*keep], in.t.Data[o*span+skip:o*span+skip+keep])
	}
	return []value{out}, nil
}

func outerCount(s tensor.Shape, ax int) int64 {
	n := int64(1)
	for _, d := range s[:ax] {
		n *= int64(d)
	}
	return n
}

func runMXFP4(be backend.Backend, k opCall, a *arena) ([]value, error) {
	o, err := k.alloc(a, 0)
	if err != nil {
		return nil, err
	}
	return []value{o}, be.DecodeMXFP4(o.t.Data, o.t.DType, k.in[0].t.Data, k.in[1].t.Data)
}

func runMXFP4Encode(be backend.Backend, k opCall, a *arena) ([]value, error) {
	outs, _, err := k.allocAll(a)
	if err != nil {
		return nil, err
	}
	return outs, be.EncodeMXFP4(outs[0].t.Data, outs[1].t.Data, k.in[0].t.Data, k.in[0].t.DType)
}

// stackValues joins the bindings of each tuple element along a new axis 0.
func stackValues(vals [][]value, a *arena) ([][]value, error) {
	out := make([]value, len(vals[0]))
	for i := range out {
		first := vals[0][i].t
		size := int64(len(first.Data))
		buf := a.alloc(size * int64(len(vals)))
		for b, bv := range vals {
			if !bv[i].t.Shape.Equal(first.Shape) {
				return nil, fmt.Errorf("stack: binding %d has shape %v, binding 0 %v", b, bv[i].t.Shape, first.Shape)
			}
			copy(buf.data[int64(b)*size:], bv[i].t.Data)
		}
		shape := append(tensor.Shape{len(vals)}, first.Shape...)
		out[i] = value{t: tensor.Tensor{DType: first.DType, Shape: shape, Data: buf.data}, owner: buf}
	}
	return [][]value{out}, nil
}

// unstackValues cuts axis 0 of each tuple element into one binding per index
// (views, no copy).
func unstackValues(vals [][]value) [][]value {
	in := vals[0]
	n := in[0].t.Shape[0]
	out := make([][]value, n)
	for b := range out {
		for _, v := range in {
			size := len(v.t.Data) / n
			out[b] = append(out[b], value{t: tensor.Tensor{DType: v.t.DType, Shape: v.t.Shape[1:].Clone(),
				Data: v.t.Data[b*size : (b+1)*size]}, owner: v.owner})
		}
	}
	return out
}

// The lazy forms: each returns, for every output, the byte ranges of the
// inputs that make it up, in order.

// lazySame is a view (flatten, unflatten, a cast to the dtype the tensor
// has): the output is the input's bytes.
func lazySame(_ opCall, src []pieces) []pieceList { return []pieceList{src[0].all()} }

func lazyConcat(k opCall, src []pieces) []pieceList {
	outs := make([]pieceList, 1)
	ax, elem := k.Args[0].Int, int64(k.elem())
	outer, _ := axisSplit(k.in[0].t.Shape, ax, elem)
	for o := range outer {
		for i, v := range k.in {
			_, rowBytes := axisSplit(v.t.Shape, ax, elem)
			r := int64(v.t.Shape[ax]) * rowBytes
			outs[0].add(src[i].slice(o*r, r))
		}
	}
	return outs
}

func lazySplit(k opCall, src []pieces) []pieceList {
	outs := make([]pieceList, len(k.out))
	ax, in := k.Args[0].Int, k.in[0].t.Shape
	outer, rowBytes := axisSplit(in, ax, int64(k.elem()))
	span := int64(in[ax]) * rowBytes
	start := int64(0)
	for i, t := range k.out {
		n := int64(t.Shape[ax]) * rowBytes
		for o := range outer {
			outs[i].add(src[0].slice(o*span+start, n))
		}
		start += n
	}
	return outs
}

func lazyUnzip(k opCall, src []pieces) []pieceList {
	outs := make([]pieceList, len(k.out))
	ax, n, in := k.Args[0].Int, int64(k.Args[1].Int), k.in[0].t.Shape
	outer, run := axisSplit(in, ax, int64(k.elem()))
	count := outer * int64(in[ax]) / n
	for i := range n {
		for x := range count {
			outs[i].add(src[0].slice((x*n+i)*run, run))
		}
	}
	return outs
}

func lazyZip(k opCall, src []pieces) []pieceList {
	outs := make([]pieceList, 1)
	ax, n, out := k.Args[0].Int, int64(len(k.in)), k.out[0].Shape
	outer, run := axisSplit(out, ax, int64(k.elem()))
	count := outer * int64(out[ax]) / n
	for x := range count {
		for i := range n {
			outs[0].add(src[i].slice(x*run, run))
		}
	}
	return outs
}

func lazySlice(k opCall, src []pieces) []pieceList {
	outs := make([]pieceList, 1)
	ax, start, end, in := k.Args[0].Int, int64(k.Args[1].Int), int64(k.Args[2].Int), k.in[0].t.Shape
	outer, rowBytes := axisSplit(in, ax, int64(k.elem()))
	span := int64(in[ax]) * rowBytes
	for o := range outer {
		outs[0].add(src[0].slice(o*span+start*rowBytes, (end-start)*rowBytes))
	}
	return outs
}
