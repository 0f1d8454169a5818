package dsl_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/check"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

const languageDoc = "../docs/language.md"

// opExamples is one rule per op for the reference; TestOpExamples checks
// each on a sample, so the examples cannot be wrong.
var opExamples = map[string]string{
	"cast":         "w: F32[4, 8] | cast(BF16) <-> b: BF16[4, 8]",
	"concat":       "(k: [2, 8], v: [2, 8]) | concat(0) <-> kv: [4, 8]",
	"flatten":      "w: [3, 4, 8] | flatten(0, 1) <-> f: [12, 8]",
	"mxfp4":        "(blocks: U8[4, 2, 16], scales: U8[4, 2]) | mxfp4 <-> w: BF16[4, 64]",
	"mxfp4_encode": "w: BF16[4, 64] | mxfp4_encode <-> (blocks: U8[4, 2, 16], scales: U8[4, 2])",
	"slice":        "w: [10, 8] | slice(0, 2, 6) <-> s: [4, 8]",
	"split":        "kv: [4, 8] | split(0, [1, -1]) <-> (k: [1, 8], v: [3, 8])",
	"stack":        "experts.{e}.w: [4, 8] | stack(e < 3) <-> w: [3, 4, 8]",
	"transpose":    "w: [4, 8] | transpose(0, 1) <-> t: [8, 4]",
	"unflatten":    "f: [12, 8] | unflatten(0, [3, -1]) <-> w: [3, 4, 8]",
	"unstack":      "w: [3, 4, 8] | unstack(e < 3) <-> experts.{e}.w: [4, 8]",
	"unzip":        "gate_up: [8, 6] | unzip(1, 2) <-> (gate: [8, 3], up: [8, 3])",
	"zip":          "(gate: [8, 3], up: [8, 3]) | zip(1) <-> gate_up: [8, 6]",
}

func TestOpExamples(t *testing.T) {
	for _, d := range ir.Ops() {
		ex, ok := opExamples[d.Name]
		if !ok {
			t.Errorf("op %s has no example in opExamples (docs/language.md needs one)", d.Name)
			continue
		}
		if !strings.Contains(ex, d.Name) {
			t.Errorf("the example of %s does not use it: %s", d.Name, ex)
		}
		src := "mapping example oneway\nleft hf\nright fast_llm\nsample s {}\ntensors {\n  " + ex + "\n}\n"
		if _, diags := dsl.Load("example.map", []byte(src)); len(diags) > 0 {
			t.Errorf("example of %s:\n%s", d.Name, diag.Text(diags, diag.Sources{"example.map": []byte(src)}))
		}
	}
}

// inverseName finds which op undoes d, by building its inverse call on
// plausible arguments.
func inverseName(d *ir.OpDef) (name string) {
	if d.Inverse == nil {
		return ""
	}
	defer func() {
		if recover() != nil {
			name = "?"
		}
	}()
	var args []ir.ArgValue
	for _, p := range d.Params {
		switch p.Kind {
		case ir.ParamInt:
			args = append(args, ir.ArgValue{Int: 0})
		case ir.ParamIntList:
			args = append(args, ir.ArgValue{Ints: []int{2, -1}})
		case ir.ParamDType:
			args = append(args, ir.ArgValue{DType: tensor.BF16})
		case ir.ParamRange:
			args = append(args, ir.ArgValue{Var: "e", Bound: 2})
		}
	}
	in := make([]ir.TensorType, max(d.MinIn, 1))
	for i := range in {
		in[i] = ir.TensorType{DType: tensor.F32, Shape: tensor.Shape{4, 4, 4}}
	}
	return d.Inverse(args, in).Def.Name
}

