package mappings_test

// A second implementation of the expert and attention layouts, written in
// plain Go straight from /work/shared/spec/formats.md (§2 MXFP4 and gate_up
// interleaving, §3 names, §4 Fast-LLM layouts): no engine, no .map file, no
// runtime/kernels. What the mappings produce must agree with it element by
// element.

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/mappings/synth"
)

// e2m1 is the FP4 code table: index = 4-bit code, bit 3 the sign (-0 kept).
var e2m1 = func() (t [16]float64) {
	for i, v := range [8]float64{0, 0.5, 1, 1.5, 2, 3, 4, 6} {
		t[i], t[8+i] = v, math.Copysign(v, -1)
	}
	return t
}()

// refDecodeMXFP4 decodes blocks [..., G, 16] and scales [..., G] into values
// [..., G*32]: byte j of group g holds element 32g+2j in its low nibble and
// 32g+2j+1 in its high nibble; value = code * 2^(scale - 127).
func refDecodeMXFP4(blocks, scales []byte) []float32 {
	if len(blocks) != 16*len(scales) {
		panic(fmt.Sprintf("%d block bytes for %d scales", len(blocks), len(scales)))
	}
	out := make([]float32, 32*len(scales))
	for g, s := range scales {
		for j := range 16 {
			b := blocks[16*g+j]
			out[32*g+2*j] = float32(math.Ldexp(e2m1[b&0x0f], int(s)-127))
			out[32*g+2*j+1] = float32(math.Ldexp(e2m1[b>>4], int(s)-127))
		}
	}
	return out
}

// expected is a Fast-LLM tensor computed by the reference: shape and values.
type expected struct {
	shape  []int
	values []float32
}

// refGPTOSSLayer computes layer l's Fast-LLM expert and key/value tensors
// from an HF GPT-OSS checkpoint, for either HF expert layout.
func refGPTOSSLayer(hf *checkpoint, a synth.Arch, l int) map[string]expected {
	E, H, I := a.Experts, a.Hidden, a.Intermediate
	kv := a.KVHeads * a.HeadDim
	p := fmt.Sprintf("model.layers.%d.", l)
	x := p + "mlp.experts."

	// gate_up as a function (e, k, h): k along 2I (interleaved: even gate,
	// odd up), h along H; down as (e, h, i).
	var gateUp func(e, k, h int) float32
	var down func(e, h, i int) float32
	if a.MXFP4 {
		// [E, 2I, H] and [E, H, I]: output-major, blocks along the input.
		gu := refDecodeMXFP4(hf.u8(x+"gate_up_proj_blocks", E, 2*I, H/32, 16), hf.u8(x+"gate_up_proj_scales", E, 2*I, H/32))
		dn := refDecodeMXFP4(hf.u8(x+"down_proj_blocks", E, H, I/32, 16), hf.u8(x+"down_proj_scales", E, H, I/32))
		gateUp = func(e, k, h int) float32 { return gu[(e*2*I+k)*H+h] }
		down = func(e, h, i int) float32 { return dn[(e*H+h)*I+i] }
	} else {
		// [E, H, 2I] and [E, I, H]: input-major.
		gu := hf.bf16(x+"gate_up_proj", E, H, 2*I)
		dn := hf.bf16(x+"down_proj", E, I, H)
		gateUp = func(e, k, h int) float32 { return gu[(e*H+h)*2*I+k] }
		down = func(e, h, i int) float32 { return dn[(e*I+i)*H+h] }
	}

	// layer_1.weight [E*2I, H]: per expert [gate; up], each [I, H].
	l1 := make([]float32, E*2*I*H)
	for e := range E {
		for j := range I {
			for h := range H {
				l1[(e*2*I+j)*H+h] = gateUp(e, 2*j, h)
				l1[(e*2*I+I+j)*H+h] = gateUp(e, 2*j+1, h)
			}
		}
	}
	// layer_1.bias [E, 2I]: the bias de-interleaved the same way.
	gub := hf.bf16(x+"gate_up_proj_bias", E, 2*I)
	b1 := make([]float32, E*2*I)
	for e := range E {
		for j := range I {
			b1[e*2*I+j] = gub[e*2*I+2*j]
			b1[e*2*I+I+j] = gub[e*2*I+2*j+1]
		}
	}
	// layer_2.weight [E*I, H]: per expert down as [I, H].
	l2 := make([]float32, E*I*H)
	for e := range E {
		for i := range I {
			for h := range H {
				l2[(e*I+i)*H+h] = down(e, h, i)
			}
		}
	}
	// key_value.weight [2*kv, H]: [k; v].
	kvW := append(hf.bf16(p+"self_attn.k_proj.weight", kv, H), hf.bf16(p+"self_attn.v_proj.weight", kv, H)...)

	d := fmt.Sprintf("decoder.%d.", l)
	return map[string]expected{
		d + "mlp.layer_1.weight":     {[]int{E * 2 * I, H}, l1},
		d + "mlp.layer_1.bias":       {[]int{E, 2 * I}, b1},
		d + "mlp.layer_2.weight":     {[]int{E * I, H}, l2},
		d + "mlp.layer_2.bias":       {[]int{E, H}, hf.bf16(x+"down_proj_bias", E, H)},
		d + "mixer.key_value.weight": {[]int{2 * kv, H}, kvW},
	}
}

