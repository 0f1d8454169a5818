package configmap

import (
	"slices"

	"github.com/mapper-dev/mapper/dsl/ir"
)

// blockNode is the right-side node a cycle rule manages: a decoder with
// either a pattern of named blocks or a single plain block.
type blockNode struct {
	rule   *ir.ConfigRule
	path   []string
	names  []string // the pattern (import) / the pattern read back (export)
	single string   // the block's name when the node holds one plain block
}

func (n *blockNode) isSingle() bool { return n.single != "" }

// distinct lists each block name once, in pattern order.
func (n *blockNode) distinct() []string {
	if n.isSingle() {
		return []string{n.single}
	}
	var out []string
	for _, s := range n.names {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// resolver expands right paths over block nodes and wildcards.
type resolver struct {
	doc    map[string]any
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
		if len(segs) > k+1 && slices.Equal(segs[:k], n.path) && segs[k] == "blocks" {
			name, rest := segs[k+1], segs[k+2:]
			if n.isSingle() {
				if name != "*" && name != n.single {
					return nil, false
				}
				return [][]string{join(n.path, []string{"block"}, rest)}, true
			}
			if name != "*" {
				if !slices.Contains(n.names, name) {
					return nil, false
				}
				return [][]string{segs}, true
			}
			for _, b := range n.distinct() {
				paths = append(paths, join(n.path, []string{"blocks", b}, rest))
			}
			return paths, true
		}
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
func singleBlockName(m *ir.Mapping, cycle *ir.ConfigRule, node *blockNode, right map[string]any) string {
	k := len(node.path)
	fallback := ""
	for _, pair := range cycle.ValueMap {
		name, _ := pair.Right.(string)
		specific, present := 0, 0
		for _, r := range m.Config {
			if r.Kind != ir.ConfigRename {
				continue
			}
			for _, rp := range r.Right {
				s := rp.Segs
				if len(s) > k+2 && slices.Equal(s[:k], node.path) && s[k] == "blocks" && s[k+1] == name {
					specific++
					if _, ok := ir.LookupPath(right, join(node.path, []string{"block"}, s[k+2:])); ok {
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
	return cycle.Single
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

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}
