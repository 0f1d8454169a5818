package kernels

import (
	"fmt"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// copyChunk is the work unit of a transpose that is a plain copy.
const copyChunk = 1 << 20

// TransposePlan is a transpose of two axes reduced to a batch of 2-D
// problems and cut into independent work units (tiles of the swapped plane),
// so that callers can run disjoint unit ranges concurrently.
//
// A row-major tensor of shape [outer..., A, mid..., B, inner...] is viewed as
// [O, A, M, B, R] with R = bytes of one inner run; the output is
// [O, B, M, A, R]. For each (o, m) the A x B plane of R-byte runs is
// transposed tile by tile, with loops specialised for R = 1, 2, 4, 8 and 16
// and copy for longer runs. When the swap keeps the order of the non-unit
// dimensions (a == b, or only one of A, M, B exceeds 1) the bytes do not move
// and the plan is a chunked copy.
type TransposePlan struct {
	o, a, m, b int // outer, first swapped, middle, second swapped extents
	run        int // bytes per moved run (inner extent * element size)
	tile       int
	rowTiles   int
	colTiles   int
	bytes      int
	units      int
	copyOnly   bool
}

// TransposedShape returns shape with axes a and b swapped.
func TransposedShape(shape tensor.Shape, a, b int) tensor.Shape {
	out := shape.Clone()
	out[a], out[b] = out[b], out[a]
	return out
}

// PlanTranspose validates and plans swapping axes a and b of a row-major
// tensor of the given shape whose elements are elemSize bytes (1, 2, 4 or 8).
func PlanTranspose(shape tensor.Shape, elemSize, a, b int) (*TransposePlan, error) {
	switch elemSize {
	case 1, 2, 4, 8:
	default:
		return nil, fmt.Errorf("kernels: transpose: element size %d, want 1, 2, 4 or 8", elemSize)
	}
	if a < 0 || a >= len(shape) || b < 0 || b >= len(shape) {
		return nil, fmt.Errorf("kernels: transpose: axes %d, %d out of range for shape %v", a, b, shape)
	}
	n, err := shape.NumElements()
	if err != nil {
		return nil, fmt.Errorf("kernels: transpose: %w", err)
	}
	if n > int64(maxInt/elemSize) {
		return nil, fmt.Errorf("kernels: transpose: shape %v is too large", shape)
	}
	if a > b {
		a, b = b, a
	}
	p := &TransposePlan{o: 1, m: 1, bytes: int(n) * elemSize}
	if len(shape) > 0 {
		p.a, p.b = shape[a], shape[b]
	}
	p.run = elemSize
	for i, d := range shape {
		switch {
		case i < a:
			p.o *= d
		case i > a && i < b:
			p.m *= d
		case i > b:
			p.run *= d
		}
	}
	// The bytes do not move when at most one of A, the middle dims and B
	// has more than one element: the order of the non-unit dims is kept.
	nonUnit := 0
	for _, d := range [3]int{p.a, p.m, p.b} {
		if d > 1 {
			nonUnit++
		}
	}
	if a == b || n == 0 || nonUnit <= 1 {
		p.copyOnly = true
		p.units = (p.bytes + copyChunk - 1) / copyChunk
		return p, nil
	}
	switch {
	case p.run <= 2:
		p.tile = 64
	case p.run <= 8:
		p.tile = 32
	case p.run <= 32:
		p.tile = 16
	case p.run <= 256:
		p.tile = 8
	case p.run <= 4096:
		p.tile = 2
	default:
		p.tile = 1
	}
	p.rowTiles = (p.a + p.tile - 1) / p.tile
	p.colTiles = (p.b + p.tile - 1) / p.tile
	p.units = p.o * p.m * p.rowTiles * p.colTiles
	return p, nil
}

const maxInt = int(^uint(0) >> 1)

// Bytes is the length src and dst must have.
func (p *TransposePlan) Bytes() int { return p.bytes }

// Units is the number of independent work units.
func (p *TransposePlan) Units() int { return p.units }

// Run performs units [lo, hi). Distinct units write disjoint bytes of dst.
// dst and src must be Bytes() long and must not overlap.
func (p *TransposePlan) Run(dst, src []byte, lo, hi int) {
	if p.copyOnly {
		for u := lo; u < hi; u++ {
			s, e := u*copyChunk, min((u+1)*copyChunk, p.bytes)
			copy(dst[s:e], src[s:e])
		}
		return
	}
	R := p.run
	srcStride := p.m * p.b * R // bytes between rows i and i+1 of a plane in src
	dstStride := p.m * p.a * R // bytes between rows j and j+1 of a plane in dst
	for u := lo; u < hi; u++ {
		ct := u % p.colTiles
		r := u / p.colTiles
		rt := r % p.rowTiles
		batch := r / p.rowTiles
		mi := batch % p.m
		oi := batch / p.m
		srcBase := (oi*p.a*p.m*p.b + mi*p.b) * R
		dstBase := (oi*p.b*p.m*p.a + mi*p.a) * R
		i0, i1 := rt*p.tile, min((rt+1)*p.tile, p.a)
		j0, j1 := ct*p.tile, min((ct+1)*p.tile, p.b)
		s := src[srcBase:]
		d := dst[dstBase:]
		switch R {
		case 1:
			tile1(d, s, i0, i1, j0, j1, srcStride, dstStride)
		case 2:
			tile2(d, s, i0, i1, j0, j1, srcStride, dstStride)
		case 4:
			tile4(d, s, i0, i1, j0, j1, srcStride, dstStride)
		case 8:
			tile8(d, s, i0, i1, j0, j1, srcStride, dstStride)
		case 16:
			tile16(d, s, i0, i1, j0, j1, srcStride, dstStride)
		default:
			tileRun(d, s, R, i0, i1, j0, j1, srcStride, dstStride)
		}
	}
}

// Transpose swaps axes a and b of src (row-major, the given shape, elements
// of elemSize bytes: 1, 2, 4 or 8) into dst. dst and src must not overlap.
func Transpose(dst, src []byte, shape tensor.Shape, elemSize, a, b int) error {
	p, err := PlanTranspose(shape, elemSize, a, b)
	if err != nil {
		return err
	}
	if err := p.Check(dst, src); err != nil {
		return err
	}
	p.Run(dst, src, 0, p.Units())
	return nil
}

// Check verifies the buffer lengths against the plan.
func (p *TransposePlan) Check(dst, src []byte) error {
	if len(src) != p.bytes {
		return fmt.Errorf("kernels: transpose: source length %d, want %d", len(src), p.bytes)
	}
	if len(dst) != p.bytes {
		return fmt.Errorf("kernels: transpose: destination length %d, want %d", len(dst), p.bytes)
	}
	return nil
}

// The tile loops write dst row j (a contiguous run of i) while reading src
// column j; the tile is small enough for both sides to stay in L1.

func tile1(d, s []byte, i0, i1, j0, j1, ss, ds int) {
	for j := j0; j < j1; j++ {
		row := d[j*ds+i0 : j*ds+i1]
		k := i0*ss + j
		for x := range row {
			row[x] = s[k]
			k += ss
		}
	}
}

func tile2(d, s []byte, i0, i1, j0, j1, ss, ds int) {
	for j := j0; j < j1; j++ {
		row := d[j*ds+2*i0 : j*ds+2*i1]
		k := i0*ss + 2*j
		for x := 0; x+2 <= len(row); x += 2 {
			le.PutUint16(row[x:x+2], le.Uint16(s[k:k+2]))
			k += ss
		}
	}
}

func tile4(d, s []byte, i0, i1, j0, j1, ss, ds int) {
	for j := j0; j < j1; j++ {
		row := d[j*ds+4*i0 : j*ds+4*i1]
		k := i0*ss + 4*j
		for x := 0; x+4 <= len(row); x += 4 {
			le.PutUint32(row[x:x+4], le.Uint32(s[k:k+4]))
			k += ss
		}
	}
}

func tile8(d, s []byte, i0, i1, j0, j1, ss, ds int) {
	for j := j0; j < j1; j++ {
		row := d[j*ds+8*i0 : j*ds+8*i1]
		k := i0*ss + 8*j
		for x := 0; x+8 <= len(row); x += 8 {
			le.PutUint64(row[x:x+8], le.Uint64(s[k:k+8]))
			k += ss
		}
	}
}

func tile16(d, s []byte, i0, i1, j0, j1, ss, ds int) {
	for j := j0; j < j1; j++ {
		row := d[j*ds+16*i0 : j*ds+16*i1]
		k := i0*ss + 16*j
		for x := 0; x+16 <= len(row); x += 16 {
			v := s[k : k+16]
			w := row[x : x+16]
			le.PutUint64(w[0:], le.Uint64(v[0:]))
			le.PutUint64(w[8:], le.Uint64(v[8:]))
			k += ss
		}
	}
}

func tileRun(d, s []byte, r, i0, i1, j0, j1, ss, ds int) {
	for j := j0; j < j1; j++ {
		row := d[j*ds+r*i0 : j*ds+r*i1]
		k := i0*ss + r*j
		for x := 0; x+r <= len(row); x += r {
			copy(row[x:x+r], s[k:k+r])
			k += ss
		}
	}
}
