package configmap

import (
	"slices"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
)

// blockNode is the right-side node a cycle rule manages, laid out as the
// right side's format.BlockSchema stores it.
type blockNode struct {
	rule   *ir.ConfigRule
	path   []string
	layout format.BlockLayout
}

// resolver expands right paths over block nodes and wildcards.
type resolver struct {
	doc    map[string]any
	schema format.BlockSchema // nil when the right side stores no blocks
	blocks []*blockNode
}

// node returns the block node a cycle rule manages, nil when it has none.
func (r *resolver) node(rule *ir.ConfigRule) *blockNode {
	for _, n := range r.blocks {
		if n.rule == rule {
			return n
		}
	}
	return nil
}

// resolve returns the concrete paths a right path stands for. ok is false
// when it names a block the node does not have (the value has no place).
func (r *resolver) resolve(segs []string) (paths [][]string, ok bool) {
	for _, n := range r.blocks {
		k := len(n.path)
		if len(segs) <= k || !slices.Equal(segs[:k], n.path) {
			continue
		}
		block, key, ok := r.schema.BlockKey(segs[k:])
		if !ok {
			continue
		}
		if block == "*" {
			for _, b := range n.layout.Blocks() {
				paths = append(paths, join(n.path, r.schema.BlockPath(n.layout, b, key)))
			}
			return paths, true
		}
		if !slices.Contains(n.layout.Pattern, block) {
			return nil, false
		}
		return [][]string{join(n.path, r.schema.BlockPath(n.layout, block, key))}, true
	}
	return r.expandWildcards(segs), true
}

// expandWildcards expands "*" segments over the keys present in the document.
func (r *resolver) expandWildcards(segs []string) [][]string {
	i := slices.Index(segs, "*")
	if i < 0 {
		return [][]string{segs}
	}
	v, _ := ir.LookupPath(r.doc, segs[:i])
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out [][]string
	for _, k := range keys {
		out = append(out, r.expandWildcards(join(segs[:i], []string{k}, segs[i+1:]))...)
	}
	return out
}

// singleBlockName decides which block a plain single block is: the first
// table entry whose block-specific rules all find their keys, preferring
// entries that have such rules, else the rule's declared Single.
func (r *resolver) singleBlockName(m *ir.Mapping, node *blockNode) string {
	k := len(node.path)
	fallback := ""
	for _, pair := range node.rule.ValueMap {
		name, _ := pair.Right.(string)
		specific, present := 0, 0
		for _, rule := range m.Config {
			if rule.Kind != ir.ConfigRename {
				continue
			}
			for _, rp := range rule.Right {
				s := rp.Segs
				if len(s) <= k || !slices.Equal(s[:k], node.path) {
					continue
				}
				if block, key, ok := r.schema.BlockKey(s[k:]); ok && block == name && len(key) > 0 {
					specific++
					if _, ok := ir.LookupPath(r.doc, join(node.path, r.schema.BlockPath(node.layout, name, key))); ok {
						present++
					}
				}
			}
		}
		if specific > 0 && specific == present {
			return name
		}
		if specific == 0 && fallback == "" {
			fallback = name
		}
	}
	if fallback != "" {
		return fallback
	}
	return node.rule.Single
}

// shortestCycle returns the shortest prefix p with names[i] == p[i % len(p)].
func shortestCycle(names []string) []string {
	for n := 1; n <= len(names); n++ {
		ok := true
		for i := n; i < len(names) && ok; i++ {
			ok = names[i] == names[i%n]
		}
		if ok {
			return slices.Clone(names[:n])
		}
	}
	return names
}
