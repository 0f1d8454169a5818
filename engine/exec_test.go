package engine

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// dirSums hashes every file under dir, so a test can tell that an input was
// not touched.
func dirSums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// assertNothingLeft checks that parent holds exactly want (the input and
// whatever the test put there): no output, no temporary sibling.
func assertNothingLeft(t *testing.T, parent string, want ...string) {
	t.Helper()
	if got := entries(t, parent); !slices.Equal(got, want) {
		t.Errorf("%s holds %q after the failed run, want only %q", parent, got, want)
	}
}

// gptossFixture writes a tiny GPT-OSS checkpoint into root/hf and plans its
// import with a small budget so that the run has many chunks.
func gptossFixture(t *testing.T) (root, hfDir string, p *Plan) {
	t.Helper()
	root = t.TempDir()
	hfDir = filepath.Join(root, "hf")
	if err := synth.Generate(hfDir, synth.TinyGPTOSS(), 1, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	return root, hfDir, planOrFail(t, builtin(t, "gpt_oss"), hfDir, PlanOptions{Workers: 1, Memory: 48 << 10})
}

// TestExecuteInterrupted cancels runs from the progress callback at several
// points: the error says the run was interrupted, the target does not
// exist, no temporary directory is left beside it and the input is as it
// was.
func TestExecuteInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   func(e Event) bool
	}{
		{"first-chunk", func(e Event) bool { return e.Kind == EventProgress }},
		{"start", func(e Event) bool { return e.Kind == EventStart }},
		// Every chunk is written, but the output is not yet in place.
		{"verifying", func(e Event) bool { return e.Kind == EventPhase && e.Phase == "verifying" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, hfDir, p := gptossFixture(t)
			if n := len(p.Jobs); n < 10 {
				t.Fatalf("only %d jobs", n)
			}
			before := dirSums(t, hfDir)
			out := filepath.Join(root, "out")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			progressAfter := 0
			cancelled := false
			_, err := p.Execute(ctx, ExecOptions{Output: out, Progress: func(e Event) {
				mu.Lock()
				defer mu.Unlock()
				if cancelled && e.Kind == EventProgress {
					progressAfter++
				}
				if !cancelled && tc.at(e) {
					cancelled = true
					cancel()
				}
			}})
			if !cancelled {
				t.Fatal("the run never reached the cancellation point")
			}
			if err == nil {
				t.Fatal("a cancelled run succeeded")
			}
			if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
				t.Errorf("error %q: want an interruption wrapping context.Canceled", err)
			}
			// Tasks already past their memory reservation run to the end:
			// at most the executor's tasks in flight (4 per worker, see
			// run) less the one that reported the cancelling event. A
			// loaded machine lets that many finish; none may start after.
			if inFlight := 4*p.Workers - 1; tc.name != "verifying" && progressAfter > inFlight {
				t.Errorf("%d chunks reported after the cancellation, more than the %d tasks in flight", progressAfter, inFlight)
			}
			assertNothingLeft(t, root, "hf")
			if after := dirSums(t, hfDir); !sameSums(before, after) {
				t.Error("the input changed")
			}
		})
	}
}

