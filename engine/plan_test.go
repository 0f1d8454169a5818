package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/mappings"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/plan")

// builtin loads a built-in mapping by name.
func builtin(t testing.TB, name string) *ir.Mapping {
	t.Helper()
	f, ok := mappings.Lookup(name)
	if !ok {
		t.Fatalf("no built-in mapping %s", name)
	}
	m, diags := f.Load()
	if diags.HasErrors() || m == nil {
		t.Fatalf("%s does not check:\n%v", f.Path, diags)
	}
	return m
}

// checkGolden compares got with testdata/plan/name, or rewrites it with
// -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "plan", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./engine -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./engine -run %s -update rewrites it):\n%s",
			path, t.Name(), lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first lines where two texts differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

// summaries renders a plan's text and JSON summaries with the temporary
// directory replaced by $TMP.
func summaries(t *testing.T, p *Plan, tmp string) (text, js []byte) {
	t.Helper()
	s := p.Summarize()
	var tb, jb bytes.Buffer
	if err := s.WriteText(&tb); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteJSON(&jb); err != nil {
		t.Fatal(err)
	}
	// The JSON must be valid and hold every tensor the text lists.
	var back Summary
	if err := json.Unmarshal(jb.Bytes(), &back); err != nil {
		t.Fatalf("plan JSON does not parse: %v", err)
	}
	if len(back.Tensors) != len(p.outputEntries()) {
		t.Errorf("plan JSON lists %d tensors, the plan writes %d", len(back.Tensors), len(p.outputEntries()))
	}
	// The mapping's sha256 changes with every edit of its file: the golden
	// files name it $MAPPING_SHA256, and only where it is the real one.
	var hash string
	for _, c := range []*format.Carried{p.Carried, p.src.Carried} {
		if c != nil && c.MappingHash != "" {
			hash = c.MappingHash
		}
	}
	clean := func(b []byte) []byte {
		b = bytes.ReplaceAll(b, []byte(tmp), []byte("$TMP"))
		if hash != "" {
			b = bytes.ReplaceAll(b, []byte(hash), []byte("$MAPPING_SHA256"))
		}
		return b
	}
	return clean(tb.Bytes()), clean(jb.Bytes())
}

