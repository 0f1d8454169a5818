package mappings_test

// The Fast-LLM config each mapping writes, compared with what formats.md §4
// says (written out by hand here), and the HF config keys that may be
// absent.

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/mappings/synth"
)

// baseModel parses a YAML config.base_model the way the Fast-LLM side reads
// metadata.yaml, so that numbers get the same types.
func baseModel(t *testing.T, yaml string) map[string]any {
	t.Helper()
	doc := "format: fast_llm\nshards: [weights]\nmetadata: {state_index: {}}\nconfig:\n  base_model:\n" + indent(yaml, "    ")
	md, err := fastllm.ParseMetadata([]byte(doc))
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return md.Config
}

func indent(s, pre string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		b.WriteString(pre + line + "\n")
	}
	return b.String()
}

// importConfig imports a generated checkpoint and returns the metadata.
func importConfig(t *testing.T, mapping string, a synth.Arch) *fastllm.Metadata {
	t.Helper()
	out, _ := convert(t, load(t, mapping), generate(t, a, synth.Options{NoSideFiles: true}), engine.PlanOptions{})
	return parseMetadata(t, out)
}

func sameConfig(t *testing.T, got, want map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.base_model:\n got %v\nwant %v", got, want)
	}
}

// The Llama family's block, from formats.md §4 (tiny sizes).
const llamaBlock = `mixer:
  type: attention
  heads: 4
  head_groups: 2
  head_size: 16
  add_linear_biases: %s
  dropout: 0.0
  rotary: {type: default, theta: %s}%s
mlp:
  intermediate_size: 128
  add_linear_biases: %s
  activation: silu
  gated: true%s
normalization: {type: rms_norm, epsilon: %s}
`

func llamaFamily(block string, eps string) string {
	return `hidden_size: 64
tied_embedding_weight: false
embeddings: {vocab_size: 128}
decoder:
  num_blocks: 2
  block:
` + indent(block, "    ") + `head:
  normalization: {type: rms_norm, epsilon: ` + eps + `}
`
}

func TestFastLLMConfigLlamaFamily(t *testing.T) {
	sprintf := fmt.Sprintf
	cases := []struct {
		mapping string
		arch    synth.Arch
		want    string
	}{
		{"llama", synth.TinyLlama(), llamaFamily(sprintf(llamaBlock, "false", "500000.0", "", "false", "", "1.0e-05"), "1.0e-05")},
		{"mistral", synth.TinyMistral(), llamaFamily(sprintf(llamaBlock, "false", "10000.0", "\n  window_size: 4096", "false", "", "1.0e-05"), "1.0e-05")},
		{"mixtral", synth.TinyMixtral(), llamaFamily(sprintf(llamaBlock, "false", "1000000.0", "\n  window_size: null", "false",
			"\n  type: moe\n  experts: 4\n  experts_per_token: 2", "1.0e-05"), "1.0e-05")},
		// Qwen2: biases on query, key and value only, written as Fast-LLM's
		// per-layer overrides.
		{"qwen2", synth.TinyQwen2(), llamaFamily(sprintf(llamaBlock, "false", "1000000.0",
			"\n  query_layer: {bias: {enabled: true}}\n  key_layer: {bias: {enabled: true}}\n  value_layer: {bias: {enabled: true}}\n  dense_layer: {bias: {enabled: false}}",
			"false", "", "1.0e-06"), "1.0e-06")},
	}
	for _, tc := range cases {
		t.Run(tc.mapping, func(t *testing.T) {
			t.Parallel()
			md := importConfig(t, tc.mapping, tc.arch)
			sameConfig(t, md.Config, baseModel(t, tc.want))
		})
	}
}

func TestFastLLMConfigGPTOSS(t *testing.T) {
	t.Parallel()
	block := func(window string) string {
		return `mixer:
  type: attention
  heads: 4
  head_groups: 2
  head_size: 16
  add_linear_biases: true
  dropout: 0.0
  sinks: {enabled: true}
  rotary: {type: yarn, theta: 150000, scale_factor: 32.0, beta_fast: 32.0, beta_slow: 1.0, original_context_length: 4096}` + window + `
mlp:
  type: moe
  experts: 4
  experts_per_token: 2
  intermediate_size: 64
  gated: true
  add_linear_biases: true
  router: {type: affine_linear, bias: {enabled: true}}
  layer_1: {type: moe_affine_linear}
  layer_2: {type: moe_affine_linear}
  activation: gpt_oss_glu
normalization: {type: rms_norm, epsilon: 1.0e-05}
`
	}
	want := `hidden_size: 64
tied_embedding_weight: false
embeddings: {vocab_size: 128}
decoder:
  type: pattern
  num_blocks: 2
  pattern: [sliding, full]
  blocks:
    sliding:
` + indent(block("\n  window_size: 128"), "      ") + `    full:
` + indent(block(""), "      ") + `head:
  normalization: {type: rms_norm, epsilon: 1.0e-05}
`
	for _, a := range []synth.Arch{synth.TinyGPTOSS(), synth.TinyGPTOSSDense()} {
		md := importConfig(t, "gpt_oss", a)
		sameConfig(t, md.Config, baseModel(t, want))
		wantVariant := "dense"
		if a.MXFP4 {
			wantVariant = "mxfp4"
		}
		if md.Carried.Variant != wantVariant {
			t.Errorf("metadata.mapper.variant %q, want %q", md.Carried.Variant, wantVariant)
		}
		// Every HF key without a Fast-LLM place travels in metadata.mapper.
		for _, k := range []string{"experts_per_token", "rope_scaling.truncate", "router_aux_loss_coef", "output_router_logits",
			"swiglu_limit", "eos_token_id", "pad_token_id", "initial_context_length", "initializer_range",
			"max_position_embeddings", "transformers_version", "use_cache"} {
			if _, ok := md.Carried.Kept[k]; !ok {
				t.Errorf("metadata.mapper.kept has no %s: %v", k, md.Carried.Kept)
			}
		}
	}
}

