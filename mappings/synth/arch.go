// Package synth writes deterministic synthetic checkpoints in the exact
// on-disk Hugging Face format, for tests, demos and benchmarks: the same
// (Arch, seed, Options) always gives byte-identical files.
//
// A checkpoint is config.json exactly as transformers writes it (Python's
// json.dumps with indent 2 and sorted keys, plus a newline), the tensors
// under their Hugging Face names, shapes and dtypes in model.safetensors or
// save_pretrained shards with an index, and two side files,
// generation_config.json and a small tokenizer.json.
//
// Families and their small defaults (every size is an Arch field, so a
// benchmark can ask for real widths):
//
//   - gpt_oss ([TinyGPTOSS], MXFP4 experts; [TinyGPTOSSDense], dequantized
//     BF16 experts): hidden 64, intermediate 64, 2 layers, 4 heads of 16, 2
//     key/value heads, 4 experts (top 2), vocab 128, sliding window 128.
//     The config has every key of openai/gpt-oss-20b's with the sizes
//     replaced: layer_types alternate sliding/full from layer 0 (sliding),
//     and quantization_config appears only in the MXFP4 variant.
//     [GPTOSS20B] gives the real widths (hidden and intermediate 2880, 32
//     experts, 64 heads of 64, 8 key/value heads) for any layer count and
//     vocabulary; with 24 layers and vocab 201088 its config.json is the
//     published file byte for byte.
//   - llama ([TinyLlama]): hidden 64, intermediate 128, 2 layers, 4 heads of
//     16, 2 key/value heads, vocab 128, no biases, untied embeddings, Llama 3
//     values (rope_theta 500000.0, rms_norm_eps 1e-05, rope_scaling null).
//     [Llama3_8B] gives Llama-3-8B's widths (4096, 14336, 32 heads, 8 kv).
//   - mistral ([TinyMistral]): Llama's sizes, no biases, sliding_window 4096
//     (0 writes null), rope_theta 10000.0.
//   - mixtral ([TinyMixtral]): Mistral's attention, 4 experts (top 2) with
//     per-expert w1/w2/w3, sliding_window null, rope_theta 1000000.0.
//   - qwen2 ([TinyQwen2]): Llama's sizes with q/k/v biases, rms_norm_eps
//     1e-06, use_sliding_window false, max_window_layers = layers.
//   - qwen3 ([TinyQwen3]): Llama's sizes with per-head q_norm/k_norm, the
//     keys of Qwen/Qwen3-8B's config (rope_theta the integer 1000000,
//     sliding_window null). [Qwen3_8B] gives its widths.
//   - qwen3_moe ([TinyQwen3MoE]): Qwen3's attention, 4 experts (top 2) of
//     width 32 in every layer, the keys of Qwen/Qwen3-30B-A3B's config
//     (intermediate_size, the unused dense width, is eight times the
//     expert width, as there). [Qwen3_30B_A3B] gives its widths.
//   - phi3 ([TinyPhi3]): Llama's sizes with fused qkv_proj and
//     gate_up_proj, the keys of microsoft/Phi-3-mini-4k-instruct's config
//     (auto_map, _name_or_path, sliding_window 2047). [Phi3Mini] gives its
//     widths.
//   - mtp_llama ([TinyMTPLlama]): Llama with 2 prediction heads
//     (model.mtp_heads.0, model.mtp_norms.0-1, no model.norm): the config
//     of Fast-LLM's reference data (synth llama's with another
//     architecture and prediction_heads).
//   - diffusion_llama ([TinyDiffusionLlama]) and dream ([TinyDream]):
//     llama's and qwen2's checkpoints under DiffusionLlamaModel and
//     DreamModel, as in Fast-LLM's reference data.
//   - apriel_hybrid_ssm ([TinyAprielHybridSSM]): Apriel's hybrid of
//     Mistral attention layers ("t") and Mamba 2 layers ("m2") by
//     Arch.Layout (or gated DeltaNet layers, "gdn", which Fast-LLM's
//     converter reads and the HF model does not have, sized by Arch.GDN),
//     with the Mamba sizes of Arch.Mamba: hidden 256, 2 layers
//     [t, m2], 8 heads of 32, 4 key/value heads, d_state 8, d_inner 512,
//     dt_rank 16, no biases. Its config.json is the one Fast-LLM's
//     reference data was converted from (Fast-LLM's exporter's keys only:
//     no token ids, no transformers_version).
//   - apriel2_text ([TinyApriel2Text]): Apriel2's text model, its layers
//     sized by Arch.Apriel2 (Fast-LLM's block tree as the HF config states
//     it: a fixed decoder or named blocks in a pattern, each with an
//     attention, Mamba, gated DeltaNet or Kimi delta attention mixer, an
//     MLP and a norm; absent keys take modeling_apriel2.py's defaults).
//     The tiny one is Fast-LLM's reference model: hidden 256, 4 layers
//     [attn_full, attn_swa, gdn, kda], vocab 384, tied; its config.json is
//     the one the reference data was converted from.
//   - apriel2 ([TinyApriel2]): Apriel2's multimodal model
//     (Apriel2ForConditionalGeneration): apriel2_text's text model and a
//     vision encoder, Arch.Apriel2.Vision (the config's vision_encoder
//     section: patch embeddings, a fixed encoder of blocks at its own width
//     sized as the text blocks are, an adapter with biases) under
//     model.vision_encoder. The tiny one is Fast-LLM's reference model:
//     hidden 256, 2 attention layers, vocab 386, untied; vision width 128,
//     2 blocks of 4 heads of 32 with 2 key/value heads, MLP 512, patch 4,
//     adapter 384; its config.json is the one the reference data was
//     converted from.
//   - llava ([TinyLlava]): LlavaForConditionalGeneration with Mistral's
//     text model (its sizes; rope_theta 1000000.0, sliding_window null, as
//     mistral-community/pixtral-12b) under text_config and language_model.,
//     and a Pixtral vision tower under vision_config and vision_tower. sized
//     by Arch.Vision (hidden 32, intermediate 64, 2 layers, 2 heads, patch
//     4), with a biased projector (multi_modal_projector). Its config.json
//     is the one Fast-LLM's reference data was converted from.
//   - llava_hybrid ([TinyLlavaHybrid]): llava with apriel_hybrid_ssm's text
//     model (LlavaHybridForConditionalGeneration): its layers by Arch.Layout
//     (tiny: [t, m2], Mamba d_state 16, d_inner 128, d_xb 32, dt_rank 4,
//     biased convolution and dt_proj) at llava's text widths, under
//     text_config (model_type apriel_ssm_thinker_hybrid) and
//     language_model.model., except the final norm and lm_head, which are
//     model.norm.weight and lm_head.weight: the names Fast-LLM's
//     llava_hybrid converter reads (see mappings/llava_hybrid.map).
//   - gemma4 ([TinyGemma4]): Gemma4ForCausalLM, the text model of Gemma 4,
//     with the widths of Fast-LLM's gemma4 test model (hidden 256, dense
//     MLP 1024, 2 layers, 8 heads of 32, 4 key/value heads, 4 experts of
//     width 256, top 2, vocab 384, tied embeddings) and the keys of
//     google/gemma-4-26B-A4B's text_config (transformers 5.5): layer_types
//     as transformers fills them in (every sixth layer and the last one
//     full_attention), rope_parameters per layer type, MoE keys null for a
//     dense model (Experts 0). Full-attention layers have heads of
//     GlobalHeadDim and, with SharedKV (attention_k_eq_v), GlobalKVHeads
//     key heads and no v_proj. [Gemma4_26B_A4B] gives that model's widths.
//
// Data comes from a PCG generator seeded per tensor from (seed, tensor
// name), so tensors are generated in parallel and still reproducibly.
// Floating tensors are BF16 values of a bell-shaped (Irwin-Hall, four
// uniform bytes) distribution, rounded to nearest even: weights and biases
// with standard deviation 0.02, norm weights around 1.0. MXFP4 scales lie in
// 118..124 and the block codes have random signs and magnitudes skewed to
// the small ones, so that, as in real checkpoints, some groups (about one in
// eight) have no magnitude above 3 and re-encode under a smaller scale: the
// same values, other bytes. With Options.ByteExactMXFP4 every group of 32
// values holds a magnitude-6 code, so MXFP4 decode then the reference encode
// gives back the very same bytes.
package synth

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Family is a model family, named as its .map file is.
type Family string

