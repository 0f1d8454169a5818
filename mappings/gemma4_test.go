package mappings_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format/hf"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/pyjson"
)

// TestGemma4Refused: what the gemma4 mapping does not cover is refused by
// name, never converted wrongly.
func TestGemma4Refused(t *testing.T) {
	tiny := synth.TinyGemma4()
	removed := tiny
	removed.Remove = []string{"hidden_size_per_layer_input"}
	for _, tc := range []struct {
		name string
		arch synth.Arch
		want []string
	}{
		{"per_layer_embeddings", withOverrides(tiny, "hidden_size_per_layer_input", int64(256)),
			[]string{"gemma4.map:", "hidden_size_per_layer_input is not 0: Gemma 4's per-layer embeddings"}},
		// transformers' default is 256: absent means per-layer embeddings.
		{"per_layer_embeddings_by_default", removed, []string{"hidden_size_per_layer_input is not 0"}},
		{"kv_shared_layers", withOverrides(tiny, "num_kv_shared_layers", int64(1)),
			[]string{"num_kv_shared_layers is not 0: layers that reuse an earlier layer's keys and values"}},
		{"bidirectional", withOverrides(tiny, "use_bidirectional_attention", "all"),
			[]string{`use_bidirectional_attention is "all": Fast-LLM's attention is causal`}},
		{"keys_are_values_without_heads", withOverrides(tiny, "attention_k_eq_v", true),
			[]string{"attention_k_eq_v is true but num_global_key_value_heads is null"}},
		{"global_heads_without_keys_are_values", withOverrides(tiny, "num_global_key_value_heads", int64(2)),
			[]string{"num_global_key_value_heads is set but attention_k_eq_v is false"}},
		// HF's "gelu" is the exact GELU; Fast-LLM's gelu is the tanh one.
		{"exact_gelu", withOverrides(tiny, "hidden_activation", "gelu"),
			[]string{`hidden_activation: value "gelu" has no counterpart (known: "gelu_pytorch_tanh")`}},
		{"attention_bias", withOverrides(tiny, "attention_bias", true),
			[]string{"attention_bias: is true; the mapping requires false"}},
		{"other_layer_type", withOverrides(tiny, "layer_types", []any{"sliding_attention", "chunked_attention"}),
			[]string{`layer_types[1]: value "chunked_attention" has no counterpart`}},
		{"other_full_rotary", withOverrides(tiny, "rope_parameters", map[string]any{
			"full_attention":    map[string]any{"rope_theta": 10000.0, "rope_type": "default"},
			"sliding_attention": map[string]any{"rope_theta": 10000.0, "rope_type": "default"}}),
			[]string{`rope_parameters.full_attention.rope_type: is "default"; the mapping requires "proportional"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			refused(t, "gemma4", generate(t, tc.arch, synth.Options{NoSideFiles: true}), engine.PlanOptions{}, tc.want...)
		})
	}
}

// TestGemma4ComputedValuesRefused: a Fast-LLM checkpoint whose embedding
// or router input scale is not what Gemma 4 computes from hidden_size is
// refused on export, naming the expression and both values; so is one
// that lacks them (Fast-LLM's default 1.0 is not Gemma's scale).
func TestGemma4ComputedValuesRefused(t *testing.T) {
	m := load(t, "gemma4")
	for _, tc := range []struct {
		name string
		edit func(cfg map[string]any)
		want string
	}{
		{"embedding_scale", func(cfg map[string]any) { cfg["embeddings"].(map[string]any)["embedding_scale"] = 1.0 },
			"embeddings.embedding_scale: is 1.0; the mapping requires sqrt(hidden_size) = 16.0 (hf has no way to say another value)"},
		{"embedding_scale_absent", func(cfg map[string]any) { delete(cfg["embeddings"].(map[string]any), "embedding_scale") },
			"embeddings.embedding_scale: missing; the mapping requires sqrt(hidden_size) = 16.0"},
		{"router_input_scale", func(cfg map[string]any) {
			block := cfg["decoder"].(map[string]any)["blocks"].(map[string]any)["full_attention"].(map[string]any)
			block["mlp"].(map[string]any)["routed"].(map[string]any)["router_input_scale"] = 0.1
		}, "decoder.blocks.full_attention.mlp.routed.router_input_scale: is 0.1; the mapping requires 1 / sqrt(hidden_size) = 0.0625"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fl, _ := convert(t, m, generate(t, synth.TinyGemma4(), synth.Options{NoSideFiles: true}), engine.PlanOptions{})
			editMetadata(t, fl, tc.edit)
			refused(t, "gemma4", fl, engine.PlanOptions{}, tc.want, "gemma4.map:")
		})
	}
}

// TestGemma4PublishedTextModel: google/gemma-4-26B-A4B's text model at its
// real widths (its text_config, saved alone as Gemma4ForCausalLM, on a
// header-exact skeleton) plans against Fast-LLM main's parameter schema
// (head sizes 256 and 512, keys-are-values full layers of 2 heads, 128
// experts), and its config comes back from Fast-LLM as it was. The pattern
// is the shortest cycle of layer_types (six blocks), where Fast-LLM's
// converter writes all thirty: the same layers.
func TestGemma4PublishedTextModel(t *testing.T) {
	v, err := pyjson.Decode(readFile(t, filepath.Join("testdata", "hub", "google--gemma-4-26B-A4B", hf.ConfigFile)))
	if err != nil {
		t.Fatal(err)
	}
	pub := v.(map[string]any)
	text := pub["text_config"].(map[string]any)
	text["architectures"] = []any{"Gemma4ForCausalLM"}
	text["transformers_version"] = pub["transformers_version"]
	raw, err := pyjson.Encode(text, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	raw = append(raw, '\n')
	a, _ := synth.RealWidths("gemma4")
	dir := filepath.Join(t.TempDir(), "gemma-4-26B-A4B-text")
	if err := synth.Skeleton(dir, raw, a, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	m := load(t, "gemma4")
	p, err := engine.NewPlan(m, dir, engine.PlanOptions{Workers: 1})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	defer p.Close()
	checkHubConfigRoundTrip(t, m, text, raw)

	cfg := p.Config
	dec := cfg["decoder"].(map[string]any)
	// The whole list, as Fast-LLM's converter writes it (cycle verbatim).
	if got := dec["pattern"].([]any); !ir.ValuesEqual(got, text["layer_types"]) {
		t.Errorf("pattern %v, want layer_types as written, %v", got, text["layer_types"])
	}
	full := dec["blocks"].(map[string]any)["full_attention"].(map[string]any)["mixer"].(map[string]any)
	if full["head_size"] != int64(512) || full["head_groups"] != int64(2) || full["shared_key_value"] != true {
		t.Errorf("full attention %v", full)
	}
	if s := cfg["embeddings"].(map[string]any)["embedding_scale"]; s != 53.0659966456864 {
		t.Errorf("embedding_scale %v, want sqrt(2816) as Python computes 2816 ** 0.5", s)
	}
	var kv []string
	for _, j := range p.Jobs {
		for i, n := range j.Outputs[0] {
			if strings.HasSuffix(n, ".mixer.key_value.weight") {
				kv = append(kv, fmt.Sprintf("%s %v", n, j.OutTypes[i].Shape))
			}
		}
	}
	if !slices.Contains(kv, "decoder.5.mixer.key_value.weight [1024 2816]") || !slices.Contains(kv, "decoder.0.mixer.key_value.weight [4096 2816]") {
		t.Errorf("key_value shapes %v", kv)
	}
}