// refMixtralLayer computes layer l's Fast-LLM layer_1 and layer_2 from an
// HF Mixtral checkpoint.
func refMixtralLayer(hf *checkpoint, a synth.Arch, l int) map[string]expected {
	E, H, I := a.Experts, a.Hidden, a.Intermediate
	l1 := make([]float32, 0, E*2*I*H)
	l2 := make([]float32, E*I*H)
	for e := range E {
		x := fmt.Sprintf("model.layers.%d.block_sparse_moe.experts.%d.", l, e)
		// e.w1 then e.w3, each [I, H].
		l1 = append(l1, hf.bf16(x+"w1.weight", I, H)...)
		l1 = append(l1, hf.bf16(x+"w3.weight", I, H)...)
		// w2 [H, I] transposed to [I, H].
		w2 := hf.bf16(x+"w2.weight", H, I)
		for i := range I {
			for h := range H {
				l2[(e*I+i)*H+h] = w2[h*I+i]
			}
		}
	}
	d := fmt.Sprintf("decoder.%d.mlp.", l)
	return map[string]expected{
		d + "layer_1.weight": {[]int{E * 2 * I, H}, l1},
		d + "layer_2.weight": {[]int{E * I, H}, l2},
		d + "router.weight":  {[]int{E, H}, hf.bf16(fmt.Sprintf("model.layers.%d.block_sparse_moe.gate.weight", l), E, H)},
	}
}

// refLlamaLayer computes layer l's Fast-LLM MLP tensors from an HF Llama
// checkpoint: layer_1 = [gate; up], layer_2 = down transposed.
func refLlamaLayer(hf *checkpoint, a synth.Arch, l int) map[string]expected {
	H, I := a.Hidden, a.Intermediate
	p := fmt.Sprintf("model.layers.%d.mlp.", l)
	down := hf.bf16(p+"down_proj.weight", H, I)
	l2 := make([]float32, I*H)
	for i := range I {
		for h := range H {
			l2[i*H+h] = down[h*I+i]
		}
	}
	d := fmt.Sprintf("decoder.%d.mlp.", l)
	return map[string]expected{
		d + "layer_1.weight": {[]int{2 * I, H}, append(hf.bf16(p+"gate_proj.weight", I, H), hf.bf16(p+"up_proj.weight", I, H)...)},
		d + "layer_2.weight": {[]int{I, H}, l2},
	}
}

// rect makes a GPT-OSS arch whose expert matrices are not square.
func rect(a synth.Arch) synth.Arch {
	a.Intermediate, a.Experts, a.KVHeads = 32, 3, 1
	return a
}

// checkAgainst compares each expected tensor with the Fast-LLM output, bit
// for bit.
func checkAgainst(t *testing.T, fl *checkpoint, want map[string]expected) {
	t.Helper()
	for name, w := range want {
		sameBits(t, name, fl.bf16(name, w.shape...), w.values)
	}
}

// checkExactly is checkAgainst, and that the output holds nothing besides:
// Fast-LLM's converters make no other tensor.
func checkExactly(t *testing.T, label string, fl *checkpoint, want map[string]expected) {
	t.Helper()
	checkAgainst(t, fl, want)
	for _, n := range fl.ck.Names() {
		if _, ok := want[strings.TrimSuffix(n, "/weights")]; !ok {
			t.Errorf("%s: mapper writes %s, Fast-LLM's converter does not", label, n)
		}
	}
}

