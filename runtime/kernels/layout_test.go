package kernels

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// strides returns row-major element strides.
func strides(shape tensor.Shape) []int {
	st := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	return st
}

// forEachIndex calls f with every multi-index of shape in row-major order.
func forEachIndex(shape tensor.Shape, f func(idx []int)) {
	n := int(shape.Numel())
	idx := make([]int, len(shape))
	for range n {
		f(idx)
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
}

func offset(idx, st []int) int {
	o := 0
	for i := range idx {
		o += idx[i] * st[i]
	}
	return o
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randShape(rng *rand.Rand, rank, maxElems int) tensor.Shape {
	for {
		s := make(tensor.Shape, rank)
		for i := range s {
			s[i] = 1 + rng.IntN(6)
			if rng.IntN(4) == 0 {
				s[i] = 1 + rng.IntN(80)
			}
		}
		if int(s.Numel()) <= maxElems {
			return s
		}
	}
}

func naiveTranspose(src []byte, shape tensor.Shape, es, a, b int) []byte {
	out := TransposedShape(shape, a, b)
	ss, os := strides(shape), strides(out)
	dst := make([]byte, len(src))
	oi := make([]int, len(shape))
	forEachIndex(shape, func(idx []int) {
		copy(oi, idx)
		oi[a], oi[b] = idx[b], idx[a]
		copy(dst[es*offset(oi, os):][:es], src[es*offset(idx, ss):][:es])
	})
	return dst
}

func TestTransposeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for rank := 1; rank <= 5; rank++ {
		for a := range rank {
			for b := range rank {
				for _, es := range []int{1, 2, 4, 8} {
					for range 3 {
						shape := randShape(rng, rank, 20000)
						src := randBytes(rng, int(shape.Numel())*es)
						dst := make([]byte, len(src))
						if err := Transpose(dst, src, shape, es, a, b); err != nil {
							t.Fatal(err)
						}
						if want := naiveTranspose(src, shape, es, a, b); !bytes.Equal(dst, want) {
							t.Fatalf("transpose %v es=%d axes %d,%d differs from the reference", shape, es, a, b)
						}
					}
				}
			}
		}
	}
}

func TestTransposeTiles(t *testing.T) {
	// Shapes that cross tile edges, long inner runs, and degenerate axes.
	rng := rand.New(rand.NewPCG(9, 10))
	cases := []struct {
		shape tensor.Shape
		a, b  int
	}{
		{tensor.Shape{130, 67}, 0, 1},
		{tensor.Shape{65, 129}, 1, 0},
		{tensor.Shape{3, 65, 5, 70, 2}, 1, 3},
		{tensor.Shape{2, 33, 17, 3}, 1, 2}, // run of 3 elements
		{tensor.Shape{5, 7, 600}, 0, 1},    // long runs (copy)
		{tensor.Shape{3, 4, 5000}, 0, 1},   // very long runs
		{tensor.Shape{1, 300}, 0, 1},       // A == 1: copy
		{tensor.Shape{300, 1}, 0, 1},       // B == 1: copy
		{tensor.Shape{4, 0, 5}, 0, 2},      // empty
		{tensor.Shape{7}, 0, 0},
	}
	for _, c := range cases {
		for _, es := range []int{1, 2, 4, 8} {
			src := randBytes(rng, int(c.shape.Numel())*es)
			dst := make([]byte, len(src))
			if err := Transpose(dst, src, c.shape, es, c.a, c.b); err != nil {
				t.Fatal(err)
			}
			if want := naiveTranspose(src, c.shape, es, c.a, c.b); !bytes.Equal(dst, want) {
				t.Fatalf("transpose %v es=%d axes %d,%d differs from the reference", c.shape, es, c.a, c.b)
			}
			// Units can run in any order and in pieces.
			p, _ := PlanTranspose(c.shape, es, c.a, c.b)
			dst2 := make([]byte, len(src))
			for u := p.Units() - 1; u >= 0; u-- {
				p.Run(dst2, src, u, u+1)
			}
			if !bytes.Equal(dst, dst2) {
				t.Fatalf("transpose %v: unit-by-unit run differs", c.shape)
			}
		}
	}
}

func TestTransposeErrors(t *testing.T) {
	for _, c := range []struct {
		shape    tensor.Shape
		es, a, b int
		n        int
	}{
		{tensor.Shape{2, 3}, 3, 0, 1, 18},
		{tensor.Shape{2, 3}, 2, 0, 2, 12},
		{tensor.Shape{2, 3}, 2, -1, 1, 12},
		{tensor.Shape{2, 3}, 2, 0, 1, 10},
		{tensor.Shape{}, 2, 0, 0, 2},
		{tensor.Shape{2, -3}, 2, 0, 1, 12},
	} {
		if err := Transpose(make([]byte, c.n), make([]byte, c.n), c.shape, c.es, c.a, c.b); err == nil {
			t.Errorf("transpose %v es=%d axes %d,%d len %d accepted", c.shape, c.es, c.a, c.b, c.n)
		}
	}
	if err := Transpose(make([]byte, 10), make([]byte, 12), tensor.Shape{2, 3}, 2, 0, 1); err == nil {
		t.Error("short destination accepted")
	}
}

func TestUnzipZip(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for iter := range 300 {
		rank := 1 + rng.IntN(4)
		axis := rng.IntN(rank)
		n := 1 + rng.IntN(4)
		es := []int{1, 2, 4, 8, 3}[rng.IntN(5)]
		shape := randShape(rng, rank, 4000)
		shape[axis] *= n
		if iter%10 == 0 {
			shape = tensor.Shape{3, 2 * 3000} // long, several cache blocks
			axis, n = 1, 2
			rank = 2
		}
		src := randBytes(rng, int(shape.Numel())*es)
		part := shape.Clone()
		part[axis] /= n
		dsts := make([][]byte, n)
		for k := range dsts {
			dsts[k] = make([]byte, len(src)/n)
		}
		if err := Unzip(dsts, src, shape, es, axis, n); err != nil {
			t.Fatal(err)
		}
		// Naive reference.
		ss, ps := strides(shape), strides(part)
		pi := make([]int, rank)
		forEachIndex(shape, func(idx []int) {
			copy(pi, idx)
			pi[axis] = idx[axis] / n
			k := idx[axis] % n
			if !bytes.Equal(dsts[k][es*offset(pi, ps):][:es], src[es*offset(idx, ss):][:es]) {
				t.Fatalf("unzip %v axis %d n %d es %d: element %v misplaced", shape, axis, n, es, idx)
			}
		})
		back := make([]byte, len(src))
		if err := Zip(back, dsts, shape, es, axis, n); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, src) {
			t.Fatalf("zip(unzip(x)) != x for %v axis %d n %d es %d", shape, axis, n, es)
		}
	}
	if err := Unzip([][]byte{make([]byte, 6), make([]byte, 6)}, make([]byte, 12), tensor.Shape{2, 3}, 2, 1, 2); err == nil {
		t.Error("indivisible axis accepted")
	}
	if err := Zip(make([]byte, 12), [][]byte{make([]byte, 6)}, tensor.Shape{2, 3}, 2, 1, 2); err == nil {
		t.Error("wrong part count accepted")
	}
	if err := Zip(make([]byte, 12), [][]byte{make([]byte, 6), make([]byte, 4)}, tensor.Shape{3, 2}, 2, 1, 2); err == nil {
		t.Error("wrong part length accepted")
	}
}

func TestConcatSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for range 300 {
		rank := 1 + rng.IntN(4)
		axis := rng.IntN(rank)
		es := []int{1, 2, 4, 8, 6}[rng.IntN(5)]
		base := randShape(rng, rank, 3000)
		parts := 1 + rng.IntN(4)
		shapes := make([]tensor.Shape, parts)
		srcs := make([][]byte, parts)
		sizes := make([]int, parts)
		total := base.Clone()
		total[axis] = 0
		for k := range shapes {
			shapes[k] = base.Clone()
			shapes[k][axis] = rng.IntN(5) // zero-sized parts included
			sizes[k] = shapes[k][axis]
			total[axis] += sizes[k]
			srcs[k] = randBytes(rng, int(shapes[k].Numel())*es)
		}
		dst := make([]byte, int(total.Numel())*es)
		if err := Concat(dst, srcs, shapes, es, axis); err != nil {
			t.Fatal(err)
		}
		// Naive reference: walk the output and find each element's source.
		ts := strides(total)
		si := make([]int, rank)
		forEachIndex(total, func(idx []int) {
			copy(si, idx)
			k := 0
			for si[axis] >= sizes[k] {
				si[axis] -= sizes[k]
				k++
			}
			if !bytes.Equal(dst[es*offset(idx, ts):][:es], srcs[k][es*offset(si, strides(shapes[k])):][:es]) {
				t.Fatalf("concat %v axis %d: element %v wrong", shapes, axis, idx)
			}
		})
		outs := make([][]byte, parts)
		for k := range outs {
			outs[k] = make([]byte, len(srcs[k]))
		}
		if err := Split(outs, dst, total, es, axis, sizes); err != nil {
			t.Fatal(err)
		}
		for k := range outs {
			if !bytes.Equal(outs[k], srcs[k]) {
				t.Fatalf("split(concat(x)) part %d differs", k)
			}
		}
	}
	if err := Concat(make([]byte, 24), [][]byte{make([]byte, 12), make([]byte, 12)}, []tensor.Shape{{2, 3}, {3, 2}}, 2, 1); err == nil {
		t.Error("mismatched off-axis dims accepted")
	}
	if err := Split([][]byte{make([]byte, 4), make([]byte, 8)}, make([]byte, 12), tensor.Shape{2, 3}, 2, 1, []int{1, 1}); err == nil {
		t.Error("sizes not summing to the axis accepted")
	}
	if err := Split([][]byte{make([]byte, 4), make([]byte, 4)}, make([]byte, 12), tensor.Shape{2, 3}, 2, 1, []int{1, 2}); err == nil {
		t.Error("wrong part length accepted")
	}
}

