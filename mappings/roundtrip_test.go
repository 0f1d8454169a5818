package mappings_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

type roundTripCase struct {
	name    string
	mapping string
	arch    synth.Arch
	opts    synth.Options
	variant string // the variant the import must choose ("" for mappings without variants)
	// valuesOnly: MXFP4 bytes may change on the way back, decoded values may not.
	valuesOnly bool
	// edit changes the generated checkpoint before the round trip (a
	// config.json or index written other than save_pretrained writes it).
	edit func(t *testing.T, dir string)
	// restored are the documents whose original text the import must
	// record and the export write back, each with a plan note.
	restored []string
}

func roundTripCases() []roundTripCase {
	llamaBias := synth.TinyLlama()
	llamaBias.AttentionBias, llamaBias.MLPBias = true, true
	llamaTied := synth.TinyLlama()
	llamaTied.TieEmbeddings = true
	mistralNull := synth.TinyMistral()
	mistralNull.SlidingWindow = 0 // sliding_window: null
	qwen3Bias := synth.TinyQwen3()
	qwen3Bias.AttentionBias, qwen3Bias.TieEmbeddings = true, true
	// head_dim 32 with 4 heads of a 64-wide model: q_proj is [128, 64], as
	// in Qwen3-0.6B where head_dim * heads != hidden_size.
	qwen3Wide := synth.TinyQwen3()
	qwen3Wide.HeadDim = 32
	qwen3MoERect := synth.TinyQwen3MoE()
	qwen3MoERect.Experts, qwen3MoERect.ExpertsPerTok, qwen3MoERect.KVHeads = 3, 1, 1
	phi3MHA := synth.TinyPhi3()
	phi3MHA.KVHeads, phi3MHA.SlidingWindow = 4, 0 // as Phi-3-mini: as many key/value heads as heads; no window
	mtp1 := synth.TinyMTPLlama()
	mtp1.PredictionHeads = 1 // the model's own head only: no mtp_heads
	mtp3 := synth.TinyMTPLlama()
	mtp3.PredictionHeads, mtp3.AttentionBias, mtp3.MLPBias = 3, true, true
	return []roundTripCase{
		{name: "apriel_hybrid_ssm", mapping: "apriel_hybrid_ssm", arch: synth.TinyAprielHybridSSM()},
		{name: "apriel2_text", mapping: "apriel2_text", arch: synth.TinyApriel2Text()},
		{name: "apriel2_text_fixed_mamba", mapping: "apriel2_text", arch: apriel2Fixed()},
		{name: "apriel2_text_biased", mapping: "apriel2_text", arch: apriel2Biased()},
		{name: "apriel2_text_yarn_defaults", mapping: "apriel2_text", arch: apriel2Defaults()},
		// dt_rank "auto": imported as ceil(hidden_size / 16), exported as "auto".
		{name: "apriel2_text_dt_rank_auto", mapping: "apriel2_text", arch: apriel2Mixer("gdn", map[string]any{"type": "mamba", "d_inner": int64(512),
			"dt_rank": "auto", "conv_bias": true, "dt_proj_bias": true})},
		{name: "apriel_hybrid_ssm_biased", mapping: "apriel_hybrid_ssm", arch: aprielBiased(6)},
		{name: "apriel_hybrid_ssm_dt_rank_auto", mapping: "apriel_hybrid_ssm", arch: aprielBiased(0)},
		{name: "apriel_hybrid_ssm_gdn", mapping: "apriel_hybrid_ssm", arch: aprielGDN()},
		{name: "apriel_hybrid_ssm_mamba_only", mapping: "apriel_hybrid_ssm", arch: aprielLayout("m2", "m2")},
		{name: "apriel_hybrid_ssm_attention_only", mapping: "apriel_hybrid_ssm", arch: aprielLayout("t", "t", "t")},
		// As AprielHybridSSMConfig saves it: ssm_cfg completed with its
		// defaults, layer_types and linear_attn_config added.
		{name: "apriel_hybrid_ssm_saved", mapping: "apriel_hybrid_ssm", arch: aprielSaved()},
		// No Mamba layer, no ssm_cfg; and a Mamba with dt_rank left out
		// (ceil(hidden_size / 16)) and no bias keys (the HF defaults).
		{name: "apriel_hybrid_ssm_no_ssm_cfg", mapping: "apriel_hybrid_ssm", arch: withRemoved(aprielLayout("t", "t"), "ssm_cfg")},
		{name: "apriel_hybrid_ssm_ssm_defaults", mapping: "apriel_hybrid_ssm", arch: withOverrides(synth.TinyAprielHybridSSM(), "ssm_cfg",
			map[string]any{"d_state": int64(8), "d_inner": int64(512), "d_xb": int64(256), "conv_bias": false, "dt_proj_bias": false})},
		{name: "apriel_hybrid_ssm_periodic", mapping: "apriel_hybrid_ssm", arch: aprielLayout("t", "m2", "t", "m2")},
		{name: "apriel2", mapping: "apriel2", arch: synth.TinyApriel2()},
		// The other branches, and a vision config without the keys Fast-LLM's
		// exporter repeats: they stay out.
		{name: "apriel2_varied", mapping: "apriel2", arch: apriel2Varied()},
		{name: "llava", mapping: "llava", arch: synth.TinyLlava()},
		// Fast-LLM's own spelling of its gelu, and a config without
		// multimodal_projector_bias (transformers' default: biased).
		{name: "llava_gelu_tanh", mapping: "llava", arch: withOverrides(synth.TinyLlava(), "projector_hidden_act", "gelu_pytorch_tanh")},
		{name: "llava_no_projector_bias_key", mapping: "llava", arch: withRemoved(synth.TinyLlava(), "multimodal_projector_bias")},
		// pixtral-12b's vision_config states head_dim, which Fast-LLM
		// ignores: kept.
		{name: "llava_vision_head_dim", mapping: "llava", arch: withOverrides(synth.TinyLlava(), "vision_config", llavaSub("vision_config", "head_dim", int64(16)))},
		{name: "llava_hybrid", mapping: "llava_hybrid", arch: synth.TinyLlavaHybrid()},
		// Attention only; Mamba layers around one with every bias, the
		// convolution over d_xb and dt_rank "auto"; a GDN layer; tied
		// embeddings (no lm_head.weight, as Fast-LLM's converter drops it).
		{name: "llava_hybrid_attention", mapping: "llava_hybrid", arch: llavaHybridLayout("t", "t")},
		{name: "llava_hybrid_mamba", mapping: "llava_hybrid", arch: llavaHybridMamba()},
		{name: "llava_hybrid_gdn", mapping: "llava_hybrid", arch: llavaHybridGDN()},
		{name: "llava_hybrid_tied", mapping: "llava_hybrid", arch: llavaHybridTied()},
		{name: "gpt_oss_mxfp4_byte_exact", mapping: "gpt_oss", arch: synth.TinyGPTOSS(), opts: synth.Options{ByteExactMXFP4: true}, variant: "mxfp4"},
		{name: "gpt_oss_mxfp4", mapping: "gpt_oss", arch: synth.TinyGPTOSS(), variant: "mxfp4", valuesOnly: true},
		{name: "gpt_oss_dense", mapping: "gpt_oss", arch: synth.TinyGPTOSSDense(), variant: "dense"},
		{name: "llama", mapping: "llama", arch: synth.TinyLlama()},
		{name: "llama_biases", mapping: "llama", arch: llamaBias},
		{name: "llama_tied", mapping: "llama", arch: llamaTied},
		{name: "mistral_window", mapping: "mistral", arch: synth.TinyMistral()},
		{name: "mistral_window_null", mapping: "mistral", arch: mistralNull},
		{name: "mixtral", mapping: "mixtral", arch: synth.TinyMixtral()},
		{name: "qwen2", mapping: "qwen2", arch: synth.TinyQwen2()},
		{name: "qwen3", mapping: "qwen3", arch: synth.TinyQwen3()},
		{name: "qwen3_biases_tied", mapping: "qwen3", arch: qwen3Bias},
		{name: "qwen3_wide_heads", mapping: "qwen3", arch: qwen3Wide},
		// As newer transformers save a Qwen3 config.
		{name: "qwen3_layer_types", mapping: "qwen3", arch: withOverrides(synth.TinyQwen3(), "layer_types", []any{"full_attention", "full_attention"})},
		{name: "qwen3_moe", mapping: "qwen3_moe", arch: synth.TinyQwen3MoE()},
		{name: "qwen3_moe_rect", mapping: "qwen3_moe", arch: qwen3MoERect},
		{name: "phi3", mapping: "phi3", arch: synth.TinyPhi3()},
		{name: "phi3_mha", mapping: "phi3", arch: phi3MHA},
		{name: "mtp_llama", mapping: "mtp_llama", arch: synth.TinyMTPLlama()},
		{name: "mtp_llama_one_head", mapping: "mtp_llama", arch: mtp1},
		{name: "mtp_llama_three_heads_biases", mapping: "mtp_llama", arch: mtp3},
		{name: "diffusion_llama", mapping: "diffusion_llama", arch: synth.TinyDiffusionLlama()},
		{name: "dream", mapping: "dream", arch: synth.TinyDream()},
		// Gemma 4: experts beside the dense MLP; dense; full layers whose
		// keys are the values, with other head sizes; every width distinct.
		{name: "gemma4", mapping: "gemma4", arch: synth.TinyGemma4()},
		{name: "gemma4_dense", mapping: "gemma4", arch: gemma4Archs()["dense"]},
		{name: "gemma4_kv", mapping: "gemma4", arch: gemma4Archs()["kv"]},
		{name: "gemma4_rect", mapping: "gemma4", arch: gemma4Archs()["rect"]},
		{name: "gemma4_fast_llm_test", mapping: "gemma4", arch: gemma4FastLLMTest()},
		// One layer, full attention (transformers makes the last one full):
		// a single block, which must keep the full layers' settings.
		{name: "gemma4_one_full_layer", mapping: "gemma4", arch: gemma4OneLayer()},
		// The keys whose absence says their default, left out: they stay out.
		{name: "gemma4_dense_defaults_absent", mapping: "gemma4", arch: func() synth.Arch {
			a := gemma4Archs()["dense"]
			a.Remove = []string{"num_kv_shared_layers", "use_double_wide_mlp", "use_bidirectional_attention", "attention_k_eq_v",
				"enable_moe_block", "final_logit_softcapping", "num_global_key_value_heads"}
			return a
		}()},
		// Sharded inputs with an index (save_pretrained naming, and GPT-OSS's
		// published 0-based naming).
		{name: "gpt_oss_mxfp4_sharded", mapping: "gpt_oss", arch: synth.TinyGPTOSS(), opts: synth.Options{ByteExactMXFP4: true, ShardBytes: 48 << 10}, variant: "mxfp4"},
		// GPT-OSS as published: 0-based names, a one-line index in an order
		// of its own, and no __metadata__ in the shards.
		{name: "gpt_oss_mxfp4_sharded_zero_based", mapping: "gpt_oss", arch: synth.TinyGPTOSS(),
			opts: synth.Options{ByteExactMXFP4: true, ShardBytes: 48 << 10, Naming: "hf-zero-based", NoFileMetadata: true}, variant: "mxfp4",
			restored: []string{safetensors.IndexFile}},
		{name: "llama_sharded", mapping: "llama", arch: synth.TinyLlama(), opts: synth.Options{ShardBytes: 24 << 10}},
		{name: "qwen3_moe_sharded", mapping: "qwen3_moe", arch: synth.TinyQwen3MoE(), opts: synth.Options{ShardBytes: 24 << 10}},
		{name: "mtp_llama_sharded", mapping: "mtp_llama", arch: mtp3, opts: synth.Options{ShardBytes: 24 << 10}},
		{name: "gemma4_kv_sharded", mapping: "gemma4", arch: gemma4Archs()["kv"], opts: synth.Options{ShardBytes: 512 << 10}},
		// Originals not in save_pretrained form come back byte for byte.
		{name: "gpt_oss_rope_scaling_unsorted", mapping: "gpt_oss", arch: synth.TinyGPTOSS(), opts: synth.Options{ByteExactMXFP4: true}, variant: "mxfp4",
			edit: rewriteConfig(func(o pyjson.Object) (any, int, string) {
				// As several official Llama 3.1 / 3.3 configs list theirs.
				rs, _ := o.Get("rope_scaling")
				o.Set("rope_scaling", reorder(rs.(pyjson.Object), "rope_type", "factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "truncate"))
				return o, 2, "\n"
			}), restored: []string{"config.json"}},
		{name: "llama_indent4_no_newline", mapping: "llama", arch: synth.TinyLlama(),
			edit: rewriteConfig(func(o pyjson.Object) (any, int, string) { return o, 4, "" }), restored: []string{"config.json"}},
		{name: "llama_short_floats", mapping: "llama", arch: llamaBias,
			edit: editConfigText(func(s string) string {
				return strings.NewReplacer(`1e-05`, `1e-5`, `500000.0`, `5e5`, `0.0,`, `0.00,`).Replace(s)
			}), restored: []string{"config.json"}},
		{name: "mixtral_one_line_reversed", mapping: "mixtral", arch: synth.TinyMixtral(),
			edit: rewriteConfig(func(o pyjson.Object) (any, int, string) { return reversed(o), -1, "" }), restored: []string{"config.json"}},
		{name: "qwen2_crlf", mapping: "qwen2", arch: synth.TinyQwen2(),
			edit: editConfigText(func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }), restored: []string{"config.json"}},
		// Newer transformers add total_parameters to the index.
		{name: "mistral_sharded_total_parameters", mapping: "mistral", arch: synth.TinyMistral(), opts: synth.Options{ShardBytes: 24 << 10},
			edit: editFile(safetensors.IndexFile, func(s string) string {
				return strings.Replace(s, `"metadata": {`, `"metadata": {`+"\n"+`    "total_parameters": 12345,`, 1)
			}), restored: []string{safetensors.IndexFile}},
		// One shard named as one of several, with its index.
		{name: "llama_single_shard_index", mapping: "llama", arch: llamaTied, edit: singleShardIndex},
	}
}

// editFile rewrites the file name of a checkpoint through edit.
func editFile(name string, edit func(string) string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		path := filepath.Join(dir, name)
		before := string(readFile(t, path))
		after := edit(before)
		if after == before {
			t.Fatalf("the edit leaves %s as it was", name)
		}
		if err := os.WriteFile(path, []byte(after), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// editConfigText rewrites config.json's text.
func editConfigText(edit func(string) string) func(t *testing.T, dir string) {
	return editFile("config.json", edit)
}

// rewriteConfig writes config.json again from its ordered content as
// rewrite returns it, with an indent (-1: one line) and an ending.
func rewriteConfig(rewrite func(pyjson.Object) (v any, indent int, end string)) func(t *testing.T, dir string) {
	return editConfigText(func(s string) string {
		v, err := pyjson.DecodeOrdered([]byte(s))
		if err != nil {
			panic(err)
		}
		nv, indent, end := rewrite(v.(pyjson.Object))
		b, err := pyjson.Encode(nv, indent, false)
		if err != nil {
			panic(err)
		}
		return string(b) + end
	})
}

// reorder puts o's keys in the given order (every key of o must be named).
func reorder(o pyjson.Object, keys ...string) pyjson.Object {
	if len(keys) != len(o) {
		panic(fmt.Sprintf("reorder: %d keys for %v", len(keys), o.Keys()))
	}
	out := make(pyjson.Object, len(keys))
	for i, k := range keys {
		v, ok := o.Get(k)
		if !ok {
			panic("reorder: no key " + k)
		}
		out[i] = pyjson.Member{Key: k, Value: v}
	}
	return out
}

// reversed reverses the key order of every object in v.
func reversed(v any) any {
	switch v := v.(type) {
	case pyjson.Object:
		out := make(pyjson.Object, len(v))
		for i, m := range v {
			out[len(v)-1-i] = pyjson.Member{Key: m.Key, Value: reversed(m.Value)}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = reversed(e)
		}
		return out
	}
	return v
}

// singleShardIndex renames model.safetensors to
// model-00001-of-00001.safetensors and writes its index, as some
// publishers ship a model that fits in one file.
func singleShardIndex(t *testing.T, dir string) {
	t.Helper()
	const name = "model-00001-of-00001.safetensors"
	if err := os.Rename(filepath.Join(dir, "model.safetensors"), filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sh := safetensors.Shard{File: name}
	for _, ti := range f.Tensors {
		sh.Entries = append(sh.Entries, safetensors.Entry{Name: ti.Name, DType: ti.DType, Shape: ti.Shape})
		sh.Bytes += ti.Size()
	}
	if err := safetensors.WriteIndex(filepath.Join(dir, safetensors.IndexFile), safetensors.NewIndex([]safetensors.Shard{sh})); err != nil {
		t.Fatal(err)
	}
}

// TestRoundTrip converts each generated HF checkpoint to Fast-LLM and back,
// then the Fast-LLM checkpoint to HF and back, and checks that nothing
// changed on either way.
func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := load(t, tc.mapping)
			hf0 := generate(t, tc.arch, tc.opts)
			if tc.edit != nil {
				tc.edit(t, hf0)
			}
			if tc.opts.ShardBytes > 0 {
				if _, err := os.Stat(filepath.Join(hf0, "model.safetensors.index.json")); err != nil {
					t.Fatalf("the sharded input has no index: %v", err)
				}
			}

			// HF -> Fast-LLM -> HF.
			fl, imp := convert(t, m, hf0, engine.PlanOptions{})
			if imp.Direction != engine.Import || imp.Variant != tc.variant {
				t.Fatalf("import: direction %v, variant %q; want import, %q", imp.Direction, imp.Variant, tc.variant)
			}
			if tc.variant != "" && (imp.Carried == nil || imp.Carried.Variant != tc.variant) {
				t.Errorf("the import does not record variant %q for the way back: %+v", tc.variant, imp.Carried)
			}
			if got := slices.Sorted(maps.Keys(imp.Carried.Texts)); !slices.Equal(got, slices.Sorted(slices.Values(tc.restored))) {
				t.Errorf("the import records the text of %v, want %v", got, tc.restored)
			}
			for _, f := range tc.restored {
				checkNote(t, "import", imp.Notes, f+" is not in the form mapper writes: its exact text is recorded")
			}
			// No shard size: the export writes the files the import started from.
			hf1, exp := convert(t, m, fl, engine.PlanOptions{})
			if exp.Direction != engine.Export || exp.Variant != tc.variant {
				t.Fatalf("export: direction %v, variant %q; want export, %q", exp.Direction, exp.Variant, tc.variant)
			}
			for _, f := range tc.restored {
				checkNote(t, "export", exp.Notes, f+": written as the original text recorded at import")
			}
			checkHFRoundTrip(t, hf0, hf1, tc.valuesOnly)

			// Fast-LLM -> HF -> Fast-LLM: every file the same, byte for byte.
			fl2, _ := convert(t, m, hf1, engine.PlanOptions{})
			checkAllIdentical(t, fl, fl2)
			checkSameMetadata(t, fl, fl2)
			checkSameFiles(t, fl, fl2)
		})
	}
}

