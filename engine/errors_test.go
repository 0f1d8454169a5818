package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// TestDiagnosticsShapeMismatch: a tensor of the wrong shape is a diagnostic
// marking the tensor ref that declares the shape, with the checkpoint file
// and tensor as its subject; a tensor no rule claims has the subject and no
// position, and sorts first.
func TestDiagnosticsShapeMismatch(t *testing.T) {
	const mapFile = "testdata/small.map"
	src, err := os.ReadFile(mapFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := smallConfig()
	es := smallTensors(cfg)
	for i := range es {
		if es[i].Name == "model.layers.0.self_attn.o_proj.weight" {
			es[i].Shape = tensor.Shape{32, 16}
		}
	}
	es = append(es, safetensors.Entry{Name: "extra.weight", DType: tensor.BF16, Shape: tensor.Shape{2}})
	writeHF(t, dir, cfg, es)
	_, err = testPlan(loadMapFile(t, mapFile), dir, PlanOptions{Workers: 1})
	l := Diagnostics(err)
	if len(l) != 2 {
		t.Fatalf("%d diagnostics, want 2:\n%s", len(l), diag.Text(l, nil))
	}
	file := filepath.Join(dir, "model.safetensors")

	un := l[1]
	if un.HasPos() || un.Subject != (diag.Subject{File: file, Tensor: "extra.weight"}) || !strings.HasPrefix(un.Message, "not claimed by any rule") {
		t.Errorf("unclaimed tensor: %+v", un)
	}

	d := l[0]
	if d.Severity != diag.Error || d.Pos.File != mapFile || d.Pos.Line != 49 || d.Pos.Column != 5 {
		t.Errorf("shape mismatch at %s:%d:%d, want %s:49:5", d.Pos.File, d.Pos.Line, d.Pos.Column, mapFile)
	}
	const ref = "self_attn.o_proj.weight: [hidden, heads * hd]"
	if got := string(src[d.Pos.Offset:d.End.Offset]); got != ref {
		t.Errorf("span %q, want the tensor ref %q", got, ref)
	}
	if d.End.Line != 49 || d.End.Column != d.Pos.Column+len(ref) {
		t.Errorf("end %d:%d, want 49:%d", d.End.Line, d.End.Column, d.Pos.Column+len(ref))
	}
	if d.Subject != (diag.Subject{File: file, Tensor: "model.layers.0.self_attn.o_proj.weight"}) {
		t.Errorf("subject %+v", d.Subject)
	}
	if d.Message != "has shape [32 16], the rule declares [32 32]" {
		t.Errorf("message %q", d.Message)
	}

	// Rendered as lint renders: the rule's line, the caret under the ref.
	text := diag.Text(l[:1], diag.Sources{mapFile: src})
	want := fmt.Sprintf("%s:49:5: error: %s: tensor model.layers.0.self_attn.o_proj.weight: has shape [32 16], the rule declares [32 32]\n", mapFile, file) +
		"        self_attn.o_proj.weight: [hidden, heads * hd] | transpose(0, 1) <-> mixer.dense.weight\n" +
		"        ^" + strings.Repeat("~", len(ref)-1) + "\n"
	if text != want {
		t.Errorf("text:\n%s\nwant:\n%s", text, want)
	}
}

// TestDiagnosticsManyInstances: a rule failing in more layers than are shown
// ends with the count of the rest, after the ones shown.
func TestDiagnosticsManyInstances(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	cfg["num_hidden_layers"] = int64(5)
	es := smallTensors(cfg)
	for i := range es {
		if strings.HasSuffix(es[i].Name, ".self_attn.o_proj.weight") {
			es[i].Shape = tensor.Shape{32, 16}
		}
	}
	writeHF(t, dir, cfg, es)
	_, err := testPlan(loadMapFile(t, "testdata/small.map"), dir, PlanOptions{Workers: 1})
	l := Diagnostics(err)
	var got []string
	for _, d := range l {
		got = append(got, fmt.Sprintf("%d:%d %s", d.Pos.Line, d.Pos.Column, d.Subject.Tensor))
	}
	want := []string{
		"49:5 model.layers.0.self_attn.o_proj.weight",
		"49:5 model.layers.1.self_attn.o_proj.weight",
		"49:5 model.layers.2.self_attn.o_proj.weight",
		"49:5 ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := l[3].Message; m != "... and 2 more instances of this rule fail" {
		t.Errorf("last message %q", m)
	}
}

// TestDiagnosticsOf: every kind of error converts, joined ones one by one,
// sorted with those that have no position first.
func TestDiagnosticsOf(t *testing.T) {
	if l := Diagnostics(nil); l != nil {
		t.Errorf("nil error: %v", l)
	}
	at := diag.Pos{File: "m.map", Offset: 10, Line: 2, Column: 3}
	end := diag.Pos{File: "m.map", Offset: 14, Line: 2, Column: 7}
	err := errors.Join(
		&TensorError{Tensor: "b", File: "d/x.safetensors", Pos: at, End: end, Msg: "bad shape"},
		diag.Diagnostic{Severity: diag.Error, Pos: at, End: end, Message: "a summary"},
		&boundError{key: "k", err: &TensorError{Tensor: "a", Pos: at, End: end, Msg: "missing"}},
		errors.New("plain"),
		fmt.Errorf("hf: %w", &safetensors.FormatError{File: "d/y.safetensors", Tensor: "t", Reason: "truncated"}),
		&fault.Error{Path: "d/z.safetensors", Offset: 64, Tensor: "u", Mapped: 100, Now: 10},
		&safetensors.FormatError{File: "d/\x1b.safetensors", Tensor: "v\n", Reason: "bad"},
	)
	l := Diagnostics(err)
	want := []string{
		"m.map:2:3: error: tensor a: missing",
		"m.map:2:3: error: d/x.safetensors: tensor b: bad shape",
		"m.map:2:3: error: a summary",
		`"d/\x1b.safetensors": tensor "v\n": bad`,
		"d/y.safetensors: tensor t: truncated",
		"d/z.safetensors: tensor u: cannot read byte 64: the file shrank from 100 to 10 bytes while being read; inputs must not change during a conversion",
		"plain",
	}
	var got []string
	for _, d := range l {
		got = append(got, d.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if l[4].Subject != (diag.Subject{File: "d/y.safetensors", Tensor: "t"}) || l[4].Message != "truncated" {
		t.Errorf("format error: %+v", l[4])
	}
	// The subject holds the names raw; printing it escapes them.
	if l[3].Subject != (diag.Subject{File: "d/\x1b.safetensors", Tensor: "v\n"}) {
		t.Errorf("format error of escaped names: %+v", l[3])
	}
	if l[5].Subject != (diag.Subject{File: "d/z.safetensors", Tensor: "u"}) || l[5].HasPos() {
		t.Errorf("input changed: %+v", l[5])
	}
}
