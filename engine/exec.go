package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/quote"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventStart: Total is the number of output bytes to write.
	EventStart EventKind = iota
	// EventProgress: Bytes more output bytes were written for Tensor.
	EventProgress
	// EventPhase: Phase names what the executor does now ("verifying", "committing").
	EventPhase
	// EventDone: the output is in place.
	EventDone
)

// Event is a progress report. The callback is called from worker goroutines
// and must be safe for concurrent use.
type Event struct {
	Kind   EventKind
	Tensor string
	Phase  string
	Bytes  int64
	Total  int64
}

// ExecOptions steer execution.
type ExecOptions struct {
	Output string // target directory; must not exist unless Force
	Force  bool
	// Backend runs the heavy transforms (default: the CPU backend).
	Backend  backend.Backend
	Progress func(Event)
}

// Stats reports what an execution did.
type Stats struct {
	BytesRead, BytesWritten int64
	Tensors                 int
	Duration                time.Duration
	// PeakReserved and PeakLive are the executor's own memory accounting:
	// the most memory reserved by running chunks, and the most bytes of
	// buffers in use at once. PeakHeld is the most it held at once: live
	// and idle buffers, the mapped input pages and the write and copy
	// buffers of running chunks. All stay within the budget; RSS adds only
	// a fixed part (docs/performance.md).
	PeakReserved, PeakLive, PeakHeld int64
	Budget                           int64
}

type target struct {
	w    *safetensors.Writer
	key  string // the file-level tensor name
	size int64
}

// Execute runs the plan into opt.Output. On any error or cancellation the
// temporary directory is removed and the target is left as it was.
func (p *Plan) Execute(ctx context.Context, opt ExecOptions) (stats *Stats, err error) {
	start := time.Now()
	x := &execution{p: p, be: opt.Backend, progress: opt.Progress, mem: newBudget(p.Memory)}
	defer x.mem.close()
	if x.be == nil {
		x.be = backend.CPU(p.Workers)
	}
	if x.progress == nil {
		x.progress = func(Event) {}
	}
	out, err := p.openOutput(opt)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			out.Abort()
		}
	}()
	writers, err := x.createFiles(out.Path())
	defer func() {
		for _, w := range writers {
			w.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	x.progress(Event{Kind: EventStart, Total: p.BytesOut})
	if err := x.run(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted: %w (nothing was written to %s)", ctx.Err(), opt.Output)
		}
		return nil, err
	}
	// A rewrite in place faults only when the file shrinks; the size and
	// time tell of any other.
	if err := p.src.Unchanged(); err != nil {
		return nil, err
	}
	x.progress(Event{Kind: EventPhase, Phase: "verifying"})
	for _, w := range writers {
		if err := w.Finish(); err != nil {
			return nil, err
		}
	}
	writers = nil
	if err := p.verify(out.Path()); err != nil {
		return nil, fmt.Errorf("verifying the output: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w (nothing was written to %s)", err, opt.Output)
	}
	x.progress(Event{Kind: EventPhase, Phase: "committing"})
	if err := out.Commit(); err != nil {
		return nil, err
	}
	x.progress(Event{Kind: EventDone})
	return &Stats{BytesRead: p.BytesIn, BytesWritten: x.written.Load(), Tensors: len(p.outputEntries()),
		Duration: time.Since(start), PeakReserved: x.mem.peakRes.Load(), PeakLive: x.mem.peakLive.Load(),
		PeakHeld: x.mem.held(), Budget: p.Memory}, nil
}

// execution is the state one Execute shares between its steps and tasks.
type execution struct {
	p        *Plan
	be       backend.Backend
	progress func(Event)
	mem      *budget
	targets  map[string]target // logical output tensor -> where it is written
	written  atomic.Int64
}

// openOutput checks the output place and opens the temporary directory the
// conversion is written into.
func (p *Plan) openOutput(opt ExecOptions) (*safetensors.OutputDir, error) {
	keep, err := checkOutput(p.InputDir, opt.Output, opt.Force, p.likeDirs()...)
	if err != nil {
		return nil, err
	}
	return safetensors.NewOutputDir(opt.Output, safetensors.OutputOptions{Force: opt.Force, Keep: keep})
}