func checkNote(t *testing.T, what string, notes []string, want string) {
	t.Helper()
	if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, want) }) {
		t.Errorf("%s notes %q: none says %q", what, notes, want)
	}
}

// checkSameFiles requires two directories to hold the same files with the
// same bytes (cmp), and mapper diff to say so too.
func checkSameFiles(t *testing.T, a, b string) {
	t.Helper()
	rep, err := engine.Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Files) == 0 {
		t.Error("diff compares no files")
	}
	for _, d := range rep.Files {
		if d.Kind != engine.FileIdentical {
			t.Errorf("diff: file %s %s %s", d.Name, d.Kind, d.Detail)
		}
	}
	na, nb := dirNames(t, a), dirNames(t, b)
	if !slices.Equal(na, nb) {
		t.Errorf("files differ:\n  %v\n  %v", na, nb)
	}
	for _, n := range na {
		if !bytes.Equal(readFile(t, filepath.Join(a, n)), readFile(t, filepath.Join(b, n))) {
			t.Errorf("%s is not byte-identical after the round trip", n)
		}
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// checkHFRoundTrip compares an HF checkpoint with its round trip: every
// tensor identical (MXFP4 blocks/scales: identical decoded values when
// valuesOnly), and every other file byte for byte.
func checkHFRoundTrip(t *testing.T, a, b string, valuesOnly bool) {
	t.Helper()
	rep, err := engine.Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var requantized []string // MXFP4 pairs whose bytes changed
	for _, d := range rep.Tensors {
		if d.Kind == engine.Identical {
			continue
		}
		if valuesOnly && d.Kind == engine.Different && isMXFP4Part(d.Name) {
			requantized = append(requantized, strings.TrimSuffix(strings.TrimSuffix(d.Name, "_blocks"), "_scales"))
			continue
		}
		t.Errorf("%s: %s %s", d.Name, d.Kind, d.Detail)
	}
	if len(rep.Tensors) == 0 {
		t.Fatal("no tensors compared")
	}
	// mapper diff's file comparison agrees with cmp below.
	for _, d := range rep.Files {
		if d.Kind != engine.FileIdentical && !(valuesOnly && strings.HasSuffix(d.Name, ".safetensors")) {
			t.Errorf("diff: file %s %s %s", d.Name, d.Kind, d.Detail)
		}
	}
	if valuesOnly {
		requantized = slices.Compact(slices.Sorted(slices.Values(requantized)))
		if len(requantized) == 0 {
			t.Fatal("no MXFP4 tensor changed bytes: the values-only case does not exercise re-quantization")
		}
		ca, cb := openHF(t, a), openHF(t, b)
		for _, base := range requantized {
			checkSameMXFP4Values(t, ca, cb, base)
		}
	}
	// The export writes the files the import read (names, shards, index,
	// config.json, each file's __metadata__), so every file is
	// byte-identical (cmp); only re-quantized MXFP4 data may differ, and
	// that was compared by value above, the __metadata__ here.
	na, nb := dirNames(t, a), dirNames(t, b)
	if !slices.Equal(na, nb) {
		t.Errorf("files differ:\n  %v\n  %v", na, nb)
	}
	for _, n := range na {
		if valuesOnly && strings.HasSuffix(n, ".safetensors") {
			fa, fb := openFile(t, filepath.Join(a, n)), openFile(t, filepath.Join(b, n))
			if !reflect.DeepEqual(fa.Metadata, fb.Metadata) || (fa.Metadata == nil) != (fb.Metadata == nil) {
				t.Errorf("%s: __metadata__ %v after the round trip, want %v", n, fb.Metadata, fa.Metadata)
			}
			continue
		}
		if !bytes.Equal(readFile(t, filepath.Join(a, n)), readFile(t, filepath.Join(b, n))) {
			t.Errorf("%s is not byte-identical after the round trip", n)
		}
	}
}

func openFile(t *testing.T, path string) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func isMXFP4Part(name string) bool {
	return strings.HasSuffix(name, "_blocks") || strings.HasSuffix(name, "_scales")
}

// checkSameMXFP4Values decodes base_blocks/base_scales on both sides with
// the runtime kernel and compares the values bit for bit.
func checkSameMXFP4Values(t *testing.T, a, b *checkpoint, base string) {
	t.Helper()
	decode := func(c *checkpoint) []float32 {
		_, bs, blocks := c.raw(base + "_blocks")
		_, ss, scales := c.raw(base + "_scales")
		if len(bs) != len(ss)+1 || bs[len(bs)-1] != 16 {
			t.Fatalf("%s: blocks %v and scales %v do not pair", base, bs, ss)
		}
		dst := make([]byte, 4*32*len(scales))
		if err := kernels.DecodeMXFP4ToF32(dst, blocks, scales); err != nil {
			t.Fatal(err)
		}
		return f32s(dst)
	}
	sameBits(t, base+" (decoded)", decode(b), decode(a))
}

// checkAllIdentical requires every tensor of two checkpoints to be identical.
func checkAllIdentical(t *testing.T, a, b string) {
	t.Helper()
	rep, err := engine.Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tensors) == 0 {
		t.Fatal("no tensors compared")
	}
	for _, d := range rep.Tensors {
		if d.Kind != engine.Identical {
			t.Errorf("%s: %s %s", d.Name, d.Kind, d.Detail)
		}
	}
}

