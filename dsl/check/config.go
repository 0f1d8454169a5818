package check

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
)

// cruleInfo is one lowered config rule with where it sits.
type cruleInfo struct {
	node   syntax.ConfigItem
	rule   *ir.ConfigRule
	ctx    *ctxInfo
	lefts  []*syntax.Name // the left paths it claims
	rights []*syntax.Name // the right paths it writes (rename, right constant, cycle)
}

func (r *cruleInfo) what() string {
	switch r.rule.Kind {
	case ir.ConfigRename:
		return "rename"
	case ir.ConfigLeftConst:
		return "left constant"
	case ir.ConfigRightConst:
		return "right constant"
	case ir.ConfigKeep:
		return "keep"
	case ir.ConfigIgnore:
		return "ignore"
	case ir.ConfigCycle:
		return "cycle"
	case ir.ConfigRefuse:
		return "refuse"
	}
	return "rule"
}

// eachInfo is one config each: its IR and its node patterns on each side.
type eachInfo struct {
	ir    *ir.ConfigEach
	lefts [][]string
}

// expand returns a path that starts with the node placeholder ({v}) as the
// left patterns it stands for (with their * segments); any other path as is.
func (e *eachInfo) expand(path []string) [][]string {
	if e == nil || len(path) == 0 || path[0] != e.ir.Placeholder() {
		return [][]string{path}
	}
	var out [][]string
	for _, l := range e.lefts {
		out = append(out, append(slices.Clone(l), path[1:]...))
	}
	return out
}

// configEach checks an each's node pairs and lowers its items.
func (c *checker) configEach(it *syntax.ConfigEach, ctx *ctxInfo) {
	if c.each != nil {
		c.errorf(it.Span, "write the inner nodes' keys as paths under the outer node, or use a pattern with several *",
			"an each cannot hold another each (each %s is inside each %s)", it.Var.Name, c.each.ir.Var)
		return
	}
	e := &eachInfo{ir: &ir.ConfigEach{Var: it.Var.Name, Pos: it.Pos}}
	for _, n := range it.Nodes {
		stars := [2]int{}
		for side, name := range []*syntax.Name{n.Left, n.Right} {
			for _, s := range name.Segs {
				switch s.Kind {
				case syntax.SegVar:
					c.errorf(s.Span, "", "node pattern %s: a placeholder cannot stand in a node pattern; * matches any key", name)
				case syntax.SegStar:
					stars[side]++
				}
			}
		}
		if stars[0] != stars[1] {
			c.errorf(n.Span, "each * of the left pattern takes a key that the right pattern's * at the same rank receives",
				"node patterns %s and %s have %d and %d * segments: they must have as many", n.Left, n.Right, stars[0], stars[1])
		}
		e.ir.Nodes = append(e.ir.Nodes, ir.NodePair{Left: pathOf(n.Left), Right: pathOf(n.Right)})
		e.lefts = append(e.lefts, pathOf(n.Left).Segs)
	}
	inner := &ctxInfo{variant: ctx.variant, conds: ctx.conds, when: ctx.when, each: e}
	c.each = e
	c.configItems(it.Items, inner)
	c.each = nil
}