func sameSums(a, b map[string][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestExecuteExistingOutput: an existing target is refused and left as it
// was; with Force it is replaced whole, and nothing else is left beside it.
func TestExecuteExistingOutput(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	root := t.TempDir()
	hfDir, out := filepath.Join(root, "hf"), filepath.Join(root, "out")
	writeSmallHF(t, hfDir, smallConfig())
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(out, "keep.txt")
	if err := os.WriteFile(marker, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := planOrFail(t, m, hfDir, PlanOptions{Workers: 2})
	_, err := p.Execute(context.Background(), ExecOptions{Output: out})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("existing output: %v", err)
	}
	if got := entries(t, out); !slices.Equal(got, []string{"keep.txt"}) {
		t.Errorf("refused run changed the target: %q", got)
	}
	assertNothingLeft(t, root, "hf", "out")

	// keep.txt is not a checkpoint file: not even Force replaces the target.
	p = planOrFail(t, m, hfDir, PlanOptions{Workers: 2})
	_, err = p.Execute(context.Background(), ExecOptions{Output: out, Force: true})
	if !errors.Is(err, safetensors.ErrNotReplaceable) || !strings.Contains(err.Error(), "keep.txt") {
		t.Fatalf("forced run over a directory holding keep.txt: %v", err)
	}
	if got := entries(t, out); !slices.Equal(got, []string{"keep.txt"}) {
		t.Errorf("refused forced run changed the target: %q", got)
	}
	assertNothingLeft(t, root, "hf", "out")

	// A checkpoint (a stale shard, and a file named like a side file of the
	// input) is replaced whole.
	if err := os.Rename(marker, filepath.Join(out, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "model_7.safetensors"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	p = planOrFail(t, m, hfDir, PlanOptions{Workers: 2})
	if _, err := p.Execute(context.Background(), ExecOptions{Output: out, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, out); !slices.Equal(got, []string{"metadata.yaml", "model_0.safetensors", "ok", "tokenizer.json"}) {
		t.Errorf("forced output holds %q", got)
	}
	assertNothingLeft(t, root, "hf", "out")
}

// TestExecuteWriteFailures: runs that fail while writing leave nothing
// behind and name what failed.
func TestExecuteWriteFailures(t *testing.T) {
	t.Run("output-under-a-file", func(t *testing.T) {
		m := loadMapFile(t, "testdata/small.map")
		root := t.TempDir()
		hfDir := filepath.Join(root, "hf")
		writeSmallHF(t, hfDir, smallConfig())
		if err := os.WriteFile(filepath.Join(root, "file"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		p := planOrFail(t, m, hfDir, PlanOptions{Workers: 2})
		_, err := p.Execute(context.Background(), ExecOptions{Output: filepath.Join(root, "file", "out")})
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("output inside a file: %v", err)
		}
		assertNothingLeft(t, root, "file", "hf")
	})

	t.Run("kernel-error-mid-run", func(t *testing.T) {
		// An infinity in a Fast-LLM expert weight cannot be quantized back
		// to MXFP4: the export fails in the middle, after other tensors
		// were written.
		root, _, p := gptossFixture(t)
		fastDir := filepath.Join(root, "fast")
		if _, err := p.Execute(context.Background(), ExecOptions{Output: fastDir}); err != nil {
			t.Fatal(err)
		}
		src, err := OpenAny(fastDir)
		if err != nil {
			t.Fatal(err)
		}
		bad, ok := src.Lookup("decoder.1.mlp.layer_1.weight")
		if !ok {
			t.Fatal("no decoder.1.mlp.layer_1.weight")
		}
		off := bad.File.FileOffset(bad.Info) + 2*100
		src.Close()
		f, err := os.OpenFile(bad.File.Path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		var inf [2]byte
		binary.LittleEndian.PutUint16(inf[:], 0x7F80)
		if _, err := f.WriteAt(inf[:], off); err != nil {
			t.Fatal(err)
		}
		f.Close()
		exp := planOrFail(t, builtin(t, "gpt_oss"), fastDir, PlanOptions{Workers: 2, Memory: 48 << 10})
		var progressed int
		var mu sync.Mutex
		_, err = exp.Execute(context.Background(), ExecOptions{Output: filepath.Join(root, "back"), Progress: func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Kind == EventProgress {
				progressed++
			}
		}})
		var te *TensorError
		if !errors.As(err, &te) {
			t.Fatalf("error %v (%T), want a *TensorError", err, err)
		}
		for _, s := range []string{"decoder.1.mlp.layer_1.weight", "mappings/gpt_oss.map:", "mxfp4_encode"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error does not mention %q: %v", s, err)
			}
		}
		if progressed == 0 {
			t.Error("the run failed before writing anything; the test wants a failure mid-run")
		}
		assertNothingLeft(t, root, "fast", "hf")
	})

	t.Run("verify-catches-a-damaged-shard", func(t *testing.T) {
		// The shard is cut short under the writer (as a full disk or a
		// concurrent process might): the re-read before the commit fails.
		root, _, p := gptossFixture(t)
		out := filepath.Join(root, "out")
		_, err := p.Execute(context.Background(), ExecOptions{Output: out, Progress: func(e Event) {
			if e.Kind != EventPhase || e.Phase != "verifying" {
				return
			}
			tmps, _ := filepath.Glob(filepath.Join(root, ".out.tmp-*", "model_0.safetensors"))
			for _, f := range tmps {
				os.Truncate(f, 1000)
			}
		}})
		if err == nil || !strings.Contains(err.Error(), "verifying the output") || !strings.Contains(err.Error(), "model_0.safetensors") {
			t.Fatalf("damaged shard: %v", err)
		}
		assertNothingLeft(t, root, "hf")
	})
}

// TestExecuteRefusesOutputOverInput: an output that is the input, holds it
// or lies inside it is refused before anything is written, even with Force
// (whose commit would otherwise delete the input and, for a parent, all
// beside it).
func TestExecuteRefusesOutputOverInput(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	root := t.TempDir()
	hfDir := filepath.Join(root, "ckpts", "hf")
	writeSmallHF(t, hfDir, smallConfig())
	if err := os.WriteFile(filepath.Join(root, "ckpts", "other.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hfDir, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	before := dirSums(t, root)
	for _, tc := range []struct{ out, want string }{
		{hfDir, "is the input directory"},
		{hfDir + "/", "is the input directory"},
		{filepath.Join(root, "link"), "is the input directory"},
		{filepath.Join(root, "ckpts"), "contains the input"},
		{root, "contains the input"},
		{filepath.Join(hfDir, "out"), "is inside the input"},
		{filepath.Join(root, "link", "sub", "out"), "is inside the input"},
	} {
		p := planOrFail(t, m, hfDir, PlanOptions{Workers: 1})
		_, err := p.Execute(context.Background(), ExecOptions{Output: tc.out, Force: true})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("output %s: %v, want an error saying it %s", tc.out, err, tc.want)
		}
	}
	if after := dirSums(t, root); !sameSums(before, after) {
		t.Error("the input's directory changed")
	}
	if got := entries(t, hfDir); !slices.Equal(got, []string{"config.json", "model.safetensors", "tokenizer.json"}) {
		t.Errorf("input now holds %q", got)
	}
	// A sibling whose name starts like the input's is fine.
	p := planOrFail(t, m, hfDir, PlanOptions{Workers: 1})
	if _, err := p.Execute(context.Background(), ExecOptions{Output: hfDir + "-fast"}); err != nil {
		t.Fatal(err)
	}
}
