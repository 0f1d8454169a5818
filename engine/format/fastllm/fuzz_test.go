package fastllm

import (
	"math"
	"reflect"
	"testing"

	"github.com/mapper-dev/mapper/engine/format"
)

// FuzzParseMetadata feeds metadata.yaml documents to ParseMetadata. It must
// never panic; and whatever it accepts must survive a rewrite:
// EncodeMetadata of the parsed config, state index and carried data gives a
// document it accepts again, with the same values (a float stays a float,
// -0.0 stays negative, NaN stays NaN).
func FuzzParseMetadata(f *testing.F) {
	if doc, err := EncodeMetadata("", config(), map[string]string{"a/weights": "model_0.safetensors"}, carried()); err == nil {
		f.Add(doc)
	}
	f.Add([]byte("format: fast_llm\nconfig: {base_model: {a: 1, b: 1.0e-05, c: [x, null, true]}}\nshards: [weights]\nmetadata: {state_index: {a/weights: model_0.safetensors}}\n"))
	f.Add([]byte("format: fast_llm\nconfig:\n  base_model: &b {x: .nan, y: -.inf, z: 0x10}\n  other: *b\nshards:\n- weights\n- momentum\nmetadata:\n  state_index: {}\n  mapper: {mapping: m, from: hf, absent: [a.b], files: {w: model_0.safetensors}}\n"))
	f.Add([]byte("format: fast_llm\nconfig: {base_model: {<<: {a: 1}}}\nshards: [weights]\nmetadata: {state_index: {}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("format: fast_llm\nfast_llm_version: 0.3.0\nmodel: gpt\nconfig: {type: gpt, base_model: {a: 1}, distributed: {rank: 0}}\nshards: [weights, exp_avgs]\nmetadata: {state_index: {a/weights: model_0.safetensors, a/exp_avgs: model_0.safetensors}, completed_steps: 10, mapper: {mapping: m, from: hf, dtype: BF16, dtypes: {}}}\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		md, err := ParseMetadata(doc)
		if err != nil {
			return
		}
		out, err := EncodeMetadata(md.Version, md.Config, md.StateIndex, md.Carried)
		if err != nil {
			t.Fatalf("accepted metadata cannot be written back: %v", err)
		}
		again, err := ParseMetadata(out)
		if err != nil {
			t.Fatalf("our own metadata is rejected: %v\n%s", err, out)
		}
		if !sameValue(again.Config, md.Config) {
			t.Fatalf("rewrite changed the config:\n%#v\nvs\n%#v\n%s", again.Config, md.Config, out)
		}
		if !reflect.DeepEqual(again.StateIndex, md.StateIndex) {
			t.Fatalf("rewrite changed the state index: %v vs %v", again.StateIndex, md.StateIndex)
		}
		if (again.Carried == nil) != (md.Carried == nil) {
			t.Fatalf("rewrite changed the carried data: %+v vs %+v", again.Carried, md.Carried)
		}
		if md.Carried != nil {
			a, b := *again.Carried, *md.Carried
			ka, kb := a.Kept, b.Kept
			a.Kept, b.Kept = nil, nil
			if !sameValue(ka, kb) {
				t.Fatalf("rewrite changed the kept keys: %#v vs %#v", ka, kb)
			}
			if !reflect.DeepEqual(normCarried(a), normCarried(b)) {
				t.Fatalf("rewrite changed the carried data: %+v vs %+v", a, b)
			}
		}
	})
}

// normCarried makes empty lists and maps nil: the writer leaves them out.
func normCarried(c format.Carried) format.Carried {
	if len(c.Absent) == 0 {
		c.Absent = nil
	}
	if len(c.Files) == 0 {
		c.Files = nil
	}
	if len(c.DTypes) == 0 {
		c.DTypes = nil
	}
	return c
}

// sameValue is reflect.DeepEqual for the values fromYAML produces, with
// floats compared by their bits (so -0.0 differs from 0.0) and NaN equal to
// NaN.
func sameValue(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], bl[i]) {
				return false
			}
		}
		return true
	case float64:
		bf, ok := b.(float64)
		return ok && (math.Float64bits(a) == math.Float64bits(bf) || (math.IsNaN(a) && math.IsNaN(bf)))
	}
	return reflect.DeepEqual(a, b)
}