func TestKernelsDoNotAllocate(t *testing.T) {
	src := make([]byte, 64*96*4)
	dst := make([]byte, len(src))
	shape := tensor.Shape{64, 96}
	halves := [][]byte{make([]byte, len(src)/2), make([]byte, len(src)/2)}
	halfShapes := []tensor.Shape{{64, 48}, {64, 48}}
	blocks, scales := make([]byte, 16*192), make([]byte, 192)
	for name, f := range map[string]func() error{
		"transpose": func() error { return Transpose(dst, src, shape, 4, 0, 1) },
		"convert":   func() error { return Convert(dst[:len(src)/2], tensor.BF16, src, tensor.F32) },
		"f16":       func() error { return Convert(dst, tensor.F32, src[:len(src)/2], tensor.F16) },
		"unzip":     func() error { return Unzip(halves, src, shape, 4, 1, 2) },
		"zip":       func() error { return Zip(dst, halves, shape, 4, 1, 2) },
		"concat":    func() error { return Concat(dst, halves, halfShapes, 4, 1) },
		"split":     func() error { return Split(halves, src, shape, 4, 1, []int{48, 48}) },
		"decode":    func() error { return DecodeMXFP4ToF32(dst[:128*96], blocks[:16*96], scales[:96]) },
		"encode":    func() error { return EncodeMXFP4FromF32(blocks, scales, src) },
	} {
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := testing.AllocsPerRun(10, func() { _ = f() }); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}
