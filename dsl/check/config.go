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

func (c *checker) configItems(items []syntax.ConfigItem, ctx *ctxInfo) {
	top := scope{letLimit: -1}
	for _, it := range items {
		switch it := it.(type) {
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
			if it.Right && !isLiteral(it.Value) {
				// A value the left config determines (sqrt(hidden_size)).
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
	info := &cruleInfo{node: node, rule: r, ctx: ctx, lefts: lefts, rights: rights}
	c.crules = append(c.crules, info)
	c.m.Config = append(c.m.Config, r)
	for _, n := range lefts {
		c.claimList = append(c.claimList, claim{segs: pathOf(n).Segs, name: n, rule: info})
	}
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
			if done[nb] || !related(pa, pb) {
				continue
			}
			if a.rule.Kind == ir.ConfigLeftConst && b.rule.Kind == ir.ConfigLeftConst && len(pa) == len(pb) {
				if ir.ValuesEqual(a.rule.Value, b.rule.Value) {
					continue // the same constant twice says nothing new
				}
				done[nb] = true
				c.errorf(nb.Span, "", "conflicting constants for left key %s: %s here, %s at line %d",
					nb, ir.FormatValue(b.rule.Value), ir.FormatValue(a.rule.Value), na.Pos.Line)
				continue
			}
			if (a.rule.Kind == ir.ConfigLeftConst) != (b.rule.Kind == ir.ConfigLeftConst) && len(pa) == len(pb) {
				done[nb] = true
				c.errorf(nb.Span, "a key is either a constant or renamed, not both",
					"left key %s is written by both a %s (line %d) and a %s", nb, a.what(), na.Pos.Line, b.what())
				continue
			}
			done[nb] = true
			c.errorf(nb.Span, "every left key must be claimed by exactly one rule (or the rules must sit in exclusive variants or when/else branches)",
				"left key %s is already claimed by the %s at line %d (%s)", nb, a.what(), na.Pos.Line, na)
		}
	}
}

func (c *checker) rightConflict(a, b *cruleInfo, done map[*syntax.Name]bool) {
	for _, na := range a.rights {
		for _, nb := range b.rights {
			pa, pb := pathOf(na).Segs, pathOf(nb).Segs
			if done[nb] || !pathsOverlap(pa, pb) {
				continue
			}
			ca, cb := a.rule.Kind == ir.ConfigRightConst, b.rule.Kind == ir.ConfigRightConst
			switch {
			case ca && cb:
				if va, vb := constText(a.rule), constText(b.rule); va != vb {
					done[nb] = true
					c.errorf(nb.Span, "", "conflicting constants for right path %s: %s here, %s at line %d (%s)",
						nb, vb, va, na.Pos.Line, na)
				}
			case ca || cb:
				done[nb] = true
				c.errorf(nb.Span, "a path is either a constant or the image of a rename, not both",
					"right path %s is written by both a %s (line %d) and a %s", nb, a.what(), na.Pos.Line, b.what())
			default:
				done[nb] = true
				c.errorf(nb.Span, "list several right paths in one rule (a fan-out) when one left key feeds them all",
					"right path %s is already written by the %s at line %d (%s)", nb, a.what(), na.Pos.Line, na)
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
		for _, k := range c.condKeys(w.cond, map[string]bool{}) {
			inside, outside := false, false
			for _, cl := range c.claimList {
				if !related(cl.segs, k) || exclusive(cl.rule.ctx, w.ctx) {
					continue
				}
				if slices.Contains(cl.rule.ctx.conds, condRef{w.id, false}) || slices.Contains(cl.rule.ctx.conds, condRef{w.id, true}) {
					inside = true
				} else {
					outside = true
				}
			}
			if inside && !outside {
				own = append(own, strings.Join(k, "."))
			}
		}
		if len(own) == 0 {
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

// constText spells a right constant's value, or the expression that
// computes it: two constants agree when they spell the same.
func constText(r *ir.ConfigRule) string {
	if r.ValueExpr != nil {
		return ir.Format(r.ValueExpr)
	}
	return ir.FormatValue(r.Value)
}
