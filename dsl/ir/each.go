package ir

import (
	"maps"
	"slices"
)

// ConfigEach is a config `each v: L <-> R, ... { ... }`: its rules apply to
// every node of the config that a left pattern matches (import) or a right
// pattern matches (export). A rule under it writes its paths, and its
// expressions their names, with the first segment "{v}" standing for the
// node, on the side the path is on (see Bind).
type ConfigEach struct {
	Var   string
	Nodes []NodePair
	Pos   Pos
}

// NodePair is one `L <-> R` of an each: patterns whose "*" segments match
// any key of a map, as many on the right as on the left, bound in order.
type NodePair struct {
	Left, Right Path
}

// Node is one node an each matched, as a path on each side.
type Node struct {
	Left, Right []string
}

// Placeholder is how a path of a rule under the each names the node: its
// first segment.
func (e *ConfigEach) Placeholder() string { return "{" + e.Var + "}" }

// Match returns the nodes of doc the each's patterns match: doc is the left
// config (right false) or the right one (right true). Keys are visited in
// sorted order, the pairs in their order; a node two pairs match is listed
// once.
func (e *ConfigEach) Match(doc map[string]any, right bool) []Node {
	var out []Node
	for _, p := range e.Nodes {
		from, to := p.Left.Segs, p.Right.Segs
		if right {
			from, to = to, from
		}
		for _, keys := range matchKeys(doc, from, nil) {
			n := Node{Left: fill(from, keys), Right: fill(to, keys)}
			if right {
				n.Left, n.Right = n.Right, n.Left
			}
			if !slices.ContainsFunc(out, func(o Node) bool { return slices.Equal(o.Left, n.Left) }) {
				out = append(out, n)
			}
		}
	}
	return out
}

// matchKeys returns, for each way pattern matches a map node of doc, the
// keys its "*" segments took.
func matchKeys(doc any, pattern []string, keys []string) [][]string {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	if len(pattern) == 0 {
		return [][]string{slices.Clone(keys)}
	}
	if pattern[0] != "*" {
		v, ok := m[pattern[0]]
		if !ok {
			return nil
		}
		return matchKeys(v, pattern[1:], keys)
	}
	var out [][]string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, matchKeys(m[k], pattern[1:], append(keys, k))...)
	}
	return out
}

// fill replaces the "*" segments of pattern with keys, in order.
func fill(pattern, keys []string) []string {
	out := slices.Clone(pattern)
	i := 0
	for j, s := range out {
		if s == "*" && i < len(keys) {
			out[j] = keys[i]
			i++
		}
	}
	return out
}

// Bind returns the rule r (which sits under e) for node n: its paths and
// the names its expressions read, with the placeholder replaced by the
// node's path on their side (expressions read the left config). Parts
// that do not name the node are shared with r.
func (e *ConfigEach) Bind(r *ConfigRule, n Node) *ConfigRule {
	ph := e.Placeholder()
	out := *r
	out.Each = nil
	out.Left = bindPath(r.Left, ph, n.Left)
	out.Right = nil
	for _, p := range r.Right {
		out.Right = append(out.Right, bindPath(p, ph, n.Right))
	}
	out.Keys = nil
	for _, p := range r.Keys {
		out.Keys = append(out.Keys, bindPath(p, ph, n.Left))
	}
	out.LeftDefault = e.BindExpr(r.LeftDefault, n.Left)
	out.RightDefault = e.BindExpr(r.RightDefault, n.Left)
	out.ValueExpr = e.BindExpr(r.ValueExpr, n.Left)
	out.When = nil
	for _, w := range r.When {
		out.When = append(out.When, e.BindExpr(w, n.Left))
	}
	return &out
}

func bindPath(p Path, ph string, node []string) Path {
	if len(p.Segs) == 0 || p.Segs[0] != ph {
		return p
	}
	p.Segs = append(slices.Clone(node), p.Segs[1:]...)
	return p
}

// BindExpr returns x with every name that starts with the placeholder read
// at node instead; x itself when it has none.
func (e *ConfigEach) BindExpr(x Expr, node []string) Expr {
	if x == nil || !e.Reads(x) {
		return x
	}
	switch x := x.(type) {
	case *Ref:
		return &Ref{Path: append(slices.Clone(node), x.Path[1:]...), At: x.At}
	case *Unary:
		return &Unary{Op: x.Op, X: e.BindExpr(x.X, node), At: x.At}
	case *Binary:
		return &Binary{Op: x.Op, X: e.BindExpr(x.X, node), Y: e.BindExpr(x.Y, node), At: x.At}
	case *Index:
		return &Index{X: e.BindExpr(x.X, node), I: e.BindExpr(x.I, node), At: x.At}
	case *Local:
		return &Local{Name: x.Name, Def: e.BindExpr(x.Def, node), At: x.At}
	case *Apply:
		out := &Apply{Name: x.Name, Fn: x.Fn, At: x.At}
		for _, a := range x.Args {
			out.Args = append(out.Args, e.BindExpr(a, node))
		}
		return out
	}
	return x
}

// Reads reports whether x reads a name that starts with the placeholder.
func (e *ConfigEach) Reads(x Expr) bool {
	if r, ok := x.(*Ref); ok {
		return len(r.Path) > 0 && r.Path[0] == e.Placeholder()
	}
	return slices.ContainsFunc(Operands(x), e.Reads)
}

// ExpandEach returns the rules with every rule under an each replaced by
// one bound rule per node the each matches in doc (the left config, or
// with right the right one), in place: a rule's bindings follow each other.
func ExpandEach(rules []*ConfigRule, doc map[string]any, right bool) []*ConfigRule {
	nodes := map[*ConfigEach][]Node{}
	out := make([]*ConfigRule, 0, len(rules))
	for _, r := range rules {
		if r.Each == nil {
			out = append(out, r)
			continue
		}
		ns, ok := nodes[r.Each]
		if !ok {
			ns = r.Each.Match(doc, right)
			nodes[r.Each] = ns
		}
		for _, n := range ns {
			out = append(out, r.Each.Bind(r, n))
		}
	}
	return out
}

// Expanded returns m with its config rules expanded on doc (ExpandEach): m
// itself when no rule sits under an each.
func (m *Mapping) Expanded(doc map[string]any, right bool) *Mapping {
	if !slices.ContainsFunc(m.Config, func(r *ConfigRule) bool { return r.Each != nil }) {
		return m
	}
	out := *m
	out.Config = ExpandEach(m.Config, doc, right)
	return &out
}
