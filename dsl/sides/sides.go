// Package sides is the registry of checkpoint side names a .map header may
// name (`left hf`, `right fast_llm`). It is a leaf so that the checker
// (dsl/check) can read it without depending on the engine: each side
// package registers itself with engine/format, which records the name here,
// so the names come from the sides a program links in and from nowhere
// else.
package sides

import "slices"

var names []string

// Register records a side name; registering a name again changes nothing.
func Register(name string) {
	if !slices.Contains(names, name) {
		names = append(names, name)
		slices.Sort(names)
	}
}

// Known lists the registered side names, sorted.
func Known() []string { return slices.Clone(names) }
