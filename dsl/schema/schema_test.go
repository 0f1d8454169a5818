package schema_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/schema"
)

// config is a nested config: a path reads down the maps.
type config map[string]any

func (c config) Lookup(path []string) (any, bool) {
	var v any = map[string]any(c)
	for _, s := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[s]; !ok {
			return nil, false
		}
	}
	return v, true
}

func load(t *testing.T, src string) *schema.Schema {
	t.Helper()
	s, diags := schema.Load("t.params", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("load:\n%v", diags)
	}
	return s
}

// list prints the declared parameters one a line: name [shape] @line.
func list(t *testing.T, s *schema.Schema, cfg config) string {
	t.Helper()
	decl, err := s.Expand(cfg, 1000)
	if err != nil {
		t.Fatalf("expand: %v", err)
	}
	var b strings.Builder
	for _, d := range decl {
		fmt.Fprintf(&b, "%s %v @%d", d.Name, []int(d.Shape), d.Pos.Line)
		if d.Part != "" {
			fmt.Fprintf(&b, " via %s@%d", d.Part, d.Use.Line)
		}
		b.WriteString("\n")
	}
	return b.String()
}

const sample = `schema t

part norm(n, dim) {
  let kind = n.type default "layer_norm"
  require kind == "layer_norm" or kind == "rms_norm"
  weight: [dim]
  when kind == "layer_norm" {
    bias: [dim]
  }
}

part block(b, hidden) {
  n1: norm(b.norm, hidden)
  mixer.query.weight: [b.heads * b.head_size, hidden]
  when b.sinks {
    mixer.sinks: [b.heads]
  } else {
    mixer.gate: [1]
  }
}

let hidden = hidden_size default 16
embed: [vocab, hidden]
each i < layers: layers.{i} {
  let b = blocks.{i}
  block(b, hidden)
  each e < b.experts: experts.{e} {
    w: [hidden]
  }
}
let top = layers - 1
last: norm(blocks.{top}.norm, hidden)
`

func TestExpand(t *testing.T) {
	s := load(t, sample)
	if s.Name != "t" {
		t.Errorf("name %q", s.Name)
	}
	cfg := config{
		"vocab": int64(10), "layers": int64(2),
		"blocks": map[string]any{
			"0": map[string]any{"heads": int64(2), "head_size": int64(4), "sinks": true, "experts": int64(2),
				"norm": map[string]any{"type": "rms_norm"}},
			"1": map[string]any{"heads": int64(1), "head_size": int64(8), "experts": int64(0)},
		},
	}
	want := `embed [10 16] @23
layers.0.n1.weight [16] @6 via norm@13
layers.0.mixer.query.weight [8 16] @14 via block@26
layers.0.mixer.sinks [2] @16 via block@26
layers.0.experts.0.w [16] @28
layers.0.experts.1.w [16] @28
layers.1.n1.weight [16] @6 via norm@13
layers.1.n1.bias [16] @8 via norm@13
layers.1.mixer.query.weight [8 16] @14 via block@26
layers.1.mixer.gate [1] @18 via block@26
last.weight [16] @6 via norm@32
last.bias [16] @8 via norm@32
`
	if got := list(t, s, cfg); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	cfg["hidden_size"] = int64(4)
	if got := list(t, s, cfg); !strings.HasPrefix(got, "embed [10 4] @23\n") {
		t.Errorf("hidden_size set: got\n%s", got)
	}
}

