package kernels

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

var le = binary.LittleEndian

// Lookup tables for the FP8 sources, built once from the scalar decoders.
var (
	e4m3ToF32  [256]uint32
	e4m3ToBF16 [256]uint16
	e4m3ToF16  [256]uint16
	e5m2ToF32  [256]uint32
	e5m2ToBF16 [256]uint16
	e5m2ToF16  [256]uint16
)

func init() {
	for i := range 256 {
		a := f8e4m3ToF32Bits(uint8(i))
		e4m3ToF32[i] = a
		e4m3ToBF16[i] = f32BitsToBF16(a)
		e4m3ToF16[i] = f32BitsToF16(a)
		b := f16ToF32Bits(uint16(i) << 8)
		e5m2ToF32[i] = b
		e5m2ToBF16[i] = f32BitsToBF16(b)
		e5m2ToF16[i] = f32BitsToF16(b)
	}
}

// Tables for the 16-bit sources whose conversion is branchy: built on first
// use (704 KiB) from the scalar functions, so they agree with them by
// construction (and the exhaustive tests check the scalar functions).
var (
	halfTablesOnce sync.Once
	halfTables     *struct {
		f16ToF32  [1 << 16]uint32
		bf16ToF32 [1 << 16]uint32
		f16ToBF16 [1 << 16]uint16
		bf16ToF16 [1 << 16]uint16
	}
)

func loadHalfTables() {
	halfTablesOnce.Do(func() {
		t := new(struct {
			f16ToF32  [1 << 16]uint32
			bf16ToF32 [1 << 16]uint32
			f16ToBF16 [1 << 16]uint16
			bf16ToF16 [1 << 16]uint16
		})
		for i := range 1 << 16 {
			f := f16ToF32Bits(uint16(i))
			t.f16ToF32[i] = f
			t.bf16ToF32[i] = bf16ToF32Bits(uint16(i))
			t.f16ToBF16[i] = f32BitsToBF16(f)
			t.bf16ToF16[i] = f32BitsToF16(bf16ToF32Bits(uint16(i)))
		}
		halfTables = t
	})
}

// ConvertSupported reports whether Convert handles the pair: any pair among
// BF16, F16 and F32 (identity included), and F8_E4M3 or F8_E5M2 to BF16,
// F16 or F32.
func ConvertSupported(dstType, srcType tensor.DType) bool {
	_, err := ConvertKernel(dstType, srcType)
	return err == nil
}

// ConvertKernel returns the typed loop converting a buffer of srcType
// elements into dstType. The loop converts len(src)/srcType.Size()
// elements and panics if dst is shorter than that many dstType elements;
// Convert checks the lengths first.
func ConvertKernel(dstType, srcType tensor.DType) (func(dst, src []byte), error) {
	var f func(dst, src []byte)
	switch srcType {
	case tensor.BF16:
		switch dstType {
		case tensor.BF16:
			f = copyExact
		case tensor.F16:
			f = ConvertBF16ToF16
		case tensor.F32:
			f = ConvertBF16ToF32
		}
	case tensor.F16:
		switch dstType {
		case tensor.BF16:
			f = ConvertF16ToBF16
		case tensor.F16:
			f = copyExact
		case tensor.F32:
			f = ConvertF16ToF32
		}
	case tensor.F32:
		switch dstType {
		case tensor.BF16:
			f = ConvertF32ToBF16
		case tensor.F16:
			f = ConvertF32ToF16
		case tensor.F32:
			f = copyExact
		}
	case tensor.F8_E4M3:
		switch dstType {
		case tensor.BF16:
			f = ConvertF8E4M3ToBF16
		case tensor.F16:
			f = ConvertF8E4M3ToF16
		case tensor.F32:
			f = ConvertF8E4M3ToF32
		}
	case tensor.F8_E5M2:
		switch dstType {
		case tensor.BF16:
			f = ConvertF8E5M2ToBF16
		case tensor.F16:
			f = ConvertF8E5M2ToF16
		case tensor.F32:
			f = ConvertF8E5M2ToF32
		}
	}
	if f == nil {
		return nil, fmt.Errorf("kernels: unsupported conversion %v -> %v", srcType, dstType)
	}
	return f, nil
}

