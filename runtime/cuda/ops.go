package cuda

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// kernelNames are the extern "C" kernels of kernels.cu the backend looks up.
var kernelNames = []string{
	"cast_bf16_f32", "cast_f16_f32", "cast_f32_bf16", "cast_f32_f16", "cast_bf16_f16", "cast_f16_bf16",
	"cast_e4m3_f32", "cast_e4m3_bf16", "cast_e4m3_f16", "cast_e5m2_f32", "cast_e5m2_bf16", "cast_e5m2_f16",
	"mxfp4_decode_f32", "mxfp4_decode_bf16",
	"mxfp4_encode_f32", "mxfp4_encode_bf16", "mxfp4_encode_f16",
	"transpose_box_1", "transpose_box_2", "transpose_box_4", "transpose_box_8", "transpose_box_16",
}

// castKernel names the kernel for each supported (src, dst) pair with
// different types; identical types are a plain copy.
func castKernel(dst, src tensor.DType) string {
	short := map[tensor.DType]string{
		tensor.BF16: "bf16", tensor.F16: "f16", tensor.F32: "f32",
		tensor.F8_E4M3: "e4m3", tensor.F8_E5M2: "e5m2",
	}
	s, ok1 := short[src]
	d, ok2 := short[dst]
	if !ok1 || !ok2 || dst == tensor.F8_E4M3 || dst == tensor.F8_E5M2 || dst == src {
		return ""
	}
	return "cast_" + s + "_" + d
}

// Grid limits. Every kernel loops (grid-stride) over what its grid does not
// cover, so these only trade parallelism for per-thread work. Variables so
// that the emulation test can shrink them and exercise those loops.
var (
	threadsPerBlock uint32 = 256 // a multiple of 32 (the encoder works per warp)
	maxBlocks       int64  = 1 << 16
)

func blocksFor(n int64, perBlock int64) uint32 {
	g := (n + perBlock - 1) / perBlock
	return uint32(max(1, min(g, maxBlocks)))
}

// launch enqueues kernel name on the slot's stream. Every kernel argument is
// 8 bytes; their values and the pointer array cuLaunchKernel reads are
// written to pinned C memory (b.params), which the driver copies before the
// call returns, so it is reused for the next launch.
func (b *Backend) launch(s *slot, name string, grid, block [3]uint32, args ...uint64) error {
	f, ok := b.fns[name]
	if !ok {
		return fmt.Errorf("cuda: kernel %s not loaded", name)
	}
	if len(args) > 16 {
		return fmt.Errorf("cuda: kernel %s: too many arguments", name)
	}
	vals := unsafe.Slice((*uint64)(b.params), 16)
	ptrArr := unsafe.Add(b.params, 8*16)
	ptrs := unsafe.Slice((*uintptr)(ptrArr), 16)
	for i, a := range args {
		vals[i] = a
		ptrs[i] = uintptr(unsafe.Add(b.params, 8*i))
	}
	res := b.d.cuLaunchKernel(f, grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, s.stream, ptrArr, nil)
	return b.d.check(res, "cuLaunchKernel(%s, grid %v, block %v)", name, grid, block)
}

func (b *Backend) h2d(s *slot, dst devPtr, src unsafe.Pointer, n int, what string) error {
	if n == 0 {
		return nil
	}
	return b.d.check(b.d.cuMemcpyHtoDAsync(dst, src, uintptr(n), s.stream), "cuMemcpyHtoDAsync_v2(%d bytes, %s)", n, what)
}

func (b *Backend) d2h(s *slot, dst unsafe.Pointer, src devPtr, n int, what string) error {
	if n == 0 {
		return nil
	}
	return b.d.check(b.d.cuMemcpyDtoHAsync(dst, src, uintptr(n), s.stream), "cuMemcpyDtoHAsync_v2(%d bytes, %s)", n, what)
}

// span is one chunk of a job: units [u0, u1) for the element-wise jobs; for
// the transpose, u0 indexes its boxes.
type span struct {
	u0, u1 int
}

func uniformSpans(n, per int) []span {
	var out []span
	for u := 0; u < n; u += per {
		out = append(out, span{u0: u, u1: min(n, u+per)})
	}
	return out
}

