package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// TestExecuteForceRefusesWhatIsNotACheckpoint: Force replaces only a
// checkpoint directory; a regular file, a FIFO, a link to a directory
// elsewhere or a directory holding anything else is refused before anything
// is written, named in the error, and left as it was.
func TestExecuteForceRefusesWhatIsNotACheckpoint(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, out string)
		want  string
	}{
		{"regular file", func(t *testing.T, out string) {
			if err := os.WriteFile(out, []byte("precious\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "it is a regular file, not a directory"},
		{"FIFO", func(t *testing.T, out string) {
			if err := syscall.Mkfifo(out, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}, "it is a FIFO, not a directory"},
		{"link to a checkpoint elsewhere", func(t *testing.T, out string) {
			elsewhere := filepath.Join(t.TempDir(), "ckpt")
			if err := os.MkdirAll(elsewhere, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(elsewhere, "model_0.safetensors"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, out); err != nil {
				t.Fatal(err)
			}
		}, "it is a symbolic link"},
		{"directory of other files", func(t *testing.T, out string) {
			if err := os.MkdirAll(filepath.Join(out, "src"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(out, "config.json"), []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "it holds src, a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			hfDir, out := filepath.Join(root, "hf"), filepath.Join(root, "out")
			writeSmallHF(t, hfDir, smallConfig())
			tc.setup(t, out)
			before, err := os.Lstat(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckOutput(hfDir, out, true); !errors.Is(err, safetensors.ErrNotReplaceable) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckOutput = %v, want %q", err, tc.want)
			}
			p := planOrFail(t, m, hfDir, PlanOptions{Workers: 1})
			_, err = p.Execute(context.Background(), ExecOptions{Output: out, Force: true})
			if !errors.Is(err, safetensors.ErrNotReplaceable) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), out) {
				t.Errorf("Execute = %v, want a refusal naming %s and saying %q", err, out, tc.want)
			}
			after, err := os.Lstat(out)
			if err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
				t.Errorf("the refused output changed: %v, %v", after, err)
			}
			assertNothingLeft(t, root, "hf", "out")
		})
	}
}

// TestExecuteForceKeepsToTheRule: a forced output holding a file named like
// one of the input's side files (whatever the name) is a checkpoint; one
// holding a file the input does not have is not.
func TestExecuteForceKeepsToTheRule(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	root := t.TempDir()
	hfDir, out := filepath.Join(root, "hf"), filepath.Join(root, "out")
	writeSmallHF(t, hfDir, smallConfig())
	if err := os.WriteFile(filepath.Join(hfDir, "NOTES.md"), []byte("about this model\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	convert(t, m, hfDir, out, PlanOptions{Workers: 1})
	for _, f := range []string{"ok", "NOTES.md", "model_3.safetensors"} {
		if err := os.WriteFile(filepath.Join(out, f), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := planOrFail(t, m, hfDir, PlanOptions{Workers: 1})
	if _, err := p.Execute(context.Background(), ExecOptions{Output: out, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, out); !slices.Equal(got, []string{"NOTES.md", "metadata.yaml", "model_0.safetensors", "ok", "tokenizer.json"}) {
		t.Errorf("replaced output holds %q", got)
	}
	assertNothingLeft(t, root, "hf", "out")

	if err := os.WriteFile(filepath.Join(out, "NOTES.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckOutput(hfDir, out, true)
	if !errors.Is(err, safetensors.ErrNotReplaceable) || !strings.Contains(err.Error(), "it holds NOTES.txt, which is not a checkpoint file") {
		t.Errorf("CheckOutput over a directory holding NOTES.txt = %v", err)
	}
	if err := CheckOutput(hfDir, out, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("CheckOutput over an existing output without force = %v", err)
	}
}

// TestCheckOutputPlaceByIdentity: the input reached through links, from
// either side, is still the input: checkOutputPlace compares devices and
// inodes, whatever the paths say.
func TestCheckOutputPlaceByIdentity(t *testing.T) {
	root := t.TempDir()
	hfDir := filepath.Join(root, "ckpts", "hf")
	writeSmallHF(t, hfDir, smallConfig())
	link := func(target, name string) string {
		path := filepath.Join(root, name)
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	inLink := link(hfDir, "in-link")              // the input by another name
	outLink := link(hfDir, "out-link")            // ... and another
	parentLink := link(filepath.Dir(hfDir), "up") // its parent
	chain := link(parentLink, "chain")            // a link to a link to the parent
	for _, tc := range []struct{ in, out, want string }{
		{inLink, outLink, "is the input directory"},
		{inLink, chain + "/hf", "is the input directory"},
		{inLink, chain, "contains the input"},
		{hfDir, parentLink, "contains the input"},
		{inLink, filepath.Join(outLink, "new"), "is inside the input"},
		{filepath.Join(chain, "hf"), filepath.Join(hfDir, "a", "b"), "is inside the input"},
	} {
		err := checkOutputPlace(tc.in, tc.out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("input %s, output %s: %v, want %q", tc.in, tc.out, err, tc.want)
		}
	}
	// Siblings, however linked, are fine.
	if err := checkOutputPlace(inLink, filepath.Join(parentLink, "hf-fast")); err != nil {
		t.Errorf("a sibling of the input: %v", err)
	}
}

// TestExecuteSideFileFailsEarly: a side file that cannot be written (here
// an HF input's metadata.yaml, which a fast_llm output writes itself) fails
// the run before a single tensor is written, says which, and leaves nothing.
func TestExecuteSideFileFailsEarly(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	root := t.TempDir()
	hfDir := filepath.Join(root, "hf")
	writeSmallHF(t, hfDir, smallConfig())
	if err := os.WriteFile(filepath.Join(hfDir, "metadata.yaml"), []byte("notes: mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := planOrFail(t, m, hfDir, PlanOptions{Workers: 1, To: "fast_llm"})
	var mu sync.Mutex
	var events []EventKind
	_, err := p.Execute(context.Background(), ExecOptions{Output: filepath.Join(root, "out"), Progress: func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e.Kind)
	}})
	if err == nil || !strings.Contains(err.Error(), "side file metadata.yaml") || !strings.Contains(err.Error(), hfDir) {
		t.Fatalf("Execute = %v, want an error naming the side file metadata.yaml", err)
	}
	if len(events) != 0 {
		t.Errorf("the run reported %v before failing; want it to fail before starting", events)
	}
	assertNothingLeft(t, root, "hf")
}

// TestCheckpointNamesDocumented: the README states the rule --force keeps
// to; every name it allows must be listed there, and the list must hold no
// name the rule does not allow.
func TestCheckpointNamesDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "`--force` replaces only a checkpoint directory")
	if start < 0 {
		t.Fatal("README does not state what --force replaces")
	}
	end := strings.Index(text[start:], "refused")
	if end < 0 {
		t.Fatal("README's --force rule has no end")
	}
	rule := text[start : start+end]
	for name := range checkpointNames {
		if !strings.Contains(rule, "`"+name+"`") {
			t.Errorf("README's --force rule does not list %s", name)
		}
	}
	fields := strings.Split(rule, "`")
	for i := 1; i < len(fields); i += 2 { // the quoted ones
		switch name := fields[i]; {
		case strings.HasPrefix(name, "--") || name == "*.safetensors" || name == safetensors.IndexFile: // flags, and the side's own files
		case !checkpointNames[name]:
			t.Errorf("README's --force rule lists %s, which the rule does not allow", name)
		}
	}
}

// TestCheckOutputLike: the --like checkpoint is protected as the input is
// (the output may not be it, inside it or around it), and a replaced
// output may hold its side files' names, which a conversion copies.
func TestCheckOutputLike(t *testing.T) {
	root := t.TempDir()
	hfDir, like := filepath.Join(root, "hf"), filepath.Join(root, "like")
	writeSmallHF(t, hfDir, smallConfig())
	writeSmallHF(t, like, smallConfig())
	if err := os.WriteFile(filepath.Join(like, "special_tokens.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ out, want string }{
		{like, "is the input directory"},
		{filepath.Join(like, "out"), "is inside the input " + like},
		{root, "contains the input"},
	} {
		if err := CheckOutput(hfDir, tc.out, true, like); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("output %s: %v, want %q", tc.out, err, tc.want)
		}
	}
	out := filepath.Join(root, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "special_tokens.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckOutput(hfDir, out, true); !errors.Is(err, safetensors.ErrNotReplaceable) {
		t.Errorf("replacing an output holding a file of neither input = %v", err)
	}
	if err := CheckOutput(hfDir, out, true, like); err != nil {
		t.Errorf("replacing an output holding a side file of --like = %v", err)
	}
}
