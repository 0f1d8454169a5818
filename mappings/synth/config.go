package synth

import "maps"

// LayerTypes is GPT-OSS's layer_types for n layers: alternating, layer 0
// "sliding_attention", layer 1 "full_attention", ...
func LayerTypes(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = "sliding_attention"
		if i%2 == 1 {
			out[i] = "full_attention"
		}
	}
	return out
}

// Gemma4LayerTypes is the layer_types transformers' Gemma4TextConfig fills
// in for n layers: every sixth layer full_attention, the others
// sliding_attention, and the last one full_attention always.
func Gemma4LayerTypes(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = "sliding_attention"
		if (i+1)%6 == 0 || i == n-1 {
			out[i] = "full_attention"
		}
	}
	return out
}

func i64(v int) int64 { return int64(v) }

// orNull is v, or null when it is 0 (a size the config does not state).
func orNull(v int) any {
	if v == 0 {
		return nil
	}
	return int64(v)
}

func window(v int) any {
	if v == 0 {
		return nil
	}
	return int64(v)
}

func layout(l []string) []any {
	out := make([]any, len(l))
	for i, k := range l {
		out[i] = k
	}
	return out
}

// ssmConfig is an apriel_hybrid_ssm config's ssm_cfg.
func ssmConfig(m Mamba) map[string]any {
	c := map[string]any{
		"bias":                  m.Bias,
		"conv_bias":             m.ConvBias,
		"d_inner":               i64(m.Inner),
		"d_state":               i64(m.State),
		"dt_proj_bias":          m.DTProjBias,
		"dt_rank":               "auto",
		"repeat_kv_before_conv": !m.ConvOnXB,
	}
	if m.XB != 0 {
		c["d_xb"] = i64(m.XB)
	}
	if m.DTRank != 0 {
		c["dt_rank"] = i64(m.DTRank)
	}
	if m.Expand != 0 {
		c["expand"] = i64(m.Expand)
	}
	return c
}

