package backend

import "github.com/mapper-dev/mapper/runtime/tensor"

// Route sends transforms whose input is at least minBytes to large and the
// rest to small: a GPU pays a launch and a transfer that a small tensor
// never earns back. Both must produce identical bytes, so the choice never
// shows in the output.
func Route(large, small Backend, minBytes int) Backend {
	return &router{large: large, small: small, min: minBytes}
}

type router struct {
	large, small Backend
	min          int
}

func (r *router) pick(n int) Backend {
	if n >= r.min {
		return r.large
	}
	return r.small
}

func (r *router) Name() string { return r.large.Name() + "+" + r.small.Name() }

func (r *router) Convert(dst []byte, dstType tensor.DType, src []byte, srcType tensor.DType) error {
	return r.pick(len(src)).Convert(dst, dstType, src, srcType)
}

func (r *router) Transpose(dst, src []byte, shape tensor.Shape, elemSize int, a, b int) error {
	return r.pick(len(src)).Transpose(dst, src, shape, elemSize, a, b)
}

func (r *router) DecodeMXFP4(dst []byte, dstType tensor.DType, blocks, scales []byte) error {
	return r.pick(len(blocks)).DecodeMXFP4(dst, dstType, blocks, scales)
}

func (r *router) EncodeMXFP4(blocks, scales []byte, src []byte, srcType tensor.DType) error {
	return r.pick(len(src)).EncodeMXFP4(blocks, scales, src, srcType)
}

func (r *router) Close() error {
	err := r.large.Close()
	if e := r.small.Close(); err == nil {
		err = e
	}
	return err
}
