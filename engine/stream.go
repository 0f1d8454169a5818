package engine

import (
	"math/bits"
	"slices"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
)

// releaseChunk drops the input pages a chunk read from the process's
// resident set once the chunk is done with them (safetensors.File.Release:
// the page cache keeps them, nothing is re-read from disk). Mapped inputs
// would otherwise stay resident to the end, file-backed pages count in the
// RSS, and a conversion's footprint would grow with the model.
func (p *Plan) releaseChunk(job *Job, u0, u1 int) {
	p.chunkInputs(job, u0, u1, func(s format.Tensor, off, n int64) { s.File.Release(s.Info.Name, off, n) })
}

// chunkInputBytes is how many mapped input bytes a chunk reads: they are
// resident while it runs, so the executor reserves them beside the
// chunk's working memory.
func (p *Plan) chunkInputBytes(job *Job, u0, u1 int) int64 {
	var total int64
	p.chunkInputs(job, u0, u1, func(_ format.Tensor, _, n int64) { total = satAdd(total, n) })
	return total
}

// chunkOutputBytes is how many bytes units [u0, u1) of job write, rounded
// up.
func (p *Plan) chunkOutputBytes(job *Job, u0, u1 int) int64 {
	total := satMul(typesBytes(job.OutTypes), int64(len(job.Outputs)))
	// total * (u1-u0) / units, rounded up, without the product overflowing
	// (as scaleBytes); u1-u0 <= units, so the quotient fits.
	hi, lo := bits.Mul64(uint64(total), uint64(u1-u0))
	q, r := bits.Div64(hi, lo, uint64(job.Units))
	if r != 0 {
		q++
	}
	return int64(q)
}

// chunkInputs calls f with the byte range of every input tensor that units
// [u0, u1) of job read.
func (p *Plan) chunkInputs(job *Job, u0, u1 int, f func(s format.Tensor, off, n int64)) {
	if job.Gather >= 0 && p.Direction == Import && job.Units > 1 {
		// Units are whole stacked bindings.
		for b := u0; b < u1; b++ {
			for _, s := range job.Sources[b] {
				f(s, 0, s.Info.Size())
			}
		}
		return
	}
	units := int64(job.Units)
	for _, srcs := range job.Sources {
		for _, s := range srcs {
			size := s.Info.Size()
			a, b := int64(0), size
			if units > 1 {
				a, b = scaleBytes(size, int64(u0), units), scaleBytes(size, int64(u1), units)
			}
			f(s, a, b-a)
		}
	}
}

// interleave starts the tasks of every queue, round-robin across queues:
// first task of each, then the second of each, and so on. Jobs differ in
// what they wait for (a rename waits for the disk, MXFP4 decode for the
// CPU, a decode with a transpose for the CPU longer); taking their chunks
// in turn keeps both busy, where job after job would leave the disk idle
// through the compute-heavy ones and the cores idle through the rest.
func interleave(queues [][]func() error, start func(func() error)) {
	for i := 0; ; i++ {
		started := false
		for _, q := range queues {
			if i < len(q) {
				start(q[i])
				started = true
			}
		}
		if !started {
			return
		}
	}
}

// HeavyBytes is how many bytes the jobs that run a backend transform (a
// cast, a transpose, an MXFP4 decode or encode) read and write: what
// --backend auto weighs against a GPU's startup. A cast to the same dtype
// (a view) counts too; the estimate errs towards trying the GPU.
func (p *Plan) HeavyBytes() int64 {
	var total int64
	for _, job := range p.Jobs {
		if job.Copy || !slices.ContainsFunc(job.Stages, func(s Stage) bool {
			return slices.ContainsFunc(s.Calls, func(c ir.Call) bool {
				return c.Def == ir.OpCast || c.Def == ir.OpTranspose || c.Def == ir.OpMXFP4 || c.Def == ir.OpMXFP4Encode
			})
		}) {
			continue
		}
		total = satAdd(total, p.chunkInputBytes(job, 0, job.Units))
		total = satAdd(total, p.chunkOutputBytes(job, 0, job.Units))
	}
	return total
}
