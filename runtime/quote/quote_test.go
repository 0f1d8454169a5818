package quote

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"
)

func TestName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// Names of real checkpoints print as they are, quotes and
		// backslashes included.
		{"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.q_proj.weight"},
		{"decoder.0.mlp.experts/weights", "decoder.0.mlp.experts/weights"},
		{"a b", "a b"},
		{`say "hi"`, `say "hi"`},
		{`back\slash`, `back\slash`},
		{"模型.权重", "模型.权重"},
		{"\uFFFD", "\uFFFD"},
		{"", ""},
		// Anything a terminal would act on is escaped, the name quoted.
		{"\x1b[2Jmodel.weight", `"\x1b[2Jmodel.weight"`},
		{"a\nmapper: done", `"a\nmapper: done"`},
		{"a\rb", `"a\rb"`},
		{"tab\there", `"tab\there"`},
		{"bell\a", `"bell\a"`},
		{"del\x7f", `"del\x7f"`},
		{"c1\u009b2J", `"c1\u009b2J"`},
		{"bidi\u202eevil", `"bidi\u202eevil"`},
		{"bad\xffutf8", `"bad\xffutf8"`},
		{`q"\` + "\x1b", `"q\"\\\x1b"`},
	} {
		if got := Name(tc.in); got != tc.want {
			t.Errorf("Name(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	in := []string{"ok", "\x1b"}
	got := Names(in)
	if len(got) != 2 || got[0] != "ok" || got[1] != `"\x1b"` {
		t.Errorf("Names(%q) = %q", in, got)
	}
	if in[1] != "\x1b" {
		t.Errorf("Names changed its argument: %q", in)
	}
}

// TestPathError: an os error on a file whose name holds an ESC prints the
// name escaped, stays an fs.ErrNotExist, and a second pass changes nothing.
func TestPathError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shard\x1b[2J.safetensors")
	_, err := os.Open(path)
	err = PathError(err)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("not ErrNotExist any more: %v", err)
	}
	want := "open " + `"` + filepath.Dir(path) + `/shard\x1b[2J.safetensors": no such file or directory`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	if again := PathError(err).Error(); again != want {
		t.Errorf("a second pass gave %s", again)
	}
	plain := errors.New("no path here")
	if PathError(plain) != plain || PathError(nil) != nil {
		t.Error("errors without a path are not returned as they are")
	}
}

func TestJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":"b"}`, `{"a":"b"}`},
		{`{"name":"évolué 名前"}`, `{"name":"évolué 名前"}`},
		{"{\"name\":\"a\u202eb\"}", `{"name":"a\u202eb"}`},
		{"[\"\u200b\u2066x\u2069\"]", `["\u200b\u2066x\u2069"]`},
		{"[\"\U000E0001\"]", `["\udb40\udc01"]`}, // a tag character: format, outside the BMP
		{"[\"\xff\"]", `["\ufffd"]`},
		{"[\"\ufffd\"]", "[\"\ufffd\"]"},
	} {
		got := string(JSON([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("JSON(%q) = %q, want %q", tc.in, got, tc.want)
		}
		var a, b any
		if json.Valid([]byte(tc.in)) && utf8.ValidString(tc.in) {
			if err := json.Unmarshal([]byte(tc.in), &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(got), &b); err != nil {
				t.Fatalf("JSON(%q) = %q: not JSON: %v", tc.in, got, err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("JSON(%q) changed the value: %v, want %v", tc.in, b, a)
			}
		}
	}
}

func TestJSONWriter(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(JSONWriter(&buf))
	if err := enc.Encode(map[string]string{"tensor": "model.\u202eweight"}); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "{\"tensor\":\"model.\\u202eweight\"}\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
