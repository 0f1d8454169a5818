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

	"golang.org/x/sys/unix"
)

// checkpointDir makes a directory holding the given (empty) files.
func checkpointDir(t *testing.T, files ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		writeFile(t, dir, f, []byte("x"))
	}
	return dir
}

func TestCheckReplaceable(t *testing.T) {
	keep := func(name string) bool { return name == "config.json" }
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) string
		want  string // "" when replaceable
	}{
		{"empty directory", func(t *testing.T) string { return checkpointDir(t) }, ""},
		{"checkpoint", func(t *testing.T) string {
			return checkpointDir(t, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", IndexFile, "config.json")
		}, ""},
		{"regular file", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "notes.txt")
			if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}, "it is a regular file, not a directory"},
		{"FIFO", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			return path
		}, "it is a FIFO, not a directory"},
		{"device", func(t *testing.T) string { return "/dev/null" }, "it is a character device, not a directory"},
		{"symlink to a checkpoint", func(t *testing.T) string {
			dir := checkpointDir(t, "model.safetensors")
			link := filepath.Join(t.TempDir(), "link")
			if err := os.Symlink(dir, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "it is a symbolic link (to "},
		{"subdirectory", func(t *testing.T) string {
			dir := checkpointDir(t, "model.safetensors")
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "it holds sub, a directory"},
		{"another file", func(t *testing.T) string { return checkpointDir(t, "model.safetensors", "notes.txt") },
			"it holds notes.txt, which is not a checkpoint file"},
		{"symlink entry", func(t *testing.T) string {
			dir := checkpointDir(t)
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, "model.safetensors")); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "it holds model.safetensors, a symbolic link"},
		{"FIFO entry", func(t *testing.T) string {
			dir := checkpointDir(t)
			if err := syscall.Mkfifo(filepath.Join(dir, "model.safetensors"), 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			return dir
		}, "it holds model.safetensors, a FIFO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.setup(t)
			err := CheckReplaceable(path, keep)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (!errors.Is(err, ErrNotReplaceable) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path)):
				t.Errorf("got %v, want a refusal naming %s and saying %q", err, path, tc.want)
			}
		})
	}
}

// fakeFilesystems makes lstatID report the entries named in dev as lying on
// another device, and those in mnt as in another mount of the same one (a
// bind mount), for the rest of the test.
func fakeFilesystems(t *testing.T, dev, mnt map[string]bool) {
	real := lstatID
	t.Cleanup(func() { lstatID = real })
	lstatID = func(path string) (fs.FileInfo, fileID, error) {
		fi, id, err := real(path)
		if dev[filepath.Base(path)] {
			id.dev++
		}
		if mnt[filepath.Base(path)] {
			id.mnt, id.hasMnt = id.mnt+1, true
		}
		return fi, id, err
	}
}

