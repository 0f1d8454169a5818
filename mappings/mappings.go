// Package mappings holds the built-in .map files, embedded in the binary so
// that `mapper apply gpt_oss in/ out/` works by name from anywhere.
package mappings

import (
	"embed"
	"path"
	"sort"
	"strings"
)

//go:embed *.map
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
