package backend

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// CalibrateOptions sets what Calibrate times.
type CalibrateOptions struct {
	// Elements per sample (a multiple of 32768; default 8M: 16 MiB of BF16,
	// about what one of the engine's chunks hands a backend).
	Elements int
	// Runs is how many timed runs each kind gets on each backend, after
	// one untimed warm-up run whose output is compared; the fastest counts
	// (default 2).
	Runs int
	// Now is the clock (default time.Now); tests pass a fake one.
	Now func() time.Time
	// Margin is how many times faster than the other choices a kind must
	// run alone on the large backend to be placed there (default
	// DefaultMargin).
	Margin float64
}

// DefaultMargin is the speedup a kind must show on the large backend (a
// GPU), timed alone, to be placed there. A conversion runs several chunks
// at once, and their reads and writes overlap the CPU's work, while a GPU
// takes the chunks one at a time and moves every byte over PCIe twice: on
// an H200 beside 16 cores (docs/performance.md), transposes and MXFP4
// encoding timed 1.0-1.9x faster alone, yet a whole GPT-OSS export with them
// on the GPU took 1.7x as long as on the CPU (with 2 workers, once 1.2x
// faster and once 1.2x slower).
const DefaultMargin = 1.5

// sampleCols is the width of the transposed samples' matrices.
const sampleCols = 1024