func TestReferenceGPTOSS(t *testing.T) {
	for _, tc := range []struct {
		name string
		arch synth.Arch
	}{
		{"mxfp4", synth.TinyGPTOSS()},
		{"dense", synth.TinyGPTOSSDense()},
		// H != I, and more key/value heads than one: a transposition
		// mistake cannot hide behind a square matrix.
		{"mxfp4_rect", rect(synth.TinyGPTOSS())},
		{"dense_rect", rect(synth.TinyGPTOSSDense())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := tc.arch
			hfDir := generate(t, a, synth.Options{})
			out, _ := convert(t, load(t, "gpt_oss"), hfDir, engine.PlanOptions{})
			hf, fl := openHF(t, hfDir), openFastLLM(t, out)
			for l := range a.Layers {
				checkAgainst(t, fl, refGPTOSSLayer(hf, a, l))
			}
		})
	}
}

func TestReferenceMixtral(t *testing.T) {
	t.Parallel()
	a := synth.TinyMixtral()
	hfDir := generate(t, a, synth.Options{})
	out, _ := convert(t, load(t, "mixtral"), hfDir, engine.PlanOptions{})
	hf, fl := openHF(t, hfDir), openFastLLM(t, out)
	for l := range a.Layers {
		checkAgainst(t, fl, refMixtralLayer(hf, a, l))
	}
}

func TestReferenceLlama(t *testing.T) {
	t.Parallel()
	a := synth.TinyLlama()
	hfDir := generate(t, a, synth.Options{})
	out, _ := convert(t, load(t, "llama"), hfDir, engine.PlanOptions{})
	hf, fl := openHF(t, hfDir), openFastLLM(t, out)
	for l := range a.Layers {
		checkAgainst(t, fl, refLlamaLayer(hf, a, l))
	}
}

// TestReferenceDecoderSanity pins the reference decoder on hand-made bytes,
// so that an agreement between it and the mapping cannot come from both
// being wrong the same way on random data.
func TestReferenceDecoderSanity(t *testing.T) {
	blocks := make([]byte, 16)
	blocks[0] = 0x97  // element 0: code 7 (6), element 1: code 9 (-0.5)
	blocks[1] = 0x81  // element 2: code 1 (0.5), element 3: code 8 (-0)
	blocks[15] = 0xF2 // element 30: code 2 (1), element 31: code 15 (-6)
	got := refDecodeMXFP4(blocks, []byte{128})
	want := map[int]float32{0: 12, 1: -1, 2: 1, 3: float32(math.Copysign(0, -1)), 30: 2, 31: -12}
	for i, v := range got {
		w := want[i] // zero for the other elements
		if math.Float32bits(v) != math.Float32bits(w) {
			t.Errorf("element %d = %v, want %v", i, v, w)
		}
	}
}

// The layouts of Qwen3, Qwen3-MoE and Phi-3, which no Fast-LLM converter
// covers, written from Hugging Face's modeling code (modeling_qwen3.py,
// modeling_qwen3_moe.py, modeling_phi3.py): which rows of which HF matrix
// each Fast-LLM tensor holds. Fast-LLM's side is formats.md §4's (query
// [heads*hd, H], key_value [k; v], layer_1 [gate; up], layer_2 [I, H]) and
// its attention config: query_norm and key_norm are normalizations "per
// attention head" over head_size entries.

// rows returns rows [from, to) of a row-major matrix with the given number
// of columns.
func rows(m []float32, cols, from, to int) []float32 { return m[from*cols : to*cols] }

// transposed returns the transpose of a row-major r x c matrix.
func transposed(m []float32, r, c int) []float32 {
	out := make([]float32, r*c)
	for i := range r {
		for j := range c {
			out[j*r+i] = m[i*c+j]
		}
	}
	return out
}

// refQwen3Attention: Qwen3Attention computes q_norm(q_proj(x).view(..., -1,
// head_dim)) and likewise for k: one RMSNorm weight of head_dim entries
// applied to every head, which is Fast-LLM's query_norm/key_norm weight as
// it is; q, k, v, o are Llama's (biases on all four when attention_bias).
func refQwen3Attention(hf *checkpoint, a synth.Arch, l int) map[string]expected {
	H, hd := a.Hidden, a.HeadDim
	q, kv := a.Heads*hd, a.KVHeads*hd
	p := fmt.Sprintf("model.layers.%d.self_attn.", l)
	d := fmt.Sprintf("decoder.%d.mixer.", l)
	out := map[string]expected{
		d + "query.weight":      {[]int{q, H}, hf.bf16(p+"q_proj.weight", q, H)},
		d + "key_value.weight":  {[]int{2 * kv, H}, append(hf.bf16(p+"k_proj.weight", kv, H), hf.bf16(p+"v_proj.weight", kv, H)...)},
		d + "dense.weight":      {[]int{H, q}, hf.bf16(p+"o_proj.weight", H, q)},
		d + "query_norm.weight": {[]int{hd}, hf.bf16(p+"q_norm.weight", hd)},
		d + "key_norm.weight":   {[]int{hd}, hf.bf16(p+"k_norm.weight", hd)},
	}
	if a.AttentionBias {
		out[d+"query.bias"] = expected{[]int{q}, hf.bf16(p+"q_proj.bias", q)}
		out[d+"key_value.bias"] = expected{[]int{2 * kv}, append(hf.bf16(p+"k_proj.bias", kv), hf.bf16(p+"v_proj.bias", kv)...)}
		out[d+"dense.bias"] = expected{[]int{H}, hf.bf16(p+"o_proj.bias", H)}
	}
	return out
}

