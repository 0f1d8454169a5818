package backend

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// fakeClock is a clock that moves only when a fake backend works.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeBE computes with the CPU backend and takes cost[k] of the fake clock
// per call of kind k. It counts its calls by kind, can corrupt (wrong) or
// fail (fail) one kind, and offers no fused path; fakeFused does.
type fakeBE struct {
	name  string
	clock *fakeClock
	cost  [NumKinds]time.Duration
	wrong Kind
	fail  Kind
	cpu   Backend

	mu    sync.Mutex
	calls [NumKinds]int
}

func newFake(name string, clock *fakeClock, cost time.Duration) *fakeBE {
	f := &fakeBE{name: name, clock: clock, wrong: -1, fail: -1, cpu: CPU(1)}
	for k := range f.cost {
		f.cost[k] = cost
	}
	return f
}

// did records a call of kind k; out is its output, which wrong corrupts.
func (f *fakeBE) did(k Kind, out []byte, err error) error {
	f.mu.Lock()
	f.calls[k]++
	f.mu.Unlock()
	f.clock.advance(f.cost[k])
	if k == f.fail {
		return errors.New("injected failure")
	}
	if k == f.wrong && len(out) > 0 {
		out[0] ^= 1
	}
	return err
}

func (f *fakeBE) Name() string { return f.name }
func (f *fakeBE) Close() error { return nil }

func (f *fakeBE) Convert(dst []byte, dt tensor.DType, src []byte, st tensor.DType) error {
	return f.did(ConvertKind(dt, st), dst, f.cpu.Convert(dst, dt, src, st))
}

func (f *fakeBE) Transpose(dst, src []byte, shape tensor.Shape, es, a, b int) error {
	return f.did(KindTranspose, dst, f.cpu.Transpose(dst, src, shape, es, a, b))
}

func (f *fakeBE) DecodeMXFP4(dst []byte, dt tensor.DType, blocks, scales []byte) error {
	return f.did(MXFP4Decode, dst, f.cpu.DecodeMXFP4(dst, dt, blocks, scales))
}

func (f *fakeBE) EncodeMXFP4(blocks, scales, src []byte, st tensor.DType) error {
	return f.did(MXFP4Encode, blocks, f.cpu.EncodeMXFP4(blocks, scales, src, st))
}

type fakeFused struct{ *fakeBE }

func (f fakeFused) EncodeMXFP4T(blocks, scales, src []byte, st tensor.DType, batch, rows, cols int) (bool, error) {
	ok, err := f.cpu.(MXFP4Transposer).EncodeMXFP4T(blocks, scales, src, st, batch, rows, cols)
	return ok, f.did(MXFP4EncodeT, blocks, err)
}

func (f fakeFused) DecodeMXFP4T(dst []byte, dt tensor.DType, blocks, scales []byte, batch, rows, cols int) (bool, error) {
	ok, err := f.cpu.(MXFP4Transposer).DecodeMXFP4T(dst, dt, blocks, scales, batch, rows, cols)
	return ok, f.did(MXFP4DecodeT, dst, err)
}

func (f fakeFused) EncodeMXFP4Parts(blocks, scales []byte, parts [][]byte, st tensor.DType) (bool, error) {
	ok, err := f.cpu.(MXFP4Gatherer).EncodeMXFP4Parts(blocks, scales, parts, st)
	return ok, f.did(MXFP4EncodeParts, blocks, err)
}

const ms = time.Millisecond

