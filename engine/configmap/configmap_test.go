package configmap

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/runtime/pyjson"

	// hf is the left side of the test mappings; fast_llm, the right one,
	// also stores their blocks.
	_ "github.com/mapper-dev/mapper/engine/format/hf"
)

// cfgSrc exercises every kind of config rule: renames (with fan-out, over a
// wildcard, with defaults on either side, with a value map), constants on
// both sides, keep, ignore and a cycle.
const cfgSrc = `mapping cfgtest
left hf
right fast_llm

config {
  hidden_size <-> hidden_size
  num_layers <-> decoder.num_blocks
  layer_types <-> decoder cycle(num_layers) { sliding_attention = sliding, full_attention = full }
  sliding_window <-> decoder.blocks.sliding.mixer.window_size
  heads <-> decoder.blocks.*.mixer.heads
  head_dim default hidden_size / heads <-> decoder.blocks.*.mixer.head_size
  eps <-> decoder.blocks.*.norm.epsilon, head.norm.epsilon
  act <-> decoder.blocks.*.mlp.activation map { gelu_pytorch_tanh = gelu, silu = silu }
  dropout <-> decoder.blocks.*.mixer.dropout default 0.0
  right decoder.blocks.*.mixer.type = "attention"
  right head.norm.type = "rms_norm"
  left model_type = "cfgtest"
  keep use_cache, rope.extra
  ignore torch_dtype
}
`

const (
	leftDoc  = "config.json"
	rightDoc = "metadata.yaml config.base_model"
	// anyLength lets exportConfig rebuild lists of any length: these tests
	// have no input tensors to bound them by.
	anyLength = math.MaxInt
)

func cfgMapping(t *testing.T) *ir.Mapping { return loadMapping(t, "cfgtest.map", []byte(cfgSrc)) }

// loadMapping checks a .map source and fails the test on any error.
func loadMapping(t *testing.T, name string, src []byte) *ir.Mapping {
	t.Helper()
	m, diags := dsl.Load(name, src)
	if diags.HasErrors() || m == nil {
		t.Fatalf("%s does not check:\n%v", name, diags)
	}
	return m
}

func importConfig(m *ir.Mapping, left map[string]any) (*Result, error) {
	return New(m, fastllm.Side{}).Import(left, leftDoc)
}

func exportConfig(m *ir.Mapping, right map[string]any, carried *format.Carried, variant string) (*Result, error) {
	return New(m, fastllm.Side{}).Export(right, carried, rightDoc, variant, anyLength)
}

// doc parses a JSON object as a config reader would (ints int64, floats
// float64).
func doc(t *testing.T, js string) map[string]any {
	t.Helper()
	v, err := pyjson.Decode([]byte(js))
	if err != nil {
		t.Fatalf("test config %s: %v", js, err)
	}
	return v.(map[string]any)
}

func show(v any) string {
	b, err := pyjson.Encode(v, 2, true)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func assertDoc(t *testing.T, what string, got map[string]any, want string) {
	t.Helper()
	if w := doc(t, want); !reflect.DeepEqual(got, w) {
		t.Errorf("%s:\ngot  %s\nwant %s", what, show(got), show(w))
	}
}

// assertErr checks that err is a config error holding every substring.
func assertErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", subs)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Errorf("error %v (%T) is not a *Error", err, err)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not mention %q:\n%v", s, err)
		}
	}
}

const baseLeft = `{
  "hidden_size": 32, "num_layers": 4, "heads": 4, "eps": 1e-05, "act": "silu", "dropout": 0.1,
  "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
  "sliding_window": 128, "model_type": "cfgtest", "use_cache": true, "rope": {"extra": 2.0}, "torch_dtype": "bfloat16"
}`

// withLeft returns baseLeft with changes: a nil value deletes the key.
func withLeft(t *testing.T, changes map[string]any) map[string]any {
	t.Helper()
	d := doc(t, baseLeft)
	for k, v := range changes {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
	}
	return d
}

