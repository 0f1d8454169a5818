// Package mappings holds the built-in .map files, embedded in the binary so
// that `mapper apply gpt_oss in/ out/` works by name from anywhere.
package mappings

import (
	"embed"
	"path"
	"sort"
	"strings"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
)

// files holds the mappings and, under fragments/, the fragment files they
// include (docs/language.md, Fragments).
//
//go:embed *.map fragments/*.map
var files embed.FS

// File is one built-in mapping.
type File struct {
	Name   string // e.g. "gpt_oss"
	Path   string // e.g. "mappings/gpt_oss.map", as diagnostics name it
	Source []byte
}

// Builtin returns every built-in mapping, sorted by name.
func Builtin() []File {
	ents, _ := files.ReadDir(".") // embedded: cannot fail
	var out []File
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		src, _ := files.ReadFile(e.Name())
		out = append(out, File{Name: strings.TrimSuffix(e.Name(), ".map"), Path: path.Join("mappings", e.Name()), Source: src})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the built-in mapping with the given name.
func Lookup(name string) (File, bool) {
	for _, f := range Builtin() {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// Load parses and checks the mapping, its fragments read from the
// embedded files (dsl.LoadFS).
func (f File) Load() (*ir.Mapping, diag.List) {
	return dsl.LoadFS(files, f.Path, f.Source)
}

// LoadFile parses and checks a user's .map file (dsl.LoadUser): an include
// its directory does not hold is read from the built-in fragment files,
// so that a copy of a built-in mapping works wherever it is put.
func LoadFile(filename string, src []byte) (*ir.Mapping, diag.List) {
	return dsl.LoadUser(filename, src, files, "mappings")
}

// Fragments returns the built-in fragment files, sorted by path, for
// `mapper lint` and `mapper fmt`.
func Fragments() []File {
	ents, _ := files.ReadDir("fragments") // embedded: cannot fail
	var out []File
	for _, e := range ents {
		src, _ := files.ReadFile("fragments/" + e.Name())
		out = append(out, File{Name: strings.TrimSuffix(e.Name(), ".map"), Path: path.Join("mappings", "fragments", e.Name()), Source: src})
	}
	return out
}