// Config is the config.json content of a (numbers as int64 and float64,
// as pyjson decodes them).
func Config(a Arch) (map[string]any, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	var c map[string]any
	switch a.Family {
	case GPTOSS:
		c = map[string]any{
			"architectures":           []any{"GptOssForCausalLM"},
			"attention_bias":          true,
			"attention_dropout":       0.0,
			"eos_token_id":            int64(200002),
			"experts_per_token":       i64(a.ExpertsPerTok),
			"head_dim":                i64(a.HeadDim),
			"hidden_act":              "silu",
			"hidden_size":             i64(a.Hidden),
			"initial_context_length":  int64(4096),
			"initializer_range":       0.02,
			"intermediate_size":       i64(a.Intermediate),
			"layer_types":             LayerTypes(a.Layers),
			"max_position_embeddings": int64(131072),
			"model_type":              "gpt_oss",
			"num_attention_heads":     i64(a.Heads),
			"num_experts_per_tok":     i64(a.ExpertsPerTok),
			"num_hidden_layers":       i64(a.Layers),
			"num_key_value_heads":     i64(a.KVHeads),
			"num_local_experts":       i64(a.Experts),
			"output_router_logits":    false,
			"pad_token_id":            int64(199999),
			"rms_norm_eps":            1e-05,
			"rope_scaling": map[string]any{
				"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0,
				"original_max_position_embeddings": int64(4096), "rope_type": "yarn", "truncate": false,
			},
			"rope_theta":           int64(150000),
			"router_aux_loss_coef": 0.9,
			"sliding_window":       window(a.SlidingWindow),
			"swiglu_limit":         7.0,
			"tie_word_embeddings":  a.TieEmbeddings,
			"transformers_version": "4.55.0.dev0",
			"use_cache":            true,
			"vocab_size":           i64(a.Vocab),
		}
		if a.MXFP4 {
			c["quantization_config"] = map[string]any{
				"modules_to_not_convert": []any{"model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"},
				"quant_method":           "mxfp4",
			}
		}
	case Llama, MTPLlama, DiffusionLlama:
		c = map[string]any{
			"architectures":           []any{"LlamaForCausalLM"},
			"attention_bias":          a.AttentionBias,
			"attention_dropout":       0.0,
			"bos_token_id":            int64(128000),
			"eos_token_id":            int64(128001),
			"head_dim":                i64(a.HeadDim),
			"hidden_act":              "silu",
			"hidden_size":             i64(a.Hidden),
			"initializer_range":       0.02,
			"intermediate_size":       i64(a.Intermediate),
			"max_position_embeddings": int64(8192),
			"mlp_bias":                a.MLPBias,
			"model_type":              "llama",
			"num_attention_heads":     i64(a.Heads),
			"num_hidden_layers":       i64(a.Layers),
			"num_key_value_heads":     i64(a.KVHeads),
			"pretraining_tp":          int64(1),
			"rms_norm_eps":            1e-05,
			"rope_scaling":            nil,
			"rope_theta":              500000.0,
			"tie_word_embeddings":     a.TieEmbeddings,
			"torch_dtype":             "bfloat16",
			"transformers_version":    "4.46.0",
			"use_cache":               true,
			"vocab_size":              i64(a.Vocab),
		}
		switch a.Family {
		case MTPLlama:
			c["architectures"] = []any{"MTPLlamaForCausalLM"}
			c["model_type"] = "mtp_llama"
			c["prediction_heads"] = i64(a.PredictionHeads)
		case DiffusionLlama:
			c["architectures"] = []any{"DiffusionLlamaModel"}
			c["model_type"] = "diffusion_llama"
		}
	case Mistral, Mixtral, Llava:
		c = map[string]any{
			"architectures":           []any{"MistralForCausalLM"},
			"attention_dropout":       0.0,
			"bos_token_id":            int64(1),
			"eos_token_id":            int64(2),
			"head_dim":                i64(a.HeadDim),
			"hidden_act":              "silu",
			"hidden_size":             i64(a.Hidden),
			"initializer_range":       0.02,
			"intermediate_size":       i64(a.Intermediate),
			"max_position_embeddings": int64(32768),
			"model_type":              "mistral",
			"num_attention_heads":     i64(a.Heads),
			"num_hidden_layers":       i64(a.Layers),
			"num_key_value_heads":     i64(a.KVHeads),
			"rms_norm_eps":            1e-05,
			"rope_theta":              10000.0,
			"sliding_window":          window(a.SlidingWindow),
			"tie_word_embeddings":     a.TieEmbeddings,
			"torch_dtype":             "bfloat16",
			"transformers_version":    "4.46.0",
			"use_cache":               true,
			"vocab_size":              i64(a.Vocab),
		}
		if a.Family == Mixtral {
			c["architectures"] = []any{"MixtralForCausalLM"}
			c["model_type"] = "mixtral"
			c["rope_theta"] = 1000000.0
			c["num_local_experts"] = i64(a.Experts)
			c["num_experts_per_tok"] = i64(a.ExpertsPerTok)
			c["output_router_logits"] = false
			c["router_aux_loss_coef"] = 0.02
			c["router_jitter_noise"] = 0.0
		}
	case Qwen2, Dream:
		c = map[string]any{
			"architectures":           []any{"Qwen2ForCausalLM"},
			"attention_dropout":       0.0,
			"bos_token_id":            int64(151643),
			"eos_token_id":            int64(151645),
			"hidden_act":              "silu",
			"hidden_size":             i64(a.Hidden),
			"initializer_range":       0.02,
			"intermediate_size":       i64(a.Intermediate),
			"max_position_embeddings": int64(32768),
			"max_window_layers":       i64(a.Layers),
			"model_type":              "qwen2",
			"num_attention_heads":     i64(a.Heads),
			"num_hidden_layers":       i64(a.Layers),
			"num_key_value_heads":     i64(a.KVHeads),
			"rms_norm_eps":            1e-06,
			"rope_scaling":            nil,
			"rope_theta":              1000000.0,
			"sliding_window":          window(a.SlidingWindow),
			"tie_word_embeddings":     a.TieEmbeddings,
			"torch_dtype":             "bfloat16",
			"transformers_version":    "4.43.1",
			"use_cache":               true,
			"use_sliding_window":      false,
			"vocab_size":              i64(a.Vocab),
		}
		if a.Family == Dream {
			c["architectures"] = []any{"DreamModel"}
			c["model_type"] = "dream"
		}
	case Qwen3, Qwen3MoE: // Qwen/Qwen3-8B's keys, Qwen/Qwen3-30B-A3B's for MoE
		c = map[string]any{
			"architectures":           []any{"Qwen3ForCausalLM"},
			"attention_bias":          a.AttentionBias,
			"attention_dropout":       0.0,
			"bos_token_id":            int64(151643),
			"eos_token_id":            int64(151645),
			"head_dim":                i64(a.HeadDim),
			"hidden_act":              "silu",
			"hidden_size":             i64(a.Hidden),
			"initializer_range":       0.02,
			"intermediate_size":       i64(a.Intermediate),
			"max_position_embeddings": int64(40960),
			"max_window_layers":       i64(a.Layers),
			"model_type":              "qwen3",
			"num_attention_heads":     i64(a.Heads),
			"num_hidden_layers":       i64(a.Layers),
			"num_key_value_heads":     i64(a.KVHeads),
			"rms_norm_eps":            1e-06,
			"rope_scaling":            nil,
			"rope_theta":              int64(1000000),
			"sliding_window":          nil,
			"tie_word_embeddings":     a.TieEmbeddings,
			"torch_dtype":             "bfloat16",
			"transformers_version":    "4.51.0",
			"use_cache":               true,
			"use_sliding_window":      false,
			"vocab_size":              i64(a.Vocab),
		}
		if a.Family == Qwen3MoE {
			c["architectures"] = []any{"Qwen3MoeForCausalLM"}
			c["model_type"] = "qwen3_moe"
			c["intermediate_size"] = i64(8 * a.Intermediate)
			c["moe_intermediate_size"] = i64(a.Intermediate)
			c["decoder_sparse_step"] = int64(1)
			c["mlp_only_layers"] = []any{}
			c["norm_topk_prob"] = true
			c["num_experts"] = i64(a.Experts)
			c["num_experts_per_tok"] = i64(a.ExpertsPerTok)
			c["output_router_logits"] = false
			c["router_aux_loss_coef"] = 0.001
			c["rope_theta"] = 1000000.0
		}
	case Phi3: // microsoft/Phi-3-mini-4k-instruct's keys
		c = map[string]any{
			"_name_or_path":     "Phi-3-mini-4k-instruct",
			"architectures":     []any{"Phi3ForCausalLM"},
			"attention_dropout": 0.0,
			"auto_map": map[string]any{
				"AutoConfig":           "configuration_phi3.Phi3Config",
				"AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM",
			},
			"bos_token_id":                     int64(1),
			"embd_pdrop":                       0.0,
			"eos_token_id":                     int64(32000),
			"hidden_act":                       "silu",
			"hidden_size":                      i64(a.Hidden),
			"initializer_range":                0.02,
			"intermediate_size":                i64(a.Intermediate),
			"max_position_embeddings":          int64(4096),
			"model_type":                       "phi3",
			"num_attention_heads":              i64(a.Heads),
			"num_hidden_layers":                i64(a.Layers),
			"num_key_value_heads":              i64(a.KVHeads),
			"original_max_position_embeddings": int64(4096),
			"pad_token_id":                     int64(32000),
			"resid_pdrop":                      0.0,
			"rms_norm_eps":                     1e-05,
			"rope_scaling":                     nil,
			"rope_theta":                       10000.0,
			"sliding_window":                   window(a.SlidingWindow),
			"tie_word_embeddings":              a.TieEmbeddings,
			"torch_dtype":                      "bfloat16",
			"transformers_version":             "4.39.3",
			"use_cache":                        true,
			"vocab_size":                       i64(a.Vocab),
		}
	case Apriel2Text, Apriel2Multimodal:
		c = apriel2Config(a)
	case AprielHybridSSM, LlavaHybrid: // what Fast-LLM's exporter writes (its reference data's hf_config.json)
		c = map[string]any{
			"architectures":     []any{"AprielHybridSSMForCausalLM"},
			"attention_dropout": 0.0,
			"auto_map": map[string]any{
				"AutoConfig":           "configuration_apriel_hybrid_ssm.AprielHybridSSMConfig",
				"AutoModel":            "modeling_apriel_hybrid_ssm.AprielHybridSSMModel",
				"AutoModelForCausalLM": "modeling_apriel_hybrid_ssm.AprielHybridSSMForCausalLM",
			},
			"head_dim":            i64(a.HeadDim),
			"hidden_act":          "silu",
			"hidden_size":         i64(a.Hidden),
			"hybrid_block_layout": layout(a.Layout),
			"intermediate_size":   i64(a.Intermediate),
			"model_type":          "apriel_hybrid_ssm",
			"num_attention_heads": i64(a.Heads),
			"num_hidden_layers":   i64(a.Layers),
			"num_key_value_heads": i64(a.KVHeads),
			"rms_norm_eps":        1e-05,
			"rope_theta":          10000.0,
			"sliding_window":      window(a.SlidingWindow),
			"ssm_cfg":             ssmConfig(a.Mamba),
			"tie_word_embeddings": a.TieEmbeddings,
			"vocab_size":          i64(a.Vocab),
		}
		if g := a.GDN; g != (GDN{}) {
			c["linear_attn_config"] = map[string]any{"gdn_num_value_heads": i64(g.ValueHeads), "gdn_num_key_heads": i64(g.KeyHeads),
				"gdn_key_head_dim": i64(g.KeyHeadDim), "gdn_value_head_dim": i64(g.ValueHeadDim), "gdn_linear_conv_kernel_size": i64(g.Kernel)}
		}
	}
	if a.Family == Llava {
		c = llavaConfig(a, c)
	}
	if a.Family == LlavaHybrid {
		c = llavaHybridConfig(a, c)
	}
	if a.Family == Gemma4 {
		c = gemma4Config(a)
	}
	rope(c, a.Rope)
	maps.Copy(c, a.Overrides)
	for _, k := range a.Remove {
		delete(c, k)
	}
	return c, nil
}

