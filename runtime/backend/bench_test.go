package backend

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// The benchmarks work on 64 MiB tensors. Each reports bytes/s for the
// larger of its input and output (b.SetBytes) and "x-copy": the time of one
// operation divided by the time of a single-threaded copy of that many
// bytes, measured in the same run (1.0 = as fast as memmove; lower is
// faster). Sub-benchmarks w1 run one worker (the plain kernel), wN use
// GOMAXPROCS workers.

const benchBytes = 64 << 20

// copyTime returns the best of a few single-threaded copies of n bytes.
func copyTime(n int) time.Duration {
	a, b := make([]byte, n), make([]byte, n)
	for i := range a {
		a[i] = byte(i)
	}
	copy(b, a) // fault both in
	best := time.Duration(1<<63 - 1)
	for range 5 {
		t := time.Now()
		copy(b, a)
		best = min(best, time.Since(t))
	}
	return best
}

// runBench runs op b.N times and reports throughput and the copy ratio.
func runBench(b *testing.B, n int, op func(Backend) error) {
	for _, w := range []struct {
		name    string
		workers int
	}{{"w1", 1}, {"wN", 0}} {
		b.Run(w.name, func(b *testing.B) {
			be := CPU(w.workers)
			if err := op(be); err != nil { // warm up, fault in the output
				b.Fatal(err)
			}
			ct := copyTime(n)
			b.SetBytes(int64(n))
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := op(be); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.ReportMetric(float64(el)/float64(b.N)/float64(ct), "x-copy")
		})
	}
}

func benchData(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	f := finiteF32(rng, n/4)
	return f
}

func BenchmarkConvert(b *testing.B) {
	for _, p := range [][2]tensor.DType{
		{tensor.BF16, tensor.F32}, {tensor.F32, tensor.BF16}, {tensor.F16, tensor.F32},
		{tensor.F32, tensor.F16}, {tensor.F16, tensor.BF16}, {tensor.F8_E4M3, tensor.BF16},
	} {
		st, dt := p[0], p[1]
		b.Run(fmt.Sprintf("%vto%v", st, dt), func(b *testing.B) {
			n := benchBytes / max(st.Size(), dt.Size()) // elements
			f32 := benchData(4 * n)
			src := make([]byte, n*st.Size())
			switch st {
			case tensor.F32:
				src = f32
			case tensor.BF16:
				kernels.ConvertF32ToBF16(src, f32)
			case tensor.F16:
				kernels.ConvertF32ToF16(src, f32)
			default:
				rng := rand.New(rand.NewPCG(3, 4))
				for i := range src {
					src[i] = byte(rng.Uint32())
				}
			}
			dst := make([]byte, n*dt.Size())
			runBench(b, benchBytes, func(be Backend) error { return be.Convert(dst, dt, src, st) })
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
		{"bf16_4096x8192", tensor.Shape{4096, 8192}, 2, 0, 1},
		{"f32_4096x4096", tensor.Shape{4096, 4096}, 4, 0, 1},
		{"u8_8192x8192", tensor.Shape{8192, 8192}, 1, 0, 1},
		{"f64_2048x4096", tensor.Shape{2048, 4096}, 8, 0, 1},
		{"bf16_experts_8x2048x2048_swap12", tensor.Shape{8, 2048, 2048}, 2, 1, 2},
		{"bf16_64x8x512x128_swap13", tensor.Shape{64, 8, 512, 128}, 2, 1, 3},
		{"bf16_heads_4096x32x256_swap01", tensor.Shape{4096, 32, 256}, 2, 0, 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			src := make([]byte, int(c.shape.Numel())*c.es)
			for i := range src {
				src[i] = byte(i * 7)
			}
			dst := make([]byte, len(src))
			runBench(b, len(src), func(be Backend) error { return be.Transpose(dst, src, c.shape, c.es, c.a, c.b) })
		})
	}
}

func BenchmarkDecodeMXFP4(b *testing.B) {
	for _, dt := range []tensor.DType{tensor.BF16, tensor.F32} {
		b.Run(dt.String(), func(b *testing.B) {
			groups := benchBytes / (32 * dt.Size())
			rng := rand.New(rand.NewPCG(5, 6))
			blocks := make([]byte, 16*groups)
			scales := make([]byte, groups)
			for i := range blocks {
				blocks[i] = byte(rng.Uint32())
			}
			for i := range scales {
				scales[i] = byte(110 + rng.IntN(30))
			}
			dst := make([]byte, 32*dt.Size()*groups)
			runBench(b, len(dst), func(be Backend) error { return be.DecodeMXFP4(dst, dt, blocks, scales) })
		})
	}
}

func BenchmarkEncodeMXFP4(b *testing.B) {
	for _, st := range []tensor.DType{tensor.BF16, tensor.F32} {
		b.Run(st.String(), func(b *testing.B) {
			groups := benchBytes / (32 * st.Size())
			f32 := benchData(4 * 32 * groups)
			src := f32
			if st == tensor.BF16 {
				src = make([]byte, 64*groups)
				kernels.ConvertF32ToBF16(src, f32)
			}
			blocks, scales := make([]byte, 16*groups), make([]byte, groups)
			runBench(b, len(src), func(be Backend) error { return be.EncodeMXFP4(blocks, scales, src, st) })
		})
	}
}
