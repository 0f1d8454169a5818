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

// kernelFor picks the kernel and the element width it moves: the widest of
// 16, 8, 4, 2, 1 bytes dividing the run. A run of exactly 1, 2, 4 or 8 bytes
// is one element of the tiled (shared-memory) kernel; anything else goes
// through the generic kernel as run/w elements of w bytes.
func (g transposeGeom) kernelFor() (name string, w int, tiled bool) {
	for _, w = range []int{16, 8, 4, 2, 1} {
		if g.run%w == 0 {
			break
		}
	}
	if g.run == w && w <= 8 {
		return fmt.Sprintf("transpose_tiled_%d", w), w, true
	}
	return fmt.Sprintf("transpose_generic_%d", w), w, false
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
	name, w, tiled := g.kernelFor()
	rowBytes := g.mid * g.B * g.run // one (o, a) row of src
	sliceBytes := g.A * rowBytes    // one o of src (and of dst)

	// Chunks: whole outer slices when one fits in a staging buffer (both
	// sides contiguous), otherwise ranges of a within one outer slice (src
	// contiguous, dst scattered as B*mid runs of (a1-a0)*run bytes).
	var spans []span
	if sliceBytes <= chunkBytes {
		per := chunkBytes / sliceBytes
		for o := 0; o < g.outer; o += per {
			spans = append(spans, span{o0: o, o1: min(g.outer, o+per), u0: 0, u1: g.A})
		}
	} else {
		per := max(1, chunkBytes/rowBytes)
		for o := 0; o < g.outer; o++ {
			for a0 := 0; a0 < g.A; a0 += per {
				spans = append(spans, span{o0: o, o1: o + 1, u0: a0, u1: min(g.A, a0+per)})
			}
		}
	}
	size := func(sp span) int { return (sp.o1 - sp.o0) * (sp.u1 - sp.u0) * rowBytes }
	job := &pipelineJob{
		what:     fmt.Sprintf("%s, shape %v, axes %d and %d", name, shape, a, bx),
		spans:    spans,
		inBytes:  size,
		outBytes: size,
		fill: func(_ *slot, in []byte, sp span) {
			off := (sp.o0*g.A + sp.u0) * rowBytes
			parCopy(in, src[off:off+len(in)])
		},
		launch: func(s *slot, sp span) error {
			nO, aC := int64(sp.o1-sp.o0), int64(sp.u1-sp.u0)
			mid, B := int64(g.mid), int64(g.B)
			if tiled {
				batches := nO * mid
				grid := [3]uint32{
					uint32(min((B+31)/32, maxGridYZ)),
					uint32(min((aC+31)/32, maxGridYZ)),
					uint32(min(batches, maxGridYZ)),
				}
				return b.launch(s, name, grid, [3]uint32{32, 8, 1},
					uint64(s.devOut), uint64(s.devIn), uint64(aC), uint64(mid), uint64(B), uint64(batches))
			}
			inner := int64(g.run / w)
			n := nO * B * mid * aC * inner
			return b.launch(s, name, [3]uint32{blocksFor(n, int64(threadsPerBlock)), 1, 1}, [3]uint32{threadsPerBlock, 1, 1},
				uint64(s.devOut), uint64(s.devIn), uint64(aC), uint64(mid), uint64(B), uint64(inner), uint64(n))
		},
		drain: func(_ *slot, out []byte, sp span) error {
			aC := sp.u1 - sp.u0
			if aC == g.A {
				off := sp.o0 * sliceBytes
				parCopy(dst[off:off+len(out)], out)
				return nil
			}
			// out is [B, mid, aC, run] for outer index o0.
			seg := aC * g.run
			base := sp.o0*sliceBytes + sp.u0*g.run
			for r := 0; r < g.B*g.mid; r++ {
				d := base + r*g.A*g.run
				copy(dst[d:d+seg], out[r*seg:(r+1)*seg])
			}
			return nil
		},
	}
	return b.do(func() error { return b.run(job) })
}
