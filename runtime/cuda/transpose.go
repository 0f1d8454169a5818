package cuda

import (
	"fmt"

	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// transposeGeom is a two-axis transpose reduced to dst[o][b][m][a][r] =
// src[o][a][m][b][r] with r a run of `run` bytes (inner extent * element
// size).
type transposeGeom struct {
	outer, A, mid, B int
	run              int
}

// itemWidth is the widest of 16, 8, 4, 2, 1 bytes dividing the run: the
// kernel moves runs as run/w items of w bytes.
func (g transposeGeom) itemWidth() int {
	for _, w := range []int{16, 8, 4, 2} {
		if g.run%w == 0 {
			return w
		}
	}
	return 1
}

// tileBytes bounds the kernel's tile (TILE_BYTES in kernels.cu, which it
// must not exceed). A variable only so that the emulation can make tiles
// small.
var tileBytes = 16384

// boxTile picks the tile of the box kernel for a box of A x mid x B items
// of inner words of w bytes: as square as it goes over (a, b), so that
// both sides move in runs, then as deep in m as the tile allows; a tile
// that spans m grows along the axis whose runs then continue (see
// kernels.cu).
func boxTile(A, mid, B, inner, w int) (ta, tm, tb, ti int) {
	words := max(1, tileBytes/w)
	ti = min(inner, words)
	rest := words / ti
	t := 1
	for 4*t*t <= rest {
		t *= 2
	}
	ta, tb = min(A, t), min(B, t)
	tm = min(mid, max(1, rest/(ta*tb)))
	if tm == mid {
		left := rest / (ta * tm * tb)
		if ta == A {
			tb = min(B, tb*left)
		} else if tb == B {
			ta = min(A, ta*left)
		}
	}
	return ta, tm, tb, ti
}

// box is one chunk of a transpose: ranges of o, a, m and b.
type box struct {
	lo, hi [4]int // o, a, m, b
}

func (x box) ext(i int) int { return x.hi[i] - x.lo[i] }

// minRun is the shortest contiguous run worth a chunk shape: below it the
// host's gather or scatter spends more on per-run overhead than on bytes.
// (A variable only so that the emulation, with small chunks, takes both
// shapes.)
var minRun = 4096

// boxes splits the transpose into chunks of at most chunkBytes (a single
// run larger than that excepted): whole outer slices when one fits (both
// sides contiguous); else slabs of m when one fits (runs of m*B and m*A
// items); else, per (o, m), bands of a (the source contiguous) when their
// rows in the destination stay long, and otherwise squares over (a, b).
func (g transposeGeom) boxes() []box {
	full := func(o0, o1 int) box { return box{lo: [4]int{o0, 0, 0, 0}, hi: [4]int{o1, g.A, g.mid, g.B}} }
	var out []box
	slice := g.A * g.mid * g.B * g.run
	if slice <= chunkBytes {
		per := chunkBytes / slice
		for o := 0; o < g.outer; o += per {
			out = append(out, full(o, min(g.outer, o+per)))
		}
		return out
	}
	if slab := g.A * g.B * g.run; g.mid > 1 && slab <= chunkBytes {
		per := chunkBytes / slab
		for o := range g.outer {
			for m := 0; m < g.mid; m += per {
				x := full(o, o+1)
				x.lo[2], x.hi[2] = m, min(g.mid, m+per)
				out = append(out, x)
			}
		}
		return out
	}
	aC, bC := min(g.A, max(1, chunkBytes/(g.B*g.run))), g.B
	if aC < g.A && aC*g.run < minRun {
		side := 1
		for (2*side)*(2*side)*g.run <= chunkBytes {
			side *= 2
		}
		aC = min(g.A, side)
		bC = min(g.B, max(1, chunkBytes/(aC*g.run)))
	}
	for o := range g.outer {
		for m := range g.mid {
			for a := 0; a < g.A; a += aC {
				for b := 0; b < g.B; b += bC {
					out = append(out, box{lo: [4]int{o, a, m, b}, hi: [4]int{o + 1, min(g.A, a+aC), m + 1, min(g.B, b+bC)}})
				}
			}
		}
	}
	return out
}

// boxRuns describes the box lo..hi of a row-major array of dims (elements
// of run bytes) as count runs of runLen contiguous bytes, and returns
// where run r starts.
func boxRuns(dims, lo, hi [4]int, run int) (count, runLen int, at func(r int) int) {
	runLen = run
	j := 3
	for j >= 0 && lo[j] == 0 && hi[j] == dims[j] {
		runLen *= dims[j]
		j--
	}
	if j < 0 {
		return 1, runLen, func(int) int { return 0 }
	}
	runLen *= hi[j] - lo[j]
	var stride [4]int
	s := run
	for d := 3; d >= 0; d-- {
		stride[d] = s
		s *= dims[d]
	}
	count = 1
	for d := range j {
		count *= hi[d] - lo[d]
	}
	return count, runLen, func(r int) int {
		off := lo[j] * stride[j]
		for d := j - 1; d >= 0; d-- {
			e := hi[d] - lo[d]
			off += (lo[d] + r%e) * stride[d]
			r /= e
		}
		return off
	}
}

// parRuns copies between a box of full (dims, lo..hi) and its packed form,
// gathering into packed or scattering from it, on several goroutines when
// it is large.
func parRuns(full []byte, dims, lo, hi [4]int, run int, packed []byte, gather bool) {
	count, runLen, at := boxRuns(dims, lo, hi, run)
	if count == 1 {
		if gather {
			parCopy(packed, full[at(0):at(0)+runLen])
		} else {
			parCopy(full[at(0):at(0)+runLen], packed)
		}
		return
	}
	parallel(count, max(1, copyPiece/runLen), func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			f, p := full[at(r):at(r)+runLen], packed[r*runLen:(r+1)*runLen]
			if gather {
				copy(p, f)
			} else {
				copy(f, p)
			}
		}
	})
}

