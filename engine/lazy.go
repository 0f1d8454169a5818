package engine

import (
	"slices"
	"unsafe"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Layout ops (concat, split, zip, unzip, slice, and the views) only move
// bytes around, in runs as long as everything after their axis. Run one at
// a time, each copies its whole input; but a run of them can be evaluated on
// the byte ranges alone, leaving a lazy value: the list of pieces of its
// input's memory that make up the result, in order. The executor does that
// for the layout stages that start a pipeline (their input is the mapped
// checkpoint, so nothing is held beside it) and for those that end it
// (their pieces go straight to the file in one gathered write). A lazy
// value feeding a kernel is copied into one buffer first: one copy where
// eager execution made one per stage, and none at all at the end. MXFP4
// decode followed by unzip | concat (GPT-OSS gate_up) thus writes the
// decoded rows from where decode put them, and a pure concat (Llama's
// key_value and layer_1) copies file to file.

// minPiece is the least average piece length worth deferring; layouts that
// cut finer (a BF16 bias de-interleaved element by element) run eagerly.
const minPiece = 512

// isLayoutCall reports whether c only rearranges the bytes of in. The types
// are built only for an op whose answer depends on them (a cast).
func isLayoutCall(c ir.Call, in []value) bool {
	return c.Def.Layout && (!c.Def.ChangesDType || c.IsLayout(typesOf(in)))
}

// lazyStages evaluates the layout stages from stages[si] on, lazily, when
// they start the pipeline or end it; it returns the index of the first
// stage it did not run and the lazy values, or ok false when there is
// nothing to defer there (a middle run, a gather, a layout too fine).
func lazyStages(stages []Stage, si int, vals [][]value) (end int, out [][]value, ok bool) {
	if si > 0 {
		// Only a run to the end can be deferred here: skip the evaluation
		// when some later stage is a kernel.
		for _, st := range stages[si:] {
			for _, c := range st.Calls {
				if !c.Def.Layout {
					return 0, nil, false
				}
			}
		}
	}
	end = si
	for ; end < len(stages); end++ {
		st := stages[end]
		if isGather(st.Calls[0]) || !slices.ContainsFunc(vals, func(bv []value) bool { return stageIsLayout(st, bv) }) {
			break
		}
		next := make([][]value, len(vals))
		for b, bv := range vals {
			if !stageIsLayout(st, bv) {
				return 0, nil, false
			}
			o, ok := lazyStage(st, bv)
			if !ok {
				return 0, nil, false
			}
			next[b] = o
		}
		vals = next
	}
	if end == si || (si > 0 && end < len(stages)) {
		return 0, nil, false
	}
	return end, vals, true
}

func stageIsLayout(st Stage, in []value) bool {
	if !st.PerElement {
		return isLayoutCall(st.Calls[0], in)
	}
	for i, v := range in {
		if !isLayoutCall(st.call(i), []value{v}) {
			return false
		}
	}
	return true
}

func lazyStage(st Stage, in []value) ([]value, bool) {
	if !st.PerElement {
		return lazyCall(st.Calls[0], in)
	}
	var out []value
	for i, v := range in {
		o, ok := lazyCall(st.call(i), []value{v})
		if !ok {
			return nil, false
		}
		out = append(out, o...)
	}
	return out, true
}

// lazyCall applies a layout call to the byte ranges of in, with the op's
// lazy form.
func lazyCall(c ir.Call, in []value) ([]value, bool) {
	lazy := engineOps[c.Def].lazy
	if lazy == nil {
		return nil, false
	}
	srcs := make([]pieces, len(in))
	for i, v := range in {
		srcs[i] = newPieces(v)
	}
	outTypes, err := c.Def.Infer(c.Args, typesOf(in))
	if err != nil {
		return nil, false
	}
	outs := lazy(opCall{Call: c, in: in, out: outTypes}, srcs)
	out := make([]value, len(outTypes))
	for i, t := range outTypes {
		size, err := t.Shape.ByteSize(t.DType)
		if err != nil || outs[i].n != size || (size > 0 && int64(len(outs[i].parts)) > 1+size/minPiece) {
			return nil, false
		}
		parts := outs[i].parts
		if parts == nil {
			parts = [][]byte{} // lazy, and empty
		}
		out[i] = value{t: tensor.Tensor{DType: t.DType, Shape: t.Shape}, parts: parts}
	}
	return out, true
}

// axisSplit returns the product of the dimensions before axis and the bytes
// of one step along it.
func axisSplit(s tensor.Shape, axis int, elem int64) (outer, rowBytes int64) {
	outer, rowBytes = 1, elem
	for i, d := range s {
		if i < axis {
			outer *= int64(d)
		} else if i > axis {
			rowBytes *= int64(d)
		}
	}
	return outer, rowBytes
}

// pieces is a value's bytes as a list with prefix offsets, for slicing.
type pieces struct {
	parts  [][]byte
	starts []int64 // starts[i]: offset of parts[i]
}

func newPieces(v value) pieces {
	parts := v.parts
	if parts == nil {
		parts = [][]byte{v.t.Data}
	}
	starts := make([]int64, len(parts))
	off := int64(0)
	for i, p := range parts {
		starts[i] = off
		off += int64(len(p))
	}
	return pieces{parts: parts, starts: starts}
}

func (p pieces) all() pieceList {
	var l pieceList
	for _, q := range p.parts {
		l.add(pieceList{parts: [][]byte{q}, n: int64(len(q))})
	}
	return l
}

// slice returns bytes [off, off+n).
func (p pieces) slice(off, n int64) pieceList {
	var l pieceList
	// Last part starting at or before off.
	lo, hi := 0, len(p.starts)
	for hi-lo > 1 {
		m := (lo + hi) / 2
		if p.starts[m] <= off {
			lo = m
		} else {
			hi = m
		}
	}
	for i := lo; n > 0 && i < len(p.parts); i++ {
		q := p.parts[i][off-p.starts[i]:]
		q = q[:min(int64(len(q)), n)]
		l.add(pieceList{parts: [][]byte{q}, n: int64(len(q))})
		off += int64(len(q))
		n -= int64(len(q))
	}
	return l
}

// pieceList is a lazy value's bytes under construction.
type pieceList struct {
	parts [][]byte
	n     int64
}

// add appends m, merging pieces that are adjacent in memory.
func (l *pieceList) add(m pieceList) {
	for _, q := range m.parts {
		if len(q) == 0 {
			continue
		}
		l.n += int64(len(q))
		if k := len(l.parts) - 1; k >= 0 {
			p := l.parts[k]
			if cap(p)-len(p) >= len(q) && unsafe.SliceData(p[len(p):cap(p)]) == unsafe.SliceData(q) {
				l.parts[k] = p[:len(p)+len(q)]
				continue
			}
		}
		l.parts = append(l.parts, q)
	}
}

// materialize copies every lazy value of vals into a buffer of its own; a
// value in one piece (a view of the mapped input: only the runs that start
// a pipeline are ever materialized) is used where it lies.
func materialize(vals [][]value, a *arena) [][]value {
	copied := false
	for b, bv := range vals {
		for i, v := range bv {
			if v.parts == nil {
				continue
			}
			if !copied {
				// The caller's slices stay as they were.
				vals = append([][]value(nil), vals...)
				for j := range vals {
					vals[j] = append([]value(nil), vals[j]...)
				}
				copied = true
			}
			if len(v.parts) == 1 {
				vals[b][i] = value{t: tensor.Tensor{DType: v.t.DType, Shape: v.t.Shape, Data: v.parts[0]}}
				continue
			}
			buf := a.alloc(v.size())
			off := 0
			for _, p := range v.parts {
				off += copy(buf.data[off:], p)
			}
			vals[b][i] = value{t: tensor.Tensor{DType: v.t.DType, Shape: v.t.Shape, Data: buf.data}, owner: buf}
		}
	}
	return vals
}

// size is the value's byte length.
func (v value) size() int64 {
	if v.parts == nil {
		return int64(len(v.t.Data))
	}
	var n int64
	for _, p := range v.parts {
		n += int64(len(p))
	}
	return n
}

// allLazy reports whether every stage of job runs on byte ranges (a pure
// rearrangement such as Llama's concat of gate and up): its chunks then
// hold no buffer at all, only the mapped input they read. It tries the
// first chunk; the others have the same shapes, or fewer units of them.
func (p *Plan) allLazy(job *Job) bool {
	if job.Copy || len(job.Stages) == 0 || (job.Gather >= 0 && p.Direction == Import && job.Units > 1) {
		return false
	}
	var vals [][]value
	for _, srcs := range job.Sources {
		vals = append(vals, sourceValues(srcs, 0, int64(job.ChunkUnits), int64(job.Units)))
	}
	end, _, ok := lazyStages(job.Stages, 0, vals)
	return ok && end == len(job.Stages)
}