// TestFastLLMConfigGPTOSSLayerTypes: the decoder is the shortest repeating
// cycle of layer_types, or a plain block when every layer has one type.
func TestFastLLMConfigGPTOSSLayerTypes(t *testing.T) {
	s, f := "sliding_attention", "full_attention"
	cases := []struct {
		name    string
		types   []any
		pattern []any // nil: a plain block
		window  bool  // the (single) block has window_size
	}{
		{"all_full", []any{f, f, f}, nil, false},
		{"all_sliding", []any{s, s, s}, nil, true},
		{"ssf", []any{s, s, f}, []any{"sliding", "sliding", "full"}, false},
		{"sfsf", []any{s, f, s, f}, []any{"sliding", "full"}, false},
		{"fss_fss", []any{f, s, s, f, s, s}, []any{"full", "sliding", "sliding"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := synth.TinyGPTOSS()
			a.Layers = len(tc.types)
			a.Overrides = map[string]any{"layer_types": tc.types}
			m := load(t, "gpt_oss")
			hf0 := generate(t, a, synth.Options{ByteExactMXFP4: true})
			fl, _ := convert(t, m, hf0, engine.PlanOptions{})
			md := parseMetadata(t, fl)
			dec := md.Config["decoder"].(map[string]any)
			if dec["num_blocks"] != int64(len(tc.types)) {
				t.Errorf("num_blocks %v, want %d", dec["num_blocks"], len(tc.types))
			}
			if tc.pattern == nil {
				block, ok := dec["block"].(map[string]any)
				if !ok || dec["pattern"] != nil || dec["blocks"] != nil {
					t.Fatalf("decoder is not a plain block: %v", dec)
				}
				_, hasWindow := block["mixer"].(map[string]any)["window_size"]
				if hasWindow != tc.window {
					t.Errorf("window_size present: %v, want %v", hasWindow, tc.window)
				}
				if _, kept := md.Carried.Kept["sliding_window"]; kept == tc.window {
					t.Errorf("sliding_window kept in metadata.mapper: %v, want %v", kept, !tc.window)
				}
			} else {
				if dec["type"] != "pattern" || !reflect.DeepEqual(dec["pattern"], tc.pattern) {
					t.Errorf("decoder type %v pattern %v, want pattern %v", dec["type"], dec["pattern"], tc.pattern)
				}
			}
			// And back: the same layer_types, byte for byte.
			hf1, _ := convert(t, m, fl, engine.PlanOptions{})
			checkHFRoundTrip(t, hf0, hf1, false)
		})
	}
}

// TestAbsentHFKeys: HF config keys that transformers fills in with defaults
// may be absent from config.json. The Fast-LLM config must then hold the HF
// default explicitly (Fast-LLM's own defaults differ: add_linear_biases is
// true there), and the way back must leave the keys absent.
func TestAbsentHFKeys(t *testing.T) {
	cases := []struct {
		name    string
		mapping string
		arch    synth.Arch
		remove  []string
		check   map[string]any // dotted config.base_model path -> value
	}{
		{"llama", "llama", synth.TinyLlama(),
			[]string{"attention_bias", "mlp_bias", "attention_dropout", "rope_theta", "rope_scaling", "head_dim"},
			map[string]any{
				"decoder.block.mixer.add_linear_biases": false, "decoder.block.mlp.add_linear_biases": false,
				"decoder.block.mixer.dropout": 0.0, "decoder.block.mixer.rotary.theta": 10000.0,
				"decoder.block.mixer.head_size": int64(16),
			}},
		{"qwen2", "qwen2", synth.TinyQwen2(), []string{"rope_scaling", "rope_theta", "attention_dropout"},
			map[string]any{"decoder.block.mixer.rotary.theta": 10000.0, "decoder.block.mixer.dropout": 0.0}},
		{"mistral", "mistral", synth.TinyMistral(), []string{"rope_theta", "attention_dropout", "head_dim"},
			map[string]any{"decoder.block.mixer.rotary.theta": 10000.0, "decoder.block.mixer.head_size": int64(16)}},
		{"mixtral", "mixtral", synth.TinyMixtral(), []string{"rope_theta", "attention_dropout"},
			map[string]any{"decoder.block.mixer.rotary.theta": 1e6}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := tc.arch
			a.Remove = tc.remove
			m := load(t, tc.mapping)
			hf0 := generate(t, a, synth.Options{})
			fl, _ := convert(t, m, hf0, engine.PlanOptions{})
			md := parseMetadata(t, fl)
			for path, want := range tc.check {
				got, ok := lookup(md.Config, path)
				if !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v (present %v), want %#v", path, got, ok, want)
				}
			}
			for _, k := range tc.remove {
				if k == "rope_scaling" {
					continue // not a rename: nothing to record
				}
				if !slices.Contains(md.Carried.Absent, k) {
					t.Errorf("metadata.mapper.absent %v lacks %s", md.Carried.Absent, k)
				}
			}
			hf1, _ := convert(t, m, fl, engine.PlanOptions{})
			checkHFRoundTrip(t, hf0, hf1, false)
		})
	}
}

func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, seg := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}
