package synth

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Kind says how a tensor's values are drawn.
type Kind int

// The kinds of tensor data.
const (
	Weight      Kind = iota // BF16, mean 0, standard deviation 0.02
	Norm                    // BF16, mean 1, standard deviation 0.02
	MXFP4Blocks             // U8 block bytes (two E2M1 codes each)
	MXFP4Scales             // U8 E8M0 scales in 118..124
	InvFreq                 // F32 1 / theta^(2i / d): a rotary buffer, in Data
)

// Tensor is one tensor of a synthetic checkpoint.
type Tensor struct {
	safetensors.Entry
	Kind Kind
	// Data is the tensor's bytes where the config fixes them (InvFreq);
	// nil where they are drawn.
	Data []byte
}

// Tensors lists a's tensors with their Hugging Face names, shapes and
// dtypes, in the order of the model's state dict (embeddings, each layer,
// MTP-Llama's extra heads, final norm(s), lm_head).
func Tensors(a Arch) ([]Tensor, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	var out []Tensor
	add := func(kind Kind, dt tensor.DType, name string, shape ...int) {
		out = append(out, Tensor{Entry: safetensors.Entry{Name: name, DType: dt, Shape: tensor.Shape(shape)}, Kind: kind})
	}
	w := func(name string, shape ...int) { add(Weight, a.float(), name, shape...) }
	H, V := a.Hidden, a.Vocab

	w("model.embed_tokens.weight", V, H)
	var invFreq []byte
	if a.RotaryBuffers {
		invFreq = a.invFreq()
	}
	for l := 0; l < a.Layers; l++ {
		switch {
		case a.apriel2Like():
			a.apriel2Layer(l, fmt.Sprintf("model.decoder.blocks.%d.", l), add)
		case a.Family == Gemma4:
			a.gemma4Layer(fmt.Sprintf("model.layers.%d.", l), Gemma4LayerTypes(a.Layers)[l] == "full_attention", add)
		case a.hybrid() && a.Layout[l] == "m2":
			a.mambaLayer(fmt.Sprintf("model.layers.%d.", l), add)
		case a.hybrid() && a.Layout[l] == "gdn":
			a.gdnLayer(fmt.Sprintf("model.layers.%d.", l), add)
		default:
			a.layer(fmt.Sprintf("model.layers.%d.", l), add)
		}
		if a.RotaryBuffers {
			out = append(out, Tensor{Entry: safetensors.Entry{Name: fmt.Sprintf("model.layers.%d.self_attn.rotary_emb.inv_freq", l),
				DType: tensor.F32, Shape: tensor.Shape{a.HeadDim / 2}}, Kind: InvFreq, Data: invFreq})
		}
	}
	// MTP-Llama: one more block per extra head, a norm per head (the first
	// is the model's own: there is no model.norm).
	for i := 0; i < a.PredictionHeads-1; i++ {
		a.layer(fmt.Sprintf("model.mtp_heads.%d.", i), add)
	}
	if a.Family == MTPLlama {
		for i := 0; i < a.PredictionHeads; i++ {
			add(Norm, a.float(), fmt.Sprintf("model.mtp_norms.%d.weight", i), H)
		}
	} else {
		add(Norm, a.float(), "model.norm.weight", H)
	}
	if !a.TieEmbeddings {
		w("lm_head.weight", V, H)
	}
	if a.Family == Apriel2Multimodal {
		a.apriel2Vision(add)
	}
	if a.Family == Llava || a.Family == LlavaHybrid {
		for i := range out {
			// Fast-LLM's llava_hybrid converter reads the final norm and
			// lm_head under their text model's own names.
			if a.Family == LlavaHybrid && (out[i].Name == "model.norm.weight" || out[i].Name == "lm_head.weight") {
				continue
			}
			out[i].Name = "language_model." + out[i].Name
		}
		a.visionTower(add)
	}
	return out, nil
}