// CheckConvert validates a conversion's dtypes and buffer lengths and
// returns the element count.
func CheckConvert(dst []byte, dstType tensor.DType, src []byte, srcType tensor.DType) (int, error) {
	if !ConvertSupported(dstType, srcType) {
		return 0, fmt.Errorf("kernels: unsupported conversion %v -> %v", srcType, dstType)
	}
	ss, ds := srcType.Size(), dstType.Size()
	if len(src)%ss != 0 {
		return 0, fmt.Errorf("kernels: convert %v -> %v: source length %d is not a multiple of %d", srcType, dstType, len(src), ss)
	}
	n := len(src) / ss
	if len(dst) != n*ds {
		return 0, fmt.Errorf("kernels: convert %v -> %v: destination length %d, want %d for %d elements", srcType, dstType, len(dst), n*ds, n)
	}
	return n, nil
}

// Convert converts every element of src (srcType) into dst (dstType). See
// ConvertSupported for the pairs; narrowing rounds to nearest even.
func Convert(dst []byte, dstType tensor.DType, src []byte, srcType tensor.DType) error {
	if _, err := CheckConvert(dst, dstType, src, srcType); err != nil {
		return err
	}
	f, _ := ConvertKernel(dstType, srcType)
	f(dst, src)
	return nil
}

func copyExact(dst, src []byte) { copy(dst[:len(src)], src) }

// ConvertBF16ToF32 widens len(src)/2 BF16 elements into dst (4 bytes each).
// (A table lookup measured faster than the shift: the compiler splits the
// stores of a value whose low half it knows to be zero.)
func ConvertBF16ToF32(dst, src []byte) {
	loadHalfTables()
	lut16to32(dst, src, &halfTables.bf16ToF32)
}

// ConvertF32ToBF16 narrows len(src)/4 F32 elements into dst (2 bytes each).
func ConvertF32ToBF16(dst, src []byte) {
	n := len(src) / 4
	dst = dst[:2*n]
	for len(src) >= 16 && len(dst) >= 8 {
		s, d := src[:16], dst[:8]
		le.PutUint16(d[0:], f32BitsToBF16(le.Uint32(s[0:])))
		le.PutUint16(d[2:], f32BitsToBF16(le.Uint32(s[4:])))
		le.PutUint16(d[4:], f32BitsToBF16(le.Uint32(s[8:])))
		le.PutUint16(d[6:], f32BitsToBF16(le.Uint32(s[12:])))
		src, dst = src[16:], dst[8:]
	}
	for len(src) >= 4 && len(dst) >= 2 {
		le.PutUint16(dst, f32BitsToBF16(le.Uint32(src)))
		src, dst = src[4:], dst[2:]
	}
}

// ConvertF16ToF32 widens len(src)/2 F16 elements into dst (4 bytes each).
func ConvertF16ToF32(dst, src []byte) {
	loadHalfTables()
	lut16to32(dst, src, &halfTables.f16ToF32)
}

func lut16to32(dst, src []byte, t *[1 << 16]uint32) {
	n := len(src) / 2
	dst = dst[:4*n]
	for len(src) >= 8 && len(dst) >= 16 {
		s, d := src[:8], dst[:16]
		le.PutUint32(d[0:], t[le.Uint16(s[0:])])
		le.PutUint32(d[4:], t[le.Uint16(s[2:])])
		le.PutUint32(d[8:], t[le.Uint16(s[4:])])
		le.PutUint32(d[12:], t[le.Uint16(s[6:])])
		src, dst = src[8:], dst[16:]
	}
	for len(src) >= 2 && len(dst) >= 4 {
		le.PutUint32(dst, t[le.Uint16(src)])
		src, dst = src[2:], dst[4:]
	}
}

// ConvertF32ToF16 narrows len(src)/4 F32 elements into dst (2 bytes each).
func ConvertF32ToF16(dst, src []byte) {
	n := len(src) / 4
	dst = dst[:2*n]
	for len(src) >= 16 && len(dst) >= 8 {
		s := src[:16]
		b0, b1, b2, b3 := le.Uint32(s[0:]), le.Uint32(s[4:]), le.Uint32(s[8:]), le.Uint32(s[12:])
		h0, ok0 := f16Normal(b0)
		h1, ok1 := f16Normal(b1)
		h2, ok2 := f16Normal(b2)
		h3, ok3 := f16Normal(b3)
		if !ok0 {
			h0 = f32BitsToF16(b0)
		}
		if !ok1 {
			h1 = f32BitsToF16(b1)
		}
		if !ok2 {
			h2 = f32BitsToF16(b2)
		}
		if !ok3 {
			h3 = f32BitsToF16(b3)
		}
		le.PutUint64(dst, uint64(h0)|uint64(h1)<<16|uint64(h2)<<32|uint64(h3)<<48)
		src, dst = src[16:], dst[8:]
	}
	for len(src) >= 4 && len(dst) >= 2 {
		le.PutUint16(dst, f32BitsToF16(le.Uint32(src)))
		src, dst = src[4:], dst[2:]
	}
}

