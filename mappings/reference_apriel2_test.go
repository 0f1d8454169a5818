package mappings_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/pyjson"
)

// refApriel2Text computes every Fast-LLM tensor of an apriel2_text
// checkpoint as Fast-LLM main's converter does
// (fast_llm/models/gpt/conversion/apriel2.py), written from that source,
// not from the mapping, and read from the HF config.json as that
// converter's import reads it. The base model is embeddings
// (word_embeddings_weight = model.embed_tokens.weight), a
// BlockSequenceWeightConverter from decoder.{i} to model.decoder.blocks.{i}
// with block i's config (fixed: decoder.block; pattern: decoder.blocks of
// pattern[i mod len]), and the head (final_norm = model.norm,
// output_weights = lm_head.weight unless tied). A block
// (Apriel2BlockConverter) has norm_1 = input_layernorm, norm_2 =
// post_attention_layernorm, the MLP (Apriel2MLPConverter: layer_1 =
// SplitWeightConverter of (gate_proj, up_proj) when gated, else up_proj;
// layer_2 = TransposeSplitWeightConverter of down_proj; each bias by
// effective_bias(layer.bias.enabled, add_linear_biases)) and the mixer by
// its type: attention (query = q_proj, key_value = cat[k_proj, v_proj],
// dense = o_proj; biases as the MLP's, key_value's when both k and v have
// one), mamba (in_proj, dt_in_proj, dt_proj, convolution = conv1d, A_log, D,
// out_proj copied; dt_proj's bias by dt_layer.bias.enabled = dt_proj_bias,
// the convolution's by convolution_layer.bias.enabled = conv_bias, the
// others' by add_linear_biases), gdn (in_proj_qkvz, in_proj_ba,
// convolution, out_proj, dt_bias, A_log, norm.weight copied, no biases) or
// kda (q/k/v_proj, q/k/v_conv, f_a/f_b/g_a/g_b_proj, beta_proj, o_proj,
// A_log, dt_bias, norm.weight copied, no biases). Every key the
// converter's import reads must be in the config: where it is absent,
// Fast-LLM's own default would apply (biases on, head_groups 1, ...), which
// is not what the HF model builds, and the reference refuses to guess.
func refApriel2Text(t *testing.T, hf *checkpoint, cfg map[string]any) map[string]expected {
	t.Helper()
	r := apriel2Ref{t: t, hf: hf}
	get, num, flag := r.get, r.num, r.flag
	H, V := num(cfg, "hidden_size"), num(cfg, "vocab_size")
	out := map[string]expected{
		"embeddings.word_embeddings_weight": {[]int{V, H}, hf.bf16("model.embed_tokens.weight", V, H)},
		"head.final_norm.weight":            {[]int{H}, hf.bf16("model.norm.weight", H)},
	}
	if !flag(cfg, "tie_word_embeddings") {
		out["head.output_weights"] = expected{[]int{V, H}, hf.bf16("lm_head.weight", V, H)}
	}
	dec := get(cfg, "decoder").(map[string]any)
	for i := range num(dec, "num_blocks") {
		var block map[string]any
		if get(dec, "type") == "fixed" {
			block = get(dec, "block").(map[string]any)
		} else {
			pattern := get(dec, "pattern").([]any)
			block = get(dec, "blocks."+pattern[i%len(pattern)].(string)).(map[string]any)
		}
		r.block(out, block, H, fmt.Sprintf("model.decoder.blocks.%d.", i), fmt.Sprintf("decoder.%d.", i))
	}
	return out
}

// apriel2Ref reads an Apriel2 config as Fast-LLM's converters' import
// does, and the HF tensors they copy.
type apriel2Ref struct {
	t  *testing.T
	hf *checkpoint
}

// get is the value at a dotted path, which must be there.
func (r apriel2Ref) get(m map[string]any, path string) any {
	r.t.Helper()
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		next, ok := cur.(map[string]any)[k]
		if !ok {
			r.t.Fatalf("config: %s: no %s (Fast-LLM's converter would use its own default)", path, k)
		}
		cur = next
	}
	return cur
}

func (r apriel2Ref) num(m map[string]any, path string) int   { return int(r.get(m, path).(int64)) }
func (r apriel2Ref) flag(m map[string]any, path string) bool { return r.get(m, path).(bool) }

// bias is effective_bias: the layer's own bias.enabled, else the
// section-wide flag.
func (r apriel2Ref) bias(m map[string]any, layer string, def bool) bool {
	if l, ok := m[layer].(map[string]any); ok {
		if b, ok := l["bias"].(map[string]any)["enabled"].(bool); ok {
			return b
		}
	}
	return def
}

