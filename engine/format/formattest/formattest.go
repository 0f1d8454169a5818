// Package formattest holds what the tests of every checkpoint side share:
// deterministic tensor contents, writing planned shards with our writer, and
// checking them with an independent safetensors reader.
package formattest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	nlp "github.com/nlpodyssey/safetensors"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// Fill is a tensor's test content: n bytes derived from its name.
func Fill(name string, n int64) []byte {
	b := make([]byte, n)
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	for i := range b {
		h = h*1664525 + 1013904223
		b[i] = byte(h >> 24)
	}
	return b
}

// WriteShards creates every planned shard in dir with the safetensors
// writer, each tensor holding Fill of its logical name.
func WriteShards(t testing.TB, dir string, shards []format.Shard) {
	t.Helper()
	for _, s := range shards {
		l, err := safetensors.NewLayout(s.Entries, s.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		w, err := safetensors.Create(filepath.Join(dir, s.File), l)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range s.Entries {
			n, _ := e.Size()
			if err := w.WriteAt(e.Name, 0, Fill(s.Logical[i], n)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Finish(); err != nil {
			t.Fatal(err)
		}
	}
}

// CheckWithReference reads every shard with nlpodyssey/safetensors, an
// independent implementation, and checks it holds what WriteShards wrote.
func CheckWithReference(t testing.TB, dir string, shards []format.Shard) {
	t.Helper()
	for _, s := range shards {
		raw, err := os.ReadFile(filepath.Join(dir, s.File))
		if err != nil {
			t.Fatal(err)
		}
		st, err := nlp.Deserialize(raw)
		if err != nil {
			t.Fatalf("%s: reference reader: %v", s.File, err)
		}
		if st.Len() != len(s.Entries) {
			t.Errorf("%s: %d tensors, want %d", s.File, st.Len(), len(s.Entries))
		}
		for i, e := range s.Entries {
			tv, ok := st.Tensor(e.Name)
			if !ok {
				t.Fatalf("%s: reference reader misses %s", s.File, e.Name)
			}
			n, _ := e.Size()
			if tv.DType().String() != e.DType.String() || !bytes.Equal(tv.Data(), Fill(s.Logical[i], n)) {
				t.Errorf("%s: %s differs in the reference reader", s.File, e.Name)
			}
		}
	}
}

// write lays out and writes a checkpoint of side s into dir.
func write(t testing.TB, s format.Format, out *format.Output, dir string) []format.Shard {
	t.Helper()
	shards, err := s.Layout(out)
	if err != nil {
		t.Fatal(err)
	}
	WriteShards(t, dir, shards)
	if err := s.WriteMeta(dir, out, shards); err != nil {
		t.Fatal(err)
	}
	return shards
}

// Promptly runs fn and fails the test if it has not returned within a few
// seconds: opening a FIFO for reading waits for a writer, forever.
func Promptly(t testing.TB, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: still blocked after 5 s", what)
	}
}

// CheckInputRules checks that side s reads its document doc (config.json,
// metadata.yaml) as every input file must be read (safetensors.OpenInput):
// in a checkpoint of out, doc replaced by a link to a valid copy outside
// the directory, by a link to /dev/zero, by a FIFO, or by a file over
// safetensors.MaxDocBytes, is refused with an error naming it, promptly;
// and doc as a Hugging Face hub cache snapshot holds it (a link into the
// repository's blobs/) is read.
func CheckInputRules(t *testing.T, s format.Format, out *format.Output, doc string) {
	t.Helper()
	cases := []struct {
		name    string
		replace func(t *testing.T, path string, content []byte)
		want    string
	}{
		{"link outside", func(t *testing.T, path string, content []byte) {
			// A valid document: only the link's target may be refused.
			secret := filepath.Join(t.TempDir(), "creds")
			if err := os.WriteFile(secret, content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(secret, path); err != nil {
				t.Fatal(err)
			}
		}, "outside the directory"},
		{"link to /dev/zero", func(t *testing.T, path string, _ []byte) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}, "outside the directory"},
		{"FIFO", func(t *testing.T, path string, _ []byte) {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}, "not a regular file (a named pipe)"},
		{"over the size limit", func(t *testing.T, path string, content []byte) {
			// The document, then zero bytes up to one byte over the
			// limit (sparse: the test needs no disk for it).
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, safetensors.MaxDocBytes+1); err != nil {
				t.Fatal(err)
			}
		}, "over the 64 MiB limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, s, out, dir)
			path := filepath.Join(dir, doc)
			content, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			c.replace(t, path, content)
			Promptly(t, s.Name()+" Open", func() {
				src, err := s.Open(dir)
				if err == nil {
					src.Close()
					t.Fatalf("%s with %s as a %s: accepted", s.Name(), doc, c.name)
				}
				if !strings.Contains(err.Error(), doc) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %q: want %s named and %q", err, doc, c.want)
				}
			})
		})
	}
	t.Run("hub cache snapshot", func(t *testing.T) {
		repo := filepath.Join(t.TempDir(), "models--org--name")
		blobs, dir := filepath.Join(repo, "blobs"), filepath.Join(repo, "snapshots", "0123abcd")
		for _, d := range []string{blobs, dir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		write(t, s, out, dir)
		if err := os.Rename(filepath.Join(dir, doc), filepath.Join(blobs, "5e1f")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../blobs/5e1f", filepath.Join(dir, doc)); err != nil {
			t.Fatal(err)
		}
		src, err := s.Open(dir)
		if err != nil {
			t.Fatalf("%s linked into the hub cache's blobs: %v", doc, err)
		}
		src.Close()
	})
}

// WriteAndOpen lays out, writes and reopens a checkpoint of side s: the
// round trip every side's tests start from. The source is closed when the
// test ends.
func WriteAndOpen(t testing.TB, s format.Format, out *format.Output) (string, []format.Shard, *format.Source) {
	t.Helper()
	dir := t.TempDir()
	shards := write(t, s, out, dir)
	if !s.Detect(dir) {
		t.Fatal("Detect rejects what WriteMeta wrote")
	}
	src, err := s.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return dir, shards, src
}
