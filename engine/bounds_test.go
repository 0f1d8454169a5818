package engine

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// planErrors plans dir and returns the plan's errors, one string each, with
// dir written as $TMP.
func planErrors(t *testing.T, m string, dir string) []string {
	t.Helper()
	p, err := testPlan(loadMapFile(t, m), dir, PlanOptions{Workers: 1})
	if err == nil {
		p.Close()
		t.Fatal("planned a hostile input")
	}
	errs := []error{err}
	if list, ok := err.(interface{ Unwrap() []error }); ok {
		errs = list.Unwrap()
	}
	var out []string
	for _, e := range errs {
		out = append(out, strings.ReplaceAll(e.Error(), dir, "$TMP"))
	}
	return out
}

func assertErrors(t *testing.T, got, want []string) {
	t.Helper()
	for i, w := range want {
		if i >= len(got) || !strings.Contains(got[i], w) {
			t.Errorf("error %d does not contain %q", i, w)
		}
	}
	if t.Failed() || len(got) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

// TestPlanHostileConfig: numbers in config.json that no model has are
// refused by name, with the values they came to, before anything is sized
// from them: no wrapped products, no dimensions of 0 or below, and no loop
// that runs past what the input holds.
func TestPlanHostileConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want []string // one substring per error, in order
	}{{
		// Signs that cancel: -4 heads of -8 make the 32 rows q_proj has, and
		// -8 also fits every other shape, so only the factors tell.
		name: "negative-heads-and-head-dim",
		cfg:  map[string]any{"num_attention_heads": int64(-4), "head_dim": int64(-8)},
		want: []string{
			"testdata/small.map:43:31: error: shape of model.layers.0.self_attn.q_proj.weight: dimension heads * hd has the factor heads = -4; a dimension and its factors must be positive (heads = num_attention_heads = -4, hd = head_dim = -8)",
			"shape of model.layers.1.self_attn.q_proj.weight",
			"testdata/small.map:44:32: error: shape of model.layers.0.self_attn.k_proj.weight: dimension hd is -8; a dimension must be positive (hd = head_dim = -8)",
			"shape of model.layers.1.self_attn.k_proj.weight",
			"testdata/small.map:46:32: error: shape of model.layers.0.self_attn.k_proj.bias",
			"shape of model.layers.1.self_attn.k_proj.bias",
			"testdata/small.map:49:39: error: shape of model.layers.0.self_attn.o_proj.weight: dimension heads * hd has the factor heads = -4",
			"shape of model.layers.1.self_attn.o_proj.weight",
			"testdata/small.map:50:27: error: shape of model.layers.0.self_attn.sinks: dimension heads is -4",
			"shape of model.layers.1.self_attn.sinks",
		},
	}, {
		// 4 * (-2^63 + 16) wraps to 64 in int64.
		name: "head-dim-that-wraps",
		cfg:  map[string]any{"head_dim": int64(-9223372036854775792)},
		want: []string{
			"testdata/small.map:43:39: error: shape of model.layers.0.self_attn.q_proj.weight: dimension heads * hd has the factor hd = -9223372036854775792",
			"model.layers.1.self_attn.q_proj.weight",
			"testdata/small.map:44:32: error: shape of model.layers.0.self_attn.k_proj.weight: dimension hd is -9223372036854775792",
			"model.layers.1.self_attn.k_proj.weight",
			"model.layers.0.self_attn.k_proj.bias",
			"model.layers.1.self_attn.k_proj.bias",
			"model.layers.0.self_attn.o_proj.weight",
			"model.layers.1.self_attn.o_proj.weight",
		},
	}, {
		name: "product-that-overflows",
		cfg:  map[string]any{"head_dim": int64(1) << 62},
		want: []string{
			"testdata/small.map:43:31: error: shape of model.layers.0.self_attn.q_proj.weight: heads * hd = 4 * 4611686018427387904 overflows a 64-bit integer",
			"model.layers.1.self_attn.q_proj.weight",
			"model.layers.0.self_attn.k_proj.weight: has shape [8 32], the rule declares [4611686018427387904 32]",
			"model.layers.1.self_attn.k_proj.weight",
			"model.layers.0.self_attn.k_proj.bias",
			"model.layers.1.self_attn.k_proj.bias",
			"model.layers.0.self_attn.o_proj.weight",
			"model.layers.1.self_attn.o_proj.weight",
		},
	}, {
		name: "zero-experts",
		cfg:  map[string]any{"num_local_experts": int64(0)},
		want: []string{
			"testdata/small.map:51:25: error: shape of model.layers.0.mlp.router.weight: dimension experts is 0; a dimension must be positive (experts = num_local_experts = 0)",
			"model.layers.1.mlp.router.weight",
			// A bad range stops its rule at the first layer; it is marked
			// at the op that has it.
			"testdata/small.map:53:120: error: the range e < 0 is empty",
			"testdata/small.map:54:75: error: the range e < 0 is empty",
		},
	}, {
		// The cap: more layers than the input has tensors is refused before
		// a single layer is planned (without it, this plans 10^9 layers).
		name: "billion-layers",
		cfg:  map[string]any{"num_hidden_layers": int64(1000000000)},
		want: []string{
			"testdata/small.map:41:8: error: each l < layers: layers = num_hidden_layers = 1000000000, more than the 39 tensors of the input, and each binding reads tensors of its own",
		},
	}, {
		name: "billion-experts",
		cfg:  map[string]any{"num_local_experts": 1e9},
		want: []string{
			"model.layers.0.mlp.router.weight: has shape [3 32], the rule declares [1000000000 32]",
			"model.layers.1.mlp.router.weight",
			"testdata/small.map:53:120: error: the range e < 1000000000 is larger than the 39 tensors of the input, and each value reads a tensor of its own",
			"testdata/small.map:54:75: error: the range e < 1000000000 is larger than the 39 tensors of the input",
		},
	}, {
		name: "negative-layers",
		cfg:  map[string]any{"num_hidden_layers": int64(-2)},
		want: []string{"testdata/small.map:41:8: error: each l < layers: layers = num_hidden_layers = -2; a bound must not be negative"},
	}, {
		name: "huge-float-layers",
		cfg:  map[string]any{"num_hidden_layers": 1e300},
		want: []string{"testdata/small.map:41:12: error: each l < layers: layers is 1e+300, too large to be an exact integer (beyond 2^53)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig()
			es := smallTensors(cfg) // the real checkpoint: the config lies about it
			for k, v := range tc.cfg {
				cfg[k] = v
			}
			writeHF(t, dir, cfg, es)
			assertErrors(t, planErrors(t, "testdata/small.map", dir), tc.want)
		})
	}
}

