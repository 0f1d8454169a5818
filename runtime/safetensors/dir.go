package safetensors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/mapper-dev/mapper/runtime/quote"
)

// Checkpoint is a set of safetensors files making up one model, each tensor
// in exactly one of them.
type Checkpoint struct {
	Dir   string
	Files []*File // in the order they were opened
	// Index is the parsed model.safetensors.index.json, nil when the
	// checkpoint was opened without one.
	Index *Index
	// Unlisted are the *.safetensors files of Dir that the index does not
	// name, sorted; they are not read. Most are leftovers, but some
	// publishers ship one on purpose (Mistral's consolidated.safetensors
	// holds the same weights in its own layout), so this is for the caller
	// to report, not an error. Nil without an index.
	Unlisted []string

	names []string // sorted
	where map[string]*File
}

// OpenDir opens the checkpoint in dir. With a model.safetensors.index.json
// it opens the files the index names and checks that index and files agree
// exactly (other *.safetensors files are left alone and listed in
// Unlisted); without one it opens every *.safetensors file in dir. Every
// file is opened as OpenInput says.
func OpenDir(dir string) (*Checkpoint, error) {
	indexPath := filepath.Join(dir, IndexFile)
	// Only an index that is not there at all means "no index": a dangling
	// link or an unreadable one is an error, not a reason to read every
	// file instead.
	if _, err := os.Lstat(indexPath); errors.Is(err, fs.ErrNotExist) {
		names, err := listSafetensors(dir)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("safetensors: %s: no %s and no *.safetensors files", quote.Name(dir), IndexFile)
		}
		return OpenFiles(dir, names)
	}
	ix, err := ReadIndex(indexPath)
	if err != nil {
		return nil, err
	}
	return openIndexed(dir, ix)
}

func listSafetensors(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", quote.PathError(err))
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".safetensors") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // ReadDir sorts already; say so explicitly
	return names, nil
}

// OpenFiles opens the named files of dir as one checkpoint (Fast-LLM lists its
// files in its own metadata.yaml). Each name must be a plain file name that
// stays inside dir; a tensor present in two files is an error.
func OpenFiles(dir string, names []string) (*Checkpoint, error) {
	c, err := openAll(dir, names, dir)
	if err != nil {
		return nil, err
	}
	for _, f := range c.Files {
		for _, t := range f.Tensors {
			if other, dup := c.where[t.Name]; dup {
				c.Close()
				return nil, &FormatError{File: f.Path, Tensor: t.Name,
					Reason: fmt.Sprintf("tensor in two shards (also in %s)", quote.Name(other.Path))}
			}
			c.where[t.Name] = f
		}
	}
	c.finish()
	return c, nil
}