func parseMetadata(t testing.TB, dir string) *fastllm.Metadata {
	t.Helper()
	md, err := fastllm.ParseMetadata(readFile(t, filepath.Join(dir, fastllm.MetadataFile)))
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return md
}

// checkSameMetadata parses both metadata.yaml files and compares
// config.base_model and metadata.mapper.
func checkSameMetadata(t *testing.T, a, b string) {
	t.Helper()
	ma, mb := parseMetadata(t, a), parseMetadata(t, b)
	if !reflect.DeepEqual(ma.Config, mb.Config) {
		t.Errorf("config.base_model differs:\n  %v\n  %v", ma.Config, mb.Config)
	}
	if ma.Carried == nil || mb.Carried == nil {
		t.Fatalf("metadata.mapper missing: %+v, %+v", ma.Carried, mb.Carried)
	}
	if !reflect.DeepEqual(ma.Carried, mb.Carried) {
		t.Errorf("metadata.mapper differs:\n  %+v\n  %+v", ma.Carried, mb.Carried)
	}
	if !reflect.DeepEqual(ma.StateIndex, mb.StateIndex) {
		t.Errorf("state_index differs:\n  %v\n  %v", ma.StateIndex, mb.StateIndex)
	}
}

// TestGPTOSSExportDense imports an MXFP4 GPT-OSS, exports it with --variant
// dense and checks the dense checkpoint against the reference decoder; then
// it imports the dense checkpoint again and exports it with --variant mxfp4,
// which must give the original config and expert values back.
func TestGPTOSSExportDense(t *testing.T) {
	t.Parallel()
	a := synth.TinyGPTOSS()
	E, H, I := a.Experts, a.Hidden, a.Intermediate
	m := load(t, "gpt_oss")
	hf0 := generate(t, a, synth.Options{})
	fl, _ := convert(t, m, hf0, engine.PlanOptions{})
	dense, p := convert(t, m, fl, engine.PlanOptions{Variant: "dense"})
	if p.Variant != "dense" {
		t.Fatalf("export variant %q, want dense", p.Variant)
	}

	// The config is exactly a dense GPT-OSS's: no quantization_config.
	cfg := readFile(t, filepath.Join(dense, "config.json"))
	if bytes.Contains(cfg, []byte("quantization_config")) {
		t.Errorf("the dense export keeps quantization_config:\n%s", cfg)
	}
	want := generate(t, synth.TinyGPTOSSDense(), synth.Options{NoSideFiles: true})
	if !bytes.Equal(cfg, readFile(t, filepath.Join(want, "config.json"))) {
		t.Errorf("dense config.json differs from a generated dense GPT-OSS's:\n%s", cfg)
	}

	hf, d := openHF(t, hf0), openHF(t, dense)
	for l := range a.Layers {
		x := fmt.Sprintf("model.layers.%d.mlp.experts.", l)
		for _, n := range []string{"gate_up_proj_blocks", "gate_up_proj_scales", "down_proj_blocks", "down_proj_scales"} {
			if d.has(x + n) {
				t.Errorf("the dense export has %s%s", x, n)
			}
		}
		// Reference: decode the original MXFP4 ([E, 2I, H] and [E, H, I])
		// and write it input-major ([E, H, 2I] and [E, I, H]), the 2I axis
		// still interleaved.
		gu := refDecodeMXFP4(hf.u8(x+"gate_up_proj_blocks", E, 2*I, H/32, 16), hf.u8(x+"gate_up_proj_scales", E, 2*I, H/32))
		dn := refDecodeMXFP4(hf.u8(x+"down_proj_blocks", E, H, I/32, 16), hf.u8(x+"down_proj_scales", E, H, I/32))
		wantGU, wantDn := make([]float32, len(gu)), make([]float32, len(dn))
		for e := range E {
			for h := range H {
				for k := range 2 * I {
					wantGU[(e*H+h)*2*I+k] = gu[(e*2*I+k)*H+h]
				}
				for i := range I {
					wantDn[(e*I+i)*H+h] = dn[(e*H+h)*I+i]
				}
			}
		}
		sameBits(t, x+"gate_up_proj", d.bf16(x+"gate_up_proj", E, H, 2*I), wantGU)
		sameBits(t, x+"down_proj", d.bf16(x+"down_proj", E, I, H), wantDn)
		sameBits(t, x+"gate_up_proj_bias", d.bf16(x+"gate_up_proj_bias", E, 2*I), hf.bf16(x+"gate_up_proj_bias", E, 2*I))
		sameBits(t, x+"down_proj_bias", d.bf16(x+"down_proj_bias", E, H), hf.bf16(x+"down_proj_bias", E, H))
	}

	// The dense checkpoint imports to the very same Fast-LLM tensors, and
	// records dense as its variant.
	fl2, imp := convert(t, m, dense, engine.PlanOptions{})
	if imp.Variant != "dense" {
		t.Errorf("re-import variant %q, want dense", imp.Variant)
	}
	checkAllIdentical(t, fl, fl2)
	if md, md2 := parseMetadata(t, fl), parseMetadata(t, fl2); !reflect.DeepEqual(md.Config, md2.Config) {
		t.Errorf("config.base_model differs after the dense detour:\n  %v\n  %v", md.Config, md2.Config)
	} else if md2.Carried == nil || md2.Carried.Variant != "dense" {
		t.Errorf("metadata.mapper of the dense import: %+v, want variant dense", md2.Carried)
	}

	// Back to MXFP4 by name: the original config byte for byte and the
	// original expert values.
	hf2, p2 := convert(t, m, fl2, engine.PlanOptions{Variant: "mxfp4"})
	if p2.Variant != "mxfp4" {
		t.Fatalf("export variant %q, want mxfp4", p2.Variant)
	}
	if !bytes.Equal(readFile(t, filepath.Join(hf0, "config.json")), readFile(t, filepath.Join(hf2, "config.json"))) {
		t.Errorf("config.json after dense and back to mxfp4 differs from the original:\n%s", readFile(t, filepath.Join(hf2, "config.json")))
	}
	checkHFRoundTrip(t, hf0, hf2, true)
}

