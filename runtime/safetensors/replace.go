package safetensors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mapper-dev/mapper/runtime/quote"
)

// Replacing an existing output is the one place mapper deletes anything, so a
// forced OutputDir replaces only what a conversion could have written, a flat
// directory of checkpoint files, and deletes it entry by entry, never
// recursively and never past its own filesystem: a wrong OUT, or something
// mounted or linked into it, is refused instead of lost.

// ErrNotReplaceable is what CheckReplaceable's refusals wrap.
var ErrNotReplaceable = errors.New("not a checkpoint directory mapper may replace")

// fileID identifies a directory entry: its filesystem (device), inode and,
// where the kernel tells (statx STATX_MNT_ID), the mount it belongs to. Two
// entries in different mounts of one filesystem (a bind mount) share the
// device but not the mount.
type fileID struct {
	dev, ino uint64
	mnt      uint64
	hasMnt   bool
}

// lstatID is os.Lstat plus the entry's fileID; a variable so that tests can
// put an entry on another filesystem without mounting one.
var lstatID = func(path string) (fs.FileInfo, fileID, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fileID{}, fmt.Errorf("%s: no device and inode numbers on this system", path)
	}
	id := fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	id.mnt, id.hasMnt = mountID(path)
	return fi, id, nil
}

// sameMount reports whether b lies in the same mounted filesystem as a.
func sameMount(a, b fileID) bool {
	return a.dev == b.dev && (!a.hasMnt || !b.hasMnt || a.mnt == b.mnt)
}

// replaceKeeps reports whether a file called name may be in a directory a
// forced OutputDir replaces: the safetensors files and index always, and what
// keep allows.
func replaceKeeps(name string, keep func(string) bool) bool {
	return strings.HasSuffix(name, ".safetensors") || name == IndexFile || (keep != nil && keep(name))
}

// CheckReplaceable returns nil when dir, which exists, may be replaced by a
// forced OutputDir, and otherwise an error (wrapping ErrNotReplaceable) that
// names the entry and the rule it breaks. A replaceable directory
//   - is a directory, not a symbolic link to one, and not a mount point
//     (it is on the same mounted filesystem as its parent);
//   - holds only regular files: no subdirectory, symbolic link, FIFO,
//     socket or device;
//   - each on that same mounted filesystem (none is a mount point);
//   - each named *.safetensors, model.safetensors.index.json, or a name
//     keep accepts (nil: none).
//
// An empty directory is replaceable.
func CheckReplaceable(dir string, keep func(name string) bool) error {
	_, err := checkReplaceable(dir, keep)
	return err
}

// checkReplaceable is CheckReplaceable returning dir's identity.
func checkReplaceable(dir string, keep func(name string) bool) (fileID, error) {
	refuse := func(format string, args ...any) (fileID, error) {
		return fileID{}, fmt.Errorf("refusing to replace output %s: %s (%w)", dir, fmt.Sprintf(format, args...), ErrNotReplaceable)
	}
	fi, id, err := lstatID(dir)
	if err != nil {
		return fileID{}, fmt.Errorf("output %s: %w", dir, err)
	}
	if !fi.IsDir() {
		if fi.Mode()&fs.ModeSymlink != 0 {
			to, _ := os.Readlink(dir)
			return refuse("it is a symbolic link (to %s), not a directory", quote.Name(to))
		}
		return refuse("it is %s, not a directory", kindOf(fi.Mode()))
	}
	parent := filepath.Dir(dir)
	_, pid, err := lstatID(parent)
	if err != nil {
		return fileID{}, fmt.Errorf("output %s: its parent: %w", dir, err)
	}
	if !sameMount(pid, id) {
		return refuse("it is a mount point")
	}
	names, err := readNames(dir)
	if err != nil {
		return fileID{}, fmt.Errorf("output %s: %w", dir, err)
	}
	for _, name := range names {
		if err := checkEntry(dir, id, name, keep); err != nil {
			return refuse("%v", err)
		}
	}
	return id, nil
}

// checkEntry checks one entry of a directory to replace, whose identity is
// dirID, against the rule of CheckReplaceable. Its messages escape the
// entry's name: it comes from the disk, not from the user.
func checkEntry(dir string, dirID fileID, name string, keep func(string) bool) error {
	fi, id, err := lstatID(filepath.Join(dir, name))
	if err != nil {
		return quote.PathError(err)
	}
	// The rule sees the name as it is on disk; only the messages quote it.
	shown := quote.Name(name)
	switch {
	case fi.IsDir():
		return fmt.Errorf("it holds %s, a directory (a checkpoint directory holds only files)", shown)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("it holds %s, %s (a checkpoint directory holds only regular files)", shown, kindOf(fi.Mode()))
	case !sameMount(dirID, id):
		return fmt.Errorf("its entry %s is a mount point", shown)
	case !replaceKeeps(name, keep):
		return fmt.Errorf("it holds %s, which is not a checkpoint file", shown)
	}
	return nil
}

// removeReplaced deletes dir, a replaced output moved aside, whose identity
// before the move was id: every entry is checked against the rule of
// CheckReplaceable before any is unlinked, each again just before, and dir
// itself is removed with rmdir, so nothing mounted, linked or created in it
// meanwhile is ever reached. An entry that breaks the rule stops it.
func removeReplaced(dir string, id fileID, keep func(string) bool) error {
	if _, now, err := lstatID(dir); err != nil {
		return err
	} else if now.dev != id.dev || now.ino != id.ino {
		return fmt.Errorf("%s is no longer the directory that was moved there", dir)
	}
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	// Every entry first, so that a refusal leaves the directory whole...
	for _, name := range names {
		if err := checkEntry(dir, id, name, keep); err != nil {
			return fmt.Errorf("%s: %v", dir, err)
		}
	}
	// ... and each again just before it goes.
	for _, name := range names {
		if err := checkEntry(dir, id, name, keep); err != nil {
			return fmt.Errorf("%s: %v", dir, err)
		}
		path := filepath.Join(dir, name)
		// unlink, unlike os.Remove, never removes a directory.
		if err := unix.Unlink(path); err != nil {
			return fmt.Errorf("removing %s: %w", quote.Name(path), err)
		}
	}
	if err := unix.Rmdir(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// kindOf names what a non-directory mode is, for messages.
func kindOf(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	}
	return "an irregular file"
}

// Leftovers lists the temporary (.BASE.tmp-*) and moved-aside (.BASE.old-*)
// directories that OutputDirs for target left beside it: a run killed
// outright (SIGKILL, a crash, a power cut) cannot remove them. They may also
// belong to a run still going, so they are only listed, never removed here.
func Leftovers(target string) ([]string, error) {
	target = filepath.Clean(target)
	parent, base := filepath.Dir(target), filepath.Base(target)
	ents, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking for leftovers of %s: %w", target, err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() && (strings.HasPrefix(n, "."+base+".tmp-") || strings.HasPrefix(n, "."+base+".old-")) {
			out = append(out, filepath.Join(parent, n))
		}
	}
	return out, nil
}
