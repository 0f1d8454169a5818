package cuda

// GPU tests: every kernel against backend.CPU(0), bit for bit, on the real
// device. They skip (naming the missing library) where New fails; run them
// on a GPU machine with bench/gpu.sh.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/backend/backendtest"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

var (
	gpuOnce sync.Once
	gpuBE   *Backend
	gpuErr  error
)

// gpu returns the shared GPU backend or skips. Tests share one backend (and
// one NVRTC compile); TestGPUClose makes its own.
var le = binary.LittleEndian

func gpu(tb testing.TB) *Backend {
	tb.Helper()
	gpuOnce.Do(func() { gpuBE, gpuErr = New() })
	if gpuErr != nil {
		tb.Skipf("no GPU: %v", gpuErr)
	}
	return gpuBE
}

func TestGPUAvailable(t *testing.T) {
	desc, err := Available()
	if err != nil {
		t.Skipf("no GPU: %v", err)
	}
	t.Logf("Available: %s", desc)
	b := gpu(t)
	t.Logf("DeviceName: %s (kernels compiled for compute_%d)", b.DeviceName(), b.arch)
	if b.Name() != "cuda" {
		t.Errorf("Name() = %q", b.Name())
	}
}

func TestGPUConvert(t *testing.T) {
	backendtest.Convert(t, gpu(t), backend.CPU(0), rand.New(rand.NewPCG(1, 2)), 1<<20)
}

func TestGPUMXFP4(t *testing.T) {
	b := gpu(t)
	r := rand.New(rand.NewPCG(3, 4))
	backendtest.DecodeMXFP4(t, b, backend.CPU(0), r, 100000)
	backendtest.EncodeMXFP4(t, b, backend.CPU(0), r, 100000)
}

func TestGPUTranspose(t *testing.T) {
	b := gpu(t)
	r := rand.New(rand.NewPCG(5, 6))
	cases := backendtest.RandomTransposeCases(r, 300, 1<<20)
	cases = append(cases,
		backendtest.TransposeCase{Shape: tensor.Shape{2880, 5760}, ElemSize: 2, A: 0, B: 1},    // a dense GPT-OSS expert matrix
		backendtest.TransposeCase{Shape: tensor.Shape{4, 2880, 720}, ElemSize: 2, A: 1, B: 2},  // batched, per expert
		backendtest.TransposeCase{Shape: tensor.Shape{3, 2, 4 << 20}, ElemSize: 2, A: 0, B: 1}, // 16 MiB rows: splits the swapped axis
		backendtest.TransposeCase{Shape: tensor.Shape{1000, 3, 2000}, ElemSize: 1, A: 0, B: 2}, // 1-byte elements across a middle axis
		backendtest.TransposeCase{Shape: tensor.Shape{257, 129, 3}, ElemSize: 4, A: 0, B: 1},   // 12-byte runs: generic kernel
		backendtest.TransposeCase{Shape: tensor.Shape{70000, 2, 3}, ElemSize: 8, A: 0, B: 2},   // long swapped axis, 8-byte elements
		backendtest.TransposeCase{Shape: tensor.Shape{2, 70000, 33}, ElemSize: 2, A: 0, B: 1},  // many batches
		backendtest.TransposeCase{Shape: tensor.Shape{131072, 260}, ElemSize: 2, A: 0, B: 1},   // 65 MiB: several chunks of whole slices
		backendtest.TransposeCase{Shape: tensor.Shape{4, 4096, 4096}, ElemSize: 1, A: 0, B: 2}, // 64 MiB: slabs of the middle axis (was 0.09x the CPU)
		backendtest.TransposeCase{Shape: tensor.Shape{6144, 6144}, ElemSize: 2, A: 0, B: 1},    // 72 MiB: bands of rows, scattered in 12 KiB runs
		backendtest.TransposeCase{Shape: tensor.Shape{2, 1 << 25}, ElemSize: 1, A: 0, B: 1},    // 64 MiB: squares over (a, b)
		backendtest.TransposeCase{Shape: tensor.Shape{3000, 7, 40}, ElemSize: 4, A: 0, B: 1},   // 160-byte runs: 16-byte items
		backendtest.TransposeCase{Shape: tensor.Shape{5, 3, 9000}, ElemSize: 2, A: 0, B: 1},    // runs longer than a tile
	)
	backendtest.Transpose(t, b, backend.CPU(0), r, cases)
}

