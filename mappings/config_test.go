package mappings_test

// The Fast-LLM config GPT-OSS writes for its layer types and both HF
// layouts, and the HF config keys that may be absent.

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/mappings/synth"
)

// importConfig imports a generated checkpoint and returns the metadata.
func importConfig(t *testing.T, mapping string, a synth.Arch) *fastllm.Metadata {
	t.Helper()
	out, _ := convert(t, load(t, mapping), generate(t, a, synth.Options{NoSideFiles: true}), engine.PlanOptions{})
	return parseMetadata(t, out)
}

// TestFastLLMConfigGPTOSS: both HF layouts of GPT-OSS import to the config
// Fast-LLM PR #374 writes for them (its convert gives the same
// metadata.yaml for the MXFP4 and the dense config), with the layout
// recorded and every HF key without a Fast-LLM place carried. The Llama
// family's configs are compared with Fast-LLM's in
// TestImportIsWhatFastLLMWrites.
func TestFastLLMConfigGPTOSS(t *testing.T) {
	t.Parallel()
	rc := realCases()[4]
	ref, err := fastllm.ParseMetadata(readFile(t, rc.path("fresh", fastllm.MetadataFile)))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []synth.Arch{synth.TinyGPTOSS(), synth.TinyGPTOSSDense()} {
		md := importConfig(t, "gpt_oss", a)
		for _, d := range diffValues("", md.Config, ref.Config, rc.floatInts, map[string]bool{}) {
			t.Errorf("config.base_model.%s", d)
		}
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