func planOrFail(t *testing.T, m *ir.Mapping, dir string, opt PlanOptions) *Plan {
	t.Helper()
	p, err := testPlan(m, dir, opt)
	if err != nil {
		t.Fatalf("plan %s: %v", dir, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestPlanGolden plans conversions in both directions and compares the text
// and JSON summaries with golden files. A small memory budget makes the
// chunking visible; the export is planned from the output of the import.
func TestPlanGolden(t *testing.T) {
	opt := PlanOptions{Workers: 2, Memory: 64 << 10}
	for _, tc := range []struct {
		name string
		m    func(t *testing.T) *ir.Mapping
		gen  func(t *testing.T, dir string)
	}{
		{"small", func(t *testing.T) *ir.Mapping { return loadMapFile(t, "testdata/small.map") },
			func(t *testing.T, dir string) { writeSmallHF(t, dir, smallConfig()) }},
		{"gpt_oss", func(t *testing.T) *ir.Mapping { return builtin(t, "gpt_oss") },
			func(t *testing.T, dir string) {
				if err := synth.Generate(dir, synth.TinyGPTOSS(), 1, synth.Options{}); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m(t)
			tmp := t.TempDir()
			hfDir, fastDir := filepath.Join(tmp, "hf"), filepath.Join(tmp, "fast_llm")
			tc.gen(t, hfDir)

			imp := planOrFail(t, m, hfDir, opt)
			if imp.Direction != Import || imp.From != "hf" || imp.To != "fast_llm" {
				t.Fatalf("planned %v %s -> %s, want import hf -> fast_llm", imp.Direction, imp.From, imp.To)
			}
			text, js := summaries(t, imp, tmp)
			checkGolden(t, tc.name+"_import.txt.golden", text)
			checkGolden(t, tc.name+"_import.json.golden", js)

			// Planning is pure: a second plan of the same input prints the same.
			again := planOrFail(t, m, hfDir, opt)
			if text2, js2 := summaries(t, again, tmp); !bytes.Equal(text, text2) || !bytes.Equal(js, js2) {
				t.Errorf("two plans of the same input differ")
			}

			if _, err := imp.Execute(t.Context(), ExecOptions{Output: fastDir}); err != nil {
				t.Fatal(err)
			}
			exp := planOrFail(t, m, fastDir, opt)
			if exp.Direction != Export || exp.From != "fast_llm" || exp.To != "hf" {
				t.Fatalf("planned %v %s -> %s, want export fast_llm -> hf", exp.Direction, exp.From, exp.To)
			}
			text, js = summaries(t, exp, tmp)
			checkGolden(t, tc.name+"_export.txt.golden", text)
			checkGolden(t, tc.name+"_export.json.golden", js)
		})
	}
}

// TestPlanErrors: problems with the input's tensors are all reported by the
// plan, each once, naming the tensor, its file and the rule; a rule that
// fails does not make the tensors it names look unclaimed.
func TestPlanErrors(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	type edit func(es []safetensors.Entry) []safetensors.Entry
	drop := func(name string) edit {
		return func(es []safetensors.Entry) []safetensors.Entry {
			return slices.DeleteFunc(es, func(e safetensors.Entry) bool { return e.Name == name })
		}
	}
	reshape := func(name string, shape ...int) edit {
		return func(es []safetensors.Entry) []safetensors.Entry {
			for i := range es {
				if es[i].Name == name {
					es[i].Shape = shape
				}
			}
			return es
		}
	}
	add := func(name string) edit {
		return func(es []safetensors.Entry) []safetensors.Entry {
			return append(es, safetensors.Entry{Name: name, DType: tensor.BF16, Shape: tensor.Shape{2}})
		}
	}
	for _, tc := range []struct {
		name  string
		edits []edit
		want  []string // one substring per error, in order
	}{{
		name:  "wrong-shape",
		edits: []edit{reshape("model.layers.0.self_attn.o_proj.weight", 32, 16)},
		want:  []string{"testdata/small.map:49:5: error: $TMP/model.safetensors: tensor model.layers.0.self_attn.o_proj.weight: has shape [32 16], the rule declares [32 32]"},
	}, {
		name:  "missing-one-of-a-tuple",
		edits: []edit{drop("model.layers.0.self_attn.k_proj.weight")},
		want:  []string{"testdata/small.map:44:6: error: tensor model.layers.0.self_attn.k_proj.weight: missing from the input hf checkpoint $TMP"},
	}, {
		name:  "missing-expert",
		edits: []edit{drop("model.layers.1.mlp.experts.2.down_proj.weight")},
		want:  []string{"testdata/small.map:54:5: error: tensor model.layers.1.mlp.experts.2.down_proj.weight: missing from the input hf checkpoint $TMP"},
	}, {
		name:  "stacked-shapes-disagree",
		edits: []edit{reshape("model.layers.0.mlp.experts.1.down_proj.weight", 16, 32)},
		want: []string{"testdata/small.map:54:5: error: $TMP/model.safetensors: tensor model.layers.0.mlp.experts.1.down_proj.weight: is BF16[16 32] but " +
			"model.layers.0.mlp.experts.0.down_proj.weight is BF16[32 16]; stacked tensors must agree"},
	}, {
		// Every layer is checked: a problem in one does not hide another's.
		name:  "two-layers",
		edits: []edit{reshape("model.layers.0.self_attn.o_proj.weight", 32, 16), reshape("model.layers.1.self_attn.o_proj.weight", 16, 32)},
		want: []string{
			"tensor model.layers.0.self_attn.o_proj.weight: has shape [32 16], the rule declares [32 32]",
			"tensor model.layers.1.self_attn.o_proj.weight: has shape [16 32], the rule declares [32 32]",
		},
	}, {
		name:  "unclaimed",
		edits: []edit{add("model.layers.0.extra")},
		want:  []string{`$TMP/model.safetensors: tensor model.layers.0.extra: not claimed by any rule of small (variant ""); mapper drops nothing silently`},
	}, {
		name:  "all-at-once",
		edits: []edit{add("zzz"), reshape("model.norm.weight", 31), drop("model.layers.1.self_attn.sinks")},
		want: []string{
			"tensor model.norm.weight: has shape [31], the rule declares [32]",
			"tensor model.layers.1.self_attn.sinks: missing",
			"tensor zzz: not claimed",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig()
			es := smallTensors(cfg)
			for _, e := range tc.edits {
				es = e(es)
			}
			writeHF(t, dir, cfg, es)
			_, err := testPlan(m, dir, PlanOptions{Workers: 1})
			if err == nil {
				t.Fatal("planned a broken input")
			}
			var got []error
			if list, ok := err.(interface{ Unwrap() []error }); ok {
				got = list.Unwrap()
			} else {
				got = []error{err}
			}
			var te *TensorError
			for i, e := range got {
				msg := strings.ReplaceAll(e.Error(), dir, "$TMP")
				if !errors.As(e, &te) {
					t.Errorf("error %d is a %T, want a *TensorError: %s", i, e, msg)
				}
				if i < len(tc.want) && !strings.Contains(msg, tc.want[i]) {
					t.Errorf("error %d:\n  got  %s\n  want %s", i, msg, tc.want[i])
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("%d errors, want %d:\n%s", len(got), len(tc.want), strings.ReplaceAll(err.Error(), dir, "$TMP"))
			}
		})
	}
}
