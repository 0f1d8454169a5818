package fastllm

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/engine/format/formattest"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

func entries() []safetensors.Entry {
	return []safetensors.Entry{
		{Name: "embeddings.word_embeddings_weight", DType: tensor.BF16, Shape: tensor.Shape{16, 8}},
		{Name: "decoder.0.mixer.query.weight", DType: tensor.BF16, Shape: tensor.Shape{8, 8}},
		{Name: "decoder.0.mixer.sinks", DType: tensor.BF16, Shape: tensor.Shape{4}},
		{Name: "decoder.0.mlp.layer_1.weight", DType: tensor.F32, Shape: tensor.Shape{2, 16, 8}},
		{Name: "head.final_norm.weight", DType: tensor.BF16, Shape: tensor.Shape{8}},
	}
}

func config() map[string]any {
	return map[string]any{
		"hidden_size":           int64(8),
		"tied_embedding_weight": false,
		"embeddings":            map[string]any{"vocab_size": int64(16)},
		"decoder": map[string]any{
			"type": "pattern",
			"blocks": map[string]any{
				"sliding": map[string]any{"mixer": map[string]any{"window_size": int64(128), "heads": int64(4),
					"rotary": map[string]any{"type": "yarn", "theta": 150000.0, "scale_factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0}}},
				"full": map[string]any{"mixer": map[string]any{"heads": int64(4), "dropout": 0.0}},
			},
			"pattern":    []any{"sliding", "full"},
			"num_blocks": int64(2),
		},
		"head": map[string]any{"normalization": map[string]any{"type": "rms_norm", "epsilon": 1e-05}},
		"odd": map[string]any{"yes": "yes", "null": nil, "num": "1.0", "neg": math.Copysign(0, -1), "tiny": 5e-324, "big": 1e16,
			"inf": math.Inf(1), "minf": math.Inf(-1), "multi": "a\nb", "unicode": "caf\u00e9", "empty": []any{}, "emptymap": map[string]any{},
			"maxint": int64(math.MaxInt64), "minint": int64(math.MinInt64)},
	}
}

func carried() *format.Carried {
	return &format.Carried{Mapping: "gpt_oss", MappingHash: strings.Repeat("0123456789abcdef", 4), From: "hf", Variant: "mxfp4",
		Kept:   map[string]any{"router_aux_loss_coef": 0.9, "swiglu_limit": 7.0, "rope_scaling.truncate": false, "eos_token_id": int64(200002)},
		Absent: []string{"pad_token_id"},
		FileMetadata: map[string]map[string]string{
			"model-00001-of-00002.safetensors": {"format": "pt", "odd": "1.0", "yes": "yes", "multi": "a: b\n- c\n"},
			"model-00002-of-00002.safetensors": nil,
			"model-00003-of-00003.safetensors": {},
		},
		// Texts must come back to the byte, whatever they hold.
		Texts: map[string]string{
			"config.json": "{\n    \"z\": 1e-5,\n\t\"a\": \"caf\u00e9\"   \n}",
			"crlf.json":   "{\r\n  \"a\": 1\r\n}\r\n",
			"lead.json":   "  \n\n{}\n\n\n",
			"yaml.json":   "- not: yaml\n# comment\n&anchor *alias\n",
			"empty":       "",
		}}
}

func side(t *testing.T) format.Format {
	f, err := format.Lookup(Name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func write(t *testing.T, out *format.Output) (string, []format.Shard, *format.Source) {
	t.Helper()
	return formattest.WriteAndOpen(t, side(t), out)
}

func checkSource(t *testing.T, src *format.Source, es []safetensors.Entry, wantCarried *format.Carried) {
	t.Helper()
	if !reflect.DeepEqual(src.Config, config()) {
		t.Errorf("config = %#v", src.Config)
	}
	// -0.0 == 0.0 for DeepEqual; check the sign survived.
	if f := src.Config["odd"].(map[string]any)["neg"].(float64); !math.Signbit(f) {
		t.Error("-0.0 lost its sign")
	}
	if !reflect.DeepEqual(src.Carried, wantCarried) {
		t.Errorf("carried = %#v", src.Carried)
	}
	if len(src.Tensors) != len(es) {
		t.Fatalf("%d tensors, want %d", len(src.Tensors), len(es))
	}
	for _, e := range es {
		got, ok := src.Lookup(e.Name)
		if !ok {
			t.Fatalf("tensor %s missing", e.Name)
		}
		if got.DType != e.DType || !slices.Equal(got.Shape, e.Shape) || got.Info.Name != e.Name+"/weights" {
			t.Errorf("%s: %v %v %q", e.Name, got.DType, got.Shape, got.Info.Name)
		}
		data, err := got.File.Data(got.Info.Name)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := e.Size()
		if !bytes.Equal(data, formattest.Fill(e.Name, n)) {
			t.Errorf("%s: data differs", e.Name)
		}
	}
	if !slices.IsSortedFunc(src.Tensors, func(a, b format.Tensor) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("tensors not sorted")
	}
}

func TestRoundTrip(t *testing.T) {
	es := entries()
	for _, c := range []struct {
		name    string
		carried *format.Carried
	}{{"carried", carried()}, {"no carried", nil}} {
		t.Run(c.name, func(t *testing.T) {
			out := &format.Output{Config: config(), Carried: c.carried, Tensors: es}
			dir, shards, src := write(t, out)
			if len(shards) != 1 || shards[0].File != "model_0.safetensors" {
				t.Fatalf("shards %+v", shards)
			}
			checkSource(t, src, es, c.carried)
			formattest.CheckWithReference(t, dir, shards)
			raw, _ := os.ReadFile(filepath.Join(dir, MetadataFile))
			for _, want := range []string{"fast_llm_version: 0.4.0\n", "format: fast_llm\n", "model: gpt\n",
				"shards:\n  - weights\n", "    epsilon: 1.0e-05\n", "        theta: 150000.0\n",
				"  state_index:\n    decoder.0.mixer.query.weight/weights: model_0.safetensors\n"} {
				if !strings.Contains(string(raw), want) {
					t.Errorf("metadata.yaml lacks %q:\n%s", want, raw)
				}
			}
			if has := strings.Contains(string(raw), "mapper:"); has != (c.carried != nil) {
				t.Errorf("mapper key present: %v\n%s", has, raw)
			}
		})
	}
}

func TestShardedByBytes(t *testing.T) {
	es := entries() // 256 + 128 + 8 + 1024 + 16 bytes
	out := &format.Output{Config: config(), Carried: carried(), Tensors: es, ShardBytes: 400}
	dir, shards, src := write(t, out)
	var files []string
	for _, s := range shards {
		files = append(files, s.File)
	}
	if !slices.Equal(files, []string{"model_0.safetensors", "model_1.safetensors", "model_2.safetensors"}) {
		t.Fatalf("files %v", files)
	}
	if !slices.Equal(shards[0].Logical, []string{"embeddings.word_embeddings_weight", "decoder.0.mixer.query.weight", "decoder.0.mixer.sinks"}) ||
		shards[0].Entries[0].Name != "embeddings.word_embeddings_weight/weights" {
		t.Fatalf("shard 0 %+v", shards[0])
	}
	checkSource(t, src, es, carried())
	formattest.CheckWithReference(t, dir, shards)
}

func TestPlanByParameters(t *testing.T) {
	e := func(name string, n int) safetensors.Entry {
		return safetensors.Entry{Name: name, DType: tensor.BF16, Shape: tensor.Shape{n}}
	}
	plan, err := planByParameters([]safetensors.Entry{e("a", 3), e("b", 6), e("c", 10), e("d", 1), e("e", 2)}, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Fast-LLM closes a file once it holds >= 10 parameters: [a b c] [d e].
	if len(plan) != 2 || len(plan[0].Entries) != 3 || plan[0].Bytes != 38 || plan[1].File != "model_1.safetensors" {
		t.Fatalf("plan %+v", plan)
	}
	plan, _ = planByParameters([]safetensors.Entry{e("a", 10), e("b", 1)}, 10)
	if len(plan) != 2 || len(plan[0].Entries) != 1 {
		t.Fatalf("plan %+v", plan)
	}
	plan, _ = planByParameters([]safetensors.Entry{e("a", 10)}, 10)
	if len(plan) != 1 {
		t.Fatalf("plan %+v", plan)
	}
	plan, _ = planByParameters(nil, 10)
	if len(plan) != 1 || plan[0].File != "model_0.safetensors" {
		t.Fatalf("plan %+v", plan)
	}
	// F4 packs two parameters a byte: the parameter count leaves int64
	// (8 * 2^60) before the byte count does, and is refused, not wrapped.
	var f4 []safetensors.Entry
	for i := range 8 {
		f4 = append(f4, safetensors.Entry{Name: string(rune('0' + i)), DType: tensor.F4, Shape: tensor.Shape{1 << 60}})
	}
	if _, err := planByParameters(f4, math.MaxInt64); err == nil || !strings.Contains(err.Error(), `tensor "7": the file's size or parameter count overflows`) {
		t.Errorf("2^63 parameters: %v", err)
	}
	// The default: 2^32 parameters (never written).
	big := []safetensors.Entry{e("a", 1<<31), e("b", 1<<31), e("c", 1)}
	shards, err := side(t).Layout(&format.Output{Config: config(), Tensors: big})
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 2 || len(shards[0].Entries) != 2 || shards[1].Logical[0] != "c" || shards[1].Entries[0].Name != "c/weights" {
		t.Fatalf("shards %+v", shards)
	}
}

func TestFloatFormat(t *testing.T) {
	for f, want := range map[float64]string{32.0: "32.0", 1e-05: "1.0e-05", 1e16: "1.0e+16", 0.9: "0.9", 1.5e-07: "1.5e-07",
		150000: "150000.0", math.Inf(1): ".inf", math.Inf(-1): "-.inf", 1.2345678901234568e+17: "1.2345678901234568e+17"} {
		if got := FormatFloat(f); got != want {
			t.Errorf("FormatFloat(%v) = %s, want %s", f, got, want)
		}
	}
	if FormatFloat(math.NaN()) != ".nan" {
		t.Error("NaN")
	}
}

// Fast-LLM writes metadata.yaml with PyYAML: unindented sequences, single
// quotes, floats like 1.0e-05; mapper must read what it writes.
func TestParsePyYAMLStyle(t *testing.T) {
	doc := `config:
  base_model:
    hidden_size: 8
    eps: 1.0e-05
    plain_exp: 1e-05
    f: 32.0
    s: 'yes'
    anchor: &a {x: 1}
    alias: *a
    hex: 0x10
fast_llm_version: 0.4.0
format: fast_llm
metadata:
  state_index:
    a/weights: model_0.safetensors
model: gpt
shards:
- weights
`
	md, err := ParseMetadata([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"hidden_size": int64(8), "eps": 1e-05, "plain_exp": 1e-05, "f": 32.0, "s": "yes",
		"anchor": map[string]any{"x": int64(1)}, "alias": map[string]any{"x": int64(1)}, "hex": int64(16)}
	if !reflect.DeepEqual(md.Config, want) {
		t.Errorf("config %#v", md.Config)
	}
	if md.Version != "0.4.0" || md.Carried != nil || md.StateIndex["a/weights"] != "model_0.safetensors" {
		t.Errorf("metadata %+v", md)
	}
}

func TestParseMetadataRejects(t *testing.T) {
	const good = "format: fast_llm\nconfig: {base_model: {a: 1}}\nshards: [weights]\nmetadata: {state_index: {a/weights: model_0.safetensors}}\n"
	cases := []struct{ doc, want string }{
		{"- 1\n", "not a mapping"},
		{"", "empty"},
		{strings.Replace(good, "fast_llm", "distributed", 1), `format is "distributed", want fast_llm`},
		{strings.Replace(good, "format: fast_llm\n", "", 1), "format is missing"},
		{strings.Replace(good, "base_model", "other", 1), "config.base_model is missing"},
		{strings.Replace(good, "{base_model: {a: 1}}", "[]", 1), "config.base_model is missing"},
		{strings.Replace(good, "[weights]", "[momentum]", 1), `do not contain "weights"`},
		{strings.Replace(good, "[weights]", "weights", 1), "shards is"},
		{strings.Replace(good, "model_0.safetensors", "[x]", 1), "want a file name"},
		{strings.Replace(good, "state_index", "index", 1), "metadata.state_index is missing"},
		{good + "format: fast_llm\n", `duplicate key "format"`},
		{strings.Replace(good, "{a: 1}", "{a: 1, a: 2}", 1), `at config.base_model: line 2: duplicate key "a"`},
		{strings.Replace(good, "{a: 1}", "{a: 99999999999999999999}", 1), "does not fit in int64"},
		{strings.Replace(good, "{a: 1}", "{1: 2}", 1), "is not a string"},
		{strings.Replace(good, "{a: 1}", "{a: !!binary aGk=}", 1), "unsupported"},
		{strings.Replace(good, "{a: 1}", "{a: 2001-12-14}", 1), "unsupported"},
		{strings.Replace(good, "state_index:", "mapper: {mapping: 1}, state_index:", 1), "metadata.mapper: mapping is 1"},
		{strings.Replace(good, "state_index:", "mapper: {bogus: x}, state_index:", 1), `metadata.mapper: unknown key "bogus"`},
		{strings.Replace(good, "state_index:", "mapper: {absent: [1]}, state_index:", 1), "want strings"},
		{strings.Replace(good, "state_index:", "mapper: {file_metadata: {a.safetensors: {format: 1}}}, state_index:", 1), "file_metadata.a.safetensors.format is 1, want a string"},
		{strings.Replace(good, "state_index:", "mapper: {file_metadata: {a.safetensors: [x]}}, state_index:", 1), "file_metadata.a.safetensors is a list"},
		{strings.Replace(good, "state_index:", "mapper: {texts: [x]}, state_index:", 1), "texts is a list"},
		{strings.Replace(good, "state_index:", "mapper: {texts: {config.json: null}}, state_index:", 1), "texts.config.json is missing or null, want a string"},
		{strings.Replace(good, "state_index:", "mapper: {mapping_sha256: 1}, state_index:", 1), "mapping_sha256 is 1"},
	}
	for _, c := range cases {
		_, err := ParseMetadata([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.doc, err, c.want)
		}
	}
	// Billion laughs stays bounded.
	var lol strings.Builder
	lol.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 12; i++ {
		lol.WriteString("a" + itoa(i) + ": &a" + itoa(i) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				lol.WriteString(", ")
			}
			lol.WriteString("*a" + itoa(i-1))
		}
		lol.WriteString("]\n")
	}
	if _, err := ParseMetadata([]byte(lol.String())); err == nil {
		t.Error("billion laughs accepted")
	}
}

func itoa(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }

// checkpoint writes a valid checkpoint, then lets edit change its
// metadata.yaml before Open.
func openEdited(t *testing.T, edit func(dir string, meta string) string) error {
	t.Helper()
	out := &format.Output{Config: config(), Tensors: entries(), ShardBytes: 400}
	dir := t.TempDir()
	s := side(t)
	shards, err := s.Layout(out)
	if err != nil {
		t.Fatal(err)
	}
	formattest.WriteShards(t, dir, shards)
	if err := s.WriteMeta(dir, out, shards); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, MetadataFile)
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(edit(dir, string(raw))), 0o644)
	src, err := s.Open(dir)
	if err == nil {
		src.Close()
	}
	return err
}

func TestOpenRejects(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "evil.safetensors"), []byte("x"), 0o644)
	cases := []struct {
		name string
		edit func(dir, meta string) string
		want string
	}{
		{"absolute path", func(_, m string) string {
			return strings.Replace(m, ": model_2.safetensors", ": "+filepath.Join(outside, "evil.safetensors"), 1)
		}, "unsafe file name"},
		{"parent dir", func(_, m string) string {
			return strings.Replace(m, ": model_2.safetensors", ": ../evil.safetensors", 1)
		}, "unsafe file name"},
		{"subdir", func(_, m string) string {
			return strings.Replace(m, ": model_2.safetensors", ": sub/model_2.safetensors", 1)
		}, "unsafe file name"},
		{"symlink out", func(dir, m string) string {
			os.Symlink(filepath.Join(outside, "evil.safetensors"), filepath.Join(dir, "model_9.safetensors"))
			return strings.Replace(m, ": model_2.safetensors", ": model_9.safetensors", 1)
		}, "outside the directory"},
		{"missing file", func(_, m string) string {
			return strings.Replace(m, ": model_2.safetensors", ": model_7.safetensors", 1)
		}, "missing file"},
		{"tensor not in index", func(_, m string) string {
			return strings.Replace(m, "    decoder.0.mixer.sinks/weights: model_0.safetensors\n", "", 1)
		}, `tensor "decoder.0.mixer.sinks/weights" is not in`},
		{"index names the wrong file", func(_, m string) string {
			return strings.Replace(m, "decoder.0.mixer.sinks/weights: model_0.safetensors", "decoder.0.mixer.sinks/weights: model_1.safetensors", 1)
		}, "says model_1.safetensors"},
		{"index entry absent from file", func(_, m string) string {
			return strings.Replace(m, "  state_index:\n", "  state_index:\n    ghost/weights: model_0.safetensors\n", 1)
		}, `tensor "ghost/weights" is listed`},
		{"no /weights", func(_, m string) string {
			return strings.Replace(m, "  state_index:\n", "  state_index:\n    ghost: model_0.safetensors\n", 1)
		}, `tensor key "ghost" is not <parameter>/<shard> for a shard of [weights]`},
		{"shard not listed", func(_, m string) string {
			return strings.Replace(m, "  state_index:\n", "  state_index:\n    a/momentum: model_0.safetensors\n", 1)
		}, `tensor key "a/momentum" is not <parameter>/<shard> for a shard of [weights]`},
		{"bad keys in order", func(_, m string) string {
			return strings.Replace(m, "  state_index:\n", "  state_index:\n    z: model_0.safetensors\n    b: model_0.safetensors\n    m: model_0.safetensors\n", 1)
		}, "tensor key \"b\" is not <parameter>/<shard> for a shard of [weights]\n" +
			"tensor key \"m\" is not <parameter>/<shard> for a shard of [weights]\n" +
			"tensor key \"z\" is not <parameter>/<shard> for a shard of [weights]"},
		{"optimizer state missing from its file", func(_, m string) string {
			m = strings.Replace(m, "  - weights\n", "  - weights\n  - exp_avgs\n", 1)
			return strings.Replace(m, "  state_index:\n", "  state_index:\n    a/exp_avgs: model_0.safetensors\n", 1)
		}, `tensor "a/exp_avgs" is listed`},
		{"a multimodal model without a vision encoder", func(_, m string) string {
			return strings.Replace(m, "model: gpt\n", "model: multimodal\n", 1)
		}, `model is "multimodal", but config.base_model is a gpt model's (it has no vision_encoder)`},
		{"a gpt model with a vision encoder", func(_, m string) string {
			return strings.Replace(m, "base_model:\n", "base_model:\n    vision_encoder: {hidden_size: 8}\n", 1)
		}, `model is "gpt", but config.base_model is a multimodal model's (it has a vision_encoder)`},
		{"another config type", func(_, m string) string {
			return strings.Replace(m, "  type: gpt\n", "  type: multimodal\n", 1)
		}, `config.type is "multimodal", but config.base_model is a gpt model's`},
		{"an unknown model", func(_, m string) string {
			return strings.Replace(m, "model: gpt\n", "model: diffusion\n", 1)
		}, `model is "diffusion"; mapper reads gpt and multimodal checkpoints`},
		{"unknown top-level key", func(_, m string) string { return m + "extra: 1\n" }, `unknown key "extra" at the top level`},
		{"not yaml", func(_, m string) string { return "{" }, MetadataFile},
	}
	for _, c := range cases {
		err := openEdited(t, c.edit)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestSideFiles(t *testing.T) {
	out := &format.Output{Config: config(), Tensors: entries()}
	dir, _, _ := write(t, out)
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "model_5.safetensors"), []byte("stale"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	src, err := side(t).Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if !slices.Equal(src.SideFiles, []string{"tokenizer.json"}) || !slices.Equal(src.Skipped, []string{"sub"}) ||
		!slices.Equal(src.Unlisted, []string{"model_5.safetensors"}) || src.IndexFile != MetadataFile {
		t.Errorf("side %v skipped %v unlisted %v in %q", src.SideFiles, src.Skipped, src.Unlisted, src.IndexFile)
	}
}

func TestStateFilesOrder(t *testing.T) {
	got := stateFiles(map[string]string{"a": "model_10.safetensors", "b": "model_2.safetensors", "c": "model_2.safetensors", "d": "model_0.safetensors"})
	if !slices.Equal(got, []string{"model_0.safetensors", "model_2.safetensors", "model_10.safetensors"}) {
		t.Errorf("files %v", got)
	}
}

func TestLayoutRejects(t *testing.T) {
	s := side(t)
	if _, err := s.Layout(&format.Output{Config: config(), Naming: "hf"}); err == nil {
		t.Error("hf naming accepted")
	}
	if err := s.WriteMeta(t.TempDir(), &format.Output{Config: map[string]any{"a": struct{}{}}}, nil); err == nil {
		t.Error("unsupported config value accepted")
	}
	if err := s.WriteMeta(t.TempDir(), &format.Output{Config: map[string]any{"a": uint64(math.MaxUint64)}}, nil); err == nil {
		t.Error("uint64 beyond int64 accepted")
	}
}

// metadata.yaml is read as an input file: links stay inside, regular files
// only, size capped.
func TestInputRules(t *testing.T) {
	out := &format.Output{Config: config(), Tensors: entries(), ShardBytes: 400}
	formattest.CheckInputRules(t, side(t), out, MetadataFile)
}

// TestTrainedCheckpoint opens a checkpoint laid out as Fast-LLM's trainer
// saves it: optimizer shards beside the weights, training state in the
// metadata. Only the weights are read; the rest is named in the notes.
func TestTrainedCheckpoint(t *testing.T) {
	es := entries()
	var all []safetensors.Entry
	var logical []string
	for _, e := range es {
		for _, sh := range []string{"weights", "exp_avgs", "exp_avgs_sq"} {
			all = append(all, safetensors.Entry{Name: e.Name + "/" + sh, DType: tensor.F32, Shape: e.Shape})
			logical = append(logical, e.Name+"/"+sh)
		}
	}
	dir := t.TempDir()
	shard := format.Shard{File: "model_0.safetensors", Entries: all, Logical: logical}
	formattest.WriteShards(t, dir, []format.Shard{shard})
	var index strings.Builder
	for _, e := range all {
		index.WriteString("    " + e.Name + ": model_0.safetensors\n")
	}
	meta := "config:\n  base_model:\n    hidden_size: 8\n  distributed:\n    compute_dtype: bfloat16\n    world_size: 1\n" +
		"  multi_stage:\n    zero_stage: 2\n  type: gpt\nfast_llm_version: 0.3.0\nformat: fast_llm\n" +
		"metadata:\n  completed_steps: 10\n  metrics: {}\n  optimizer:\n    current_step: 10\n  state_index:\n" + index.String() +
		"model: gpt\nshards:\n- weights\n- exp_avgs\n- exp_avgs_sq\n"
	if err := os.WriteFile(filepath.Join(dir, MetadataFile), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := side(t).Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Version != "0.3.0" {
		t.Errorf("version %q, want 0.3.0", src.Version)
	}
	if len(src.Tensors) != len(es) {
		t.Fatalf("%d tensors, want the %d weights", len(src.Tensors), len(es))
	}
	for _, e := range es {
		got, ok := src.Lookup(e.Name)
		if !ok || got.Info.Name != e.Name+"/weights" || got.DType != tensor.F32 {
			t.Errorf("%s: %+v", e.Name, got)
		}
	}
	want := []string{
		filepath.Join(dir, MetadataFile) + ": shards exp_avgs (5 tensors), exp_avgs_sq (5 tensors) are optimizer state: not read, and not carried over (only the weights shard is the model)",
		filepath.Join(dir, MetadataFile) + ": config.distributed, config.multi_stage, metadata.completed_steps, metadata.metrics, metadata.optimizer are Fast-LLM's runtime and training state, not part of the model: not carried over",
	}
	if !slices.Equal(src.Notes, want) {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(src.Notes, "\n"), strings.Join(want, "\n"))
	}
}

// TestTargetVersion: metadata.yaml says the version of the target it is
// written for, and the config type Fast-LLM writes.
func TestTargetVersion(t *testing.T) {
	targets := Side{}.Targets()
	var names []string
	defaults := 0
	for _, tg := range targets {
		names = append(names, tg.Name)
		if tg.Default {
			defaults++
			if tg.Name != Main {
				t.Errorf("default target %s, want %s", tg.Name, Main)
			}
		}
	}
	if defaults != 1 || !slices.Equal(names, []string{Main, PR374}) {
		t.Fatalf("targets %v with %d defaults", names, defaults)
	}
	for _, c := range []struct{ target, want string }{{"", Main}, {Main, Main}, {PR374, PR374}} {
		out := &format.Output{Config: config(), Tensors: entries(), Target: c.target}
		dir, _, src := write(t, out)
		if src.Version != c.want {
			t.Errorf("target %q: fast_llm_version %q, want %q", c.target, src.Version, c.want)
		}
		raw, _ := os.ReadFile(filepath.Join(dir, MetadataFile))
		if !strings.Contains(string(raw), "\n  type: gpt\n") {
			t.Errorf("target %q: no config.type: gpt in\n%s", c.target, raw)
		}
	}
}

// Every model_N.safetensors carries the __metadata__ Fast-LLM's saver
// writes (the top-level keys of metadata.yaml, non-strings as PyYAML dumps;
// "metadata" as after a conversion: empty), and an empty "ok" marks the
// complete save; it is the side's own file, not a side file.
func TestFileMetadataAndMarker(t *testing.T) {
	out := &format.Output{Config: config(), Carried: carried(), Tensors: entries(), ShardBytes: 400}
	dir, shards, src := write(t, out)
	if len(shards) < 2 {
		t.Fatalf("%d shards, want several", len(shards))
	}
	for _, s := range shards {
		f, err := safetensors.Open(filepath.Join(dir, s.File))
		if err != nil {
			t.Fatal(err)
		}
		md := f.Metadata
		f.Close()
		for k, want := range map[string]string{"fast_llm_version": "0.4.0", "model": "gpt", "format": "fast_llm",
			"shards": "- weights\n", "metadata": "{}\n"} {
			if md[k] != want {
				t.Errorf("%s: __metadata__ %s = %q, want %q", s.File, k, md[k], want)
			}
		}
		if len(md) != 6 {
			t.Errorf("%s: __metadata__ keys %v", s.File, md)
		}
		// config reads back as metadata.yaml's config, and is dumped as
		// PyYAML dumps it (a sequence's dashes at its key's indentation).
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(md["config"]), &n); err != nil {
			t.Fatal(err)
		}
		v, err := fromYAML(&n)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, map[string]any{"base_model": config(), "type": "gpt"}) {
			t.Errorf("%s: __metadata__ config reads back as %v", s.File, v)
		}
		if !strings.Contains(md["config"], "\n    pattern:\n    - sliding\n    - full\n") || strings.Contains(md["config"], "mapper") {
			t.Errorf("%s: __metadata__ config:\n%s", s.File, md["config"])
		}
	}
	ok, err := os.ReadFile(filepath.Join(dir, OKFile))
	if err != nil || len(ok) != 0 {
		t.Errorf("ok marker: %q, %v", ok, err)
	}
	if slices.Contains(src.SideFiles, OKFile) {
		t.Error("the ok marker is read as a side file")
	}
	if m, isMarkers := side(t).(format.Markers); !isMarkers || !slices.Equal(m.Markers(), []string{OKFile}) {
		t.Error("the side does not name its ok marker")
	}
}
