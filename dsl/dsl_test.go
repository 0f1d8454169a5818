package dsl_test

import (
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
)

var update = flag.Bool("update", false, "rewrite golden files")

func load(t *testing.T, file string) (*ir.Mapping, diag.List, []byte) {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m, diags := dsl.Load(file, src)
	return m, diags, src
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// TestNewUser: three mistakes, three diagnostics in one run, each with its
// line, column, source line, caret and (where one exists) a hint.
func TestNewUser(t *testing.T) {
	_, diags, src := load(t, "testdata/newuser.map")
	if n := diags.Count(diag.Error); n != 3 {
		t.Errorf("got %d errors, want 3", n)
	}
	golden(t, "testdata/newuser.golden", diag.Text(diags, diag.Sources{"testdata/newuser.map": src}))
}

// TestSyntaxErrorsStopLoad: every syntax error is reported, but a file with
// any goes no further: no mapping, and no check runs on the declarations
// that did parse (the undefined name here is not reported).
func TestSyntaxErrorsStopLoad(t *testing.T) {
	src := []byte(`mapping m
left hf
right fast_llm
let a = undefined_name
config {
  a = b
}
let c = ]
`)
	m, diags := dsl.Load("s.map", src)
	if m != nil {
		t.Error("a mapping from a file with syntax errors")
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.Error())
	}
	want := []string{
		`s.map:6:5: error: syntax error: expected "<->", found "="`,
		`s.map:8:9: error: syntax error: expected an expression, found "]"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestGPTOSSLoadsClean(t *testing.T) {
	m, diags, src := load(t, "testdata/gpt_oss.map")
	if len(diags) > 0 {
		t.Fatalf("diagnostics:\n%s", diag.Text(diags, diag.Sources{"testdata/gpt_oss.map": src}))
	}
	if m.Name != "gpt_oss" || m.Left != "hf" || m.Right != "fast_llm" || m.OneWay {
		t.Errorf("header: %q %q %q %v", m.Name, m.Left, m.Right, m.OneWay)
	}
	if len(m.Samples) != 1 || m.Samples[0].Name != "tiny" || m.Samples[0].Values["quantization_config.quant_method"] != "mxfp4" ||
		m.Samples[0].Values["hidden_size"] != int64(64) || m.Samples[0].Values["tie_word_embeddings"] != false {
		t.Errorf("samples: %+v", m.Samples)
	}
	var lets []string
	for _, l := range m.Lets {
		lets = append(lets, l.Name+"="+ir.Format(l.Expr))
	}
	if want := []string{"layers=num_hidden_layers", "experts=num_local_experts", "hidden=hidden_size", "inter=intermediate_size"}; !reflect.DeepEqual(lets, want) {
		t.Errorf("lets %v, want %v", lets, want)
	}
	if len(m.Variants) != 2 || m.Variants[0].Name != "mxfp4" || ir.Format(m.Variants[0].When) != `quantization_config.quant_method == "mxfp4"` ||
		m.Variants[1].Name != "dense" || m.Variants[1].When != nil {
		t.Errorf("variants: %+v", m.Variants)
	}

	// Config rules.
	byLeft := map[string]*ir.ConfigRule{}
	for _, r := range m.Config {
		if len(r.Left.Segs) > 0 {
			byLeft[pathText(r.Left)] = r
		}
	}
	cy := byLeft["layer_types"]
	if cy == nil || cy.Kind != ir.ConfigCycle || pathText(cy.Right[0]) != "decoder" || ir.Format(cy.Length) != "num_hidden_layers" ||
		cy.Single != "sliding" || len(cy.ValueMap) != 2 || cy.ValueMap[1].Left != "full_attention" || cy.ValueMap[1].Right != "full" {
		t.Errorf("cycle: %+v", cy)
	}
	hd := byLeft["head_dim"]
	if hd == nil || hd.Kind != ir.ConfigRename || ir.Format(hd.LeftDefault) != "hidden_size / num_attention_heads" || pathText(hd.Right[0]) != "decoder.blocks.*.mixer.head_size" {
		t.Errorf("head_dim: %+v", hd)
	}
	if r := byLeft["rms_norm_eps"]; r == nil || len(r.Right) != 2 || pathText(r.Right[1]) != "head.normalization.epsilon" {
		t.Errorf("rms_norm_eps: %+v", r)
	}
	if r := byLeft["hidden_act"]; r == nil || len(r.ValueMap) != 1 || r.ValueMap[0].Left != "silu" || r.ValueMap[0].Right != "gpt_oss_glu" {
		t.Errorf("hidden_act: %+v", r)
	}
	if r := byLeft["model_type"]; r == nil || r.Kind != ir.ConfigLeftConst || r.Value != "gpt_oss" {
		t.Errorf("model_type: %+v", r)
	}
	q := byLeft["quantization_config"]
	if q == nil || q.Variant != "mxfp4" || !ir.ValuesEqual(q.Value, map[string]any{
		"modules_to_not_convert": []any{"model.layers.*.self_attn", "lm_head"}, "quant_method": "mxfp4"}) {
		t.Errorf("quantization_config: %+v", q)
	}
	var keep, rconst *ir.ConfigRule
	for _, r := range m.Config {
		switch r.Kind {
		case ir.ConfigKeep:
			keep = r
		case ir.ConfigRightConst:
			rconst = r
		}
	}
	if keep == nil || len(keep.Keys) != 2 || pathText(keep.Keys[1]) != "use_cache" {
		t.Errorf("keep: %+v", keep)
	}
	if rconst == nil || pathText(rconst.Right[0]) != "decoder.blocks.*.mlp.type" || rconst.Value != "moe" {
		t.Errorf("right const: %+v", rconst)
	}

	// Tensor rules.
	if len(m.Tensors) != 6 {
		t.Fatalf("%d tensor rules, want 6", len(m.Tensors))
	}
	lm := m.Tensors[1]
	if patternText(lm.Left[0].Pattern) != "lm_head.weight" || len(lm.When) != 1 || ir.Format(lm.When[0]) != "not tie_word_embeddings" {
		t.Errorf("lm_head rule: %s when %v", patternText(lm.Left[0].Pattern), lm.When)
	}
	kv := m.Tensors[2]
	if len(kv.Loops) != 1 || kv.Loops[0].Var != "l" || ir.Format(kv.Loops[0].Bound) != "layers" ||
		patternText(kv.Left[1].Pattern) != "model.layers.{l}.self_attn.v_proj.weight" ||
		patternText(kv.Right[0].Pattern) != "decoder.{l}.mixer.key_value.weight" ||
		len(kv.Ops) != 1 || kv.Ops[0].Def != ir.LookupOp("concat") || ir.Format(kv.Ops[0].Args[0].Expr) != "0" ||
		ir.Format(kv.Left[0].Shape[0]) != "num_key_value_heads * head_dim" {
		t.Errorf("key_value rule: %+v", kv)
	}
	if parts := kv.Left[0].Pattern.Parts; len(parts) != 3 || parts[0].Lit != "model.layers." || parts[1].Var != "l" || parts[2].Lit != ".self_attn.k_proj.weight" {
		t.Errorf("pattern parts: %+v", parts)
	}
	mx := m.Tensors[4]
	if mx.Variant != "mxfp4" || len(mx.Ops) != 4 || mx.Left[0].DType != "U8" || len(mx.Left[0].Shape) != 4 ||
		mx.Right[0].DType != "BF16" || ir.Format(mx.Right[0].Shape[0]) != "(experts * 2) * inter" ||
		patternText(mx.Left[1].Pattern) != "model.layers.{l}.mlp.experts.gate_up_proj_scales" {
		t.Errorf("mxfp4 rule: %+v", mx)
	}
	if dense := m.Tensors[5]; dense.Variant != "dense" || dense.Right[0].Shape != nil || dense.Ops[1].Name != "transpose" {
		t.Errorf("dense rule: %+v", dense)
	}
}

func TestLowerArgs(t *testing.T) {
	src := []byte(`mapping args oneway
left hf
right fast_llm
tensors {
  each l < 2: a.{l} <-> b.{l} {
    when l == 0 {
      x | split(0, [1, -1]) <-> (y, z)
    } else {
      x | cast(F32) | unflatten(0, [2, -1]) <-> w
    }
  }
  experts.{e}.w | stack(e < 4) <-> s
  t | unstack(e < 4) | slice(0, 0, 1) <-> u.{e}
}
`)
	m, diags := dsl.Load("args.map", src)
	if diags.HasErrors() {
		t.Fatal(diag.Text(diags, diag.Sources{"args.map": src}))
	}
	split := m.Tensors[0].Ops[0]
	if len(split.Args) != 2 || len(split.Args[1].List) != 2 || ir.Format(split.Args[1].List[1]) != "-1" {
		t.Errorf("split args: %+v", split.Args)
	}
	if w := m.Tensors[0].When; len(w) != 1 || ir.Format(w[0]) != "l == 0" {
		t.Errorf("when: %v", w)
	}
	els := m.Tensors[1]
	if len(els.When) != 1 || ir.Format(els.When[0]) != "not l == 0" || els.Ops[0].Args[0].DType != "F32" {
		t.Errorf("else rule: when %v, ops %+v", els.When, els.Ops)
	}
	if u, ok := els.When[0].(*ir.Unary); !ok || u.Op != "not" {
		t.Errorf("else condition is %T", els.When[0])
	}
	st := m.Tensors[2].Ops[0]
	if st.Args[0].Var != "e" || ir.Format(st.Args[0].Bound) != "4" {
		t.Errorf("stack arg: %+v", st.Args[0])
	}
	if un := m.Tensors[3].Ops[0]; un.Args[0].Var != "e" {
		t.Errorf("unstack arg: %+v", un.Args[0])
	}
}

func pathText(p ir.Path) string {
	s := ""
	for i, seg := range p.Segs {
		if i > 0 {
			s += "."
		}
		s += seg
	}
	return s
}

func patternText(p ir.Pattern) string {
	s := ""
	for _, part := range p.Parts {
		if part.Var != "" {
			s += "{" + part.Var + "}"
		} else {
			s += part.Lit
		}
	}
	return s
}

// TestHashIsOfTheRules: a comment or another layout keeps a mapping's hash
// (checkpoints it imported still export with it); another rule changes it.
func TestHashIsOfTheRules(t *testing.T) {
	src := "mapping h\nleft hf\nright fast_llm\n\nconfig {\n  hidden_size <-> hidden_size\n  vocab_size <-> vocab\n}\n"
	hash := func(s string) string {
		t.Helper()
		m, diags := dsl.Load("h.map", []byte(s))
		if m == nil || diags.HasErrors() {
			t.Fatalf("%s: %v", s, diags)
		}
		return m.Hash
	}
	h := hash(src)
	for _, same := range []string{
		"# a comment\n" + src,
		strings.Replace(src, "  hidden_size <-> hidden_size", "    hidden_size   <->   hidden_size  # why", 1),
		// A comment on a line of its own between rules, and a blank line.
		strings.Replace(src, "  vocab_size", "  # the vocabulary\n  vocab_size", 1),
		strings.Replace(src, "  vocab_size", "\n  vocab_size", 1),
	} {
		if got := hash(same); got != h {
			t.Errorf("hash of %q = %s, want %s as for the same rules", same, got, h)
		}
	}
	if got := hash(strings.Replace(src, "hidden_size <-> hidden_size", "hidden_size <-> width", 1)); got == h {
		t.Error("another rule kept the hash")
	}
}
