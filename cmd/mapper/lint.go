package main

import (
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
	"github.com/mapper-dev/mapper/mappings"
)

// mapSource is one .map file to lint or format.
type mapSource struct {
	path string
	src  []byte
	load func() (*ir.Mapping, diag.List) // nil: mappings.LoadFile
}

// runLint implements `mapper lint [--format text|json|github] [FILES|DIRS]`:
// it checks .map files (directories are walked for *.map, skipping hidden
// and testdata directories) or, with no arguments, the built-in mappings,
// and prints every diagnostic on stdout. Exit status: 0 when there is no
// error (warnings allowed), 1 on any error, 2 on a usage error.
func runLint(args []string, stdout, stderr io.Writer) int {
	fl := pflag.NewFlagSet("lint", pflag.ContinueOnError)
	fl.SetOutput(stderr)
	var format string
	fl.Var(newFormat(&format), "format", "output format: text, json or github (workflow annotations)")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mapper lint [--format text|json|github] [FILES|DIRS]\n\n"+
			"Checks .map files; with no arguments, the built-in mappings.\n\nFlags:\n")
		fl.PrintDefaults()
	}
	if code, ok := parseFlags(fl, args, -1); !ok {
		return code
	}
	var inputs []mapSource
	if fl.NArg() == 0 {
		for _, f := range mappings.Builtin() {
			inputs = append(inputs, mapSource{f.Path, f.Source, f.Load})
		}
		for _, f := range mappings.Fragments() {
			inputs = append(inputs, mapSource{path: f.Path, src: f.Source})
		}
	} else {
		var ok bool
		if inputs, ok = readMapFiles(fl.Args(), stderr); !ok {
			return 1
		}
	}
	var all diag.List
	sources := diag.Sources{}
	for _, in := range inputs {
		sources[in.path] = in.src
		if syntax.IsFragmentFile(in.src) {
			// On its own: its rules are checked in the mappings using it.
			all = append(all, dsl.LintFragments(in.path, in.src)...)
			continue
		}
		load := in.load
		if load == nil {
			load = func() (*ir.Mapping, diag.List) { return mappings.LoadFile(in.path, in.src) }
		}
		m, diags := load()
		all = append(all, diags...)
		if m != nil {
			maps.Copy(sources, m.Fragments)
		}
	}
	all = all.Sort()
	err := writeDiagnostics(stdout, format, all, sources)
	if format == "text" && len(all) > 0 {
		fmt.Fprintf(stderr, "%s, %s in %s\n", plural(all.Count(diag.Error), "error"),
			plural(all.Count(diag.Warning), "warning"), plural(len(inputs), "file"))
	}
	if err != nil {
		fmt.Fprintf(stderr, "mapper lint: %v\n", err)
		return 1
	}
	if all.HasErrors() {
		return 1
	}
	return 0
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// mapFiles expands the arguments: a file stands for itself, a directory
// for the *.map files under it (hidden and testdata directories skipped).
// The result is in argument order, each directory's files sorted.
func mapFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		var found []string
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != a && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), ".map") {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// readMapFiles expands and reads the arguments, reporting problems on stderr.
func readMapFiles(args []string, stderr io.Writer) ([]mapSource, bool) {
	paths, err := mapFiles(args)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: %v\n", err)
		return nil, false
	}
	var out []mapSource
	ok := true
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(stderr, "mapper: %v\n", err)
			ok = false
			continue
		}
		out = append(out, mapSource{path: p, src: src})
	}
	return out, ok
}