// GenerationConfig is the generation_config.json content of a.
func GenerationConfig(a Arch) map[string]any {
	c, _ := Config(a)
	g := map[string]any{"transformers_version": c["transformers_version"]}
	switch a.Family {
	case GPTOSS: // as published for gpt-oss-20b
		g["bos_token_id"] = int64(199998)
		g["do_sample"] = true
		g["eos_token_id"] = []any{int64(200002), int64(199999), int64(200012)}
		g["pad_token_id"] = int64(199999)
	case Phi3: // as published for Phi-3-mini-4k-instruct
		g["_from_model_config"] = true
		g["bos_token_id"] = int64(1)
		g["eos_token_id"] = []any{int64(32000), int64(32001), int64(32007)}
		g["pad_token_id"] = int64(32000)
	default:
		g["_from_model_config"] = true
		g["bos_token_id"] = c["bos_token_id"]
		g["eos_token_id"] = c["eos_token_id"]
	}
	// What the config does not state (apriel_hybrid_ssm's has no token ids
	// and no transformers_version), the generation config does not either.
	maps.DeleteFunc(g, func(_ string, v any) bool { return v == nil })
	return g
}

// rope writes the rotary embedding in the form r asks for: Llama 3.1's
// llama3 scaling, Qwen2.5's yarn, and transformers v5's rope_parameters.
func rope(c map[string]any, r Rope) {
	switch r.Type {
	case "llama3": // as Llama-3.1-8B publishes it
		c["rope_scaling"] = map[string]any{"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
			"original_max_position_embeddings": int64(8192), "rope_type": "llama3"}
	case "yarn": // as Qwen2.5's model cards say to add it
		c["rope_scaling"] = map[string]any{"factor": 4.0, "original_max_position_embeddings": int64(32768), "rope_type": "yarn"}
	}
	if r.Legacy {
		rs := c["rope_scaling"].(map[string]any)
		rs["type"] = rs["rope_type"]
		delete(rs, "rope_type")
	}
	if !r.V5 {
		return
	}
	params := map[string]any{"rope_theta": c["rope_theta"], "rope_type": "default"}
	if rs, ok := c["rope_scaling"].(map[string]any); ok {
		maps.Copy(params, rs)
	}
	c["rope_parameters"] = params
	delete(c, "rope_theta")
	delete(c, "rope_scaling")
	if d, ok := c["torch_dtype"]; ok {
		c["dtype"] = d
		delete(c, "torch_dtype")
	}
	c["transformers_version"] = "5.0.0"
}