// The families synth can write.
const (
	GPTOSS  Family = "gpt_oss"
	Llama   Family = "llama"
	Mistral Family = "mistral"
	Mixtral Family = "mixtral"
	Qwen2   Family = "qwen2"
	Qwen3   Family = "qwen3"
	// Qwen3MoE is Qwen3-MoE.
	Qwen3MoE       Family = "qwen3_moe"
	Phi3           Family = "phi3"
	MTPLlama       Family = "mtp_llama"
	DiffusionLlama Family = "diffusion_llama"
	Dream          Family = "dream"
	// AprielHybridSSM is Apriel's hybrid of attention and Mamba 2 layers.
	AprielHybridSSM Family = "apriel_hybrid_ssm"
	// Apriel2Text is Apriel2's text model: Fast-LLM's block tree.
	Apriel2Text Family = "apriel2_text"
	// Apriel2Multimodal is Apriel2's multimodal model: the text model and
	// a vision encoder.
	Apriel2Multimodal Family = "apriel2"
	// Llava is Llava with a Pixtral vision tower and a Mistral text model.
	Llava Family = "llava"
	// LlavaHybrid is Llava with apriel_hybrid_ssm's text model.
	LlavaHybrid Family = "llava_hybrid"
	Gemma4      Family = "gemma4"
)

