package synth

import (
	"fmt"
	"slices"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Apriel2 is an apriel2_text model's decoder: Fast-LLM's block tree as its
// HF config states it (modeling_apriel2.py reads it as is).
type Apriel2 struct {
	// Pattern names the block of each layer in turn (a pattern decoder);
	// nil: a fixed decoder of Blocks["block"].
	Pattern []string
	// Blocks are the blocks by name: each a {mixer, mlp, normalization}
	// config section, with the model's key names and values.
	Blocks map[string]map[string]any
	// Vision is apriel2's vision_encoder section as the HF config states
	// it (Fast-LLM's exporter's keys); nil for apriel2_text.
	Vision map[string]any
}

// TinyApriel2 is Fast-LLM's reference apriel2 model (its
// `apriel2_multimodal` test model, at distinct widths): a fixed decoder of
// 2 attention blocks (hidden 256, 8 heads of 32, 4 key/value heads, gated
// MLP 1024), vocab 386, untied, image token 384, and a vision encoder of
// width 128: 4x4 patches, 2 blocks of 4 heads of 32 with 2 key/value
// heads, a 2D rotary, not causal, gated MLP 512, and an adapter of 384.
// Its config.json is the one Fast-LLM's reference data was converted from.
func TinyApriel2() Arch {
	text := TinyApriel2Text().Apriel2.Blocks["attn_full"]
	norm := map[string]any{"epsilon": 1e-05, "type": "rms_norm"}
	vision := map[string]any{
		"adapter": map[string]any{"activation": "gelu_pytorch_tanh", "add_linear_biases": true, "gated": false,
			"intermediate_size": int64(384), "type": "mlp"},
		"embeddings": map[string]any{"input_channels": int64(3), "normalization": ir.DeepCopy(norm),
			"patch_height": int64(4), "patch_width": int64(4)},
		"encoder": map[string]any{"type": "fixed", "num_blocks": int64(2), "block": map[string]any{
			"mixer": map[string]any{"add_linear_biases": false, "causal": false, "cross_document_attention": false,
				"head_groups": int64(2), "head_size": int64(32), "heads": int64(4),
				"rotary": map[string]any{"max_image_size": int64(1024), "patch_size": int64(4), "theta": 10000.0, "type": "pixtral_2d"},
				"type":   "attention"},
			"mlp": map[string]any{"activation": "silu", "add_linear_biases": false, "gated": true,
				"intermediate_size": int64(512), "type": "mlp"},
			"normalization": ir.DeepCopy(norm)}},
		"hidden_size":       int64(128),
		"num_channels":      int64(3),
		"num_hidden_layers": int64(2),
		"patch_size":        int64(4),
	}
	return Arch{Family: Apriel2Multimodal, Hidden: 256, Layers: 2, Vocab: 386,
		Apriel2: &Apriel2{Blocks: map[string]map[string]any{"block": ir.DeepCopy(text).(map[string]any)}, Vision: vision}}
}

// validateVision checks what the vision encoder's tensors are sized from.
func (d *Apriel2) validateVision() error {
	v := d.Vision
	if _, ok := v["hidden_size"].(int64); !ok {
		return fmt.Errorf("apriel2: the vision encoder has no hidden_size")
	}
	e, _ := v["embeddings"].(map[string]any)
	if num(e, "patch_height", 0) <= 0 || num(e, "patch_width", 0) <= 0 {
		return fmt.Errorf("apriel2: the vision embeddings need patch_height and patch_width")
	}
	enc, _ := v["encoder"].(map[string]any)
	b, _ := enc["block"].(map[string]any)
	if b == nil || num(enc, "num_blocks", 0) <= 0 {
		return fmt.Errorf("apriel2: the vision encoder needs a fixed encoder (block, num_blocks)")
	}
	if m, _ := b["mixer"].(map[string]any); mixerType(m) != "attention" {
		return fmt.Errorf("apriel2: the vision blocks' mixer is %v, want attention", m["type"])
	}
	if _, ok := b["mlp"].(map[string]any)["intermediate_size"].(int64); !ok {
		return fmt.Errorf("apriel2: the vision blocks' mlp has no intermediate_size")
	}
	return nil
}

// TinyApriel2Text is Fast-LLM's reference apriel2_text model (its
// `apriel2_hybrid` test model): hidden 256, a pattern of full attention,
// sliding-window attention, a gated DeltaNet and a Kimi delta attention
// block, each with a gated MLP of 1024, vocab 384, tied embeddings. Its
// config.json is the one Fast-LLM's reference data was converted from.
func TinyApriel2Text() Arch {
	mlp := func() map[string]any {
		return map[string]any{"activation": "silu", "add_linear_biases": false, "gated": true, "intermediate_size": int64(1024), "type": "mlp"}
	}
	norm := func() map[string]any { return map[string]any{"epsilon": 1e-05, "type": "rms_norm"} }
	attention := func() map[string]any {
		return map[string]any{"add_linear_biases": false, "head_groups": int64(4), "head_size": int64(32), "heads": int64(8),
			"rotary": map[string]any{"theta": 10000.0, "type": "mistral_1d"}, "type": "attention"}
	}
	swa := attention()
	swa["window_size"] = int64(128)
	conv := func() map[string]any { return map[string]any{"kernel_size": int64(4)} }
	blocks := map[string]map[string]any{
		"attn_full": {"mixer": attention(), "mlp": mlp(), "normalization": norm()},
		"attn_swa":  {"mixer": swa, "mlp": mlp(), "normalization": norm()},
		"gdn": {"mixer": map[string]any{"convolution_layer": conv(), "key_head_dim": int64(32), "key_heads": int64(8), "type": "gdn",
			"value_head_dim": int64(32), "value_heads": int64(8)}, "mlp": mlp(), "normalization": norm()},
		"kda": {"mixer": map[string]any{"convolution_layer": conv(), "head_dim": int64(32), "heads": int64(8),
			"normalization": map[string]any{"epsilon": 1e-05}, "type": "kda"}, "mlp": mlp(), "normalization": norm()},
	}
	return Arch{Family: Apriel2Text, Hidden: 256, Layers: 4, Vocab: 384, TieEmbeddings: true,
		Apriel2: &Apriel2{Pattern: []string{"attn_full", "attn_swa", "gdn", "kda"}, Blocks: blocks}}
}

// decoder is the config's decoder section.
func (d *Apriel2) decoder(layers int) map[string]any {
	if d.Pattern == nil {
		return map[string]any{"type": "fixed", "num_blocks": i64(layers), "block": ir.DeepCopy(d.Blocks["block"])}
	}
	blocks := map[string]any{}
	for name, b := range d.Blocks {
		blocks[name] = ir.DeepCopy(b)
	}
	return map[string]any{"type": "pattern", "num_blocks": i64(layers), "pattern": layout(d.Pattern), "blocks": blocks}
}

// block is layer l's block.
func (d *Apriel2) block(l int) map[string]any {
	if d.Pattern == nil {
		return d.Blocks["block"]
	}
	return d.Blocks[d.Pattern[l%len(d.Pattern)]]
}

// validate checks what the tensors are sized from: every layer's block is
// there, with a mixer of a known type and the sizes it needs.
func (d *Apriel2) validate(layers int) error {
	if d.Pattern == nil && d.Blocks["block"] == nil {
		return fmt.Errorf("apriel2_text: a fixed decoder needs Blocks[\"block\"]")
	}
	for _, name := range d.Pattern {
		if d.Blocks[name] == nil {
			return fmt.Errorf("apriel2_text: pattern names block %q, which Blocks lacks", name)
		}
	}
	for l := range layers {
		b := d.block(l)
		m, _ := b["mixer"].(map[string]any)
		if t := mixerType(m); !slices.Contains([]string{"attention", "mamba", "gdn", "kda"}, t) {
			return fmt.Errorf("apriel2_text: layer %d's mixer type is %v (attention, mamba, gdn or kda)", l, m["type"])
		}
		if _, ok := b["mlp"].(map[string]any)["intermediate_size"].(int64); !ok {
			return fmt.Errorf("apriel2_text: layer %d's mlp has no intermediate_size", l)
		}
	}
	return nil
}

// mixerType is a mixer's type, attention when it says none (the model's
// default).
func mixerType(m map[string]any) string {
	if t, ok := m["type"].(string); ok {
		return t
	}
	if _, ok := m["type"]; ok {
		return fmt.Sprint(m["type"])
	}
	return "attention"
}

// apriel2Config is config.json as Fast-LLM's exporter writes it (its
// reference data's hf_config.json).
func apriel2Config(a Arch) map[string]any {
	if a.Family == Apriel2Multimodal {
		c := apriel2Config(Arch{Family: Apriel2Text, Hidden: a.Hidden, Layers: a.Layers, Vocab: a.Vocab,
			TieEmbeddings: a.TieEmbeddings, Apriel2: a.Apriel2})
		c["architectures"] = []any{"Apriel2ForConditionalGeneration"}
		c["model_type"] = "apriel2"
		c["auto_map"] = map[string]any{
			"AutoConfig":                  "configuration_apriel2.Apriel2Config",
			"AutoModel":                   "modeling_apriel2.Apriel2Model",
			"AutoModelForCausalLM":        "modeling_apriel2.Apriel2ForConditionalGeneration",
			"AutoModelForImageTextToText": "modeling_apriel2.Apriel2ForConditionalGeneration",
		}
		c["image_token_index"] = int64(384)
		c["vision_encoder"] = ir.DeepCopy(a.Apriel2.Vision)
		return c
	}
	return map[string]any{
		"architectures": []any{"Apriel2ForCausalLM"},
		"auto_map": map[string]any{
			"AutoConfig":           "configuration_apriel2.Apriel2TextConfig",
			"AutoModel":            "modeling_apriel2.Apriel2TextModel",
			"AutoModelForCausalLM": "modeling_apriel2.Apriel2ForCausalLM",
		},
		"decoder":             a.Apriel2.decoder(a.Layers),
		"head":                map[string]any{"normalization": map[string]any{"epsilon": 1e-05, "type": "rms_norm"}},
		"hidden_size":         i64(a.Hidden),
		"model_type":          "apriel2_text",
		"tie_word_embeddings": a.TieEmbeddings,
		"vocab_size":          i64(a.Vocab),
	}
}

// num reads an integer key of a block's section, def when it is absent
// (the model's default).
func num(m map[string]any, key string, def int) int {
	if v, ok := m[key].(int64); ok {
		return int(v)
	}
	return def
}

// flag reads a boolean key, def when it is absent.
func flag(m map[string]any, key string, def bool) bool {
	if v, ok := m[key].(bool); ok {
		return v
	}
	return def
}

// apriel2Layer adds layer l's tensors under prefix p in the order
// Apriel2Block registers them (mixer, mlp, norms), with the shapes and
// defaults of modeling_apriel2.py.
func (a Arch) apriel2Layer(l int, p string, add func(kind Kind, dt tensor.DType, name string, shape ...int)) {
	a.apriel2Block(a.Apriel2.block(l), a.Hidden, p, add)
}

// apriel2Vision adds apriel2's vision encoder under model.vision_encoder.,
// as Apriel2VisionEncoder registers it: the patch convolution (no bias)
// and its norm, the encoder's blocks at the vision width, and the adapter
// (Apriel2MultiModalProjector: two linear layers, always with biases).
func (a Arch) apriel2Vision(add func(kind Kind, dt tensor.DType, name string, shape ...int)) {
	const p = "model.vision_encoder."
	w := func(name string, shape ...int) { add(Weight, a.float(), p+name, shape...) }
	v := a.Apriel2.Vision
	V := num(v, "hidden_size", 0)
	e := v["embeddings"].(map[string]any)
	w("embeddings.patch_embeddings.weight", V, num(e, "input_channels", 3), num(e, "patch_height", 16), num(e, "patch_width", 16))
	add(Norm, a.float(), p+"embeddings.normalization.weight", V)
	enc := v["encoder"].(map[string]any)
	for l := range num(enc, "num_blocks", 0) {
		a.apriel2Block(enc["block"].(map[string]any), V, fmt.Sprintf("%sencoder.blocks.%d.", p, l), add)
	}
	ad, _ := v["adapter"].(map[string]any)
	A := num(ad, "intermediate_size", a.Hidden)
	w("adapter.linear_1.weight", A, V)
	w("adapter.linear_1.bias", A)
	w("adapter.linear_2.weight", a.Hidden, A)
	w("adapter.linear_2.bias", a.Hidden)
}

// apriel2Block adds block b's tensors at width H under prefix p.
func (a Arch) apriel2Block(b map[string]any, H int, p string, add func(kind Kind, dt tensor.DType, name string, shape ...int)) {
	w := func(name string, shape ...int) { add(Weight, a.float(), p+name, shape...) }
	linear := func(name string, out, in int, bias bool) {
		w(name+".weight", out, in)
		if bias {
			w(name+".bias", out)
		}
	}
	m := b["mixer"].(map[string]any)
	switch mixerType(m) {
	case "attention":
		heads, size := num(m, "heads", 0), num(m, "head_size", 0)
		q, kv := heads*size, num(m, "head_groups", heads)*size
		bias := flag(m, "add_linear_biases", false)
		linear("mixer.q_proj", q, H, bias)
		linear("mixer.k_proj", kv, H, bias)
		linear("mixer.v_proj", kv, H, bias)
		linear("mixer.o_proj", H, q, bias)
	case "mamba":
		inner, xb := num(m, "d_inner", 2*H), num(m, "d_xb", H)
		dt := num(m, "dt_rank", (H+15)/16)
		bias := flag(m, "add_linear_biases", false)
		w("mixer.conv1d.weight", inner, 1, num(m, "d_conv", 4))
		if flag(m, "conv_bias", false) {
			w("mixer.conv1d.bias", inner)
		}
		linear("mixer.in_proj", 2*xb+2*inner, H, bias)
		linear("mixer.dt_in_proj", dt, H, bias)
		linear("mixer.dt_proj", inner, dt, flag(m, "dt_proj_bias", false))
		w("mixer.A_log", inner, num(m, "state_size", 16))
		add(Norm, a.float(), p+"mixer.D", inner)
		linear("mixer.out_proj", H, inner, bias)
	case "gdn":
		vh, kh := num(m, "value_heads", 32), num(m, "key_heads", 8)
		key, value := kh*num(m, "key_head_dim", 64), vh*num(m, "value_head_dim", 64)
		conv, _ := m["convolution_layer"].(map[string]any)
		w("mixer.in_proj_qkvz.weight", 2*key+2*value, H)
		w("mixer.in_proj_ba.weight", 2*vh, H)
		w("mixer.out_proj.weight", H, value)
		w("mixer.convolution.weight", 2*key+value, 1, num(conv, "kernel_size", 4))
		w("mixer.dt_bias", vh)
		w("mixer.A_log", vh)
		add(Norm, a.float(), p+"mixer.norm.weight", num(m, "value_head_dim", 64))
	case "kda":
		heads, hd := num(m, "heads", 32), num(m, "head_dim", 64)
		conv, _ := m["convolution_layer"].(map[string]any)
		k, P := num(conv, "kernel_size", 4), heads*hd
		for _, x := range []string{"q", "k", "v"} {
			w("mixer."+x+"_proj.weight", P, H)
		}
		for _, x := range []string{"q", "k", "v"} {
			w("mixer."+x+"_conv.weight", P, 1, k)
		}
		w("mixer.f_a_proj.weight", hd, H)
		w("mixer.f_b_proj.weight", P, hd)
		w("mixer.g_a_proj.weight", hd, H)
		w("mixer.g_b_proj.weight", P, hd)
		w("mixer.beta_proj.weight", heads, H)
		w("mixer.o_proj.weight", H, P)
		w("mixer.A_log", heads)
		w("mixer.dt_bias", P)
		add(Norm, a.float(), p+"mixer.norm.weight", hd)
	}
	f := b["mlp"].(map[string]any)
	I := num(f, "intermediate_size", 0)
	if flag(f, "gated", false) {
		// transformers' MistralMLP: no biases.
		w("mlp.gate_proj.weight", I, H)
		w("mlp.up_proj.weight", I, H)
		w("mlp.down_proj.weight", H, I)
	} else {
		bias := flag(f, "add_linear_biases", false)
		linear("mlp.up_proj", I, H, bias)
		linear("mlp.down_proj", H, I, bias)
	}
	add(Norm, a.float(), p+"input_layernorm.weight", H)
	add(Norm, a.float(), p+"post_attention_layernorm.weight", H)
}