// llavaConfig is the config.json of a llava model whose text model's
// config is text (Mistral's): the keys Fast-LLM's llava exporter writes,
// with the text config's model_type and max_position_embeddings, which
// transformers needs and Fast-LLM's exporter leaves out.
func llavaConfig(a Arch, text map[string]any) map[string]any {
	tc := map[string]any{}
	for _, k := range []string{"attention_dropout", "head_dim", "hidden_act", "hidden_size", "intermediate_size",
		"max_position_embeddings", "model_type", "num_attention_heads", "num_hidden_layers", "num_key_value_heads",
		"rms_norm_eps", "rope_theta", "sliding_window", "tie_word_embeddings", "vocab_size"} {
		tc[k] = text[k]
	}
	tc["rope_theta"], tc["max_position_embeddings"] = 1000000.0, int64(4096)
	v := a.Vision
	return map[string]any{
		"architectures":             []any{"LlavaForConditionalGeneration"},
		"image_token_index":         int64(10),
		"model_type":                "llava",
		"multimodal_projector_bias": true,
		"projector_hidden_act":      "gelu",
		"text_config":               tc,
		"vision_config": map[string]any{
			"attention_dropout":   0.0,
			"hidden_act":          "silu",
			"hidden_size":         i64(v.Hidden),
			"intermediate_size":   i64(v.Intermediate),
			"model_type":          "pixtral",
			"num_attention_heads": i64(v.Heads),
			"num_channels":        int64(3),
			"num_hidden_layers":   i64(v.Layers),
			"patch_size":          i64(v.PatchSize),
			"rope_theta":          10000.0,
		},
		"vision_feature_layer":           int64(-1),
		"vision_feature_select_strategy": "full",
	}
}