// ConvertBF16ToF16 converts len(src)/2 BF16 elements to F16 (exactly through
// F32, then one rounding to nearest even).
func ConvertBF16ToF16(dst, src []byte) {
	loadHalfTables()
	lut16to16(dst, src, &halfTables.bf16ToF16)
}

// ConvertF16ToBF16 converts len(src)/2 F16 elements to BF16 (exactly through
// F32, then one rounding to nearest even).
func ConvertF16ToBF16(dst, src []byte) {
	loadHalfTables()
	lut16to16(dst, src, &halfTables.f16ToBF16)
}

func lut16to16(dst, src []byte, t *[1 << 16]uint16) {
	n := len(src) / 2
	dst = dst[:2*n]
	for len(src) >= 8 && len(dst) >= 8 {
		s, d := src[:8], dst[:8]
		le.PutUint16(d[0:], t[le.Uint16(s[0:])])
		le.PutUint16(d[2:], t[le.Uint16(s[2:])])
		le.PutUint16(d[4:], t[le.Uint16(s[4:])])
		le.PutUint16(d[6:], t[le.Uint16(s[6:])])
		src, dst = src[8:], dst[8:]
	}
	for len(src) >= 2 && len(dst) >= 2 {
		le.PutUint16(dst, t[le.Uint16(src)])
		src, dst = src[2:], dst[2:]
	}
}

// ConvertF8E4M3ToF32 decodes len(src) F8_E4M3 bytes into F32.
func ConvertF8E4M3ToF32(dst, src []byte) { lut8to32(dst, src, &e4m3ToF32) }

// ConvertF8E4M3ToBF16 decodes len(src) F8_E4M3 bytes into BF16 (exact).
func ConvertF8E4M3ToBF16(dst, src []byte) { lut8to16(dst, src, &e4m3ToBF16) }

// ConvertF8E4M3ToF16 decodes len(src) F8_E4M3 bytes into F16 (exact).
func ConvertF8E4M3ToF16(dst, src []byte) { lut8to16(dst, src, &e4m3ToF16) }

// ConvertF8E5M2ToF32 decodes len(src) F8_E5M2 bytes into F32.
func ConvertF8E5M2ToF32(dst, src []byte) { lut8to32(dst, src, &e5m2ToF32) }

// ConvertF8E5M2ToBF16 decodes len(src) F8_E5M2 bytes into BF16 (exact).
func ConvertF8E5M2ToBF16(dst, src []byte) { lut8to16(dst, src, &e5m2ToBF16) }

// ConvertF8E5M2ToF16 decodes len(src) F8_E5M2 bytes into F16 (exact).
func ConvertF8E5M2ToF16(dst, src []byte) { lut8to16(dst, src, &e5m2ToF16) }

func lut8to16(dst, src []byte, t *[256]uint16) {
	dst = dst[:2*len(src)]
	for len(src) >= 4 && len(dst) >= 8 {
		s, d := src[:4], dst[:8]
		le.PutUint16(d[0:], t[s[0]])
		le.PutUint16(d[2:], t[s[1]])
		le.PutUint16(d[4:], t[s[2]])
		le.PutUint16(d[6:], t[s[3]])
		src, dst = src[4:], dst[8:]
	}
	for len(src) >= 1 && len(dst) >= 2 {
		le.PutUint16(dst, t[src[0]])
		src, dst = src[1:], dst[2:]
	}
}

func lut8to32(dst, src []byte, t *[256]uint32) {
	dst = dst[:4*len(src)]
	for len(src) >= 4 && len(dst) >= 16 {
		s, d := src[:4], dst[:16]
		le.PutUint32(d[0:], t[s[0]])
		le.PutUint32(d[4:], t[s[1]])
		le.PutUint32(d[8:], t[s[2]])
		le.PutUint32(d[12:], t[s[3]])
		src, dst = src[4:], dst[16:]
	}
	for len(src) >= 1 && len(dst) >= 4 {
		le.PutUint32(dst, t[src[0]])
		src, dst = src[1:], dst[4:]
	}
}
