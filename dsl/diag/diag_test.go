package diag_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/diag"
)

func pos(off, line, col int) diag.Pos {
	return diag.Pos{File: "f.map", Offset: off, Line: line, Column: col}
}

var src = []byte("mapping m\n\tx | tranpose(0, 1) <-> y\nlast line")

var list = diag.List{
	{Severity: diag.Warning, Pos: pos(0, 1, 1), End: pos(7, 1, 8), Message: "a warning"},
	{Severity: diag.Error, Pos: pos(15, 2, 6), End: pos(23, 2, 14), Message: `unknown op "tranpose"`, Hint: "did you mean transpose?"},
	{Severity: diag.Error, Pos: pos(11, 2, 2), End: pos(40, 3, 5), Message: "spans lines"},
}

func TestSortAndCount(t *testing.T) {
	l := append(diag.List{}, list...)
	l = append(l, l[1]) // an exact duplicate
	l = l.Sort()
	if len(l) != 3 || l[0].Message != "a warning" || l[1].Message != "spans lines" {
		t.Errorf("sorted: %+v", l)
	}
	if !l.HasErrors() || l.Count(diag.Error) != 2 || l.Count(diag.Warning) != 1 {
		t.Error("counts")
	}
	if l.Err() == nil || diag.AsList(l.Err()) == nil || (diag.List{list[0]}).Err() != nil {
		t.Error("Err")
	}
}

