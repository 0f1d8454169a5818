package fastllm

import (
	"fmt"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
)

// Fast-LLM's decoder stores its blocks as {type: pattern, pattern: [names],
// blocks: {name: {...}}}, or as one plain {type: fixed, block: {...}} when
// every layer is the same block (both targets write the type). Rules
// address a block's keys as blocks.<name>.<key> below the node whichever
// way it is stored, so one .map file serves both.

var _ format.BlockSchema = Side{}

// WriteBlocks implements format.BlockSchema.
func (Side) WriteBlocks(node map[string]any, pattern []string) format.BlockLayout {
	l := format.BlockLayout{Pattern: pattern, Single: len(pattern) == 1}
	if l.Single {
		node["type"], node["block"] = "fixed", map[string]any{}
		return l
	}
	names := make([]any, len(pattern))
	for i, s := range pattern {
		names[i] = s
	}
	blocks := map[string]any{}
	for _, b := range l.Blocks() {
		blocks[b] = map[string]any{}
	}
	node["type"], node["pattern"], node["blocks"] = "pattern", names, blocks
	return l
}

// ReadBlocks implements format.BlockSchema.
func (Side) ReadBlocks(node map[string]any) (format.BlockLayout, bool, []format.BlockProblem) {
	if p, ok := node["pattern"]; ok {
		l, ok, problems := readPattern(node, p)
		return l, ok, append(problems, checkType(node, "pattern")...)
	}
	if _, ok := node["block"]; ok {
		l := format.BlockLayout{Single: true, Structure: []string{"block"}}
		if _, typed := node["type"]; typed {
			l.Structure = []string{"type", "block"}
		}
		return l, true, checkType(node, "fixed")
	}
	return format.BlockLayout{}, false, []format.BlockProblem{{Msg: "has neither a pattern nor a block"}}
}

// checkType checks the node's type, when it has one, against its layout.
func checkType(node map[string]any, want string) []format.BlockProblem {
	if t, ok := node["type"]; ok && t != want {
		return []format.BlockProblem{{Key: "type", Msg: fmt.Sprintf("is %s, but the node is laid out as %s", ir.FormatValue(t), want)}}
	}
	return nil
}

// readPattern reads a pattern node: every name it lists must be a string
// and have its block.
func readPattern(node map[string]any, pattern any) (format.BlockLayout, bool, []format.BlockProblem) {
	var l format.BlockLayout
	var problems []format.BlockProblem
	list, _ := pattern.([]any)
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			problems = append(problems, format.BlockProblem{Key: "pattern", Msg: fmt.Sprintf("holds %s, not a block name", ir.FormatValue(x))})
			break
		}
		l.Pattern = append(l.Pattern, s)
	}
	if len(l.Pattern) == 0 {
		problems = append(problems, format.BlockProblem{Key: "pattern", Msg: "is empty or not a list"})
	}
	blocks, _ := node["blocks"].(map[string]any)
	l.Structure = []string{"type", "pattern"}
	for _, b := range l.Blocks() {
		if _, ok := blocks[b]; !ok {
			problems = append(problems, format.BlockProblem{Key: "blocks." + b, Msg: "missing; the pattern names it"})
		}
		l.Structure = append(l.Structure, "blocks."+b)
	}
	return l, true, problems
}

// BlockKey implements format.BlockSchema.
func (Side) BlockKey(path []string) (string, []string, bool) {
	if len(path) < 2 || path[0] != "blocks" {
		return "", nil, false
	}
	return path[1], path[2:], true
}

// BlockPath implements format.BlockSchema.
func (Side) BlockPath(l format.BlockLayout, block string, key []string) []string {
	if l.Single {
		return append([]string{"block"}, key...)
	}
	return append([]string{"blocks", block}, key...)
}
