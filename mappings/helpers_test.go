package mappings_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	nlp "github.com/nlpodyssey/safetensors"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
	_ "github.com/mapper-dev/mapper/engine/format/fastllm"
	_ "github.com/mapper-dev/mapper/engine/format/hf"
	"github.com/mapper-dev/mapper/mappings"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// load checks a built-in mapping and fails the test on any diagnostic error.
func load(t testing.TB, name string) *ir.Mapping {
	t.Helper()
	f, ok := mappings.Lookup(name)
	if !ok {
		t.Fatalf("no built-in mapping %q", name)
	}
	m, diags := f.Load()
	if diags.HasErrors() {
		t.Fatalf("%s does not check: %v", f.Path, diags.Err())
	}
	return m
}

// generate writes a synthetic HF checkpoint into a fresh directory.
func generate(t testing.TB, a synth.Arch, opts synth.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hf")
	opts.Workers = 1
	if err := synth.Generate(dir, a, 7, opts); err != nil {
		t.Fatalf("synth.Generate: %v", err)
	}
	return dir
}

// convert plans and executes one conversion into a fresh directory.
func convert(t testing.TB, m *ir.Mapping, in string, opt engine.PlanOptions) (string, *engine.Plan) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	opt.Workers = 1
	p, err := engine.NewPlan(m, in, opt)
	if err != nil {
		t.Fatalf("NewPlan(%s, %s): %v", m.Name, in, err)
	}
	defer p.Close()
	if _, err := p.Execute(context.Background(), engine.ExecOptions{Output: out}); err != nil {
		t.Fatalf("Execute(%s, %s): %v", m.Name, in, err)
	}
	checkIndependently(t, out)
	return out, p
}

// checkIndependently reads every safetensors file mapper wrote with
// nlpodyssey/safetensors, an independent implementation, and requires the
// same tensors, dtypes, shapes and bytes as our strict reader sees.
func checkIndependently(t testing.TB, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no safetensors files (%v)", dir, err)
	}
	for _, path := range files {
		raw := readFile(t, path)
		ref, err := nlp.Deserialize(raw)
		if err != nil {
			t.Fatalf("%s: the reference reader refuses it: %v", path, err)
		}
		ours, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if ref.Len() != len(ours.Tensors) {
			t.Errorf("%s: reference reader sees %d tensors, ours %d", path, ref.Len(), len(ours.Tensors))
		}
		for _, info := range ours.Tensors {
			tv, ok := ref.Tensor(info.Name)
			data, _ := ours.Data(info.Name)
			if !ok || tv.DType().String() != info.DType.String() || !slices.Equal(tv.Shape(), intsToUint64(info.Shape)) || !bytes.Equal(tv.Data(), data) {
				t.Errorf("%s: %s differs between the reference reader and ours", path, info.Name)
			}
		}
		ours.Close()
	}
}

func intsToUint64(s tensor.Shape) []uint64 {
	out := make([]uint64, len(s))
	for i, d := range s {
		out[i] = uint64(d)
	}
	return out
}

// checkpoint is an opened checkpoint of either side, by logical tensor name.
type checkpoint struct {
	t   testing.TB
	dir string
	ck  *safetensors.Checkpoint
	key func(string) string
}

// openHF opens an HF checkpoint directly with the safetensors reader.
func openHF(t testing.TB, dir string) *checkpoint {
	t.Helper()
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatalf("opening %s: %v", dir, err)
	}
	t.Cleanup(func() { ck.Close() })
	return &checkpoint{t: t, dir: dir, ck: ck, key: func(s string) string { return s }}
}

// openFastLLM opens a Fast-LLM checkpoint's model_*.safetensors files
// directly (keys "<name>/weights").
func openFastLLM(t testing.TB, dir string) *checkpoint {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".safetensors" {
			files = append(files, e.Name())
		}
	}
	ck, err := safetensors.OpenFiles(dir, files)
	if err != nil {
		t.Fatalf("opening %s: %v", dir, err)
	}
	t.Cleanup(func() { ck.Close() })
	return &checkpoint{t: t, dir: dir, ck: ck, key: func(s string) string { return s + "/weights" }}
}

// raw returns a tensor's dtype, shape and bytes.
func (c *checkpoint) raw(name string) (tensor.DType, tensor.Shape, []byte) {
	c.t.Helper()
	f, info, ok := c.ck.Lookup(c.key(name))
	if !ok {
		c.t.Fatalf("%s: no tensor %s", c.dir, name)
	}
	data, err := f.Data(info.Name)
	if err != nil {
		c.t.Fatal(err)
	}
	return info.DType, info.Shape, data
}

// bf16 returns a BF16 tensor's values (widened to float32 by shifting the
// bits: exact) and checks its shape.
func (c *checkpoint) bf16(name string, shape ...int) []float32 {
	c.t.Helper()
	dt, sh, data := c.raw(name)
	if dt != tensor.BF16 {
		c.t.Fatalf("%s: %s is %v, want BF16", c.dir, name, dt)
	}
	if !slices.Equal([]int(sh), shape) {
		c.t.Fatalf("%s: %s has shape %v, want %v", c.dir, name, sh, shape)
	}
	out := make([]float32, len(data)/2)
	for i := range out {
		out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(data[2*i:])) << 16)
	}
	return out
}

// u8 returns a U8 tensor's bytes and checks its shape.
func (c *checkpoint) u8(name string, shape ...int) []byte {
	c.t.Helper()
	dt, sh, data := c.raw(name)
	if dt != tensor.U8 {
		c.t.Fatalf("%s: %s is %v, want U8", c.dir, name, dt)
	}
	if !slices.Equal([]int(sh), shape) {
		c.t.Fatalf("%s: %s has shape %v, want %v", c.dir, name, sh, shape)
	}
	return data
}

func (c *checkpoint) has(name string) bool {
	_, _, ok := c.ck.Lookup(c.key(name))
	return ok
}

// sameBits compares two float slices bit for bit (so -0 differs from +0),
// reporting the first few mismatches with their index.
func sameBits(t testing.TB, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			if bad < 5 {
				t.Errorf("%s[%d] = %v, want %v", what, i, got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(got))
	}
}

// readFile reads a file or fails.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// f32s reads little-endian F32 bytes.
func f32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