// visionTower adds llava's Pixtral vision tower and its projector, under
// the names of mistral-community/pixtral-12b.
func (a Arch) visionTower(add func(kind Kind, dt tensor.DType, name string, shape ...int)) {
	w := func(name string, shape ...int) { add(Weight, a.float(), name, shape...) }
	n := func(name string, shape ...int) { add(Norm, a.float(), name, shape...) }
	v, H := a.Vision, a.Hidden
	w("vision_tower.patch_conv.weight", v.Hidden, 3, v.PatchSize, v.PatchSize)
	n("vision_tower.ln_pre.weight", v.Hidden)
	for l := 0; l < v.Layers; l++ {
		p := fmt.Sprintf("vision_tower.transformer.layers.%d.", l)
		n(p+"attention_norm.weight", v.Hidden)
		n(p+"ffn_norm.weight", v.Hidden)
		for _, proj := range []string{"q_proj", "k_proj", "v_proj", "o_proj"} {
			w(p+"attention."+proj+".weight", v.Hidden, v.Hidden)
		}
		w(p+"feed_forward.gate_proj.weight", v.Intermediate, v.Hidden)
		w(p+"feed_forward.up_proj.weight", v.Intermediate, v.Hidden)
		w(p+"feed_forward.down_proj.weight", v.Hidden, v.Intermediate)
	}
	w("multi_modal_projector.linear_1.weight", H, v.Hidden)
	w("multi_modal_projector.linear_1.bias", H)
	w("multi_modal_projector.linear_2.weight", H, H)
	w("multi_modal_projector.linear_2.bias", H)
}

// layer adds one decoder layer's tensors under prefix p.
func (a Arch) layer(p string, add func(kind Kind, dt tensor.DType, name string, shape ...int)) {
	w := func(name string, shape ...int) { add(Weight, a.float(), name, shape...) }
	H, I, E := a.Hidden, a.Intermediate, a.Experts
	q, kv := a.Heads*a.HeadDim, a.KVHeads*a.HeadDim
	qkvBias := a.Family == GPTOSS || a.qwen2Like() || a.AttentionBias
	if a.Family == Phi3 {
		// Phi3Attention declares o_proj first; q, k and v are one matrix.
		w(p+"self_attn.o_proj.weight", H, q)
		w(p+"self_attn.qkv_proj.weight", q+2*kv, H)
	} else {
		w(p+"self_attn.q_proj.weight", q, H)
		if qkvBias {
			w(p+"self_attn.q_proj.bias", q)
		}
		w(p+"self_attn.k_proj.weight", kv, H)
		if qkvBias {
			w(p+"self_attn.k_proj.bias", kv)
		}
		w(p+"self_attn.v_proj.weight", kv, H)
		if qkvBias {
			w(p+"self_attn.v_proj.bias", kv)
		}
		w(p+"self_attn.o_proj.weight", H, q)
		if a.Family == GPTOSS || a.AttentionBias {
			w(p+"self_attn.o_proj.bias", H)
		}
	}
	if a.qwen3Like() {
		add(Norm, a.float(), p+"self_attn.q_norm.weight", a.HeadDim)
		add(Norm, a.float(), p+"self_attn.k_norm.weight", a.HeadDim)
	}
	switch a.Family {
	case GPTOSS:
		w(p+"self_attn.sinks", a.Heads)
		w(p+"mlp.router.weight", E, H)
		w(p+"mlp.router.bias", E)
		x := p + "mlp.experts."
		if a.MXFP4 {
			add(MXFP4Blocks, tensor.U8, x+"gate_up_proj_blocks", E, 2*I, H/32, 16)
			add(MXFP4Scales, tensor.U8, x+"gate_up_proj_scales", E, 2*I, H/32)
		} else {
			w(x+"gate_up_proj", E, H, 2*I)
		}
		w(x+"gate_up_proj_bias", E, 2*I)
		if a.MXFP4 {
			add(MXFP4Blocks, tensor.U8, x+"down_proj_blocks", E, H, I/32, 16)
			add(MXFP4Scales, tensor.U8, x+"down_proj_scales", E, H, I/32)
		} else {
			w(x+"down_proj", E, I, H)
		}
		w(x+"down_proj_bias", E, H)
	case Mixtral:
		w(p+"block_sparse_moe.gate.weight", E, H)
		for e := 0; e < E; e++ {
			x := fmt.Sprintf("%sblock_sparse_moe.experts.%d.", p, e)
			w(x+"w1.weight", I, H)
			w(x+"w2.weight", H, I)
			w(x+"w3.weight", I, H)
		}
	case Qwen3MoE:
		w(p+"mlp.gate.weight", E, H)
		for e := 0; e < E; e++ {
			x := fmt.Sprintf("%smlp.experts.%d.", p, e)
			w(x+"gate_proj.weight", I, H)
			w(x+"up_proj.weight", I, H)
			w(x+"down_proj.weight", H, I)
		}
	case Phi3:
		w(p+"mlp.gate_up_proj.weight", 2*I, H)
		w(p+"mlp.down_proj.weight", H, I)
	default:
		a.mlp(p, add)
	}
	a.norms(p, add)
}

