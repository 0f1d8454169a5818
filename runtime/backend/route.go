package backend

import (
	"fmt"
	"strings"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Kind is a class of transform that a router places as a whole: the casts by
// how their element sizes change, the transposes, the MXFP4 decode and
// encode, and the fused paths of MXFP4Transposer and MXFP4Gatherer.
type Kind int

const (
	CastNarrow       Kind = iota // F32 -> BF16 or F16
	CastWiden                    // BF16 or F16 -> F32
	Cast16                       // BF16 <-> F16
	CastF8                       // F8_E4M3 or F8_E5M2 -> BF16, F16 or F32
	KindTranspose                // Transpose
	MXFP4Decode                  // DecodeMXFP4
	MXFP4Encode                  // EncodeMXFP4
	MXFP4DecodeT                 // DecodeMXFP4T: decode written transposed
	MXFP4EncodeT                 // EncodeMXFP4T: encode of a transpose
	MXFP4EncodeParts             // EncodeMXFP4Parts: encode of a source in pieces
	NumKinds
)

var kindNames = [NumKinds]string{
	"cast_narrow", "cast_widen", "cast_16", "cast_f8", "transpose", "mxfp4_decode", "mxfp4_encode",
	"mxfp4_decode+transpose", "transpose+mxfp4_encode", "mxfp4_encode_parts",
}

func (k Kind) String() string {
	if k < 0 || k >= NumKinds {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Fused reports whether k is a fused path, which a backend may not offer.
func (k Kind) Fused() bool { return k >= MXFP4DecodeT && k < NumKinds }

// parts are the kinds a fused kind does in one pass; the caller runs them
// one after the other when the fused call is declined.
func (k Kind) parts() []Kind {
	switch k {
	case MXFP4DecodeT:
		return []Kind{MXFP4Decode, KindTranspose}
	case MXFP4EncodeT:
		return []Kind{KindTranspose, MXFP4Encode}
	case MXFP4EncodeParts:
		return []Kind{MXFP4Encode}
	}
	return nil
}

// ConvertKind is the kind of a conversion from src to dst.
func ConvertKind(dst, src tensor.DType) Kind {
	switch {
	case src == tensor.F8_E4M3 || src == tensor.F8_E5M2:
		return CastF8
	case src.Size() > dst.Size():
		return CastNarrow
	case src.Size() < dst.Size():
		return CastWiden
	}
	return Cast16
}

// Place is where a router runs a kind of transform whose input is at least
// its minimum size.
type Place uint8

const (
	OnSmall Place = iota // the small backend (the CPU)
	OnLarge              // the large backend (a GPU)
	// Split, for a fused kind: the router declines the fused call, so the
	// engine runs its steps, each placed by its own kind.
	Split
)

// Routes places each kind. A fused kind placed on a backend that does not
// offer it is declined, as Split would.
type Routes struct {
	Place [NumKinds]Place
	// Speedup[k] is how many times faster the chosen place ran kind k
	// than the other backend (or, for a fused kind, than its best
	// alternative) in the calibration; 0 when not measured. Below 1, the
	// large backend was faster alone, by 1/Speedup, but not by Margin.
	Speedup [NumKinds]float64
	// Margin is the speedup the large backend needed (CalibrateOptions).
	Margin float64
	// Problems are calibration failures of the large backend (an error,
	// bytes other than the small backend's), each of which placed its kind
	// on the small backend.
	Problems []string
}

// AllLarge places every kind on the large backend: what --backend cuda
// asks for.
func AllLarge() Routes {
	var r Routes
	for k := range r.Place {
		r.Place[k] = OnLarge
	}
	return r
}

// Describe says where each kind runs, the kinds on the large backend first
// with their measured speedups, e.g. "mxfp4_encode on cuda (1.2x),
// transpose+mxfp4_encode fused on cpu (1.4x), the rest on cpu".
func (r Routes) Describe(large, small string) string {
	var on []string
	rest := 0
	for k := range NumKinds {
		var s string
		switch {
		case r.Place[k] == OnLarge && k.Fused():
			s = k.String() + " fused on " + large
		case r.Place[k] == OnLarge:
			s = k.String() + " on " + large
		case r.Place[k] == Split:
			s = k.String() + " as separate steps"
		case k.Fused() && r.Speedup[k] > 0:
			s = k.String() + " fused on " + small
		case r.Speedup[k] > 0 && r.Speedup[k] < 1:
			s = k.String() + " on " + small
		default:
			rest++
			continue
		}
		switch sp := r.Speedup[k]; {
		case sp >= 1:
			s += fmt.Sprintf(" (%.2gx)", sp)
		case sp > 0:
			s += fmt.Sprintf(" (%s %.2gx alone, under the %.2gx margin)", large, 1/sp, r.Margin)
		}
		on = append(on, s)
	}
	switch {
	case rest == 0:
	case len(on) == 0:
		on = append(on, "everything on "+small)
	default:
		on = append(on, "the rest on "+small)
	}
	return strings.Join(on, ", ")
}

// Route sends transforms whose input is at least minBytes to large and the
// rest to small: a GPU pays a launch and a transfer that a small tensor
// never earns back. Both must produce identical bytes, so the choice never
// shows in the output.
func Route(large, small Backend, minBytes int) Backend {
	return RouteBy(large, small, minBytes, AllLarge())
}

// RouteBy is Route with each kind of transform placed by r (from
// Calibrate). The fused interfaces (MXFP4Transposer, MXFP4Gatherer) are
// forwarded to the backend a fused kind is placed on where it offers them,
// and declined otherwise, so that a kind placed on the CPU keeps the CPU's
// fused paths.
func RouteBy(large, small Backend, minBytes int, r Routes) Backend {
	return &router{large: large, small: small, min: minBytes, routes: r}
}

type router struct {
	large, small Backend
	min          int
	routes       Routes
}

var (
	_ MXFP4Transposer = (*router)(nil)
	_ MXFP4Gatherer   = (*router)(nil)
)

// pick is the backend for kind k on an input of n bytes, nil for a fused
// kind placed as Split.
func (r *router) pick(k Kind, n int) Backend {
	if n < r.min {
		return r.small
	}
	switch r.routes.Place[k] {
	case OnLarge:
		return r.large
	case Split:
		return nil
	}
	return r.small
}

// Name is "large+small" when every kind that large can run goes to it
// (small inputs aside), the small backend's name when none does, and
// otherwise lists the kinds large runs, e.g. "cuda(mxfp4_encode)+cpu".
func (r *router) Name() string {
	var on []string
	all := true
	for k := range NumKinds {
		if r.routes.Place[k] == OnLarge && offers(r.large, k) {
			on = append(on, k.String())
		} else if !k.Fused() {
			all = false
		}
	}
	switch {
	case all:
		return r.large.Name() + "+" + r.small.Name()
	case len(on) == 0:
		return r.small.Name()
	}
	return r.large.Name() + "(" + strings.Join(on, ",") + ")+" + r.small.Name()
}

// offers reports whether be can run kind k: every backend runs the plain
// kinds, the fused ones need their interface.
func offers(be Backend, k Kind) bool {
	switch k {
	case MXFP4DecodeT, MXFP4EncodeT:
		_, ok := be.(MXFP4Transposer)
		return ok
	case MXFP4EncodeParts:
		_, ok := be.(MXFP4Gatherer)
		return ok
	}
	return true
}

// Routes returns the placement the router was made with.
func (r *router) Routes() Routes { return r.routes }

func (r *router) Convert(dst []byte, dstType tensor.DType, src []byte, srcType tensor.DType) error {
	return r.pick(ConvertKind(dstType, srcType), len(src)).Convert(dst, dstType, src, srcType)
}

func (r *router) Transpose(dst, src []byte, shape tensor.Shape, elemSize int, a, b int) error {
	return r.pick(KindTranspose, len(src)).Transpose(dst, src, shape, elemSize, a, b)
}

func (r *router) DecodeMXFP4(dst []byte, dstType tensor.DType, blocks, scales []byte) error {
	return r.pick(MXFP4Decode, len(blocks)).DecodeMXFP4(dst, dstType, blocks, scales)
}

func (r *router) EncodeMXFP4(blocks, scales []byte, src []byte, srcType tensor.DType) error {
	return r.pick(MXFP4Encode, len(src)).EncodeMXFP4(blocks, scales, src, srcType)
}

func (r *router) EncodeMXFP4T(blocks, scales, src []byte, srcType tensor.DType, batch, rows, cols int) (bool, error) {
	if t, ok := r.pick(MXFP4EncodeT, len(src)).(MXFP4Transposer); ok {
		return t.EncodeMXFP4T(blocks, scales, src, srcType, batch, rows, cols)
	}
	return false, nil
}

func (r *router) DecodeMXFP4T(dst []byte, dstType tensor.DType, blocks, scales []byte, batch, rows, cols int) (bool, error) {
	if t, ok := r.pick(MXFP4DecodeT, len(blocks)).(MXFP4Transposer); ok {
		return t.DecodeMXFP4T(dst, dstType, blocks, scales, batch, rows, cols)
	}
	return false, nil
}

func (r *router) EncodeMXFP4Parts(blocks, scales []byte, parts [][]byte, srcType tensor.DType) (bool, error) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if g, ok := r.pick(MXFP4EncodeParts, n).(MXFP4Gatherer); ok {
		return g.EncodeMXFP4Parts(blocks, scales, parts, srcType)
	}
	return false, nil
}

func (r *router) Close() error {
	err := r.large.Close()
	if e := r.small.Close(); err == nil {
		err = e
	}
	return err
}