// block adds a block's tensors at width H, from the HF prefix p to the
// Fast-LLM prefix d (Apriel2BlockConverter's, whose attention is also what
// the vision blocks' PixtralAttentionConverter copies).
func (r apriel2Ref) block(out map[string]expected, block map[string]any, H int, p, d string) {
	t, hf, get, num, flag, bias := r.t, r.hf, r.get, r.num, r.flag, r.bias
	same := func(dst, src string, shape ...int) { out[d+dst] = expected{shape, hf.bf16(p+src, shape...)} }
	cat := func(dst string, shape []int, srcs ...string) {
		var v []float32
		for _, s := range srcs {
			part := append([]int{shape[0] / len(srcs)}, shape[1:]...)
			v = append(v, hf.bf16(p+s, part...)...)
		}
		out[d+dst] = expected{shape, v}
	}
	mixer := get(block, "mixer").(map[string]any)
	switch get(mixer, "type") {
	case "attention":
		q, kv := num(mixer, "heads")*num(mixer, "head_size"), num(mixer, "head_groups")*num(mixer, "head_size")
		all := flag(mixer, "add_linear_biases")
		same("mixer.query.weight", "mixer.q_proj.weight", q, H)
		cat("mixer.key_value.weight", []int{2 * kv, H}, "mixer.k_proj.weight", "mixer.v_proj.weight")
		same("mixer.dense.weight", "mixer.o_proj.weight", H, q)
		if bias(mixer, "query_layer", all) {
			same("mixer.query.bias", "mixer.q_proj.bias", q)
		}
		if bias(mixer, "key_layer", all) && bias(mixer, "value_layer", all) {
			cat("mixer.key_value.bias", []int{2 * kv}, "mixer.k_proj.bias", "mixer.v_proj.bias")
		}
		if bias(mixer, "dense_layer", all) {
			same("mixer.dense.bias", "mixer.o_proj.bias", H)
		}
	case "mamba":
		inner, xb, dt := num(mixer, "d_inner"), num(mixer, "d_xb"), num(mixer, "dt_rank")
		all := flag(mixer, "add_linear_biases")
		same("mixer.in_proj.weight", "mixer.in_proj.weight", 2*xb+2*inner, H)
		same("mixer.dt_in_proj.weight", "mixer.dt_in_proj.weight", dt, H)
		same("mixer.dt_proj.weight", "mixer.dt_proj.weight", inner, dt)
		same("mixer.convolution.weight", "mixer.conv1d.weight", inner, 1, num(mixer, "d_conv"))
		same("mixer.A_log", "mixer.A_log", inner, num(mixer, "state_size"))
		same("mixer.D", "mixer.D", inner)
		same("mixer.out_proj.weight", "mixer.out_proj.weight", H, inner)
		if all {
			same("mixer.in_proj.bias", "mixer.in_proj.bias", 2*xb+2*inner)
			same("mixer.dt_in_proj.bias", "mixer.dt_in_proj.bias", dt)
			same("mixer.out_proj.bias", "mixer.out_proj.bias", H)
		}
		if flag(mixer, "dt_proj_bias") {
			same("mixer.dt_proj.bias", "mixer.dt_proj.bias", inner)
		}
		if flag(mixer, "conv_bias") {
			same("mixer.convolution.bias", "mixer.conv1d.bias", inner)
		}
	case "gdn":
		vh, vd := num(mixer, "value_heads"), num(mixer, "value_head_dim")
		key, value := num(mixer, "key_heads")*num(mixer, "key_head_dim"), vh*vd
		for name, shape := range map[string][]int{
			"in_proj_qkvz.weight": {2*key + 2*value, H}, "in_proj_ba.weight": {2 * vh, H}, "out_proj.weight": {H, value},
			"convolution.weight": {2*key + value, 1, num(mixer, "convolution_layer.kernel_size")},
			"dt_bias":            {vh}, "A_log": {vh}, "norm.weight": {vd},
		} {
			same("mixer."+name, "mixer."+name, shape...)
		}
	case "kda":
		heads, hd := num(mixer, "heads"), num(mixer, "head_dim")
		P, k := heads*hd, num(mixer, "convolution_layer.kernel_size")
		shapes := map[string][]int{
			"f_a_proj.weight": {hd, H}, "f_b_proj.weight": {P, hd}, "g_a_proj.weight": {hd, H}, "g_b_proj.weight": {P, hd},
			"beta_proj.weight": {heads, H}, "o_proj.weight": {H, P}, "A_log": {heads}, "dt_bias": {P}, "norm.weight": {hd},
		}
		for _, x := range []string{"q", "k", "v"} {
			shapes[x+"_proj.weight"] = []int{P, H}
			shapes[x+"_conv.weight"] = []int{P, 1, k}
		}
		for name, shape := range shapes {
			same("mixer."+name, "mixer."+name, shape...)
		}
	default:
		t.Fatalf("block %s: mixer type %v", d, mixer["type"])
	}
	mlp := get(block, "mlp").(map[string]any)
	I, all := num(mlp, "intermediate_size"), flag(mlp, "add_linear_biases")
	if flag(mlp, "gated") {
		cat("mlp.layer_1.weight", []int{2 * I, H}, "mlp.gate_proj.weight", "mlp.up_proj.weight")
		if bias(mlp, "layer_1", all) {
			cat("mlp.layer_1.bias", []int{2 * I}, "mlp.gate_proj.bias", "mlp.up_proj.bias")
		}
	} else {
		same("mlp.layer_1.weight", "mlp.up_proj.weight", I, H)
		if bias(mlp, "layer_1", all) {
			same("mlp.layer_1.bias", "mlp.up_proj.bias", I)
		}
	}
	out[d+"mlp.layer_2.weight"] = expected{[]int{I, H}, transposed(hf.bf16(p+"mlp.down_proj.weight", H, I), H, I)}
	if bias(mlp, "layer_2", all) {
		same("mlp.layer_2.bias", "mlp.down_proj.bias", H)
	}
	same("norm_1.weight", "input_layernorm.weight", H)
	same("norm_2.weight", "post_attention_layernorm.weight", H)
}