// mambaLayer adds an apriel_hybrid_ssm Mamba 2 layer (AprielSSMM2DecoderLayer)
// under prefix p: the mixer's tensors in Mamba2's order, then Mistral's
// MLP and norms.
func (a Arch) mambaLayer(p string, add func(kind Kind, dt tensor.DType, name string, shape ...int)) {
	w := func(name string, shape ...int) { add(Weight, a.float(), p+"mixer."+name, shape...) }
	m, H := a.Mamba, a.Hidden
	conv, xb, dt := a.convChannels(), a.xb(), a.dtRank()
	w("conv1d.weight", conv, 1, 4)
	if m.ConvBias {
		w("conv1d.bias", conv)
	}
	w("in_proj.weight", 2*xb+2*m.Inner, H)
	if m.Bias {
		w("in_proj.bias", 2*xb+2*m.Inner)
	}
	w("dt_in_proj.weight", dt, H)
	if m.Bias {
		w("dt_in_proj.bias", dt)
	}
	w("dt_proj.weight", m.Inner, dt)
	if m.DTProjBias {
		w("dt_proj.bias", m.Inner)
	}
	w("A_log", m.Inner, m.State)
	add(Norm, a.float(), p+"mixer.D", m.Inner)
	w("out_proj.weight", H, m.Inner)
	if m.Bias {
		w("out_proj.bias", H)
	}
	a.mlp(p, add)
	a.norms(p, add)
}

// gdnLayer adds a gated DeltaNet layer under prefix p: the mixer's
// tensors under the names Fast-LLM's apriel converter gives them (those of
// apriel2's Apriel2GatedDeltaNet), then Mistral's MLP and norms.
func (a Arch) gdnLayer(p string, add func(kind Kind, dt tensor.DType, name string, shape ...int)) {
	w := func(name string, shape ...int) { add(Weight, a.float(), p+"mixer."+name, shape...) }
	g, H := a.GDN, a.Hidden
	key, value := g.KeyHeads*g.KeyHeadDim, g.ValueHeads*g.ValueHeadDim
	w("in_proj_qkvz.weight", 2*key+2*value, H)
	w("in_proj_ba.weight", 2*g.ValueHeads, H)
	w("out_proj.weight", H, value)
	w("convolution.weight", 2*key+value, 1, g.Kernel)
	w("dt_bias", g.ValueHeads)
	w("A_log", g.ValueHeads)
	add(Norm, a.float(), p+"mixer.norm.weight", g.ValueHeadDim)
	a.mlp(p, add)
	a.norms(p, add)
}

// norms adds a decoder layer's two norms under prefix p.
func (a Arch) norms(p string, add func(kind Kind, dt tensor.DType, name string, shape ...int)) {
	add(Norm, a.float(), p+"input_layernorm.weight", a.Hidden)
	add(Norm, a.float(), p+"post_attention_layernorm.weight", a.Hidden)
}

