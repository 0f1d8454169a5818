// Package sides is the registry of checkpoint side names a .map header may
// name (`left hf`, `right fast_llm`), and of the targets each side knows
// (`right fast_llm target "0.4.0"`). It is a leaf so that the checker
// (dsl/check) can read it without depending on the engine: each side
// package registers itself with engine/format, which records the name and
// the targets here, so they come from the sides a program links in and
// from nowhere else.
package sides

import "slices"

var (
	names   []string
	targets = map[string][]string{}
	defs    = map[string]string{}
)

// Register records a side name; registering a name again changes nothing.
func Register(name string) {
	if !slices.Contains(names, name) {
		names = append(names, name)
		slices.Sort(names)
	}
}

// RegisterTargets records the targets a side knows and the one a header
// that names none gets (def, one of them; "" when the side has none).
func RegisterTargets(side string, known []string, def string) {
	targets[side] = slices.Clone(known)
	defs[side] = def
}

// Known lists the registered side names, sorted.
func Known() []string { return slices.Clone(names) }

// Targets lists the targets a side knows, in the order it registered them
// (none for a side without targets).
func Targets(side string) []string { return slices.Clone(targets[side]) }

// DefaultTarget is the target of a side whose header line names none; ""
// when the side has no targets.
func DefaultTarget(side string) string { return defs[side] }