// TestPlanLoopPastInput: a config with more layers than the checkpoint
// stops at the first layer the input holds nothing for, once for the whole
// each-block, naming that layer's first tensor and the bound.
func TestPlanLoopPastInput(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	es := smallTensors(cfg)
	cfg["num_hidden_layers"] = int64(5)
	writeHF(t, dir, cfg, es)
	assertErrors(t, planErrors(t, "testdata/small.map", dir), []string{
		"testdata/small.map:42:5: error: tensor model.layers.2.input_layernorm.weight: missing from the input hf checkpoint $TMP, which holds no tensor at all for l = 2: " +
			"each l < layers (testdata/small.map:41:8) with layers = num_hidden_layers = 5 runs past the checkpoint, so the rule stops there",
	})

	// A layer that is only partly there is not past the input: each of its
	// missing tensors is reported, and the later layers are still planned.
	dir = t.TempDir()
	cfg = smallConfig()
	cfg["num_hidden_layers"] = int64(3)
	es = smallTensors(cfg)
	var kept []safetensors.Entry
	for _, e := range es {
		if !strings.HasPrefix(e.Name, "model.layers.1.") || strings.HasSuffix(e.Name, "input_layernorm.weight") {
			kept = append(kept, e)
		}
	}
	writeHF(t, dir, cfg, kept)
	got := planErrors(t, "testdata/small.map", dir)
	if len(got) < 2 || !strings.Contains(got[0], "testdata/small.map:43:5: error: tensor model.layers.1.self_attn.q_proj.weight: missing from the input hf checkpoint $TMP") {
		t.Errorf("errors:\n%s", strings.Join(got, "\n"))
	}
	for _, e := range got {
		if strings.Contains(e, "runs past") || strings.Contains(e, "model.layers.2.") {
			t.Errorf("layer 1 is partly there, layer 2 fully: %s", e)
		}
	}
}

