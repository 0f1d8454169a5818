package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	refst "github.com/nlpodyssey/safetensors"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// TestLayoutReferenceHeader checks the header bytes against a hand-written
// expectation of what the reference writer produces: dtype rank descending
// (so I64 before F64 and U32 before I32, although each pair has the same
// width), then name; __metadata__ first; compact JSON; padding to 8.
func TestLayoutReferenceHeader(t *testing.T) {
	entries := []Entry{
		{"b", tensor.F32, tensor.Shape{2}},
		{"a", tensor.BF16, tensor.Shape{3}},
		{"c", tensor.F32, tensor.Shape{1}},
		{"z", tensor.U8, tensor.Shape{5}},
		{"s", tensor.I64, tensor.Shape{}},
		{"f", tensor.F64, tensor.Shape{}},
		{"u", tensor.U32, tensor.Shape{1}},
		{"i", tensor.I32, tensor.Shape{1}},
		{"q", tensor.F8_E4M3, tensor.Shape{3}},
	}
	l, err := NewLayout(entries, map[string]string{"format": "pt", `a"b`: "x<y"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"__metadata__":{"a\"b":"x<y","format":"pt"},` +
		`"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]},` +
		`"f":{"dtype":"F64","shape":[],"data_offsets":[8,16]},` +
		`"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},` +
		`"c":{"dtype":"F32","shape":[1],"data_offsets":[24,28]},` +
		`"u":{"dtype":"U32","shape":[1],"data_offsets":[28,32]},` +
		`"i":{"dtype":"I32","shape":[1],"data_offsets":[32,36]},` +
		`"a":{"dtype":"BF16","shape":[3],"data_offsets":[36,42]},` +
		`"q":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[42,45]},` +
		`"z":{"dtype":"U8","shape":[5],"data_offsets":[45,50]}}` + "     " // 539 bytes + 5 of padding
	if got := string(l.Header); got != want {
		t.Errorf("header\n got %q\nwant %q", got, want)
	}
	if l.DataStart != 8+544 || l.Size != 8+544+50 || l.DataSize() != 50 {
		t.Errorf("DataStart %d, Size %d, DataSize %d", l.DataStart, l.Size, l.DataSize())
	}
	if ti, ok := l.Tensor("a"); !ok || l.FileOffset(ti) != l.DataStart+36 {
		t.Errorf("Tensor(a) = %+v, %v", ti, ok)
	}

	// Without metadata there is no __metadata__ key; with an empty map, an
	// empty one, as the reference writes for Some(empty).
	l, _ = NewLayout([]Entry{{"x", tensor.U8, tensor.Shape{1}}}, nil)
	if got := string(l.Header); got != `{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`+"   " {
		t.Errorf("no-metadata header %q", got)
	}
	l, _ = NewLayout(nil, map[string]string{})
	if got := string(l.Header); got != `{"__metadata__":{}}`+"     " {
		t.Errorf("empty-metadata header %q", got)
	}
	l, _ = NewLayout(nil, nil)
	if got := string(l.Header); got != `{}      ` {
		t.Errorf("empty header %q", got)
	}
}

func TestLayoutRejects(t *testing.T) {
	cases := []struct {
		name    string
		entries []Entry
		md      map[string]string
		want    string
	}{
		{"duplicate", []Entry{{"w", tensor.F32, nil}, {"w", tensor.F32, nil}}, nil, `"w" listed twice`},
		{"reserved", []Entry{{"__metadata__", tensor.F32, nil}}, nil, "reserved"},
		{"invalid dtype", []Entry{{"w", tensor.Invalid, nil}}, nil, `"w": invalid dtype`},
		{"negative dim", []Entry{{"w", tensor.F32, tensor.Shape{-1}}}, nil, "negative dimension"},
		{"sub-byte", []Entry{{"w", tensor.F4, tensor.Shape{3}}}, nil, "whole bytes"},
		{"bad utf-8 name", []Entry{{"w\xff", tensor.F32, nil}}, nil, "UTF-8"},
		{"bad utf-8 metadata", nil, map[string]string{"k": "\xff"}, "UTF-8"},
		// Each fits; their sum does not (2^59 bytes each).
		{"data buffer overflows", hugeEntries(16, 0), nil, "data buffer size 8646911284551352320 + 576460752303423488 overflows a 64-bit integer"},
		// The data fits in int64 with 4 bytes to spare; the header does not.
		{"file size overflows", hugeEntries(15, 1<<59-4), nil, "file size"},
	}
	for _, tc := range cases {
		if _, err := NewLayout(tc.entries, tc.md); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewLayout error = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

// hugeEntries lists n U8 tensors of 2^59 bytes each, and one of last bytes
// when last > 0: sizes a layout must add up without wrapping.
func hugeEntries(n int, last int) []Entry {
	var es []Entry
	for i := range n {
		es = append(es, Entry{fmt.Sprintf("w%d", i), tensor.U8, tensor.Shape{1 << 59}})
	}
	if last > 0 {
		es = append(es, Entry{"z", tensor.U8, tensor.Shape{last}})
	}
	return es
}

// refDTypes are the dtypes github.com/nlpodyssey/safetensors understands; the
// files the tests write stick to them so both readers can check them.
var refDTypes = []tensor.DType{
	tensor.BOOL, tensor.U8, tensor.I8, tensor.I16, tensor.U16, tensor.F16, tensor.BF16,
	tensor.I32, tensor.U32, tensor.F32, tensor.F64, tensor.I64, tensor.U64,
}

// randomTensors makes named tensors with random shapes and bytes, including
// scalars and zero-size tensors.
func randomTensors(rng *rand.Rand, n int, prefix string) map[string]tensor.Tensor {
	out := make(map[string]tensor.Tensor, n)
	for i := range n {
		dt := refDTypes[rng.IntN(len(refDTypes))]
		var shape tensor.Shape
		switch i % 5 {
		case 0: // scalar
			shape = tensor.Shape{}
		case 1: // zero-size
			shape = tensor.Shape{rng.IntN(4), 0}
		default:
			shape = tensor.Shape{1 + rng.IntN(40), 1 + rng.IntN(300)}
		}
		size, _ := byteSize(dt, shape)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		out[prefix+itoa(i)] = tensor.Tensor{DType: dt, Shape: shape, Data: data}
	}
	return out
}

func entriesOf(ts map[string]tensor.Tensor) []Entry {
	var es []Entry
	for name, t := range ts {
		es = append(es, Entry{Name: name, DType: t.DType, Shape: t.Shape})
	}
	return es
}

// writeParallel writes every tensor in chunks of at most chunk bytes, from
// several goroutines, in shuffled order.
func writeParallel(t testing.TB, w *Writer, ts map[string]tensor.Tensor, chunk int) {
	type job struct {
		name string
		off  int
		data []byte
	}
	var jobs []job
	for name, tt := range ts {
		for off := 0; off < len(tt.Data); off += chunk {
			jobs = append(jobs, job{name, off, tt.Data[off:min(off+chunk, len(tt.Data))]})
		}
	}
	rand.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	const workers = 4
	for k := range workers {
		wg.Go(func() {
			for i := k; i < len(jobs); i += workers {
				j := jobs[i]
				if err := w.WriteAt(j.name, int64(j.off), j.data); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// verifyBoth reads path with our reader and with nlpodyssey/safetensors and
// checks that both see exactly the tensors and metadata in want.
func verifyBoth(t testing.TB, path string, want map[string]tensor.Tensor, metadata map[string]string) {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatalf("our reader: %v", err)
	}
	defer f.Close()
	if len(f.Tensors) != len(want) {
		t.Fatalf("our reader: %d tensors, want %d", len(f.Tensors), len(want))
	}
	for name, w := range want {
		got, err := f.Load(name)
		if err != nil {
			t.Fatalf("our reader: %v", err)
		}
		if got.DType != w.DType || !got.Shape.Equal(w.Shape) || !bytes.Equal(got.Data, w.Data) {
			t.Errorf("our reader: tensor %q = %v%v (%d bytes), want %v%v (%d bytes)",
				name, got.DType, got.Shape, len(got.Data), w.DType, w.Shape, len(w.Data))
		}
	}
	if len(f.Metadata) != len(metadata) {
		t.Errorf("our reader: metadata %v, want %v", f.Metadata, metadata)
	}
	for k, v := range metadata {
		if f.Metadata[k] != v {
			t.Errorf("our reader: metadata[%q] = %q, want %q", k, f.Metadata[k], v)
		}
	}

	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := refst.Deserialize(buf)
	if err != nil {
		t.Fatalf("nlpodyssey/safetensors rejects %s: %v", path, err)
	}
	if st.Len() != len(want) {
		t.Fatalf("nlpodyssey/safetensors: %d tensors, want %d", st.Len(), len(want))
	}
	for name, w := range want {
		v, ok := st.Tensor(name)
		if !ok {
			t.Fatalf("nlpodyssey/safetensors: no tensor %q", name)
		}
		shape := make(tensor.Shape, len(v.Shape()))
		for i, d := range v.Shape() {
			shape[i] = int(d)
		}
		if v.DType().String() != w.DType.String() || !shape.Equal(w.Shape) || !bytes.Equal(v.Data(), w.Data) {
			t.Errorf("nlpodyssey/safetensors: tensor %q = %v%v (%d bytes), want %v%v (%d bytes)",
				name, v.DType(), shape, len(v.Data()), w.DType, w.Shape, len(w.Data))
		}
	}
	_, meta, err := refst.ReadMetadata(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := meta.Metadata(); len(got) != len(metadata) {
		t.Errorf("nlpodyssey/safetensors: metadata %v, want %v", got, metadata)
	}
}

// writeTensors writes ts to path with parallel chunked writes and checks the
// result with both readers.
func writeTensors(t testing.TB, path string, ts map[string]tensor.Tensor, md map[string]string) {
	t.Helper()
	l, err := NewLayout(entriesOf(ts), md)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(path, l)
	if err != nil {
		t.Fatal(err)
	}
	writeParallel(t, w, ts, 1000)
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, path, ts, md)
}

func TestWriteRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	md := map[string]string{"format": "pt", "note": "<&>\u2028 \"quoted\"\n"}
	writeTensors(t, filepath.Join(dir, "a.safetensors"), randomTensors(rng, 60, "layer."), md)
	writeTensors(t, filepath.Join(dir, "empty.safetensors"), nil, nil)
	writeTensors(t, filepath.Join(dir, "zero.safetensors"),
		map[string]tensor.Tensor{"z": {DType: tensor.F32, Shape: tensor.Shape{0}, Data: []byte{}}}, nil)
}

// TestWriterHeaderMatchesNlpodyssey compares our file with the one the
// independent implementation serializes for the same tensors. It orders the
// header keys differently (it marshals a Go map), so the check is on the data
// buffer and on the parsed header, which must agree exactly.
func TestWriterHeaderMatchesNlpodyssey(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ts := randomTensors(rng, 25, "t")
	path := filepath.Join(t.TempDir(), "a.safetensors")
	writeTensors(t, path, ts, nil)

	views := make(map[string]refst.TensorView)
	for name, tt := range ts {
		if len(tt.Shape) == 0 {
			continue // nlpodyssey's NewTensorView counts a scalar as 0 elements
		}
		dt, err := refst.ParseDType(tt.DType.String())
		if err != nil {
			t.Fatal(err)
		}
		shape := make([]uint64, len(tt.Shape))
		for i, d := range tt.Shape {
			shape[i] = uint64(d)
		}
		v, err := refst.NewTensorView(dt, shape, tt.Data)
		if err != nil {
			t.Fatal(err)
		}
		views[name] = v
	}
	ref, err := refst.Serialize(views, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name := range ts {
		if _, ok := views[name]; !ok {
			delete(ts, name)
		}
	}
	ours := filepath.Join(t.TempDir(), "b.safetensors")
	writeTensors(t, ours, ts, nil)
	got, err := os.ReadFile(ours)
	if err != nil {
		t.Fatal(err)
	}
	gl, rl := binary.LittleEndian.Uint64(got), binary.LittleEndian.Uint64(ref)
	if gl != rl || !bytes.Equal(got[8+gl:], ref[8+rl:]) {
		t.Fatalf("data buffers differ (header lengths %d vs %d)", gl, rl)
	}
	gh, err := ParseHeader(got[8:8+gl], int64(len(got))-8-int64(gl))
	if err != nil {
		t.Fatal(err)
	}
	rh, err := ParseHeader(ref[8:8+rl], int64(len(ref))-8-int64(rl))
	if err != nil {
		t.Fatal(err)
	}
	for i := range gh.Tensors {
		g, r := gh.Tensors[i], rh.Tensors[i]
		if g.Name != r.Name || g.DType != r.DType || !g.Shape.Equal(r.Shape) || g.Begin != r.Begin || g.End != r.End {
			t.Errorf("tensor %d: ours %+v, nlpodyssey %+v", i, g, r)
		}
	}
}

func TestWriterChecks(t *testing.T) {
	dir := t.TempDir()
	l, err := NewLayout([]Entry{
		{"a", tensor.F32, tensor.Shape{4}},
		{"b", tensor.U8, tensor.Shape{3}},
		{"c", tensor.U8, tensor.Shape{0}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "w.safetensors")
	w, err := Create(path, l)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != l.Size {
		t.Fatalf("file size after Create: %v, %v; want %d", st, err, l.Size)
	}
	for _, bad := range []struct {
		name string
		off  int64
		n    int
		want string
	}{
		{"a", 12, 8, `tensor "a": write of 8 bytes at offset 12 leaves its 16 bytes`},
		{"a", -1, 1, "offset -1"},
		{"b", 0, 4, `tensor "b"`},
		{"nope", 0, 1, `no tensor "nope"`},
	} {
		if err := w.WriteAt(bad.name, bad.off, make([]byte, bad.n)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("WriteAt(%q, %d, %d bytes) = %v, want %q", bad.name, bad.off, bad.n, err, bad.want)
		}
	}
	// Writing the first half of a twice covers 8 bytes, not 16.
	w.WriteAt("a", 0, make([]byte, 8))
	w.WriteAt("a", 0, make([]byte, 8))
	w.WriteAt("b", 0, []byte{1, 2, 3})
	if got := w.Written("a"); got != 8 {
		t.Errorf("Written(a) = %d, want 8", got)
	}
	err = w.Finish()
	if err == nil || !strings.Contains(err.Error(), `tensor "a": only 8 of 16 bytes written`) || !strings.Contains(err.Error(), path) {
		t.Errorf("Finish = %v, want it to name tensor a and the file", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Finish: %v", err)
	}
}

func TestCoverage(t *testing.T) {
	var c coverage
	for _, s := range [][2]int64{{10, 20}, {30, 40}, {0, 5}, {5, 10}, {15, 35}, {50, 50}, {45, 60}} {
		c.add(s[0], s[1])
	}
	want := [][2]int64{{0, 40}, {45, 60}}
	if len(c.spans) != len(want) || c.spans[0] != want[0] || c.spans[1] != want[1] || c.covered() != 55 {
		t.Errorf("spans %v, covered %d; want %v, 55", c.spans, c.covered(), want)
	}
}

func TestCopyFrom(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	e0, e1 := rnd(2*3*2), rnd(2*3*2)
	srcTensors := map[string]tensor.Tensor{
		"experts.0.w": {DType: tensor.BF16, Shape: tensor.Shape{2, 3}, Data: e0},
		"experts.1.w": {DType: tensor.BF16, Shape: tensor.Shape{2, 3}, Data: e1},
		"other":       {DType: tensor.F32, Shape: tensor.Shape{3}, Data: rnd(12)},
	}
	srcPath := filepath.Join(dir, "src.safetensors")
	writeTensors(t, srcPath, srcTensors, nil)
	src, err := Open(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	l, err := NewLayout([]Entry{
		{"experts.w", tensor.BF16, tensor.Shape{2, 2, 3}},
		{"other", tensor.F32, tensor.Shape{3}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dstPath := filepath.Join(dir, "dst.safetensors")
	w, err := Create(dstPath, l)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.CopyFrom("experts.w", 0, src, "experts.0.w"); err != nil {
		t.Fatal(err)
	}
	if err := w.CopyFrom("experts.w", 12, src, "experts.1.w"); err != nil {
		t.Fatal(err)
	}
	if err := w.CopyFrom("experts.w", 16, src, "experts.0.w"); err == nil || !strings.Contains(err.Error(), "write of 12 bytes at offset 16 leaves its 24 bytes") {
		t.Errorf("CopyFrom of a too-large tensor = %v", err)
	}
	if err := w.CopyFrom("experts.w", 0, src, "other"); err == nil || !strings.Contains(err.Error(), "is BF16, cannot copy F32") {
		t.Errorf("CopyFrom across dtypes = %v", err)
	}
	if err := w.CopyFrom("other", 0, src, "missing"); err == nil || !strings.Contains(err.Error(), `no tensor "missing"`) {
		t.Errorf("CopyFrom of a missing tensor = %v", err)
	}
	if err := w.CopyFrom("other", 0, src, "other"); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	verifyBoth(t, dstPath, map[string]tensor.Tensor{
		"experts.w": {DType: tensor.BF16, Shape: tensor.Shape{2, 2, 3}, Data: append(append([]byte{}, e0...), e1...)},
		"other":     srcTensors["other"],
	}, nil)
}