// llavaHybridConfig is the config.json of a llava_hybrid model whose text
// model's config is text (apriel_hybrid_ssm's): llava's, with the text
// config LlavaHybridConfig reads as its hybrid one (model_type
// apriel_ssm_thinker_hybrid) and the architecture, model_type and auto_map
// LlavaHybridConfig saves.
func llavaHybridConfig(a Arch, text map[string]any) map[string]any {
	tc := maps.Clone(text)
	for _, k := range []string{"architectures", "auto_map"} {
		delete(tc, k)
	}
	tc["model_type"] = "apriel_ssm_thinker_hybrid"
	tc["rope_theta"], tc["max_position_embeddings"] = 1000000.0, int64(4096)
	c := llavaConfig(a, tc)
	c["text_config"] = tc
	c["architectures"] = []any{"LlavaHybridForConditionalGeneration"}
	c["model_type"] = "llava_hybrid"
	c["auto_map"] = map[string]any{
		"AutoConfig":                  "configuration_llava_hybrid.LlavaHybridConfig",
		"AutoModel":                   "modeling_llava_hybrid.LlavaHybridModel",
		"AutoModelForCausalLM":        "modeling_llava_hybrid.LlavaHybridForConditionalGeneration",
		"AutoModelForImageTextToText": "modeling_llava_hybrid.LlavaHybridForConditionalGeneration",
		"AutoModelForVision2Seq":      "modeling_llava_hybrid.LlavaHybridForConditionalGeneration",
	}
	return c
}

// gemma4Config is the config.json of a Gemma4ForCausalLM: the keys and
// constants of google/gemma-4-26B-A4B's text_config (transformers
// 5.5.0.dev0; testdata/hub), which is what Gemma4TextConfig saves, with
// the sizes of a and its architecture. The MoE keys are null for a dense
// model, as Gemma4TextConfig's defaults.
func gemma4Config(a Arch) map[string]any {
	moe := a.Experts > 0
	c := map[string]any{
		"architectures":               []any{"Gemma4ForCausalLM"},
		"attention_bias":              false,
		"attention_dropout":           0.0,
		"attention_k_eq_v":            a.SharedKV,
		"bos_token_id":                int64(2),
		"dtype":                       "bfloat16",
		"enable_moe_block":            moe,
		"eos_token_id":                int64(1),
		"final_logit_softcapping":     30.0,
		"global_head_dim":             i64(a.GlobalHeadDim),
		"head_dim":                    i64(a.HeadDim),
		"hidden_activation":           "gelu_pytorch_tanh",
		"hidden_size":                 i64(a.Hidden),
		"hidden_size_per_layer_input": int64(0),
		"initializer_range":           0.02,
		"intermediate_size":           i64(a.Intermediate),
		"layer_types":                 Gemma4LayerTypes(a.Layers),
		"max_position_embeddings":     int64(262144),
		"model_type":                  "gemma4_text",
		"moe_intermediate_size":       orNull(a.ExpertIntermediate),
		"num_attention_heads":         i64(a.Heads),
		"num_experts":                 orNull(a.Experts),
		"num_global_key_value_heads":  orNull(a.GlobalKVHeads),
		"num_hidden_layers":           i64(a.Layers),
		"num_key_value_heads":         i64(a.KVHeads),
		"num_kv_shared_layers":        int64(0),
		"pad_token_id":                int64(0),
		"rms_norm_eps":                1e-06,
		"rope_parameters": map[string]any{
			"full_attention":    map[string]any{"partial_rotary_factor": 0.25, "rope_theta": 1000000.0, "rope_type": "proportional"},
			"sliding_attention": map[string]any{"rope_theta": 10000.0, "rope_type": "default"},
		},
		"sliding_window":              window(a.SlidingWindow),
		"tie_word_embeddings":         a.TieEmbeddings,
		"top_k_experts":               nil,
		"transformers_version":        "5.5.0.dev0",
		"use_bidirectional_attention": "vision",
		"use_cache":                   true,
		"use_double_wide_mlp":         false,
		"vocab_size":                  i64(a.Vocab),
		"vocab_size_per_layer_input":  int64(262144),
	}
	if moe {
		c["top_k_experts"] = i64(a.ExpertsPerTok)
	}
	return c
}