// refQwen3MoEExperts: Qwen3MoeSparseMoeBlock routes with gate (a Linear
// hidden -> num_experts) and runs experts[e] = Qwen3MoeMLP(x) =
// down_proj(silu(gate_proj(x)) * up_proj(x)) of width
// moe_intermediate_size: Fast-LLM's router weight, layer_1 = per expert
// [gate_proj; up_proj] stacked, layer_2 = per expert down_proj transposed.
func refQwen3MoEExperts(hf *checkpoint, a synth.Arch, l int) map[string]expected {
	E, H, I := a.Experts, a.Hidden, a.Intermediate
	p := fmt.Sprintf("model.layers.%d.mlp.", l)
	var l1, l2 []float32
	for e := range E {
		x := fmt.Sprintf("%sexperts.%d.", p, e)
		l1 = append(l1, hf.bf16(x+"gate_proj.weight", I, H)...)
		l1 = append(l1, hf.bf16(x+"up_proj.weight", I, H)...)
		l2 = append(l2, transposed(hf.bf16(x+"down_proj.weight", H, I), H, I)...)
	}
	d := fmt.Sprintf("decoder.%d.mlp.", l)
	return map[string]expected{
		d + "router.weight":  {[]int{E, H}, hf.bf16(p+"gate.weight", E, H)},
		d + "layer_1.weight": {[]int{E * 2 * I, H}, l1},
		d + "layer_2.weight": {[]int{E * I, H}, l2},
	}
}

// refPhi3Layer: Phi3Attention takes query_states = qkv[..., :heads*hd],
// key_states the next kv*hd columns, value_states the rest, so Fast-LLM's
// query is qkv_proj's first heads*hd rows and key_value ([k; v]) the
// remaining rows; Phi3MLP does gate, up = gate_up_proj(x).chunk(2, -1),
// so gate_up_proj's first I rows are the gate: Fast-LLM's layer_1
// [gate; up]. down_proj [H, I] is transposed into layer_2.
func refPhi3Layer(hf *checkpoint, a synth.Arch, l int) map[string]expected {
	H, I, hd := a.Hidden, a.Intermediate, a.HeadDim
	q, kv := a.Heads*hd, a.KVHeads*hd
	p := fmt.Sprintf("model.layers.%d.", l)
	qkv := hf.bf16(p+"self_attn.qkv_proj.weight", q+2*kv, H)
	gateUp := hf.bf16(p+"mlp.gate_up_proj.weight", 2*I, H)
	d := fmt.Sprintf("decoder.%d.", l)
	return map[string]expected{
		d + "mixer.query.weight":     {[]int{q, H}, rows(qkv, H, 0, q)},
		d + "mixer.key_value.weight": {[]int{2 * kv, H}, append(slices.Clone(rows(qkv, H, q, q+kv)), rows(qkv, H, q+kv, q+2*kv)...)},
		d + "mixer.dense.weight":     {[]int{H, q}, hf.bf16(p+"self_attn.o_proj.weight", H, q)},
		d + "mlp.layer_1.weight":     {[]int{2 * I, H}, append(slices.Clone(rows(gateUp, H, 0, I)), rows(gateUp, H, I, 2*I)...)},
		d + "mlp.layer_2.weight":     {[]int{I, H}, transposed(hf.bf16(p+"mlp.down_proj.weight", H, I), H, I)},
	}
}

func TestReferenceQwen3(t *testing.T) {
	biased := synth.TinyQwen3()
	biased.AttentionBias, biased.HeadDim = true, 32 // heads * head_dim != hidden, as in Qwen3-0.6B
	for _, a := range []synth.Arch{synth.TinyQwen3(), biased} {
		hfDir := generate(t, a, synth.Options{})
		out, _ := convert(t, load(t, "qwen3"), hfDir, engine.PlanOptions{})
		hf, fl := openHF(t, hfDir), openFastLLM(t, out)
		for l := range a.Layers {
			checkAgainst(t, fl, refQwen3Attention(hf, a, l))
			checkAgainst(t, fl, refLlamaLayer(hf, a, l))
		}
	}
}

