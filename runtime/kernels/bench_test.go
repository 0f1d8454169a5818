package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Single-threaded kernel benchmarks on 8 MiB buffers (runtime/backend has
// the 64 MiB ones across workers). x-copy is the time of one operation over
// the time of a copy of the same number of bytes (the larger side) measured
// in the same run.

const kbenchBytes = 8 << 20

func kcopyTime(n int) time.Duration {
	a, b := make([]byte, n), make([]byte, n)
	copy(b, a)
	best := time.Duration(1<<63 - 1)
	for range 5 {
		t := time.Now()
		copy(b, a)
		best = min(best, time.Since(t))
	}
	return best
}

func kbench(b *testing.B, n int, op func()) {
	op()
	ct := kcopyTime(n)
	b.SetBytes(int64(n))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		op()
	}
	b.ReportMetric(float64(time.Since(start))/float64(b.N)/float64(ct), "x-copy")
}

func benchF32(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 4*n)
	for i := range n {
		le.PutUint32(b[4*i:], math.Float32bits(float32(rng.NormFloat64()*0.02)))
	}
	return b
}

func BenchmarkKernelConvert(b *testing.B) {
	for _, p := range [][2]tensor.DType{
		{tensor.BF16, tensor.F32}, {tensor.F32, tensor.BF16}, {tensor.F16, tensor.F32},
		{tensor.F32, tensor.F16}, {tensor.F16, tensor.BF16}, {tensor.BF16, tensor.F16}, {tensor.F8_E4M3, tensor.BF16},
	} {
		st, dt := p[0], p[1]
		b.Run(st.String()+"to"+dt.String(), func(b *testing.B) {
			n := kbenchBytes / max(st.Size(), dt.Size())
			f32 := benchF32(n)
			src := make([]byte, n*st.Size())
			switch st {
			case tensor.F32:
				src = f32
			case tensor.BF16:
				ConvertF32ToBF16(src, f32)
			case tensor.F16:
				ConvertF32ToF16(src, f32)
			default:
				for i := range src {
					src[i] = byte(i * 13)
				}
			}
			dst := make([]byte, n*dt.Size())
			f, _ := ConvertKernel(dt, st)
			kbench(b, kbenchBytes, func() { f(dst, src) })
		})
	}
}

func BenchmarkKernelTranspose(b *testing.B) {
	for _, c := range []struct {
		name  string
		shape tensor.Shape
		es    int
	}{
		{"u8_2048x4096", tensor.Shape{2048, 4096}, 1},
		{"bf16_2048x2048", tensor.Shape{2048, 2048}, 2},
		{"f32_1024x2048", tensor.Shape{1024, 2048}, 4},
		{"f64_1024x1024", tensor.Shape{1024, 1024}, 8},
	} {
		b.Run(c.name, func(b *testing.B) {
			src := make([]byte, kbenchBytes)
			dst := make([]byte, kbenchBytes)
			kbench(b, kbenchBytes, func() { _ = Transpose(dst, src, c.shape, c.es, 0, 1) })
		})
	}
}

func BenchmarkKernelMXFP4(b *testing.B) {
	groups := kbenchBytes / 64
	rng := rand.New(rand.NewPCG(3, 4))
	blocks, scales := make([]byte, 16*groups), make([]byte, groups)
	for i := range blocks {
		blocks[i] = byte(rng.Uint32())
	}
	for i := range scales {
		scales[i] = byte(110 + rng.IntN(20))
	}
	bf := make([]byte, 64*groups)
	f32 := make([]byte, 128*groups)
	b.Run("DecodeBF16", func(b *testing.B) {
		kbench(b, len(bf), func() { _ = DecodeMXFP4ToBF16(bf, blocks, scales) })
	})
	b.Run("DecodeF32", func(b *testing.B) {
		kbench(b, len(f32), func() { _ = DecodeMXFP4ToF32(f32, blocks, scales) })
	})
	b.Run("EncodeBF16", func(b *testing.B) {
		kbench(b, len(bf), func() { _ = EncodeMXFP4FromBF16(blocks, scales, bf) })
	})
	b.Run("EncodeF32", func(b *testing.B) {
		kbench(b, len(f32), func() { _ = EncodeMXFP4FromF32(blocks, scales, f32) })
	})
}
