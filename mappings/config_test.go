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

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/configmap"
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
  router: {bias: {enabled: true}}
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

// TestFastLLMConfigNewArchs: the Fast-LLM config of the mappings that no
// Fast-LLM converter covers, written out from Fast-LLM's attention and MoE
// config classes (query_norm/key_norm: normalizations per head).
func TestFastLLMConfigNewArchs(t *testing.T) {
	sprintf := fmt.Sprintf
	qwen3Norms := "\n  query_norm: {type: rms_norm, epsilon: 1.0e-06}\n  key_norm: {type: rms_norm, epsilon: 1.0e-06}"
	cases := []struct {
		mapping string
		arch    synth.Arch
		want    string
	}{
		{"qwen3", synth.TinyQwen3(), llamaFamily(sprintf(llamaBlock, "false", "1000000", qwen3Norms, "false", "", "1.0e-06"), "1.0e-06")},
		{"qwen3_moe", synth.TinyQwen3MoE(), llamaFamily(strings.Replace(sprintf(llamaBlock, "false", "1000000.0", qwen3Norms, "false",
			"\n  type: moe\n  experts: 4\n  experts_per_token: 2", "1.0e-06"), "intermediate_size: 128", "intermediate_size: 32", 1), "1.0e-06")},
		{"phi3", synth.TinyPhi3(), llamaFamily(sprintf(llamaBlock, "false", "10000.0", "\n  window_size: 2047", "false", "", "1.0e-05"), "1.0e-05")},
		{"mtp_llama", synth.TinyMTPLlama(), strings.Replace(llamaFamily(sprintf(llamaBlock, "false", "500000.0", "", "false", "", "1.0e-05"), "1.0e-05"),
			"head:\n", "head:\n  prediction_heads: 2\n", 1)},
		{"diffusion_llama", synth.TinyDiffusionLlama(), llamaFamily(sprintf(llamaBlock, "false", "500000.0", "", "false", "", "1.0e-05"), "1.0e-05")},
		{"dream", synth.TinyDream(), llamaFamily(sprintf(llamaBlock, "false", "1000000.0",
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

// TestHubConfigs translates published config.json files (testdata/hub)
// with the new mappings, checks what the Fast-LLM side gets, and that the
// way back gives the very same config.
func TestHubConfigs(t *testing.T) {
	cases := []struct {
		dir, mapping string
		check        map[string]any // dotted config.base_model path -> value
		refused      string         // a substring of the error, when refused
	}{
		{dir: "Qwen--Qwen3-0.6B", mapping: "qwen3", check: map[string]any{
			"decoder.block.mixer.head_size": int64(128), "decoder.block.mixer.heads": int64(16), "hidden_size": int64(1024),
			"decoder.block.mixer.query_norm.epsilon": 1e-06, "decoder.block.mixer.rotary.theta": int64(1000000), "tied_embedding_weight": true}},
		{dir: "Qwen--Qwen3-8B", mapping: "qwen3", check: map[string]any{
			"decoder.block.mixer.head_size": int64(128), "decoder.block.mixer.key_norm.type": "rms_norm", "decoder.num_blocks": int64(36)}},
		{dir: "Qwen--Qwen3-30B-A3B", mapping: "qwen3_moe", check: map[string]any{
			"decoder.block.mlp.experts": int64(128), "decoder.block.mlp.experts_per_token": int64(8),
			"decoder.block.mlp.intermediate_size": int64(768), "decoder.block.mlp.type": "moe", "decoder.block.mixer.head_groups": int64(4)}},
		{dir: "microsoft--Phi-3-mini-4k-instruct", mapping: "phi3", check: map[string]any{
			"decoder.block.mixer.window_size": int64(2047), "decoder.block.mixer.head_size": int64(96), "embeddings.vocab_size": int64(32064)}},
		{dir: "microsoft--Phi-3-mini-128k-instruct", mapping: "phi3",
			refused: "config.json: rope_scaling is not null: Phi-3's long-context rotary embedding (longrope, called su in older configs) has no Fast-LLM counterpart"},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			t.Parallel()
			m := load(t, tc.mapping)
			left := hubConfig(t, tc.dir)
			tr := configmap.New(m, fastllm.Side{})
			imp, err := tr.Import(ir.DeepCopy(left).(map[string]any), "config.json")
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("got %v, want a refusal with %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range tc.check {
				if got, ok := lookup(imp.Out, path); !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v (present %v), want %#v", path, got, ok, want)
				}
			}
			exp, err := tr.Export(imp.Out, imp.Carried, "metadata.yaml", "", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(exp.Out, left) {
				t.Errorf("the way back differs:\n got %v\nwant %v", exp.Out, left)
			}
		})
	}
}