func (c *checker) configItems(items []syntax.ConfigItem, ctx *ctxInfo) {
	top := scope{letLimit: -1}
	for _, it := range items {
		switch it := it.(type) {
		case *syntax.UseItem:
			// dsl.Load puts a fragment's items in the use's place.
			if it.Expanded == nil {
				c.errorf(it.Span, "", "use %s: a fragment is put in place by dsl.Load, not by the check alone", it.Name.Name)
			}
			c.configItems(it.Expanded, ctx)
		case *syntax.ConfigEach:
			c.configEach(it, ctx)
		case *syntax.ConfigWhen:
			id := c.nextCond
			c.nextCond++
			cond := c.expr(it.Cond, top)
			c.cwhens = append(c.cwhens, &cwhenInfo{id: id, cond: cond, ctx: ctx, node: it})
			c.configItems(it.Then, c.branch(ctx, id, cond, false))
			if it.Else != nil {
				c.configItems(it.Else.Items, c.branch(ctx, id, cond, true))
			}
		case *syntax.KeepItem:
			r := &ir.ConfigRule{Kind: ir.ConfigKeep, Pos: it.Pos}
			if it.Ignore {
				r.Kind = ir.ConfigIgnore
			}
			for _, k := range it.Keys {
				p, _ := c.leftPath(k, "config key")
				r.Keys = append(r.Keys, p)
			}
			c.addConfig(it, r, ctx, it.Keys, nil)
		case *syntax.ConstItem:
			r := &ir.ConfigRule{Kind: ir.ConfigLeftConst, Pos: it.Pos, Optional: it.Optional}
			if !isLiteral(it.Value) {
				// A value the left config determines (sqrt(hidden_size)), on
				// either side: a left one is a key the left config states
				// twice (a mirror of another key).
				r.ValueExpr = c.expr(it.Value, top)
			} else {
				r.Value, _ = c.constValue(it.Value, false)
			}
			if it.Right && it.Optional {
				c.errorf(it.Span, "write right "+it.Key.String()+" = ...: an export already accepts a right config that lacks the key",
					"only a left constant may be absent (left P default V)")
			}
			if it.Right {
				r.Kind = ir.ConfigRightConst
				r.Right = []ir.Path{c.rightPath(it.Key)}
				c.addConfig(it, r, ctx, nil, []*syntax.Name{it.Key})
			} else {
				r.Left, _ = c.leftPath(it.Key, "config key")
				c.addConfig(it, r, ctx, []*syntax.Name{it.Key}, nil)
			}
		case *syntax.RefuseItem:
			if len(ctx.when) == 0 && ctx.variant == "" {
				c.errorf(it.Span, "put it under a when (or in a variant) that says which configs it refuses", "a refuse outside any when refuses every config")
			}
			if strings.TrimSpace(it.Message) == "" {
				c.errorf(it.Span, "say why, and what would be needed instead", "a refuse needs a message")
			}
			c.addConfig(it, &ir.ConfigRule{Kind: ir.ConfigRefuse, Pos: it.Pos, Value: it.Message}, ctx, nil, nil)
		case *syntax.RenameItem:
			r := &ir.ConfigRule{Kind: ir.ConfigRename, Pos: it.Pos}
			r.Left, _ = c.leftPath(it.Left, "config key")
			for _, n := range it.Right {
				r.Right = append(r.Right, c.rightPath(n))
			}
			if it.LeftDefault != nil {
				r.LeftDefault = c.expr(it.LeftDefault, top)
			}
			if it.LeftFor != nil {
				r.LeftFor, r.HasLeftFor = c.constValue(it.LeftFor, false)
				// A default that is that very value would make the key
				// read as itself: for says nothing then.
				if lit, ok := r.LeftDefault.(*ir.Literal); ok && r.HasLeftFor && ir.ValuesEqual(lit.Value, r.LeftFor) {
					c.errorf(it.LeftFor.Range(), "leave `for "+ir.FormatValue(r.LeftFor)+"` out, or give the default it stands for",
						"%s is the default itself: for names another value that stands for the default", ir.FormatValue(r.LeftFor))
				}
			}
			if it.RightDefault != nil {
				r.RightDefault = c.expr(it.RightDefault, top)
			}
			if it.Map != nil {
				r.ValueMap = c.valueTable(it.Map, "value map")
			}
			c.addConfig(it, r, ctx, []*syntax.Name{it.Left}, it.Right)
		case *syntax.CycleItem:
			if ctx.each != nil {
				c.errorf(it.Span, "a per-layer list has one place; write the cycle outside the each",
					"a cycle rule cannot sit under each %s", ctx.each.ir.Var)
			}
			r := &ir.ConfigRule{Kind: ir.ConfigCycle, Pos: it.Pos, Verbatim: it.Verbatim}
			r.Left, _ = c.leftPath(it.Left, "config key")
			r.Right = []ir.Path{c.rightPath(it.Right)}
			r.Length = c.expr(it.Length, top)
			r.ValueMap = c.valueTable(it.Table, "cycle table")
			if len(it.Table.Entries) == 0 {
				c.errorf(it.Table.Span, "list each left value with its block name: { sliding_attention = sliding }", "a cycle table needs at least one entry")
			}
			for i, p := range r.ValueMap {
				s, ok := p.Right.(string)
				if !ok {
					c.errorf(it.Table.Entries[i].Right.Range(), "", "a cycle maps to block names, which are strings; got %s", ir.FormatValue(p.Right))
					continue
				}
				if i == 0 {
					r.Single = s
				}
			}
			c.addConfig(it, r, ctx, []*syntax.Name{it.Left}, []*syntax.Name{it.Right})
		}
	}
}

