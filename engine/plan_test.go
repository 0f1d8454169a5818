package engine

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/mappings"
	"github.com/mapper-dev/mapper/mappings/synth"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/plan")

// builtin loads a built-in mapping by name.
func builtin(t testing.TB, name string) *ir.Mapping {
	t.Helper()
	f, ok := mappings.Lookup(name)
	if !ok {
		t.Fatalf("no built-in mapping %s", name)
	}
	return loadMapping(t, f.Path, f.Source)
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
	clean := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(tmp), []byte("$TMP")) }
	return clean(tb.Bytes()), clean(jb.Bytes())
}

func planOrFail(t *testing.T, m *ir.Mapping, dir string, opt PlanOptions) *Plan {
	t.Helper()
	p, err := NewPlan(m, dir, opt)
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