// allFamilies lists every Family.
var allFamilies = []Family{GPTOSS, Llama, Mistral, Mixtral, Qwen2, Qwen3, Qwen3MoE, Phi3, MTPLlama, DiffusionLlama, Dream,
	AprielHybridSSM, Llava, LlavaHybrid, Gemma4, Apriel2Text, Apriel2Multimodal}

// Arch describes a synthetic model: its family and every size.
type Arch struct {
	Family       Family
	Hidden       int // hidden_size
	Intermediate int // intermediate_size (per expert for MoE families)
	Layers       int // num_hidden_layers
	Heads        int // num_attention_heads
	KVHeads      int // num_key_value_heads
	HeadDim      int // head_dim
	Vocab        int // vocab_size
	// Experts and ExpertsPerTok size the MoE families (gpt_oss, mixtral).
	Experts       int
	ExpertsPerTok int
	// MXFP4 selects GPT-OSS's quantized expert layout (else dense BF16).
	MXFP4         bool
	TieEmbeddings bool // tie_word_embeddings: no lm_head.weight
	// AttentionBias and MLPBias are Llama's attention_bias and mlp_bias
	// (GPT-OSS always has attention biases, Qwen2 always q/k/v biases;
	// Qwen3 has attention_bias only, Phi-3 neither).
	AttentionBias bool
	MLPBias       bool
	// PredictionHeads is MTP-Llama's prediction_heads (1: the model's own
	// head only).
	PredictionHeads int
	// Gemma 4: the full-attention layers' head_dim (global_head_dim) and,
	// with SharedKV (attention_k_eq_v: keys are the values), their
	// key/value heads (num_global_key_value_heads; 0 writes null); the
	// experts' width (moe_intermediate_size; Intermediate is the dense
	// MLP's, which every layer has).
	GlobalHeadDim      int
	GlobalKVHeads      int
	SharedKV           bool
	ExpertIntermediate int
	// SlidingWindow is the config's sliding_window (gpt_oss, mistral,
	// mixtral, qwen2); 0 writes null.
	SlidingWindow int
	// Float is the dtype of the weights and norms (Invalid: BF16). Generate
	// writes BF16 only; a Skeleton, which writes no data, any float dtype.
	Float tensor.DType
	// Rope chooses how the config states the rotary embedding.
	Rope Rope
	// RotaryBuffers adds each layer's self_attn.rotary_emb.inv_freq, the
	// F32 buffer older transformers saved with a Llama (Llama-2's published
	// checkpoints hold them); llama only.
	RotaryBuffers bool
	// Layout is apriel_hybrid_ssm's hybrid_block_layout: per layer "t"
	// (attention), "m2" (Mamba 2) or "gdn" (gated DeltaNet); one entry per
	// layer.
	Layout []string
	// Mamba sizes apriel_hybrid_ssm's Mamba 2 layers (its ssm_cfg).
	Mamba Mamba
	// GDN sizes its gated DeltaNet layers (linear_attn_config's gdn_ keys,
	// written when set).
	GDN GDN
	// Apriel2 is apriel2_text's and apriel2's decoder, which sizes its
	// layers (the Heads, Intermediate, ... fields are unused there), and
	// apriel2's vision encoder.
	Apriel2 *Apriel2
	// Vision sizes llava's vision tower.
	Vision Vision
	// Overrides replaces top-level config.json keys after generation (a nil
	// value writes null); Remove deletes keys.
	Overrides map[string]any
	Remove    []string
}

// Mamba is the ssm_cfg of an apriel_hybrid_ssm config: the sizes and
// biases of its Mamba 2 mixers (modeling_apriel_hybrid_ssm.py's Mamba2).
type Mamba struct {
	State int // d_state
	Inner int // d_inner
	// XB is d_xb, the width of x and B before they are repeated over the
	// heads; 0 leaves the key out (the hidden size).
	XB int
	// DTRank is dt_rank; 0 writes "auto" (ceil(hidden / 16)).
	DTRank int
	// Expand is ssm_cfg.expand; 0 leaves the key out.
	Expand int
	// Bias is ssm_cfg.bias (in_proj, dt_in_proj and out_proj biases);
	// ConvBias conv_bias, DTProjBias dt_proj_bias.
	Bias, ConvBias, DTProjBias bool
	// ConvOnXB is repeat_kv_before_conv false: the convolution runs over
	// the d_xb channels of x before they are repeated (else over d_inner).
	ConvOnXB bool
}

