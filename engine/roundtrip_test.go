package engine

import (
	"bytes"
	"path/filepath"
	"slices"
	"strconv"
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

// tensorBytes reads every tensor of a checkpoint by logical name.
func tensorBytes(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	src, err := OpenAny(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out := map[string][]byte{}
	for _, x := range src.Tensors {
		b, err := x.File.Data(x.Info.Name)
		if err != nil {
			t.Fatal(err)
		}
		out[x.Name] = slices.Clone(b)
	}
	return out
}

// transpose2 transposes a [rows, cols] matrix of elem-byte elements.
func transpose2(b []byte, rows, cols, elem int) []byte {
	out := make([]byte, len(b))
	for r := range rows {
		for c := range cols {
			copy(out[(c*rows+r)*elem:(c*rows+r+1)*elem], b[(r*cols+c)*elem:(r*cols+c+1)*elem])
		}
	}
	return out
}

// TestImportSmallValues checks the import of the small mapping against the
// layouts computed here by hand, so that a pair of wrong but mutually
// inverse kernels cannot pass the round trip unnoticed.
func TestImportSmallValues(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	root := t.TempDir()
	hfDir, fastDir := filepath.Join(root, "hf"), filepath.Join(root, "fast")
	cfg := smallConfig()
	writeSmallHF(t, hfDir, cfg)
	convert(t, m, hfDir, fastDir, PlanOptions{Workers: 2, Memory: 8 << 10})
	in, out := tensorBytes(t, hfDir), tensorBytes(t, fastDir)
	const hidden, inter, heads, experts = 32, 16, 4, 3
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	want := map[string][]byte{
		"embeddings.word_embeddings_weight": in["model.embed_tokens.weight"],
		"head.final_norm.weight":            in["model.norm.weight"],
		"head.output_weights":               in["lm_head.weight"],
	}
	for l := range 2 {
		p, q := "model.layers."+strconv.Itoa(l)+".", "decoder."+strconv.Itoa(l)+"."
		want[q+"norm_1.weight"] = in[p+"input_layernorm.weight"]
		want[q+"mixer.query.weight"] = in[p+"self_attn.q_proj.weight"]
		want[q+"mixer.key_value.weight"] = cat(in[p+"self_attn.k_proj.weight"], in[p+"self_attn.v_proj.weight"])
		want[q+"mixer.key_value.bias"] = cat(in[p+"self_attn.k_proj.bias"], in[p+"self_attn.v_proj.bias"])
		want[q+"mixer.dense.weight"] = transpose2(in[p+"self_attn.o_proj.weight"], hidden, hidden, 2)
		want[q+"mlp.router.weight"] = in[p+"mlp.router.weight"]
		// BF16 -> F32 puts the 16 bits on top of a zero low half.
		var sinks []byte
		for i := 0; i < heads*2; i += 2 {
			sinks = append(sinks, 0, 0, in[p+"self_attn.sinks"][i], in[p+"self_attn.sinks"][i+1])
		}
		want[q+"mixer.sinks"] = sinks
		var l1, l2 []byte
		for e := range experts {
			x := p + "mlp.experts." + strconv.Itoa(e) + "."
			l1 = cat(l1, in[x+"gate_proj.weight"], in[x+"up_proj.weight"])
			l2 = cat(l2, transpose2(in[x+"down_proj.weight"], hidden, inter, 2))
		}
		want[q+"mlp.layer_1.weight"], want[q+"mlp.layer_2.weight"] = l1, l2
	}
	if len(out) != len(want) {
		t.Errorf("the import wrote %d tensors, want %d", len(out), len(want))
	}
	for name, w := range want {
		if w == nil {
			t.Fatalf("test bug: no input for %s", name)
		}
		if g, ok := out[name]; !ok {
			t.Errorf("%s: missing from the output", name)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s: wrong bytes", name)
		}
	}
}
