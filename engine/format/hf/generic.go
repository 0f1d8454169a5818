package hf

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/pyjson"
)

// genericText is the list of transformers' generic config keys, kept as
// data with its sources (generic_keys.txt).
//
//go:embed generic_keys.txt
var genericText string

// generic is genericText parsed; a malformed list is a programming error
// that every test run finds.
var generic = mustParseGeneric(genericText)

// GenericKeys implements format.GenericConfig: the keys of config.json that
// are transformers', not the model's.
func (Side) GenericKeys() format.GenericKeys { return generic }

func mustParseGeneric(text string) format.GenericKeys {
	g, err := parseGeneric(text)
	if err != nil {
		panic("hf: generic_keys.txt: " + err.Error())
	}
	return g
}

// parseGeneric reads the list: NAME, or NAME = JSON for a pinned key, one
// per line; # starts a comment.
func parseGeneric(text string) (format.GenericKeys, error) {
	g := format.GenericKeys{What: "transformers' generic config keys"}
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		if j := strings.Index(line, "#"); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k := format.GenericKey{Name: line}
		if name, val, ok := strings.Cut(line, "="); ok {
			v, err := pyjson.Decode([]byte(strings.TrimSpace(val)))
			if err != nil {
				return g, fmt.Errorf("line %d: %w", i+1, err)
			}
			k = format.GenericKey{Name: strings.TrimSpace(name), Pinned: true, Only: v}
		}
		if strings.ContainsAny(k.Name, " \t") || k.Name == "" {
			return g, fmt.Errorf("line %d: %q is not a key name", i+1, k.Name)
		}
		if seen[k.Name] {
			return g, fmt.Errorf("line %d: %s is listed twice", i+1, k.Name)
		}
		seen[k.Name] = true
		g.Keys = append(g.Keys, k)
	}
	return g, nil
}
