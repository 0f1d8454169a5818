package engine

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/mappings"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"

	// The sides the tests convert between.
	_ "github.com/mapper-dev/mapper/engine/format/fastllm"
	_ "github.com/mapper-dev/mapper/engine/format/hf"
)

// loadMapping checks a .map source and fails the test on any error. Its
// includes are the built-in fragment files (a copy of a built-in mapping).
func loadMapping(t testing.TB, name string, src []byte) *ir.Mapping {
	t.Helper()
	m, diags := mappings.LoadFile(name, src)
	if diags.HasErrors() || m == nil {
		t.Fatalf("%s does not check:\n%v", name, diags)
	}
	return m
}

// loadMapFile loads a .map file under testdata by its path.
func loadMapFile(t testing.TB, path string) *ir.Mapping {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return loadMapping(t, path, src)
}

// smallConfig is the config.json of the checkpoint testdata/small.map is
// written for. head_dim is absent on purpose: the mapping's default fills it
// in, and the way back must leave it out again.
func smallConfig() map[string]any {
	return map[string]any{
		"architectures":        []any{"SmallForCausalLM"},
		"attention_bias":       true,
		"bos_token_id":         int64(1),
		"eos_token_id":         int64(2),
		"hidden_act":           "gelu_pytorch_tanh",
		"hidden_size":          int64(32),
		"intermediate_size":    int64(16),
		"model_type":           "small",
		"num_attention_heads":  int64(4),
		"num_hidden_layers":    int64(2),
		"num_local_experts":    int64(3),
		"rms_norm_eps":         1e-05,
		"tie_word_embeddings":  false,
		"torch_dtype":          "bfloat16",
		"transformers_version": "4.55.0",
		"vocab_size":           int64(40),
	}
}

// smallTensors lists the HF tensors a small config implies, as
// testdata/small.map names them.
func smallTensors(cfg map[string]any) []safetensors.Entry {
	i := func(k string) int { return int(cfg[k].(int64)) }
	hidden, inter, heads, vocab, experts := i("hidden_size"), i("intermediate_size"), i("num_attention_heads"), i("vocab_size"), i("num_local_experts")
	hd := hidden / heads
	if v, ok := cfg["head_dim"]; ok {
		hd = int(v.(int64))
	}
	bf := func(name string, shape ...int) safetensors.Entry {
		return safetensors.Entry{Name: name, DType: tensor.BF16, Shape: shape}
	}
	out := []safetensors.Entry{bf("model.embed_tokens.weight", vocab, hidden), bf("model.norm.weight", hidden)}
	if cfg["tie_word_embeddings"] != true {
		out = append(out, bf("lm_head.weight", vocab, hidden))
	}
	for l := range i("num_hidden_layers") {
		p := "model.layers." + strconv.Itoa(l) + "."
		out = append(out,
			bf(p+"input_layernorm.weight", hidden),
			bf(p+"self_attn.q_proj.weight", heads*hd, hidden),
			bf(p+"self_attn.k_proj.weight", hd, hidden),
			bf(p+"self_attn.v_proj.weight", hd, hidden),
			bf(p+"self_attn.o_proj.weight", hidden, heads*hd),
			bf(p+"self_attn.sinks", heads),
			bf(p+"mlp.router.weight", experts, hidden))
		if cfg["attention_bias"] == true {
			out = append(out, bf(p+"self_attn.k_proj.bias", hd), bf(p+"self_attn.v_proj.bias", hd))
		}
		for e := range experts {
			q := p + "mlp.experts." + strconv.Itoa(e) + "."
			out = append(out, bf(q+"gate_proj.weight", inter, hidden), bf(q+"up_proj.weight", inter, hidden), bf(q+"down_proj.weight", hidden, inter))
		}
	}
	return out
}

// writeSmallHF writes a one-file HF checkpoint for cfg (smallConfig with
// changes) into dir: config.json as transformers writes it, the tensors with
// deterministic BF16 values, and a side file.
func writeSmallHF(t testing.TB, dir string, cfg map[string]any) {
	t.Helper()
	writeHF(t, dir, cfg, smallTensors(cfg))
}

// writeHF writes config.json and model.safetensors holding entries, filled
// with deterministic finite values drawn from each tensor's name.
func writeHF(t testing.TB, dir string, cfg map[string]any, entries []safetensors.Entry) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	js, err := pyjson.Encode(cfg, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte("{\"model\": {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := safetensors.NewLayout(entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.Create(filepath.Join(dir, "model.safetensors"), l)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n, _ := e.Size()
		if err := w.WriteAt(e.Name, 0, fillBytes(e.Name, e.DType, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
}

// fillBytes returns n bytes of deterministic data for a tensor: finite
// floats in (-2, 2) for float dtypes (so casts are exact both ways), random
// bytes otherwise.
func fillBytes(name string, dt tensor.DType, n int64) []byte {
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(h.Sum64(), 7))
	b := make([]byte, n)
	switch dt {
	case tensor.BF16:
		for i := int64(0); i+1 < n; i += 2 {
			f := float32(r.Float64()*4 - 2)
			binary.LittleEndian.PutUint16(b[i:], uint16(math.Float32bits(f)>>16))
		}
	case tensor.F32:
		for i := int64(0); i+3 < n; i += 4 {
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(r.Float64()*4-2)))
		}
	default:
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
	return b
}

// testPlan plans m as the tests do. The engine's own mappings
// (testdata/*.map and the sources the tests write) are toys that exercise
// the engine, not models a Fast-LLM builds (small.map has no norm_2 and
// main's Fast-LLM has no sinks), so they are planned without the parameter
// check; the shipped mappings (mappings/*.map) are checked as always.
// params_test.go tests the check itself.
func testPlan(m *ir.Mapping, dir string, opt PlanOptions) (*Plan, error) {
	if !strings.HasPrefix(m.File, "mappings/") {
		opt.NoParamCheck = true
	}
	return NewPlan(m, dir, opt)
}

// convert plans and executes one conversion of in into out.
func convert(t testing.TB, m *ir.Mapping, in, out string, opt PlanOptions) (*Plan, *Stats) {
	t.Helper()
	p, err := testPlan(m, in, opt)
	if err != nil {
		t.Fatalf("plan %s: %v", in, err)
	}
	defer p.Close()
	st, err := p.Execute(context.Background(), ExecOptions{Output: out})
	if err != nil {
		t.Fatalf("execute %s -> %s: %v", in, out, err)
	}
	return p, st
}

// assertSameDir checks that two directories hold the same files with the
// same bytes.
func assertSameDir(t testing.TB, want, got string) {
	t.Helper()
	we, err := os.ReadDir(want)
	if err != nil {
		t.Fatal(err)
	}
	ge, err := os.ReadDir(got)
	if err != nil {
		t.Fatal(err)
	}
	names := func(es []os.DirEntry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.Name())
		}
		return strings.Join(s, " ")
	}
	if names(we) != names(ge) {
		t.Fatalf("files differ:\n  %s: %s\n  %s: %s", want, names(we), got, names(ge))
	}
	for _, e := range we {
		a, err := os.ReadFile(filepath.Join(want, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(got, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != string(b) {
			if strings.HasSuffix(e.Name(), ".json") {
				t.Errorf("%s differs:\n--- %s\n%s\n--- %s\n%s", e.Name(), want, a, got, b)
			} else {
				t.Errorf("%s differs (%d vs %d bytes)", e.Name(), len(a), len(b))
			}
		}
	}
}
