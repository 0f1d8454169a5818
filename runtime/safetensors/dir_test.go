package safetensors

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// smallFile writes a file holding one-byte U8 tensors with the given names.
func smallFile(t *testing.T, dir, file string, names ...string) {
	t.Helper()
	ts := make(map[string]tensor.Tensor)
	for i, n := range names {
		ts[n] = tensor.Tensor{DType: tensor.U8, Shape: tensor.Shape{1}, Data: []byte{byte(i)}}
	}
	writeTensors(t, filepath.Join(dir, file), ts, nil)
}

func writeIndex(t *testing.T, dir, content string) {
	t.Helper()
	writeFile(t, dir, IndexFile, []byte(content))
}

func TestOpenDir(t *testing.T) {
	dir := t.TempDir()
	smallFile(t, dir, "b.safetensors", "x", "a")
	smallFile(t, dir, "a.safetensors", "m")
	writeFile(t, dir, "config.json", []byte("{}"))

	// Without an index: every *.safetensors, sorted.
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Names(); !slices.Equal(got, []string{"a", "m", "x"}) {
		t.Errorf("names %v", got)
	}
	if c.Index != nil || len(c.Files) != 2 || filepath.Base(c.Files[0].Path) != "a.safetensors" {
		t.Errorf("files %v, index %v", c.Files, c.Index)
	}
	f, ti, ok := c.Lookup("x")
	if !ok || filepath.Base(f.Path) != "b.safetensors" || ti.Name != "x" {
		t.Errorf("Lookup(x) = %v, %+v, %v", f, ti, ok)
	}
	if _, _, ok := c.Lookup("nope"); ok {
		t.Error("Lookup found a missing tensor")
	}
	c.Close()

	// With an index (and extra metadata keys).
	writeIndex(t, dir, `{"metadata": {"total_size": 3, "extra": "yes"},
		"weight_map": {"a": "b.safetensors", "x": "b.safetensors", "m": "a.safetensors"}}`)
	c, err = OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Index == nil || c.Index.TotalSize != 3 || !slices.Equal(c.Names(), []string{"a", "m", "x"}) {
		t.Errorf("indexed checkpoint: %+v, names %v", c.Index, c.Names())
	}
}

func TestOpenDirRejects(t *testing.T) {
	outside := t.TempDir()
	smallFile(t, outside, "evil.safetensors", "w")

	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string // substrings of the error
	}{
		{"empty dir", func(t *testing.T, dir string) {}, []string{"no model.safetensors.index.json and no *.safetensors"}},
		{"tensor in two shards, no index", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w", "v")
			smallFile(t, dir, "b.safetensors", "w")
		}, []string{`tensor "w"`, "two shards", "a.safetensors", "b.safetensors"}},
		{"tensor in two shards, indexed", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w")
			smallFile(t, dir, "b.safetensors", "w", "v")
			writeIndex(t, dir, `{"weight_map": {"w": "a.safetensors", "v": "b.safetensors"}}`)
		}, []string{`tensor "w"`, "two shards", "b.safetensors"}},
		{"index file missing", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w")
			writeIndex(t, dir, `{"weight_map": {"w": "a.safetensors", "v": "gone.safetensors"}}`)
		}, []string{`missing file "gone.safetensors"`, IndexFile}},
		{"file lacks indexed tensor", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w")
			writeIndex(t, dir, `{"weight_map": {"w": "a.safetensors", "v": "a.safetensors"}}`)
		}, []string{`tensor "v"`, "not in the file", "a.safetensors"}},
		{"file tensor absent from index", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w", "extra")
			writeIndex(t, dir, `{"weight_map": {"w": "a.safetensors"}}`)
		}, []string{`tensor "extra"`, "absent from", "a.safetensors"}},
		{"duplicate in weight_map", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w")
			writeIndex(t, dir, `{"weight_map": {"w": "a.safetensors", "w": "a.safetensors"}}`)
		}, []string{`tensor "w"`, "listed twice", IndexFile}},
		{"invalid shard", func(t *testing.T, dir string) {
			writeFile(t, dir, "a.safetensors", []byte{1, 2})
		}, []string{"a.safetensors", "shorter than the 8-byte header length"}},
		{"parent reference", func(t *testing.T, dir string) {
			writeIndex(t, dir, `{"weight_map": {"w": "../x.safetensors"}}`)
		}, []string{`unsafe file name "../x.safetensors"`, `contains ".."`}},
		{"dot dot", func(t *testing.T, dir string) {
			writeIndex(t, dir, `{"weight_map": {"w": ".."}}`)
		}, []string{`unsafe file name ".."`}},
		{"absolute", func(t *testing.T, dir string) {
			writeIndex(t, dir, `{"weight_map": {"w": "/etc/passwd"}}`)
		}, []string{`unsafe file name "/etc/passwd"`, "absolute"}},
		{"separator", func(t *testing.T, dir string) {
			writeIndex(t, dir, `{"weight_map": {"w": "a/b"}}`)
		}, []string{`unsafe file name "a/b"`, "separator"}},
		{"backslash", func(t *testing.T, dir string) {
			writeIndex(t, dir, `{"weight_map": {"w": "a\\b"}}`)
		}, []string{`unsafe file name "a\\b"`, "separator"}},
		{"empty name", func(t *testing.T, dir string) {
			writeIndex(t, dir, `{"weight_map": {"w": ""}}`)
		}, []string{`unsafe file name ""`}},
		{"symlink escaping", func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(outside, "evil.safetensors"), filepath.Join(dir, "a.safetensors")); err != nil {
				t.Fatal(err)
			}
			writeIndex(t, dir, `{"weight_map": {"w": "a.safetensors"}}`)
		}, []string{`unsafe file name "a.safetensors"`, "outside the directory"}},
		{"relative symlink escaping, no index", func(t *testing.T, dir string) {
			rel, _ := filepath.Rel(dir, filepath.Join(outside, "evil.safetensors"))
			if err := os.Symlink(rel, filepath.Join(dir, "a.safetensors")); err != nil {
				t.Fatal(err)
			}
		}, []string{"a.safetensors", "outside the directory"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			c, err := OpenDir(dir)
			if err == nil {
				c.Close()
				t.Fatal("OpenDir accepted the directory")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestOpenDirSymlinkInside(t *testing.T) {
	dir := t.TempDir()
	smallFile(t, dir, "real.safetensors", "w")
	if err := os.Symlink("real.safetensors", filepath.Join(dir, "link.safetensors")); err != nil {
		t.Fatal(err)
	}
	writeIndex(t, dir, `{"weight_map": {"w": "link.safetensors"}}`)
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatalf("a symlink within the directory is fine: %v", err)
	}
	c.Close()
}

func TestOpenFiles(t *testing.T) {
	dir := t.TempDir()
	smallFile(t, dir, "model_0.safetensors", "a", "b")
	smallFile(t, dir, "model_1.safetensors", "c")
	smallFile(t, dir, "stray.safetensors", "a") // not listed, so no conflict
	c, err := OpenFiles(dir, []string{"model_1.safetensors", "model_0.safetensors"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Names(), []string{"a", "b", "c"}) || filepath.Base(c.Files[0].Path) != "model_1.safetensors" {
		t.Errorf("names %v, first file %s", c.Names(), c.Files[0].Path)
	}
	c.Close()
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"../model_0.safetensors"}, `contains ".."`},
		{[]string{"/etc/passwd"}, "absolute"},
		{[]string{"sub/model_0.safetensors"}, "separator"},
		{[]string{"model_0.safetensors", "model_0.safetensors"}, "listed twice"},
		{[]string{"model_0.safetensors", "stray.safetensors"}, "two shards"},
		{[]string{"model_2.safetensors"}, "missing file"},
	} {
		c, err := OpenFiles(dir, tc.names)
		if err == nil {
			c.Close()
			t.Errorf("OpenFiles(%v) succeeded", tc.names)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenFiles(%v) = %v, want %q", tc.names, err, tc.want)
		}
	}
	_, err = OpenFiles(dir, []string{"model_2.safetensors"})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error %v does not wrap ErrNotExist", err)
	}
}