func TestReferenceQwen3MoE(t *testing.T) {
	t.Parallel()
	a := synth.TinyQwen3MoE()
	a.Experts, a.KVHeads = 3, 1 // E, I and H all differ; one key/value head
	hfDir := generate(t, a, synth.Options{})
	out, _ := convert(t, load(t, "qwen3_moe"), hfDir, engine.PlanOptions{})
	hf, fl := openHF(t, hfDir), openFastLLM(t, out)
	for l := range a.Layers {
		checkAgainst(t, fl, refQwen3Attention(hf, a, l))
		checkAgainst(t, fl, refQwen3MoEExperts(hf, a, l))
	}
}

func TestReferencePhi3(t *testing.T) {
	t.Parallel()
	for _, kvHeads := range []int{1, 2, 4} {
		a := synth.TinyPhi3()
		a.KVHeads = kvHeads
		hfDir := generate(t, a, synth.Options{})
		out, _ := convert(t, load(t, "phi3"), hfDir, engine.PlanOptions{})
		hf, fl := openHF(t, hfDir), openFastLLM(t, out)
		for l := range a.Layers {
			checkAgainst(t, fl, refPhi3Layer(hf, a, l))
		}
	}
}

// TestReferenceMTPLlama: MTPLlamaModel keeps mtp_norms[0] as the model's
// own final norm and runs, for prediction distance i+2, mtp_heads[i] then
// mtp_norms[i+1]; Fast-LLM's converter (mtp_llama.py) puts them at
// head.final_norm, multi_token_prediction.blocks.{i} and
// multi_token_prediction.heads.{i}.final_norm.
func TestReferenceMTPLlama(t *testing.T) {
	t.Parallel()
	a := synth.TinyMTPLlama()
	a.PredictionHeads = 3
	hfDir := generate(t, a, synth.Options{})
	out, _ := convert(t, load(t, "mtp_llama"), hfDir, engine.PlanOptions{})
	hf, fl := openHF(t, hfDir), openFastLLM(t, out)
	H, I := a.Hidden, a.Intermediate
	want := map[string]expected{"head.final_norm.weight": {[]int{H}, hf.bf16("model.mtp_norms.0.weight", H)}}
	for i := range a.PredictionHeads - 1 {
		p, d := fmt.Sprintf("model.mtp_heads.%d.", i), fmt.Sprintf("multi_token_prediction.blocks.%d.", i)
		want[fmt.Sprintf("multi_token_prediction.heads.%d.final_norm.weight", i)] = expected{[]int{H}, hf.bf16(fmt.Sprintf("model.mtp_norms.%d.weight", i+1), H)}
		want[d+"norm_1.weight"] = expected{[]int{H}, hf.bf16(p+"input_layernorm.weight", H)}
		want[d+"mlp.layer_2.weight"] = expected{[]int{I, H}, transposed(hf.bf16(p+"mlp.down_proj.weight", H, I), H, I)}
	}
	if fl.has("multi_token_prediction.heads.2.final_norm.weight") || fl.has("multi_token_prediction.blocks.2.norm_1.weight") {
		t.Error("a third extra head for prediction_heads 3")
	}
	checkAgainst(t, fl, want)
}

