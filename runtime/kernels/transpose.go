package kernels

import (
	"fmt"
	"unsafe"

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
// transposed tile by tile: runs of up to 16 bytes are staged through a
// small contiguous buffer (so power-of-two strides cannot thrash the cache)
// and moved by loops specialised for R = 1, 2, 4, 8; longer runs are moved
// with copy. When the swap keeps the order of the non-unit
// dimensions (a == b, or only one of A, M, B exceeds 1) the bytes do not move
// and the plan is a chunked copy.
type TransposePlan struct {
	o, a, m, b int // outer, first swapped, middle, second swapped extents
	run        int // bytes per moved run (inner extent * element size)
	tileI      int
	tileJ      int
	rowTiles   int
	colTiles   int
	bytes      int
	units      int
	copyOnly   bool
}

// Geometry is the transpose reduced to dst[o][b][m][a][r] = src[o][a][m][b][r]:
// the outer, first swapped, middle and second swapped extents, and the bytes
// of one moved run (inner extent * element size). Other backends lay their
// kernels out on it.
func (p TransposePlan) Geometry() (outer, a, mid, b, run int) { return p.o, p.a, p.m, p.b, p.run }

// CopyOnly reports whether the transpose leaves the bytes where they are (at
// most one of the swapped and middle extents exceeds one).
func (p TransposePlan) CopyOnly() bool { return p.copyOnly }

// TransposedShape returns shape with axes a and b swapped.
func TransposedShape(shape tensor.Shape, a, b int) tensor.Shape {
	out := shape.Clone()
	out[a], out[b] = out[b], out[a]
	return out
}

// PlanTranspose validates and plans swapping axes a and b of a row-major
// tensor of the given shape whose elements are elemSize bytes (1, 2, 4 or 8).
func PlanTranspose(shape tensor.Shape, elemSize, a, b int) (TransposePlan, error) {
	switch elemSize {
	case 1, 2, 4, 8:
	default:
		return TransposePlan{}, fmt.Errorf("kernels: transpose: element size %d, want 1, 2, 4 or 8", elemSize)
	}
	if a < 0 || a >= len(shape) || b < 0 || b >= len(shape) {
		return TransposePlan{}, fmt.Errorf("kernels: transpose: axes %d, %d out of range for shape %v", a, b, shape)
	}
	n, err := shape.NumElements()
	if err != nil {
		return TransposePlan{}, fmt.Errorf("kernels: transpose: %w", err)
	}
	if n > int64(maxInt/elemSize) {
		return TransposePlan{}, fmt.Errorf("kernels: transpose: shape %v is too large", shape)
	}
	if a > b {
		a, b = b, a
	}
	p := TransposePlan{o: 1, m: 1, bytes: int(n) * elemSize}
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
	// Tiles are tileI rows of src (i) by tileJ columns (j); the staged
	// block is at most tileBuf bytes.
	p.tileI, p.tileJ = transposeTile(p.run)
	p.rowTiles = (p.a + p.tileI - 1) / p.tileI
	p.colTiles = (p.b + p.tileJ - 1) / p.tileJ
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
	var buf [tileBuf]byte
	for u := lo; u < hi; u++ {
		ct := u % p.colTiles
		r := u / p.colTiles
		rt := r % p.rowTiles
		batch := r / p.rowTiles
		mi := batch % p.m
		oi := batch / p.m
		srcBase := (oi*p.a*p.m*p.b + mi*p.b) * R
		dstBase := (oi*p.b*p.m*p.a + mi*p.a) * R
		i0, i1 := rt*p.tileI, min((rt+1)*p.tileI, p.a)
		j0, j1 := ct*p.tileJ, min((ct+1)*p.tileJ, p.b)
		s := src[srcBase:]
		d := dst[dstBase:]
		if R > 16 {
			tileRun(d, s, R, i0, i1, j0, j1, srcStride, dstStride)
			continue
		}
		// Stage the tile's source rows in a contiguous buffer: with
		// power-of-two strides the rows of a tile would otherwise share a
		// few cache sets and evict each other while the columns are read.
		w := (j1 - j0) * R
		for i := i0; i < i1; i++ {
			copy(buf[(i-i0)*w:(i-i0+1)*w], s[i*srcStride+j0*R:i*srcStride+j1*R])
		}
		st := buf[:(i1-i0)*w]
		switch R {
		case 1:
			tile1(d, st, w, i0, i1, j0, j1, dstStride)
		case 2:
			tile2(d, st, w, i0, i1, j0, j1, dstStride)
		case 4:
			tile4(d, st, w, i0, i1, j0, j1, dstStride)
		case 8:
			tile8(d, st, w, i0, i1, j0, j1, dstStride)
		default:
			tileSmall(d, st, R, w, i0, i1, j0, j1, dstStride)
		}
	}
}

// transposeTile picks the tile (rows of src by columns of src) for a run
// size; the sizes for 1..16-byte runs were measured on 64 MiB transposes
// (taller tiles pay off once rows stage at least 64 bytes).
func transposeTile(run int) (ti, tj int) {
	switch {
	case run <= 1:
		return 32, 128
	case run <= 2:
		return 128, 64
	case run <= 4:
		return 128, 32
	case run <= 8:
		return 64, 32
	case run <= 16:
		return 32, 16
	case run <= 256:
		return 8, 8
	case run <= 4096:
		return 2, 2
	}
	return 1, 1
}

// tileBuf holds the largest staged tile (see transposeTile).
const tileBuf = 16 << 10

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

// The tile loops write dst row j (a contiguous run of i) from column j of
// the staged tile st (rows of w bytes, L1-resident). They move elements as
// opaque units, so host byte order does not matter; the slices are bounds
// checked once per row and the inner loops use unchecked pointer arithmetic
// within them (unaligned access to pointer-free types is allowed).

func tile1(d, st []byte, w, i0, i1, j0, j1, ds int) {
	n := i1 - i0
	if n <= 0 || j1 <= j0 {
		return
	}
	_ = st[(n-1)*w+1*(j1-j0)-1] // the furthest staged element: bounds checked once
	for j := j0; j < j1; j++ {
		row := d[j*ds+1*i0 : j*ds+1*i1] // bounds checked
		pd := unsafe.Pointer(unsafe.SliceData(row))
		ps := unsafe.Pointer(&st[1*(j-j0)])
		x := 0
		for ; x+4 <= n; x += 4 {
			*(*uint8)(unsafe.Add(pd, 1*x)) = *(*uint8)(unsafe.Add(ps, x*w))
			*(*uint8)(unsafe.Add(pd, 1*x+1)) = *(*uint8)(unsafe.Add(ps, x*w+w))
			*(*uint8)(unsafe.Add(pd, 1*x+2*1)) = *(*uint8)(unsafe.Add(ps, x*w+2*w))
			*(*uint8)(unsafe.Add(pd, 1*x+3*1)) = *(*uint8)(unsafe.Add(ps, x*w+3*w))
		}
		for ; x < n; x++ {
			*(*uint8)(unsafe.Add(pd, 1*x)) = *(*uint8)(unsafe.Add(ps, x*w))
		}
	}
}

func tile2(d, st []byte, w, i0, i1, j0, j1, ds int) {
	n := i1 - i0
	if n <= 0 || j1 <= j0 {
		return
	}
	_ = st[(n-1)*w+2*(j1-j0)-1] // the furthest staged element: bounds checked once
	for j := j0; j < j1; j++ {
		row := d[j*ds+2*i0 : j*ds+2*i1] // bounds checked
		pd := unsafe.Pointer(unsafe.SliceData(row))
		ps := unsafe.Pointer(&st[2*(j-j0)])
		x := 0
		for ; x+4 <= n; x += 4 {
			*(*uint16)(unsafe.Add(pd, 2*x)) = *(*uint16)(unsafe.Add(ps, x*w))
			*(*uint16)(unsafe.Add(pd, 2*x+2)) = *(*uint16)(unsafe.Add(ps, x*w+w))
			*(*uint16)(unsafe.Add(pd, 2*x+2*2)) = *(*uint16)(unsafe.Add(ps, x*w+2*w))
			*(*uint16)(unsafe.Add(pd, 2*x+3*2)) = *(*uint16)(unsafe.Add(ps, x*w+3*w))
		}
		for ; x < n; x++ {
			*(*uint16)(unsafe.Add(pd, 2*x)) = *(*uint16)(unsafe.Add(ps, x*w))
		}
	}
}

func tile4(d, st []byte, w, i0, i1, j0, j1, ds int) {
	n := i1 - i0
	if n <= 0 || j1 <= j0 {
		return
	}
	_ = st[(n-1)*w+4*(j1-j0)-1] // the furthest staged element: bounds checked once
	for j := j0; j < j1; j++ {
		row := d[j*ds+4*i0 : j*ds+4*i1] // bounds checked
		pd := unsafe.Pointer(unsafe.SliceData(row))
		ps := unsafe.Pointer(&st[4*(j-j0)])
		x := 0
		for ; x+4 <= n; x += 4 {
			*(*uint32)(unsafe.Add(pd, 4*x)) = *(*uint32)(unsafe.Add(ps, x*w))
			*(*uint32)(unsafe.Add(pd, 4*x+4)) = *(*uint32)(unsafe.Add(ps, x*w+w))
			*(*uint32)(unsafe.Add(pd, 4*x+2*4)) = *(*uint32)(unsafe.Add(ps, x*w+2*w))
			*(*uint32)(unsafe.Add(pd, 4*x+3*4)) = *(*uint32)(unsafe.Add(ps, x*w+3*w))
		}
		for ; x < n; x++ {
			*(*uint32)(unsafe.Add(pd, 4*x)) = *(*uint32)(unsafe.Add(ps, x*w))
		}
	}
}

func tile8(d, st []byte, w, i0, i1, j0, j1, ds int) {
	n := i1 - i0
	if n <= 0 || j1 <= j0 {
		return
	}
	_ = st[(n-1)*w+8*(j1-j0)-1] // the furthest staged element: bounds checked once
	for j := j0; j < j1; j++ {
		row := d[j*ds+8*i0 : j*ds+8*i1] // bounds checked
		pd := unsafe.Pointer(unsafe.SliceData(row))
		ps := unsafe.Pointer(&st[8*(j-j0)])
		x := 0
		for ; x+4 <= n; x += 4 {
			*(*uint64)(unsafe.Add(pd, 8*x)) = *(*uint64)(unsafe.Add(ps, x*w))
			*(*uint64)(unsafe.Add(pd, 8*x+8)) = *(*uint64)(unsafe.Add(ps, x*w+w))
			*(*uint64)(unsafe.Add(pd, 8*x+2*8)) = *(*uint64)(unsafe.Add(ps, x*w+2*w))
			*(*uint64)(unsafe.Add(pd, 8*x+3*8)) = *(*uint64)(unsafe.Add(ps, x*w+3*w))
		}
		for ; x < n; x++ {
			*(*uint64)(unsafe.Add(pd, 8*x)) = *(*uint64)(unsafe.Add(ps, x*w))
		}
	}
}

// tileSmall handles staged runs of 3, 5..7 and 9..16 bytes.
func tileSmall(d, st []byte, r, w, i0, i1, j0, j1, ds int) {
	for j := j0; j < j1; j++ {
		row := d[j*ds+r*i0 : j*ds+r*i1]
		k := r * (j - j0)
		for x := 0; x+r <= len(row); x += r {
			copy(row[x:x+r], st[k:k+r])
			k += w
		}
	}
}

// tileRun moves runs longer than 16 bytes straight from src to dst.
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
