package hf_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/engine/format/formattest"
	_ "github.com/mapper-dev/mapper/engine/format/hf" // registers "hf"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

func entries() []safetensors.Entry {
	return []safetensors.Entry{
		{Name: "model.embed_tokens.weight", DType: tensor.BF16, Shape: tensor.Shape{16, 8}},
		{Name: "model.layers.0.mlp.experts.gate_up_proj_blocks", DType: tensor.U8, Shape: tensor.Shape{2, 8, 1, 16}},
		{Name: "model.layers.0.mlp.experts.gate_up_proj_scales", DType: tensor.U8, Shape: tensor.Shape{2, 8, 1}},
		{Name: "model.layers.0.input_layernorm.weight", DType: tensor.BF16, Shape: tensor.Shape{8}},
		{Name: "model.norm.weight", DType: tensor.F32, Shape: tensor.Shape{8}},
		{Name: "lm_head.weight", DType: tensor.BF16, Shape: tensor.Shape{16, 8}},
	}
}

func config() map[string]any {
	return map[string]any{
		"architectures": []any{"GptOssForCausalLM"}, "hidden_size": int64(8), "rms_norm_eps": 1e-05,
		"rope_scaling": map[string]any{"factor": 32.0, "beta_slow": 1.0}, "rope_theta": int64(150000),
		"name": "caf\u00e9", "sliding_window": nil,
	}
}

const wantConfig = `{
  "architectures": [
    "GptOssForCausalLM"
  ],
  "hidden_size": 8,
  "name": "caf\u00e9",
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "beta_slow": 1.0,
    "factor": 32.0
  },
  "rope_theta": 150000,
  "sliding_window": null
}
`