// Inputs larger than a staging buffer go through several chunks on both
// slots; the non-finite index must be global.
func TestGPULarge(t *testing.T) {
	b := gpu(t)
	ref := backend.CPU(0)
	r := rand.New(rand.NewPCG(7, 8))
	n := 3*chunkBytes/4 + 12345 // F32 elements: about 3 chunks of input
	src := make([]byte, 4*n)
	for i := range src {
		src[i] = byte(r.Uint32())
	}
	for _, dt := range []tensor.DType{tensor.BF16, tensor.F16} {
		got, want := make([]byte, 2*n), make([]byte, 2*n)
		if err := ref.Convert(want, dt, src, tensor.F32); err != nil {
			t.Fatal(err)
		}
		if err := b.Convert(got, dt, src, tensor.F32); err != nil {
			t.Fatal(err)
		}
		backendtest.RequireSame(t, "large convert F32 -> "+dt.String(), got, want, 2)
	}
	g := 5 * chunkBytes / 128 / 2 // groups: 2.5 chunks of F32 decode output
	blocks, scales := make([]byte, 16*g), make([]byte, g)
	for i := range blocks {
		blocks[i] = byte(r.Uint32())
	}
	for i := range scales {
		scales[i] = byte(110 + r.IntN(30))
	}
	got, want := make([]byte, 128*g), make([]byte, 128*g)
	if err := ref.DecodeMXFP4(want, tensor.F32, blocks, scales); err != nil {
		t.Fatal(err)
	}
	if err := b.DecodeMXFP4(got, tensor.F32, blocks, scales); err != nil {
		t.Fatal(err)
	}
	backendtest.RequireSame(t, "large decode", got, want, 4)
	// Encode the decoded values back; then put a NaN in the third chunk.
	gb, gs, wb, ws := make([]byte, 16*g), make([]byte, g), make([]byte, 16*g), make([]byte, g)
	if err := ref.EncodeMXFP4(wb, ws, want, tensor.F32); err != nil {
		t.Fatal(err)
	}
	if err := b.EncodeMXFP4(gb, gs, want, tensor.F32); err != nil {
		t.Fatal(err)
	}
	backendtest.RequireSame(t, "large encode scales", gs, ws, 1)
	backendtest.RequireSame(t, "large encode blocks", gb, wb, 1)
	bad := bytes.Clone(want)
	idx := len(bad)/4 - 100
	le.PutUint32(bad[4*idx:], 0x7fc00000)
	le.PutUint32(bad[4*(idx+50):], 0x7f800000)
	err := b.EncodeMXFP4(gb, gs, bad, tensor.F32)
	want2 := ref.EncodeMXFP4(wb, ws, bad, tensor.F32)
	if err == nil || want2 == nil || err.Error() != want2.Error() {
		t.Fatalf("large encode with a NaN at %d: got %v, want %v", idx, err, want2)
	}
}

// Concurrent callers are serialised by the worker and get their own results.
func TestGPUConcurrent(t *testing.T) {
	b := gpu(t)
	ref := backend.CPU(0)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for range 5 {
				n := 1 + r.IntN(1<<20)
				src := make([]byte, 2*n)
				for i := range src {
					src[i] = byte(r.Uint32())
				}
				got, want := make([]byte, 4*n), make([]byte, 4*n)
				_ = ref.Convert(want, tensor.F32, src, tensor.BF16)
				if err := b.Convert(got, tensor.F32, src, tensor.BF16); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("worker %d: concurrent convert of %d elements differs", w, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestGPUClose(t *testing.T) {
	gpu(t)
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Convert(make([]byte, 4), tensor.F32, make([]byte, 2), tensor.BF16); err == nil {
		t.Error("Convert after Close: no error")
	}
}

// Benchmarks: each transform on 64 MiB-class inputs on the GPU (the timed
// loop, so MB/s is the GPU's end-to-end throughput from and to pageable Go
// memory) and, once per benchmark, on the CPU backend with all cores. The
// extra metrics are the CPU's GB/s and the speedup (CPU time / GPU time).

func benchCompare(b *testing.B, bytesPerOp int, cpu, cuda func() error) {
	g := gpu(b)
	_ = g
	if err := cuda(); err != nil { // warm up (and fail early)
		b.Fatal(err)
	}
	const cpuRuns = 3
	start := time.Now()
	for range cpuRuns {
		if err := cpu(); err != nil {
			b.Fatal(err)
		}
	}
	cpuPer := time.Since(start) / cpuRuns
	b.SetBytes(int64(bytesPerOp))
	b.ResetTimer()
	for b.Loop() {
		if err := cuda(); err != nil {
			b.Fatal(err)
		}
	}
	gpuPer := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(bytesPerOp)/cpuPer.Seconds()/1e9, "cpu_GB/s")
	b.ReportMetric(float64(bytesPerOp)/gpuPer.Seconds()/1e9, "gpu_GB/s")
	b.ReportMetric(cpuPer.Seconds()/gpuPer.Seconds(), "speedup")
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(11, 12))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		le.PutUint64(b[i:], r.Uint64())
	}
	return b
}

func BenchmarkConvert(b *testing.B) {
	const n = 32 << 20 // elements
	for _, c := range []struct{ src, dst tensor.DType }{
		{tensor.F32, tensor.BF16}, {tensor.BF16, tensor.F32}, {tensor.F16, tensor.BF16}, {tensor.F8_E4M3, tensor.BF16},
	} {
		b.Run(fmt.Sprintf("%v_to_%v", c.src, c.dst), func(b *testing.B) {
			g := gpu(b)
			cpu := backend.CPU(0)
			src := randomBytes(n * c.src.Size())
			dst := make([]byte, n*c.dst.Size())
			benchCompare(b, len(src)+len(dst),
				func() error { return cpu.Convert(dst, c.dst, src, c.src) },
				func() error { return g.Convert(dst, c.dst, src, c.src) })
		})
	}
}

