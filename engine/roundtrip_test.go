package engine

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestRoundTripSmall converts the small test checkpoint HF -> Fast-LLM -> HF
// and expects every file back byte for byte: config.json (with head_dim
// still absent), the safetensors file and the side file.
func TestRoundTripSmall(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	for _, tc := range []struct {
		name   string
		change func(map[string]any)
	}{
		{"as-is", func(map[string]any) {}},
		// Without biases and with tied embeddings the when-rules drop out.
		{"no-bias-tied", func(c map[string]any) { c["attention_bias"], c["tie_word_embeddings"] = false, true }},
		// head_dim present and equal to the default stays present.
		{"explicit-head-dim", func(c map[string]any) { c["head_dim"] = int64(8) }},
		{"silu", func(c map[string]any) { c["hidden_act"] = "silu" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			hfDir, fastDir, backDir := filepath.Join(root, "hf"), filepath.Join(root, "fast"), filepath.Join(root, "back")
			cfg := smallConfig()
			tc.change(cfg)
			writeSmallHF(t, hfDir, cfg)
			imp, _ := convert(t, m, hfDir, fastDir, PlanOptions{Workers: 2})
			if imp.Direction != Import {
				t.Fatalf("first conversion is %v, want import", imp.Direction)
			}
			exp, _ := convert(t, m, fastDir, backDir, PlanOptions{Workers: 2})
			if exp.Direction != Export {
				t.Fatalf("second conversion is %v, want export", exp.Direction)
			}
			assertSameDir(t, hfDir, backDir)
			rep, err := Diff(hfDir, backDir)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Same() || slices.ContainsFunc(rep.Tensors, func(d TensorDiff) bool { return d.Kind != Identical }) {
				t.Errorf("diff after the round trip: %+v", rep.Tensors)
			}
			if want := len(smallTensors(cfg)); len(rep.Tensors) != want {
				t.Errorf("%d tensors compared, want %d", len(rep.Tensors), want)
			}
		})
	}
}
