package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// hybridConfig is the config.json testdata/hybrid.map is written for: the
// layers' kinds and MLP sizes are per-layer lists, and dt_rank is absent
// (the mapping computes it with ceil_div).
func hybridConfig(kinds []string, sizes []int64) map[string]any {
	var k, s []any
	for _, x := range kinds {
		k = append(k, x)
	}
	for _, x := range sizes {
		s = append(s, x)
	}
	return map[string]any{
		"hidden_size":         int64(12),
		"vocab_size":          int64(20),
		"num_hidden_layers":   int64(len(kinds)),
		"layer_kinds":         k,
		"intermediate_sizes":  s,
		"num_attention_heads": int64(2),
		"head_dim":            int64(4),
		"ssm_state_size":      int64(4),
		"ssm_expand":          int64(2),
		"rms_norm_eps":        1e-05,
		"model_type":          "hybrid",
	}
}

// hybridTensors lists the HF tensors of a hybrid config: attention layers
// and SSM layers hold different tensors, and out_proj.weight has another
// shape in each kind.
func hybridTensors(kinds []string, sizes []int64) []safetensors.Entry {
	const hidden, vocab, heads, hd, state, inner, dtRank = 12, 20, 2, 4, 4, 24, 2 // dt_rank = ceil(12 / 6)
	bf := func(name string, shape ...int) safetensors.Entry {
		return safetensors.Entry{Name: name, DType: tensor.BF16, Shape: shape}
	}
	out := []safetensors.Entry{bf("model.embed_tokens.weight", vocab, hidden), bf("model.norm.weight", hidden)}
	for l, kind := range kinds {
		p := "model.layers." + strconv.Itoa(l) + "."
		inter := int(sizes[l])
		out = append(out, bf(p+"input_layernorm.weight", hidden), bf(p+"mlp.up_proj.weight", inter, hidden), bf(p+"mlp.down_proj.weight", hidden, inter))
		switch kind {
		case "attn":
			out = append(out, bf(p+"self_attn.q_proj.weight", heads*hd, hidden), bf(p+"self_attn.k_proj.weight", hd, hidden),
				bf(p+"self_attn.v_proj.weight", hd, hidden), bf(p+"out_proj.weight", hidden, heads*hd))
		case "ssm":
			out = append(out, bf(p+"mixer.in_proj.weight", 2*inner, hidden),
				safetensors.Entry{Name: p + "mixer.A_log", DType: tensor.F32, Shape: []int{inner, state}},
				bf(p+"mixer.dt_proj.weight", inner, dtRank), bf(p+"mixer.conv1d.weight", inner, 1, 4), bf(p+"out_proj.weight", hidden, inner))
		}
	}
	return out
}

// TestRoundTripHybrid converts hybrid checkpoints HF -> Fast-LLM -> HF and
// expects every file back byte for byte: each layer's rules are chosen by
// its entry in layer_kinds, on import from the HF list and on export from
// the list the cycle rule rebuilds from Fast-LLM's pattern.
func TestRoundTripHybrid(t *testing.T) {
	m := loadMapFile(t, "testdata/hybrid.map")
	for _, tc := range []struct {
		name  string
		kinds []string
		sizes []int64
		note  string
	}{
		{"mixed", []string{"attn", "ssm", "ssm", "attn", "ssm"}, []int64{8, 16, 24, 8, 16},
			`when layer_kinds[l] == "ssm" (testdata/hybrid.map:60) holds for l: 1, 2, 4`},
		{"cycle", []string{"ssm", "attn", "ssm", "attn"}, []int64{8, 8, 8, 8},
			`when layer_kinds[l] == "attn" (testdata/hybrid.map:55) holds for l: 1, 3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			hfDir, fastDir, backDir := filepath.Join(root, "hf"), filepath.Join(root, "fast"), filepath.Join(root, "back")
			writeHF(t, hfDir, hybridConfig(tc.kinds, tc.sizes), hybridTensors(tc.kinds, tc.sizes))
			imp, _ := convert(t, m, hfDir, fastDir, PlanOptions{Workers: 2})
			if !slices.Contains(imp.Notes, tc.note) {
				t.Errorf("import notes lack %q:\n%s", tc.note, strings.Join(imp.Notes, "\n"))
			}
			// Fast-LLM's side names the SSM layers' tensors of its own.
			fast := tensorBytes(t, fastDir)
			for l, kind := range tc.kinds {
				_, ssm := fast["decoder."+strconv.Itoa(l)+".mixer.in_proj.weight"]
				_, attn := fast["decoder."+strconv.Itoa(l)+".mixer.query.weight"]
				if ssm != (kind == "ssm") || attn != (kind == "attn") {
					t.Errorf("layer %d (%s): in_proj %v, query %v", l, kind, ssm, attn)
				}
			}
			exp, _ := convert(t, m, fastDir, backDir, PlanOptions{Workers: 2})
			if exp.Direction != Export || !slices.Contains(exp.Notes, tc.note) {
				t.Errorf("export (%v) notes lack %q:\n%s", exp.Direction, tc.note, strings.Join(exp.Notes, "\n"))
			}
			assertSameDir(t, hfDir, backDir)
		})
	}
}

// TestHybridUnmatchedLayer: a layer whose kind no branch takes leaves its
// tensors unclaimed, and the error names the layer, the list and its value,
// once per layer.
func TestHybridUnmatchedLayer(t *testing.T) {
	src, err := os.ReadFile("testdata/hybrid.map")
	if err != nil {
		t.Fatal(err)
	}
	// The SSM branch now asks for another spelling: the SSM layers match none.
	src = []byte(strings.Replace(string(src), `when layer_kinds[l] == "ssm"`, `when layer_kinds[l] == "mamba"`, 1))
	m := loadMapping(t, "hybrid.map", src)
	dir := t.TempDir()
	kinds, sizes := []string{"attn", "ssm", "attn"}, []int64{8, 8, 8}
	writeHF(t, dir, hybridConfig(kinds, sizes), hybridTensors(kinds, sizes))
	_, err = testPlan(m, dir, PlanOptions{})
	if err == nil {
		t.Fatal("planned a checkpoint whose layer 1 matches no branch")
	}
	msg := err.Error()
	for _, want := range []string{
		`model.layers.1.mixer.A_log: not claimed by any rule of hybrid`,
		`under model.layers.1. no per-iteration branch applies: layer_kinds[l] == "attn" (hybrid.map:55) is false with l = 1, layer_kinds[1] = "ssm"; layer_kinds[l] == "mamba" (hybrid.map:60) is false with l = 1, layer_kinds[1] = "ssm"`,
		`(and 4 more tensors under model.layers.1.)`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "not claimed"); n != 1 {
		t.Errorf("%d unclaimed errors, want 1 for the layer:\n%s", n, msg)
	}
}