func BenchmarkDecodeMXFP4(b *testing.B) {
	const groups = 2 << 20 // 64M elements, 34 MiB in
	for _, dt := range []tensor.DType{tensor.BF16, tensor.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			g := gpu(b)
			cpu := backend.CPU(0)
			blocks := randomBytes(16 * groups)
			scales := make([]byte, groups)
			for i := range scales {
				scales[i] = byte(120 + i%10)
			}
			dst := make([]byte, 32*groups*dt.Size())
			benchCompare(b, len(blocks)+len(scales)+len(dst),
				func() error { return cpu.DecodeMXFP4(dst, dt, blocks, scales) },
				func() error { return g.DecodeMXFP4(dst, dt, blocks, scales) })
		})
	}
}

func BenchmarkEncodeMXFP4(b *testing.B) {
	const groups = 1 << 20
	for _, st := range []tensor.DType{tensor.BF16, tensor.F32} {
		b.Run(st.String(), func(b *testing.B) {
			g := gpu(b)
			cpu := backend.CPU(0)
			r := rand.New(rand.NewPCG(13, 14))
			vals := make([]float32, 32*groups)
			for i := range vals {
				vals[i] = float32(r.NormFloat64())
			}
			src := backendtest.EncodeSource(vals, st)
			blocks, scales := make([]byte, 16*groups), make([]byte, groups)
			benchCompare(b, len(src)+len(blocks)+len(scales),
				func() error { return cpu.EncodeMXFP4(blocks, scales, src, st) },
				func() error { return g.EncodeMXFP4(blocks, scales, src, st) })
		})
	}
}

func BenchmarkTranspose(b *testing.B) {
	for _, c := range []struct {
		name  string
		shape tensor.Shape
		es    int
		a, b  int
	}{
		{"bf16_8192x8192", tensor.Shape{8192, 8192}, 2, 0, 1},
		{"bf16_experts_32x2880x720", tensor.Shape{32, 2880, 720}, 2, 1, 2},
		{"f32_4096x4096", tensor.Shape{4096, 4096}, 4, 0, 1},
		{"u8_4x4096x4096_axes02", tensor.Shape{4, 4096, 4096}, 1, 0, 2},
	} {
		b.Run(c.name, func(b *testing.B) {
			g := gpu(b)
			cpu := backend.CPU(0)
			n := int(c.shape.Numel()) * c.es
			src, dst := randomBytes(n), make([]byte, n)
			benchCompare(b, 2*n,
				func() error { return cpu.Transpose(dst, src, c.shape, c.es, c.a, c.b) },
				func() error { return g.Transpose(dst, src, c.shape, c.es, c.a, c.b) })
		})
	}
}

// TestGPUCalibrate times every kind on this GPU and the CPU backend with all
// cores (what --backend auto does), logs the decision (bench/gpu.sh prints
// it), and checks the routed backend, fused paths included, against the CPU
// bit for bit. The calibration itself compares the GPU's output for every
// kind with the CPU's.
func TestGPUCalibrate(t *testing.T) {
	g := gpu(t)
	cpu := backend.CPU(0)
	r, err := backend.Calibrate(g, cpu, backend.CalibrateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 {
		t.Errorf("calibration problems: %q", r.Problems)
	}
	t.Logf("Calibration: %s", r.Describe(g.Name(), cpu.Name()))
	routed := backend.RouteBy(g, cpu, MinBytes, r)
	t.Logf("Routed: %s", routed.Name())
	backendtest.All(t, routed, cpu, 31)
	// The fused paths through the router: the CPU's bytes, wherever they run.
	rows, cols := 2880, 1024
	src := randomBytes(2 * rows * cols)
	for i := 0; i < len(src); i += 2 {
		src[i+1] = src[i+1]&0x80 | 0x3c // finite, around 1
	}
	want, got := make([]byte, rows*cols/2+rows*cols/32), make([]byte, rows*cols/2+rows*cols/32)
	tr := make([]byte, len(src))
	_ = cpu.Transpose(tr, src, tensor.Shape{rows, cols}, 2, 0, 1)
	_ = cpu.EncodeMXFP4(want[:rows*cols/2], want[rows*cols/2:], tr, tensor.BF16)
	if ok, err := routed.(backend.MXFP4Transposer).EncodeMXFP4T(got[:rows*cols/2], got[rows*cols/2:], src, tensor.BF16, 1, rows, cols); err != nil {
		t.Fatal(err)
	} else if ok {
		backendtest.RequireSame(t, "routed encode of a transpose", got, want, 1)
	} else if r.Place[backend.MXFP4EncodeT] == backend.OnSmall {
		t.Error("encode of a transpose placed on the CPU was declined")
	}
}
