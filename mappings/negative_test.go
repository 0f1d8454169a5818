package mappings_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// stored is one tensor as rewrite reads and writes it.
type stored struct {
	safetensors.Entry
	Data []byte
}

// rewrite rewrites the safetensors files of an HF checkpoint through edit,
// which may change a tensor (shape, dtype, data) or drop it (keep false);
// extra tensors go into the first file. When the checkpoint has an index it
// is written again from the new files, so index and files stay consistent:
// what the plan then refuses is the content, not a broken checkpoint.
func rewrite(t *testing.T, dir string, edit func(s *stored) (keep bool), extra ...stored) {
	t.Helper()
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var shards []safetensors.Shard
	var data [][]stored
	for i, f := range ck.Files {
		var kept []stored
		for _, info := range f.Tensors {
			b, err := f.Data(info.Name)
			if err != nil {
				t.Fatal(err)
			}
			s := stored{Entry: safetensors.Entry{Name: info.Name, DType: info.DType, Shape: info.Shape.Clone()}, Data: slices.Clone(b)}
			if edit(&s) {
				kept = append(kept, s)
			}
		}
		if i == 0 {
			kept = append(kept, extra...)
		}
		sh := safetensors.Shard{File: filepath.Base(f.Path)}
		for _, s := range kept {
			sh.Entries = append(sh.Entries, s.Entry)
			sh.Bytes += int64(len(s.Data))
		}
		shards, data = append(shards, sh), append(data, kept)
	}
	hasIndex := ck.Index != nil
	ck.Close()
	for i, sh := range shards {
		l, err := safetensors.NewLayout(sh.Entries, nil)
		if err != nil {
			t.Fatal(err)
		}
		w, err := safetensors.Create(filepath.Join(dir, sh.File), l)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range data[i] {
			if err := w.WriteAt(s.Name, 0, s.Data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	if hasIndex {
		if err := safetensors.WriteIndex(filepath.Join(dir, safetensors.IndexFile), safetensors.NewIndex(shards)); err != nil {
			t.Fatal(err)
		}
	}
	// The rewritten checkpoint must itself be valid.
	ck, err = safetensors.OpenDir(dir)
	if err != nil {
		t.Fatalf("the rewritten checkpoint does not open: %v", err)
	}
	ck.Close()
}

// drop returns an edit that removes the named tensor (and checks it existed).
func drop(t *testing.T, name string) func(*stored) bool {
	found := false
	t.Cleanup(func() {
		if !found {
			t.Errorf("no tensor %s to drop", name)
		}
	})
	return func(s *stored) bool {
		if s.Name == name {
			found = true
			return false
		}
		return true
	}
}

func keepAll(*stored) bool { return true }

// refused plans a conversion that must fail, checks the message holds every
// substring, and that no output was written.
func refused(t *testing.T, mapping, in string, opt engine.PlanOptions, want ...string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	p, err := engine.NewPlan(load(t, mapping), in, opt)
	if err == nil {
		p.Close()
		t.Fatalf("NewPlan(%s) accepted the checkpoint; want an error with %q", mapping, want)
	}
	msg := err.Error()
	t.Logf("refused:\n%s", msg)
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not mention %q:\n%s", w, msg)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("output %s exists after a refused plan (%v)", out, err)
	}
}

// hubConfig reads a published config.json of testdata/hub.
func hubConfig(t *testing.T, dir string) map[string]any {
	t.Helper()
	v, err := pyjson.Decode(readFile(t, filepath.Join("testdata", "hub", dir, "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}

func withOverrides(a synth.Arch, kv ...any) synth.Arch {
	a.Overrides = map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		a.Overrides[kv[i].(string)] = kv[i+1]
	}
	return a
}

// apriel2Mixer is the tiny apriel2_text with block's mixer replaced (its
// tensors follow the new mixer, as the HF model would build them).
func apriel2Mixer(block string, mixer map[string]any) synth.Arch {
	a := synth.TinyApriel2Text()
	a.Apriel2.Blocks[block]["mixer"] = mixer
	return a
}

// apriel2Vision is the tiny apriel2 with its vision encoder's config
// changed by edit (the tensors follow it, as the HF model builds them).
func apriel2Vision(edit func(v map[string]any)) synth.Arch {
	a := synth.TinyApriel2()
	edit(a.Apriel2.Vision)
	return a
}

// llavaSub is the tiny llava's sub-config sub (text_config,
// vision_config) with key set to v.
func llavaSub(sub, key string, v any) map[string]any {
	c, err := synth.Config(synth.TinyLlava())
	if err != nil {
		panic(err) // the tiny llava is valid: TestLlava (synth) says so
	}
	m := maps.Clone(c[sub].(map[string]any))
	m[key] = v
	return m
}

// withRemoved is a with the top-level config keys left out.
func withRemoved(a synth.Arch, keys ...string) synth.Arch {
	a.Remove = keys
	return a
}

// TestRefusedHF lists the HF checkpoints the seed mappings refuse on
// import, each with what the message must name.
func TestRefusedHF(t *testing.T) {
	gptOSS := synth.TinyGPTOSS()
	cases := []struct {
		name    string
		mapping string
		arch    synth.Arch
		opts    synth.Options
		edit    func(t *testing.T) func(*stored) bool
		extra   []stored
		want    []string
	}{
		{
			name: "gpt_oss_missing_expert_tensor", mapping: "gpt_oss", arch: gptOSS,
			// Sharded, so that the index has to be rewritten consistently.
			opts: synth.Options{ShardBytes: 48 << 10},
			edit: func(t *testing.T) func(*stored) bool { return drop(t, "model.layers.1.mlp.experts.down_proj_scales") },
			want: []string{"tensor model.layers.1.mlp.experts.down_proj_scales", "missing from the input hf checkpoint"},
		},
		{
			name: "gpt_oss_dense_missing_expert_tensor", mapping: "gpt_oss", arch: synth.TinyGPTOSSDense(),
			edit: func(t *testing.T) func(*stored) bool { return drop(t, "model.layers.0.mlp.experts.gate_up_proj") },
			want: []string{"tensor model.layers.0.mlp.experts.gate_up_proj", "missing from the input"},
		},
		{
			// Three experts' blocks where the config says four.
			name: "gpt_oss_wrong_expert_shape", mapping: "gpt_oss", arch: gptOSS,
			edit: func(t *testing.T) func(*stored) bool {
				return func(s *stored) bool {
					if s.Name == "model.layers.0.mlp.experts.gate_up_proj_blocks" {
						s.Shape[0]--
						s.Data = s.Data[:len(s.Data)/4*3]
					}
					return true
				}
			},
			want: []string{"tensor model.layers.0.mlp.experts.gate_up_proj_blocks", "has shape [3 128 2 16], the rule declares [4 128 2 16]"},
		},
		{
			// The orientation trap of formats.md: a dense gate_up_proj stored
			// output-major [E, 2I, H] like the quantized one. It must be
			// refused, never silently transposed.
			name: "gpt_oss_dense_wrong_orientation", mapping: "gpt_oss", arch: synth.TinyGPTOSSDense(),
			edit: func(t *testing.T) func(*stored) bool {
				return func(s *stored) bool {
					if s.Name == "model.layers.1.mlp.experts.gate_up_proj" {
						s.Shape[1], s.Shape[2] = s.Shape[2], s.Shape[1]
					}
					return true
				}
			},
			want: []string{"tensor model.layers.1.mlp.experts.gate_up_proj", "has shape [4 128 64], the rule declares [4 64 128]"},
		},
		{
			name: "gpt_oss_expert_dtype", mapping: "gpt_oss", arch: synth.TinyGPTOSSDense(),
			edit: func(t *testing.T) func(*stored) bool {
				return func(s *stored) bool {
					if s.Name == "model.layers.0.mlp.experts.down_proj" {
						s.DType = tensor.F16
					}
					return true
				}
			},
			want: []string{"tensor model.layers.0.mlp.experts.down_proj", "is F16, the rule declares BF16"},
		},
		{
			name: "gpt_oss_layer_types_length", mapping: "gpt_oss",
			arch: withOverrides(gptOSS, "layer_types", synth.LayerTypes(3)),
			want: []string{"config.json: layer_types: has 3 entries but num_hidden_layers is 2"},
		},
		{
			name: "gpt_oss_unknown_layer_type", mapping: "gpt_oss",
			arch: withOverrides(gptOSS, "layer_types", []any{"sliding_attention", "chunked_attention"}),
			want: []string{"layer_types[1]", `value "chunked_attention" has no counterpart`},
		},
		{
			name: "gpt_oss_unclaimed_config_key", mapping: "gpt_oss",
			arch: withOverrides(gptOSS, "use_kernels", true),
			want: []string{"config.json: use_kernels: not claimed by any config rule of gpt_oss"},
		},
		{
			name: "gpt_oss_unclaimed_nested_config_key", mapping: "gpt_oss",
			arch: withOverrides(gptOSS, "rope_scaling", map[string]any{
				"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0, "mscale": 1.0,
				"original_max_position_embeddings": int64(4096), "rope_type": "yarn", "truncate": false,
			}),
			want: []string{"rope_scaling.mscale: not claimed by any config rule"},
		},
		{
			name: "gpt_oss_not_yarn", mapping: "gpt_oss",
			arch: withOverrides(gptOSS, "rope_scaling", map[string]any{"factor": 8.0, "rope_type": "linear"}),
			want: []string{"rope_scaling.rope_type", `is "linear"; the mapping requires "yarn"`},
		},
		{
			name: "gpt_oss_unclaimed_tensor", mapping: "gpt_oss", arch: gptOSS,
			edit:  func(*testing.T) func(*stored) bool { return keepAll },
			extra: []stored{{Entry: safetensors.Entry{Name: "model.layers.0.self_attn.rotary_emb.inv_freq", DType: tensor.F32, Shape: tensor.Shape{8}}, Data: make([]byte, 32)}},
			want:  []string{"tensor model.layers.0.self_attn.rotary_emb.inv_freq", "not claimed by any rule of gpt_oss", `(variant "mxfp4")`},
		},
		{
			// Experts quantized some other way: the mxfp4 variant does not
			// apply, and the dense one does not claim the key.
			name: "gpt_oss_other_quantization", mapping: "gpt_oss",
			arch: withOverrides(gptOSS, "quantization_config", map[string]any{"quant_method": "fp8"}),
			want: []string{"config.json: quantization_config.quant_method: not claimed by any config rule of gpt_oss"},
		},
		{
			// A generic key at a value that changes the model.
			name: "llama_encoder_decoder", mapping: "llama",
			arch: withOverrides(synth.TinyLlama(), "is_encoder_decoder", true),
			want: []string{"config.json: is_encoder_decoder: is true; as one of transformers' generic config keys it travels only at false"},
		},
		{
			// A model-specific extra another mapping declares is not generic.
			name: "mistral_nanotron_extra", mapping: "mistral",
			arch: withOverrides(synth.TinyMistral(), "rope_interleaved", false),
			want: []string{"config.json: rope_interleaved: not claimed by any config rule of mistral", "--keep rope_interleaved"},
		},
		{
			name: "llama_hidden_act", mapping: "llama",
			arch: withOverrides(synth.TinyLlama(), "hidden_act", "gelu"),
			want: []string{"hidden_act", `value "gelu" has no counterpart (known: "silu")`},
		},
		{
			// The config promises attention biases the file does not have.
			name: "llama_missing_bias", mapping: "llama",
			arch: withOverrides(synth.TinyLlama(), "attention_bias", true),
			want: []string{"tensor model.layers.0.self_attn.q_proj.bias", "missing from the input"},
		},
		{
			// Biases in the file the config says are not there.
			name: "llama_unclaimed_bias", mapping: "llama",
			arch: func() synth.Arch {
				a := synth.TinyLlama()
				a.MLPBias = true
				return withOverrides(a, "mlp_bias", false)
			}(),
			want: []string{"tensor model.layers.0.mlp.down_proj.bias", "not claimed by any rule of llama"},
		},
		{
			name: "qwen2_sliding_window", mapping: "qwen2",
			arch: withOverrides(synth.TinyQwen2(), "use_sliding_window", true),
			want: []string{"config.json: use_sliding_window is true: sliding windows in the layers from max_window_layers on would need two block types"},
		},
		{
			name: "mixtral_missing_expert", mapping: "mixtral", arch: synth.TinyMixtral(),
			edit: func(t *testing.T) func(*stored) bool {
				return drop(t, "model.layers.1.block_sparse_moe.experts.3.w2.weight")
			},
			want: []string{"tensor model.layers.1.block_sparse_moe.experts.3.w2.weight", "missing from the input"},
		},
		{
			name: "mixtral_expert_shape", mapping: "mixtral", arch: synth.TinyMixtral(),
			edit: func(t *testing.T) func(*stored) bool {
				return func(s *stored) bool {
					if s.Name == "model.layers.0.block_sparse_moe.experts.2.w3.weight" {
						s.Shape[0], s.Data = s.Shape[0]/2, s.Data[:len(s.Data)/2]
					}
					return true
				}
			},
			want: []string{"tensor model.layers.0.block_sparse_moe.experts.2.w3.weight: is BF16[64 64] but model.layers.0.block_sparse_moe.experts.0.w3.weight is BF16[128 64]; stacked tensors must agree"},
		},
		{
			// Phi-3-mini-128k-instruct's published rope_scaling.
			name: "phi3_longrope", mapping: "phi3",
			arch: withOverrides(synth.TinyPhi3(), "rope_scaling", hubConfig(t, "microsoft--Phi-3-mini-128k-instruct")["rope_scaling"]),
			want: []string{"mappings/phi3.map:82:7: error: ", "config.json: rope_scaling is not null: Phi-3's long-context rotary embedding (longrope, called su in older configs) has no Fast-LLM counterpart"},
		},
		{
			name: "phi3_partial_rotary", mapping: "phi3",
			arch: withOverrides(synth.TinyPhi3(), "partial_rotary_factor", 0.75),
			want: []string{"partial_rotary_factor is not 1"},
		},
		{
			// The config's key/value heads disagree with the fused matrix.
			name: "phi3_qkv_shape", mapping: "phi3",
			arch: withOverrides(synth.TinyPhi3(), "num_key_value_heads", int64(1)),
			want: []string{"tensor model.layers.0.self_attn.qkv_proj.weight", "has shape [128 64], the rule declares [96 64]"},
		},
		{
			name: "qwen3_sliding_window", mapping: "qwen3",
			arch: withOverrides(synth.TinyQwen3(), "use_sliding_window", true),
			want: []string{"use_sliding_window is true: a window only from layer max_window_layers on"},
		},
		{
			name: "qwen3_missing_k_norm", mapping: "qwen3", arch: synth.TinyQwen3(),
			edit: func(t *testing.T) func(*stored) bool { return drop(t, "model.layers.1.self_attn.k_norm.weight") },
			want: []string{"tensor model.layers.1.self_attn.k_norm.weight", "missing from the input"},
		},
		{
			name: "qwen3_moe_not_renormalized", mapping: "qwen3_moe",
			arch: withOverrides(synth.TinyQwen3MoE(), "norm_topk_prob", false),
			want: []string{"norm_topk_prob is not true: HF then weights the chosen experts by their softmax over all experts"},
		},
		{
			name: "qwen3_moe_sparse_step", mapping: "qwen3_moe",
			arch: withOverrides(synth.TinyQwen3MoE(), "decoder_sparse_step", int64(2)),
			want: []string{"dense MLP layers between the expert layers"},
		},
		{
			name: "qwen3_moe_mlp_only_layers", mapping: "qwen3_moe",
			arch: withOverrides(synth.TinyQwen3MoE(), "mlp_only_layers", []any{int64(1)}),
			want: []string{"dense MLP layers between the expert layers"},
		},
		{
			name: "qwen3_moe_missing_expert", mapping: "qwen3_moe", arch: synth.TinyQwen3MoE(),
			edit: func(t *testing.T) func(*stored) bool { return drop(t, "model.layers.0.mlp.experts.3.up_proj.weight") },
			want: []string{"tensor model.layers.0.mlp.experts.3.up_proj.weight", "missing from the input"},
		},
		{
			// The config announces a third head the file does not have: the
			// loop over the extra heads runs past the checkpoint at its
			// norm, model.mtp_norms.{i+1} with i = 1.
			name: "mtp_llama_heads_past_the_checkpoint", mapping: "mtp_llama",
			arch: withOverrides(synth.TinyMTPLlama(), "prediction_heads", int64(3)),
			want: []string{"tensor model.mtp_norms.2.weight", "which holds no tensor at all for i = 1"},
		},
		{
			name: "mtp_llama_unannounced_head", mapping: "mtp_llama",
			arch: withOverrides(synth.TinyMTPLlama(), "prediction_heads", int64(1)),
			want: []string{"tensor model.mtp_heads.0.", "not claimed by any rule of mtp_llama", "tensor model.mtp_norms.1.weight"},
		},
		{
			name: "dream_other_auto_map", mapping: "dream",
			arch: withOverrides(synth.TinyDream(), "auto_map", map[string]any{"AutoModel": "modeling_qwen2.Qwen2Model"}),
			want: []string{`config.json: auto_map: is {"AutoModel": "modeling_qwen2.Qwen2Model"}; the mapping requires {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"}`},
		},
		{
			// The HF model's discrete Mamba, which Fast-LLM does not convert.
			name: "apriel_discrete_mamba_layer", mapping: "apriel_hybrid_ssm",
			arch: withOverrides(synth.TinyAprielHybridSSM(), "hybrid_block_layout", []any{"t", "m2d"}),
			want: []string{`hybrid_block_layout[1]: value "m2d" has no counterpart`},
		},
		{
			name: "apriel_d_conv", mapping: "apriel_hybrid_ssm",
			arch: withOverrides(synth.TinyAprielHybridSSM(), "ssm_cfg", map[string]any{"d_conv": int64(3), "d_inner": int64(512),
				"d_state": int64(8), "d_xb": int64(256), "dt_rank": int64(16), "bias": false, "conv_bias": false, "dt_proj_bias": false}),
			want: []string{"ssm_cfg.d_conv: is 3; the mapping requires 4"},
		},
		{
			// The layout says Mamba where the checkpoint has attention.
			name: "apriel_layout_disagrees", mapping: "apriel_hybrid_ssm",
			arch: withOverrides(synth.TinyAprielHybridSSM(), "hybrid_block_layout", []any{"m2", "m2"}),
			want: []string{"tensor model.layers.0.mixer.in_proj.weight", "tensor model.layers.0.self_attn.q_proj.weight", "not claimed by any rule"},
		},
		{
			// A supernet block: refused by name, never half converted.
			name: "apriel2_stochastic_mixer", mapping: "apriel2_text",
			arch: func() synth.Arch {
				// The config says stochastic where the tensors are a GDN's
				// (synth builds no supernet).
				a := synth.TinyApriel2Text()
				cfg, _ := synth.Config(a)
				dec := cfg["decoder"].(map[string]any)
				dec["blocks"].(map[string]any)["gdn"].(map[string]any)["mixer"] = map[string]any{"type": "stochastic", "main_mixer_name": "attn",
					"mixers": map[string]any{"attn": map[string]any{"type": "attention", "heads": int64(8)}}}
				a.Overrides = map[string]any{"decoder": dec}
				return a
			}(),
			want: []string{"mappings/apriel2_text.map:", "config.json: a stochastic (supernet) mixer: apriel2_text converts attention, mamba, gdn and kda mixers only"},
		},
		{
			name: "apriel2_rotary_default", mapping: "apriel2_text",
			arch: apriel2Mixer("attn_full", map[string]any{"type": "attention", "heads": int64(8), "head_groups": int64(4), "head_size": int64(32),
				"add_linear_biases": false, "rotary": map[string]any{"type": "default", "theta": 10000.0}}),
			want: []string{`decoder.blocks.attn_full.mixer.rotary.type: value "default" has no counterpart (known: "mistral_1d", "llama3", "yarn")`},
		},
		{
			// Fast-LLM ignores these attention keys: another value would be lost.
			name: "apriel2_attention_not_causal", mapping: "apriel2_text",
			arch: apriel2Mixer("attn_full", map[string]any{"type": "attention", "heads": int64(8), "head_groups": int64(4), "head_size": int64(32),
				"add_linear_biases": false, "causal": false, "rotary": map[string]any{"type": "mistral_1d", "theta": 10000.0}}),
			want: []string{"decoder.blocks.attn_full.mixer.causal: not claimed by any config rule of apriel2_text"},
		},
		{
			name: "apriel2_mamba_conv_on_xb", mapping: "apriel2_text",
			arch: apriel2Mixer("gdn", map[string]any{"type": "mamba", "d_inner": int64(512), "repeat_kv_before_conv": false, "conv_bias": true, "dt_proj_bias": true}),
			want: []string{"decoder.blocks.gdn.mixer.repeat_kv_before_conv: is false; the mapping requires true"},
		},
		{
			name: "apriel2_gated_mlp_biases", mapping: "apriel2_text",
			arch: func() synth.Arch {
				a := synth.TinyApriel2Text()
				a.Apriel2.Blocks["kda"]["mlp"].(map[string]any)["add_linear_biases"] = true
				return a
			}(),
			want: []string{"a gated MLP with biases: Apriel2's gated MLP (transformers' MistralMLP) has none"},
		},
		{
			// Llava saves lm_head all the same; Fast-LLM's tied model has
			// no head.output_weights for it.
			name: "llava_tied", mapping: "llava",
			arch: withOverrides(synth.TinyLlava(), "text_config", llavaSub("text_config", "tie_word_embeddings", true)),
			want: []string{"text_config.tie_word_embeddings is true: Llava saves language_model.lm_head.weight all the same"},
		},
		{
			name: "llava_other_vision_tower", mapping: "llava",
			arch: withOverrides(synth.TinyLlava(), "vision_config", llavaSub("vision_config", "model_type", "siglip_vision_model")),
			want: []string{`config.json: vision_config.model_type: is "siglip_vision_model"; the mapping requires "pixtral"`},
		},
		{
			// Fast-LLM's converter would make a multimodal model without a
			// vision encoder, which a checkpoint cannot tell from a gpt one.
			name: "apriel2_text_only", mapping: "apriel2",
			arch: withRemoved(synth.TinyApriel2(), "vision_encoder"),
			want: []string{"mappings/apriel2.map:", "config.json: no vision_encoder: a text-only Apriel2 (model_type apriel2)", "convert it as apriel2_text"},
		},
		{
			// Fast-LLM's converter reads encoder.block only.
			name: "apriel2_vision_pattern", mapping: "apriel2",
			arch: apriel2Vision(func(v map[string]any) { v["encoder"].(map[string]any)["type"] = "pattern" }),
			want: []string{`config.json: vision_encoder.encoder.type: is "pattern"; the mapping requires "fixed"`},
		},
		{
			// A repeated key that disagrees with the one it repeats.
			name: "apriel2_patch_size_disagrees", mapping: "apriel2",
			arch: apriel2Vision(func(v map[string]any) { v["patch_size"] = int64(8) }),
			want: []string{"config.json: vision_encoder.patch_size: is 8; the mapping requires vision_encoder.embeddings.patch_height = 4"},
		},
		{
			name: "apriel2_rotary_grid", mapping: "apriel2",
			arch: apriel2Vision(func(v map[string]any) {
				v["encoder"].(map[string]any)["block"].(map[string]any)["mixer"].(map[string]any)["rotary"].(map[string]any)["max_image_size"] = int64(2048)
			}),
			want: []string{"vision_encoder.encoder.block.mixer.rotary.max_image_size: is 2048; the mapping requires 1024"},
		},
		{
			// The HF projector always has biases, which Fast-LLM's adapter
			// without them would not load.
			name: "apriel2_adapter_without_biases", mapping: "apriel2",
			arch: apriel2Vision(func(v map[string]any) { v["adapter"].(map[string]any)["add_linear_biases"] = false }),
			want: []string{"vision_encoder.adapter.add_linear_biases: is false; the mapping requires true"},
		},
		{
			name: "apriel2_adapter_activation_absent", mapping: "apriel2",
			arch: apriel2Vision(func(v map[string]any) { delete(v["adapter"].(map[string]any), "activation") }),
			want: []string{"vision_encoder.adapter.activation is absent: Fast-LLM's converter needs it"},
		},
		{
			// Fast-LLM's converter reads an RMS norm (the HF model's
			// default is a layer norm).
			name: "apriel2_embeddings_layer_norm", mapping: "apriel2",
			arch: apriel2Vision(func(v map[string]any) {
				v["embeddings"].(map[string]any)["normalization"].(map[string]any)["type"] = "layer_norm"
			}),
			want: []string{`vision_encoder.embeddings.normalization.type: is "layer_norm"; the mapping requires "rms_norm"`},
		},
		{
			name: "mistral_wrong_architecture", mapping: "mistral",
			arch: withOverrides(synth.TinyMistral(), "model_type", "llama"),
			want: []string{"config.json: model_type: is \"llama\"; the mapping requires \"mistral\""},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := generate(t, tc.arch, tc.opts)
			if tc.edit != nil {
				rewrite(t, dir, tc.edit(t), tc.extra...)
			}
			refused(t, tc.mapping, dir, engine.PlanOptions{}, tc.want...)
		})
	}
}

// TestRefusedFastLLM covers refusals on export: a Fast-LLM config the
// mapping cannot express in HF, and a variant the mapping does not have.
func TestRefusedFastLLM(t *testing.T) {
	t.Parallel()
	m := load(t, "llama")
	fl, _ := convert(t, m, generate(t, synth.TinyLlama(), synth.Options{}), engine.PlanOptions{})
	refused(t, "llama", fl, engine.PlanOptions{Variant: "dense"}, `mapping llama has no variants, so --variant dense does not apply`)

	flOSS, _ := convert(t, load(t, "gpt_oss"), generate(t, synth.TinyGPTOSS(), synth.Options{}), engine.PlanOptions{})
	refused(t, "gpt_oss", flOSS, engine.PlanOptions{Variant: "fp8"}, `mapping gpt_oss has no variant "fp8" (known: mxfp4, dense)`)

	// One rms_norm_eps feeds both epsilons; if they disagree there is no HF
	// value to write.
	editMetadata(t, fl, func(cfg map[string]any) {
		cfg["head"].(map[string]any)["normalization"].(map[string]any)["epsilon"] = 1e-06
	})
	refused(t, "llama", fl, engine.PlanOptions{}, "head.normalization.epsilon", "they must agree", "decoder.block.normalization.epsilon")

	// A Fast-LLM key no rule of the mapping knows (attention sinks, which
	// Llama does not have).
	fl2, _ := convert(t, m, generate(t, synth.TinyLlama(), synth.Options{}), engine.PlanOptions{})
	editMetadata(t, fl2, func(cfg map[string]any) {
		cfg["decoder"].(map[string]any)["block"].(map[string]any)["mixer"].(map[string]any)["sinks"] = map[string]any{"enabled": true}
	})
	refused(t, "llama", fl2, engine.PlanOptions{}, "metadata.yaml config.base_model: decoder.block.mixer.sinks.enabled: not claimed by any config rule of llama")
}

// editMetadata changes config.base_model of a Fast-LLM checkpoint in place.
func editMetadata(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	md := parseMetadata(t, dir)
	edit(md.Config)
	b, err := fastllm.EncodeMetadata(md.Version, md.Config, md.StateIndex, md.Carried)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fastllm.MetadataFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
