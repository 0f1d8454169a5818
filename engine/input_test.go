package engine

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// shards lists the *.safetensors files of dir.
func shards(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no shards in %s (%v)", dir, err)
	}
	return files
}

// truncateAll cuts every shard of dir down to its first page, as another
// process rewriting the checkpoint might.
func truncateAll(t *testing.T, dir string) {
	t.Helper()
	for _, f := range shards(t, dir) {
		if err := os.Truncate(f, int64(os.Getpagesize())); err != nil {
			t.Error(err)
		}
	}
}

// mentionsShard reports whether err names one of the shards of dir.
func mentionsShard(err error, files []string) bool {
	return slices.ContainsFunc(files, func(f string) bool { return strings.Contains(err.Error(), f) })
}

// TestExecuteInputTruncated: an input cut short while it is being read
// (its pages are mapped: reading them faults) ends the run with an error
// naming the file, not a crash, and leaves nothing behind.
func TestExecuteInputTruncated(t *testing.T) {
	t.Run("mid-run", func(t *testing.T) {
		root, hfDir, p := gptossFixture(t)
		files := shards(t, hfDir)
		var once sync.Once
		_, err := p.Execute(context.Background(), ExecOptions{Output: filepath.Join(root, "out"), Progress: func(e Event) {
			if e.Kind == EventProgress {
				once.Do(func() { truncateAll(t, hfDir) })
			}
		}})
		if err == nil {
			t.Fatal("a run whose input was truncated under it succeeded")
		}
		if !mentionsShard(err, files) || !strings.Contains(err.Error(), "inputs must not change") {
			t.Errorf("error %q: want the shard named and why", err)
		}
		assertNothingLeft(t, root, "hf")
	})

	t.Run("chunks-fault", func(t *testing.T) {
		// Only the jobs that compute, which read the mapping (renames copy
		// through the descriptor, and would fail first without faulting).
		root, hfDir, p := gptossFixture(t)
		p.Jobs = slices.DeleteFunc(p.Jobs, func(j *Job) bool { return j.Copy })
		if len(p.Jobs) == 0 {
			t.Fatal("no computing jobs")
		}
		files := shards(t, hfDir)
		truncateAll(t, hfDir)
		_, err := p.Execute(context.Background(), ExecOptions{Output: filepath.Join(root, "out")})
		var fe *fault.Error
		if !errors.As(err, &fe) {
			t.Fatalf("error %v (%T), want a *fault.Error", err, err)
		}
		if !slices.Contains(files, fe.Path) || fe.Tensor == "" || !strings.Contains(err.Error(), "shrank") {
			t.Errorf("fault %+v: want a shard, its tensor and why", fe)
		}
		assertNothingLeft(t, root, "hf")
	})

	t.Run("rewritten-same-size", func(t *testing.T) {
		// A rewrite in place that keeps the size never faults; the check
		// before the commit sees the new modification time.
		root, hfDir, p := gptossFixture(t)
		var once sync.Once
		_, err := p.Execute(context.Background(), ExecOptions{Output: filepath.Join(root, "out"), Progress: func(e Event) {
			once.Do(func() {
				later := time.Now().Add(time.Hour)
				for _, f := range shards(t, hfDir) {
					os.Chtimes(f, later, later)
				}
			})
		}})
		if err == nil || !strings.Contains(err.Error(), "changed while being read") {
			t.Fatalf("a rewritten input: %v", err)
		}
		assertNothingLeft(t, root, "hf")
	})
}

// TestDiffInputTruncated: diff reads both sides' mappings; one truncated
// after it was opened is an error naming it.
func TestDiffInputTruncated(t *testing.T) {
	root, hfDir, _ := gptossFixture(t)
	other := filepath.Join(root, "other")
	if err := os.CopyFS(other, os.DirFS(hfDir)); err != nil {
		t.Fatal(err)
	}
	sa, err := OpenAny(hfDir)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb, err := OpenAny(other)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	files := shards(t, other)
	truncateAll(t, other)
	_, err = diffSources(sa, sb)
	var fe *fault.Error
	if !errors.As(err, &fe) || !slices.Contains(files, fe.Path) {
		t.Fatalf("diff against a truncated checkpoint: %v, want a *fault.Error naming one of %v", err, files)
	}
}

// TestExecuteSideFileSwapped: a side file replaced after planning by a link
// out of the input, or by a FIFO, is refused when it is copied (promptly),
// naming it; nothing is left behind and nothing of the link's target is
// written.
func TestExecuteSideFileSwapped(t *testing.T) {
	secret := []byte(`{"token": "do-not-copy"}`)
	for _, tc := range []struct {
		name string
		swap func(t *testing.T, path string)
		want string
	}{
		{"link-outside", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "creds.json")
			if err := os.WriteFile(target, secret, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "outside the directory"},
		{"fifo", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}, "not a regular file (a named pipe)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := loadMapFile(t, "testdata/small.map")
			root := t.TempDir()
			hfDir := filepath.Join(root, "hf")
			writeSmallHF(t, hfDir, smallConfig())
			p := planOrFail(t, m, hfDir, PlanOptions{Workers: 2})
			if !slices.Contains(p.SideFiles, "tokenizer.json") {
				t.Fatalf("side files %v", p.SideFiles)
			}
			side := filepath.Join(hfDir, "tokenizer.json")
			if err := os.Remove(side); err != nil {
				t.Fatal(err)
			}
			tc.swap(t, side)
			done := make(chan error, 1)
			go func() {
				_, err := p.Execute(context.Background(), ExecOptions{Output: filepath.Join(root, "out")})
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Execute still blocked after 10 s")
			}
			if err == nil || !strings.Contains(err.Error(), side) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("swapped side file: %v, want %s named and %q", err, side, tc.want)
			}
			assertNothingLeft(t, root, "hf")
		})
	}
}

// TestPlanNotesUnlisted: a weight file beside the index that the index does
// not name is not read, not copied, and the plan says so.
func TestPlanNotesUnlisted(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	root := t.TempDir()
	hfDir := filepath.Join(root, "hf")
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
	ix := &safetensors.Index{WeightMap: wm}
	if err := safetensors.WriteIndex(filepath.Join(hfDir, safetensors.IndexFile), ix); err != nil {
		t.Fatal(err)
	}
	// The same tensors again, as Mistral's consolidated file holds them: read,
	// they would be claimed twice.
	raw, err := os.ReadFile(filepath.Join(hfDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hfDir, "consolidated.safetensors"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	p := planOrFail(t, m, hfDir, PlanOptions{Workers: 2})
	want := "consolidated.safetensors is not listed in " + safetensors.IndexFile
	if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.HasPrefix(n, want) }) {
		t.Errorf("notes %q: want %q", p.Notes, want)
	}
	out := filepath.Join(root, "out")
	if _, err := p.Execute(context.Background(), ExecOptions{Output: out}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "consolidated.safetensors")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the unlisted file was carried over: %v", err)
	}
}
