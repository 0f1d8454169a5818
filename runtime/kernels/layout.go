package kernels

import (
	"fmt"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// axisGeometry returns, for a row-major tensor, the product of the
// dimensions before axis, the extent of axis and the product of the
// dimensions after it, checking that the byte size fits an int.
func axisGeometry(shape tensor.Shape, elemSize, axis int) (outer, dim, inner int, err error) {
	if elemSize <= 0 {
		return 0, 0, 0, fmt.Errorf("element size %d", elemSize)
	}
	if axis < 0 || axis >= len(shape) {
		return 0, 0, 0, fmt.Errorf("axis %d out of range for shape %v", axis, shape)
	}
	n, err := shape.NumElements()
	if err != nil {
		return 0, 0, 0, err
	}
	if n > int64(maxInt/elemSize) {
		return 0, 0, 0, fmt.Errorf("shape %v is too large", shape)
	}
	outer, inner = 1, 1
	for i, d := range shape {
		if i < axis {
			outer *= d
		} else if i > axis {
			inner *= d
		}
	}
	return outer, shape[axis], inner, nil
}

// Unzip de-interleaves src (row-major, the given shape, elemSize-byte
// elements) along axis into n outputs: element i along the axis goes to
// dsts[i%n] at position i/n. shape[axis] must be a multiple of n; each
// output has shape with shape[axis]/n along the axis.
func Unzip(dsts [][]byte, src []byte, shape tensor.Shape, elemSize, axis, n int) error {
	run, count, err := zipCheck(dsts, src, shape, elemSize, axis, n, "unzip")
	if err != nil {
		return err
	}
	// src is a flat sequence of run-byte units; output k takes units k, k+n, ...
	stride := n * run
	block := max(1, (32<<10)/stride) // units per output per block: src block stays in cache
	for b0 := 0; b0 < count; b0 += block {
		b1 := min(b0+block, count)
		for k, d := range dsts {
			d = d[b0*run : b1*run]
			s := src[b0*stride+k*run:]
			switch run {
			case 1:
				for x := range d {
					d[x] = s[x*stride]
				}
			case 2:
				for x, y := 0, 0; x+2 <= len(d); x, y = x+2, y+stride {
					le.PutUint16(d[x:x+2], le.Uint16(s[y:y+2]))
				}
			case 4:
				for x, y := 0, 0; x+4 <= len(d); x, y = x+4, y+stride {
					le.PutUint32(d[x:x+4], le.Uint32(s[y:y+4]))
				}
			case 8:
				for x, y := 0, 0; x+8 <= len(d); x, y = x+8, y+stride {
					le.PutUint64(d[x:x+8], le.Uint64(s[y:y+8]))
				}
			default:
				for x, y := 0, 0; x+run <= len(d); x, y = x+run, y+stride {
					copy(d[x:x+run], s[y:y+run])
				}
			}
		}
	}
	return nil
}

// Zip is the inverse of Unzip: it interleaves n inputs along axis into dst,
// whose shape is given; srcs[k] supplies the elements at positions k, k+n, ...
// along the axis.
func Zip(dst []byte, srcs [][]byte, shape tensor.Shape, elemSize, axis, n int) error {
	run, count, err := zipCheck(srcs, dst, shape, elemSize, axis, n, "zip")
	if err != nil {
		return err
	}
	stride := n * run
	block := max(1, (32<<10)/stride)
	for b0 := 0; b0 < count; b0 += block {
		b1 := min(b0+block, count)
		for k, s := range srcs {
			s = s[b0*run : b1*run]
			d := dst[b0*stride+k*run:]
			switch run {
			case 1:
				for x := range s {
					d[x*stride] = s[x]
				}
			case 2:
				for x, y := 0, 0; x+2 <= len(s); x, y = x+2, y+stride {
					le.PutUint16(d[y:y+2], le.Uint16(s[x:x+2]))
				}
			case 4:
				for x, y := 0, 0; x+4 <= len(s); x, y = x+4, y+stride {
					le.PutUint32(d[y:y+4], le.Uint32(s[x:x+4]))
				}
			case 8:
				for x, y := 0, 0; x+8 <= len(s); x, y = x+8, y+stride {
					le.PutUint64(d[y:y+8], le.Uint64(s[x:x+8]))
				}
			default:
				for x, y := 0, 0; x+run <= len(s); x, y = x+run, y+stride {
					copy(d[y:y+run], s[x:x+run])
				}
			}
		}
	}
	return nil
}

// zipCheck validates an unzip/zip and returns the run length in bytes and
// the number of runs per part.
func zipCheck(parts [][]byte, whole []byte, shape tensor.Shape, elemSize, axis, n int, op string) (run, count int, err error) {
	outer, dim, inner, err := axisGeometry(shape, elemSize, axis)
	if err != nil {
		return 0, 0, fmt.Errorf("kernels: %s: %w", op, err)
	}
	if n < 1 || dim%n != 0 {
		return 0, 0, fmt.Errorf("kernels: %s: axis %d of shape %v (extent %d) is not divisible into %d parts", op, axis, shape, dim, n)
	}
	if len(parts) != n {
		return 0, 0, fmt.Errorf("kernels: %s: %d part buffers, want %d", op, len(parts), n)
	}
	run = inner * elemSize
	total := outer * dim * run
	if len(whole) != total {
		return 0, 0, fmt.Errorf("kernels: %s: interleaved buffer length %d, want %d for shape %v", op, len(whole), total, shape)
	}
	for k, p := range parts {
		if len(p) != total/n {
			return 0, 0, fmt.Errorf("kernels: %s: part %d length %d, want %d", op, k, len(p), total/n)
		}
	}
	if run == 0 {
		return 0, 0, nil
	}
	return run, outer * dim / n, nil
}

// Concat concatenates srcs (row-major, shapes[k], elemSize-byte elements)
// along axis into dst. The shapes must agree on every other axis.
func Concat(dst []byte, srcs [][]byte, shapes []tensor.Shape, elemSize, axis int) error {
	outer, unit, err := concatCheck(dst, srcs, shapes, elemSize, axis)
	if err != nil {
		return err
	}
	off := 0
	for o := range outer {
		for k, s := range srcs {
			r := shapes[k][axis] * unit
			copy(dst[off:off+r], s[o*r:(o+1)*r])
			off += r
		}
	}
	return nil
}

// Split is the inverse of Concat: it cuts src (row-major, the given shape)
// along axis into len(sizes) parts of sizes[k] along the axis.
func Split(dsts [][]byte, src []byte, shape tensor.Shape, elemSize, axis int, sizes []int) error {
	outer, dim, inner, err := axisGeometry(shape, elemSize, axis)
	if err != nil {
		return fmt.Errorf("kernels: split: %w", err)
	}
	if len(dsts) != len(sizes) {
		return fmt.Errorf("kernels: split: %d buffers for %d sizes", len(dsts), len(sizes))
	}
	unit := inner * elemSize
	if len(src) != outer*dim*unit {
		return fmt.Errorf("kernels: split: source length %d, want %d for shape %v", len(src), outer*dim*unit, shape)
	}
	sum := 0
	// (The messages do not format sizes itself, which would make every
	// caller's sizes slice escape to the heap.)
	for k, s := range sizes {
		if s < 0 || s > dim {
			return fmt.Errorf("kernels: split: bad size %d for part %d", s, k)
		}
		sum += s
	}
	if sum != dim {
		return fmt.Errorf("kernels: split: %d sizes sum to %d, axis %d of shape %v has %d", len(sizes), sum, axis, shape, dim)
	}
	for k, s := range sizes {
		if len(dsts[k]) != outer*s*unit {
			return fmt.Errorf("kernels: split: part %d length %d, want %d", k, len(dsts[k]), outer*s*unit)
		}
	}
	off := 0
	for o := range outer {
		for k, d := range dsts {
			r := sizes[k] * unit
			copy(d[o*r:(o+1)*r], src[off:off+r])
			off += r
		}
	}
	return nil
}

// concatCheck validates a concat and returns the product of the dimensions
// before axis and the bytes per unit step along it.
func concatCheck(dst []byte, srcs [][]byte, shapes []tensor.Shape, elemSize, axis int) (outer, unit int, err error) {
	if len(srcs) != len(shapes) || len(srcs) == 0 {
		return 0, 0, fmt.Errorf("kernels: concat: %d buffers for %d shapes", len(srcs), len(shapes))
	}
	total := 0
	for k, sh := range shapes {
		o, dim, inner, err := axisGeometry(sh, elemSize, axis)
		if err != nil {
			return 0, 0, fmt.Errorf("kernels: concat: part %d: %w", k, err)
		}
		if len(sh) != len(shapes[0]) {
			return 0, 0, fmt.Errorf("kernels: concat: part %d has shape %v, rank differs from %v", k, sh, shapes[0])
		}
		for i := range sh {
			if i != axis && sh[i] != shapes[0][i] {
				return 0, 0, fmt.Errorf("kernels: concat: part %d has shape %v, which differs from %v off axis %d", k, sh, shapes[0], axis)
			}
		}
		if len(srcs[k]) != o*dim*inner*elemSize {
			return 0, 0, fmt.Errorf("kernels: concat: part %d length %d, want %d for shape %v", k, len(srcs[k]), o*dim*inner*elemSize, sh)
		}
		if total > maxInt-len(srcs[k]) {
			return 0, 0, fmt.Errorf("kernels: concat: result too large")
		}
		total += len(srcs[k])
		outer, unit = o, inner*elemSize
	}
	if len(dst) != total {
		return 0, 0, fmt.Errorf("kernels: concat: destination length %d, want %d", len(dst), total)
	}
	return outer, unit, nil
}
