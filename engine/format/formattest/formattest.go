// Package formattest holds what the tests of every checkpoint side share:
// deterministic tensor contents, writing planned shards with our writer, and
// checking them with an independent safetensors reader.
package formattest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

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
		l, err := safetensors.NewLayout(s.Entries, nil)
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

// WriteAndOpen lays out, writes and reopens a checkpoint of side s: the
// round trip every side's tests start from. The source is closed when the
// test ends.
func WriteAndOpen(t testing.TB, s format.Format, out *format.Output) (string, []format.Shard, *format.Source) {
	t.Helper()
	dir := t.TempDir()
	shards, err := s.Layout(out)
	if err != nil {
		t.Fatal(err)
	}
	WriteShards(t, dir, shards)
	if err := s.WriteMeta(dir, out, shards); err != nil {
		t.Fatal(err)
	}
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