// TestChangedConfigKeepsOrder: when the Fast-LLM config changed after the
// import (here the rotary theta), config.json cannot be the original text;
// it is written in save_pretrained form with the original's key order, and
// the export notes which keys differ.
func TestChangedConfigKeepsOrder(t *testing.T) {
	t.Parallel()
	m := load(t, "mixtral")
	hf0 := generate(t, synth.TinyMixtral(), synth.Options{})
	rewriteConfig(func(o pyjson.Object) (any, int, string) { return reversed(o), -1, "" })(t, hf0)
	fl, _ := convert(t, m, hf0, engine.PlanOptions{})

	md := parseMetadata(t, fl)
	rotary := md.Config["decoder"].(map[string]any)["block"].(map[string]any)["mixer"].(map[string]any)["rotary"].(map[string]any)
	rotary["theta"] = 2e6
	data, err := fastllm.EncodeMetadata(md.Version, md.Config, md.StateIndex, md.Carried)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fl, fastllm.MetadataFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	hf1, exp := convert(t, m, fl, engine.PlanOptions{})
	checkNote(t, "export", exp.Notes, "config.json: differs from the original recorded at import (rope_theta): written in save_pretrained form, keys in the original's order")

	orig, err := pyjson.DecodeOrdered(readFile(t, filepath.Join(hf0, "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	o := orig.(pyjson.Object)
	o.Set("rope_theta", 2e6)
	want, err := pyjson.Encode(o, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(hf1, "config.json")); !bytes.Equal(got, append(want, '\n')) {
		t.Errorf("config.json:\n%s\nwant:\n%s", got, want)
	}
}

// aprielBiased is the reference data's apriel_hybrid_ssm_biased model:
// layout [m2, t, t], every Mamba bias, the convolution over d_xb (left out
// of the config: the hidden size), d_inner with expand, tied embeddings;
// dtRank 0 writes "auto".
func aprielBiased(dtRank int) synth.Arch {
	a := synth.TinyAprielHybridSSM()
	a.Layers, a.Layout, a.Hidden = 3, []string{"m2", "t", "t"}, 96
	a.Heads, a.HeadDim, a.KVHeads, a.Intermediate, a.Vocab, a.TieEmbeddings = 4, 24, 2, 160, 128, true
	a.Mamba = synth.Mamba{State: 16, Inner: 192, Expand: 2, DTRank: dtRank, Bias: true, ConvBias: true, DTProjBias: true, ConvOnXB: true}
	return a
}

// aprielGDN is the reference data's apriel_hybrid_ssm_gdn model: layout
// [t, m2, gdn], the GDN sizes in linear_attn_config.
func aprielGDN() synth.Arch {
	a := synth.TinyAprielHybridSSM()
	a.Layers, a.Layout, a.Hidden, a.Intermediate, a.Vocab = 3, []string{"t", "m2", "gdn"}, 64, 128, 128
	a.Heads, a.HeadDim, a.KVHeads = 4, 16, 2
	a.Mamba = synth.Mamba{State: 8, Inner: 128, XB: 64, DTRank: 4, ConvBias: true, DTProjBias: true}
	a.GDN = synth.GDN{ValueHeads: 4, KeyHeads: 2, KeyHeadDim: 8, ValueHeadDim: 16, Kernel: 4}
	return a
}

// apriel2Fixed is apriel2_text.map's sample fixed: a fixed decoder of one
// Mamba block with every bias, untied, with Apriel2TextConfig's default
// embeddings section.
func apriel2Fixed() synth.Arch {
	a := synth.TinyApriel2Text()
	a.Hidden, a.Vocab, a.Layers, a.TieEmbeddings = 64, 128, 2, false
	a.Apriel2 = &synth.Apriel2{Blocks: map[string]map[string]any{"block": {
		"mixer": map[string]any{"type": "mamba", "state_size": int64(16), "d_inner": int64(128), "d_xb": int64(32), "dt_rank": int64(4),
			"d_conv": int64(4), "add_linear_biases": true, "conv_bias": true, "dt_proj_bias": true},
		"mlp":           map[string]any{"type": "mlp", "intermediate_size": int64(96), "gated": true, "add_linear_biases": false, "activation": "silu"},
		"normalization": map[string]any{"type": "rms_norm", "epsilon": 1e-05},
	}}}
	a.Overrides = map[string]any{"embeddings": map[string]any{"max_position_embeddings": int64(2048)}}
	return a
}

// apriel2Biased is apriel2_text.map's sample biased: a pattern [attn, ssm]
// over 3 layers, biased attention with a llama3 rotary and a plain MLP
// with biases, beside a Mamba block without biases whose d_xb, dt_rank and
// d_conv are left to HF's defaults.
func apriel2Biased() synth.Arch {
	a := synth.TinyApriel2Text()
	a.Hidden, a.Vocab, a.Layers = 64, 128, 3
	norm := map[string]any{"type": "rms_norm", "epsilon": 1e-06}
	a.Apriel2 = &synth.Apriel2{Pattern: []string{"attn", "ssm"}, Blocks: map[string]map[string]any{
		"attn": {
			"mixer": map[string]any{"type": "attention", "heads": int64(4), "head_groups": int64(2), "head_size": int64(16), "add_linear_biases": true,
				"rotary": map[string]any{"type": "llama3", "theta": 500000.0, "scale_factor": 8.0, "low_frequency_factor": 1.0,
					"high_frequency_factor": 4.0, "original_context_length": int64(8192)}},
			"mlp": map[string]any{"type": "mlp", "intermediate_size": int64(128), "gated": false, "add_linear_biases": true,
				"activation": "gelu_pytorch_tanh"},
			"normalization": norm,
		},
		"ssm": {
			"mixer":         map[string]any{"type": "mamba", "state_size": int64(8), "d_inner": int64(64), "conv_bias": false, "dt_proj_bias": false},
			"mlp":           map[string]any{"type": "mlp", "intermediate_size": int64(128), "gated": true, "activation": "silu"},
			"normalization": maps.Clone(norm),
		},
	}}
	a.Overrides = map[string]any{"head": map[string]any{"normalization": maps.Clone(norm)}}
	return a
}

// apriel2Defaults is a fixed decoder of one attention block that leaves
// every key with an HF default out (decoder.type, the mixer's and MLP's
// types, head_groups, the biases, gated, the activation, the norm's type),
// with a yarn rotary and a sliding window: what the import writes for them
// the export leaves out again.
func apriel2Defaults() synth.Arch {
	a := synth.TinyApriel2Text()
	a.Hidden, a.Vocab, a.Layers = 64, 128, 2
	a.Apriel2 = &synth.Apriel2{Blocks: map[string]map[string]any{"block": {
		"mixer": map[string]any{"heads": int64(4), "head_size": int64(16), "window_size": int64(64),
			"rotary": map[string]any{"type": "yarn", "theta": 1000000.0, "scale_factor": 4.0, "original_context_length": int64(4096),
				"attention_factor": 1.2, "beta_fast": 32.0, "beta_slow": 1.0}},
		"mlp":           map[string]any{"intermediate_size": int64(128)},
		"normalization": map[string]any{"epsilon": 1e-05},
	}}}
	a.Overrides = map[string]any{"decoder": map[string]any{"num_blocks": int64(2), "block": a.Apriel2.Blocks["block"]}}
	return a
}

// aprielLayout is the tiny apriel_hybrid_ssm with another layout.
func aprielLayout(layout ...string) synth.Arch {
	a := synth.TinyAprielHybridSSM()
	a.Layers, a.Layout = len(layout), layout
	return a
}

// aprielSaved is the tiny apriel_hybrid_ssm with the config
// AprielHybridSSMConfig.save_pretrained writes (transformers 4.53): every
// key of its ssm_config_default, layer_types and linear_attn_config, and
// MistralConfig's own keys.
func aprielSaved() synth.Arch {
	a := synth.TinyAprielHybridSSM()
	a.Overrides = map[string]any{
		"ssm_cfg": map[string]any{"activation": "identity", "bias": false, "chunk_size": int64(128), "conv_bias": false,
			"d_conv": int64(4), "d_inner": int64(512), "d_state": int64(8), "d_xb": int64(256), "dt_init": "random",
			"dt_init_floor": 0.0001, "dt_max": 0.1, "dt_min": 0.001, "dt_proj_bias": false, "dt_rank": int64(16),
			"dt_scale": 1.0, "expand": int64(1), "n_qk_heads": int64(32), "n_v_heads": int64(32), "repeat_kv_before_conv": true},
		"layer_types":             []any{"full_attention", "mamba2"},
		"linear_attn_config":      map[string]any{"head_dim": int64(128), "num_heads": int64(32), "short_conv_kernel_size": int64(4)},
		"bos_token_id":            int64(1),
		"eos_token_id":            int64(2),
		"initializer_range":       0.02,
		"max_position_embeddings": int64(131072),
		"torch_dtype":             "bfloat16",
		"transformers_version":    "4.53.2",
		"use_cache":               true,
	}
	return a
}
