package engine

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// dtypeMap has one rule of each kind an export from F32 meets: a copy and a
// layout op without a declared dtype, a cast op, and a copy whose left side
// declares BF16.
const dtypeMap = `mapping dt
left hf
right fast_llm
config {
  hidden_size <-> hidden_size
}
tensors {
  a: [4, 8] <-> x
  (b: [2, 8], c: [2, 8]) | concat(0) <-> y
  d: F32[4, 8] | cast(BF16) <-> z: BF16[4, 8]
  e: BF16[4, 8] <-> w: BF16[4, 8]
}
`

// writeF32FastLLM writes a Fast-LLM checkpoint of F32 tensors x, y, z, w
// ([4, 8], values exact in BF16 and F16) with carried as its
// metadata.mapper.
func writeF32FastLLM(t *testing.T, dir string, carried *format.Carried) map[string][]float32 {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	vals := map[string][]float32{}
	var entries []safetensors.Entry
	index := map[string]string{}
	for k, name := range []string{"w", "x", "y", "z"} {
		v := make([]float32, 32)
		for i := range v {
			v[i] = float32(k*32+i) / 4
		}
		vals[name] = v
		entries = append(entries, safetensors.Entry{Name: name + "/weights", DType: tensor.F32, Shape: tensor.Shape{4, 8}})
		index[name+"/weights"] = "model_0.safetensors"
	}
	meta, err := fastllm.EncodeMetadata("", map[string]any{"hidden_size": int64(8)}, index, carried)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fastllm.MetadataFile), meta, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := safetensors.NewLayout(entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.Create(filepath.Join(dir, "model_0.safetensors"), l)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range vals {
		b := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
		}
		if err := w.WriteAt(name+"/weights", 0, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	return vals
}

// TestExportFromF32: F32 weights are accepted on export whatever the rule
// declares for them, and each HF tensor comes out in the dtype it needs:
// the declared one, else the one the import recorded, else the F32 it
// arrives in; the plan names every cast and says which lose precision.
func TestExportFromF32(t *testing.T) {
	m := loadMapping(t, "dt.map", []byte(dtypeMap))
	for _, tc := range []struct {
		name    string
		carried *format.Carried
		want    map[string]tensor.DType
		notes   []string
	}{
		{"nothing recorded", nil,
			map[string]tensor.DType{"a": tensor.F32, "b": tensor.F32, "c": tensor.F32, "d": tensor.F32, "e": tensor.BF16},
			[]string{"1 tensors are cast from F32 to BF16, the dtype their rules declare or the import recorded: lossy"}},
		{"recorded F16", &format.Carried{Mapping: "dt", From: "hf", DType: "F16"},
			map[string]tensor.DType{"a": tensor.F16, "b": tensor.F16, "c": tensor.F16, "d": tensor.F32, "e": tensor.BF16},
			[]string{"1 tensors are cast from F32 to BF16", "3 tensors are cast from F32 to F16"}},
		{"recorded per tensor", &format.Carried{Mapping: "dt", From: "hf", DTypes: map[string]string{"a": "BF16", "b": "F32", "c": "F32"}},
			map[string]tensor.DType{"a": tensor.BF16, "b": tensor.F32, "c": tensor.F32, "d": tensor.F32, "e": tensor.BF16},
			[]string{"2 tensors are cast from F32 to BF16"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(t.TempDir(), "fl")
			vals := writeF32FastLLM(t, in, tc.carried)
			out := filepath.Join(t.TempDir(), "hf")
			p, _ := convert(t, m, in, out, PlanOptions{})
			for _, n := range tc.notes {
				if !slices.ContainsFunc(p.Notes, func(s string) bool { return strings.Contains(s, n) }) {
					t.Errorf("notes %q do not say %q", p.Notes, n)
				}
			}
			ck, err := safetensors.OpenDir(out)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			want := map[string][]float32{"a": vals["x"], "b": vals["y"][:16], "c": vals["y"][16:], "d": vals["z"], "e": vals["w"]}
			for name, dt := range tc.want {
				f, info, ok := ck.Lookup(name)
				if !ok {
					t.Fatalf("no %s in the output", name)
				}
				if info.DType != dt {
					t.Errorf("%s is %v, want %v", name, info.DType, dt)
					continue
				}
				data, _ := f.Data(name)
				if got := castBytes(t, want[name], dt); !bytes.Equal(data, got) {
					t.Errorf("%s: values differ", name)
				}
			}
		})
	}
}

// castBytes encodes values exact in every float dtype as dt.
func castBytes(t *testing.T, v []float32, dt tensor.DType) []byte {
	t.Helper()
	var out []byte
	for _, f := range v {
		switch dt {
		case tensor.F32:
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
		case tensor.BF16:
			out = binary.LittleEndian.AppendUint16(out, uint16(math.Float32bits(f)>>16))
		case tensor.F16:
			out = binary.LittleEndian.AppendUint16(out, f16(f))
		default:
			t.Fatalf("dtype %v", dt)
		}
	}
	return out
}

// f16 encodes a float32 that F16 holds exactly (normal, few mantissa bits).
func f16(f float32) uint16 {
	if f == 0 {
		return 0
	}
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	return sign | uint16(exp)<<10 | uint16(b>>13&0x3ff)
}

// TestCastTo: one cast serves a rule's left tensors, so their needs must
// agree; only floats are cast.
func TestCastTo(t *testing.T) {
	f32 := []ir.TensorType{{DType: tensor.F32}, {DType: tensor.F32}}
	I, B, H := tensor.Invalid, tensor.BF16, tensor.F16
	for _, c := range []struct {
		left []ir.TensorType
		need []tensor.DType
		want tensor.DType
		err  string
	}{
		{f32, nil, I, ""},
		{f32, []tensor.DType{I, I}, I, ""},
		{f32, []tensor.DType{tensor.F32, I}, I, ""},
		{f32, []tensor.DType{B, I}, B, ""},
		{f32, []tensor.DType{B, B}, B, ""},
		{f32, []tensor.DType{B, H}, I, "must be written as F16 and as BF16"},
		{f32, []tensor.DType{tensor.F32, B}, I, "must be written as F32 and as BF16"},
		{[]ir.TensorType{{DType: tensor.U8}}, []tensor.DType{B}, I, "U8 tensors must be written as BF16; only floats are cast"},
	} {
		got, err := castTo(c.left, c.need)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("castTo(%v, %v) = %v, %v; want %v, %q", c.left, c.need, got, err, c.want, c.err)
		}
	}
}

// TestRecordedDTypes: an import records one dtype when every left tensor
// has it, else each tensor's.
func TestRecordedDTypes(t *testing.T) {
	if d, m := recordedDTypes(nil); d != "" || m != nil {
		t.Errorf("nothing recorded: %q %v", d, m)
	}
	if d, m := recordedDTypes(map[string]tensor.DType{"a": tensor.BF16, "b": tensor.BF16}); d != "BF16" || m != nil {
		t.Errorf("one dtype: %q %v", d, m)
	}
	d, m := recordedDTypes(map[string]tensor.DType{"a": tensor.BF16, "b": tensor.F32})
	if d != "" || m["a"] != "BF16" || m["b"] != "F32" || len(m) != 2 {
		t.Errorf("two dtypes: %q %v", d, m)
	}
}
