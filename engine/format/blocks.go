package format

import "slices"

// BlockSchema is implemented by a side whose config document stores a
// per-layer block layout: the node a .map `cycle` rule names on its right
// side, which holds the repeating pattern of block names and each block's
// own settings. A side that does not implement it cannot be the right side
// of a cycle rule. Paths are below the node, as segments.
type BlockSchema interface {
	// WriteBlocks lays out an empty node for pattern, the shortest
	// repeating pattern of block names (one name: every layer is the same
	// block), with every block empty for the rules to fill.
	WriteBlocks(node map[string]any, pattern []string) BlockLayout
	// ReadBlocks reads a node's layout back. ok is false when the node
	// holds none; problems say what is wrong with one it holds.
	ReadBlocks(node map[string]any) (l BlockLayout, ok bool, problems []BlockProblem)
	// BlockKey splits a rule's path below the node into the block it
	// addresses ("*": every block) and the key within that block; ok is
	// false when the path addresses no block.
	BlockKey(path []string) (block string, key []string, ok bool)
	// BlockPath is where key of block lives below a node laid out as l.
	BlockPath(l BlockLayout, block string, key []string) []string
}

// BlockLayout is a per-layer block layout as one node stores it.
type BlockLayout struct {
	// Pattern is the repeating pattern of block names. ReadBlocks leaves it
	// empty for a single block whose name the document does not store: the
	// caller tells it from the rules.
	Pattern []string
	// Single: the node holds one plain block rather than a pattern.
	Single bool
	// Structure lists the node's own keys (dotted, below the node), which
	// no rule reads: they count as claimed while they are leaves.
	Structure []string
}

// Blocks lists each block name of the pattern once, in pattern order.
func (l BlockLayout) Blocks() []string {
	var out []string
	for _, s := range l.Pattern {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// BlockProblem is one thing wrong with a stored block layout.
type BlockProblem struct {
	Key string // dotted, below the node; "" is the node itself
	Msg string
}
