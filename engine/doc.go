// Package engine turns a checked mapping (dsl/ir) and an input checkpoint
// into a Plan, and runs plans. Planning is pure and deterministic: it reads
// configs and tensor headers only, translates the config (engine/configmap)
// before it plans the tensors, derives the export from the import rules
// (inverse ops in reverse order), and checks everything that can be known
// before a byte is written. Execution streams tensors through the ops in
// chunks under a memory budget and writes the result into a temporary
// directory that is renamed into place only when complete and verified.
//
// The engine never prints: it reports progress as Events to a callback.
package engine

// Direction says which way a mapping runs.
type Direction int

const (
	// Import runs the rules as written: left side to right side.
	Import Direction = iota
	// Export runs the inverse: right side to left side.
	Export
)

func (d Direction) String() string {
	if d == Export {
		return "export"
	}
	return "import"
}
