package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
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

// autoMapping is the MAPPING argument that asks for detection.
const autoMapping = "auto"

// resolveMapping loads the mapping a command names. "auto" picks, among
// the built-in ones, the mapping the input in needs (engine.Detect: by the
// architectures and model_type the mappings declare, or by the mapping a
// Fast-LLM checkpoint records), and says which on stderr.
func resolveMapping(arg, in string, stderr io.Writer) (*ir.Mapping, bool) {
	if arg != autoMapping {
		return loadMapping(arg, stderr)
	}
	var all []*ir.Mapping
	for _, f := range mappings.Builtin() {
		m, ok := loadMapping(f.Name, stderr)
		if !ok {
			return nil, false
		}
		all = append(all, m)
	}
	d, err := engine.Detect(in, all)
	if err != nil {
		fmt.Fprintf(stderr, "mapper: auto: %v (built in: %s)\n", err, strings.Join(builtinNames(), ", "))
		return nil, false
	}
	f, _ := mappings.Lookup(d.Mapping.Name)
	fmt.Fprintf(stderr, "mapper: auto: mapping %s (%s), for %s\n", d.Mapping.Name, f.Path, d.Reason)
	return d.Mapping, true
}

func builtinNames() []string {
	var out []string
	for _, f := range mappings.Builtin() {
		out = append(out, f.Name)
	}
	return out
}