// TestPlanHostileExport: the same bounds hold on the way back, counted in
// the Fast-LLM input's tensors.
func TestPlanHostileExport(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	tmp := t.TempDir()
	hf, fast := filepath.Join(tmp, "hf"), filepath.Join(tmp, "fast")
	writeSmallHF(t, hf, smallConfig())
	convert(t, m, hf, fast, PlanOptions{Workers: 1})
	meta := filepath.Join(fast, "metadata.yaml")
	src, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, to string
		want     []string
	}{
		{"num_blocks: 2", "num_blocks: 1000000000", []string{
			"testdata/small.map:41:8: error: each l < layers: layers = num_hidden_layers = 1000000000, more than the 21 tensors of the input"}},
		{"num_blocks: 2", "num_blocks: 4", []string{
			"tensor decoder.2.norm_1.weight: missing from the input fast_llm checkpoint $TMP, which holds no tensor at all for l = 2: " +
				"each l < layers (testdata/small.map:41:8) with layers = num_hidden_layers = 4 runs past the checkpoint"}},
		// On export the stacked tensor is the source: the range is checked
		// against its axis 0 before a name is made per expert.
		{"experts: 3", "experts: 1000000000", []string{
			"tensor decoder.0.mlp.router.weight: does not match what the rule's left side declares: has shape [3 32], the rule declares [1000000000 32]",
			"tensor decoder.1.mlp.router.weight",
			"tensor decoder.0.mlp.layer_1.weight: does not match what the rule's left side declares: has shape [96 32], the rule declares [32000000000 32]",
			"tensor decoder.1.mlp.layer_1.weight",
			"tensor decoder.0.mlp.layer_2.weight: does not match what the rule's left side declares: has shape [48 32], the rule declares [16000000000 32]",
			"tensor decoder.1.mlp.layer_2.weight",
		}},
	} {
		t.Run(tc.to, func(t *testing.T) {
			if !strings.Contains(string(src), tc.from) {
				t.Fatalf("metadata.yaml has no %q:\n%s", tc.from, src)
			}
			if err := os.WriteFile(meta, []byte(strings.Replace(string(src), tc.from, tc.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			assertErrors(t, planErrors(t, "testdata/small.map", fast), tc.want)
		})
	}
}

// TestPlanZeroDimSource: an empty tensor may be copied, but not sent
// through ops, where its other dimensions could be anything at no cost.
func TestPlanZeroDimSource(t *testing.T) {
	m := loadMapping(t, "z.map", []byte(`mapping z
left hf
right fast_llm
config {
  keep n
}
tensors {
  a.w | transpose(0, 1) <-> b.w
  c.w <-> d.w
}
`))
	dir := t.TempDir()
	writeHF(t, dir, map[string]any{"n": int64(1)}, []safetensors.Entry{
		{Name: "a.w", DType: tensor.BF16, Shape: tensor.Shape{math.MaxInt64 / 2, 0}},
		{Name: "c.w", DType: tensor.BF16, Shape: tensor.Shape{0}},
	})
	_, err := testPlan(m, dir, PlanOptions{Workers: 1})
	var te *TensorError
	if !errors.As(err, &te) || te.Tensor != "a.w" || !strings.Contains(te.Msg, "has shape [4611686018427387903 0]: a tensor with a zero dimension cannot go through the rule's ops") {
		t.Fatalf("got %v", err)
	}
}

// TestScaleBytes: a chunk's byte offset in a large tensor is exact where
// size * u would pass int64.
func TestScaleBytes(t *testing.T) {
	for _, tc := range []struct{ size, u, units, want int64 }{
		{1 << 62, 3, 4, 3 << 60},
		{1 << 44, 1<<30 - 1, 1 << 30, 1<<44 - 1<<14},
		{math.MaxInt64, 1, 1, math.MaxInt64},
		{10, 1, 3, 3},
		{0, 5, 7, 0},
	} {
		if got := scaleBytes(tc.size, tc.u, tc.units); got != tc.want {
			t.Errorf("scaleBytes(%d, %d, %d) = %d, want %d", tc.size, tc.u, tc.units, got, tc.want)
		}
	}
	if satMul(1<<40, 1<<40) != math.MaxInt64 || satAdd(math.MaxInt64, 1) != math.MaxInt64 || satMul(3, 4) != 12 {
		t.Error("memory estimates do not saturate")
	}
	if _, err := addSize(math.MaxInt64, 1); err == nil {
		t.Error("addSize wrapped")
	}
}
