package hf_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/engine/format/formattest"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// fileMetadata opens every shard of dir and returns its __metadata__.
func fileMetadata(t *testing.T, dir string, shards []format.Shard) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, s := range shards {
		f, err := safetensors.Open(filepath.Join(dir, s.File))
		if err != nil {
			t.Fatal(err)
		}
		out[s.File] = f.Metadata
		f.Close()
	}
	return out
}

func hasNote(notes []string, parts ...string) bool {
	for _, n := range notes {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(n, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// Without a record every file gets transformers' {"format": "pt"}, and a
// note says so.
func TestFileMetadataDefault(t *testing.T) {
	out := &format.Output{Config: config(), Tensors: entries(), ShardBytes: 300}
	dir, shards, _ := write(t, out)
	pt := map[string]string{"format": "pt"}
	for f, md := range fileMetadata(t, dir, shards) {
		if !reflect.DeepEqual(md, pt) {
			t.Errorf("%s: __metadata__ %v, want %v", f, md, pt)
		}
	}
	if !hasNote(out.Notes, `__metadata__ {"format": "pt"} in every file`, "records none") {
		t.Errorf("notes %q", out.Notes)
	}
}

// With a record, every file gets its own __metadata__ back (none stays
// none), silently; files the record does not name get what every recorded
// file had, or {"format": "pt"} when they differ, with a note.
func TestFileMetadataRestored(t *testing.T) {
	es := entries()
	files := map[string]string{}
	for i, e := range es {
		files[e.Name] = []string{"a.safetensors", "b.safetensors"}[i%2]
	}
	rec := map[string]map[string]string{"a.safetensors": {"format": "pt", "note": "x: 1"}, "b.safetensors": nil}
	out := &format.Output{Config: config(), Tensors: es, Files: files, Original: &format.Original{FileMetadata: rec}}
	dir, shards, _ := write(t, out)
	if got := fileMetadata(t, dir, shards); !reflect.DeepEqual(got, rec) {
		t.Errorf("__metadata__ %v, want %v", got, rec)
	}
	if len(out.Notes) != 0 {
		t.Errorf("notes %q", out.Notes)
	}

	// Another sharding: the recorded files disagree, so the default.
	out = &format.Output{Config: config(), Tensors: es, Original: &format.Original{FileMetadata: rec}}
	dir, shards, _ = write(t, out)
	if got := fileMetadata(t, dir, shards)["model.safetensors"]; !reflect.DeepEqual(got, map[string]string{"format": "pt"}) {
		t.Errorf("__metadata__ %v", got)
	}
	if !hasNote(out.Notes, "model.safetensors: not among the input's files", `differ; given {"format": "pt"}`) {
		t.Errorf("notes %q", out.Notes)
	}

	// The recorded files agree (none at all): the new file gets none too.
	rec = map[string]map[string]string{"a.safetensors": nil, "b.safetensors": nil}
	out = &format.Output{Config: config(), Tensors: es, Original: &format.Original{FileMetadata: rec}}
	dir, shards, _ = write(t, out)
	if got := fileMetadata(t, dir, shards)["model.safetensors"]; got != nil {
		t.Errorf("__metadata__ %v, want none", got)
	}
	if !hasNote(out.Notes, "model.safetensors: not among the input's files", "every one of those had (none)") {
		t.Errorf("notes %q", out.Notes)
	}
}

// oddConfig is config() as some published configs are written: keys not
// sorted, 4-space indentation, "1e-5" for 1e-05, an integer-valued float
// spelled as an integer would not be (32.0 as 3.2e1), no trailing newline.
const oddConfig = `{
    "rope_scaling": {"factor": 3.2e1, "beta_slow": 1.0},
    "architectures": ["GptOssForCausalLM"],
    "hidden_size": 8,
    "rms_norm_eps": 1e-5,
    "rope_theta": 150000,
    "name": "café",
    "sliding_window": null
}`

// Open records the text of a config.json or an index that is not in the
// form this side writes, and nothing for one that is.
func TestTextsRecorded(t *testing.T) {
	out := &format.Output{Config: config(), Tensors: entries(), ShardBytes: 300}
	dir, _, src := write(t, out)
	if src.Texts != nil {
		t.Errorf("texts of a checkpoint in save_pretrained form: %q", src.Texts)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(oddConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	ixPath := filepath.Join(dir, safetensors.IndexFile)
	ix, _ := os.ReadFile(ixPath)
	extra := strings.Replace(string(ix), `"total_size": 832`, `"total_parameters": 416, "total_size": 832`, 1)
	if err := os.WriteFile(ixPath, []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	src2, err := side(t).Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	want := map[string]string{"config.json": oddConfig, safetensors.IndexFile: extra}
	if !reflect.DeepEqual(src2.Texts, want) {
		t.Errorf("texts %q, want %q", src2.Texts, want)
	}
	if !reflect.DeepEqual(src2.Config, config()) {
		t.Errorf("config %v", src2.Config)
	}
}

// The recorded config.json text is written back when the config has the
// same keys and values (numbers compare by value); otherwise the config is
// written in save_pretrained's form with the original's key order, a new
// key where it sorts. Plan and ShowConfig print what WriteMeta writes.
func TestConfigRestored(t *testing.T) {
	same := config()
	same["rope_theta"] = 150000.0 // written 150000 in the original: the same number
	out := &format.Output{Config: same, Tensors: entries(), Original: &format.Original{Texts: map[string]string{"config.json": oddConfig}}}
	dir, _, _ := write(t, out)
	got, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if string(got) != oddConfig {
		t.Errorf("config.json:\n%s\nwant the original text", got)
	}
	if !hasNote(out.Notes, "config.json: written as the original text recorded at import") {
		t.Errorf("notes %q", out.Notes)
	}
	if _, shown, err := side(t).ShowConfig(out); err != nil || string(shown) != oddConfig {
		t.Errorf("ShowConfig: %s, %v", shown, err)
	}

	changed := config()
	changed["hidden_size"] = int64(16)
	changed["head_dim"] = int64(4)
	delete(changed, "sliding_window")
	changed["rope_scaling"].(map[string]any)["type"] = "yarn"
	out = &format.Output{Config: changed, Tensors: entries(), Original: &format.Original{Texts: map[string]string{"config.json": oddConfig}}}
	dir, _, _ = write(t, out)
	got, _ = os.ReadFile(filepath.Join(dir, "config.json"))
	want := `{
  "rope_scaling": {
    "factor": 32.0,
    "type": "yarn",
    "beta_slow": 1.0
  },
  "architectures": [
    "GptOssForCausalLM"
  ],
  "head_dim": 4,
  "hidden_size": 16,
  "rms_norm_eps": 1e-05,
  "rope_theta": 150000,
  "name": "caf\u00e9"
}
`
	if string(got) != want {
		t.Errorf("config.json:\n%s\nwant:\n%s", got, want)
	}
	if !hasNote(out.Notes, "config.json: differs from the original recorded at import (head_dim (added), hidden_size, rope_scaling.type (added), sliding_window (removed))",
		"save_pretrained form, keys in the original's order") {
		t.Errorf("notes %q", out.Notes)
	}
	if _, shown, err := side(t).ShowConfig(out); err != nil || string(shown) != want {
		t.Errorf("ShowConfig: %s, %v", shown, err)
	}
}

// The recorded index text is written back when the output has the same
// files, tensors and total_size; otherwise this side's own index, with a
// note naming the metadata keys that are lost.
func TestIndexRestored(t *testing.T) {
	es := entries()
	out := &format.Output{Config: config(), Tensors: es, ShardBytes: 300}
	dir, shards, _ := write(t, out)
	files := map[string]string{}
	for _, s := range shards {
		for _, n := range s.Logical {
			files[n] = s.File
		}
	}
	ix, _ := os.ReadFile(filepath.Join(dir, safetensors.IndexFile))
	text := `{"metadata": {"total_parameters": 416, "total_size": 832}, "weight_map": ` +
		strings.TrimSuffix(strings.SplitN(string(ix), `"weight_map": `, 2)[1], "\n}\n") + "}"

	out = &format.Output{Config: config(), Tensors: es, Files: files, Original: &format.Original{Texts: map[string]string{safetensors.IndexFile: text}}}
	dir, _, _ = write(t, out)
	if got, _ := os.ReadFile(filepath.Join(dir, safetensors.IndexFile)); string(got) != text {
		t.Errorf("index:\n%s\nwant the original text:\n%s", got, text)
	}
	if !hasNote(out.Notes, "model.safetensors.index.json: written as the original text recorded at import") {
		t.Errorf("notes %q", out.Notes)
	}

	// Another sharding: mapper's own index, and the lost key named.
	out = &format.Output{Config: config(), Tensors: es, ShardBytes: 600, Original: &format.Original{Texts: map[string]string{safetensors.IndexFile: text}}}
	dir, _, _ = write(t, out)
	if got, _ := os.ReadFile(filepath.Join(dir, safetensors.IndexFile)); strings.Contains(string(got), "total_parameters") {
		t.Errorf("index:\n%s", got)
	}
	if !hasNote(out.Notes, "files or tensors differ from the original's", "its metadata keys total_parameters are not written") {
		t.Errorf("notes %q", out.Notes)
	}

	// One file: no index, and the note says why.
	out = &format.Output{Config: config(), Tensors: es, Original: &format.Original{Texts: map[string]string{safetensors.IndexFile: text}}}
	dir, _, _ = write(t, out)
	if _, err := os.Stat(filepath.Join(dir, safetensors.IndexFile)); err == nil {
		t.Error("an index beside model.safetensors")
	}
	if !hasNote(out.Notes, "model.safetensors.index.json: not written, as the output is the single file model.safetensors") {
		t.Errorf("notes %q", out.Notes)
	}
}

// One file not named model.safetensors (an input of one shard and its
// index) needs an index, or readers would not find it.
func TestSingleShardIndex(t *testing.T) {
	es := entries()
	files := map[string]string{}
	for _, e := range es {
		files[e.Name] = "model-00001-of-00001.safetensors"
	}
	out := &format.Output{Config: config(), Tensors: es, Files: files}
	dir, shards, src := write(t, out)
	if len(shards) != 1 || src.IndexFile != safetensors.IndexFile {
		t.Fatalf("shards %+v, index %q", shards, src.IndexFile)
	}
	checkSource(t, src, es)
	formattest.CheckWithReference(t, dir, shards)
}
