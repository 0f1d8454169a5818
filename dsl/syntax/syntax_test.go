package syntax_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/syntax"
)

var update = flag.Bool("update", false, "rewrite the golden sections of testdata files")

func section(a *txtar.Archive, name string) ([]byte, bool) {
	for _, f := range a.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

// parseResult renders what Parse gives for src: the AST dump when there is
// a tree, the diagnostics when there are any.
func parseResult(name string, src []byte) (ast, diags string) {
	f, ds := syntax.Parse(name, src)
	if f != nil {
		ast = syntax.Dump(f)
	}
	if len(ds) > 0 {
		diags = diag.Text(ds, diag.Sources{name: src})
	}
	return ast, diags
}

// TestParse runs testdata/parse/*.txtar: `input.map` parses to the `ast`
// section and reports the `diagnostics` section (either may be absent:
// then there must be no tree, or no diagnostics). -update rewrites them.
func TestParse(t *testing.T) {
	files, _ := filepath.Glob("testdata/parse/*.txtar")
	if len(files) == 0 {
		t.Fatal("no parse tests")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			a, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			src, ok := section(a, "input.map")
			if !ok {
				t.Fatal("no input.map section")
			}
			ast, diags := parseResult("input.map", src)
			if *update {
				out := &txtar.Archive{Comment: a.Comment, Files: []txtar.File{{Name: "input.map", Data: src}}}
				if ast != "" {
					out.Files = append(out.Files, txtar.File{Name: "ast", Data: []byte(ast)})
				}
				if diags != "" {
					out.Files = append(out.Files, txtar.File{Name: "diagnostics", Data: []byte(diags)})
				}
				if err := os.WriteFile(file, txtar.Format(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantAST, _ := section(a, "ast")
			wantDiags, _ := section(a, "diagnostics")
			if ast != string(wantAST) {
				t.Errorf("ast:\n%s\nwant:\n%s", ast, wantAST)
			}
			if diags != string(wantDiags) {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", diags, wantDiags)
			}
		})
	}
}

// TestFormat runs testdata/format/*.txtar: `input.map` formats to
// `output.map`. -update rewrites the output.
func TestFormat(t *testing.T) {
	files, _ := filepath.Glob("testdata/format/*.txtar")
	if len(files) == 0 {
		t.Fatal("no format tests")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			a, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			src, _ := section(a, "input.map")
			f, ds := parseAny("input.map", src)
			if f == nil {
				t.Fatal(diag.Text(ds, diag.Sources{"input.map": src}))
			}
			got := f.format()
			if *update {
				out := &txtar.Archive{Comment: a.Comment, Files: []txtar.File{{Name: "input.map", Data: src}, {Name: "output.map", Data: got}}}
				if err := os.WriteFile(file, txtar.Format(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, _ := section(a, "output.map")
			if !bytes.Equal(got, want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// roundTripInputs lists every .map source of the dsl tests, and every txtar
// input.map that parses.
func roundTripInputs(t *testing.T) map[string][]byte {
	out := map[string][]byte{}
	for _, pat := range []string{"../testdata/*.map", "../check/testdata/lint/*.map", "../../mappings/*.map", "../../mappings/fragments/*.map"} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = src
		}
	}
	for _, pat := range []string{"testdata/parse/*.txtar", "testdata/format/*.txtar"} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			a, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if src, ok := section(a, "input.map"); ok {
				out[f] = src
			}
		}
	}
	return out
}

// parsed is a parsed mapping or fragment file, as the format tests take
// either.
type parsed struct {
	node     syntax.Node
	format   func() []byte
	comments []*syntax.Comment
}

// parseAny parses src as a fragment file when it is one, else as a
// mapping; nil on a syntax error.
func parseAny(name string, src []byte) (*parsed, diag.List) {
	if syntax.IsFragmentFile(src) {
		ff, ds := syntax.ParseFragments(name, src)
		if ff == nil {
			return nil, ds
		}
		return &parsed{ff, func() []byte { return syntax.FormatFragments(ff) }, ff.Comments}, ds
	}
	f, ds := syntax.Parse(name, src)
	if f == nil {
		return nil, ds
	}
	return &parsed{f, func() []byte { return syntax.Format(f) }, f.Comments}, ds
}

func commentTexts(f *parsed) []string {
	var out []string
	for _, c := range f.comments {
		out = append(out, c.Text)
	}
	return out
}

// TestFormatRoundTrip: for every test file that parses, fmt(fmt(x)) ==
// fmt(x), parse(fmt(x)) has the same AST as parse(x), and every comment
// survives, in order.
func TestFormatRoundTrip(t *testing.T) {
	inputs := roundTripInputs(t)
	if len(inputs) < 10 {
		t.Fatalf("only %d inputs", len(inputs))
	}
	n := 0
	for name, src := range inputs {
		f, _ := parseAny(name, src)
		if f == nil {
			continue
		}
		n++
		once := f.format()
		f2, ds := parseAny(name, once)
		if f2 == nil {
			t.Errorf("%s: formatted output does not parse:\n%s\n%s", name, diag.Text(ds, diag.Sources{name: once}), once)
			continue
		}
		if a, b := syntax.Dump(f.node), syntax.Dump(f2.node); a != b {
			t.Errorf("%s: the AST changed when formatted:\n%s\nvs\n%s", name, a, b)
		}
		if a, b := commentTexts(f), commentTexts(f2); !slices.Equal(a, b) {
			t.Errorf("%s: comments changed:\n%q\nvs\n%q", name, a, b)
		}
		twice := f2.format()
		if !bytes.Equal(once, twice) {
			t.Errorf("%s: not idempotent:\n%s\nvs\n%s", name, once, twice)
		}
		if strings.Contains(string(once), " \n") || strings.Contains(string(once), "\t") {
			t.Errorf("%s: trailing space or tab in output", name)
		}
	}
	t.Logf("%d files round-tripped", n)
}