// Transpose swaps axes a and b of src into dst; see backend.Backend.
func (b *Backend) Transpose(dst, src []byte, shape tensor.Shape, elemSize int, a, bx int) error {
	p, err := kernels.PlanTranspose(shape, elemSize, a, bx)
	if err != nil {
		return err
	}
	if err := p.Check(dst, src); err != nil {
		return err
	}
	if p.CopyOnly() || len(src) == 0 {
		copy(dst, src)
		return nil
	}
	var g transposeGeom
	g.outer, g.A, g.mid, g.B, g.run = p.Geometry()
	w := g.itemWidth()
	name := fmt.Sprintf("transpose_box_%d", w)
	boxes := g.boxes()
	spans := make([]span, len(boxes))
	for i := range spans {
		spans[i] = span{u0: i}
	}
	srcDims := [4]int{g.outer, g.A, g.mid, g.B}
	dstDims := [4]int{g.outer, g.B, g.mid, g.A}
	swap := func(x [4]int) [4]int { return [4]int{x[0], x[3], x[2], x[1]} }
	size := func(sp span) int {
		x := boxes[sp.u0]
		return x.ext(0) * x.ext(1) * x.ext(2) * x.ext(3) * g.run
	}
	job := &pipelineJob{
		what:     fmt.Sprintf("%s, shape %v, axes %d and %d", name, shape, a, bx),
		spans:    spans,
		inBytes:  size,
		outBytes: size,
		fill: func(_ *slot, in []byte, sp span) {
			x := boxes[sp.u0]
			parRuns(src, srcDims, x.lo, x.hi, g.run, in, true)
		},
		launch: func(s *slot, sp span) error {
			x := boxes[sp.u0]
			inner := g.run / w
			ta, tm, tb, ti := boxTile(x.ext(1), x.ext(2), x.ext(3), inner, w)
			tiles := int64(x.ext(0)) * int64(ceilDiv(x.ext(1), ta)*ceilDiv(x.ext(2), tm)) * int64(ceilDiv(x.ext(3), tb)*ceilDiv(inner, ti))
			return b.launch(s, name, [3]uint32{blocksFor(tiles, 1), 1, 1}, [3]uint32{threadsPerBlock, 1, 1},
				uint64(s.devOut), uint64(s.devIn), uint64(x.ext(0)), uint64(x.ext(1)), uint64(x.ext(2)), uint64(x.ext(3)),
				uint64(inner), uint64(ta), uint64(tm), uint64(tb), uint64(ti))
		},
		drain: func(_ *slot, out []byte, sp span) error {
			x := boxes[sp.u0]
			parRuns(dst, dstDims, swap(x.lo), swap(x.hi), g.run, out, false)
			return nil
		},
	}
	return b.do(func() error { return b.run(job) })
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