// pipelineJob describes a chunked transform. For each span: fill copies its
// input into pinned memory, the runner copies that to the device, launch
// enqueues the kernel(s), the runner copies outBytes back, and drain (after
// the stream is synchronised) copies the results to their destination.
type pipelineJob struct {
	what     string
	spans    []span
	inBytes  func(sp span) int
	outBytes func(sp span) int
	fill     func(s *slot, in []byte, sp span)
	launch   func(s *slot, sp span) error
	drain    func(s *slot, out []byte, sp span) error
}

// run executes the job on the two slots alternately: while the GPU works on
// chunk k (slot k%2), the host drains chunk k-1 and fills chunk k+1, and the
// other stream's copies overlap this one's kernel.
func (b *Backend) run(j *pipelineJob) error {
	type inflight struct {
		busy bool
		sp   span
		out  int
	}
	var fl [2]inflight
	finish := func(i int) error {
		f := &fl[i]
		if !f.busy {
			return nil
		}
		f.busy = false
		s := &b.slots[i]
		if err := b.d.check(b.d.cuStreamSynchronize(s.stream), "cuStreamSynchronize(%s)", j.what); err != nil {
			return err
		}
		return j.drain(s, unsafe.Slice((*byte)(s.hostOut), f.out), f.sp)
	}
	abort := func() {
		for i := range fl {
			if fl[i].busy {
				_ = b.d.cuStreamSynchronize(b.slots[i].stream)
				fl[i].busy = false
			}
		}
	}
	for k, sp := range j.spans {
		i := k % 2
		s := &b.slots[i]
		if err := finish(i); err != nil {
			abort()
			return err
		}
		in, out := j.inBytes(sp), j.outBytes(sp)
		if err := b.grow(s, in, out); err != nil {
			abort()
			return err
		}
		// fill reads the caller's input, maybe a mapped file: a fault
		// there is returned like any error (this is the worker goroutine,
		// not the caller's, so the caller's guard cannot catch it).
		if fe := fault.Catch(func() { j.fill(s, unsafe.Slice((*byte)(s.hostIn), in), sp) }); fe != nil {
			abort()
			return fe
		}
		err := b.h2d(s, s.devIn, s.hostIn, in, j.what)
		if err == nil {
			err = j.launch(s, sp)
		}
		if err == nil {
			err = b.d2h(s, s.hostOut, s.devOut, out, j.what)
		}
		fl[i] = inflight{busy: true, sp: sp, out: out}
		if err != nil {
			abort()
			return err
		}
	}
	// Drain in issue order.
	n := len(j.spans)
	for k := max(0, n-2); k < n; k++ {
		if err := finish(k % 2); err != nil {
			abort()
			return err
		}
	}
	return nil
}

// copyPiece is the least a goroutine of parCopy or parRuns copies. The
// staging copies into and out of pinned memory bound the pipeline: on the
// first GPU run (an H200 beside 16 cores) every kernel moved 17-27 GB/s
// whatever its arithmetic, while parCopy used at most 8 goroutines on 4 MiB
// pieces (4 on a 16 MiB output) and the CPU backend moved 36-52 GB/s with
// 16. So every core copies, in pieces of 1 MiB.
const copyPiece = 1 << 20

// parallel runs fn over [0, n) in up to GOMAXPROCS contiguous ranges of
// at least minUnits units, on the calling goroutine when one range does.
// The source of a copy may be a mapped file: a fault in a goroutine is
// handed to the caller.
func parallel(n, minUnits int, fn func(lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), n/max(minUnits, 1))
	if parts <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	var caught atomic.Pointer[fault.Error]
	step := (n + parts - 1) / parts
	for p := 0; p < n; p += step {
		e := min(n, p+step)
		wg.Go(func() {
			if fe := fault.Catch(func() { fn(p, e) }); fe != nil {
				caught.CompareAndSwap(nil, fe)
			}
		})
	}
	wg.Wait()
	if fe := caught.Load(); fe != nil {
		panic(fe)
	}
}

// parCopy is copy(dst, src) split across goroutines for large buffers: a
// single core cannot keep up with PCIe when filling pinned memory.
func parCopy(dst, src []byte) {
	n := min(len(dst), len(src))
	parallel(n, copyPiece, func(lo, hi int) { copy(dst[lo:hi], src[lo:hi]) })
}