func opSignature(d *ir.OpDef) string {
	if len(d.Params) == 0 {
		return d.Name
	}
	var ps []string
	for _, p := range d.Params {
		s := p.Name
		if p.Kind == ir.ParamRange {
			s = "v < N"
		}
		if p.Kind == ir.ParamIntList {
			s = "[" + p.Name + "]"
		}
		if p.Optional {
			s += "?"
		}
		ps = append(ps, s)
	}
	return d.Name + "(" + strings.Join(ps, ", ") + ")"
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// opTable renders the generated op reference of docs/language.md.
func opTable() string {
	var b strings.Builder
	b.WriteString("| op | tuple in -> out | shape rule | inverse (export) | example |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, d := range ir.Ops() {
		inv := "`" + inverseName(d) + "`"
		if d.Inverse == nil {
			inv = "none: " + d.NoInverseWhy + " (one-way mappings only)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | `%s` |\n", cell(opSignature(d)), d.Arity(), cell(d.Doc), cell(inv), cell(opExamples[d.Name]))
	}
	return b.String()
}

// builtinTable renders the generated function reference of docs/language.md.
func builtinTable() string {
	var b strings.Builder
	b.WriteString("| function | arguments | result | example |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, n := range ir.BuiltinNames() {
		f := ir.Builtins[n]
		fmt.Fprintf(&b, "| `%s(%s)` | %s | %s: %s | `%s` |\n", f.Name, cell(f.Params), f.ArityText(), f.Result, cell(f.Doc), cell(f.Example))
	}
	return b.String()
}

// TestBuiltinExamples evaluates each function's example: `expr = value`.
func TestBuiltinExamples(t *testing.T) {
	for _, n := range ir.BuiltinNames() {
		f := ir.Builtins[n]
		lhs, want, ok := strings.Cut(f.Example, " = ")
		if !ok || !strings.HasPrefix(lhs, n+"(") {
			t.Errorf("the example of %s is not `%s(...) = value`: %s", n, n, f.Example)
			continue
		}
		src := "mapping example\nleft hf\nright fast_llm\nlet x = " + lhs + "\n"
		file, diags := syntax.Parse("example.map", []byte(src))
		if diags.HasErrors() {
			t.Errorf("example of %s: %v", n, diags)
			continue
		}
		x, diags := check.LowerExpr(file.Decls[0].(*syntax.LetDecl).Value)
		if len(diags) > 0 {
			t.Errorf("example of %s: %v", n, diags)
			continue
		}
		got, err := ir.Eval(x, mapEnv{})
		if err != nil || ir.FormatValue(got) != want {
			t.Errorf("%s = %s (%v), the example says %s", lhs, ir.FormatValue(got), err, want)
		}
	}
}

type mapEnv map[string]any

func (m mapEnv) Lookup(path []string) (any, bool) {
	v, ok := m[strings.Join(path, ".")]
	return v, ok
}

// generated is a section of docs/language.md that a test writes.
type generated struct {
	name string
	gen  func() string
}

func (g generated) markers() (begin, end string) {
	return "<!-- BEGIN GENERATED: " + g.name + " (go test ./dsl -run TestLanguageDoc -update) -->\n",
		"<!-- END GENERATED: " + g.name + " -->\n"
}

// TestLanguageDoc keeps the op and function references of
// docs/language.md generated from their tables: one row per op with its
// arity, shape rule and inverse, one per function.
func TestLanguageDoc(t *testing.T) {
	b, err := os.ReadFile(languageDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, g := range []generated{{"ops", opTable}, {"builtins", builtinTable}} {
		begin, end := g.markers()
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("%s: no generated %s section", languageDoc, g.name)
		}
		gen := g.gen()
		if *update {
			doc = doc[:i+len(begin)] + gen + doc[j:]
			continue
		}
		if got := doc[i+len(begin) : j]; got != gen {
			t.Errorf("%s: the %s table is stale (run go test ./dsl -run TestLanguageDoc -update); want:\n%s", languageDoc, g.name, gen)
		}
	}
	if *update {
		if err := os.WriteFile(languageDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, d := range ir.Ops() {
		if !strings.Contains(doc, "| `"+cell(opSignature(d))+"` | "+d.Arity()+" |") {
			t.Errorf("%s: no row for op %s", languageDoc, d.Name)
		}
	}
	// Every keyword is explained somewhere.
	for _, k := range []string{"mapping", "oneway", "sample", "let", "variant", "when", "else", "config", "tensors",
		"each", "keep", "ignore", "default", "map", "cycle"} {
		if !regexp.MustCompile("`[^`\n]*\\b" + k + "\\b[^`\n]*`").MatchString(doc) {
			t.Errorf("%s: keyword %s is not documented", languageDoc, k)
		}
	}
}

// TestLanguageDocExamples loads every complete mapping (a code block with a
// header) of docs/language.md: the examples must check clean.
func TestLanguageDocExamples(t *testing.T) {
	b, err := os.ReadFile(languageDoc)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range regexp.MustCompile("(?s)```\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		if !regexp.MustCompile(`(?m)^mapping [a-z_0-9]+( oneway)?\n`).MatchString(m[1]) {
			continue
		}
		n++
		if _, diags := dsl.Load("language.md", []byte(m[1])); len(diags) > 0 {
			t.Errorf("example in %s:\n%s", languageDoc, diag.Text(diags, diag.Sources{"language.md": []byte(m[1])}))
		}
	}
	if n == 0 {
		t.Error("no complete example found")
	}
}
