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

// runCall applies one call to a tuple. Views (flatten, unflatten, a cast to
// the same dtype) share their input's buffer.
func runCall(be backend.Backend, c ir.Call, in []value, a *arena) ([]value, error) {
	types := make([]ir.TensorType, len(in))
	for i, v := range in {
		types[i] = ir.TensorType{DType: v.t.DType, Shape: v.t.Shape}
	}
	outTypes, err := c.Def.Infer(c.Args, types)
	if err != nil {
		return nil, err
	}
	newOut := func(i int) (value, error) {
		n, err := outTypes[i].Shape.ByteSize(outTypes[i].DType)
		if err != nil {
			return value{}, err
		}
		b := a.alloc(n)
		return value{t: tensor.Tensor{DType: outTypes[i].DType, Shape: outTypes[i].Shape, Data: b.data}, owner: b}, nil
	}
	view := func(v value, t ir.TensorType) []value {
		return []value{{t: tensor.Tensor{DType: t.DType, Shape: t.Shape, Data: v.t.Data}, owner: v.owner}}
	}
	elem := func() int { return in[0].t.DType.Size() }
	switch c.Def.Name {
	case "flatten", "unflatten":
		return view(in[0], outTypes[0]), nil
	case "cast":
		if in[0].t.DType == outTypes[0].DType {
			return view(in[0], outTypes[0]), nil
		}
		o, err := newOut(0)
		if err != nil {
			return nil, err
		}
		return []value{o}, be.Convert(o.t.Data, o.t.DType, in[0].t.Data, in[0].t.DType)
	case "transpose":
		o, err := newOut(0)
		if err != nil {
			return nil, err
		}
		return []value{o}, be.Transpose(o.t.Data, in[0].t.Data, in[0].t.Shape, elem(), c.Args[0].Int, c.Args[1].Int)
	case "concat", "zip":
		o, err := newOut(0)
		if err != nil {
			return nil, err
		}
		srcs := make([][]byte, len(in))
		shapes := make([]tensor.Shape, len(in))
		for i, v := range in {
			srcs[i], shapes[i] = v.t.Data, v.t.Shape
		}
		if c.Def.Name == "zip" {
			return []value{o}, kernels.Zip(o.t.Data, srcs, o.t.Shape, elem(), c.Args[0].Int, len(in))
		}
		return []value{o}, kernels.Concat(o.t.Data, srcs, shapes, elem(), c.Args[0].Int)
	case "split", "unzip", "slice":
		outs := make([]value, len(outTypes))
		dsts := make([][]byte, len(outTypes))
		for i := range outTypes {
			if outs[i], err = newOut(i); err != nil {
				return nil, err
			}
			dsts[i] = outs[i].t.Data
		}
		switch c.Def.Name {
		case "unzip":
			return outs, kernels.Unzip(dsts, in[0].t.Data, in[0].t.Shape, elem(), c.Args[0].Int, c.Args[1].Int)
		case "split":
			sizes := make([]int, len(outTypes))
			for i, t := range outTypes {
				sizes[i] = t.Shape[c.Args[0].Int]
			}
			return outs, kernels.Split(dsts, in[0].t.Data, in[0].t.Shape, elem(), c.Args[0].Int, sizes)
		}
		return runSlice(c, in[0], outs[0])
	case "mxfp4":
		o, err := newOut(0)
		if err != nil {
			return nil, err
		}
		return []value{o}, be.DecodeMXFP4(o.t.Data, o.t.DType, in[0].t.Data, in[1].t.Data)
	case "mxfp4_encode":
		b, err := newOut(0)
		if err != nil {
			return nil, err
		}
		s, err := newOut(1)
		if err != nil {
			return nil, err
		}
		return []value{b, s}, be.EncodeMXFP4(b.t.Data, s.t.Data, in[0].t.Data, in[0].t.DType)
	}
	return nil, fmt.Errorf("the executor has no kernel for op %s", c.Def.Name)
}

// runSlice keeps [start, end) of one axis, copying the kept rows straight
// into out: no buffer beyond the output, so a chunk holds no more than the
// planner reserved for it (in + out).
func runSlice(c ir.Call, in, out value) ([]value, error) {
	ax, start, end := c.Args[0].Int, c.Args[1].Int, c.Args[2].Int
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