// GDN is the gated DeltaNet of an apriel_hybrid_ssm config
// (linear_attn_config's gdn_num_value_heads, gdn_num_key_heads,
// gdn_key_head_dim, gdn_value_head_dim, gdn_linear_conv_kernel_size).
type GDN struct {
	ValueHeads, KeyHeads, KeyHeadDim, ValueHeadDim, Kernel int
}

// Vision is the vision tower of a llava model (its vision_config): a
// Pixtral encoder of Layers blocks of width Hidden, Heads heads of
// Hidden / Heads, an MLP of width Intermediate, and square patches of
// PatchSize pixels over 3 channels.
type Vision struct {
	Hidden, Intermediate, Layers, Heads, PatchSize int
}

// xb is d_xb as the model takes it.
func (a Arch) xb() int {
	if a.Mamba.XB == 0 {
		return a.Hidden
	}
	return a.Mamba.XB
}

// dtRank is dt_rank as the model takes it: "auto" is ceil(hidden / 16).
func (a Arch) dtRank() int {
	if a.Mamba.DTRank == 0 {
		return (a.Hidden + 15) / 16
	}
	return a.Mamba.DTRank
}

// convChannels is the width of the Mamba convolution.
func (a Arch) convChannels() int {
	if a.Mamba.ConvOnXB {
		return a.xb()
	}
	return a.Mamba.Inner
}

// Rope is the rotary embedding a config states, in the forms published
// configs use.
type Rope struct {
	// Type is "" (the family's own: default rotary, GPT-OSS's yarn),
	// "llama3" (Llama 3.1's rope_scaling) or "yarn" (Qwen2.5's
	// long-context one); the last two for the Llama-family only.
	Type string
	// Legacy spells rope_type as type, as older files do (Qwen2.5's yarn).
	Legacy bool
	// V5 writes the config as transformers v5 saves it: rope_parameters
	// (theta inside) instead of rope_theta and rope_scaling, and dtype
	// instead of torch_dtype.
	V5 bool
}

// TinyGPTOSS is a small GPT-OSS with MXFP4 experts.
func TinyGPTOSS() Arch {
	return Arch{Family: GPTOSS, Hidden: 64, Intermediate: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16,
		Vocab: 128, Experts: 4, ExpertsPerTok: 2, MXFP4: true, SlidingWindow: 128}
}

// TinyGPTOSSDense is TinyGPTOSS with dequantized BF16 experts.
func TinyGPTOSSDense() Arch {
	a := TinyGPTOSS()
	a.MXFP4 = false
	return a
}

// GPTOSS20B has gpt-oss-20b's widths with the given layer count and
// vocabulary (24 and 201088 for the real model).
func GPTOSS20B(layers, vocab int) Arch {
	return Arch{Family: GPTOSS, Hidden: 2880, Intermediate: 2880, Layers: layers, Heads: 64, KVHeads: 8, HeadDim: 64,
		Vocab: vocab, Experts: 32, ExpertsPerTok: 4, MXFP4: true, SlidingWindow: 128}
}

// TinyLlama is a small Llama (Llama 3 style config).
func TinyLlama() Arch {
	return Arch{Family: Llama, Hidden: 64, Intermediate: 128, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 128}
}

// Llama3_8B has Llama-3-8B's widths with the given layer count and
// vocabulary (32 and 128256 for the real model).
func Llama3_8B(layers, vocab int) Arch {
	return Arch{Family: Llama, Hidden: 4096, Intermediate: 14336, Layers: layers, Heads: 32, KVHeads: 8, HeadDim: 128, Vocab: vocab}
}

// TinyMistral is a small Mistral with a 4096-token sliding window.
func TinyMistral() Arch {
	a := TinyLlama()
	a.Family, a.SlidingWindow = Mistral, 4096
	return a
}

// TinyMixtral is a small Mixtral with 4 experts, top 2.
func TinyMixtral() Arch {
	a := TinyLlama()
	a.Family, a.Experts, a.ExpertsPerTok = Mixtral, 4, 2
	return a
}

// TinyQwen2 is a small Qwen2.
func TinyQwen2() Arch {
	a := TinyLlama()
	a.Family, a.SlidingWindow = Qwen2, 32768
	return a
}

// TinyQwen3 is a small Qwen3.
func TinyQwen3() Arch {
	a := TinyLlama()
	a.Family = Qwen3
	return a
}

