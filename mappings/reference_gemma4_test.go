package mappings_test

// A second implementation of Fast-LLM's Gemma 4 weight converters, written
// in plain Go from their source (fast_llm/models/gpt/conversion/gemma4.py at
// Fast-LLM main 7d61a1ba, with the generic converters of
// engine/checkpoint/external.py): no engine, no .map file. Each Fast-LLM
// tensor is computed from the HF tensors as import_weight computes it, and
// what the gemma4 mapping produces must agree with it bit for bit.
//
//   - Gemma4AttentionConverter: query = q_proj, dense = o_proj, query_norm =
//     q_norm, key_norm = k_norm; key_value = cat(k_proj, v_proj) along rows
//     (KeyValueWeightConverter), or k_proj alone when the block's
//     shared_key_value is set (_Gemma4SharedKeyValueWeightConverter: a full
//     layer with attention_k_eq_v).
//   - Gemma4MLPConverter: layer_1 = cat(gate_proj, up_proj) along rows
//     (SplitWeightConverter), layer_2 = down_proj transposed
//     (TransposeSplitWeightConverter).
//   - Gemma4MoEMLPConverter (the routed branch, at the layer's HF root):
//     router = router.proj, router_scale = router.scale,
//     router_per_expert_scale = router.per_expert_scale; layer_1 =
//     experts.gate_up_proj [E, 2I, H] reshaped to [E*2I, H]
//     (Gemma4MoELayer1Converter); layer_2 = experts.down_proj [E, H, I]
//     permuted to [E, I, H], reshaped to [E*I, H] (Gemma4MoELayer2Converter).
//   - Gemma4BlockConverter: norm_1 = input_layernorm, post_mixer_norm =
//     post_attention_layernorm, post_mlp_norm = post_feedforward_layernorm,
//     output_scale = layer_scalar; norm_2 = pre_feedforward_layernorm for a
//     dense MLP only (_Gemma4BlockNorm2WeightConverter); for the hybrid MLP
//     (Gemma4HybridMoEMLPConverter) the dense branch is mlp.* with pre_norm
//     = pre_feedforward_layernorm and post_norm =
//     post_feedforward_layernorm_1, the routed one pre_norm =
//     pre_feedforward_layernorm_2 and post_norm =
//     post_feedforward_layernorm_2.
//   - Embeddings and head (LlamaEmbeddingsConverter, LlamaHeadConverter):
//     word_embeddings_weight = model.embed_tokens, final_norm = model.norm,
//     output_weights = lm_head unless tied.

import (
	"fmt"
	"slices"
	"testing"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/mappings/synth"
)

// gemma4Full says whether layer l of a is a full-attention one, from its
// config's layer_types.
func gemma4Full(a synth.Arch, l int) bool {
	return synth.Gemma4LayerTypes(a.Layers)[l] == "full_attention"
}

// refGemma4 computes every Fast-LLM tensor of a Gemma 4 checkpoint.
func refGemma4(hf *checkpoint, a synth.Arch) map[string]expected {
	H, V := a.Hidden, a.Vocab
	out := map[string]expected{
		"embeddings.word_embeddings_weight": {[]int{V, H}, hf.bf16("model.embed_tokens.weight", V, H)},
		"head.final_norm.weight":            {[]int{H}, hf.bf16("model.norm.weight", H)},
	}
	if !a.TieEmbeddings {
		out["head.output_weights"] = expected{[]int{V, H}, hf.bf16("lm_head.weight", V, H)}
	}
	for l := range a.Layers {
		for k, v := range refGemma4Layer(hf, a, l) {
			out[k] = v
		}
	}
	return out
}