func hostAux(p unsafe.Pointer, capacity int) unsafe.Pointer { return unsafe.Add(p, capacity) }

// Convert converts src (srcType) into dst (dstType); see backend.Backend.
// Identical types are copied on the host.
func (b *Backend) Convert(dst []byte, dstType tensor.DType, src []byte, srcType tensor.DType) error {
	n, err := kernels.CheckConvert(dst, dstType, src, srcType)
	if err != nil {
		return err
	}
	if dstType == srcType {
		copy(dst, src)
		return nil
	}
	name := castKernel(dstType, srcType)
	if name == "" {
		return fmt.Errorf("cuda: unsupported conversion %v -> %v", srcType, dstType)
	}
	if n == 0 {
		return nil
	}
	ss, ds := srcType.Size(), dstType.Size()
	per := chunkBytes / max(ss, ds)
	job := &pipelineJob{
		what:     fmt.Sprintf("%s, %d elements", name, n),
		spans:    uniformSpans(n, per),
		inBytes:  func(sp span) int { return (sp.u1 - sp.u0) * ss },
		outBytes: func(sp span) int { return (sp.u1 - sp.u0) * ds },
		fill: func(_ *slot, in []byte, sp span) {
			parCopy(in, src[sp.u0*ss:sp.u1*ss])
		},
		launch: func(s *slot, sp span) error {
			cnt := int64(sp.u1 - sp.u0)
			return b.launch(s, name, [3]uint32{blocksFor(cnt, int64(threadsPerBlock)), 1, 1}, [3]uint32{threadsPerBlock, 1, 1},
				uint64(s.devOut), uint64(s.devIn), uint64(cnt))
		},
		drain: func(_ *slot, out []byte, sp span) error {
			parCopy(dst[sp.u0*ds:sp.u1*ds], out)
			return nil
		},
	}
	return b.do(func() error { return b.run(job) })
}

// DecodeMXFP4 decodes len(scales) groups into dst (BF16 or F32); see
// backend.Backend.
func (b *Backend) DecodeMXFP4(dst []byte, dstType tensor.DType, blocks, scales []byte) error {
	var name string
	switch dstType {
	case tensor.BF16:
		name = "mxfp4_decode_bf16"
	case tensor.F32:
		name = "mxfp4_decode_f32"
	default:
		return fmt.Errorf("cuda: mxfp4 decode: unsupported destination type %v (want BF16 or F32)", dstType)
	}
	es := dstType.Size()
	g := len(scales)
	if len(blocks) != kernels.MXFP4BlockBytes*g {
		return fmt.Errorf("cuda: mxfp4 decode: %d block bytes for %d scales, want %d", len(blocks), g, kernels.MXFP4BlockBytes*g)
	}
	if len(dst) != kernels.MXFP4GroupSize*es*g {
		return fmt.Errorf("cuda: mxfp4 decode: destination length %d, want %d for %d groups", len(dst), kernels.MXFP4GroupSize*es*g, g)
	}
	if g == 0 {
		return nil
	}
	outPer := 32 * es
	job := &pipelineJob{
		what:     fmt.Sprintf("%s, %d groups", name, g),
		spans:    uniformSpans(g, chunkBytes/outPer),
		inBytes:  func(sp span) int { return 17 * (sp.u1 - sp.u0) },
		outBytes: func(sp span) int { return outPer * (sp.u1 - sp.u0) },
		fill: func(_ *slot, in []byte, sp span) {
			k := sp.u1 - sp.u0
			parCopy(in[:16*k], blocks[16*sp.u0:16*sp.u1])
			copy(in[16*k:17*k], scales[sp.u0:sp.u1])
		},
		launch: func(s *slot, sp span) error {
			k := int64(sp.u1 - sp.u0)
			return b.launch(s, name, [3]uint32{blocksFor(16*k, int64(threadsPerBlock)), 1, 1}, [3]uint32{threadsPerBlock, 1, 1},
				uint64(s.devOut), uint64(s.devIn), uint64(s.devIn)+uint64(16*k), uint64(16*k))
		},
		drain: func(_ *slot, out []byte, sp span) error {
			parCopy(dst[outPer*sp.u0:outPer*sp.u1], out)
			return nil
		},
	}
	return b.do(func() error { return b.run(job) })
}

