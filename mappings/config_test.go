package mappings_test

// The Fast-LLM config GPT-OSS writes for its layer types and both HF
// layouts, that of the mappings no Fast-LLM converter covers, published
// configs, and the HF config keys that may be absent.

import (
	"path/filepath"
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
		// Every HF key without a Fast-LLM place travels in metadata.mapper:
		// the mapping's keeps in kept, transformers' generic keys in extra.
		for _, k := range []string{"experts_per_token", "rope_scaling.truncate", "router_aux_loss_coef", "output_router_logits",
			"swiglu_limit", "initial_context_length", "initializer_range", "max_position_embeddings"} {
			if _, ok := md.Carried.Kept[k]; !ok {
				t.Errorf("metadata.mapper.kept has no %s: %v", k, md.Carried.Kept)
			}
		}
		for _, k := range []string{"eos_token_id", "pad_token_id", "transformers_version", "use_cache"} {
			if _, ok := md.Carried.Extra[k]; !ok {
				t.Errorf("metadata.mapper.extra has no %s: %v", k, md.Carried.Extra)
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
// Fast-LLM converter covers is what Fast-LLM writes for the nearest format
// it converts (its own metadata.yaml for the same sizes, in the reference
// data) with the differences of the architecture: Qwen3 is Llama with
// query_norm and key_norm (RMSNorms per head, the model's epsilon),
// Qwen3-MoE is Mixtral with those norms and no window, Phi-3 is Mistral
// with Phi-3-mini's window.
func TestFastLLMConfigNewArchs(t *testing.T) {
	norm := func(eps float64) map[string]any {
		return map[string]any{"type": "rms_norm", "epsilon": eps, "zero_centered": false}
	}
	cases := []struct {
		mapping, from string
		arch          synth.Arch
		edits         map[string]any // dotted path -> value; nil deletes
	}{
		{"qwen3", "main/llama", synth.TinyQwen3(), map[string]any{
			"decoder.block.mixer.rotary.theta":    int64(1000000), // written as the HF config writes it
			"decoder.block.normalization.epsilon": 1e-06, "head.normalization.epsilon": 1e-06,
			"decoder.block.mixer.query_norm": norm(1e-06), "decoder.block.mixer.key_norm": norm(1e-06)}},
		{"qwen3_moe", "main/mixtral", synth.TinyQwen3MoE(), map[string]any{
			"decoder.block.mixer.window_size": nil, "decoder.block.mlp.intermediate_size": int64(32),
			"decoder.block.normalization.epsilon": 1e-06, "head.normalization.epsilon": 1e-06,
			"decoder.block.mixer.query_norm": norm(1e-06), "decoder.block.mixer.key_norm": norm(1e-06)}},
		{"phi3", "main/mistral", synth.TinyPhi3(), map[string]any{"decoder.block.mixer.window_size": int64(2047)}},
	}
	for _, tc := range cases {
		t.Run(tc.mapping, func(t *testing.T) {
			t.Parallel()
			ref := parseMetadata(t, filepath.Join(realData, tc.from, "fresh")).Config
			for path, v := range tc.edits {
				segs := strings.Split(path, ".")
				m := ref
				for _, s := range segs[:len(segs)-1] {
					m = m[s].(map[string]any)
				}
				if v == nil {
					delete(m, segs[len(segs)-1])
				} else {
					m[segs[len(segs)-1]] = v
				}
			}
			got := importConfig(t, tc.mapping, tc.arch).Config
			for _, d := range diffValues("", got, ref, nil, map[string]bool{}) {
				t.Errorf("config.base_model.%s", d)
			}
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
