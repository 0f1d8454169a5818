package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/configmap"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// noControls fails when text holds a control character other than the
// newlines that end its lines.
func noControls(t *testing.T, what, text string) {
	t.Helper()
	if i := strings.IndexFunc(text, func(r rune) bool { return r != '\n' && (r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)) }); i >= 0 {
		t.Errorf("%s holds control character %q:\n%s", what, text[i], text)
	}
}

// TestWriteTextEscapesNames: the plan's text summary prints the names a
// checkpoint supplies (tensors, sources, files, side files, the variant)
// escaped when they hold a control character, and plain names as they are.
func TestWriteTextEscapesNames(t *testing.T) {
	s := &Summary{Mapping: "llama", MapFile: "mappings/llama.map", Direction: "import", From: "hf", To: "fast_llm",
		Variant: "v\x1b[2J", Config: map[string]any{"key\x1b": "value\u009b"},
		Shards:    []ShardSummary{{File: "model\x1b.safetensors", Tensors: 2}},
		SideFiles: []string{"tokenizer\r.json"},
		Tensors: []TensorSummary{
			{Name: "decoder.0.norm_1.weight", DType: "BF16", Shape: []int{4}, Shard: "model\x1b.safetensors",
				Sources: []string{"model.layers.0.input_layernorm.weight"}, Rule: "mappings/llama.map:86"},
			{Name: "head\nfake line", DType: "BF16", Shape: []int{4}, Shard: "model\x1b.safetensors",
				Sources: []string{"a\x1b]0;title\a", "b"}, Ops: []string{"concat(0)"}, Rule: "mappings/llama.map:89"},
		}}
	var b strings.Builder
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	noControls(t, "the summary", text)
	for _, want := range []string{
		`variant "v\x1b[2J"`,
		`  "model\x1b.safetensors"  2 tensors`,
		`  "tokenizer\r.json"  (copied unchanged)`,
		"  decoder.0.norm_1.weight BF16[4]  \"model\\x1b.safetensors\"\n      <- model.layers.0.input_layernorm.weight  copied",
		`  "head\nfake line" BF16[4]`,
		`<- ("a\x1b]0;title\a", b) | concat(0)`,
		`"key\u001b": "value\u009b"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the summary does not show %s:\n%s", want, text)
		}
	}
}

// TestErrorsEscapeNames: tensor and config errors escape the names and
// files they cite, and leave plain ones as they are.
func TestErrorsEscapeNames(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&TensorError{Tensor: "w\x1b[2J", File: "in/a\n.safetensors", Pos: ir.Pos{File: "x.map", Offset: 20, Line: 3, Column: 1}, Msg: "not claimed"},
			`x.map:3:1: error: "in/a\n.safetensors": tensor "w\x1b[2J": not claimed`},
		{&TensorError{Tensor: "model.norm.weight", File: "in/model.safetensors", Msg: "missing"},
			`in/model.safetensors: tensor model.norm.weight: missing`},
		{&configmap.Error{Doc: "in/config.json", Key: "rope\x1b[31m", Msg: "not claimed"},
			`in/config.json: "rope\x1b[31m": not claimed`},
		{&configmap.Error{Doc: "in/config.json", Key: "hidden_act", Msg: `value "gelu" has no counterpart`},
			`in/config.json: hidden_act: value "gelu" has no counterpart`},
	} {
		got := tc.err.Error()
		noControls(t, "the error", got)
		if got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

// TestPlanNotesEscapeNames: the notes on files of the input directory (a
// weight file the index does not list, an entry that is not a regular
// file) name them as the disk does: escaped.
func TestPlanNotesEscapeNames(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	hfDir := filepath.Join(t.TempDir(), "hf")
	writeSmallHF(t, hfDir, smallConfig())
	ck, err := safetensors.OpenDir(hfDir)
	if err != nil {
		t.Fatal(err)
	}
	wm := map[string]string{}
	for _, n := range ck.Names() {
		wm[n] = "model.safetensors"
	}
	ck.Close()
	if err := safetensors.WriteIndex(filepath.Join(hfDir, safetensors.IndexFile), &safetensors.Index{WeightMap: wm}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hfDir, "extra\x1b[2J.safetensors"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(hfDir, "sub\ndir"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := planOrFail(t, m, hfDir, PlanOptions{Workers: 2})
	notes := strings.Join(p.Notes, "\n")
	noControls(t, "the notes", notes)
	for _, want := range []string{`"extra\x1b[2J.safetensors" is not listed in `, `"sub\ndir" is not carried over`} {
		if !strings.Contains(notes, want) {
			t.Errorf("the notes do not show %s:\n%s", want, notes)
		}
	}
}