func (c *checker) addConfig(node syntax.ConfigItem, r *ir.ConfigRule, ctx *ctxInfo, lefts, rights []*syntax.Name) {
	r.When = ctx.when
	r.Variant = ctx.variant
	r.End = node.Range().End
	if ctx.each != nil {
		r.Each = ctx.each.ir
	}
	info := &cruleInfo{node: node, rule: r, ctx: ctx, lefts: lefts, rights: rights}
	c.crules = append(c.crules, info)
	c.m.Config = append(c.m.Config, r)
	for _, n := range lefts {
		for _, segs := range ctx.each.expand(nodePath(n, ctx.each)) {
			c.claimList = append(c.claimList, claim{segs: segs, name: n, rule: info})
		}
	}
}

// staticPaths returns a path of rule r as the patterns it stands for: under
// a config each, a path that starts with the node is one pattern per node
// pair (side: the right patterns for a right path).
func staticPaths(r *cruleInfo, n *syntax.Name, right bool) [][]string {
	e := r.ctx.each
	segs := nodePath(n, e)
	if !right {
		return e.expand(segs)
	}
	if e == nil || segs[0] != e.ir.Placeholder() {
		return [][]string{segs}
	}
	var out [][]string
	for _, p := range e.ir.Nodes {
		out = append(out, append(slices.Clone(p.Right.Segs), segs[1:]...))
	}
	return out
}

// nodePath is n's segments with a leading node placeholder of e spelled
// {v}, as in the IR.
func nodePath(n *syntax.Name, e *eachInfo) []string {
	segs := pathOf(n).Segs
	if e != nil && n.Segs[0].Kind == syntax.SegVar && n.Segs[0].Text == e.ir.Var && n.Segs[0].Off == 0 {
		segs[0] = e.ir.Placeholder()
	}
	return segs
}

// anyPair reports whether some pattern of as and some of bs satisfy f.
func anyPair(as, bs [][]string, f func(a, b []string) bool) bool {
	for _, a := range as {
		for _, b := range bs {
			if f(a, b) {
				return true
			}
		}
	}
	return false
}

// valueTable lowers `{ a = b, ... }`; both sides must be one-to-one so that
// the table reads the same in both directions.
func (c *checker) valueTable(t *syntax.ValueTable, what string) []ir.ValuePair {
	var out []ir.ValuePair
	for _, e := range t.Entries {
		l, ok1 := c.constValue(e.Left, true)
		r, ok2 := c.constValue(e.Right, true)
		if !ok1 || !ok2 {
			continue
		}
		for _, p := range out {
			if ir.ValuesEqual(p.Left, l) && what == "value map" {
				c.errorf(e.Left.Range(), "", "%s: %s is mapped twice (also at line %d)", what, ir.FormatValue(l), p.Pos.Line)
			}
			if ir.ValuesEqual(p.Left, l) && what != "value map" {
				c.errorf(e.Left.Range(), "", "%s: %s is listed twice (also at line %d)", what, ir.FormatValue(l), p.Pos.Line)
			}
			if ir.ValuesEqual(p.Right, r) && what == "value map" {
				c.errorf(e.Right.Range(), "a value map must be one-to-one so that the export can invert it",
					"%s: %s is the image of both %s and %s", what, ir.FormatValue(r), ir.FormatValue(p.Left), ir.FormatValue(l))
			}
		}
		out = append(out, ir.ValuePair{Left: l, Right: r, Pos: e.Pos})
	}
	return out
}