// Qwen3_8B has Qwen3-8B's widths with the given layer count and vocabulary
// (36 and 151936 for the real model).
func Qwen3_8B(layers, vocab int) Arch {
	return Arch{Family: Qwen3, Hidden: 4096, Intermediate: 12288, Layers: layers, Heads: 32, KVHeads: 8, HeadDim: 128, Vocab: vocab}
}

// TinyQwen3MoE is a small Qwen3-MoE: 4 experts of width 32, top 2.
func TinyQwen3MoE() Arch {
	a := TinyQwen3()
	a.Family, a.Intermediate, a.Experts, a.ExpertsPerTok = Qwen3MoE, 32, 4, 2
	return a
}

// Qwen3_30B_A3B has Qwen3-30B-A3B's widths (128 experts of width 768, top
// 8) with the given layer count and vocabulary (48 and 151936 for the real
// model).
func Qwen3_30B_A3B(layers, vocab int) Arch {
	return Arch{Family: Qwen3MoE, Hidden: 2048, Intermediate: 768, Layers: layers, Heads: 32, KVHeads: 4, HeadDim: 128,
		Vocab: vocab, Experts: 128, ExpertsPerTok: 8}
}

// TinyPhi3 is a small Phi-3 (fused projections, a 2047-token window).
func TinyPhi3() Arch {
	a := TinyLlama()
	a.Family, a.SlidingWindow = Phi3, 2047
	return a
}

// Phi3Mini has Phi-3-mini's widths with the given layer count and
// vocabulary (32 and 32064 for the real model).
func Phi3Mini(layers, vocab int) Arch {
	return Arch{Family: Phi3, Hidden: 3072, Intermediate: 8192, Layers: layers, Heads: 32, KVHeads: 32, HeadDim: 96,
		Vocab: vocab, SlidingWindow: 2047}
}

// TinyMTPLlama is a small MTP-Llama with 2 prediction heads.
func TinyMTPLlama() Arch {
	a := TinyLlama()
	a.Family, a.PredictionHeads = MTPLlama, 2
	return a
}

// TinyDiffusionLlama is a small Diffusion-Llama.
func TinyDiffusionLlama() Arch {
	a := TinyLlama()
	a.Family = DiffusionLlama
	return a
}

// TinyDream is a small Dream.
func TinyDream() Arch {
	a := TinyQwen2()
	a.Family = Dream
	return a
}

// TinyAprielHybridSSM is Fast-LLM's reference apriel_hybrid_ssm model:
// its `llama` test model's widths with a Mamba layer after the attention
// one (the Mamba block of its `apriel2_mamba` test model).
func TinyAprielHybridSSM() Arch {
	return Arch{Family: AprielHybridSSM, Hidden: 256, Intermediate: 1024, Layers: 2, Heads: 8, KVHeads: 4, HeadDim: 32,
		Vocab: 384, Layout: []string{"t", "m2"}, Mamba: Mamba{State: 8, Inner: 512, XB: 256, DTRank: 16}}
}

// TinyLlava is the llava model of Fast-LLM's reference data: Mistral's
// small text model and a vision tower half its width.
func TinyLlava() Arch {
	a := TinyMistral()
	a.Family, a.SlidingWindow = Llava, 0
	a.Vision = Vision{Hidden: 32, Intermediate: 64, Layers: 2, Heads: 2, PatchSize: 4}
	return a
}

// TinyLlavaHybrid is TinyLlava with an attention and a Mamba 2 layer (a
// small Mamba with both of its optional biases).
func TinyLlavaHybrid() Arch {
	a := TinyLlava()
	a.Family, a.Layout = LlavaHybrid, []string{"t", "m2"}
	a.Mamba = Mamba{State: 16, Inner: 128, XB: 32, DTRank: 4, ConvBias: true, DTProjBias: true}
	return a
}

// TinyGemma4 is a small Gemma 4 text model with a mixture of experts
// beside the dense MLP, as Fast-LLM's gemma4 test model.
func TinyGemma4() Arch {
	return Arch{Family: Gemma4, Hidden: 256, Intermediate: 1024, Layers: 2, Heads: 8, KVHeads: 4, HeadDim: 32,
		GlobalHeadDim: 32, Vocab: 384, Experts: 4, ExpertsPerTok: 2, ExpertIntermediate: 256, TieEmbeddings: true,
		SlidingWindow: 128}
}