// EncodeMXFP4 quantizes src (BF16, F16 or F32) with the reference quantizer;
// see backend.Backend. A NaN or infinity gives a *backend.NonFiniteError for
// the first such element.
func (b *Backend) EncodeMXFP4(blocks, scales []byte, src []byte, srcType tensor.DType) error {
	var name string
	switch srcType {
	case tensor.BF16:
		name = "mxfp4_encode_bf16"
	case tensor.F16:
		name = "mxfp4_encode_f16"
	case tensor.F32:
		name = "mxfp4_encode_f32"
	default:
		return fmt.Errorf("cuda: mxfp4 encode: unsupported source type %v (want BF16, F16 or F32)", srcType)
	}
	es := srcType.Size()
	g := len(scales)
	if len(blocks) != kernels.MXFP4BlockBytes*g {
		return fmt.Errorf("cuda: mxfp4 encode: %d block bytes for %d scales, want %d", len(blocks), g, kernels.MXFP4BlockBytes*g)
	}
	if len(src) != kernels.MXFP4GroupSize*es*g {
		return fmt.Errorf("cuda: mxfp4 encode: source length %d, want %d for %d groups", len(src), kernels.MXFP4GroupSize*es*g, g)
	}
	if g == 0 {
		return nil
	}
	inPer := 32 * es
	first := int64(-1) // smallest non-finite element index seen
	job := &pipelineJob{
		what:     fmt.Sprintf("%s, %d groups", name, g),
		spans:    uniformSpans(g, chunkBytes/inPer),
		inBytes:  func(sp span) int { return inPer * (sp.u1 - sp.u0) },
		outBytes: func(sp span) int { return 17 * (sp.u1 - sp.u0) },
		fill: func(s *slot, in []byte, sp span) {
			parCopy(in, src[inPer*sp.u0:inPer*sp.u1])
			*(*uint64)(hostAux(s.hostIn, s.capIn)) = ^uint64(0)
		},
		launch: func(s *slot, sp span) error {
			k := int64(sp.u1 - sp.u0)
			flag := s.devIn + devPtr(s.capIn)
			if err := b.h2d(s, flag, hostAux(s.hostIn, s.capIn), 8, "encoder flag"); err != nil {
				return err
			}
			err := b.launch(s, name, [3]uint32{blocksFor(32*k, int64(threadsPerBlock)), 1, 1}, [3]uint32{threadsPerBlock, 1, 1},
				uint64(s.devOut), uint64(s.devOut)+uint64(16*k), uint64(s.devIn), uint64(k), uint64(flag))
			if err != nil {
				return err
			}
			return b.d2h(s, hostAux(s.hostOut, s.capOut), flag, 8, "encoder flag")
		},
		drain: func(s *slot, out []byte, sp span) error {
			k := sp.u1 - sp.u0
			parCopy(blocks[16*sp.u0:16*sp.u1], out[:16*k])
			copy(scales[sp.u0:sp.u1], out[16*k:17*k])
			if f := *(*uint64)(hostAux(s.hostOut, s.capOut)); f != ^uint64(0) {
				if f >= uint64(32*k) {
					return fmt.Errorf("cuda: %s: encoder flag %d out of range for a chunk of %d groups", name, f, k)
				}
				idx := int64(32*sp.u0) + int64(f)
				if first < 0 || idx < first {
					first = idx
				}
			}
			return nil
		},
	}
	if err := b.do(func() error { return b.run(job) }); err != nil {
		return err
	}
	if first >= 0 {
		return &backend.NonFiniteError{Index: first, Value: widen(src, srcType, first)}
	}
	return nil
}

// widen returns element i of src as the encoder sees it: F32 as is, BF16
// shifted into the top half (no NaN quieting), F16 widened exactly.
func widen(src []byte, t tensor.DType, i int64) float32 {
	switch t {
	case tensor.F32:
		return math.Float32frombits(uint32(src[4*i]) | uint32(src[4*i+1])<<8 | uint32(src[4*i+2])<<16 | uint32(src[4*i+3])<<24)
	case tensor.BF16:
		return math.Float32frombits((uint32(src[2*i]) | uint32(src[2*i+1])<<8) << 16)
	default:
		return kernels.F16ToF32(uint16(src[2*i]) | uint16(src[2*i+1])<<8)
	}
}
