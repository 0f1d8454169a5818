package backend

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// MXFP4Transposer is an optional Backend interface: MXFP4 encode of the
// transposes of a batch of matrices, and decode written transposed, each in
// one pass, giving exactly the bytes of Transpose then EncodeMXFP4 (of
// DecodeMXFP4 then Transpose) without the transposed intermediate, which is
// as large as the tensor. GPT-OSS stores its down projections transposed
// from the Fast-LLM layout, so both directions of a conversion meet one of
// these. ok is false when the backend does not do it for these types; the
// caller then runs the two steps.
type MXFP4Transposer interface {
	// EncodeMXFP4T quantizes the transposes of src, batch matrices of
	// rows x cols elements of srcType: blocks and scales receive what
	// EncodeMXFP4 gives for the batch x cols x rows transpose (groups run
	// along rows; rows must be a multiple of 32). A *NonFiniteError's Index
	// counts elements in that transposed order.
	EncodeMXFP4T(blocks, scales, src []byte, srcType tensor.DType, batch, rows, cols int) (ok bool, err error)
	// DecodeMXFP4T decodes batch x rows x cols/32 groups (cols a multiple
	// of 32) and writes the transposes of the decoded matrices, batch x
	// cols x rows elements of dstType, to dst.
	DecodeMXFP4T(dst []byte, dstType tensor.DType, blocks, scales []byte, batch, rows, cols int) (ok bool, err error)
}

var _ MXFP4Transposer = (*cpu)(nil)

func checkT(op string, batch, rows, cols int, data, blocks, scales []byte, elem int) error {
	if batch < 0 || rows < 0 || cols < 0 {
		return fmt.Errorf("cpu: %s: negative extent", op)
	}
	n := batch * rows * cols
	if n/32*32 != n || len(data) != n*elem || len(blocks) != n/32*16 || len(scales) != n/32 {
		return fmt.Errorf("cpu: %s: %d x %d x %d elements do not fit %d data, %d block and %d scale bytes",
			op, batch, rows, cols, len(data), len(blocks), len(scales))
	}
	return nil
}

func (c *cpu) EncodeMXFP4T(blocks, scales, src []byte, srcType tensor.DType, batch, rows, cols int) (bool, error) {
	if srcType != tensor.BF16 {
		return false, nil
	}
	if rows%32 != 0 {
		return true, fmt.Errorf("cpu: mxfp4 encode of a transpose: %d rows, not a multiple of 32", rows)
	}
	if err := checkT("mxfp4 encode of a transpose", batch, rows, cols, src, blocks, scales, 2); err != nil {
		return true, err
	}
	// Units are bands of 32 rows (one group per column) of one matrix.
	// Each band stops at its first non-finite element in the transposed
	// order; the earliest of those is the tensor's first.
	bands := rows / 32
	var mu sync.Mutex
	var first *NonFiniteError
	c.parallel(batch*bands, max(1, minParallelBytes/max(1, 64*cols)), func(_, lo, hi int) {
		for u := lo; u < hi; u++ {
			if err := encodeBandT(blocks, scales, src, rows, cols, u/bands, u%bands); err != nil {
				mu.Lock()
				if first == nil || err.Index < first.Index {
					first = err
				}
				mu.Unlock()
			}
		}
	})
	if first != nil {
		return true, first
	}
	return true, nil
}

