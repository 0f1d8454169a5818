// Package backend defines the interface behind which the heavy tensor
// transforms run (casts, transposes, MXFP4 decode and encode), and the CPU
// implementation that is the reference every other backend must match bit for
// bit. Cheap memory moves (concat, split, interleave) are plain functions in
// runtime/kernels and do not go through a backend.
package backend

import (
	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Backend runs the heavy transforms. Implementations must be safe for
// concurrent use and must produce exactly the bytes the CPU backend produces.
// Buffers are row-major; lengths must match exactly or an error is returned.
type Backend interface {
	// Name is "cpu" or "cuda".
	Name() string

	// Convert converts every element of src (srcType) into dst (dstType).
	// Supported: any pair among BF16, F16, F32; and F8_E4M3, F8_E5M2 as
	// sources to BF16, F16 or F32. Float narrowing rounds to nearest even,
	// keeps infinities, and keeps NaN as a (quiet) NaN with its sign.
	Convert(dst []byte, dstType tensor.DType, src []byte, srcType tensor.DType) error

	// Transpose swaps axes a and b of src, a row-major tensor of the given
	// shape whose elements are elemSize bytes (1, 2, 4 or 8), into dst.
	Transpose(dst, src []byte, shape tensor.Shape, elemSize int, a, b int) error

	// DecodeMXFP4 decodes G groups: blocks holds 16*G bytes, scales G bytes,
	// dst receives 32*G elements of dstType (BF16 or F32). Exact for scales
	// 0..254 (values beyond the float32/BF16 range, only at scale 254, are
	// infinities); scale 255, the E8M0 NaN, decodes every element of its group
	// to a quiet NaN with the code's sign (see runtime/kernels).
	DecodeMXFP4(dst []byte, dstType tensor.DType, blocks, scales []byte) error

	// EncodeMXFP4 quantizes src, 32*G elements of srcType (BF16, F16 or F32),
	// into 16*G block bytes and G scale bytes with the reference quantizer
	// (formats.md, section 2). A NaN or infinite input is a *NonFiniteError
	// naming the first such element; the output is then unspecified.
	EncodeMXFP4(blocks, scales []byte, src []byte, srcType tensor.DType) error

	// Close releases the backend's resources.
	Close() error
}

// NonFiniteError reports a NaN or infinity handed to the MXFP4 encoder.
// Index is the element index within the src buffer the encoder was given (the
// first non-finite element); Value is that element widened to float32. It is
// defined in runtime/kernels, where the encoder lives.
type NonFiniteError = kernels.NonFiniteError