// createFiles creates every output file in dir: the tensor files, whose
// writers it returns (those created so far, on an error too, for the
// caller to close), then the config, index and side files. These go first:
// whatever keeps them from being written (a side file named like a file the
// output side writes, an unreadable one) then fails the run before the
// heavy work, not after it.
func (x *execution) createFiles(dir string) ([]*safetensors.Writer, error) {
	p := x.p
	x.targets = map[string]target{}
	var writers []*safetensors.Writer
	for _, sh := range p.Shards {
		l, err := safetensors.NewLayout(sh.Entries, sh.Metadata)
		if err != nil {
			return writers, fmt.Errorf("%s: %w", quote.Name(sh.File), err)
		}
		w, err := safetensors.Create(filepath.Join(dir, sh.File), l)
		if err != nil {
			return writers, err
		}
		writers = append(writers, w)
		for i, e := range sh.Entries {
			size, _ := e.Size()
			x.targets[sh.Logical[i]] = target{w: w, key: e.Name, size: size}
		}
	}
	if err := p.out.WriteMeta(dir, p.output, p.Shards); err != nil {
		return writers, err
	}
	if err := x.copySideFiles(dir, p.InputDir, p.SideFiles, "the input "+p.InputDir, "; move it out of the input"); err != nil {
		return writers, err
	}
	return writers, x.copySideFiles(dir, p.Like, p.LikeFiles, p.Like+" (--like)", "")
}

// copySideFiles copies the named side files of src into dir; from names
// the source in messages, and fix says what to do about a clash with a file
// the output side writes itself.
func (x *execution) copySideFiles(dir, src string, names []string, from, fix string) error {
	for _, name := range names {
		if err := copyFile(filepath.Join(dir, name), src, name); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("side file %s of %s: the %s output writes a file of that name itself%s", quote.Name(name), from, x.p.To, fix)
			}
			return fmt.Errorf("side file %s of %s: %w", quote.Name(name), from, err)
		}
	}
	return nil
}