// mlp adds Llama's MLP (biases when MLPBias) under prefix p.
func (a Arch) mlp(p string, add func(kind Kind, dt tensor.DType, name string, shape ...int)) {
	w := func(name string, shape ...int) { add(Weight, a.float(), name, shape...) }
	H, I := a.Hidden, a.Intermediate
	w(p+"mlp.gate_proj.weight", I, H)
	if a.MLPBias {
		w(p+"mlp.gate_proj.bias", I)
	}
	w(p+"mlp.up_proj.weight", I, H)
	if a.MLPBias {
		w(p+"mlp.up_proj.bias", I)
	}
	w(p+"mlp.down_proj.weight", H, I)
	if a.MLPBias {
		w(p+"mlp.down_proj.bias", H)
	}
}

// gemma4Layer adds one Gemma4TextDecoderLayer's state under prefix p, in
// the order of its state dict (transformers' modeling_gemma4.py): the
// layer_scalar buffer, attention (q_proj, q_norm, k_norm, k_proj, v_proj
// unless keys are values, o_proj; v_norm has no weight), the dense MLP,
// the four norms around attention and MLP, and with experts the router
// (its norm has no weight), the experts ([E, 2I, H] gate and up stacked,
// [E, H, I] down) and three more norms.
func (a Arch) gemma4Layer(p string, full bool, add func(kind Kind, dt tensor.DType, name string, shape ...int)) {
	w := func(name string, shape ...int) { add(Weight, a.float(), name, shape...) }
	norm := func(name string, n int) { add(Norm, a.float(), name, n) }
	H, I, E, EI := a.Hidden, a.Intermediate, a.Experts, a.ExpertIntermediate
	hd, kvHeads, shared := a.HeadDim, a.KVHeads, false
	if full {
		hd = a.GlobalHeadDim
		if a.SharedKV {
			kvHeads, shared = a.GlobalKVHeads, true
		}
	}
	norm(p+"layer_scalar", 1)
	w(p+"self_attn.q_proj.weight", a.Heads*hd, H)
	norm(p+"self_attn.q_norm.weight", hd)
	norm(p+"self_attn.k_norm.weight", hd)
	w(p+"self_attn.k_proj.weight", kvHeads*hd, H)
	if !shared {
		w(p+"self_attn.v_proj.weight", kvHeads*hd, H)
	}
	w(p+"self_attn.o_proj.weight", H, a.Heads*hd)
	w(p+"mlp.gate_proj.weight", I, H)
	w(p+"mlp.up_proj.weight", I, H)
	w(p+"mlp.down_proj.weight", H, I)
	for _, n := range []string{"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"} {
		norm(p+n+".weight", H)
	}
	if E == 0 {
		return
	}
	w(p+"router.proj.weight", E, H)
	norm(p+"router.scale", H)
	norm(p+"router.per_expert_scale", E)
	w(p+"experts.gate_up_proj", E, 2*EI, H)
	w(p+"experts.down_proj", E, H, EI)
	for _, n := range []string{"post_feedforward_layernorm_1", "post_feedforward_layernorm_2", "pre_feedforward_layernorm_2"} {
		norm(p+n+".weight", H)
	}
}

// invFreq is the rotary buffer older transformers saved in each Llama
// layer, as LlamaRotaryEmbedding computed it in F32: 1 / theta^(2i / d)
// for i < d/2, theta the config's rope_theta. F32 pow is not correctly
// rounded in torch; this rounds the float64 power once, so a value may
// differ from a real checkpoint's in its last bit (mapper drops them
// unread).
func (a Arch) invFreq() []byte {
	theta := 10000.0
	cfg, _ := Config(a) // a is valid: Tensors checked it
	v := cfg["rope_theta"]
	if p, ok := cfg["rope_parameters"].(map[string]any); ok {
		v = p["rope_theta"]
	}
	switch v := v.(type) {
	case float64:
		theta = v
	case int64:
		theta = float64(v)
	}
	d := a.HeadDim
	b := make([]byte, 4*(d/2))
	for i := range d / 2 {
		x := float32(2*i) / float32(d)
		p := float32(math.Pow(theta, float64(x)))
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(1/p))
	}
	return b
}

// float is the dtype of the weights and norms: Float, BF16 by default.
func (a Arch) float() tensor.DType {
	if a.Float == tensor.Invalid {
		return tensor.BF16
	}
	return a.Float
}