// apriel2Explicit is apriel2Biased with the Mamba block's keys that HF
// leaves to its defaults written out, so that Fast-LLM's converter (whose
// defaults differ) reads the same model.
func apriel2Explicit() synth.Arch {
	a := apriel2Biased()
	maps.Copy(a.Apriel2.Blocks["ssm"]["mixer"].(map[string]any), map[string]any{"d_xb": int64(64), "dt_rank": int64(4), "d_conv": int64(4),
		"add_linear_biases": false})
	maps.Copy(a.Apriel2.Blocks["ssm"]["mlp"].(map[string]any), map[string]any{"add_linear_biases": false})
	return a
}

func TestReferenceApriel2Text(t *testing.T) {
	t.Parallel()
	for _, a := range []synth.Arch{synth.TinyApriel2Text(), apriel2Fixed(), apriel2Explicit()} {
		hfDir := generate(t, a, synth.Options{})
		out, _ := convert(t, load(t, "apriel2_text"), hfDir, engine.PlanOptions{})
		cfg, err := pyjson.Decode(readFile(t, filepath.Join(hfDir, "config.json")))
		if err != nil {
			t.Fatal(err)
		}
		hf, fl := openHF(t, hfDir), openFastLLM(t, out)
		want := refApriel2Text(t, hf, cfg.(map[string]any))
		checkAgainst(t, fl, want)
		// Nothing besides: Fast-LLM's converters make no other tensor.
		for _, n := range fl.ck.Names() {
			if _, ok := want[strings.TrimSuffix(n, "/weights")]; !ok {
				t.Errorf("%s: mapper writes %s, Fast-LLM's converter does not", hfDir, n)
			}
		}
		if len(fl.ck.Names()) != len(want) {
			t.Errorf("%s: mapper writes %d tensors, Fast-LLM's converter %d", hfDir, len(fl.ck.Names()), len(want))
		}
	}
}