// Gemma4_26B_A4B has the widths of google/gemma-4-26B-A4B's text model
// with the given layer count and vocabulary (30 and 262144 for the real
// model): 128 experts of width 704, top 8, beside a dense MLP of 2112;
// sliding layers with 8 key/value heads of 256, full ones with 2 heads of
// 512 whose keys are the values.
func Gemma4_26B_A4B(layers, vocab int) Arch {
	return Arch{Family: Gemma4, Hidden: 2816, Intermediate: 2112, Layers: layers, Heads: 16, KVHeads: 8, HeadDim: 256,
		GlobalHeadDim: 512, GlobalKVHeads: 2, SharedKV: true, Vocab: vocab, Experts: 128, ExpertsPerTok: 8,
		ExpertIntermediate: 704, TieEmbeddings: true, SlidingWindow: 1024}
}

var named = map[string]func() Arch{
	"llava":             TinyLlava,
	"llava_hybrid":      TinyLlavaHybrid,
	"gpt_oss":           TinyGPTOSS,
	"gpt_oss_dense":     TinyGPTOSSDense,
	"llama":             TinyLlama,
	"mistral":           TinyMistral,
	"mixtral":           TinyMixtral,
	"qwen2":             TinyQwen2,
	"qwen3":             TinyQwen3,
	"qwen3_moe":         TinyQwen3MoE,
	"phi3":              TinyPhi3,
	"mtp_llama":         TinyMTPLlama,
	"diffusion_llama":   TinyDiffusionLlama,
	"dream":             TinyDream,
	"apriel_hybrid_ssm": TinyAprielHybridSSM,
	"apriel2_text":      TinyApriel2Text,
	"apriel2":           TinyApriel2,
	"gemma4":            TinyGemma4,
}

// real gives the families with published widths their real sizes, for a
// layer count and vocabulary.
var realSizes = map[string]func(layers, vocab int) Arch{
	"gpt_oss":   GPTOSS20B,
	"llama":     Llama3_8B,
	"qwen3":     Qwen3_8B,
	"qwen3_moe": Qwen3_30B_A3B,
	"phi3":      Phi3Mini,
	"gemma4":    Gemma4_26B_A4B,
}

// realDefaults are the published layer counts and vocabularies.
var realDefaults = map[string][2]int{
	"gpt_oss":   {24, 201088},
	"llama":     {32, 128256},
	"qwen3":     {36, 151936},
	"qwen3_moe": {48, 151936},
	"phi3":      {32, 32064},
	"gemma4":    {30, 262144},
}

// RealWidths returns the published model's sizes for an architecture name
// ByName knows ("gpt_oss", "gpt_oss_dense", "llama", "qwen3", "qwen3_moe",
// "phi3", "gemma4"), and false for the names without one.
func RealWidths(name string) (Arch, bool) {
	base := strings.TrimSuffix(name, "_dense")
	f, ok := realSizes[base]
	if !ok {
		return Arch{}, false
	}
	d := realDefaults[base]
	a := f(d[0], d[1])
	if name == "gpt_oss_dense" {
		a.MXFP4 = false
	}
	return a, true
}