// A Hugging Face hub cache snapshot links every file into the repository's
// blob store, outside the snapshot directory: that layout opens, and a link
// anywhere else is still refused.
func TestOpenDirHubCacheSnapshot(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "models--org--name")
	blobs := filepath.Join(repo, "blobs")
	snap := filepath.Join(repo, "snapshots", "0123abcd")
	for _, d := range []string{blobs, snap} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	smallFile(t, blobs, "9f8e7d", "w")
	if err := os.Symlink("../../blobs/9f8e7d", filepath.Join(snap, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	c, err := OpenDir(snap)
	if err != nil {
		t.Fatalf("hub cache snapshot: %v", err)
	}
	c.Close()

	elsewhere := filepath.Join(repo, "other")
	if err := os.MkdirAll(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	smallFile(t, elsewhere, "x", "w")
	if err := os.Remove(filepath.Join(snap, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../other/x", filepath.Join(snap, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(snap); err == nil || !strings.Contains(err.Error(), "outside the directory") {
		t.Fatalf("a link out of the snapshot but not into blobs/: %v", err)
	}
}

// TestOpenDirEscapesNames: file and tensor names from a hostile checkpoint
// reach error messages escaped, so that an ESC or a newline in them cannot
// act on the terminal or forge a line.
func TestOpenDirEscapesNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string // the escaped name, as the message shows it
	}{
		{"missing file named with ESC", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w")
			writeIndex(t, dir, `{"weight_map": {"w": "a.safetensors", "v": "x\u001b[2J\n.safetensors"}}`)
		}, `"x\x1b[2J\n.safetensors"`},
		{"file named with ESC holds a tensor twice", func(t *testing.T, dir string) {
			smallFile(t, dir, "a\x1b[31m.safetensors", "w")
			smallFile(t, dir, "b.safetensors", "w")
		}, `a\x1b[31m.safetensors"`},
		{"indexed file named with a newline lacks a tensor", func(t *testing.T, dir string) {
			smallFile(t, dir, "a\n.safetensors", "w")
			writeIndex(t, dir, `{"weight_map": {"w": "a\n.safetensors", "v": "a\n.safetensors"}}`)
		}, `a\n.safetensors"`},
		{"tensor named with ESC absent from the index", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w", "\x1b]0;pwned\a")
			writeIndex(t, dir, `{"weight_map": {"w": "a.safetensors"}}`)
		}, `tensor "\x1b]0;pwned\a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			c, err := OpenDir(dir)
			if err == nil {
				c.Close()
				t.Fatal("OpenDir accepted the directory")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not show %s", msg, tc.want)
			}
			if i := strings.IndexFunc(msg, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
				t.Errorf("error holds control character %q: %q", msg[i], msg)
			}
		})
	}
}