func side(t *testing.T) format.Format {
	f, err := format.Lookup("hf")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func write(t *testing.T, out *format.Output) (string, []format.Shard, *format.Source) {
	t.Helper()
	return formattest.WriteAndOpen(t, side(t), out)
}

func checkSource(t *testing.T, src *format.Source, es []safetensors.Entry) {
	t.Helper()
	if !reflect.DeepEqual(src.Config, config()) {
		t.Errorf("config = %#v", src.Config)
	}
	if src.Carried != nil || src.Format != "hf" {
		t.Errorf("carried %v, format %q", src.Carried, src.Format)
	}
	if len(src.Tensors) != len(es) {
		t.Fatalf("%d tensors, want %d", len(src.Tensors), len(es))
	}
	for _, e := range es {
		got, ok := src.Lookup(e.Name)
		if !ok {
			t.Fatalf("tensor %s missing", e.Name)
		}
		if got.DType != e.DType || !slices.Equal(got.Shape, e.Shape) || got.Info.Name != e.Name {
			t.Errorf("%s: %v %v %q", e.Name, got.DType, got.Shape, got.Info.Name)
		}
		data, err := got.File.Data(e.Name)
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

func TestSingleFile(t *testing.T) {
	es := entries()
	out := &format.Output{Config: config(), Tensors: es}
	dir, shards, src := write(t, out)
	if len(shards) != 1 || shards[0].File != "model.safetensors" {
		t.Fatalf("shards %+v", shards)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if string(got) != wantConfig {
		t.Errorf("config.json:\n%s\nwant:\n%s", got, wantConfig)
	}
	if _, err := os.Stat(filepath.Join(dir, safetensors.IndexFile)); err == nil {
		t.Error("an index for a single file")
	}
	checkSource(t, src, es)
	formattest.CheckWithReference(t, dir, shards)
}

func TestSharded(t *testing.T) {
	es := entries()
	// 256 + 256 + 16 + 16 + 32 + 256 bytes; greedy with a 300-byte limit:
	// [embed] [blocks scales ln] [norm lm_head].
	out := &format.Output{Config: config(), Tensors: es, ShardBytes: 300}
	dir, shards, src := write(t, out)
	var files []string
	for _, s := range shards {
		files = append(files, s.File)
	}
	want := []string{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
		"model-00003-of-00003.safetensors"}
	if !slices.Equal(files, want) {
		t.Fatalf("files %v", files)
	}
	ix, err := safetensors.ReadIndex(filepath.Join(dir, safetensors.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if ix.TotalSize != 256+256+16+16+32+256 || len(ix.WeightMap) != len(es) ||
		ix.WeightMap["model.norm.weight"] != want[2] {
		t.Errorf("index %+v", ix)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, safetensors.IndexFile))
	if !strings.HasPrefix(string(raw), "{\n  \"metadata\": {\n    \"total_size\": 832\n  },\n  \"weight_map\": {\n    \"lm_head.weight\": \"model-00003-of-00003.safetensors\",\n") ||
		!strings.HasSuffix(string(raw), "}\n") {
		t.Errorf("index:\n%s", raw)
	}
	checkSource(t, src, es)
	formattest.CheckWithReference(t, dir, shards)
}

func TestZeroBasedNaming(t *testing.T) {
	es := entries()
	out := &format.Output{Config: config(), Tensors: es, ShardBytes: 300, Naming: "hf-zero-based"}
	dir, shards, src := write(t, out)
	if len(shards) != 3 || shards[0].File != "model-00000-of-00002.safetensors" || shards[2].File != "model-00002-of-00002.safetensors" {
		t.Fatalf("shards %+v", shards)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, safetensors.IndexFile))
	want := `{"metadata": {"total_size": 832}, "weight_map": {"model.embed_tokens.weight": "model-00000-of-00002.safetensors", ` +
		`"model.layers.0.mlp.experts.gate_up_proj_blocks": "model-00001-of-00002.safetensors", ` +
		`"model.layers.0.mlp.experts.gate_up_proj_scales": "model-00001-of-00002.safetensors", ` +
		`"model.layers.0.input_layernorm.weight": "model-00001-of-00002.safetensors", ` +
		`"model.norm.weight": "model-00002-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors"}}`
	if string(raw) != want {
		t.Errorf("index:\n%s\nwant\n%s", raw, want)
	}
	checkSource(t, src, es)
	formattest.CheckWithReference(t, dir, shards)
}

func TestDefaultShardSize(t *testing.T) {
	// 3 tensors of 2 GB each (never written): save_pretrained's 5 GB limit
	// puts two in the first file.
	es := []safetensors.Entry{
		{Name: "a", DType: tensor.BF16, Shape: tensor.Shape{1 << 30}},
		{Name: "b", DType: tensor.BF16, Shape: tensor.Shape{1 << 30}},
		{Name: "c", DType: tensor.BF16, Shape: tensor.Shape{1 << 30}},
	}
	shards, err := side(t).Layout(&format.Output{Config: config(), Tensors: es})
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 2 || len(shards[0].Entries) != 2 || shards[1].Bytes != 1<<31 ||
		!slices.Equal(shards[0].Logical, []string{"a", "b"}) {
		t.Fatalf("shards %+v", shards)
	}
}

func TestSideFiles(t *testing.T) {
	es := entries()[:1]
	out := &format.Output{Config: config(), Tensors: es}
	dir, shards, _ := write(t, out)
	for _, f := range []string{"tokenizer.json", "generation_config.json", "README.md"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	os.Mkdir(filepath.Join(dir, "original"), 0o755)
	os.Symlink("tokenizer.json", filepath.Join(dir, "link.json")) // inside: carried
	outside := filepath.Join(t.TempDir(), "secret.json")          // outside: skipped
	os.WriteFile(outside, []byte("x"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "escape.json"))
	src, err := side(t).Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if !slices.Equal(src.SideFiles, []string{"README.md", "generation_config.json", "link.json", "tokenizer.json"}) {
		t.Errorf("side files %v", src.SideFiles)
	}
	if !slices.Equal(src.Skipped, []string{"escape.json", "original"}) {
		t.Errorf("skipped %v", src.Skipped)
	}
	formattest.CheckWithReference(t, dir, shards)
}

// TestOpenConfig: OpenConfig reads a checkpoint whose weight files were not
// downloaded (config.json and side files only) without tensors, where Open
// refuses it; with weight files it reads what Open reads.
func TestOpenConfig(t *testing.T) {
	co, ok := side(t).(format.ConfigOpener)
	if !ok {
		t.Fatal("the hf side does not implement format.ConfigOpener")
	}
	dir := t.TempDir()
	// Not in save_pretrained form: the text is recorded.
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"hidden_size": 8}`), 0o644)
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte("x"), 0o644)
	if _, err := side(t).Open(dir); err == nil || !strings.Contains(err.Error(), "no *.safetensors files") {
		t.Errorf("Open without weight files = %v", err)
	}
	src, err := co.OpenConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if src.Checkpoint != nil || len(src.Tensors) != 0 || src.IndexFile != "" || src.Config["hidden_size"] != int64(8) ||
		!slices.Equal(src.SideFiles, []string{"tokenizer.json"}) || src.Texts["config.json"] != `{"hidden_size": 8}` {
		t.Errorf("OpenConfig without weight files: %+v", src)
	}
	if err := src.Close(); err != nil {
		t.Error(err)
	}
	// An index that is there is read, and must hold.
	os.WriteFile(filepath.Join(dir, safetensors.IndexFile), []byte(`{"weight_map": {"w": "model-00001-of-00001.safetensors"}}`), 0o644)
	if _, err := co.OpenConfig(dir); err == nil {
		t.Error("OpenConfig with an index naming a missing file succeeded")
	}

	es := entries()
	full, _, _ := write(t, &format.Output{Config: config(), Tensors: es, ShardBytes: 300})
	src, err = co.OpenConfig(full)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	checkSource(t, src, es)
	if src.IndexFile != safetensors.IndexFile || len(src.Checkpoint.Files) != 3 {
		t.Errorf("index %q, %d files", src.IndexFile, len(src.Checkpoint.Files))
	}
}

func TestRejects(t *testing.T) {
	s := side(t)
	carried := &format.Output{Config: config(), Tensors: entries(), Carried: &format.Carried{Mapping: "m"}}
	if _, err := s.Layout(carried); err == nil || !strings.Contains(err.Error(), "cannot carry mapper metadata") {
		t.Errorf("Layout with Carried: %v", err)
	}
	if err := s.WriteMeta(t.TempDir(), carried, nil); err == nil || !strings.Contains(err.Error(), "cannot carry mapper metadata") {
		t.Errorf("WriteMeta with Carried: %v", err)
	}
	if _, err := s.Layout(&format.Output{Config: config(), Naming: "fast-llm"}); err == nil {
		t.Error("fast-llm naming accepted")
	}
	if _, err := s.Layout(&format.Output{Config: config(), Naming: "bogus"}); err == nil {
		t.Error("unknown naming accepted")
	}
	if err := s.WriteMeta(t.TempDir(), &format.Output{Config: map[string]any{"x": math.NaN(), "s": "\xff"}}, nil); err == nil {
		t.Error("invalid UTF-8 in the config accepted")
	}

	for _, c := range []struct{ config, want string }{
		{`[1]`, "the config is a list, want a JSON object"},
		{`{"a": 1, "a": 2}`, `duplicate key "a"`},
		{`{"a": 1} {}`, "unexpected data"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(c.config), 0o644)
		_, err := s.Open(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
			t.Errorf("config %s: %v", c.config, err)
		}
	}
	// A config but no tensors.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{}`), 0o644)
	if _, err := s.Open(dir); err == nil {
		t.Error("a checkpoint without tensors opened")
	}
	if s.Detect(t.TempDir()) {
		t.Error("Detect accepts an empty directory")
	}
}

// config.json and the index are read as input files: links stay inside,
// regular files only, size capped.
func TestInputRules(t *testing.T) {
	out := &format.Output{Config: config(), Tensors: entries()}
	formattest.CheckInputRules(t, side(t), out, "config.json")
	sharded := &format.Output{Config: config(), Tensors: entries(), ShardBytes: 300}
	formattest.CheckInputRules(t, side(t), sharded, safetensors.IndexFile)
}

// A *.safetensors file the index does not list is neither read nor an
// error: the source names it, for the plan to report.
func TestUnlisted(t *testing.T) {
	out := &format.Output{Config: config(), Tensors: entries(), ShardBytes: 300}
	dir, shards, _ := write(t, out)
	if len(shards) < 2 {
		t.Fatalf("%d shards: want an index", len(shards))
	}
	// Mistral publishes its own single file beside the index.
	formattest.WriteShards(t, dir, []format.Shard{{File: "consolidated.safetensors", Entries: shards[0].Entries, Logical: shards[0].Logical}})
	src, err := side(t).Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if !slices.Equal(src.Unlisted, []string{"consolidated.safetensors"}) || src.IndexFile != safetensors.IndexFile {
		t.Errorf("unlisted %v in %q", src.Unlisted, src.IndexFile)
	}
	if slices.Contains(src.SideFiles, "consolidated.safetensors") {
		t.Error("an unlisted weight file is copied as a side file")
	}
}