// refAprielHybridSSM computes every Fast-LLM tensor of an
// apriel_hybrid_ssm checkpoint as Fast-LLM main's converter does
// (fast_llm/models/gpt/conversion/apriel.py on mistral.py and llama.py),
// written from that source, not from the mapping: the decoder is a
// DispatchBlockSequenceWeightConverter over model.layers, each layer by its
// mixer (hybrid_block_layout[l]). An attention layer ("t") is
// MistralBlockConverter's: query = q_proj, key_value =
// KeyValueWeightConverter (cat[k, v]), dense = o_proj, no biases
// (Mistral's constant add_linear_biases false). A Mamba layer ("m2") is
// AprielMambaBlockConverter's, whose mixer (hf_mixer_name "mixer") is
// AprielMambaConverter: in_proj, dt_in_proj, dt_proj, convolution <-
// conv1d, A_log, D and out_proj, each a plain WeightConverter (a copy)
// under the same name but the convolution's; the biases of in_proj,
// dt_in_proj and out_proj follow add_linear_biases (ssm_cfg.bias),
// dt_proj's dt_layer (ssm_cfg.dt_proj_bias), the convolution's
// convolution_layer (ssm_cfg.conv_bias). A gated DeltaNet layer ("gdn")
// is AprielGatedDeltaNetBlockConverter's, its mixer GatedDeltaNetConverter:
// in_proj_qkvz, in_proj_ba, convolution, out_proj, A_log, dt_bias and norm
// copied under their own names, never a bias (bias_fn=False). All kinds
// share Llama's MLP
// (layer_1 = SplitWeightConverter, cat[gate, up]; layer_2 =
// TransposeSplitWeightConverter, down transposed) and norms (norm_1 =
// input_layernorm, norm_2 = post_attention_layernorm). Around them:
// embeddings.word_embeddings_weight = model.embed_tokens.weight,
// head.final_norm.weight = model.norm.weight, head.output_weights =
// lm_head.weight unless the embeddings are tied. The HF shapes are
// modeling_apriel_hybrid_ssm.py's (Mamba2: in_proj [2 d_xb + 2 d_inner,
// H], conv1d [C, 1, 4], ...); the GDN's are apriel2's
// Apriel2GatedDeltaNet's, which has Fast-LLM's names. lm prefixes the
// embeddings' and the layers' HF names (llava_hybrid's language_model.),
// not the head's.
func refAprielHybridSSM(hf *checkpoint, a synth.Arch, lm string) map[string]expected {
	H, I, V := a.Hidden, a.Intermediate, a.Vocab
	q, kv := a.Heads*a.HeadDim, a.KVHeads*a.HeadDim
	m := a.Mamba
	xb := m.XB
	if xb == 0 { // Mamba2: d_xb = d_model when the config has none
		xb = H
	}
	dt := m.DTRank
	if dt == 0 { // "auto": math.ceil(d_model / 16)
		dt = int(math.Ceil(float64(H) / 16))
	}
	conv := m.Inner
	if m.ConvOnXB { // repeat_kv_before_conv false
		conv = xb
	}
	out := map[string]expected{
		"embeddings.word_embeddings_weight": {[]int{V, H}, hf.bf16(lm+"model.embed_tokens.weight", V, H)},
		"head.final_norm.weight":            {[]int{H}, hf.bf16("model.norm.weight", H)},
	}
	if !a.TieEmbeddings {
		out["head.output_weights"] = expected{[]int{V, H}, hf.bf16("lm_head.weight", V, H)}
	}
	same := func(d, p string, shape ...int) { out[d] = expected{shape, hf.bf16(p, shape...)} }
	for l, kind := range a.Layout {
		p, d := fmt.Sprintf("%smodel.layers.%d.", lm, l), fmt.Sprintf("decoder.%d.", l)
		switch kind {
		case "t":
			same(d+"mixer.query.weight", p+"self_attn.q_proj.weight", q, H)
			out[d+"mixer.key_value.weight"] = expected{[]int{2 * kv, H},
				append(hf.bf16(p+"self_attn.k_proj.weight", kv, H), hf.bf16(p+"self_attn.v_proj.weight", kv, H)...)}
			same(d+"mixer.dense.weight", p+"self_attn.o_proj.weight", H, q)
		case "m2":
			x, y := p+"mixer.", d+"mixer."
			same(y+"in_proj.weight", x+"in_proj.weight", 2*xb+2*m.Inner, H)
			same(y+"dt_in_proj.weight", x+"dt_in_proj.weight", dt, H)
			same(y+"dt_proj.weight", x+"dt_proj.weight", m.Inner, dt)
			same(y+"convolution.weight", x+"conv1d.weight", conv, 1, 4)
			same(y+"A_log", x+"A_log", m.Inner, m.State)
			same(y+"D", x+"D", m.Inner)
			same(y+"out_proj.weight", x+"out_proj.weight", H, m.Inner)
			if m.Bias {
				same(y+"in_proj.bias", x+"in_proj.bias", 2*xb+2*m.Inner)
				same(y+"dt_in_proj.bias", x+"dt_in_proj.bias", dt)
				same(y+"out_proj.bias", x+"out_proj.bias", H)
			}
			if m.DTProjBias {
				same(y+"dt_proj.bias", x+"dt_proj.bias", m.Inner)
			}
			if m.ConvBias {
				same(y+"convolution.bias", x+"conv1d.bias", conv)
			}
		case "gdn":
			g := a.GDN
			key, value := g.KeyHeads*g.KeyHeadDim, g.ValueHeads*g.ValueHeadDim
			x, y := p+"mixer.", d+"mixer."
			same(y+"in_proj_qkvz.weight", x+"in_proj_qkvz.weight", 2*key+2*value, H)
			same(y+"in_proj_ba.weight", x+"in_proj_ba.weight", 2*g.ValueHeads, H)
			same(y+"convolution.weight", x+"convolution.weight", 2*key+value, 1, g.Kernel)
			same(y+"out_proj.weight", x+"out_proj.weight", H, value)
			same(y+"A_log", x+"A_log", g.ValueHeads)
			same(y+"dt_bias", x+"dt_bias", g.ValueHeads)
			same(y+"norm.weight", x+"norm.weight", g.ValueHeadDim)
		default:
			panic("layout entry " + kind)
		}
		out[d+"mlp.layer_1.weight"] = expected{[]int{2 * I, H},
			append(hf.bf16(p+"mlp.gate_proj.weight", I, H), hf.bf16(p+"mlp.up_proj.weight", I, H)...)}
		out[d+"mlp.layer_2.weight"] = expected{[]int{I, H}, transposed(hf.bf16(p+"mlp.down_proj.weight", H, I), H, I)}
		same(d+"norm_1.weight", p+"input_layernorm.weight", H)
		same(d+"norm_2.weight", p+"post_attention_layernorm.weight", H)
	}
	return out
}