// encodeBandT quantizes band g (rows 32g..32g+31) of matrix b: one group
// per column c, stored as group g of row c of the transpose. Four columns go
// at a time, one per 16-bit lane: their amax, scales and codes come out of
// the same word operations as encodeMXFP4FromBF16's four elements. It stops
// at the first column holding a non-finite value.
func encodeBandT(blocks, scales, src []byte, rows, cols, b, g int) *NonFiniteError {
	const (
		mags  = 0x7fff7fff7fff7fff
		lanes = 0x0001000100010001
	)
	gpr := rows / 32 // groups per transposed row
	base := (b*rows + 32*g) * cols * 2
	stride := 2 * cols
	var w [32]uint64
	c := 0
	for ; c+4 <= cols; c += 4 {
		// Four running maxima, so that the max chain is not 32 deep.
		var m0, m1, m2, m3 uint64
		for i := 0; i < 32; i += 4 {
			o := base + i*stride + 2*c
			w[i], w[i+1], w[i+2], w[i+3] = le.Uint64(src[o:]), le.Uint64(src[o+stride:]), le.Uint64(src[o+2*stride:]), le.Uint64(src[o+3*stride:])
			m0, m1 = maxLanes(m0, w[i]&mags), maxLanes(m1, w[i+1]&mags)
			m2, m3 = maxLanes(m2, w[i+2]&mags), maxLanes(m3, w[i+3]&mags)
		}
		m := maxLanes(maxLanes(m0, m1), maxLanes(m2, m3))
		var bias uint64
		fallback := 0 // lanes for the reference, as a bit set
		for k := range 4 {
			amax := int32(m >> (16 * k) & 0x7fff)
			e := (amax+63)>>7 - 2 // see encodeMXFP4FromBF16
			if amax >= 0x7f80 || e < 3 {
				fallback |= 1 << k
				bias |= codeBias << (16 * k) // keeps the lane in range; its codes are not used
				continue
			}
			bias |= uint64(codeBias-(e-127)<<2) << (16 * k)
			scales[(b*cols+c+k)*gpr+g] = byte(e)
		}
		var lo, hi [4]uint64
		for i := range 16 {
			x := w[i]
			kk := (x>>5)&(0x3ff*lanes) + bias + (x>>4)&(0x800*lanes)
			lo[0] |= uint64(e2m1Table[kk&0xfff]) << (4 * i)
			lo[1] |= uint64(e2m1Table[kk>>16&0xfff]) << (4 * i)
			lo[2] |= uint64(e2m1Table[kk>>32&0xfff]) << (4 * i)
			lo[3] |= uint64(e2m1Table[kk>>48&0xfff]) << (4 * i)
		}
		for i := range 16 {
			x := w[16+i]
			kk := (x>>5)&(0x3ff*lanes) + bias + (x>>4)&(0x800*lanes)
			hi[0] |= uint64(e2m1Table[kk&0xfff]) << (4 * i)
			hi[1] |= uint64(e2m1Table[kk>>16&0xfff]) << (4 * i)
			hi[2] |= uint64(e2m1Table[kk>>32&0xfff]) << (4 * i)
			hi[3] |= uint64(e2m1Table[kk>>48&0xfff]) << (4 * i)
		}
		for k := range 4 {
			o := ((b*cols+c+k)*gpr + g) * 16
			if fallback&(1<<k) == 0 {
				le.PutUint64(blocks[o:], lo[k])
				le.PutUint64(blocks[o+8:], hi[k])
				continue
			}
			var grp [64]byte
			for i, x := range w {
				le.PutUint16(grp[2*i:], uint16(x>>(16*k)))
			}
			if err := encodeGroupAt(blocks[o:o+16], scales[(b*cols+c+k)*gpr+g:][:1], grp[:], rows, b*cols+c+k, g); err != nil {
				return err
			}
		}
	}
	for ; c < cols; c++ {
		var grp [64]byte
		for i := range 32 {
			copy(grp[2*i:2*i+2], src[base+i*stride+2*c:])
		}
		o := ((b*cols+c)*gpr + g) * 16
		if err := encodeGroupAt(blocks[o:o+16], scales[(b*cols+c)*gpr+g:][:1], grp[:], rows, b*cols+c, g); err != nil {
			return err
		}
	}
	return nil
}

// encodeGroupAt encodes one gathered group (group g of transposed row tr),
// placing a non-finite error's index in the transposed tensor.
func encodeGroupAt(blk, scale, grp []byte, rows, tr, g int) *NonFiniteError {
	// With the lengths fixed here, a non-finite value is the encoder's only
	// error.
	var nf *NonFiniteError
	if err := encodeMXFP4FromBF16(blk, scale, grp); !errors.As(err, &nf) {
		return nil
	}
	return &NonFiniteError{Index: int64(tr)*int64(rows) + int64(32*g) + nf.Index, Value: nf.Value}
}

func (c *cpu) DecodeMXFP4T(dst []byte, dstType tensor.DType, blocks, scales []byte, batch, rows, cols int) (bool, error) {
	if dstType != tensor.BF16 {
		return false, nil
	}
	if cols%32 != 0 {
		return true, fmt.Errorf("cpu: mxfp4 decode to a transpose: %d columns, not a multiple of 32", cols)
	}
	if err := checkT("mxfp4 decode to a transpose", batch, rows, cols, dst, blocks, scales, 2); err != nil {
		return true, err
	}
	// Units are bands of decodeBand groups along the columns of one
	// matrix: the band's rows of the transpose (32 per group, rows*2 bytes
	// each) are filled four elements at a time while they stay in cache.
	gpr := cols / 32
	per := (gpr + decodeBand - 1) / decodeBand
	c.parallel(batch*per, max(1, minParallelBytes/max(1, 64*rows*decodeBand)), func(_, lo, hi int) {
		for u := lo; u < hi; u++ {
			b, band := u/per, u%per
			decodeBandT(dst, blocks, scales, rows, cols, b, band*decodeBand, min((band+1)*decodeBand, gpr))
		}
	})
	return true, nil
}

// decodeBand is the number of groups along a row decoded per band.
const decodeBand = 16