func TestExpandErrors(t *testing.T) {
	for _, c := range []struct {
		name, src string
		cfg       config
		want      string
	}{
		{"require", sample, config{"vocab": int64(1), "layers": int64(1),
			"blocks": map[string]any{"0": map[string]any{"heads": int64(1), "head_size": int64(1), "experts": int64(0),
				"norm": map[string]any{"type": "group_norm"}}}},
			`t.params:5:3: requires kind == "layer_norm" or kind == "rms_norm", but kind = n.type = "group_norm" (in norm at line 13, for layers.0.n1)`},
		{"unset", sample, config{"vocab": int64(1), "layers": int64(1), "blocks": map[string]any{"0": map[string]any{}}},
			"t.params:14:24: b.heads is not set; it must be an integer (in block at line 26, for layers.0)"},
		{"dimension", "schema t\nw: [a - b]\n", config{"a": int64(1), "b": int64(1)},
			"t.params:2:5: dimension a - b is 0; a dimension must be positive (a = 1, b = 1)"},
		{"negative bound", "schema t\neach i < n: x.{i} {\n  w: [1]\n}\n", config{"n": int64(-1)},
			"t.params:2:1: each i < n: the bound is -1; it must not be negative"},
		{"runaway", "schema t\neach i < n: x.{i} {\n  w: [1]\n}\n", config{"n": int64(1) << 40},
			"t.params:2:1: each i < n: n = 1099511627776 declares more than 1000 parameters"},
		{"runaway empty", "schema t\neach i < n: x.{i} {\n}\n", config{"n": int64(1) << 40},
			"t.params:2:1: each i < n: n = 1099511627776 declares more than 1000 parameters"},
		{"duplicate", "schema t\nw: [1]\nwhen a {\n  w: [2]\n}\n", config{"a": true},
			"t.params:4:3: parameter w is also declared at line 2"},
		{"condition", "schema t\nwhen a {\n  w: [1]\n}\n", config{"a": int64(1)},
			"t.params:2:6: a is 1; it must be true or false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.src).Expand(c.cfg, 1000)
			if err == nil || err.Error() != c.want {
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	for _, c := range []struct{ name, src, want string }{
		{"syntax", "schema t\nw: [1\n", "t.params:3:1: error: syntax error"},
		{"header", "mapping t\n", "t.params:1:1: error: syntax error"},
		{"no shape", "schema t\nw\n", "t.params:2:1: error: parameter w declares no shape"},
		{"dtype", "schema t\nw: F32[1]\n", "t.params:2:4: error: a parameter schema declares shapes only"},
		{"constant dimension", "schema t\nw: [0]\n", "t.params:2:5: error: dimension 0 is 0; a dimension must be positive"},
		{"unbound name placeholder", "schema t\nx.{i}: [1]\n", "t.params:2:3: error: placeholder {i} in x.{i} is not bound"},
		{"unbound expr placeholder", "schema t\nw: [a.{j}]\n", "t.params:2:7: error: placeholder {j} in a.{j} is not bound"},
		{"let placeholder is no name placeholder", "schema t\nlet k = 1\nx.{k}: [1]\n", "t.params:3:3: error: placeholder {k} in x.{k} is not bound"},
		{"prefix without var", "schema t\neach i < n: x {\n  w: [1]\n}\n", "t.params:2:13: error: the prefix x does not use {i}"},
		{"let out of scope", "schema t\nwhen a {\n  let h = 1\n}\nw: [h]\n", "t.params:5:5: error: let h (line 3) is not in scope here"},
		{"let used before", "schema t\nw: [h]\nlet h = 1\n", "t.params:2:5: error: let h (line 3) is not in scope here"},
		{"rebind", "schema t\nlet h = 1\neach h < 2: x.{h} {\n}\n", "t.params:3:6: error: h is already bound in this scope"},
		{"shadow in part", "schema t\nlet h = 1\npart p(h) {\n}\n", "t.params:3:8: error: h is already bound in this scope"},
		{"unknown part", "schema t\npart norm(n) {\n  w: [n]\n}\nx: nrom(1)\n", "t.params:5:4: error: unknown part nrom (a part is used after its declaration)"},
		{"part used before", "schema t\nx: p(1)\npart p(n) {\n}\n", "t.params:2:4: error: unknown part p"},
		{"recursive part", "schema t\npart p(n) {\n  x: p(n)\n}\n", "t.params:3:6: error: unknown part p"},
		{"arity", "schema t\npart p(a, b) {\n}\np(1)\n", "t.params:4:1: error: part p takes 2 arguments (a, b), got 1"},
		{"nested part", "schema t\nwhen a {\n  part p(n) {\n  }\n}\n", "t.params:3:1"},
		{"duplicate part", "schema t\npart p(n) {\n}\npart p(m) {\n}\n", "t.params:4:6: error: part p is already declared at line 2"},
		{"part sees no later let", "schema t\npart p(n) {\n  w: [h]\n}\nlet h = 1\n", "t.params:3:7: error: let h (line 5) is not in scope here"},
		{"star", "schema t\nx.*: [1]\n", "t.params:2:3: error: * cannot stand in a parameter name"},
		{"overflow", "schema t\nw: [4611686018427387904 * 4]\n", "overflows a 64-bit integer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, diags := schema.Load("t.params", []byte(c.src))
			if !diags.HasErrors() || s != nil {
				t.Fatalf("loaded without errors")
			}
			if got := diags.Err().Error(); !strings.Contains(got, c.want) {
				t.Errorf("got\n%s\nwant it to contain %q", got, c.want)
			}
		})
	}
}

// TestDocExample loads the schema example of docs/mappings.md and expands
// it on a small config.
func TestDocExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/mappings.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "```\nschema main\n")
	if i < 0 {
		t.Fatal("docs/mappings.md has no schema example")
	}
	src := doc[i+4:]
	src = src[:strings.Index(src, "```")]
	cfg := config{"hidden_size": int64(8), "embeddings": map[string]any{"vocab_size": int64(10)}, "tied_embedding_weight": true,
		"decoder": map[string]any{"num_blocks": int64(2),
			// The side resolves decoder.N; here a plain map stands in.
			"0": map[string]any{"normalization": map[string]any{"type": "rms_norm"}},
			"1": map[string]any{}}}
	want := "embeddings.word_embeddings_weight [10 8] @15\ndecoder.0.norm_1.weight [8] @7 via norm@17\n" +
		"decoder.1.norm_1.weight [8] @7 via norm@17\ndecoder.1.norm_1.bias [8] @10 via norm@17\n"
	if got := list(t, load(t, src), cfg); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