func TestReferenceAprielHybridSSM(t *testing.T) {
	t.Parallel()
	for _, a := range []synth.Arch{synth.TinyAprielHybridSSM(), aprielBiased(6), aprielGDN(), aprielLayout("m2", "t", "t", "m2")} {
		hfDir := generate(t, a, synth.Options{})
		out, _ := convert(t, load(t, "apriel_hybrid_ssm"), hfDir, engine.PlanOptions{})
		hf, fl := openHF(t, hfDir), openFastLLM(t, out)
		checkExactly(t, fmt.Sprint(a.Layout), fl, refAprielHybridSSM(hf, a, ""))
	}
}

// refLlava computes every Fast-LLM tensor of a llava checkpoint, written
// from Fast-LLM's llava converter (main, models/multimodal/conversion/
// llava.py, and the Llama/Mistral converters it builds on): the text model
// under language_model. as Llama's (k and v concatenated, gate and up
// concatenated, down transposed; Llava's lm_head always kept); the vision
// tower's blocks the same under Pixtral's names (attention, feed_forward,
// attention_norm, ffn_norm); the patch convolution's [out, channels, h, w]
// kernel viewed as [out, channels * h * w] (PatchEmbeddingWeightConverter),
// ln_pre the embeddings' norm; the projector's linear_1 as it is, linear_2
// transposed (TransposeSplitWeightConverter), its biases as they are.
func refLlava(hf *checkpoint, a synth.Arch) map[string]expected {
	out := map[string]expected{}
	same, block := refLlavaHelpers(hf, out)
	H, V := a.Hidden, a.Vocab
	same("embeddings.word_embeddings_weight", "language_model.model.embed_tokens.weight", V, H)
	same("head.final_norm.weight", "language_model.model.norm.weight", H)
	same("head.output_weights", "language_model.lm_head.weight", V, H)
	for l := range a.Layers {
		block(fmt.Sprintf("language_model.model.layers.%d.", l), fmt.Sprintf("decoder.%d.", l), "self_attn.", "mlp.",
			"input_layernorm.weight", "post_attention_layernorm.weight", H, a.Intermediate, a.Heads*a.HeadDim, a.KVHeads*a.HeadDim)
	}
	refPixtral(hf, a, out)
	return out
}

// refLlavaHelpers gives refLlava's two helpers, which add to out: same (a
// tensor as it is) and block (a Llama block under the given names).
func refLlavaHelpers(hf *checkpoint, out map[string]expected) (same func(fl, name string, shape ...int),
	block func(hfp, flp, attn, mlp, norm1, norm2 string, H, I, q, kv int)) {
	same = func(fl, name string, shape ...int) { out[fl] = expected{shape, hf.bf16(name, shape...)} }
	block = func(hfp, flp, attn, mlp, norm1, norm2 string, H, I, q, kv int) {
		same(flp+"norm_1.weight", hfp+norm1, H)
		same(flp+"norm_2.weight", hfp+norm2, H)
		same(flp+"mixer.query.weight", hfp+attn+"q_proj.weight", q, H)
		out[flp+"mixer.key_value.weight"] = expected{[]int{2 * kv, H},
			append(hf.bf16(hfp+attn+"k_proj.weight", kv, H), hf.bf16(hfp+attn+"v_proj.weight", kv, H)...)}
		same(flp+"mixer.dense.weight", hfp+attn+"o_proj.weight", H, q)
		out[flp+"mlp.layer_1.weight"] = expected{[]int{2 * I, H},
			append(hf.bf16(hfp+mlp+"gate_proj.weight", I, H), hf.bf16(hfp+mlp+"up_proj.weight", I, H)...)}
		out[flp+"mlp.layer_2.weight"] = expected{[]int{I, H}, transposed(hf.bf16(hfp+mlp+"down_proj.weight", H, I), H, I)}
	}
	return same, block
}

