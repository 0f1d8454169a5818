package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
)

// Detection is which mapping an input checkpoint needs, and why.
type Detection struct {
	Mapping *ir.Mapping
	// Side is the input's side; Reason says what told the mapping, for
	// people ("config.json: architectures [...], model_type ...").
	Side, Reason string
}

// Detect picks, among candidates, the mapping an input checkpoint needs.
// A checkpoint mapper wrote names the mapping that wrote it
// (format.Carried.Mapping, metadata.mapper.mapping of a Fast-LLM
// checkpoint). Otherwise, on a side whose config says what model it is
// (format.Identified), the mapping is the one whose unconditional left
// constants on those keys (`left architectures = [...]`, `left model_type
// = ...`) the config holds; a mapping declaring none of them is never
// picked. No match, or more than one, is an error that says what the
// config holds.
func Detect(inDir string, candidates []*ir.Mapping) (*Detection, error) {
	var sides []string
	for _, m := range candidates {
		for _, s := range []string{m.Left, m.Right} {
			if !slices.Contains(sides, s) {
				sides = append(sides, s)
			}
		}
	}
	slices.Sort(sides)
	found := format.Detect(inDir, sides...)
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%s does not look like a checkpoint of any side the mappings convert (%s)", inDir, strings.Join(sides, ", "))
	case 1:
	default:
		return nil, fmt.Errorf("%s looks like a checkpoint of several sides (%s); name the mapping", inDir, strings.Join(found, ", "))
	}
	side, _ := format.Lookup(found[0])
	src, err := side.Open(inDir)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if c := src.Carried; c != nil && c.Mapping != "" {
		for _, m := range candidates {
			if m.Name == c.Mapping {
				return &Detection{Mapping: m, Side: src.Format, Reason: fmt.Sprintf("%s records that mapper wrote it with mapping %s", inDir, c.Mapping)}, nil
			}
		}
		return nil, fmt.Errorf("%s records that mapper wrote it with mapping %s, and no known mapping has that name: give its .map file", inDir, c.Mapping)
	}
	id, ok := side.(format.Identified)
	if !ok {
		return nil, fmt.Errorf("cannot tell which mapping %s needs: it is a %s checkpoint that mapper did not write (no record of a mapping), and a %s config does not say what model it is; name the mapping, or give --like with the HF checkpoint it came from",
			inDir, src.Format, src.Format)
	}
	keys := id.IdentityKeys()
	var held []string
	for _, k := range keys {
		if v, ok := src.Config[k]; ok {
			held = append(held, fmt.Sprintf("%s %s", k, ir.FormatValue(v)))
		} else {
			held = append(held, k+" absent")
		}
	}
	var matches []*ir.Mapping
	for _, m := range candidates {
		if m.Left == src.Format && identifies(m, keys, src.Config) {
			matches = append(matches, m)
		}
	}
	reason := fmt.Sprintf("%s: %s", side.ConfigDoc(inDir), strings.Join(held, ", "))
	switch len(matches) {
	case 1:
		return &Detection{Mapping: matches[0], Side: src.Format, Reason: reason}, nil
	case 0:
		return nil, fmt.Errorf("cannot tell which mapping %s needs: %s, which no mapping declares; name the mapping", inDir, reason)
	}
	var names []string
	for _, m := range matches {
		names = append(names, m.Name)
	}
	return nil, fmt.Errorf("cannot tell which mapping %s needs: %s fits %s; name the mapping", inDir, reason, strings.Join(names, " and "))
}

// identifies reports whether m declares at least one unconditional left
// constant on the identity keys, and cfg holds every one (an optional one
// may be absent).
func identifies(m *ir.Mapping, keys []string, cfg map[string]any) bool {
	declared := false
	for _, r := range m.Config {
		if r.Kind != ir.ConfigLeftConst || r.ValueExpr != nil || len(r.When) > 0 || r.Variant != "" || len(r.Left.Segs) != 1 || !slices.Contains(keys, r.Left.Segs[0]) {
			continue
		}
		declared = true
		v, ok := cfg[r.Left.Segs[0]]
		if !ok && r.Optional {
			continue
		}
		if !ok || !ir.ValuesEqual(v, r.Value) {
			return false
		}
	}
	return declared
}
