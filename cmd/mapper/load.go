package main

import (
	"fmt"
	"maps"
	"os"
	"strings"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/mappings"
)

// loadMapping reads a mapping by built-in name or .map path. It returns the
// mapping's text too, keyed by the file name its positions carry, so that
// diagnostics of the mapping, and of planning and converting with it, can
// show their source lines. A mapping that does not check is an error
// holding its diagnostics (diag.ListError).
func loadMapping(arg string) (*ir.Mapping, diag.Sources, error) {
	var name string
	var src []byte
	var m *ir.Mapping
	var diags diag.List
	if strings.HasSuffix(arg, ".map") || strings.ContainsRune(arg, os.PathSeparator) {
		b, err := os.ReadFile(arg)
		if err != nil {
			return nil, nil, err
		}
		name, src = arg, b
		m, diags = mappings.LoadFile(name, src)
	} else {
		f, ok := mappings.Lookup(arg)
		if !ok {
			return nil, nil, fmt.Errorf("no built-in mapping %q (built in: %s); give a .map file path for your own", arg, strings.Join(builtinNames(), ", "))
		}
		name, src = f.Path, f.Source
		m, diags = f.Load()
	}
	sources := diag.Sources{name: src}
	if m != nil {
		maps.Copy(sources, m.Fragments)
	}
	if err := diags.Err(); err != nil {
		return nil, sources, err
	}
	return m, sources, nil
}

// autoMapping is the MAPPING argument that asks for detection.
const autoMapping = "auto"

// resolveMapping loads the mapping a command names. "auto" picks, among
// the built-in ones, the mapping the input in needs (engine.Detect: by the
// architectures and model_type the mappings declare, or by the mapping a
// Fast-LLM checkpoint records), and returns the line saying which for
// stderr. When in does not tell (a Fast-LLM checkpoint with no record),
// the --like checkpoint like (when not "") is asked instead: it is the one
// in was converted or trained from.
func resolveMapping(arg, in, like string) (*ir.Mapping, diag.Sources, string, error) {
	if arg != autoMapping {
		m, src, err := loadMapping(arg)
		return m, src, "", err
	}
	var all []*ir.Mapping
	sources := diag.Sources{}
	for _, f := range mappings.Builtin() {
		m, src, err := loadMapping(f.Name)
		maps.Copy(sources, src)
		if err != nil {
			return nil, sources, "", err
		}
		all = append(all, m)
	}
	d, err := engine.Detect(in, all)
	if err != nil && like != "" {
		d, err = engine.Detect(like, all)
	}
	if err != nil {
		return nil, sources, "", fmt.Errorf("auto: %w (built in: %s)", err, strings.Join(builtinNames(), ", "))
	}
	f, _ := mappings.Lookup(d.Mapping.Name)
	return d.Mapping, sources, fmt.Sprintf("mapper: auto: mapping %s (%s), for %s", d.Mapping.Name, f.Path, d.Reason), nil
}

func builtinNames() []string {
	var out []string
	for _, f := range mappings.Builtin() {
		out = append(out, f.Name)
	}
	return out
}
