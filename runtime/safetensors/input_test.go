package safetensors

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// promptly runs fn and fails the test if it has not returned within a few
// seconds: a FIFO opened for reading blocks until a writer comes, forever.
func promptly(t *testing.T, what string, fn func()) {
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

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

func wantErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestOpenInput(t *testing.T) {
	outside := t.TempDir()
	secret := writeFile(t, outside, "creds.json", []byte(`{"token": "secret"}`))
	dir := t.TempDir()
	writeFile(t, dir, "config.json", []byte(`{"a": 1}`))
	if err := os.Symlink("config.json", filepath.Join(dir, "inside.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "secret.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, "dangling.json")); err != nil {
		t.Fatal(err)
	}
	mkfifo(t, filepath.Join(dir, "fifo.json"))
	if err := os.Symlink("fifo.json", filepath.Join(dir, "tofifo.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"config.json", "inside.json"} {
		data, err := ReadInput(dir, name, MaxDocBytes)
		if err != nil || string(data) != `{"a": 1}` {
			t.Errorf("ReadInput(%s) = %q, %v", name, data, err)
		}
	}
	f, err := OpenInput(dir, "inside.json")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != filepath.Join(dir, "inside.json") {
		t.Errorf("Name() = %s, want dir/name", f.Name())
	}
	f.Close()

	for _, tc := range []struct {
		name string
		want []string
	}{
		{"secret.json", []string{"secret.json", "outside the directory"}},
		{"zero.json", []string{"zero.json", "outside the directory"}},
		{"dangling.json", []string{"dangling.json", "missing file"}},
		{"fifo.json", []string{filepath.Join(dir, "fifo.json"), "not a regular file (a named pipe)"}},
		{"tofifo.json", []string{"tofifo.json", "not a regular file (a named pipe)"}},
		{"sub", []string{"sub", "not a regular file (a directory)"}},
		{"../config.json", []string{`contains ".."`}},
		{"a/b", []string{"path separator"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			promptly(t, "OpenInput("+tc.name+")", func() {
				f, err := OpenInput(dir, tc.name)
				if err == nil {
					f.Close()
				}
				wantErr(t, err, tc.want...)
				_, err = ReadInput(dir, tc.name, MaxDocBytes)
				wantErr(t, err, tc.want...)
			})
		})
	}
	if _, err := OpenInput(dir, "dangling.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a dangling link: %v does not wrap ErrNotExist", err)
	}
}

func TestReadInputLimit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "at.json", make([]byte, 2048))
	writeFile(t, dir, "over.json", make([]byte, 2049))
	if data, err := ReadInput(dir, "at.json", 2048); err != nil || len(data) != 2048 {
		t.Errorf("a file of exactly the limit: %d bytes, %v", len(data), err)
	}
	_, err := ReadInput(dir, "over.json", 2048)
	wantErr(t, err, filepath.Join(dir, "over.json"), "2049 bytes", "over the 2 KiB limit")
	_, err = ReadInput(dir, "over.json", 100)
	wantErr(t, err, "over the 100-byte limit")
}

// The index and the shards go through the same checks.
func TestOpenDirInputRules(t *testing.T) {
	outside := t.TempDir()
	secretIndex := writeFile(t, outside, "index.json", []byte(`{"weight_map": {"w": "a.safetensors"}}`))
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string
	}{
		{"index links outside", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w")
			if err := os.Symlink(secretIndex, filepath.Join(dir, IndexFile)); err != nil {
				t.Fatal(err)
			}
		}, []string{IndexFile, "outside the directory"}},
		{"index links to /dev/zero", func(t *testing.T, dir string) {
			if err := os.Symlink("/dev/zero", filepath.Join(dir, IndexFile)); err != nil {
				t.Fatal(err)
			}
		}, []string{IndexFile, "outside the directory"}},
		{"index is a FIFO", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w")
			mkfifo(t, filepath.Join(dir, IndexFile))
		}, []string{IndexFile, "named pipe"}},
		{"index is a dangling link", func(t *testing.T, dir string) {
			smallFile(t, dir, "a.safetensors", "w")
			if err := os.Symlink("gone.json", filepath.Join(dir, IndexFile)); err != nil {
				t.Fatal(err)
			}
		}, []string{IndexFile, "missing file"}},
		{"index too large", func(t *testing.T, dir string) {
			f, err := os.Create(filepath.Join(dir, IndexFile))
			if err != nil {
				t.Fatal(err)
			}
			// Sparse: no disk space for the test.
			if err := f.Truncate(MaxDocBytes + 1); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}, []string{IndexFile, "over the 64 MiB limit"}},
		{"listed shard is a FIFO", func(t *testing.T, dir string) {
			mkfifo(t, filepath.Join(dir, "a.safetensors"))
			writeIndex(t, dir, `{"weight_map": {"w": "a.safetensors"}}`)
		}, []string{"a.safetensors", "named pipe"}},
		{"shard is a FIFO, no index", func(t *testing.T, dir string) {
			mkfifo(t, filepath.Join(dir, "a.safetensors"))
		}, []string{"a.safetensors", "named pipe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			promptly(t, "OpenDir", func() {
				c, err := OpenDir(dir)
				if err == nil {
					c.Close()
				}
				wantErr(t, err, tc.want...)
			})
		})
	}
}

func TestOpenFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.safetensors")
	mkfifo(t, path)
	promptly(t, "Open(FIFO)", func() {
		_, err := Open(path)
		wantErr(t, err, path, "not a regular file (a named pipe)")
	})
}

// A *.safetensors file beside an index that does not list it is not read:
// OpenDir reports it in Unlisted.
func TestOpenDirUnlisted(t *testing.T) {
	dir := t.TempDir()
	smallFile(t, dir, "model-00001-of-00001.safetensors", "w")
	smallFile(t, dir, "consolidated.safetensors", "w") // same tensor: it must not be read
	writeFile(t, dir, "notes.txt", nil)
	writeIndex(t, dir, `{"weight_map": {"w": "model-00001-of-00001.safetensors"}}`)
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !slices.Equal(c.Unlisted, []string{"consolidated.safetensors"}) || len(c.Files) != 1 {
		t.Errorf("unlisted %v, %d files", c.Unlisted, len(c.Files))
	}
}

// truncated opens a file of two F32 tensors, each longer than a page, and
// truncates it to its first page: the second tensor is gone from under the
// mapping.
func truncated(t *testing.T) (*File, string) {
	t.Helper()
	page := os.Getpagesize()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	writeTensors(t, path, map[string]tensor.Tensor{
		"a": {DType: tensor.U8, Shape: tensor.Shape{page}, Data: make([]byte, page)},
		"b": {DType: tensor.U8, Shape: tensor.Shape{4 * page}, Data: make([]byte, 4*page)},
	}, nil)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := os.Truncate(path, int64(page)); err != nil {
		t.Fatal(err)
	}
	return f, path
}

var sink byte

// Reading the lost bytes under fault.Guard is an error naming the file and
// the tensor, not a crash.
func TestTruncatedRead(t *testing.T) {
	f, path := truncated(t)
	data, err := f.Data("b")
	if err != nil {
		t.Fatal(err)
	}
	err = fault.Guard(func() error {
		for _, c := range data {
			sink ^= c
		}
		return nil
	})
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("reading a truncated tensor: %v, want a *fault.Error", err)
	}
	wantErr(t, err, path, `tensor "b"`, "shrank")
	if err := f.Unchanged(); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Unchanged after a truncation: %v", err)
	}
}

// Writing from the lost bytes (the engine writes mapped slices as they
// are) and copying them file to file are errors naming the input.
func TestTruncatedWriteAndCopy(t *testing.T) {
	f, path := truncated(t)
	ti, _ := f.Tensor("b")
	l, err := NewLayout([]Entry{{Name: "x", DType: tensor.U8, Shape: ti.Shape}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(filepath.Join(t.TempDir(), "out.safetensors"), l)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	data, _ := f.Data("b")
	err = w.WriteParts("x", 0, [][]byte{data})
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("writing from a truncated tensor: %v, want a *fault.Error", err)
	}
	wantErr(t, err, path, `tensor "b"`, "shrank")

	err = w.CopyFrom("x", 0, f, "b")
	wantErr(t, err, path, "shrank while being read")
}

// Unchanged holds for a file left alone and fails for one rewritten in
// place with the same size.
func TestUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	writeTensors(t, path, map[string]tensor.Tensor{"a": {DType: tensor.U8, Shape: tensor.Shape{4}, Data: []byte{1, 2, 3, 4}}}, nil)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Unchanged(); err != nil {
		t.Fatalf("a file left alone: %v", err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	wantErr(t, f.Unchanged(), path, "changed while being read")
}