// pathsOverlap reports whether two config paths can name the same key (a *
// segment matches any one segment).
func pathsOverlap(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && a[i] != "*" && b[i] != "*" {
			return false
		}
	}
	return true
}

// checkConfig reports keys claimed twice, conflicting writes, and sample
// keys that no rule claims.
func (c *checker) checkConfig() {
	// Each later path is reported once, against the first rule it clashes with.
	done := map[*syntax.Name]bool{}
	for j, b := range c.crules {
		for _, a := range c.crules[:j] {
			if exclusive(a.ctx, b.ctx) {
				continue
			}
			c.leftConflict(a, b, done)
			c.rightConflict(a, b, done)
		}
	}
	for _, s := range c.samples {
		for _, k := range s.keys {
			path := pathOf(k).Segs
			if c.claimed(path) {
				continue
			}
			var cands []string
			for _, cl := range c.claimList {
				cands = append(cands, strings.Join(cl.segs, "."))
			}
			hint := diag.DidYouMean(k.String(), cands)
			if hint == "" {
				hint = fmt.Sprintf("add a config rule for it, or `keep %s` / `ignore %s`", k, k)
			}
			c.errorf(k.Span, hint, "sample %s sets %s, which no config rule claims", s.ir.Name, k)
		}
	}
}

func (c *checker) leftConflict(a, b *cruleInfo, done map[*syntax.Name]bool) {
	for _, na := range a.lefts {
		for _, nb := range b.lefts {
			pa, pb := pathOf(na).Segs, pathOf(nb).Segs
			if done[nb] || !anyPair(staticPaths(a, na, false), staticPaths(b, nb, false), related) {
				continue
			}
			if a.rule.Kind == ir.ConfigLeftConst && b.rule.Kind == ir.ConfigLeftConst && len(pa) == len(pb) {
				if constText(a.rule) == constText(b.rule) {
					continue // the same constant twice says nothing new
				}
				done[nb] = true
				c.errorf(nb.Span, "", "conflicting constants for left key %s: %s here, %s at %s",
					nb, constText(b.rule), constText(a.rule), lineOf(na.Pos, nb.Pos))
				continue
			}
			if (a.rule.Kind == ir.ConfigLeftConst) != (b.rule.Kind == ir.ConfigLeftConst) && len(pa) == len(pb) {
				done[nb] = true
				c.errorf(nb.Span, "a key is either a constant or renamed, not both",
					"left key %s is written by both a %s (%s) and a %s", nb, a.what(), lineOf(na.Pos, nb.Pos), b.what())
				continue
			}
			done[nb] = true
			c.errorf(nb.Span, "every left key must be claimed by exactly one rule (or the rules must sit in exclusive variants or when/else branches)",
				"left key %s is already claimed by the %s at %s (%s)", nb, a.what(), lineOf(na.Pos, nb.Pos), na)
		}
	}
}

func (c *checker) rightConflict(a, b *cruleInfo, done map[*syntax.Name]bool) {
	for _, na := range a.rights {
		for _, nb := range b.rights {
			if done[nb] || !anyPair(staticPaths(a, na, true), staticPaths(b, nb, true), pathsOverlap) {
				continue
			}
			ca, cb := a.rule.Kind == ir.ConfigRightConst, b.rule.Kind == ir.ConfigRightConst
			switch {
			case ca && cb:
				if va, vb := constText(a.rule), constText(b.rule); va != vb {
					done[nb] = true
					c.errorf(nb.Span, "", "conflicting constants for right path %s: %s here, %s at %s (%s)",
						nb, vb, va, lineOf(na.Pos, nb.Pos), na)
				}
			case ca || cb:
				done[nb] = true
				c.errorf(nb.Span, "a path is either a constant or the image of a rename, not both",
					"right path %s is written by both a %s (%s) and a %s", nb, a.what(), lineOf(na.Pos, nb.Pos), b.what())
			default:
				done[nb] = true
				c.errorf(nb.Span, "list several right paths in one rule (a fan-out) when one left key feeds them all",
					"right path %s is already written by the %s at %s (%s)", nb, a.what(), lineOf(na.Pos, nb.Pos), na)
			}
		}
	}
}

