package backend

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// minParallelBytes is the least amount of work (bytes on the larger side)
// worth handing to a goroutine; smaller inputs run on the calling goroutine.
const minParallelBytes = 64 << 10

type cpu struct{ workers int }

// CPU returns the reference backend, which runs the runtime/kernels loops
// (MXFP4 to and from BF16 by integer paths that give the same bytes, see
// mxfp4.go) and splits large inputs into contiguous chunks across up to workers
// goroutines (workers <= 0 means GOMAXPROCS). Inputs under 64 KiB run on
// the calling goroutine. The result never depends on the worker count.
func CPU(workers int) Backend {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &cpu{workers: workers}
}

func (c *cpu) Name() string { return "cpu" }

func (c *cpu) Close() error { return nil }

// parallel runs fn over the unit range [0, n) in chunks of at least
// minUnits units, handed out dynamically to up to c.workers goroutines.
// Chunks are contiguous; fn receives the chunk index too.
func (c *cpu) parallel(n, minUnits int, fn func(chunk, lo, hi int)) {
	minUnits = max(minUnits, 1)
	if c.workers <= 1 || n < 2*minUnits {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	// About four chunks per worker balances uneven progress of the workers.
	size := max(minUnits, (n+4*c.workers-1)/(4*c.workers))
	chunks := (n + size - 1) / size
	var next atomic.Int64
	var caught atomic.Pointer[fault.Error]
	var wg sync.WaitGroup
	for range min(c.workers, chunks) {
		wg.Go(func() {
			// The input may be a mapped file: a fault reading it is handed
			// to the calling goroutine, whose guard reports it (see
			// package fault), and stops the other workers.
			fe := fault.Catch(func() {
				for {
					k := int(next.Add(1) - 1)
					if k >= chunks {
						return
					}
					fn(k, k*size, min((k+1)*size, n))
				}
			})
			if fe != nil {
				caught.CompareAndSwap(nil, fe)
				next.Store(int64(chunks))
			}
		})
	}
	wg.Wait()
	if fe := caught.Load(); fe != nil {
		panic(fe)
	}
}

func (c *cpu) Convert(dst []byte, dstType tensor.DType, src []byte, srcType tensor.DType) error {
	n, err := kernels.CheckConvert(dst, dstType, src, srcType)
	if err != nil {
		return fmt.Errorf("cpu: %w", err)
	}
	f, _ := kernels.ConvertKernel(dstType, srcType)
	ss, ds := srcType.Size(), dstType.Size()
	c.parallel(n, minParallelBytes/max(ss, ds), func(_, lo, hi int) {
		f(dst[lo*ds:hi*ds], src[lo*ss:hi*ss])
	})
	return nil
}

func (c *cpu) Transpose(dst, src []byte, shape tensor.Shape, elemSize int, a, b int) error {
	p, err := kernels.PlanTranspose(shape, elemSize, a, b)
	if err != nil {
		return fmt.Errorf("cpu: %w", err)
	}
	if err := p.Check(dst, src); err != nil {
		return fmt.Errorf("cpu: %w", err)
	}
	units := p.Units()
	if units == 0 {
		return nil
	}
	perUnit := max(1, p.Bytes()/units)
	c.parallel(units, minParallelBytes/perUnit, func(_, lo, hi int) {
		p.Run(dst, src, lo, hi)
	})
	return nil
}

func (c *cpu) DecodeMXFP4(dst []byte, dstType tensor.DType, blocks, scales []byte) error {
	var f func(dst, blocks, scales []byte) error
	switch dstType {
	case tensor.BF16:
		f = func(dst, blocks, scales []byte) error { decodeMXFP4ToBF16(dst, blocks, scales); return nil }
	case tensor.F32:
		f = kernels.DecodeMXFP4ToF32
	default:
		return fmt.Errorf("cpu: mxfp4 decode to %v: want BF16 or F32", dstType)
	}
	g := len(scales)
	if len(blocks) != kernels.MXFP4BlockBytes*g {
		return fmt.Errorf("cpu: mxfp4 decode: %d block bytes for %d scales, want %d", len(blocks), g, kernels.MXFP4BlockBytes*g)
	}
	out := kernels.MXFP4GroupSize * dstType.Size() // output bytes per group
	if len(dst) != out*g {
		return fmt.Errorf("cpu: mxfp4 decode: destination length %d, want %d for %d groups of %v", len(dst), out*g, g, dstType)
	}
	c.parallel(g, minParallelBytes/out, func(_, lo, hi int) {
		// Lengths were checked, so the kernel cannot fail.
		_ = f(dst[lo*out:hi*out], blocks[lo*16:hi*16], scales[lo:hi])
	})
	return nil
}

func (c *cpu) EncodeMXFP4(blocks, scales []byte, src []byte, srcType tensor.DType) error {
	var f func(blocks, scales, src []byte) error
	switch srcType {
	case tensor.BF16:
		f = encodeMXFP4FromBF16
	case tensor.F16:
		f = kernels.EncodeMXFP4FromF16
	case tensor.F32:
		f = kernels.EncodeMXFP4FromF32
	default:
		return fmt.Errorf("cpu: mxfp4 encode from %v: want BF16, F16 or F32", srcType)
	}
	g := len(scales)
	if len(blocks) != kernels.MXFP4BlockBytes*g {
		return fmt.Errorf("cpu: mxfp4 encode: %d block bytes for %d scales, want %d", len(blocks), g, kernels.MXFP4BlockBytes*g)
	}
	in := kernels.MXFP4GroupSize * srcType.Size() // input bytes per group
	if len(src) != in*g {
		return fmt.Errorf("cpu: mxfp4 encode: source length %d, want %d for %d groups of %v", len(src), in*g, g, srcType)
	}
	// Each chunk stops at its first failure; chunks are contiguous, so the
	// failing chunk that starts lowest holds the buffer's first non-finite
	// element.
	var mu sync.Mutex
	var firstErr error
	firstLo := -1
	c.parallel(g, minParallelBytes/in, func(_, lo, hi int) {
		err := f(blocks[lo*16:hi*16], scales[lo:hi], src[lo*in:hi*in])
		if err == nil {
			return
		}
		var nf *NonFiniteError
		if errors.As(err, &nf) {
			err = &NonFiniteError{Index: nf.Index + int64(lo)*kernels.MXFP4GroupSize, Value: nf.Value}
		}
		mu.Lock()
		if firstLo < 0 || lo < firstLo {
			firstLo, firstErr = lo, err
		}
		mu.Unlock()
	})
	return firstErr
}
