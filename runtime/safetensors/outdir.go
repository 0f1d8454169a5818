package safetensors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mapper-dev/mapper/runtime/quote"
)

// OutputDir builds a directory under a temporary name beside its target and
// renames it into place on Commit, so a reader never sees a half-written
// checkpoint and a failed conversion leaves nothing behind.
type OutputDir struct {
	target    string
	tmp       string
	opt       OutputOptions
	committed bool
	aborted   bool
}

// OutputOptions steer an OutputDir.
type OutputOptions struct {
	// Force lets Commit replace an existing target, provided it is a
	// checkpoint directory by the rule of CheckReplaceable.
	Force bool
	// Keep reports whether a file of that name may be in a target Force
	// replaces, besides *.safetensors and the index (nil: no other name).
	Keep func(name string) bool
}

// NewOutputDir prepares to write the directory target. An existing target is
// refused unless opt.Force is set and CheckReplaceable accepts it, in which
// case Commit replaces it (checking it again first). The temporary directory
// is created in target's parent (created if missing) so the final rename
// stays within one filesystem and is atomic.
func NewOutputDir(target string, opt OutputOptions) (*OutputDir, error) {
	target = filepath.Clean(target)
	base := filepath.Base(target)
	if base == "." || base == ".." || base == string(filepath.Separator) {
		return nil, fmt.Errorf("safetensors: output %q: not a usable directory name", target)
	}
	if _, err := os.Lstat(target); err == nil {
		if !opt.Force {
			return nil, fmt.Errorf("safetensors: output %s already exists (use force to replace it)", target)
		}
		// Refused now rather than at Commit, after all the work.
		if err := CheckReplaceable(target, opt.Keep); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors: output: %w", err)
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("safetensors: output: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("safetensors: output: %w", err)
	}
	// MkdirTemp makes it 0700; the result should look like any other directory.
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("safetensors: output: %w", err)
	}
	return &OutputDir{target: target, tmp: tmp, opt: opt}, nil
}

// Path is the temporary directory to write into.
func (o *OutputDir) Path() string { return o.tmp }

// Target is the directory Commit creates.
func (o *OutputDir) Target() string { return o.target }

// Commit flushes every file and directory under Path to stable storage, then
// renames Path to the target and flushes the parent directory so the rename
// itself survives a crash. When forced, an existing target is checked with
// CheckReplaceable just before it is moved aside, and deleted after the
// rename entry by entry, each checked again. Committing twice is a no-op.
func (o *OutputDir) Commit() error {
	switch {
	case o.committed:
		return nil
	case o.aborted:
		return fmt.Errorf("safetensors: output %s: commit after abort", o.target)
	}
	if err := syncTree(o.tmp); err != nil {
		return fmt.Errorf("safetensors: output %s: %w", o.target, err)
	}
	parent := filepath.Dir(o.target)
	aside := ""
	var oldID fileID
	if _, err := os.Lstat(o.target); err == nil {
		if !o.opt.Force {
			return fmt.Errorf("safetensors: output %s appeared while writing (use force to replace it)", o.target)
		}
		// Checked again: the target may have changed since NewOutputDir.
		if oldID, err = checkReplaceable(o.target, o.opt.Keep); err != nil {
			return err
		}
		if aside, err = asideName(parent, filepath.Base(o.target)); err != nil {
			return fmt.Errorf("safetensors: output %s: %w", o.target, err)
		}
		if err := os.Rename(o.target, aside); err != nil {
			return fmt.Errorf("safetensors: output: moving the old %s aside: %w", o.target, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("safetensors: output: %w", err)
	}
	if err := os.Rename(o.tmp, o.target); err != nil {
		if aside != "" {
			// Best effort: put the old output back where it was.
			os.Rename(aside, o.target)
		}
		return fmt.Errorf("safetensors: output: %w", err)
	}
	o.committed = true
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("safetensors: output %s: %w", o.target, err)
	}
	if aside != "" {
		if err := removeReplaced(aside, oldID, o.opt.Keep); err != nil {
			return fmt.Errorf("safetensors: output %s is in place, but the old one, moved aside to %s, was not removed: %w; look at what it holds before removing it", o.target, aside, err)
		}
	}
	return nil
}

// Abort removes the temporary directory. After Commit, or a second time, it
// does nothing.
func (o *OutputDir) Abort() error {
	if o.committed || o.aborted {
		return nil
	}
	o.aborted = true
	if err := os.RemoveAll(o.tmp); err != nil {
		return fmt.Errorf("safetensors: output: %w", err)
	}
	return nil
}

// asideName picks an unused name in parent to move the old target to.
func asideName(parent, base string) (string, error) {
	// MkdirTemp reserves a unique name; removing the empty directory frees it
	// for the rename, which may move a file as well as a directory.
	dir, err := os.MkdirTemp(parent, "."+base+".old-*")
	if err != nil {
		return "", err
	}
	return dir, os.Remove(dir)
}

// syncTree fsyncs every regular file and directory under root, root last.
func syncTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, path)
		case d.Type().IsRegular():
			return syncPath(path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Children before parents: a directory's entry for a subdirectory is
	// only worth flushing once the subdirectory itself is.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncDir(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

func syncPath(path string) error {
	// The output holds side files named by the input's author.
	f, err := os.Open(path)
	if err != nil {
		return quote.PathError(err)
	}
	serr := f.Sync()
	cerr := f.Close()
	if serr != nil {
		return fmt.Errorf("fsync %s: %w", quote.Name(path), serr)
	}
	return quote.PathError(cerr)
}

func syncDir(path string) error { return syncPath(path) }