// refPixtral adds llava's vision tower and projector (refLlava's comment)
// to out.
func refPixtral(hf *checkpoint, a synth.Arch, out map[string]expected) {
	same, block := refLlavaHelpers(hf, out)
	H := a.Hidden
	v := a.Vision
	P := v.PatchSize
	out["vision_encoder.embeddings.patch_embeddings.weight"] = expected{[]int{v.Hidden, 3 * P * P},
		hf.bf16("vision_tower.patch_conv.weight", v.Hidden, 3, P, P)}
	same("vision_encoder.embeddings.normalization.weight", "vision_tower.ln_pre.weight", v.Hidden)
	for l := range v.Layers {
		block(fmt.Sprintf("vision_tower.transformer.layers.%d.", l), fmt.Sprintf("vision_encoder.encoder.%d.", l), "attention.",
			"feed_forward.", "attention_norm.weight", "ffn_norm.weight", v.Hidden, v.Intermediate, v.Hidden, v.Hidden)
	}
	same("vision_encoder.adapter.layer_1.weight", "multi_modal_projector.linear_1.weight", H, v.Hidden)
	same("vision_encoder.adapter.layer_1.bias", "multi_modal_projector.linear_1.bias", H)
	out["vision_encoder.adapter.layer_2.weight"] = expected{[]int{H, H}, transposed(hf.bf16("multi_modal_projector.linear_2.weight", H, H), H, H)}
	same("vision_encoder.adapter.layer_2.bias", "multi_modal_projector.linear_2.bias", H)
}

// refLlavaHybrid computes every Fast-LLM tensor of a llava_hybrid
// checkpoint as Fast-LLM main's llava_hybrid converter (llava_hybrid.py:
// llava.py's LlavaBaseModelConverter with apriel.py's text model) does
// where it converts the tensor: the embeddings under language_model.model
// (the embeddings converter), the final norm and lm_head under their own
// names model.norm and lm_head (the Apriel/Llama head converter under an
// empty prefix, lm_head dropped when tied), the vision tower and projector
// as llava's. Its decoder is llava.py's BlockSequenceWeightConverter with
// the Apriel converter's block_converter_class, Mistral's, for every layer:
// an attention layer as apriel's; a Mamba or GDN layer's mixer it does not
// read, and those are apriel.py's dispatch (refAprielHybridSSM).
func refLlavaHybrid(hf *checkpoint, a synth.Arch) map[string]expected {
	out := refAprielHybridSSM(hf, a, "language_model.")
	refPixtral(hf, a, out)
	return out
}

func TestReferenceLlavaHybrid(t *testing.T) {
	t.Parallel()
	for _, a := range []synth.Arch{synth.TinyLlavaHybrid(), llavaHybridLayout("t", "t"), llavaHybridMamba(), llavaHybridGDN(), llavaHybridTied()} {
		hfDir := generate(t, a, synth.Options{})
		out, _ := convert(t, load(t, "llava_hybrid"), hfDir, engine.PlanOptions{})
		hf, fl := openHF(t, hfDir), openFastLLM(t, out)
		checkExactly(t, fmt.Sprintf("%v tied %v", a.Layout, a.TieEmbeddings), fl, refLlavaHybrid(hf, a))
	}
}

func TestReferenceLlava(t *testing.T) {
	t.Parallel()
	// The tiny model, and one whose vision tower has more heads, a wider
	// MLP and another patch size: a width taken from the wrong tower
	// cannot hide.
	other := synth.TinyLlava()
	other.Vision = synth.Vision{Hidden: 48, Intermediate: 80, Layers: 3, Heads: 4, PatchSize: 2}
	for _, a := range []synth.Arch{synth.TinyLlava(), other} {
		hfDir := generate(t, a, synth.Options{})
		out, _ := convert(t, load(t, "llava"), hfDir, engine.PlanOptions{})
		hf, fl := openHF(t, hfDir), openFastLLM(t, out)
		checkExactly(t, fmt.Sprintf("%+v", a.Vision), fl, refLlava(hf, a))
	}
}