// refApriel2 computes every Fast-LLM tensor of an apriel2 (multimodal)
// checkpoint as Fast-LLM main's multimodal converter does
// (fast_llm/models/multimodal/conversion/apriel2.py), written from that
// source: the text model as refApriel2Text (the same converters, the same
// HF names), and the vision encoder (Apriel2VisionModelConverter) from its
// absolute HF prefixes: embeddings (patch_embeddings =
// PatchEmbeddingWeightConverter of model.vision_encoder.embeddings.
// patch_embeddings, [V, 3, h, w] flattened to [V, 3 h w], no bias;
// normalization copied), the encoder (SelfBlockSequenceWeightConverter:
// encoder.{i} from model.vision_encoder.encoder.blocks.{i} with the fixed
// encoder's block, Apriel2VisionBlockConverter: Pixtral's q/k/v/o
// attention and Apriel2's MLP and norms) and the adapter
// (Apriel2VisionAdapterConverter: layer_1 = linear_1, layer_2 = linear_2
// transposed, each with its bias when add_linear_biases).
func refApriel2(t *testing.T, hf *checkpoint, cfg map[string]any) map[string]expected {
	t.Helper()
	r := apriel2Ref{t: t, hf: hf}
	out := refApriel2Text(t, hf, cfg)
	H := r.num(cfg, "hidden_size")
	v := r.get(cfg, "vision_encoder").(map[string]any)
	V, ph, pw := r.num(v, "hidden_size"), r.num(v, "embeddings.patch_height"), r.num(v, "embeddings.patch_width")
	const p = "model.vision_encoder."
	out["vision_encoder.embeddings.patch_embeddings.weight"] = expected{[]int{V, 3 * ph * pw}, hf.bf16(p+"embeddings.patch_embeddings.weight", V, 3, ph, pw)}
	out["vision_encoder.embeddings.normalization.weight"] = expected{[]int{V}, hf.bf16(p+"embeddings.normalization.weight", V)}
	if r.get(v, "encoder.type") != "fixed" {
		t.Fatalf("config: vision_encoder.encoder.type %v: Fast-LLM's converter reads a fixed encoder", r.get(v, "encoder.type"))
	}
	block := r.get(v, "encoder.block").(map[string]any)
	for i := range r.num(v, "encoder.num_blocks") {
		r.block(out, block, V, fmt.Sprintf("%sencoder.blocks.%d.", p, i), fmt.Sprintf("vision_encoder.encoder.%d.", i))
	}
	A := r.num(v, "adapter.intermediate_size")
	out["vision_encoder.adapter.layer_1.weight"] = expected{[]int{A, V}, hf.bf16(p+"adapter.linear_1.weight", A, V)}
	out["vision_encoder.adapter.layer_2.weight"] = expected{[]int{A, H}, transposed(hf.bf16(p+"adapter.linear_2.weight", H, A), H, A)}
	if r.flag(v, "adapter.add_linear_biases") {
		out["vision_encoder.adapter.layer_1.bias"] = expected{[]int{A}, hf.bf16(p+"adapter.linear_1.bias", A)}
		out["vision_encoder.adapter.layer_2.bias"] = expected{[]int{H}, hf.bf16(p+"adapter.linear_2.bias", H)}
	}
	return out
}

// apriel2Varied is an apriel2 model on the other branches: apriel2_text's
// pattern decoder (attention, sliding attention, GDN, KDA; tied), a vision
// encoder of 3 biased blocks with one key/value head, a 1D rotary and a
// plain MLP with biases, 2x2 patches, an adapter of 160 with the "gelu"
// spelling, and none of the keys Fast-LLM's exporter repeats (patch_size,
// num_hidden_layers, num_channels, input_channels,
// cross_document_attention).
func apriel2Varied() synth.Arch {
	a := synth.TinyApriel2Text()
	a.Family = synth.Apriel2Multimodal
	norm := map[string]any{"epsilon": 1e-06, "type": "rms_norm"}
	a.Apriel2.Vision = map[string]any{
		"adapter":    map[string]any{"activation": "gelu", "add_linear_biases": true, "gated": false, "intermediate_size": int64(160), "type": "mlp"},
		"embeddings": map[string]any{"normalization": maps.Clone(norm), "patch_height": int64(2), "patch_width": int64(2)},
		"encoder": map[string]any{"type": "fixed", "num_blocks": int64(3), "block": map[string]any{
			"mixer": map[string]any{"add_linear_biases": true, "causal": false, "head_groups": int64(1), "head_size": int64(32), "heads": int64(2),
				"rotary": map[string]any{"theta": 100.0, "type": "mistral_1d"}, "type": "attention"},
			"mlp":           map[string]any{"activation": "gelu_pytorch_tanh", "add_linear_biases": true, "gated": false, "intermediate_size": int64(96), "type": "mlp"},
			"normalization": maps.Clone(norm)}},
		"hidden_size": int64(64),
	}
	return a
}

func TestReferenceApriel2(t *testing.T) {
	t.Parallel()
	for _, a := range []synth.Arch{synth.TinyApriel2(), apriel2Varied()} {
		hfDir := generate(t, a, synth.Options{})
		out, _ := convert(t, load(t, "apriel2"), hfDir, engine.PlanOptions{})
		cfg, err := pyjson.Decode(readFile(t, filepath.Join(hfDir, "config.json")))
		if err != nil {
			t.Fatal(err)
		}
		hf, fl := openHF(t, hfDir), openFastLLM(t, out)
		checkExactly(t, hfDir, fl, refApriel2(t, hf, cfg.(map[string]any)))
	}
}