func TestText(t *testing.T) {
	got := diag.Text(list, diag.Sources{"f.map": src})
	want := "f.map:1:1: warning: a warning\n" +
		"    mapping m\n" +
		"    ^~~~~~~\n" +
		"f.map:2:6: error: unknown op \"tranpose\"\n" +
		"    \tx | tranpose(0, 1) <-> y\n" +
		"    \t    ^~~~~~~~\n" +
		"    hint: did you mean transpose?\n" +
		"f.map:2:2: error: spans lines\n" +
		"    \tx | tranpose(0, 1) <-> y\n" +
		"    \t^~~~~~~~~~~~~~~~~~~~~~~~\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// Without the source, only the message lines.
	if got := diag.Text(list[:1], nil); got != "f.map:1:1: warning: a warning\n" {
		t.Errorf("no source: %q", got)
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := diag.WriteJSON(&b, list[1:2]); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if err := json.Unmarshal(b.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	d := out[0]
	if d["file"] != "f.map" || d["line"] != 2.0 || d["column"] != 6.0 || d["end_column"] != 14.0 ||
		d["severity"] != "error" || d["hint"] != "did you mean transpose?" {
		t.Errorf("json: %v", d)
	}
	b.Reset()
	_ = diag.WriteJSON(&b, nil)
	if strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("empty list: %q", b.String())
	}
}

func TestGitHub(t *testing.T) {
	var b bytes.Buffer
	l := diag.List{list[0], list[1], {Severity: diag.Error, Pos: diag.Pos{File: "a,b:c.map", Line: 1, Column: 1}, End: diag.Pos{Line: 1, Column: 2}, Message: "100%\nbad"}}
	_ = diag.WriteGitHub(&b, l)
	want := "::warning file=f.map,line=1,col=1,endLine=1,endColumn=8::a warning\n" +
		"::error file=f.map,line=2,col=6,endLine=2,endColumn=14::unknown op \"tranpose\" (hint: did you mean transpose?)\n" +
		"::error file=a%2Cb%3Ac.map,line=1,col=1,endLine=1,endColumn=2::100%25%0Abad\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestSuggest(t *testing.T) {
	ops := []string{"transpose", "concat", "split", "unzip", "zip", "flatten", "unflatten"}
	for _, c := range []struct{ in, want string }{
		{"tranpose", "transpose"}, {"trasnpose", "transpose"}, {"concta", "concat"}, {"zipp", "zip"},
		{"frobnicate", ""}, {"x", ""}, {"unflaten", "unflatten"},
	} {
		if got := diag.Suggest(c.in, ops); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got, want := diag.DidYouMeanOr("concta", ops[:3], "ops"), "did you mean concat?"; got != want {
		t.Errorf("DidYouMeanOr close: %q, want %q", got, want)
	}
	if got, want := diag.DidYouMeanOr("frobnicate", ops[:3], "ops"), "ops: transpose, concat, split"; got != want {
		t.Errorf("DidYouMeanOr far: %q, want %q", got, want)
	}
	if diag.Distance("abc", "acb") != 1 || diag.Distance("", "abc") != 3 || diag.Distance("kitten", "sitting") != 3 {
		t.Error("Distance")
	}
}

// subjectList has a problem of a checkpoint file with no source position, and
// one a rule found about a tensor of it.
var subjectList = diag.List{
	{Severity: diag.Error, Pos: pos(11, 2, 2), End: pos(12, 2, 3), Subject: diag.Subject{File: "ck/model.safetensors", Tensor: "x"}, Message: "has shape [2]"},
	{Severity: diag.Error, Subject: diag.Subject{File: "ck/config.json", Key: "a.b"}, Message: "not claimed"},
}

func TestSubject(t *testing.T) {
	l := append(diag.List{}, subjectList...).Sort()
	if !l[0].HasPos() || l[1].HasPos() {
		t.Fatalf("no position sorts last: %+v", l)
	}
	got := diag.Text(l, diag.Sources{"f.map": src})
	want := "f.map:2:2: error: ck/model.safetensors: tensor x: has shape [2]\n" +
		"    \tx | tranpose(0, 1) <-> y\n" +
		"    \t^\n" +
		"ck/config.json: a.b: not claimed\n"
	if got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
	warn := diag.Diagnostic{Severity: diag.Warning, Subject: diag.Subject{Tensor: "t"}, Message: "m"}
	if got := warn.Error(); got != "warning: tensor t: m" {
		t.Errorf("warning without position: %q", got)
	}

	var b bytes.Buffer
	if err := diag.WriteJSON(&b, l); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if err := json.Unmarshal(b.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if _, ok := out[1]["line"]; ok || out[1]["message"] != "not claimed" {
		t.Errorf("json without position: %v", out[1])
	}
	if s, _ := out[1]["subject"].(map[string]any); s["file"] != "ck/config.json" || s["key"] != "a.b" || s["tensor"] != nil {
		t.Errorf("json subject: %v", out[1]["subject"])
	}
	if s, _ := out[0]["subject"].(map[string]any); out[0]["line"] != 2.0 || s["tensor"] != "x" || out[0]["message"] != "has shape [2]" {
		t.Errorf("json with position: %v", out[0])
	}
	if _, ok := out[0]["hint"]; ok {
		t.Errorf("an empty hint is left out: %v", out[0])
	}

	b.Reset()
	_ = diag.WriteGitHub(&b, l)
	want = "::error file=f.map,line=2,col=2,endLine=2,endColumn=3::ck/model.safetensors: tensor x: has shape [2]\n" +
		"::error::ck/config.json: a.b: not claimed\n"
	if b.String() != want {
		t.Errorf("github:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestSortSubjects: at one span, subjects in order, and one that names
// nothing (a summary of the others) last.
func TestSortSubjects(t *testing.T) {
	mk := func(tensor, msg string) diag.Diagnostic {
		return diag.Diagnostic{Pos: pos(11, 2, 2), End: pos(12, 2, 3), Subject: diag.Subject{Tensor: tensor}, Message: msg}
	}
	l := diag.List{mk("", "... and 2 more"), mk("b", "m"), mk("a", "m")}.Sort()
	if l[0].Subject.Tensor != "a" || l[1].Subject.Tensor != "b" || l[2].Message != "... and 2 more" {
		t.Errorf("sorted: %+v", l)
	}
}

// TestSubjectEscapes: the names of a subject come from a checkpoint; text
// and github output print one that would not print as itself escaped, and a
// plain one as it is. JSON writes them raw, escaped by encoding/json (its
// control characters; a JSON reader is no terminal).
func TestSubjectEscapes(t *testing.T) {
	d := diag.Diagnostic{Severity: diag.Error, Pos: pos(0, 1, 1), End: pos(7, 1, 8),
		Subject: diag.Subject{File: "in/a\n.safetensors", Tensor: "w\x1b[2J", Key: "k\u202e"}, Message: "bad"}
	const want = `f.map:1:1: error: "in/a\n.safetensors": tensor "w\x1b[2J": "k\u202e": bad`
	if got := d.Error(); got != want {
		t.Errorf("Error:\n got %s\nwant %s", got, want)
	}
	if got := diag.Text(diag.List{d}, nil); got != want+"\n" {
		t.Errorf("text: %q", got)
	}
	var b bytes.Buffer
	if err := diag.WriteGitHub(&b, diag.List{d}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `::"in/a\n.safetensors": tensor "w\x1b[2J": "k\u202e": bad`) {
		t.Errorf("github: %q", b.String())
	}
	b.Reset()
	if err := diag.WriteJSON(&b, diag.List{d}); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\x1b") || !strings.Contains(b.String(), `"tensor": "w\u001b[2J"`) {
		t.Errorf("json: %s", b.String())
	}
	var out []struct {
		Subject diag.Subject `json:"subject"`
	}
	if err := json.Unmarshal(b.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out[0].Subject != d.Subject {
		t.Errorf("json subject %+v, want the raw names %+v", out[0].Subject, d.Subject)
	}
	plain := diag.Subject{File: "in/model.safetensors", Tensor: "model.norm.weight", Key: "rope_theta"}
	if got := plain.String(); got != "in/model.safetensors: tensor model.norm.weight: rope_theta" {
		t.Errorf("plain subject %q", got)
	}
}

// TestVia: a problem inside a fragment names the use that put it in the
// mapping, in every format, with the use's source line in text; the same
// problem reached once more (Via aside) is one.
func TestVia(t *testing.T) {
	use := diag.Pos{File: "m.map", Offset: 4, Line: 2, Column: 3}
	d := diag.Diagnostic{Severity: diag.Error, Pos: pos(15, 2, 6), End: pos(23, 2, 14), Message: `unknown op "tranpose"`, Via: []diag.Pos{use}}
	l := diag.List{d}
	text := diag.Text(l, diag.Sources{"f.map": src, "m.map": []byte("x\n  use f(n = 1)\n")})
	if !strings.Contains(text, "\n    from m.map:2:3: use f(n = 1)\n") {
		t.Errorf("text:\n%s", text)
	}
	var b bytes.Buffer
	if err := diag.WriteJSON(&b, l); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Via []struct {
			File         string
			Line, Column int
		}
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil || len(got) != 1 || len(got[0].Via) != 1 || got[0].Via[0].File != "m.map" || got[0].Via[0].Line != 2 {
		t.Errorf("json %s: %v", b.String(), err)
	}
	b.Reset()
	if err := diag.WriteGitHub(&b, l); err != nil || !strings.HasSuffix(b.String(), " (from m.map:2:3)\n") {
		t.Errorf("github %q: %v", b.String(), err)
	}
	bare := d
	bare.Via = nil
	if s := append(diag.List{bare}, d).Sort(); len(s) != 1 {
		t.Errorf("the same problem twice: %v", s)
	}
}
