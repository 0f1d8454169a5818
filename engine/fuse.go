package engine

import (
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// fusedStages runs stages si and si+1 as one backend call where the
// backend offers it (backend.MXFP4Transposer): a transpose of the last two
// axes followed by mxfp4_encode, or mxfp4 followed by such a transpose.
// The transposed intermediate, as large as the tensor, is never written, so
// the chunk holds no more than either stage alone. ok is false when the
// stages do not fit or the backend declines; nothing has been run then.
// failed is the stage an error belongs to (the encode, or the decode).
func fusedStages(be backend.Backend, stages []Stage, si int, vals [][]value, a *arena) (next [][]value, ok bool, failed int, err error) {
	fb, can := be.(backend.MXFP4Transposer)
	if !can || si+1 >= len(stages) {
		return nil, false, 0, nil
	}
	first, second := stages[si].Calls[0], stages[si+1].Calls[0]
	var encode bool
	switch {
	case first.Def == ir.OpTranspose && second.Def == ir.OpMXFP4Encode && len(stages[si].Calls) == 1:
		encode = true
	case first.Def == ir.OpMXFP4 && second.Def == ir.OpTranspose && len(stages[si+1].Calls) == 1:
	default:
		return nil, false, 0, nil
	}
	for _, bv := range vals {
		want := 2
		if encode {
			want = 1
		}
		if len(bv) != want {
			return nil, false, 0, nil
		}
	}
	for _, bv := range vals {
		types := typesOf(bv)
		mid, err := first.Def.Infer(first.Args, types)
		if err != nil {
			return nil, false, 0, nil
		}
		outTypes, err := second.Def.Infer(second.Args, mid)
		if err != nil {
			return nil, false, 0, nil
		}
		// The transposed tensor: its shape is [..., R, C] with the swap on
		// the last two axes.
		tr, trArgs := types[0], first.Args
		if !encode {
			tr, trArgs = mid[0], second.Args
		}
		r := len(tr.Shape)
		if r < 2 || min(trArgs[0].Int, trArgs[1].Int) != r-2 || max(trArgs[0].Int, trArgs[1].Int) != r-1 {
			return nil, false, 0, nil
		}
		batch := 1
		for _, d := range tr.Shape[:r-2] {
			batch *= d
		}
		rows, cols := tr.Shape[r-2], tr.Shape[r-1]
		outs := make([]value, len(outTypes))
		for i, t := range outTypes {
			n, err := t.Shape.ByteSize(t.DType)
			if err != nil {
				return nil, false, 0, nil
			}
			buf := a.alloc(n)
			outs[i] = value{t: tensor.Tensor{DType: t.DType, Shape: t.Shape, Data: buf.data}, owner: buf}
		}
		var done bool
		if encode {
			done, err = fb.EncodeMXFP4T(outs[0].t.Data, outs[1].t.Data, bv[0].t.Data, bv[0].t.DType, batch, rows, cols)
		} else {
			done, err = fb.DecodeMXFP4T(outs[0].t.Data, outs[0].t.DType, bv[0].t.Data, bv[1].t.Data, batch, rows, cols)
		}
		if !done || err != nil {
			for _, o := range outs {
				a.free(o.owner)
			}
			for _, bv := range next {
				for _, o := range bv {
					a.free(o.owner)
				}
			}
			if encode {
				si++
			}
			return nil, done, si, err
		}
		next = append(next, outs)
	}
	return next, true, 0, nil
}

// gatheredEncode runs an mxfp4_encode stage on lazy input where it lies
// (backend.MXFP4Gatherer), instead of gathering it into a buffer first:
// Fast-LLM -> GPT-OSS re-interleaves gate and up rows (split | zip) right
// before quantizing them. ok is false when the stage is not that or the
// backend declines; nothing has been run then.
func gatheredEncode(be backend.Backend, st Stage, vals [][]value, a *arena) (next [][]value, ok bool, err error) {
	ge, can := be.(backend.MXFP4Gatherer)
	c := st.Calls[0]
	if !can || c.Def != ir.OpMXFP4Encode || len(st.Calls) != 1 {
		return nil, false, nil
	}
	lazy := false
	for _, bv := range vals {
		if len(bv) != 1 {
			return nil, false, nil
		}
		lazy = lazy || len(bv[0].parts) > 1
	}
	if !lazy {
		return nil, false, nil
	}
	free := func(vs [][]value) {
		for _, bv := range vs {
			for _, o := range bv {
				a.free(o.owner)
			}
		}
	}
	for _, bv := range vals {
		v := bv[0]
		outTypes, err := c.Def.Infer(c.Args, []ir.TensorType{{DType: v.t.DType, Shape: v.t.Shape}})
		if err != nil || len(outTypes) != 2 {
			free(next)
			return nil, false, nil
		}
		outs := make([]value, 2)
		for i, t := range outTypes {
			n, err := t.Shape.ByteSize(t.DType)
			if err != nil {
				free(next)
				return nil, false, nil
			}
			buf := a.alloc(n)
			outs[i] = value{t: tensor.Tensor{DType: t.DType, Shape: t.Shape, Data: buf.data}, owner: buf}
		}
		parts := v.parts
		if parts == nil {
			parts = [][]byte{v.t.Data}
		}
		done, err := ge.EncodeMXFP4Parts(outs[0].t.Data, outs[1].t.Data, parts, v.t.DType)
		if !done || err != nil {
			free(append(next, outs))
			return nil, done, err
		}
		next = append(next, outs)
	}
	return next, true, nil
}