// cwhenInfo is one config when, for markBranches.
type cwhenInfo struct {
	id   int
	cond ir.Expr
	ctx  *ctxInfo // where the when itself sits
	node *syntax.ConfigWhen
}

// markBranches finds the config whens whose branch the export cannot decide
// again (ir.Branch) and lists them in the IR. A key the condition reads is
// restored before the export decides when a rule outside the when that can
// be active with it claims the key (a keep, restored up front; a rename or
// constant, applied first). A key only the when's own rules claim is not:
// the export would decide on a config that lacks it. (A key no rule claims
// cannot be read: resolveNames reports it.)
func (c *checker) markBranches() {
	for _, w := range c.cwhens {
		var own []string
		for _, key := range c.condKeys(w.cond, map[string]bool{}) {
			inside, outside := false, false
			for _, cl := range c.claimList {
				if !anyPair([][]string{cl.segs}, w.ctx.each.expand(key), related) || exclusive(cl.rule.ctx, w.ctx) {
					continue
				}
				if slices.Contains(cl.rule.ctx.conds, condRef{w.id, false}) || slices.Contains(cl.rule.ctx.conds, condRef{w.id, true}) {
					inside = true
				} else {
					outside = true
				}
			}
			if inside && !outside {
				own = append(own, strings.Join(key, "."))
			}
		}
		if len(own) == 0 {
			continue
		}
		if w.ctx.each != nil {
			// One record per condition text cannot say what each node took.
			c.errorf(w.node.Cond.Range(), fmt.Sprintf("claim %s by a rule under each %s outside this when, so that the export can decide the when again on the config it rebuilds", own[0], w.ctx.each.ir.Var),
				"a when under each %s must read keys that a rule outside it restores: only its own rules claim %s", w.ctx.each.ir.Var, strings.Join(own, ", "))
			continue
		}
		c.m.Branches = append(c.m.Branches, &ir.Branch{Key: ir.Format(w.cond), Cond: w.cond, Outer: w.ctx.when,
			Variant: w.ctx.variant, Keys: own, Pos: w.node.Pos})
	}
}

// condKeys lists the left config paths an expression reads, through the
// lets it uses.
func (c *checker) condKeys(x ir.Expr, seen map[string]bool) [][]string {
	var out [][]string
	switch x := x.(type) {
	case *ir.Ref:
		if len(x.Path) == 1 {
			if l := c.lets[x.Path[0]]; l != nil && l.ir != nil {
				if !seen[x.Path[0]] {
					seen[x.Path[0]] = true
					out = append(out, c.condKeys(l.ir.Expr, seen)...)
				}
				return out
			}
		}
		out = append(out, x.Path)
	default:
		for _, y := range ir.Operands(x) {
			out = append(out, c.condKeys(y, seen)...)
		}
	}
	return out
}

// constText spells a constant's value, or the expression that
// computes it: two constants agree when they spell the same.
func constText(r *ir.ConfigRule) string {
	if r.ValueExpr != nil {
		return ir.Format(r.ValueExpr)
	}
	return ir.FormatValue(r.Value)
}

// lineOf names the line of a rule that another one, at here, conflicts
// with: "line N" in the same file, "file:N" where a fragment put one of
// them in the mapping.
func lineOf(p, here syntax.Pos) string {
	if p.File == here.File {
		return fmt.Sprintf("line %d", p.Line)
	}
	return p.FileLine()
}
