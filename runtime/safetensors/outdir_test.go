package safetensors

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

func TestOutputDirCommit(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(parent, "out")
	od, err := NewOutputDir(target, OutputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(od.Path()) != parent || !strings.HasPrefix(filepath.Base(od.Path()), ".out.tmp-") {
		t.Errorf("temp dir %s is not a hidden sibling of the target", od.Path())
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("target exists before Commit: %v", err)
	}
	writeFile(t, od.Path(), "a.txt", []byte("new"))
	if err := os.Mkdir(filepath.Join(od.Path(), "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(od.Path(), "sub"), "b.txt", []byte("b"))
	if err := od.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(target, "sub", "b.txt")); string(got) != "b" {
		t.Errorf("committed content %q", got)
	}
	if st, err := os.Stat(target); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("target mode: %v, %v", st, err)
	}
	if got := entries(t, parent); !slices.Equal(got, []string{"out"}) {
		t.Errorf("parent holds %v, want only the target", got)
	}
	if err := od.Commit(); err != nil {
		t.Errorf("second Commit: %v", err)
	}
	if err := od.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "a.txt")); err != nil {
		t.Errorf("Abort after Commit touched the target: %v", err)
	}

	// The target now exists: refused without force...
	if _, err := NewOutputDir(target, OutputOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("NewOutputDir over an existing target = %v", err)
	}
	// ...and with it too, as it holds a subdirectory and a.txt...
	if _, err := NewOutputDir(target, OutputOptions{Force: true}); !errors.Is(err, ErrNotReplaceable) {
		t.Errorf("forced NewOutputDir over a directory with a subdirectory = %v", err)
	}
	// ...but a checkpoint directory is replaced whole.
	if err := os.RemoveAll(filepath.Join(target, "sub")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, target, "model.safetensors", []byte("old"))
	keep := func(name string) bool { return name == "a.txt" }
	od, err = NewOutputDir(target, OutputOptions{Force: true, Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, od.Path(), "c.txt", []byte("c"))
	if err := od.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, target); !slices.Equal(got, []string{"c.txt"}) {
		t.Errorf("replaced target holds %v, want [c.txt]", got)
	}
	if got := entries(t, parent); !slices.Equal(got, []string{"out"}) {
		t.Errorf("parent holds %v after a forced commit, want only the target", got)
	}
}

func TestOutputDirAbort(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(parent, "nested", "out") // the parent is created
	od, err := NewOutputDir(target, OutputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, od.Path(), "a.txt", []byte("x"))
	if err := od.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := od.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if got := entries(t, filepath.Join(parent, "nested")); len(got) != 0 {
		t.Errorf("Abort left %v behind", got)
	}
	if err := od.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

func TestOutputDirTargetAppears(t *testing.T) {
	target := filepath.Join(t.TempDir(), "out")
	od, err := NewOutputDir(target, OutputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer od.Abort()
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	// rename(2) would silently replace the empty directory; Commit must not.
	if err := od.Commit(); err == nil || !strings.Contains(err.Error(), "appeared") {
		t.Errorf("Commit over a target created meanwhile = %v", err)
	}
}
