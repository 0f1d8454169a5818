package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/mappings"
)

// loadMapping reads a mapping by built-in name or .map path, printing its
// diagnostics to stderr when it does not check.
func loadMapping(arg string, stderr io.Writer) (*ir.Mapping, bool) {
	var name string
	var src []byte
	if strings.HasSuffix(arg, ".map") || strings.ContainsRune(arg, os.PathSeparator) {
		b, err := os.ReadFile(arg)
		if err != nil {
			fmt.Fprintf(stderr, "mapper: %v\n", err)
			return nil, false
		}
		name, src = arg, b
	} else {
		f, ok := mappings.Lookup(arg)
		if !ok {
			fmt.Fprintf(stderr, "mapper: no built-in mapping %q (built in: %s); give a .map file path for your own\n", arg, strings.Join(builtinNames(), ", "))
			return nil, false
		}
		name, src = f.Path, f.Source
	}
	m, diags := dsl.Load(name, src)
	if diags.HasErrors() {
		diag.WriteText(stderr, diags, diag.Sources{name: src})
		return nil, false
	}
	return m, true
}

func builtinNames() []string {
	var out []string
	for _, f := range mappings.Builtin() {
		out = append(out, f.Name)
	}
	return out
}