func TestImportConfig(t *testing.T) {
	m := cfgMapping(t)
	block := func(window string) string {
		return `{"mixer": {"heads": 4, "head_size": 8, "dropout": 0.1, "type": "attention"` + window + `},
		  "norm": {"epsilon": 1e-05}, "mlp": {"activation": "silu"}}`
	}
	sliding, full := block(`, "window_size": 128`), block("")
	for _, tc := range []struct {
		name    string
		left    map[string]any
		want    string   // the right config
		kept    string   // the carried keys, as JSON
		absent  []string // the carried absent keys
		notes   []string // substrings of the notes, in order
		wantErr []string
	}{{
		name: "pattern",
		left: withLeft(t, nil),
		want: `{"hidden_size": 32, "head": {"norm": {"epsilon": 1e-05, "type": "rms_norm"}},
		  "decoder": {"num_blocks": 4, "type": "pattern", "pattern": ["sliding", "full"], "blocks": {"sliding": ` + sliding + `, "full": ` + full + `}}}`,
		kept:   `{"use_cache": true, "rope.extra": 2.0}`,
		absent: []string{"head_dim"},
		notes:  []string{"config key head_dim is absent: its default 8 is used", "config key torch_dtype dropped on purpose", "config keys kept for the way back (keep rules of cfgtest; no place on the fast_llm side): rope.extra, use_cache"},
	}, {
		name: "shortest-cycle-of-three",
		left: withLeft(t, map[string]any{"num_layers": int64(6), "layer_types": []any{
			"sliding_attention", "sliding_attention", "full_attention", "sliding_attention", "sliding_attention", "full_attention"}}),
		want: `{"hidden_size": 32, "head": {"norm": {"epsilon": 1e-05, "type": "rms_norm"}},
		  "decoder": {"num_blocks": 6, "type": "pattern", "pattern": ["sliding", "sliding", "full"], "blocks": {"sliding": ` + sliding + `, "full": ` + full + `}}}`,
		kept:   `{"use_cache": true, "rope.extra": 2.0}`,
		absent: []string{"head_dim"},
		notes:  []string{"config key head_dim is absent: its default 8 is used", "torch_dtype dropped on purpose", "kept for the way back"},
	}, {
		// No shorter cycle: the whole list is the pattern.
		name: "no-repeat",
		left: withLeft(t, map[string]any{"num_layers": int64(3), "layer_types": []any{"sliding_attention", "full_attention", "full_attention"}}),
		want: `{"hidden_size": 32, "head": {"norm": {"epsilon": 1e-05, "type": "rms_norm"}},
		  "decoder": {"num_blocks": 3, "type": "pattern", "pattern": ["sliding", "full", "full"], "blocks": {"sliding": ` + sliding + `, "full": ` + full + `}}}`,
		kept:   `{"use_cache": true, "rope.extra": 2.0}`,
		absent: []string{"head_dim"},
		notes:  []string{"config key head_dim is absent: its default 8 is used", "torch_dtype dropped on purpose", "kept for the way back"},
	}, {
		// One block type collapses to a plain block; sliding_window has no
		// place in it and is carried instead of lost.
		name: "single-block",
		left: withLeft(t, map[string]any{"layer_types": []any{"full_attention", "full_attention", "full_attention", "full_attention"}}),
		want: `{"hidden_size": 32, "head": {"norm": {"epsilon": 1e-05, "type": "rms_norm"}},
		  "decoder": {"num_blocks": 4, "type": "fixed", "block": ` + full + `}}`,
		kept:   `{"use_cache": true, "rope.extra": 2.0, "sliding_window": 128}`,
		absent: []string{"head_dim"},
		notes:  []string{"config key head_dim is absent: its default 8 is used", "config key sliding_window has no place on the fast_llm side", "torch_dtype dropped on purpose", "kept for the way back"},
	}, {
		name: "single-sliding-block",
		left: withLeft(t, map[string]any{"num_layers": int64(2), "layer_types": []any{"sliding_attention", "sliding_attention"}}),
		want: `{"hidden_size": 32, "head": {"norm": {"epsilon": 1e-05, "type": "rms_norm"}},
		  "decoder": {"num_blocks": 2, "type": "fixed", "block": ` + sliding + `}}`,
		kept:   `{"use_cache": true, "rope.extra": 2.0}`,
		absent: []string{"head_dim"},
		notes:  []string{"config key head_dim is absent: its default 8 is used", "torch_dtype dropped on purpose", "kept for the way back"},
	}, {
		// A present head_dim is written as is and is not recorded absent;
		// absent keep keys are simply not carried.
		name: "head-dim-present",
		left: withLeft(t, map[string]any{"head_dim": int64(16), "use_cache": nil, "rope": nil}),
		want: `{"hidden_size": 32, "head": {"norm": {"epsilon": 1e-05, "type": "rms_norm"}},
		  "decoder": {"num_blocks": 4, "type": "pattern", "pattern": ["sliding", "full"], "blocks": {
		    "sliding": {"mixer": {"heads": 4, "head_size": 16, "dropout": 0.1, "type": "attention", "window_size": 128}, "norm": {"epsilon": 1e-05}, "mlp": {"activation": "silu"}},
		    "full": {"mixer": {"heads": 4, "head_size": 16, "dropout": 0.1, "type": "attention"}, "norm": {"epsilon": 1e-05}, "mlp": {"activation": "silu"}}}}}`,
		notes: []string{"torch_dtype dropped on purpose"},
	}, {
		name:    "layer-types-length",
		left:    withLeft(t, map[string]any{"layer_types": []any{"sliding_attention", "full_attention", "sliding_attention"}}),
		wantErr: []string{"layer_types: has 3 entries but num_layers is 4: they must agree", "cfgtest.map:8"},
	}, {
		name:    "layer-types-unknown",
		left:    withLeft(t, map[string]any{"layer_types": []any{"sliding_attention", "linear_attention", "sliding_attention", "full_attention"}}),
		wantErr: []string{`layer_types[1]: value "linear_attention" has no counterpart (known: "sliding_attention", "full_attention")`},
	}, {
		name:    "value-map-unknown",
		left:    withLeft(t, map[string]any{"act": "relu"}),
		wantErr: []string{`config.json: act: value "relu" has no counterpart (known: "gelu_pytorch_tanh", "silu")`, "cfgtest.map:13"},
	}, {
		name:    "left-const-mismatch",
		left:    withLeft(t, map[string]any{"model_type": "llama"}),
		wantErr: []string{`config.json: model_type: is "llama"; the mapping requires "cfgtest"`, "cfgtest.map:17"},
	}, {
		name:    "left-const-missing",
		left:    withLeft(t, map[string]any{"model_type": nil}),
		wantErr: []string{`model_type: missing; the mapping requires "cfgtest"`},
	}, {
		// Every unclaimed key is reported, nested ones by their full path.
		name:    "unclaimed",
		left:    withLeft(t, map[string]any{"vocab": int64(10), "rope": map[string]any{"extra": 2.0, "theta": 1e4}}),
		wantErr: []string{"config.json: vocab: not claimed by any config rule of cfgtest", "config.json: rope.theta: not claimed"},
	}, {
		name:    "default-divides",
		left:    withLeft(t, map[string]any{"heads": int64(5)}),
		wantErr: []string{"default of head_dim", "does not divide exactly"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := importConfig(m, tc.left)
			if tc.wantErr != nil {
				assertErr(t, err, tc.wantErr...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertDoc(t, "right config", res.Out, tc.want)
			kept := map[string]any{}
			if res.Carried.Kept != nil {
				kept = res.Carried.Kept
			}
			if tc.kept == "" {
				tc.kept = "{}"
			}
			assertDoc(t, "kept", kept, tc.kept)
			if !slices.Equal(res.Carried.Absent, tc.absent) {
				t.Errorf("absent = %q, want %q", res.Carried.Absent, tc.absent)
			}
			if len(res.Notes) != len(tc.notes) {
				t.Errorf("notes = %q, want %d mentioning %q", res.Notes, len(tc.notes), tc.notes)
			} else {
				for i, n := range tc.notes {
					if !strings.Contains(res.Notes[i], n) {
						t.Errorf("note %d = %q, want it to mention %q", i, res.Notes[i], n)
					}
				}
			}
			// The way back gives the left config again, less what ignore dropped.
			back, err := exportConfig(m, res.Out, res.Carried, "")
			if err != nil {
				t.Fatalf("export of the import: %v", err)
			}
			want := withoutKey(tc.left, "torch_dtype")
			if !reflect.DeepEqual(back.Out, want) {
				t.Errorf("round trip:\ngot  %s\nwant %s", show(back.Out), show(want))
			}
		})
	}
}

func withoutKey(d map[string]any, k string) map[string]any {
	out := ir.DeepCopy(d).(map[string]any)
	delete(out, k)
	return out
}

const baseRight = `{
  "hidden_size": 32, "head": {"norm": {"epsilon": 1e-05, "type": "rms_norm"}},
  "decoder": {"num_blocks": 4, "type": "pattern", "pattern": ["sliding", "full"], "blocks": {
    "sliding": {"mixer": {"heads": 4, "head_size": 8, "type": "attention", "window_size": 128}, "norm": {"epsilon": 1e-05}, "mlp": {"activation": "gelu"}},
    "full": {"mixer": {"heads": 4, "head_size": 8, "type": "attention"}, "norm": {"epsilon": 1e-05}, "mlp": {"activation": "gelu"}}}}
}`

// withRight returns baseRight with changes at dotted paths: nil deletes.
func withRight(t *testing.T, changes map[string]any) map[string]any {
	t.Helper()
	d := doc(t, baseRight)
	for k, v := range changes {
		if v == nil {
			deletePath(d, split(k))
		} else {
			setPath(d, split(k), v)
		}
	}
	return d
}

func TestExportConfig(t *testing.T) {
	m := cfgMapping(t)
	// The left config exportConfig rebuilds from baseRight with nothing
	// carried: head_dim is written (nothing says it was absent) and dropout
	// comes from its right default.
	const full = `{"hidden_size": 32, "num_layers": 4, "heads": 4, "head_dim": 8, "eps": 1e-05, "act": "gelu_pytorch_tanh",
	  "dropout": 0.0, "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
	  "sliding_window": 128, "model_type": "cfgtest"}`
	for _, tc := range []struct {
		name    string
		right   map[string]any
		carried *format.Carried
		want    string
		wantErr []string
	}{{
		name:  "pattern",
		right: withRight(t, nil),
		want:  full,
	}, {
		// A key absent on the way in stays absent while its value is still
		// the default; kept keys come back.
		name:    "absent-stays-absent",
		right:   withRight(t, nil),
		carried: &format.Carried{Mapping: "cfgtest", From: "hf", Absent: []string{"head_dim"}, Kept: map[string]any{"use_cache": false}},
		want: `{"hidden_size": 32, "num_layers": 4, "heads": 4, "eps": 1e-05, "act": "gelu_pytorch_tanh",
		  "dropout": 0.0, "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
		  "sliding_window": 128, "model_type": "cfgtest", "use_cache": false}`,
	}, {
		// ... but not once the value differs from the default.
		name: "absent-but-changed",
		right: withRight(t, map[string]any{
			"decoder.blocks.sliding.mixer.head_size": int64(16), "decoder.blocks.full.mixer.head_size": int64(16)}),
		carried: &format.Carried{Mapping: "cfgtest", From: "hf", Absent: []string{"head_dim"}},
		want:    strings.Replace(full, `"head_dim": 8`, `"head_dim": 16`, 1),
	}, {
		name: "pattern-expands",
		right: withRight(t, map[string]any{"decoder.num_blocks": int64(5),
			"decoder.pattern": []any{"full", "sliding", "sliding"}}),
		want: strings.NewReplacer(`"num_layers": 4`, `"num_layers": 5`,
			`["sliding_attention", "full_attention", "sliding_attention", "full_attention"]`,
			`["full_attention", "sliding_attention", "sliding_attention", "full_attention", "sliding_attention"]`).Replace(full),
	}, {
		// A single block with a window is the sliding one...
		name: "single-block-sliding",
		right: doc(t, `{"hidden_size": 32, "head": {"norm": {"epsilon": 1e-05, "type": "rms_norm"}},
		  "decoder": {"num_blocks": 2, "block": {"mixer": {"heads": 4, "head_size": 8, "type": "attention", "window_size": 64},
		    "norm": {"epsilon": 1e-05}, "mlp": {"activation": "silu"}}}}`),
		want: `{"hidden_size": 32, "num_layers": 2, "heads": 4, "head_dim": 8, "eps": 1e-05, "act": "silu", "dropout": 0.0,
		  "layer_types": ["sliding_attention", "sliding_attention"], "sliding_window": 64, "model_type": "cfgtest"}`,
	}, {
		// ... and one without is the full one.
		name: "single-block-full",
		right: doc(t, `{"hidden_size": 32, "head": {"norm": {"epsilon": 1e-05, "type": "rms_norm"}},
		  "decoder": {"num_blocks": 3, "block": {"mixer": {"heads": 4, "head_size": 8, "type": "attention"},
		    "norm": {"epsilon": 1e-05}, "mlp": {"activation": "silu"}}}}`),
		want: `{"hidden_size": 32, "num_layers": 3, "heads": 4, "head_dim": 8, "eps": 1e-05, "act": "silu", "dropout": 0.0,
		  "layer_types": ["full_attention", "full_attention", "full_attention"], "model_type": "cfgtest"}`,
	}, {
		// Fan-out: the two paths of one rename must agree; the error names both.
		name:    "fan-out-disagrees",
		right:   withRight(t, map[string]any{"head.norm.epsilon": 1e-06}),
		wantErr: []string{"head.norm.epsilon: is 1e-06 but decoder.blocks.full.norm.epsilon is 1e-05: they must agree", "cfgtest.map:12"},
	}, {
		// A wildcard over the blocks is a fan-out too.
		name:    "wildcard-disagrees",
		right:   withRight(t, map[string]any{"decoder.blocks.sliding.mixer.heads": int64(8)}),
		wantErr: []string{"decoder.blocks.full.mixer.heads: is 4 but decoder.blocks.sliding.mixer.heads is 8: they must agree"},
	}, {
		name:    "right-const-mismatch",
		right:   withRight(t, map[string]any{"decoder.blocks.full.mixer.type": "mamba"}),
		wantErr: []string{`metadata.yaml config.base_model: decoder.blocks.full.mixer.type: is "mamba"; the mapping requires "attention"`, "cfgtest.map:15"},
	}, {
		name:    "value-map-unknown",
		right:   withRight(t, map[string]any{"decoder.blocks.sliding.mlp.activation": "relu", "decoder.blocks.full.mlp.activation": "relu"}),
		wantErr: []string{`value "relu" has no counterpart (known: "gelu", "silu")`},
	}, {
		name:    "unclaimed",
		right:   withRight(t, map[string]any{"decoder.blocks.full.mixer.rotary.theta": 1e4, "peft": true}),
		wantErr: []string{"decoder.blocks.full.mixer.rotary.theta: not claimed by any config rule of cfgtest", "peft: not claimed"},
	}, {
		name:    "pattern-names-missing-block",
		right:   withRight(t, map[string]any{"decoder.pattern": []any{"sliding", "full", "global"}}),
		wantErr: []string{"decoder.blocks.global: missing; the pattern names it"},
	}, {
		name:    "block-unknown-to-the-cycle",
		right:   withRight(t, map[string]any{"decoder.pattern": []any{"sliding", "full"}, "decoder.blocks.full": nil, "decoder.blocks.global": map[string]any{}}),
		wantErr: []string{"decoder.blocks.full: missing; the pattern names it"},
	}, {
		name:    "no-block",
		right:   withRight(t, map[string]any{"decoder.pattern": nil, "decoder.blocks": nil, "decoder.type": nil}),
		wantErr: []string{"decoder: has neither a pattern nor a block"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := exportConfig(m, tc.right, tc.carried, "")
			if tc.wantErr != nil {
				assertErr(t, err, tc.wantErr...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertDoc(t, "left config", res.Out, tc.want)
		})
	}
}

// TestExportConfigPatternNamesUnknownBlock: a pattern may only name blocks
// the cycle table knows.
func TestExportConfigPatternNamesUnknownBlock(t *testing.T) {
	m := cfgMapping(t)
	right := withRight(t, map[string]any{"decoder.pattern": []any{"sliding", "global"}})
	setPath(right, split("decoder.blocks.global"), ir.DeepCopy(right["decoder"].(map[string]any)["blocks"].(map[string]any)["full"]))
	delete(right["decoder"].(map[string]any)["blocks"].(map[string]any), "full")
	_, err := exportConfig(m, right, nil, "")
	assertErr(t, err, `decoder: block "global" has no counterpart (known: "sliding", "full")`)
}

// TestExportConfigCycleBound: the length of a rebuilt per-layer list is a
// number from the input's config; it is refused when negative or longer than
// the input's tensors could hold layers for, before the list is allocated.
func TestExportConfigCycleBound(t *testing.T) {
	m := cfgMapping(t)
	for _, tc := range []struct {
		blocks int64
		want   string
	}{
		{1000000000, "config.base_model: layer_types: the per-layer list would have num_layers = 1000000000 entries, more than the 40 tensors of the input hold layers for"},
		{-3, "layer_types: the per-layer list would have num_layers = -3 entries; a length must not be negative"},
	} {
		right := withRight(t, map[string]any{"decoder.num_blocks": tc.blocks})
		_, err := New(m, fastllm.Side{}).Export(right, nil, rightDoc, "", 40)
		assertErr(t, err, tc.want)
	}
	right := withRight(t, map[string]any{"decoder.num_blocks": int64(40)})
	if _, err := New(m, fastllm.Side{}).Export(right, nil, rightDoc, "", 40); err != nil {
		t.Errorf("40 layers from 40 tensors: %v", err)
	}
}

// TestConfigVariants: the variant is chosen by the config on import,
// recorded for the way back, and can be forced on export.
func TestConfigVariants(t *testing.T) {
	m := loadMapping(t, "v.map", []byte(`mapping v
left hf
right fast_llm
config {
  q <-> q
}
variant packed when q == "packed" {
  config {
    left kind = "packed"
  }
}
variant plain {
  config {
    left kind = "plain"
  }
}
`))
	res, err := importConfig(m, doc(t, `{"q": "packed", "kind": "packed"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Variant != "packed" || res.Carried.Variant != "packed" {
		t.Errorf("variant %q (carried %q), want packed", res.Variant, res.Carried.Variant)
	}
	res, err = importConfig(m, doc(t, `{"q": "other", "kind": "plain"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Variant != "plain" {
		t.Errorf("variant %q, want the default plain", res.Variant)
	}
	// On import the const of the chosen variant is checked.
	_, err = importConfig(m, doc(t, `{"q": "other", "kind": "packed"}`))
	assertErr(t, err, `kind: is "packed"; the mapping requires "plain"`)

	back, err := exportConfig(m, doc(t, `{"q": "x"}`), &format.Carried{Variant: "packed"}, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "recorded variant", back.Out, `{"q": "x", "kind": "packed"}`)
	back, err = exportConfig(m, doc(t, `{"q": "x"}`), &format.Carried{Variant: "packed"}, "plain")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "forced variant", back.Out, `{"q": "x", "kind": "plain"}`)
	_, err = exportConfig(m, doc(t, `{"q": "x"}`), nil, "dense")
	if err == nil || !strings.Contains(err.Error(), `no variant "dense" (known: packed, plain)`) {
		t.Errorf("unknown variant: %v", err)
	}
}

func TestShortestCycle(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a", "a"},
		{"a a a a", "a"},
		{"a b a b", "a b"},
		{"a b a b a", "a b"}, // a cut-off repetition still repeats
		{"a a b a a b", "a a b"},
		{"a b b", "a b b"},
		{"a b a a", "a b a"}, // expands back to a b a a
		{"a b c d", "a b c d"},
	} {
		if got := strings.Join(shortestCycle(strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("shortestCycle(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestCycleVerbatim: a verbatim cycle writes the list as written (one
// entry: a plain block), a plain one its shortest repeating pattern; the
// export expands either back to the length.
func TestCycleVerbatim(t *testing.T) {
	const src = `mapping cy
left hf
right fast_llm

config {
  n <-> decoder.num_blocks
  kinds <-> decoder cycle(n) %s{ t = attn, m = mamba }
  heads <-> decoder.blocks.attn.mixer.heads
}
`
	for _, tc := range []struct {
		kinds, verbatim, shortest string
	}{
		{`["t", "m", "t", "m"]`,
			`{"type": "pattern", "pattern": ["attn", "mamba", "attn", "mamba"], "blocks": {"attn": {"mixer": {"heads": 2}}, "mamba": {}}, "num_blocks": 4}`,
			`{"type": "pattern", "pattern": ["attn", "mamba"], "blocks": {"attn": {"mixer": {"heads": 2}}, "mamba": {}}, "num_blocks": 4}`},
		{`["t", "t"]`,
			`{"type": "pattern", "pattern": ["attn", "attn"], "blocks": {"attn": {"mixer": {"heads": 2}}}, "num_blocks": 2}`,
			`{"type": "fixed", "block": {"mixer": {"heads": 2}}, "num_blocks": 2}`},
		{`["t"]`,
			`{"type": "fixed", "block": {"mixer": {"heads": 2}}, "num_blocks": 1}`,
			`{"type": "fixed", "block": {"mixer": {"heads": 2}}, "num_blocks": 1}`},
	} {
		for _, verbatim := range []bool{true, false} {
			kw, want := "", tc.shortest
			if verbatim {
				kw, want = "verbatim ", tc.verbatim
			}
			m := loadMapping(t, "cy.map", []byte(fmt.Sprintf(src, kw)))
			left := fmt.Sprintf(`{"n": %d, "kinds": %s, "heads": 2}`, strings.Count(tc.kinds, ",")+1, tc.kinds)
			imp, err := importConfig(m, doc(t, left))
			if err != nil {
				t.Fatal(err)
			}
			assertDoc(t, kw+tc.kinds+" import", imp.Out, `{"decoder": `+want+`}`)
			exp, err := exportConfig(m, imp.Out, imp.Carried, "")
			if err != nil {
				t.Fatal(err)
			}
			assertDoc(t, kw+tc.kinds+" export", exp.Out, left)
		}
	}
}

// TestLeftFor: a key holding its rule's for value reads as the default,
// which the import writes, and the export writes the value again while the
// right side still holds the default; without a record, or where the right
// value differs, the export writes the number.
func TestLeftFor(t *testing.T) {
	m := loadMapping(t, "for.map", []byte(`mapping stands_for
left hf
right fast_llm

let rank = ssm.dt_rank

config {
  hidden_size <-> hidden_size
  ssm.dt_rank default ceil_div(hidden_size, 16) for "auto" <-> mixer.dt_rank
}
`))
	for _, tc := range []struct {
		name, left, right string
		stood             bool
	}{
		{"auto", `{"hidden_size": 96, "ssm": {"dt_rank": "auto"}}`, `{"hidden_size": 96, "mixer": {"dt_rank": 6}}`, true},
		{"stated", `{"hidden_size": 96, "ssm": {"dt_rank": 6}}`, `{"hidden_size": 96, "mixer": {"dt_rank": 6}}`, false},
		{"absent", `{"hidden_size": 96}`, `{"hidden_size": 96, "mixer": {"dt_rank": 6}}`, false},
		{"other", `{"hidden_size": 96, "ssm": {"dt_rank": 8}}`, `{"hidden_size": 96, "mixer": {"dt_rank": 8}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imp, err := importConfig(m, doc(t, tc.left))
			if err != nil {
				t.Fatal(err)
			}
			assertDoc(t, "import", imp.Out, tc.right)
			if got := slices.Contains(imp.Carried.ForDefault, "ssm.dt_rank"); got != tc.stood {
				t.Errorf("ForDefault %v records ssm.dt_rank: %v", imp.Carried.ForDefault, got)
			}
			if v, _ := imp.Env.Lookup([]string{"rank"}); v == "auto" {
				t.Errorf("let rank is %v, not the default", v)
			}
			exp, err := exportConfig(m, imp.Out, imp.Carried, "")
			if err != nil {
				t.Fatal(err)
			}
			assertDoc(t, "export", exp.Out, tc.left)
			if v, _ := exp.Env.Lookup([]string{"rank"}); v == "auto" {
				t.Errorf("export: let rank is %v, not the default", v)
			}
		})
	}
	// No record: the number, as Fast-LLM's exporter writes it.
	exp, err := exportConfig(m, doc(t, `{"hidden_size": 96, "mixer": {"dt_rank": 6}}`), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "export without a record", exp.Out, `{"hidden_size": 96, "ssm": {"dt_rank": 6}}`)
	// The record, but the right value is no longer the default: the number.
	imp, err := importConfig(m, doc(t, `{"hidden_size": 96, "ssm": {"dt_rank": "auto"}}`))
	if err != nil {
		t.Fatal(err)
	}
	exp, err = exportConfig(m, doc(t, `{"hidden_size": 96, "mixer": {"dt_rank": 7}}`), imp.Carried, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "export of a changed value", exp.Out, `{"hidden_size": 96, "ssm": {"dt_rank": 7}}`)
}

// TestEnvLetDefs: the Env a translation returns knows how each let is
// defined (ir.LetEnv), on import and on export, so that an error about a
// value can trace it back to the config keys it came from.
func TestEnvLetDefs(t *testing.T) {
	m := loadMapping(t, "lets.map", []byte(`mapping lets
left hf
right fast_llm
let w = a * b
config {
  a <-> a
  b <-> b
}
`))
	w := &ir.Ref{Path: []string{"w"}}
	res, err := importConfig(m, doc(t, `{"a": 3, "b": 4}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ir.Bindings(w, res.Env), "w = a * b = 12"; got != want {
		t.Errorf("import: Bindings(w) = %q, want %q", got, want)
	}
	res, err = exportConfig(m, doc(t, `{"a": 5, "b": 4}`), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ir.Bindings(w, res.Env), "w = a * b = 20"; got != want {
		t.Errorf("export: Bindings(w) = %q, want %q", got, want)
	}
	if _, ok := res.Env.Let("a"); ok {
		t.Errorf("Let(a): a is a config key, not a let")
	}
}

// TestOptionalLeftConstant: `left P default V` accepts the key at V or
// absent; an absent key stays absent on the way back, while a right config
// without a record of it (a checkpoint mapper did not write) gets V.
func TestOptionalLeftConstant(t *testing.T) {
	m := loadMapping(t, "opt.map", []byte(`mapping opt
left hf
right fast_llm

config {
  hidden_size <-> hidden_size
  left auto_map default {"AutoModel": "modeling_x.XModel"}
  left model_type = "x"
}
`))
	for _, tc := range []struct{ name, left string }{
		{"present", `{"hidden_size": 8, "model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}}`},
		{"absent", `{"hidden_size": 8, "model_type": "x"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imp, err := importConfig(m, doc(t, tc.left))
			if err != nil {
				t.Fatal(err)
			}
			assertDoc(t, "import", imp.Out, `{"hidden_size": 8}`)
			if got := slices.Contains(imp.Carried.Absent, "auto_map"); got != (tc.name == "absent") {
				t.Errorf("absent %v records auto_map: %v", imp.Carried.Absent, got)
			}
			if v, ok := imp.Env.Lookup([]string{"auto_map", "AutoModel"}); !ok || v != "modeling_x.XModel" {
				t.Errorf("the completed config reads auto_map.AutoModel = %v, %v", v, ok)
			}
			exp, err := exportConfig(m, imp.Out, imp.Carried, "")
			if err != nil {
				t.Fatal(err)
			}
			assertDoc(t, "export", exp.Out, tc.left)
		})
	}
	// No record: the constant is written.
	exp, err := exportConfig(m, doc(t, `{"hidden_size": 8}`), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "export without a record", exp.Out, `{"hidden_size": 8, "model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}}`)
	// Another value is refused like any left constant's.
	_, err = importConfig(m, doc(t, `{"hidden_size": 8, "model_type": "x", "auto_map": {"AutoModel": "other"}}`))
	assertErr(t, err, "auto_map", `is {"AutoModel": "other"}; the mapping requires {"AutoModel": "modeling_x.XModel"}`)
}

// TestRefuse: an active refuse rule stops the import with its message
// alone; on export it stops a right config that would make such a left one.
func TestRefuse(t *testing.T) {
	m := loadMapping(t, "refusing.map", []byte(`mapping refusing
left hf
right fast_llm

config {
  hidden_size <-> hidden_size
  when rope_scaling != null {
    refuse "rope_scaling has no Fast-LLM counterpart in this mapping"
  } else {
    keep rope_scaling
  }
  norm_topk <-> decoder.norm_topk
  when not norm_topk {
    refuse "only renormalized top-k routing"
  }
  left partial default 1.0
  when partial != 1.0 {
    refuse "partial rotary"
  }
}
`))
	// partial absent: its default holds, on the way in and on the way back.
	imp, err := importConfig(m, doc(t, `{"hidden_size": 8, "norm_topk": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exportConfig(m, imp.Out, imp.Carried, ""); err != nil {
		t.Errorf("the export of an accepted config is refused: %v", err)
	}
	if _, err := importConfig(m, doc(t, `{"hidden_size": 8, "rope_scaling": null, "norm_topk": true}`)); err != nil {
		t.Fatal(err)
	}
	_, err = importConfig(m, doc(t, `{"hidden_size": 8, "rope_scaling": {"type": "su", "long_factor": [1.0]}, "norm_topk": true}`))
	assertErr(t, err, "refusing.map:8:5: error: config.json: rope_scaling has no Fast-LLM counterpart in this mapping")
	if strings.Contains(err.Error(), "not claimed") {
		t.Errorf("a refusal comes alone, got:\n%v", err)
	}
	_, err = importConfig(m, doc(t, `{"hidden_size": 8, "norm_topk": false, "rope_scaling": {"type": "su"}}`))
	assertErr(t, err, "only renormalized top-k routing", "rope_scaling has no Fast-LLM counterpart")
	_, err = exportConfig(m, doc(t, `{"hidden_size": 8, "decoder": {"norm_topk": false}}`), nil, "")
	assertErr(t, err, "refusing.map:14:5: error: metadata.yaml config.base_model: the left config this makes would be refused: only renormalized top-k routing")
}

// TestErrorDiagnostic: a config error marks the rule that found it and has
// the document and key as its subject; a default that cannot be evaluated
// marks its expression.
func TestErrorDiagnostic(t *testing.T) {
	m := cfgMapping(t)
	_, err := importConfig(m, withLeft(t, map[string]any{"act": "relu"}))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *Error", err, err)
	}
	d := ce.Diagnostic()
	const rule = "act <-> decoder.blocks.*.mlp.activation map { gelu_pytorch_tanh = gelu, silu = silu }"
	if d.Pos.File != "cfgtest.map" || d.Pos.Line != 13 || d.Pos.Column != 3 || cfgSrc[d.Pos.Offset:d.End.Offset] != rule {
		t.Errorf("marks %s:%d:%d %q, want cfgtest.map:13:3 %q", d.Pos.File, d.Pos.Line, d.Pos.Column, cfgSrc[d.Pos.Offset:d.End.Offset], rule)
	}
	if d.Subject != (diag.Subject{File: leftDoc, Key: "act"}) || d.Message != `value "relu" has no counterpart (known: "gelu_pytorch_tanh", "silu")` {
		t.Errorf("subject %+v, message %q", d.Subject, d.Message)
	}
	if got, want := err.Error(), `cfgtest.map:13:3: error: config.json: act: value "relu"`; !strings.HasPrefix(got, want) {
		t.Errorf("Error() = %q, want it to start %q", got, want)
	}

	_, err = importConfig(m, withLeft(t, map[string]any{"heads": int64(5)}))
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *Error", err, err)
	}
	d = ce.Diagnostic()
	if d.Pos.Line != 11 || d.Pos.Column != 20 || !strings.HasPrefix(cfgSrc[d.Pos.Offset:], "hidden_size / heads <->") ||
		d.Subject != (diag.Subject{File: leftDoc}) || d.Message != "default of head_dim: hidden_size / heads = 32 / 5 does not divide exactly" {
		t.Errorf("default: %+v at %q", d, cfgSrc[d.Pos.Offset:])
	}
}
