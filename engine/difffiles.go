package engine

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/quote"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// FileKind classifies one file of a comparison.
type FileKind int

const (
	// FileIdentical: the same bytes (cmp agrees).
	FileIdentical FileKind = iota
	// FileDiffers: both have it, with other bytes; Detail says what.
	FileDiffers
	// FileOnlyInA / FileOnlyInB: the file is missing on one side.
	FileOnlyInA
	FileOnlyInB
)

func (k FileKind) String() string {
	return [...]string{"identical", "differs", "only in A", "only in B"}[k]
}

// FileDiff is the comparison of one file of the two directories.
type FileDiff struct {
	Name   string
	Kind   FileKind
	Detail string
}

// diffFiles compares, file by file, two checkpoints of the same side: what
// the tensor comparison cannot see. A weight file is compared by its header
// (its __metadata__ named when that is what differs) and the tensors in it;
// any other file (config, index, metadata.yaml, side files) by its bytes,
// streamed. Subdirectories are not compared.
func diffFiles(sa, sb *format.Source, tensors []TensorDiff) ([]FileDiff, error) {
	na, err := fileNames(sa.Dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint a: %w", err)
	}
	nb, err := fileNames(sb.Dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint b: %w", err)
	}
	// The weight files of each side, by name, and which tensors differ.
	weights := func(s *format.Source) map[string]*safetensors.File {
		m := map[string]*safetensors.File{}
		for _, f := range s.Checkpoint.Files {
			m[filepath.Base(f.Path)] = f
		}
		return m
	}
	wa, wb := weights(sa), weights(sb)
	differs := map[string]bool{}
	for _, d := range tensors {
		if d.Kind != Identical {
			differs[d.Name] = true
		}
	}
	var out []FileDiff
	for _, name := range slices.Sorted(maps.Keys(union(na, nb))) {
		switch {
		case !na[name]:
			out = append(out, FileDiff{Name: name, Kind: FileOnlyInB})
			continue
		case !nb[name]:
			out = append(out, FileDiff{Name: name, Kind: FileOnlyInA})
			continue
		}
		d := FileDiff{Name: name}
		var err error
		if fa, fb := wa[name], wb[name]; fa != nil && fb != nil {
			err = fault.Guard(func() error {
				d.Kind, d.Detail = compareWeightFiles(sa, fa, fb, differs)
				return nil
			})
		} else {
			d.Kind, d.Detail, err = compareBytes(sa.Dir, sb.Dir, name)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func union(a, b map[string]bool) map[string]bool {
	u := maps.Clone(a)
	maps.Copy(u, b)
	return u
}

// fileNames lists the entries of dir that are files or links (what cmp
// compares), not directories.
func fileNames(dir string) (map[string]bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range ents {
		if !e.IsDir() {
			out[e.Name()] = true
		}
	}
	return out, nil
}

// compareWeightFiles compares two weight files of the same name: equal
// headers and identical tensors make identical files (a valid file is its
// header and its tensors, nothing else).
func compareWeightFiles(sa *format.Source, fa, fb *safetensors.File, differs map[string]bool) (FileKind, string) {
	if !format.SameFileMetadata(fa.Metadata, fb.Metadata) {
		return FileDiffers, fmt.Sprintf("__metadata__ %s vs %s", format.DescribeFileMetadata(fa.Metadata, 120), format.DescribeFileMetadata(fb.Metadata, 120))
	}
	if !bytes.Equal(fa.Header(), fb.Header()) {
		return FileDiffers, "header differs (tensors, their order or offsets)"
	}
	var bad []string
	for _, t := range sa.Tensors {
		if t.File == fa && differs[t.Name] {
			bad = append(bad, t.Name)
		}
	}
	if len(bad) > 0 {
		return FileDiffers, fmt.Sprintf("tensor data differs (%d tensors)", len(bad))
	}
	return FileIdentical, ""
}

// compareBytes compares the file name of two directories, streamed; for
// JSON documents that differ it also says whether the content is the same
// (a config.json written in another form).
func compareBytes(da, db, name string) (FileKind, string, error) {
	ra, err := safetensors.OpenInput(da, name)
	if err != nil {
		return 0, "", err
	}
	defer ra.Close()
	rb, err := safetensors.OpenInput(db, name)
	if err != nil {
		return 0, "", err
	}
	defer rb.Close()
	same, size, err := sameReaders(ra, rb)
	if err != nil {
		return 0, "", fmt.Errorf("comparing %s: %w", quote.Name(name), err)
	}
	if same {
		return FileIdentical, "", nil
	}
	detail := "bytes differ"
	if size[0] != size[1] {
		detail = fmt.Sprintf("bytes differ (%d vs %d bytes)", size[0], size[1])
	}
	if strings.HasSuffix(name, ".json") && max(size[0], size[1]) <= safetensors.MaxDocBytes {
		if sameJSON(da, db, name) {
			detail += "; the same JSON content"
		}
	}
	return FileDiffers, detail, nil
}

// sameReaders compares two files to their ends.
func sameReaders(a, b *os.File) (bool, [2]int64, error) {
	var size [2]int64
	for i, f := range []*os.File{a, b} {
		st, err := f.Stat()
		if err != nil {
			return false, size, err
		}
		size[i] = st.Size()
	}
	if size[0] != size[1] {
		return false, size, nil
	}
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		n, errA := io.ReadFull(a, ba)
		m, errB := io.ReadFull(b, bb)
		if n != m || !bytes.Equal(ba[:n], bb[:m]) {
			return false, size, nil
		}
		if errA == io.EOF || errA == io.ErrUnexpectedEOF {
			return errB == io.EOF || errB == io.ErrUnexpectedEOF, size, nil
		}
		if errA != nil {
			return false, size, errA
		}
		if errB != nil {
			return false, size, errB
		}
	}
}

func sameJSON(da, db, name string) bool {
	read := func(dir string) (any, bool) {
		data, err := safetensors.ReadInput(dir, name, safetensors.MaxDocBytes)
		if err != nil {
			return nil, false
		}
		v, err := pyjson.Decode(data)
		return v, err == nil
	}
	va, okA := read(da)
	vb, okB := read(db)
	if !okA || !okB {
		return false
	}
	ea, errA := pyjson.Encode(va, -1, true)
	eb, errB := pyjson.Encode(vb, -1, true)
	return errA == nil && errB == nil && bytes.Equal(ea, eb)
}