// RealNames lists the names RealWidths knows, sorted.
func RealNames() []string {
	out := []string{"gpt_oss_dense"}
	for n := range realSizes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Names lists the names ByName knows, sorted.
func Names() []string {
	out := make([]string, 0, len(named))
	for n := range named {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ByName returns the small default of a family: "gpt_oss" (MXFP4),
// "gpt_oss_dense", "llama", "mistral", "mixtral" or "qwen2".
func ByName(name string) (Arch, error) {
	f, ok := named[name]
	if !ok {
		return Arch{}, fmt.Errorf("synth: unknown architecture %q (known: %v)", name, Names())
	}
	return f(), nil
}

func (a Arch) moe() bool {
	return a.Family == GPTOSS || a.Family == Mixtral || a.Family == Qwen3MoE || a.Family == Gemma4 && a.Experts > 0
}

// llamaLike families write Llama's config and layers.
func (a Arch) llamaLike() bool {
	return a.Family == Llama || a.Family == MTPLlama || a.Family == DiffusionLlama
}

// apriel2Like families have Apriel2's block-tree decoder.
func (a Arch) apriel2Like() bool { return a.Family == Apriel2Text || a.Family == Apriel2Multimodal }

// qwen2Like families write Qwen2's config and layers.
func (a Arch) qwen2Like() bool { return a.Family == Qwen2 || a.Family == Dream }

// hybrid families have apriel_hybrid_ssm's layers by Layout.
func (a Arch) hybrid() bool { return a.Family == AprielHybridSSM || a.Family == LlavaHybrid }

// qwen3Like families have Qwen3's attention.
func (a Arch) qwen3Like() bool { return a.Family == Qwen3 || a.Family == Qwen3MoE }

// Validate checks that the sizes make a model of the family.
func (a Arch) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("synth: %s: %s", a.Family, fmt.Sprintf(format, args...))
	}
	if !slices.Contains(allFamilies, a.Family) {
		return fmt.Errorf("synth: unknown family %q", a.Family)
	}
	if a.apriel2Like() != (a.Apriel2 != nil) {
		return bad("an Apriel2 decoder is apriel2_text's and apriel2's, and they need one")
	}
	if a.apriel2Like() {
		if a.Hidden <= 0 || a.Layers <= 0 || a.Vocab <= 0 {
			return bad("hidden %d, %d layers, vocab %d: want > 0", a.Hidden, a.Layers, a.Vocab)
		}
		if err := a.Apriel2.validate(a.Layers); err != nil {
			return bad("%v", err)
		}
		if (a.Family == Apriel2Multimodal) != (a.Apriel2.Vision != nil) {
			return bad("a vision encoder is apriel2's, and apriel2 needs one")
		}
		if a.Family == Apriel2Multimodal {
			if err := a.Apriel2.validateVision(); err != nil {
				return bad("%v", err)
			}
		}
		return nil
	}
	for _, s := range []struct {
		name string
		v    int
	}{{"Hidden", a.Hidden}, {"Intermediate", a.Intermediate}, {"Layers", a.Layers}, {"Heads", a.Heads},
		{"KVHeads", a.KVHeads}, {"HeadDim", a.HeadDim}, {"Vocab", a.Vocab}} {
		if s.v <= 0 {
			return bad("%s is %d, want > 0", s.name, s.v)
		}
	}
	switch a.Float {
	case tensor.Invalid, tensor.BF16, tensor.F16, tensor.F32:
	default:
		return bad("float dtype %s: want BF16, F16 or F32", a.Float)
	}
	switch {
	case a.Rope.Type != "" && a.Rope.Type != "llama3" && a.Rope.Type != "yarn":
		return bad("rope type %q: want llama3 or yarn", a.Rope.Type)
	case a.Rope.Type != "" && a.Family == GPTOSS:
		return bad("GPT-OSS has yarn rope always")
	case a.Rope.Legacy && (a.Rope.Type == "" || a.Rope.V5):
		return bad("the legacy type spelling is for a v4 rope_scaling")
	}
	if a.Heads%a.KVHeads != 0 {
		return bad("%d heads are not a multiple of %d key/value heads", a.Heads, a.KVHeads)
	}
	if a.moe() {
		if a.Experts <= 0 || a.ExpertsPerTok <= 0 || a.ExpertsPerTok > a.Experts {
			return bad("%d experts, %d per token", a.Experts, a.ExpertsPerTok)
		}
	} else if a.Experts != 0 {
		return bad("a dense family has no experts")
	}
	if a.MXFP4 && a.Family != GPTOSS {
		return bad("only gpt_oss has MXFP4 experts")
	}
	if a.MXFP4 && (a.Hidden%32 != 0 || a.Intermediate%32 != 0) {
		return bad("MXFP4 needs hidden (%d) and intermediate (%d) sizes divisible by 32", a.Hidden, a.Intermediate)
	}
	if a.AttentionBias && !a.llamaLike() && !a.qwen3Like() {
		return bad("AttentionBias is an option of the Llama and Qwen3 families")
	}
	if a.MLPBias && !a.llamaLike() {
		return bad("MLPBias is an option of the Llama family")
	}
	if (a.qwen2Like() || a.Family == Phi3) && a.HeadDim*a.Heads != a.Hidden {
		return bad("%s configs have no head_dim: it must be hidden/heads = %d", a.Family, a.Hidden/a.Heads)
	}
	if a.RotaryBuffers && a.Family != Llama {
		return bad("only llama checkpoints were published with rotary buffers")
	}
	if a.RotaryBuffers && a.HeadDim%2 != 0 {
		return bad("head_dim %d is odd: a rotary embedding pairs dimensions", a.HeadDim)
	}
	if a.Family == MTPLlama && a.PredictionHeads < 1 {
		return bad("%d prediction heads, want at least 1", a.PredictionHeads)
	}
	if a.Family != MTPLlama && a.PredictionHeads != 0 {
		return bad("only mtp_llama has prediction heads")
	}
	if err := a.validateVision(); err != nil {
		return bad("%v", err)
	}
	if err := a.validateHybrid(); err != nil {
		return bad("%v", err)
	}
	if err := a.validateGemma4(); err != nil {
		return bad("%v", err)
	}
	if slices.Contains(a.Remove, "") {
		return bad("empty key in Remove")
	}
	return nil
}

// validateVision checks the vision tower of llava and llava_hybrid, and
// that no other family has one.
func (a Arch) validateVision() error {
	v := a.Vision
	if a.Family != Llava && a.Family != LlavaHybrid {
		if v != (Vision{}) {
			return fmt.Errorf("only llava and llava_hybrid have a vision tower")
		}
		return nil
	}
	if v.Hidden <= 0 || v.Intermediate <= 0 || v.Layers <= 0 || v.Heads <= 0 || v.PatchSize <= 0 {
		return fmt.Errorf("vision sizes %+v, want all > 0", v)
	}
	if v.Hidden%v.Heads != 0 {
		return fmt.Errorf("vision hidden size %d is not a multiple of %d heads", v.Hidden, v.Heads)
	}
	if a.TieEmbeddings && a.Family == Llava {
		return fmt.Errorf("llava saves language_model.lm_head.weight: its embeddings are not tied")
	}
	return nil
}

// validateHybrid checks the layout and Mamba sizes of apriel_hybrid_ssm
// and llava_hybrid, and that no other family has them.
func (a Arch) validateHybrid() error {
	if a.Family != AprielHybridSSM && a.Family != LlavaHybrid {
		if a.Layout != nil || a.Mamba != (Mamba{}) || a.GDN != (GDN{}) {
			return fmt.Errorf("only apriel_hybrid_ssm and llava_hybrid have a hybrid layout and Mamba layers")
		}
		return nil
	}
	if len(a.Layout) != a.Layers {
		return fmt.Errorf("a layout of %d entries for %d layers", len(a.Layout), a.Layers)
	}
	for i, k := range a.Layout {
		if k != "t" && k != "m2" && k != "gdn" {
			return fmt.Errorf("layer %d is %q, want t, m2 or gdn", i, k)
		}
	}
	if g := a.GDN; slices.Contains(a.Layout, "gdn") || g != (GDN{}) {
		if g.ValueHeads <= 0 || g.KeyHeads <= 0 || g.KeyHeadDim <= 0 || g.ValueHeadDim <= 0 || g.Kernel <= 0 {
			return fmt.Errorf("GDN sizes %+v: all must be positive", g)
		}
		if g.ValueHeads%g.KeyHeads != 0 {
			return fmt.Errorf("%d GDN value heads are not a multiple of %d key heads", g.ValueHeads, g.KeyHeads)
		}
	}
	m := a.Mamba
	if m.State <= 0 || m.Inner <= 0 || m.XB < 0 || m.DTRank < 0 || m.Expand < 0 {
		return fmt.Errorf("Mamba sizes %+v: d_state and d_inner must be positive, the others not negative", m)
	}
	// Mamba2 runs d_inner / d_state heads in d_xb / d_state groups.
	if m.Inner%m.State != 0 || a.xb()%m.State != 0 || (m.Inner/m.State)%(a.xb()/m.State) != 0 {
		return fmt.Errorf("d_inner %d and d_xb %d must be multiples of d_state %d, with a whole number of heads per group", m.Inner, a.xb(), m.State)
	}
	return nil
}

// validateGemma4 checks the sizes only Gemma 4 has.
func (a Arch) validateGemma4() error {
	if a.Family != Gemma4 {
		if a.GlobalHeadDim != 0 || a.GlobalKVHeads != 0 || a.SharedKV || a.ExpertIntermediate != 0 {
			return fmt.Errorf("GlobalHeadDim, GlobalKVHeads, SharedKV and ExpertIntermediate are Gemma 4's")
		}
		return nil
	}
	switch {
	case a.GlobalHeadDim <= 0:
		return fmt.Errorf("GlobalHeadDim is %d, want > 0", a.GlobalHeadDim)
	case a.Rope != Rope{}:
		return fmt.Errorf("rope_parameters are per layer type in Gemma 4, not a Rope")
	case a.Experts > 0 && a.ExpertIntermediate <= 0:
		return fmt.Errorf("ExpertIntermediate is %d for %d experts", a.ExpertIntermediate, a.Experts)
	case a.Experts == 0 && a.ExpertIntermediate != 0:
		return fmt.Errorf("ExpertIntermediate %d without experts", a.ExpertIntermediate)
	case a.SharedKV && (a.GlobalKVHeads <= 0 || a.Heads%a.GlobalKVHeads != 0):
		return fmt.Errorf("%d heads are not a multiple of %d global key/value heads", a.Heads, a.GlobalKVHeads)
	case !a.SharedKV && a.GlobalKVHeads != 0:
		// transformers reads num_global_key_value_heads only with
		// attention_k_eq_v; Fast-LLM's converter reads it always.
		return fmt.Errorf("GlobalKVHeads without SharedKV: transformers ignores it, Fast-LLM does not")
	}
	return nil
}
