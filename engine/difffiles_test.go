package engine

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/mappings/synth"
)

func fileDiff(t *testing.T, a, b, name string) FileDiff {
	t.Helper()
	rep, err := Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Same() {
		t.Fatalf("tensors differ: %+v", rep.Tensors)
	}
	for _, d := range rep.Files {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("%s not compared: %+v", name, rep.Files)
	return FileDiff{}
}

// Diff compares the files of two checkpoints of one side, so that what cmp
// sees and the tensors do not is reported: a header written otherwise (here
// padded further), a file's __metadata__, a document's bytes.
func TestDiffFiles(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b} {
		if err := synth.Generate(d, synth.TinyLlama(), 1, synth.Options{Workers: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if d := fileDiff(t, a, b, "model.safetensors"); d.Kind != FileIdentical {
		t.Fatalf("identical checkpoints: %+v", d)
	}

	// Eight more spaces of header padding: the same tensors, another file.
	path := filepath.Join(b, "model.safetensors")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	padded := binary.LittleEndian.AppendUint64(nil, n+8)
	padded = append(padded, raw[8:8+n]...)
	padded = append(padded, "        "...)
	padded = append(padded, raw[8+n:]...)
	if err := os.WriteFile(path, padded, 0o644); err != nil {
		t.Fatal(err)
	}
	if d := fileDiff(t, a, b, "model.safetensors"); d.Kind != FileDiffers || d.Detail != "header differs (tensors, their order or offsets)" {
		t.Errorf("a padded header: %+v", d)
	}

	// A side file with other bytes and other content.
	if err := os.WriteFile(filepath.Join(b, "generation_config.json"), []byte(`{"a": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if d := fileDiff(t, a, b, "generation_config.json"); d.Kind != FileDiffers || !strings.HasPrefix(d.Detail, "bytes differ (") || strings.Contains(d.Detail, "same JSON") {
		t.Errorf("a changed side file: %+v", d)
	}
}

// An HF input's side file named like the Fast-LLM side's own marker (ok,
// which Fast-LLM's convert also writes into HF exports) is not copied over
// the marker: the plan says so, and the output has the empty marker.
func TestMarkerSideFile(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	root := t.TempDir()
	hfDir, out := filepath.Join(root, "hf"), filepath.Join(root, "out")
	writeSmallHF(t, hfDir, smallConfig())
	if err := os.WriteFile(filepath.Join(hfDir, "ok"), []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := convert(t, m, hfDir, out, PlanOptions{Workers: 1})
	if !slices.Contains(p.Notes, "ok of the input is not copied: the fast_llm output writes its own") || slices.Contains(p.SideFiles, "ok") {
		t.Errorf("notes %q, side files %q", p.Notes, p.SideFiles)
	}
	if b, err := os.ReadFile(filepath.Join(out, "ok")); err != nil || len(b) != 0 {
		t.Errorf("ok marker %q, %v", b, err)
	}
}
