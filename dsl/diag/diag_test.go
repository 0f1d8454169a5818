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