func TestCalibrate(t *testing.T) {
	clock := &fakeClock{}
	small := newFake("cpu", clock, 10*ms)
	small.cost[MXFP4EncodeT] = 12 * ms    // fused beats transpose (10) + encode on large (5)
	small.cost[MXFP4DecodeT] = 30 * ms    // split beats it: decode (10) + transpose (10)
	small.cost[MXFP4EncodeParts] = 9 * ms // encode on large (5) plus a gather the fake clock does not see
	large := newFake("gpu", clock, 11*ms)
	large.cost[CastNarrow] = 4 * ms
	large.cost[MXFP4Encode] = 5 * ms
	large.cost[KindTranspose] = 20 * ms
	large.cost[Cast16] = 1 * ms // faster but wrong
	large.wrong = Cast16
	large.cost[CastF8] = 1 * ms // faster but failing
	large.fail = CastF8
	r, err := Calibrate(large, fakeFused{small}, CalibrateOptions{Elements: 32 << 10, Runs: 3, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	want := [NumKinds]Place{
		CastNarrow: OnLarge, CastWiden: OnSmall, Cast16: OnSmall, CastF8: OnSmall, KindTranspose: OnSmall,
		MXFP4Decode: OnSmall, MXFP4Encode: OnLarge, MXFP4DecodeT: Split, MXFP4EncodeT: OnSmall, MXFP4EncodeParts: Split,
	}
	for k := range NumKinds {
		if r.Place[k] != want[k] {
			t.Errorf("%s placed %d, want %d", k, r.Place[k], want[k])
		}
	}
	if r.Speedup[CastNarrow] != 2.5 || r.Speedup[MXFP4Encode] != 2 || r.Speedup[KindTranspose] != 2 ||
		r.Speedup[MXFP4EncodeT] != 15.0/12 || r.Speedup[MXFP4DecodeT] != 30.0/20 {
		t.Errorf("speedups %v", r.Speedup)
	}
	if len(r.Problems) != 2 || !strings.Contains(r.Problems[0], "cast_16 on gpu: output differs from cpu's") ||
		!strings.Contains(r.Problems[1], "cast_f8 on gpu: injected failure") {
		t.Errorf("problems %q", r.Problems)
	}
	const desc = "cast_narrow on gpu (2.5x), mxfp4_encode on gpu (2x), mxfp4_decode+transpose as separate steps (1.5x), " +
		"transpose+mxfp4_encode fused on cpu (1.2x), mxfp4_encode_parts as separate steps (1.8x), the rest on cpu"
	if got := r.Describe("gpu", "cpu"); got != desc {
		t.Errorf("Describe:\n got %s\nwant %s", got, desc)
	}
	// One warm-up and three timed runs per kind on each backend that
	// offers it.
	if small.calls[CastNarrow] != 4 || large.calls[MXFP4Encode] != 4 || large.calls[MXFP4EncodeT] != 0 || small.calls[MXFP4EncodeT] != 4 {
		t.Errorf("calls: small %v, large %v", small.calls, large.calls)
	}
}

// A large backend faster alone, but by less than the margin, does not get
// the kind (a conversion overlaps the CPU's work with its I/O, a GPU takes
// chunks one at a time), and Describe says by how much it was faster.
func TestCalibrateMargin(t *testing.T) {
	for _, tc := range []struct {
		margin float64
		large  time.Duration
		place  Place
		desc   string
	}{
		{0, 8 * ms, OnSmall, "cast_narrow on cpu (gpu 1.2x alone, under the 1.5x margin), "},
		{0, 5 * ms, OnLarge, "cast_narrow on gpu (2x), "},
		{1, 8 * ms, OnLarge, "cast_narrow on gpu (1.2x), "},
		{0, 20 * ms, OnSmall, "mxfp4_decode+transpose as separate steps, "}, // cast_narrow among the rest
	} {
		clock := &fakeClock{}
		small, large := newFake("cpu", clock, 10*ms), newFake("gpu", clock, 40*ms)
		large.cost[CastNarrow] = tc.large
		r, err := Calibrate(large, small, CalibrateOptions{Elements: 32 << 10, Now: clock.Now, Margin: tc.margin})
		if err != nil {
			t.Fatal(err)
		}
		if r.Place[CastNarrow] != tc.place {
			t.Errorf("margin %v, large %v: placed %d, want %d", tc.margin, tc.large, r.Place[CastNarrow], tc.place)
		}
		if got := r.Describe("gpu", "cpu"); !strings.HasPrefix(got, tc.desc) {
			t.Errorf("margin %v, large %v: Describe:\n got %s\nwant %s...", tc.margin, tc.large, got, tc.desc)
		}
	}
}

// The small backend must work: its failure is the calibration's.
func TestCalibrateSmallFails(t *testing.T) {
	clock := &fakeClock{}
	small, large := newFake("cpu", clock, ms), newFake("gpu", clock, ms)
	small.fail = KindTranspose
	if _, err := Calibrate(large, small, CalibrateOptions{Elements: 1, Now: clock.Now}); err == nil ||
		err.Error() != "calibrating transpose on cpu: injected failure" {
		t.Fatalf("err = %v", err)
	}
}

// With real backends and the real clock every kind gets a place, and two
// CPU backends never disagree.
func TestCalibrateCPU(t *testing.T) {
	r, err := Calibrate(CPU(2), CPU(1), CalibrateOptions{Elements: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 {
		t.Fatal(r.Problems)
	}
	for k := range NumKinds {
		sp := r.Speedup[k]
		switch {
		case sp == 0 && k.Fused():
		case sp >= 1:
		case sp > 0 && r.Place[k] != OnLarge && 1/sp < r.Margin: // faster on large alone, not by the margin
		default:
			t.Errorf("%s placed %v: speedup %v (margin %v)", k, r.Place[k], sp, r.Margin)
		}
	}
	t.Log(r.Describe("cpu(2)", "cpu(1)"))
}

// The router sends each kind where the routes place it, small inputs to
// small, and forwards the fused paths to the backend a fused kind is on
// when that backend offers them (declining otherwise), with the CPU's bytes.
func TestRouteBy(t *testing.T) {
	clock := &fakeClock{}
	small, large := newFake("cpu", clock, 0), newFake("gpu", clock, 0)
	var routes Routes
	routes.Place[MXFP4Encode] = OnLarge
	routes.Place[CastWiden] = OnLarge
	routes.Place[MXFP4EncodeT] = OnSmall
	routes.Place[MXFP4DecodeT] = Split
	routes.Place[MXFP4EncodeParts] = OnLarge // large offers no gatherer: declined
	be := RouteBy(large, fakeFused{small}, 1024, routes)
	if got := be.Name(); got != "gpu(cast_widen,mxfp4_encode)+cpu" {
		t.Errorf("Name() = %q", got)
	}
	ref := CPU(1)
	r := rand.New(rand.NewPCG(1, 1))
	const n = 64 * 32 // elements, 4 KiB of BF16
	vals := make([]byte, 2*n)
	for i := 0; i < len(vals); i += 2 {
		le.PutUint16(vals[i:], uint16(r.Uint32())&0x807f|0x3f00)
	}
	check := func(what string, got, want []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if string(got) != string(want) {
			t.Fatalf("%s: bytes differ from the CPU's", what)
		}
	}
	// Encode: on large above the minimum, on small below it.
	for _, size := range []int{n, 256} {
		gb, gs, wb, ws := make([]byte, size/2), make([]byte, size/32), make([]byte, size/2), make([]byte, size/32)
		err := be.EncodeMXFP4(gb, gs, vals[:2*size], tensor.BF16)
		_ = ref.EncodeMXFP4(wb, ws, vals[:2*size], tensor.BF16)
		check("encode", append(gb, gs...), append(wb, ws...), err)
	}
	if large.calls[MXFP4Encode] != 1 || small.calls[MXFP4Encode] != 1 {
		t.Errorf("encode calls: large %d, small %d", large.calls[MXFP4Encode], small.calls[MXFP4Encode])
	}
	// Casts by class: widening on large, narrowing on small.
	wide := make([]byte, 4*n)
	check("widen", nil, nil, be.Convert(wide, tensor.F32, vals, tensor.BF16))
	check("narrow", nil, nil, be.Convert(make([]byte, 2*n), tensor.BF16, wide, tensor.F32))
	if large.calls[CastWiden] != 1 || small.calls[CastNarrow] != 1 || large.calls[CastNarrow] != 0 {
		t.Errorf("cast calls: large %v, small %v", large.calls, small.calls)
	}
	tr := be.(MXFP4Transposer)
	// Encode of a transpose: small's fused path.
	gb, gs := make([]byte, n/2), make([]byte, n/32)
	ok, err := tr.EncodeMXFP4T(gb, gs, vals, tensor.BF16, 1, 64, 32)
	wt := make([]byte, 2*n)
	_ = ref.Transpose(wt, vals, tensor.Shape{64, 32}, 2, 0, 1)
	wb, ws := make([]byte, n/2), make([]byte, n/32)
	_ = ref.EncodeMXFP4(wb, ws, wt, tensor.BF16)
	if !ok {
		t.Fatal("EncodeMXFP4T placed on small was declined")
	}
	check("encode of a transpose", append(gb, gs...), append(wb, ws...), err)
	// Decode to a transpose: split, declined; below the minimum, small's.
	if ok, err := tr.DecodeMXFP4T(make([]byte, 2*n), tensor.BF16, make([]byte, n/2), make([]byte, n/32), 1, 64, 32); ok || err != nil {
		t.Errorf("DecodeMXFP4T placed as split: ok %v, err %v", ok, err)
	}
	if ok, err := tr.DecodeMXFP4T(make([]byte, 128), tensor.BF16, make([]byte, 32), make([]byte, 2), 1, 2, 32); !ok || err != nil {
		t.Errorf("small DecodeMXFP4T: ok %v, err %v", ok, err)
	}
	// Parts placed on a large backend without a gatherer: declined.
	if ok, err := be.(MXFP4Gatherer).EncodeMXFP4Parts(gb, gs, [][]byte{vals[:n], vals[n:]}, tensor.BF16); ok || err != nil {
		t.Errorf("EncodeMXFP4Parts on large: ok %v, err %v", ok, err)
	}
	if small.calls[MXFP4EncodeT] != 1 || small.calls[MXFP4DecodeT] != 1 || small.calls[MXFP4EncodeParts] != 0 {
		t.Errorf("fused calls on small: %v", small.calls)
	}
}

// Route (--backend cuda) puts every kind on large; a large backend without
// fused paths has them declined, so the steps run on it too.
func TestRouteAllLarge(t *testing.T) {
	clock := &fakeClock{}
	small, large := newFake("cpu", clock, 0), newFake("gpu", clock, 0)
	be := Route(large, fakeFused{small}, 16)
	if be.Name() != "gpu+cpu" {
		t.Errorf("Name() = %q", be.Name())
	}
	if ok, _ := be.(MXFP4Transposer).EncodeMXFP4T(make([]byte, 512), make([]byte, 32), make([]byte, 2048), tensor.BF16, 1, 32, 32); ok {
		t.Error("fused encode went to small")
	}
	if got := AllLarge().Describe("gpu", "cpu"); !strings.HasPrefix(got, "cast_narrow on gpu, ") || strings.Contains(got, "the rest") {
		t.Errorf("Describe = %q", got)
	}
	if got := (Routes{}).Describe("gpu", "cpu"); got != "everything on cpu" {
		t.Errorf("Describe = %q", got)
	}
	if be := RouteBy(large, small, 16, Routes{}); be.Name() != "cpu" {
		t.Errorf("Name() = %q", be.Name())
	}
}

func TestAutoMinBytes(t *testing.T) {
	for _, c := range []struct {
		workers  int
		lo, hi   int64
		disabled bool
	}{
		{1, 1.8e9, 1.9e9, false}, // 2 s / (1/0.9e9 - 1/26e9)
		{16, 64e9, 65e9, false},  // 2 s / (1/14.4e9 - 1/26e9)
		{64, 0, 0, true},         // 57.6 GB/s of CPU: no GPU pays off
	} {
		got := AutoMinBytes(c.workers, 2*time.Second)
		if c.disabled && got != 1<<63-1 || !c.disabled && (got < c.lo || got > c.hi) {
			t.Errorf("AutoMinBytes(%d, 2s) = %d", c.workers, got)
		}
	}
}

func TestConvertKind(t *testing.T) {
	for _, c := range []struct {
		dst, src tensor.DType
		want     Kind
	}{
		{tensor.BF16, tensor.F32, CastNarrow}, {tensor.F16, tensor.F32, CastNarrow},
		{tensor.F32, tensor.BF16, CastWiden}, {tensor.F32, tensor.F16, CastWiden},
		{tensor.F16, tensor.BF16, Cast16}, {tensor.BF16, tensor.F16, Cast16},
		{tensor.F32, tensor.F8_E4M3, CastF8}, {tensor.BF16, tensor.F8_E5M2, CastF8},
	} {
		if got := ConvertKind(c.dst, c.src); got != c.want {
			t.Errorf("ConvertKind(%v, %v) = %v, want %v", c.dst, c.src, got, c.want)
		}
	}
	if Kind(99).String() != "Kind(99)" {
		t.Error(Kind(99).String())
	}
}
