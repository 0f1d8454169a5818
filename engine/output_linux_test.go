package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// bindMount mounts src at dst for the rest of the test, or skips it where
// mounting is not permitted (not root, no CAP_SYS_ADMIN, a sandbox).
func bindMount(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("bind mount not permitted here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dst, err)
		}
	})
}

// TestExecuteRefusesBindMountedInput: the input mounted a second time under
// the output, or the output placed under a second mount of the input, is
// refused before anything is written or deleted: found by device and inode,
// not by path, or (deeper inside the output) refused with the subdirectory
// that holds it, since a replaced output must be a flat directory of files.
func TestExecuteRefusesBindMountedInput(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root, hfDir string) (out string)
		want  string
	}{
		{"input mounted inside the output", func(t *testing.T, root, hfDir string) string {
			out := filepath.Join(root, "out")
			bindMount(t, hfDir, filepath.Join(out, "sub", "in"))
			return out
		}, "it holds sub, a directory"}, // a replaced output is flat: never searched
		{"input mounted as the output", func(t *testing.T, root, hfDir string) string {
			out := filepath.Join(root, "out")
			bindMount(t, hfDir, out)
			return out
		}, "is the input directory"},
		{"output under a mount of the input", func(t *testing.T, root, hfDir string) string {
			view := filepath.Join(root, "view")
			bindMount(t, hfDir, view)
			return filepath.Join(view, "new")
		}, "is inside the input"},
		{"output a mount of the input's parent", func(t *testing.T, root, hfDir string) string {
			alias := filepath.Join(root, "alias")
			bindMount(t, filepath.Dir(hfDir), alias)
			return alias
		}, "contains the input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			hfDir := filepath.Join(root, "ckpts", "hf")
			writeSmallHF(t, hfDir, smallConfig())
			out := tc.setup(t, root, hfDir)
			before := dirSums(t, hfDir)
			p := planOrFail(t, m, hfDir, PlanOptions{Workers: 1})
			_, err := p.Execute(context.Background(), ExecOptions{Output: out, Force: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Execute = %v, want %q", err, tc.want)
			}
			if after := dirSums(t, hfDir); !sameSums(before, after) {
				t.Error("the input changed")
			}
		})
	}
}