// run writes every tensor: one queue of tasks per job, started round-robin
// across jobs (see interleave).
func (x *execution) run(ctx context.Context) error {
	// Workers chunks compute at once; three times as many more may be
	// waiting to compute or writing (the memory budget bounds them all), so
	// that a chunk waiting for the disk leaves its core to another. With as
	// many tasks as workers, cores idled through every write; with twice
	// as many, whenever the writes bunched up.
	x.mem.compute = semaphore.NewWeighted(int64(x.p.Workers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4 * x.p.Workers)
	var queues [][]func() error
	for _, job := range x.p.Jobs {
		if job.Copy {
			queues = append(queues, x.copyTasks(gctx, job))
		} else {
			queues = append(queues, x.chunkTasks(gctx, job))
		}
	}
	interleave(queues, g.Go)
	return g.Wait()
}

// copyTasks copies each tensor of a renaming job file to file.
func (x *execution) copyTasks(ctx context.Context, job *Job) []func() error {
	var q []func() error
	for b, srcs := range job.Sources {
		for i, s := range srcs {
			t := x.targets[job.Outputs[b][i]]
			q = append(q, func() error {
				if err := ctx.Err(); err != nil {
					return err
				}
				// The kernel copies without a buffer; where it declines,
				// CopyRange maps one.
				if err := x.mem.reserve(ctx, 0, safetensors.CopyBuffer); err != nil {
					return err
				}
				defer x.mem.release(0, safetensors.CopyBuffer)
				if err := t.w.CopyFrom(t.key, 0, s.File, s.Info.Name); err != nil {
					return fmt.Errorf("tensor %s: %w", quote.Name(s.Name), err)
				}
				x.written.Add(t.size)
				x.progress(Event{Kind: EventProgress, Tensor: job.Outputs[b][i], Bytes: t.size})
				return nil
			})
		}
	}
	return q
}

// chunkTasks runs a transforming job chunk by chunk, each within the
// memory budget.
func (x *execution) chunkTasks(ctx context.Context, job *Job) []func() error {
	p := x.p
	working := job.UnitMemory
	if job.Lazy {
		working = 0
	}
	var q []func() error
	for u0 := 0; u0 < job.Units; u0 += job.ChunkUnits {
		u1 := min(u0+job.ChunkUnits, job.Units)
		q = append(q, func() error {
			// Working memory; beside it the mapped input pages the chunk
			// makes resident (released when it is done) and the buffer its
			// writes go through.
			need := satMul(working, int64(u1-u0))
			outside := satAdd(p.chunkInputBytes(job, u0, u1), safetensors.WriteBuffer(p.chunkOutputBytes(job, u0, u1)))
			if err := x.mem.reserve(ctx, need, outside); err != nil {
				return err
			}
			defer x.mem.release(need, outside)
			// The chunk reads mapped input: a file truncated under it
			// faults, and the guard makes that an error naming it.
			var n int64
			err := fault.Guard(func() (err error) {
				n, err = p.runChunk(x.be, job, u0, u1, x.targets, x.mem)
				return err
			})
			if err != nil {
				return err
			}
			x.written.Add(n)
			x.progress(Event{Kind: EventProgress, Tensor: job.Outputs[0][0], Bytes: n})
			return nil
		})
	}
	return q
}

func (p *Plan) outputEntries() []safetensors.Entry {
	var out []safetensors.Entry
	for _, sh := range p.Shards {
		for i, e := range sh.Entries {
			out = append(out, safetensors.Entry{Name: sh.Logical[i], DType: e.DType, Shape: e.Shape})
		}
	}
	return out
}

// verify re-reads the written checkpoint with the strict reader and checks it
// holds exactly the planned tensors.
func (p *Plan) verify(dir string) error {
	src, err := p.out.Open(dir)
	if err != nil {
		return err
	}
	defer src.Close()
	want := p.outputEntries()
	if len(src.Tensors) != len(want) {
		return fmt.Errorf("%d tensors written, %d planned", len(src.Tensors), len(want))
	}
	for _, e := range want {
		t, ok := src.Lookup(e.Name)
		if !ok {
			return fmt.Errorf("tensor %s is missing from the output", quote.Name(e.Name))
		}
		if t.DType != e.DType || !t.Shape.Equal(e.Shape) {
			return fmt.Errorf("tensor %s is %v%v, planned %v%v", quote.Name(e.Name), t.DType, t.Shape, e.DType, e.Shape)
		}
	}
	return nil
}

// runChunk runs units [u0, u1) of a job and writes the results; it returns
// the output bytes written.
func (p *Plan) runChunk(be backend.Backend, job *Job, u0, u1 int, targets map[string]target, mem *budget) (int64, error) {
	a := &arena{b: mem}
	defer a.freeAll()
	defer p.releaseChunk(job, u0, u1)
	units := int64(job.Units)
	// Inputs: whole stacked bindings, or a slice along axis 0.
	var vals [][]value
	gatherIn := job.Gather >= 0 && p.Direction == Import
	if gatherIn && job.Units > 1 {
		for b := u0; b < u1; b++ {
			vals = append(vals, sourceValues(job.Sources[b], 0, 1, 1))
		}
	} else {
		for _, srcs := range job.Sources {
			vals = append(vals, sourceValues(srcs, int64(u0), int64(u1), units))
		}
	}
	leave := mem.enterCompute()
	defer leave()
	for si := 0; si < len(job.Stages); si++ {
		if end, next, ok := lazyStages(job.Stages, si, vals); ok {
			vals, si = next, end-1
			continue
		}
		if next, ok, err := gatheredEncode(be, job.Stages[si], vals, a); err != nil {
			return 0, p.stageErr(job, si, err)
		} else if ok {
			freeUnused(a, vals, next)
			vals = next
			continue
		}
		vals = materialize(vals, a)
		if next, ok, at, err := fusedStages(be, job.Stages, si, vals, a); err != nil {
			return 0, p.stageErr(job, at, err)
		} else if ok {
			freeUnused(a, vals, next)
			vals, si = next, si+1
			continue
		}
		st := job.Stages[si]
		var next [][]value
		if gather := engineOps[st.Calls[0].Def].gather; gather != nil {
			var err error
			if next, err = gather(vals, a); err != nil {
				return 0, p.stageErr(job, si, err)
			}
		} else {
			for _, bv := range vals {
				o, err := runStage(be, st, bv, a)
				if err != nil {
					return 0, p.stageErr(job, si, err)
				}
				next = append(next, o)
			}
		}
		freeUnused(a, vals, next)
		vals = next
	}
	leave() // writing needs no core
	// Outputs.
	var n int64
	gatherOut := job.Gather >= 0 && p.Direction == Export
	for b, bv := range vals {
		names := job.Outputs[0]
		if gatherOut {
			names = job.Outputs[u0+b]
		}
		for i, v := range bv {
			t := targets[names[i]]
			off := int64(0)
			if !gatherOut {
				off = scaleBytes(t.size, int64(u0), units)
			}
			var err error
			if v.parts != nil {
				err = t.w.WriteParts(t.key, off, v.parts)
			} else {
				err = t.w.WriteAt(t.key, off, v.t.Data)
			}
			if err != nil {
				return 0, fmt.Errorf("tensor %s: %w", quote.Name(names[i]), err)
			}
			n += v.size()
		}
	}
	return n, nil
}

func (p *Plan) stageErr(job *Job, si int, err error) error {
	var nf *backend.NonFiniteError
	msg := err.Error()
	if errors.As(err, &nf) {
		msg = fmt.Sprintf("%v (element %d of the chunk being encoded)", nf, nf.Index)
	}
	st := job.Stages[si]
	return &TensorError{Tensor: job.Sources[0][0].Name, File: job.Sources[0][0].File.Path,
		Pos: st.Pos, End: st.End, Msg: fmt.Sprintf("%s: %s", st, msg)}
}

// sourceValues slices units [u0, u1) of `units` along axis 0 of each source.
func sourceValues(srcs []format.Tensor, u0, u1, units int64) []value {
	out := make([]value, len(srcs))
	for i, s := range srcs {
		data, _ := s.File.Data(s.Info.Name)
		shape := s.Shape.Clone()
		if units > 1 {
			size := int64(len(data))
			data = data[scaleBytes(size, u0, units):scaleBytes(size, u1, units)]
			shape[0] = int(scaleBytes(int64(shape[0]), u1-u0, units))
		}
		out[i] = value{t: tensor.Tensor{DType: s.DType, Shape: shape, Data: data}}
	}
	return out
}

func runStage(be backend.Backend, st Stage, in []value, a *arena) ([]value, error) {
	if !st.PerElement {
		return runCall(be, st.Calls[0], in, a)
	}
	var out []value
	for i, v := range in {
		o, err := runCall(be, st.call(i), []value{v}, a)
		if err != nil {
			return nil, err
		}
		out = append(out, o...)
	}
	return out, nil
}

// freeUnused frees the buffers of a stage's inputs that its outputs do not
// share.
func freeUnused(a *arena, in, out [][]value) {
	keep := map[*buffer]bool{}
	for _, bv := range out {
		for _, v := range bv {
			keep[v.owner] = true
		}
	}
	for _, bv := range in {
		for _, v := range bv {
			if v.owner != nil && !keep[v.owner] {
				a.free(v.owner)
			}
		}
	}
}

// copyFile copies the side file name of the input directory dir to dst.
// It is opened as every input file is (safetensors.OpenInput): the
// directory listing that chose it may be stale, and a link or FIFO put in
// its place since must not be followed or block the copy. Its name is the
// input author's, escaped in errors.
func copyFile(dst, dir, name string) error {
	in, err := safetensors.OpenInput(dir, name)
	if err != nil {
		return quote.PathError(err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return quote.PathError(err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return quote.PathError(err)
	}
	if err := safetensors.CopyRange(out, 0, in, 0, st.Size()); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", quote.Name(in.Name()), err)
	}
	return quote.PathError(out.Close())
}