// refGemma4Layer computes layer l's Fast-LLM tensors.
func refGemma4Layer(hf *checkpoint, a synth.Arch, l int) map[string]expected {
	H, I := a.Hidden, a.Intermediate
	full := gemma4Full(a, l)
	hd, kvHeads, shared := a.HeadDim, a.KVHeads, false
	if full {
		hd = a.GlobalHeadDim
		if a.SharedKV {
			kvHeads, shared = a.GlobalKVHeads, true
		}
	}
	q, kv := a.Heads*hd, kvHeads*hd
	p, d := fmt.Sprintf("model.layers.%d.", l), fmt.Sprintf("decoder.%d.", l)
	vec := func(name string, n int) []float32 { return hf.bf16(p+name, n) }
	out := map[string]expected{
		d + "mixer.query.weight":      {[]int{q, H}, hf.bf16(p+"self_attn.q_proj.weight", q, H)},
		d + "mixer.dense.weight":      {[]int{H, q}, hf.bf16(p+"self_attn.o_proj.weight", H, q)},
		d + "mixer.query_norm.weight": {[]int{hd}, vec("self_attn.q_norm.weight", hd)},
		d + "mixer.key_norm.weight":   {[]int{hd}, vec("self_attn.k_norm.weight", hd)},
		d + "norm_1.weight":           {[]int{H}, vec("input_layernorm.weight", H)},
		d + "post_mixer_norm.weight":  {[]int{H}, vec("post_attention_layernorm.weight", H)},
		d + "post_mlp_norm.weight":    {[]int{H}, vec("post_feedforward_layernorm.weight", H)},
		d + "output_scale":            {[]int{1}, vec("layer_scalar", 1)},
	}
	k := hf.bf16(p+"self_attn.k_proj.weight", kv, H)
	if shared {
		out[d+"mixer.key_value.weight"] = expected{[]int{kv, H}, k}
	} else {
		out[d+"mixer.key_value.weight"] = expected{[]int{2 * kv, H}, append(slices.Clone(k), hf.bf16(p+"self_attn.v_proj.weight", kv, H)...)}
	}
	// The dense MLP: at mlp. in a dense block, at mlp.dense. beside experts.
	dense := d + "mlp."
	if a.Experts > 0 {
		dense = d + "mlp.dense."
	}
	out[dense+"layer_1.weight"] = expected{[]int{2 * I, H}, append(hf.bf16(p+"mlp.gate_proj.weight", I, H), hf.bf16(p+"mlp.up_proj.weight", I, H)...)}
	out[dense+"layer_2.weight"] = expected{[]int{I, H}, transposed(hf.bf16(p+"mlp.down_proj.weight", H, I), H, I)}
	if a.Experts == 0 {
		out[d+"norm_2.weight"] = expected{[]int{H}, vec("pre_feedforward_layernorm.weight", H)}
		return out
	}
	E, EI := a.Experts, a.ExpertIntermediate
	r := d + "mlp.routed."
	out[dense+"pre_norm.weight"] = expected{[]int{H}, vec("pre_feedforward_layernorm.weight", H)}
	out[dense+"post_norm.weight"] = expected{[]int{H}, vec("post_feedforward_layernorm_1.weight", H)}
	out[r+"pre_norm.weight"] = expected{[]int{H}, vec("pre_feedforward_layernorm_2.weight", H)}
	out[r+"post_norm.weight"] = expected{[]int{H}, vec("post_feedforward_layernorm_2.weight", H)}
	out[r+"router.weight"] = expected{[]int{E, H}, hf.bf16(p+"router.proj.weight", E, H)}
	out[r+"router_scale"] = expected{[]int{H}, vec("router.scale", H)}
	out[r+"router_per_expert_scale"] = expected{[]int{E}, vec("router.per_expert_scale", E)}
	// gate_up [E, 2I, H] is already [gate; up] per expert, row-major.
	out[r+"layer_1.weight"] = expected{[]int{E * 2 * EI, H}, hf.bf16(p+"experts.gate_up_proj", E, 2*EI, H)}
	out[r+"layer_2.weight"] = expected{[]int{E * EI, H}, refExpertsDown(hf.bf16(p+"experts.down_proj", E, H, EI), E, H, EI)}
	return out
}

// refExpertsDown is Gemma4MoELayer2Converter.import_weight: down [E, H, I]
// permuted to [E, I, H] and flattened, element (e*I + i, h) = down[e, h, i].
func refExpertsDown(down []float32, E, H, I int) []float32 {
	out := make([]float32, E*I*H)
	for e := range E {
		for i := range I {
			for h := range H {
				out[(e*I+i)*H+h] = down[(e*H+h)*I+i]
			}
		}
	}
	return out
}

// gemma4Archs are the Gemma 4 shapes the tests convert: Fast-LLM's test
// model (hybrid MLP, equal head sizes), a dense one with other head sizes
// on full layers, untied, and one whose full layers' keys are the values,
// with fewer key heads and every width distinct (H, I, expert I, E).
func gemma4Archs() map[string]synth.Arch {
	dense := synth.TinyGemma4()
	dense.Experts, dense.ExpertsPerTok, dense.ExpertIntermediate, dense.TieEmbeddings = 0, 0, 0, false
	dense.Layers, dense.HeadDim = 3, 16
	kv := synth.TinyGemma4()
	kv.SharedKV, kv.GlobalKVHeads, kv.GlobalHeadDim = true, 2, 64
	rect := kv
	rect.Hidden, rect.Intermediate, rect.ExpertIntermediate, rect.Experts, rect.ExpertsPerTok = 96, 160, 48, 3, 2
	rect.Layers, rect.HeadDim, rect.GlobalHeadDim, rect.GlobalKVHeads, rect.TieEmbeddings = 7, 8, 24, 1, false
	return map[string]synth.Arch{"moe": synth.TinyGemma4(), "dense": dense, "kv": kv, "rect": rect, "one": gemma4OneLayer()}
}

// gemma4OneLayer has a single layer, full attention, whose head size is
// not the sliding layers'.
func gemma4OneLayer() synth.Arch {
	a := synth.TinyGemma4()
	a.Layers, a.GlobalHeadDim = 1, 64
	return a
}

// TestReferenceGemma4: every tensor of the import is the reference's, and
// there is no other.
func TestReferenceGemma4(t *testing.T) {
	for name, a := range gemma4Archs() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hfDir := generate(t, a, synth.Options{})
			out, _ := convert(t, load(t, "gemma4"), hfDir, engine.PlanOptions{})
			hf, fl := openHF(t, hfDir), openFastLLM(t, out)
			want := refGemma4(hf, a)
			checkAgainst(t, fl, want)
			n := 0
			for _, f := range fl.ck.Files {
				n += len(f.Tensors)
			}
			if n != len(want) {
				t.Errorf("the import has %d tensors, the reference %d", n, len(want))
			}
		})
	}
}

// TestReferenceGemma4Sanity pins the reference's experts permutation on
// hand-made values, so that an agreement with the mapping cannot come from
// both being wrong the same way: expert e's down_proj row h becomes column
// h of its [I, H] block of layer_2.
func TestReferenceGemma4Sanity(t *testing.T) {
	// E=2, H=2, I=3: down[e][h][i] = 100e + 10h + i.
	down := []float32{0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112}
	want := []float32{0, 10, 1, 11, 2, 12, 100, 110, 101, 111, 102, 112}
	if got := refExpertsDown(down, 2, 2, 3); !slices.Equal(got, want) {
		t.Errorf("layer_2 = %v, want %v", got, want)
	}
}
