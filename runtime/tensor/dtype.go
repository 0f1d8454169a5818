// Package tensor holds the element types, shapes and in-memory tensors that
// every other runtime package shares. It does no I/O and no arithmetic.
package tensor

import (
	"fmt"
	"math/bits"
)

// DType is a safetensors element type.
type DType uint8

// The dtypes of the safetensors format, in the order the reference writer
// uses for alignment (smallest first). Invalid is the zero value.
const (
	Invalid DType = iota
	BOOL
	F4
	F6_E2M3
	F6_E3M2
	U8
	I8
	F8_E5M2
	F8_E4M3
	F8_E8M0
	F8_E4M3FNUZ
	F8_E5M2FNUZ
	I16
	U16
	F16
	BF16
	I32
	U32
	F32
	C64
	F64
	I64
	U64
	numDTypes
)

var dtypeNames = [numDTypes]string{
	Invalid: "INVALID", BOOL: "BOOL", F4: "F4", F6_E2M3: "F6_E2M3", F6_E3M2: "F6_E3M2",
	U8: "U8", I8: "I8", F8_E5M2: "F8_E5M2", F8_E4M3: "F8_E4M3", F8_E8M0: "F8_E8M0",
	F8_E4M3FNUZ: "F8_E4M3FNUZ", F8_E5M2FNUZ: "F8_E5M2FNUZ", I16: "I16", U16: "U16",
	F16: "F16", BF16: "BF16", I32: "I32", U32: "U32", F32: "F32", C64: "C64",
	F64: "F64", I64: "I64", U64: "U64",
}

// dtypeBits is the storage size of one element in bits.
var dtypeBits = [numDTypes]int{
	BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8,
	F8_E8M0: 8, F8_E4M3FNUZ: 8, F8_E5M2FNUZ: 8, I16: 16, U16: 16, F16: 16, BF16: 16,
	I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
}

// ParseDType returns the dtype with the given safetensors name.
func ParseDType(name string) (DType, error) {
	for d := BOOL; d < numDTypes; d++ {
		if dtypeNames[d] == name {
			return d, nil
		}
	}
	return Invalid, fmt.Errorf("unknown dtype %q", name)
}

// AllDTypes lists every valid dtype in alignment order (smallest first).
func AllDTypes() []DType {
	out := make([]DType, 0, numDTypes-1)
	for d := BOOL; d < numDTypes; d++ {
		out = append(out, d)
	}
	return out
}

func (d DType) String() string {
	if d >= numDTypes {
		return fmt.Sprintf("DType(%d)", uint8(d))
	}
	return dtypeNames[d]
}

// Valid reports whether d is a known dtype.
func (d DType) Valid() bool { return d > Invalid && d < numDTypes }

// Bits is the storage size of one element in bits (4 for F4, 6 for the F6 types).
func (d DType) Bits() int {
	if !d.Valid() {
		return 0
	}
	return dtypeBits[d]
}

// Size is the size of one element in bytes, or 0 for the sub-byte types.
func (d DType) Size() int {
	if d.Bits()%8 != 0 {
		return 0
	}
	return d.Bits() / 8
}

// IsFloat reports whether d is one of the float types the kernels convert
// between (F16, BF16, F32, F64).
func (d DType) IsFloat() bool { return d == F16 || d == BF16 || d == F32 || d == F64 }

// Shape is a tensor shape; a scalar has the empty shape and one element.
type Shape []int

// NumElements returns the element count, or an error when a dimension is
// negative or the product overflows int64.
func (s Shape) NumElements() (int64, error) {
	n := uint64(1)
	for _, d := range s {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, []int(s))
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > 1<<62 {
			return 0, fmt.Errorf("shape %v has too many elements", []int(s))
		}
		n = lo
	}
	return int64(n), nil
}

// Numel is NumElements for shapes already known to be valid.
func (s Shape) Numel() int64 {
	n, err := s.NumElements()
	if err != nil {
		panic(err)
	}
	return n
}

// ByteSize returns the storage size of a tensor of dtype d and this shape.
// Sub-byte types round up to whole bytes.
func (s Shape) ByteSize(d DType) (int64, error) {
	n, err := s.NumElements()
	if err != nil {
		return 0, err
	}
	b := d.Bits()
	if b == 0 {
		return 0, fmt.Errorf("invalid dtype %v", d)
	}
	hi, lo := bits.Mul64(uint64(n), uint64(b))
	if hi != 0 || lo > 1<<62 {
		return 0, fmt.Errorf("shape %v of %v is too large", []int(s), d)
	}
	return int64((lo + 7) / 8), nil
}

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy that does not alias s.
func (s Shape) Clone() Shape { return append(Shape{}, s...) }

func (s Shape) String() string { return fmt.Sprint([]int(s)) }

// Tensor is a dense, row-major tensor held in memory (or mapped from a file).
type Tensor struct {
	DType DType
	Shape Shape
	Data  []byte
}