// TestCheckReplaceableOtherFilesystem: an entry, or the directory itself, on
// another filesystem or in another mount is refused; the device numbers are
// faked, so no mount is needed.
func TestCheckReplaceableOtherFilesystem(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dev, mnt map[string]bool
		want     string
	}{
		{"entry on another device", map[string]bool{"b.safetensors": true}, nil, "its entry b.safetensors is a mount point"},
		{"entry bind-mounted", nil, map[string]bool{"b.safetensors": true}, "its entry b.safetensors is a mount point"},
		{"directory on another device", map[string]bool{"out": true}, nil, "it is a mount point"},
		{"directory bind-mounted", nil, map[string]bool{"out": true}, "it is a mount point"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := checkpointDir(t, "a.safetensors", "b.safetensors")
			fakeFilesystems(t, tc.dev, tc.mnt)
			if err := CheckReplaceable(dir, nil); !errors.Is(err, ErrNotReplaceable) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRemoveReplacedStaysOnItsFilesystem: the removal of a moved-aside
// output checks every entry before unlinking any, so an entry that turns out
// to be on another filesystem leaves the whole directory as it was.
func TestRemoveReplacedStaysOnItsFilesystem(t *testing.T) {
	dir := checkpointDir(t, "a.safetensors", "b.safetensors", "c.safetensors")
	id, err := checkReplaceable(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fakeFilesystems(t, map[string]bool{"b.safetensors": true}, nil)
	if err := removeReplaced(dir, id, nil); err == nil || !strings.Contains(err.Error(), "b.safetensors is a mount point") {
		t.Errorf("removeReplaced = %v, want a refusal naming b.safetensors", err)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"a.safetensors", "b.safetensors", "c.safetensors"}) {
		t.Errorf("after a refused removal the directory holds %v", got)
	}
	// Where every entry is on the directory's own filesystem, all go.
	lstatID = realLstatID
	if err := removeReplaced(dir, id, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after removeReplaced: %v", err)
	}
}

var realLstatID = lstatID

// TestCommitRechecksTarget: a target that stops being a checkpoint directory
// while the conversion runs is refused at Commit and left as it is.
func TestCommitRechecksTarget(t *testing.T) {
	target := checkpointDir(t, "model.safetensors")
	od, err := NewOutputDir(target, OutputOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	defer od.Abort()
	writeFile(t, od.Path(), "model.safetensors", []byte("new"))
	writeFile(t, target, "notes.txt", []byte("precious"))
	if err := od.Commit(); !errors.Is(err, ErrNotReplaceable) || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("Commit = %v, want a refusal naming notes.txt", err)
	}
	if got := entries(t, target); !slices.Equal(got, []string{"model.safetensors", "notes.txt"}) {
		t.Errorf("refused target holds %v", got)
	}
	if got, _ := os.ReadFile(filepath.Join(target, "model.safetensors")); string(got) != "x" {
		t.Errorf("refused target's model.safetensors holds %q", got)
	}
}

// TestReplaceRefusesBindMounts mounts for real (root only; skipped where
// mounting is not permitted): a file bind-mounted over a checkpoint file,
// and a directory bind-mounted as the target.
func TestReplaceRefusesBindMounts(t *testing.T) {
	mount := func(t *testing.T, src, dst string) {
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			t.Skipf("bind mount not permitted here: %v", err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil {
				t.Errorf("unmounting %s: %v", dst, err)
			}
		})
	}
	if _, ok := mountID("/"); !ok {
		// Without STATX_MNT_ID a bind mount of the same filesystem is not
		// told apart from a plain entry (subdirectories are refused anyway).
		t.Skip("the kernel does not report mount IDs")
	}
	t.Run("file over an entry", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "precious")
		if err := os.WriteFile(other, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		dir := checkpointDir(t, "model.safetensors")
		mount(t, other, filepath.Join(dir, "model.safetensors"))
		if err := CheckReplaceable(dir, nil); !errors.Is(err, ErrNotReplaceable) || !strings.Contains(err.Error(), "model.safetensors is a mount point") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("directory as the target", func(t *testing.T) {
		src := checkpointDir(t, "model.safetensors")
		dir := checkpointDir(t)
		mount(t, src, dir)
		if err := CheckReplaceable(dir, nil); !errors.Is(err, ErrNotReplaceable) || !strings.Contains(err.Error(), "it is a mount point") {
			t.Errorf("got %v", err)
		}
		if _, err := NewOutputDir(dir, OutputOptions{Force: true}); !errors.Is(err, ErrNotReplaceable) {
			t.Errorf("NewOutputDir = %v", err)
		}
		if got := entries(t, src); !slices.Equal(got, []string{"model.safetensors"}) {
			t.Errorf("mounted directory now holds %v", got)
		}
	})
}

func TestLeftovers(t *testing.T) {
	parent := t.TempDir()
	for _, d := range []string{".out.tmp-1", ".out.old-2", ".outer.tmp-3", ".other.tmp-4", "out"} {
		if err := os.Mkdir(filepath.Join(parent, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, parent, ".out.tmp-file", []byte("not a directory"))
	got, err := Leftovers(filepath.Join(parent, "out"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(parent, ".out.old-2"), filepath.Join(parent, ".out.tmp-1")}
	if !slices.Equal(got, want) {
		t.Errorf("Leftovers = %v, want %v", got, want)
	}
	if got, err := Leftovers(filepath.Join(parent, "missing", "out")); err != nil || got != nil {
		t.Errorf("Leftovers beside a missing parent = %v, %v", got, err)
	}
}

// TestCheckReplaceableEscapesNames: the entry a refusal names comes from
// the disk: a name holding an ESC or a newline prints escaped.
func TestCheckReplaceableEscapesNames(t *testing.T) {
	dir := checkpointDir(t, "model.safetensors", "notes\x1b[2J\nok.txt")
	err := CheckReplaceable(dir, nil)
	if !errors.Is(err, ErrNotReplaceable) {
		t.Fatalf("CheckReplaceable: %v, want a refusal", err)
	}
	msg := err.Error()
	if want := `it holds "notes\x1b[2J\nok.txt", which is not a checkpoint file`; !strings.Contains(msg, want) {
		t.Errorf("%q does not say %s", msg, want)
	}
	if strings.ContainsAny(msg, "\x1b\n") {
		t.Errorf("the refusal holds a control character: %q", msg)
	}
}

// TestCheckReplaceableRawNames: the rule sees names as they are on disk, so
// a side file whose name needs escaping, which keep accepts (an earlier
// conversion copied it), does not stop a forced replace.
func TestCheckReplaceableRawNames(t *testing.T) {
	odd := "tokenizer\x1b.json"
	dir := checkpointDir(t, "model.safetensors", odd, "we\nird.safetensors")
	if err := CheckReplaceable(dir, func(name string) bool { return name == odd }); err != nil {
		t.Errorf("CheckReplaceable: %v", err)
	}
}