// Calibrate times every kind of transform on large and on small with the
// same sample and places each on the faster one; a fused kind goes where it
// runs fastest fused, or is split into its steps (each then placed by its
// own kind) when that is faster. The large backend's output is compared
// with the small one's, byte for byte: a kind where it differs or fails is
// placed on small and named in Problems. The small backend must not fail.
func Calibrate(large, small Backend, opt CalibrateOptions) (Routes, error) {
	if opt.Elements <= 0 {
		opt.Elements = 8 << 20
	}
	opt.Elements = (opt.Elements + 32*sampleCols - 1) / (32 * sampleCols) * (32 * sampleCols)
	if opt.Runs <= 0 {
		opt.Runs = 2
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Margin <= 0 {
		opt.Margin = DefaultMargin
	}
	r := Routes{Margin: opt.Margin}
	var t [NumKinds][2]time.Duration // [kind][OnSmall, OnLarge]; 0: not available
	s := newSamples(opt.Elements)
	for k := range NumKinds {
		p := s.probe(k)
		want, ts, ok, err := timeProbe(p, small, opt)
		if err != nil {
			return Routes{}, fmt.Errorf("calibrating %s on %s: %w", k, small.Name(), err)
		}
		if ok {
			t[k][OnSmall] = ts
		}
		got, tl, okL, err := timeProbe(p, large, opt)
		switch {
		case err != nil:
			r.Problems = append(r.Problems, fmt.Sprintf("%s on %s: %v", k, large.Name(), err))
		case okL && ok && !bytes.Equal(got, want):
			r.Problems = append(r.Problems, fmt.Sprintf("%s on %s: output differs from %s's", k, large.Name(), small.Name()))
		case okL:
			t[k][OnLarge] = tl
		}
		if !k.Fused() {
			r.Place[k], r.Speedup[k] = faster(t[k][OnSmall], t[k][OnLarge], opt.Margin)
			continue
		}
		// Split: the steps, each where it was placed (the kinds a fused
		// kind is made of come before it).
		var split time.Duration
		for _, q := range k.parts() {
			split += t[q][r.Place[q]]
		}
		if k == MXFP4EncodeParts {
			split += s.gatherTime(opt)
		}
		r.Place[k], r.Speedup[k] = fastest(t[k][OnSmall], t[k][OnLarge], split, opt.Margin)
	}
	return r, nil
}

// faster places a kind on large when it is at least margin times faster
// there (0: not available), else on small. The speedup is how much faster
// the chosen backend was.
func faster(small, large time.Duration, margin float64) (Place, float64) {
	if large > 0 && float64(large)*margin <= float64(small) {
		return OnLarge, float64(small) / float64(large)
	}
	if large > 0 && small > 0 {
		return OnSmall, float64(large) / float64(small)
	}
	return OnSmall, 0
}

// fastest places a fused kind: fused on small, fused on large (0: not
// available; it must be margin times faster than the best other choice)
// or split. The speedup is the chosen choice's over the next best.
func fastest(small, large, split time.Duration, margin float64) (Place, float64) {
	type choice struct {
		d    time.Duration
		cost float64 // d, weighed by the margin on large
		p    Place
	}
	var cs []choice
	for _, c := range []choice{{split, float64(split), Split}, {small, float64(small), OnSmall}, {large, float64(large) * margin, OnLarge}} {
		if c.d > 0 {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return Split, 0
	}
	best := 0
	for i, c := range cs {
		if c.cost < cs[best].cost {
			best = i
		}
	}
	var second time.Duration
	for i, c := range cs {
		if i != best && (second == 0 || c.d < second) {
			second = c.d
		}
	}
	if second == 0 {
		return cs[best].p, 0
	}
	return cs[best].p, float64(second) / float64(cs[best].d)
}

// probe runs one kind on a backend, writing its output to a fresh buffer;
// ok is false when the backend does not offer the kind (a fused path).
type probe func(be Backend) (out []byte, ok bool, err error)

// timeProbe runs p once untimed (its output is returned) and then
// opt.Runs times, returning the fastest run.
func timeProbe(p probe, be Backend, opt CalibrateOptions) ([]byte, time.Duration, bool, error) {
	out, ok, err := p(be)
	if err != nil || !ok {
		return nil, 0, ok, err
	}
	var best time.Duration
	for range opt.Runs {
		t0 := opt.Now()
		if _, _, err := p(be); err != nil {
			return nil, 0, false, err
		}
		if d := max(opt.Now().Sub(t0), 1); best == 0 || d < best {
			best = d
		}
	}
	return out, best, true, nil
}

// samples are the calibration inputs, n elements each: random bits for the
// casts (NaNs included), finite BF16 values for the encoder, and MXFP4
// groups with scales around 1.
type samples struct {
	n              int
	f32, bf16, f16 []byte
	f8             []byte
	blocks, scales []byte
	parts          [][]byte // bf16 in 64 pieces
	rows, cols     int      // the transposed samples: one rows x cols matrix
}

func newSamples(n int) *samples {
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(b []byte) []byte {
		for i := 0; i+8 <= len(b); i += 8 {
			le.PutUint64(b[i:], r.Uint64())
		}
		return b
	}
	s := &samples{n: n, rows: n / sampleCols, cols: sampleCols}
	// The casts' sources are random bits: one buffer serves them all.
	s.f32 = fill(make([]byte, 4*n))
	s.f16, s.f8 = s.f32[:2*n], s.f32[:n]
	s.blocks, s.scales = fill(make([]byte, n/2)), make([]byte, n/32)
	for i := range s.scales {
		s.scales[i] = byte(112 + r.IntN(32))
	}
	s.bf16 = fill(make([]byte, 2*n))
	for i := 0; i < len(s.bf16); i += 2 {
		// Sign and mantissa random, exponents 2^-27 .. 2^36: finite.
		v := le.Uint16(s.bf16[i:])
		le.PutUint16(s.bf16[i:], v&0x807f|uint16(100+v>>7%64)<<7)
	}
	const pieces = 64
	for i := range pieces {
		s.parts = append(s.parts, s.bf16[i*len(s.bf16)/pieces:(i+1)*len(s.bf16)/pieces])
	}
	return s
}

func (s *samples) probe(k Kind) probe {
	n := s.n
	conv := func(dst tensor.DType, src []byte, st tensor.DType) probe {
		return func(be Backend) ([]byte, bool, error) {
			out := make([]byte, n*dst.Size())
			return out, true, be.Convert(out, dst, src, st)
		}
	}
	switch k {
	case CastNarrow:
		return conv(tensor.BF16, s.f32, tensor.F32)
	case CastWiden:
		return conv(tensor.F32, s.bf16, tensor.BF16)
	case Cast16:
		return conv(tensor.BF16, s.f16, tensor.F16)
	case CastF8:
		return conv(tensor.BF16, s.f8, tensor.F8_E4M3)
	case KindTranspose:
		return func(be Backend) ([]byte, bool, error) {
			out := make([]byte, 2*n)
			return out, true, be.Transpose(out, s.bf16, tensor.Shape{s.rows, s.cols}, 2, 0, 1)
		}
	case MXFP4Decode:
		return func(be Backend) ([]byte, bool, error) {
			out := make([]byte, 2*n)
			return out, true, be.DecodeMXFP4(out, tensor.BF16, s.blocks, s.scales)
		}
	case MXFP4Encode:
		return func(be Backend) ([]byte, bool, error) {
			out := make([]byte, n/2+n/32)
			return out, true, be.EncodeMXFP4(out[:n/2], out[n/2:], s.bf16, tensor.BF16)
		}
	case MXFP4DecodeT:
		return func(be Backend) ([]byte, bool, error) {
			t, ok := be.(MXFP4Transposer)
			if !ok {
				return nil, false, nil
			}
			out := make([]byte, 2*n)
			ok, err := t.DecodeMXFP4T(out, tensor.BF16, s.blocks, s.scales, 1, s.rows, s.cols)
			return out, ok, err
		}
	case MXFP4EncodeT:
		return func(be Backend) ([]byte, bool, error) {
			t, ok := be.(MXFP4Transposer)
			if !ok {
				return nil, false, nil
			}
			out := make([]byte, n/2+n/32)
			ok, err := t.EncodeMXFP4T(out[:n/2], out[n/2:], s.bf16, tensor.BF16, 1, s.rows, s.cols)
			return out, ok, err
		}
	case MXFP4EncodeParts:
		return func(be Backend) ([]byte, bool, error) {
			g, ok := be.(MXFP4Gatherer)
			if !ok {
				return nil, false, nil
			}
			out := make([]byte, n/2+n/32)
			ok, err := g.EncodeMXFP4Parts(out[:n/2], out[n/2:], s.parts, tensor.BF16)
			return out, ok, err
		}
	}
	panic(fmt.Sprintf("backend: no calibration sample for %v", k))
}

// gatherTime is what the engine adds when it declines EncodeMXFP4Parts:
// copying the pieces into one buffer.
func (s *samples) gatherTime(opt CalibrateOptions) time.Duration {
	buf := make([]byte, 2*s.n)
	var best time.Duration
	for range opt.Runs {
		t0 := opt.Now()
		off := 0
		for _, p := range s.parts {
			off += copy(buf[off:], p)
		}
		if d := opt.Now().Sub(t0); best == 0 || d < best {
			best = d
		}
	}
	return best
}

// The startup model AutoMinBytes uses, from the first GPU run (an H200
// beside 16 cores, docs/performance.md): the CPU backend's slowest kinds
// (transposes, MXFP4 encode) moved 14-15 GB/s on 16 workers, about 0.9 GB/s
// per worker; the GPU moved at most 26 GB/s (bytes read plus written, as
// the engine's chunks go through a backend).
const (
	cpuRatePerWorker = 0.9e9
	gpuRate          = 26e9
)

// AutoMinBytes is the least heavy work (bytes read plus written by the
// jobs that run a backend transform) for which opening a GPU that takes
// startup to open (and calibrate) can pay off: below it, even if every such
// byte went at the GPU's best rate instead of the CPU's slowest, the saving
// would not cover the startup. With a CPU that is not slower than the GPU
// it is never worth it (the maximum int64).
func AutoMinBytes(workers int, startup time.Duration) int64 {
	cpu := cpuRatePerWorker * float64(max(workers, 1))
	saving := 1/cpu - 1/gpuRate // seconds per byte, at best
	if saving <= 0 {
		return 1<<63 - 1
	}
	return int64(startup.Seconds() / saving)
}