// decodeBandT decodes groups [g0, g1) of every row of matrix b into the
// transpose: four rows at a time, their four groups decoded side by side,
// each column's four values stored as one 8-byte word.
func decodeBandT(dst, blocks, scales []byte, rows, cols, b, g0, g1 int) {
	gpr := cols / 32
	stride := 2 * rows // bytes between rows of the transpose
	var grp [4][64]byte
	r := 0
	for ; r+4 <= rows; r += 4 {
		for g := g0; g < g1; g++ {
			q := (b*rows+r)*gpr + g // group of row r; rows r+k are gpr apart
			s0, s1, s2, s3 := scales[q], scales[q+gpr], scales[q+2*gpr], scales[q+3*gpr]
			out := dst[((b*cols+32*g)*rows+r)*2:]
			if min(s0, s1, s2, s3) >= decodeLo && max(s0, s1, s2, s3) <= decodeHi {
				a0, a1, a2, a3 := halves(s0), halves(s1), halves(s2), halves(s3)
				k0, k1, k2, k3 := blocks[16*q:16*q+16], blocks[16*(q+gpr):16*(q+gpr)+16],
					blocks[16*(q+2*gpr):16*(q+2*gpr)+16], blocks[16*(q+3*gpr):16*(q+3*gpr)+16]
				for j := range 16 {
					p0, p1, p2, p3 := pairAt(k0[j], a0), pairAt(k1[j], a1), pairAt(k2[j], a2), pairAt(k3[j], a3)
					even := uint64(p0&0xffff) | uint64(p1&0xffff)<<16 | uint64(p2&0xffff)<<32 | uint64(p3&0xffff)<<48
					odd := uint64(p0>>16) | uint64(p1>>16)<<16 | uint64(p2>>16)<<32 | uint64(p3>>16)<<48
					le.PutUint64(out[2*j*stride:], even)
					le.PutUint64(out[(2*j+1)*stride:], odd)
				}
				continue
			}
			// An extreme or NaN scale among the four: decode each group
			// (the per-group path handles every scale), then interleave.
			for k := range 4 {
				decodeMXFP4ToBF16(grp[k][:], blocks[16*(q+k*gpr):16*(q+k*gpr)+16], scales[q+k*gpr:q+k*gpr+1])
			}
			for i := range 32 {
				w := uint64(le.Uint16(grp[0][2*i:])) | uint64(le.Uint16(grp[1][2*i:]))<<16 |
					uint64(le.Uint16(grp[2][2*i:]))<<32 | uint64(le.Uint16(grp[3][2*i:]))<<48
				le.PutUint64(out[i*stride:], w)
			}
		}
	}
	for ; r < rows; r++ {
		for g := g0; g < g1; g++ {
			q := (b*rows+r)*gpr + g
			decodeMXFP4ToBF16(grp[0][:], blocks[16*q:16*q+16], scales[q:q+1])
			for i := range 32 {
				copy(dst[((b*cols+32*g+i)*rows+r)*2:][:2], grp[0][2*i:])
			}
		}
	}
}

// halves is the exponent addition for scale s (decodeLo..decodeHi) in
// both 16-bit halves.
func halves(s byte) uint32 {
	a := uint32(s-decodeLo) << 7
	return a | a<<16
}

// pairAt is the two BF16 values of block byte x at the scale whose
// addition is add (see decodeMXFP4ToBF16).
func pairAt(x byte, add uint32) uint32 {
	return bf16Pair[x] + add&nonzeroPair[x]
}

// MXFP4Gatherer is an optional Backend interface: EncodeMXFP4 of a source
// that lies in pieces (each a whole number of groups), as if they were one
// buffer, without gathering them first. ok is false when the backend does
// not do it for srcType.
type MXFP4Gatherer interface {
	EncodeMXFP4Parts(blocks, scales []byte, parts [][]byte, srcType tensor.DType) (ok bool, err error)
}

var _ MXFP4Gatherer = (*cpu)(nil)

func (c *cpu) EncodeMXFP4Parts(blocks, scales []byte, parts [][]byte, srcType tensor.DType) (bool, error) {
	if srcType != tensor.BF16 {
		return false, nil
	}
	// Where each part's groups start.
	starts := make([]int, len(parts)+1)
	for i, p := range parts {
		if len(p)%64 != 0 {
			return true, fmt.Errorf("cpu: mxfp4 encode: a piece of %d bytes is not a whole number of BF16 groups", len(p))
		}
		starts[i+1] = starts[i] + len(p)/64
	}
	g := starts[len(parts)]
	if len(blocks) != 16*g || len(scales) != g {
		return true, fmt.Errorf("cpu: mxfp4 encode: %d block and %d scale bytes for %d groups", len(blocks), len(scales), g)
	}
	var mu sync.Mutex
	var first *NonFiniteError
	c.parallel(len(parts), max(1, minParallelBytes/max(1, 64*g/max(1, len(parts)))), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			a, b := starts[i], starts[i+1]
			var nf *NonFiniteError
			if err := encodeMXFP4FromBF16(blocks[16*a:16*b], scales[a:b], parts[i]); errors.As(err, &nf) {
				mu.Lock()
				if idx := int64(32*a) + nf.Index; first == nil || idx < first.Index {
					first = &NonFiniteError{Index: idx, Value: nf.Value}
				}
				mu.Unlock()
				return // later pieces of this chunk hold later elements
			}
		}
	})
	if first != nil {
		return true, first
	}
	return true, nil
}