func openIndexed(dir string, ix *Index) (*Checkpoint, error) {
	indexPath := filepath.Join(dir, IndexFile)
	seen := make(map[string]bool)
	var names []string
	for _, file := range ix.WeightMap {
		if !seen[file] {
			seen[file] = true
			names = append(names, file)
		}
	}
	sort.Strings(names)
	c, err := openAll(dir, names, indexPath)
	if err != nil {
		return nil, err
	}
	c.Index = ix
	all, err := listSafetensors(dir)
	if err != nil {
		c.Close()
		return nil, err
	}
	for _, name := range all {
		if !seen[name] {
			c.Unlisted = append(c.Unlisted, name)
		}
	}
	byName := make(map[string]*File, len(c.Files))
	for i, f := range c.Files {
		byName[names[i]] = f
	}
	fail := func(err error) (*Checkpoint, error) {
		c.Close()
		return nil, err
	}
	for _, f := range c.Files {
		for _, t := range f.Tensors {
			listed, ok := ix.WeightMap[t.Name]
			if !ok {
				return fail(&FormatError{File: f.Path, Tensor: t.Name, Reason: "tensor absent from " + quote.Name(indexPath)})
			}
			if byName[listed] != f {
				return fail(&FormatError{File: f.Path, Tensor: t.Name,
					Reason: fmt.Sprintf("tensor in two shards (%s maps it to %s)", quote.Name(indexPath), quote.Name(listed))})
			}
			c.where[t.Name] = f
		}
	}
	// Every index entry must now be accounted for: an entry whose file
	// lacks the tensor was never put in where.
	missing := make([]string, 0)
	for name := range ix.WeightMap {
		if _, ok := c.where[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		name := missing[0]
		return fail(&FormatError{File: filepath.Join(dir, ix.WeightMap[name]), Tensor: name,
			Reason: fmt.Sprintf("listed in %s but not in the file (%d such tensors)", quote.Name(indexPath), len(missing))})
	}
	c.finish()
	return c, nil
}

// openAll checks and opens every named file of dir; listedIn (the index, or
// dir itself) is where the names came from, for error messages.
func openAll(dir string, names []string, listedIn string) (*Checkpoint, error) {
	c := &Checkpoint{Dir: dir, where: make(map[string]*File)}
	seen := make(map[string]bool)
	for _, name := range names {
		if seen[name] {
			c.Close()
			return nil, fmt.Errorf("safetensors: %s: file %q listed twice", quote.Name(listedIn), name)
		}
		seen[name] = true
		f, err := openIn(dir, name, listedIn)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Files = append(c.Files, f)
	}
	return c, nil
}

// resolveIn checks that name is a plain file name whose file, symlinks
// followed, lies inside dir, and returns dir/name and that file's resolved
// path. The names come from files a checkpoint's author controls; none may
// reach elsewhere on the disk.
func resolveIn(dir, name, listedIn string) (path, real string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("safetensors: %s: unsafe file name %q: %s", quote.Name(listedIn), name, why)
	}
	switch {
	case name == "" || name == ".":
		return bad("empty")
	case filepath.IsAbs(name) || strings.HasPrefix(name, "/"):
		return bad("absolute path")
	case strings.Contains(name, ".."):
		return bad(`contains ".."`)
	case strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, filepath.Separator):
		return bad("contains a path separator")
	case strings.ContainsRune(name, 0):
		return bad("contains a NUL byte")
	}
	path = filepath.Join(dir, name)
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", "", fmt.Errorf("safetensors: %w", quote.PathError(err))
	}
	real, err = filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("safetensors: %s: missing file %q: %w", quote.Name(listedIn), name, quote.PathError(err))
		}
		return "", "", fmt.Errorf("safetensors: %w", quote.PathError(err))
	}
	if !within(realDir, real) && !inHubBlobs(realDir, real) {
		why := fmt.Sprintf("resolves to %s, outside the directory", quote.Name(real))
		if listedIn == dir {
			// A file of the directory, not a name read from a file: name
			// the file.
			return "", "", fmt.Errorf("safetensors: %s: %s", quote.Name(path), why)
		}
		return bad(why)
	}
	return path, real, nil
}

// ResolveIn is the check OpenDir applies to every file name: name must be a
// plain file name whose file, symlinks followed, lies inside dir (or in the
// blob store of a Hugging Face cache snapshot, see inHubBlobs). It returns
// dir/name. OpenInput applies it and opens the file.
func ResolveIn(dir, name string) (string, error) {
	path, _, err := resolveIn(dir, name, dir)
	return path, err
}

// within reports whether path lies strictly inside dir (both resolved).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// inHubBlobs accepts the one layout where a checkpoint's files legitimately
// live outside its directory: a Hugging Face hub cache snapshot,
// <repo>/snapshots/<revision>/, whose files are symlinks into <repo>/blobs/.
// The link targets are made by the hub client, not named by the index, so
// this does not let an index reach anywhere else.
func inHubBlobs(realDir, real string) bool {
	snapshots := filepath.Dir(realDir)
	if filepath.Base(snapshots) != "snapshots" {
		return false
	}
	return within(filepath.Join(filepath.Dir(snapshots), "blobs"), real)
}

func (c *Checkpoint) finish() {
	c.names = make([]string, 0, len(c.where))
	for name := range c.where {
		c.names = append(c.names, name)
	}
	sort.Strings(c.names)
}

// Names lists every tensor of the checkpoint, sorted.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Lookup returns the file holding the named tensor, and the tensor.
func (c *Checkpoint) Lookup(name string) (*File, TensorInfo, bool) {
	f, ok := c.where[name]
	if !ok {
		return nil, TensorInfo{}, false
	}
	t, _ := f.Tensor(name)
	return f, t, true
}

// Unchanged reports the files that changed since they were opened (see
// File.Unchanged): nil when none did.
func (c *Checkpoint) Unchanged() error {
	var first error
	n := 0
	for _, f := range c.Files {
		if err := f.Unchanged(); err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%w (and %d more changed files)", first, n-1)
	}
	return first
}

// Close closes every file of the checkpoint.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.Files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
