package check

import (
	"fmt"
	"strings"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// truleInfo is one lowered tensor rule with where it sits. An ignore item
// is one too (node nil, ignore set), whose rule has left references only,
// so that the overlap and sample checks see its names.
type truleInfo struct {
	node   *syntax.RuleItem
	ignore *syntax.IgnoreItem
	rule   *ir.TensorRule
	ctx    *ctxInfo
	sc     scope      // each variables in scope
	extra  []*binding // variables bound by stack / unstack
	bounds []syntax.Expr
	broken bool // ops or arity are wrong: skip the shape checks
}

// refs are the references a side of the rule names as written.
func (t *truleInfo) refs(right bool) []*syntax.Ref {
	switch {
	case t.ignore != nil && right:
		return nil
	case t.ignore != nil:
		return t.ignore.Refs
	case right:
		return t.node.Right.Refs
	}
	return t.node.Left.Refs
}

func dtypeNames() []string {
	var out []string
	for _, d := range tensor.AllDTypes() {
		out = append(out, d.String())
	}
	return out
}

func opNames() []string {
	var out []string
	for _, d := range ir.Ops() {
		out = append(out, d.Name)
	}
	return out
}

func (c *checker) tensorItems(items []syntax.TensorItem, sc scope, lprefix, rprefix []*syntax.Name, loops []ir.Loop, ctx *ctxInfo) {
	for _, it := range items {
		switch it := it.(type) {
		case *syntax.EachItem:
			bound := c.expr(it.Bound, sc)
			b := &binding{name: it.Var.Name, ident: it.Var, span: it.Var.Span, kind: bindEach}
			if prev := sc.lookupVar(it.Var.Name); prev != nil {
				c.errorf(it.Var.Span, "use another name", "%s is already bound by the each at line %d", it.Var.Name, prev.span.Pos.Line)
			}
			c.eachVars = append(c.eachVars, b)
			inner := sc.with(b)
			for _, n := range []*syntax.Name{it.Left, it.Right} {
				for _, s := range n.Segs {
					switch s.Kind {
					case syntax.SegStar:
						c.errorf(s.Span, "", "tensor name %s: * is only allowed in right config paths", n)
					case syntax.SegVar:
						if v := inner.lookupVar(s.Text); v != nil && v.kind != bindLet {
							v.used = true
						} else {
							c.unboundPlaceholder(s, n, inner, nil)
						}
					}
				}
			}
			loop := ir.Loop{Var: it.Var.Name, Bound: bound, Pos: it.Var.Pos, End: it.Bound.Range().End}
			c.tensorItems(it.Items, inner, append(lprefix[:len(lprefix):len(lprefix)], it.Left),
				append(rprefix[:len(rprefix):len(rprefix)], it.Right), append(loops[:len(loops):len(loops)], loop), ctx)
		case *syntax.TensorWhen:
			id := c.nextCond
			c.nextCond++
			cond := c.expr(it.Cond, sc)
			c.tensorItems(it.Then, sc, lprefix, rprefix, loops, c.branch(ctx, id, cond, false))
			if it.Else != nil {
				c.tensorItems(it.Else.Items, sc, lprefix, rprefix, loops, c.branch(ctx, id, cond, true))
			}
		case *syntax.LetDecl:
			sc = c.tensorLet(it, sc, loops)
		case *syntax.RuleItem:
			c.rule(it, sc, lprefix, rprefix, loops, ctx)
		case *syntax.IgnoreItem:
			c.ignore(it, sc, lprefix, loops, ctx)
		}
	}
}

// tensorLet lowers a let inside a tensor each and returns the scope the
// items after it see.
func (c *checker) tensorLet(it *syntax.LetDecl, sc scope, loops []ir.Loop) scope {
	name := it.Name.Name
	if len(loops) == 0 {
		c.errorf(it.Span, "declare it at the top level, or inside an each whose variable it reads",
			"let %s in a tensors block must sit in an each", name)
	}
	if prev := sc.lookupVar(name); prev != nil {
		c.errorf(it.Name.Span, "use another name", "%s is already bound at line %d", name, prev.span.Pos.Line)
	} else if c.lets[name] != nil {
		c.errorf(it.Name.Span, "use another name", "%s is already a let (line %d)", name, c.lets[name].decl.Pos.Line)
	}
	def := &ir.Local{Name: name, Def: c.expr(it.Value, sc), At: it.Pos}
	b := &binding{name: name, ident: it.Name, span: it.Name.Span, kind: bindLet, def: def}
	c.locals = append(c.locals, b)
	return sc.with(b)
}

func (c *checker) rule(it *syntax.RuleItem, sc scope, lprefix, rprefix []*syntax.Name, loops []ir.Loop, ctx *ctxInfo) {
	t := &truleInfo{node: it, ctx: ctx, sc: sc}
	r := &ir.TensorRule{Pos: it.Pos, End: it.End, Loops: loops, When: ctx.when, Variant: ctx.variant}
	t.rule = r

	// Ops first: stack and unstack bind variables the names use.
	count, known := len(it.Left.Refs), true
	for k, o := range it.Ops {
		op := c.op(o, t)
		r.Ops = append(r.Ops, op)
		if op.Def == nil {
			known = false
			continue
		}
		d := op.Def
		if known && (count < d.MinIn || (d.MaxIn >= 0 && count > d.MaxIn)) {
			hint := ""
			if k == 0 && count == 1 && d.MinIn > 1 {
				hint = fmt.Sprintf("put the inputs in parentheses: (a, b) | %s", d.Name)
			}
			c.errorf(o.Name.Span, hint, "%s takes %s, but %s", d.Name, d.Takes(), tupleText(count))
			t.broken = true
			known = false
			continue
		}
		if !known {
			continue
		}
		count, known = d.OutCount(op.Args, count)
	}
	if known && count != len(it.Right.Refs) {
		c.errorf(it.Right.Span, "", "the pipeline gives %s, but the right side names %d", tensorsText(count), len(it.Right.Refs))
		t.broken = true
	}

	leftUse, rightUse := map[*binding]bool{}, map[*binding]bool{}
	for _, ref := range it.Left.Refs {
		r.Left = append(r.Left, c.tref(ref, lprefix, false, t, leftUse))
	}
	for _, ref := range it.Right.Refs {
		r.Right = append(r.Right, c.tref(ref, rprefix, true, t, rightUse))
	}
	for _, b := range sc.vars {
		switch {
		case leftUse[b] && !rightUse[b]:
			c.errorf(it.Right.Span, fmt.Sprintf("use {%s} in a right name too, or gather the tensors with stack(%s < N)", b.name, b.name),
				"index variable %s is used in the left names but not in the right names", b.name)
		case rightUse[b] && !leftUse[b]:
			c.errorf(it.Left.Span, fmt.Sprintf("use {%s} in a left name too, or split the tensor with unstack(%s < N)", b.name, b.name),
				"index variable %s is used in the right names but not in the left names", b.name)
		}
	}
	for _, b := range t.extra {
		if b.kind == bindStack && !leftUse[b] {
			c.errorf(b.span, fmt.Sprintf("use {%s} in a left name: stack gathers one tensor per value", b.name), "stack binds %s, but no left name uses {%s}", b.name, b.name)
		}
		if b.kind == bindUnstack && !rightUse[b] {
			c.errorf(b.span, fmt.Sprintf("use {%s} in a right name: unstack gives one tensor per value", b.name), "unstack binds %s, but no right name uses {%s}", b.name, b.name)
		}
	}
	c.trules = append(c.trules, t)
	c.m.Tensors = append(c.m.Tensors, r)
}

// ignore lowers `ignore a, b`: left names only, each of which must use
// every enclosing loop variable (otherwise each iteration would name the
// same tensor).
func (c *checker) ignore(it *syntax.IgnoreItem, sc scope, lprefix []*syntax.Name, loops []ir.Loop, ctx *ctxInfo) {
	t := &truleInfo{ignore: it, ctx: ctx, sc: sc}
	r := &ir.TensorRule{Pos: it.Pos, End: it.End, Loops: loops, When: ctx.when, Variant: ctx.variant}
	t.rule = r
	for _, ref := range it.Refs {
		use := map[*binding]bool{}
		r.Left = append(r.Left, c.tref(ref, lprefix, false, t, use))
		for _, b := range sc.vars {
			if !use[b] {
				c.errorf(ref.Name.Span, fmt.Sprintf("use {%s} in the name, or move the ignore out of the each", b.name),
					"index variable %s is not used in the ignored name %s: every iteration would name the same tensor", b.name, ref.Name)
			}
		}
	}
	c.trules = append(c.trules, t)
	c.m.Ignores = append(c.m.Ignores, &ir.IgnoreRule{Pos: r.Pos, End: r.End, Loops: loops, When: ctx.when, Variant: ctx.variant, Refs: r.Left})
}

func tensorsText(n int) string {
	if n == 1 {
		return "1 tensor"
	}
	return fmt.Sprintf("%d tensors", n)
}

func tupleText(n int) string {
	if n == 1 {
		return "it is given 1"
	}
	return fmt.Sprintf("it is given %d", n)
}

// op lowers one pipeline stage and checks its arguments.
func (c *checker) op(o *syntax.OpCall, t *truleInfo) *ir.Op {
	op := &ir.Op{Name: o.Name.Name, Pos: o.Pos, End: o.End}
	d := ir.LookupOp(o.Name.Name)
	if d == nil {
		hint := diag.DidYouMeanOr(o.Name.Name, opNames(), "known ops")
		c.errorf(o.Name.Span, hint, "unknown op %q", o.Name.Name)
		t.broken = true
		return op
	}
	op.Def = d
	required := 0
	for _, p := range d.Params {
		if !p.Optional {
			required++
		}
	}
	if len(o.Args) < required || len(o.Args) > len(d.Params) {
		c.errorf(o.Span, "", "%s takes %s (%s), got %d", d.Name, argCountText(required, len(d.Params)), paramList(d), len(o.Args))
		t.broken = true
	}
	for i, a := range o.Args {
		if i >= len(d.Params) {
			break
		}
		arg, ok := c.arg(d, d.Params[i], a, t)
		if !ok {
			t.broken = true
		}
		op.Args = append(op.Args, arg)
	}
	if d.Inverse == nil && !c.file.OneWay {
		c.errorf(o.Name.Span, fmt.Sprintf("declare the mapping one-way (mapping %s oneway), or write the rule from the other side so that it can be inverted", c.file.Name.Name),
			"%s has no inverse (%s), and mapping %s is not declared oneway", d.Name, d.NoInverseWhy, c.file.Name.Name)
	}
	return op
}

func argCountText(req, all int) string {
	switch {
	case req == all && all == 1:
		return "1 argument"
	case req == all:
		return fmt.Sprintf("%d arguments", all)
	}
	return fmt.Sprintf("%d to %d arguments", req, all)
}

func paramList(d *ir.OpDef) string {
	var ps []string
	for _, p := range d.Params {
		s := p.Name + ": " + p.Kind.String()
		if p.Optional {
			s += ", optional"
		}
		ps = append(ps, s)
	}
	if len(ps) == 0 {
		return "none"
	}
	return strings.Join(ps, "; ")
}

// arg converts one op argument by the kind of its parameter.
func (c *checker) arg(d *ir.OpDef, p ir.Param, a syntax.Expr, t *truleInfo) (ir.Arg, bool) {
	arg := ir.Arg{Pos: a.Range().Pos}
	what := fmt.Sprintf("argument %s of %s", p.Name, d.Name)
	switch p.Kind {
	case ir.ParamInt:
		if _, ok := a.(*syntax.ListExpr); ok {
			c.errorf(a.Range(), "", "%s must be an integer, not a list", what)
			return arg, false
		}
		if n, ok := a.(*syntax.NameExpr); ok && len(n.Name.Segs) == 1 {
			if _, err := tensor.ParseDType(n.Name.String()); err == nil && t.sc.lookupVar(n.Name.String()) == nil && c.lets[n.Name.String()] == nil {
				c.errorf(a.Range(), "", "%s must be an integer; %s is a dtype", what, n.Name)
				return arg, false
			}
		}
		arg.Expr = c.expr(a, t.sc)
	case ir.ParamIntList:
		l, ok := a.(*syntax.ListExpr)
		if !ok {
			c.errorf(a.Range(), fmt.Sprintf("write it as a list: [%s]", exprText(a)), "%s must be a list of integers [a, b, ...]", what)
			return arg, false
		}
		arg.List = []ir.Expr{}
		for _, e := range l.Elems {
			arg.List = append(arg.List, c.expr(e, t.sc))
		}
	case ir.ParamDType:
		n, ok := a.(*syntax.NameExpr)
		if !ok || len(n.Name.Segs) != 1 || n.Name.Segs[0].Kind != syntax.SegIdent {
			c.errorf(a.Range(), "", "%s must be a dtype such as BF16", what)
			return arg, false
		}
		name := n.Name.Segs[0].Text
		if _, err := tensor.ParseDType(name); err != nil {
			hint := diag.DidYouMeanOr(name, dtypeNames(), "dtypes")
			c.errorf(a.Range(), hint, "unknown dtype %s", name)
			return arg, false
		}
		arg.DType = name
	case ir.ParamRange:
		b, ok := a.(*syntax.BinaryExpr)
		var v *syntax.NameExpr
		if ok {
			v, _ = b.X.(*syntax.NameExpr)
		}
		if !ok || b.Op != "<" || v == nil || len(v.Name.Segs) != 1 || v.Name.Segs[0].Kind != syntax.SegIdent {
			c.errorf(a.Range(), fmt.Sprintf("for example %s(e < experts)", d.Name), "%s must be a range `v < N`", what)
			return arg, false
		}
		name := v.Name.Segs[0].Text
		arg.Var = name
		arg.Bound = c.expr(b.Y, t.sc)
		kind := bindStack
		if d.Gather == ir.GatherUnstack {
			kind = bindUnstack
		}
		if prev := t.sc.lookupVar(name); prev != nil {
			c.errorf(v.Span, "use another name", "%s is already bound by the each at line %d", name, prev.span.Pos.Line)
			return arg, false
		}
		for _, x := range t.extra {
			if x.name == name {
				c.errorf(v.Span, "use another name", "%s is already bound by an op of this rule", name)
				return arg, false
			}
		}
		t.extra = append(t.extra, &binding{name: name, span: v.Span, kind: kind})
		t.bounds = append(t.bounds, b.Y)
	}
	return arg, true
}

// exprText is a short rendering of an argument for hints.
func exprText(e syntax.Expr) string {
	if n, ok := e.(*syntax.NameExpr); ok {
		return n.Name.String()
	}
	if i, ok := e.(*syntax.IntLit); ok {
		return fmt.Sprint(i.Value)
	}
	return "..."
}

// tref lowers one tensor reference: the scope prefixes joined with its name.
func (c *checker) tref(ref *syntax.Ref, prefix []*syntax.Name, right bool, t *truleInfo, use map[*binding]bool) *ir.TensorRef {
	out := &ir.TensorRef{Pos: ref.Pos, End: ref.End}
	var segs []syntax.Seg
	for _, p := range prefix {
		segs = append(segs, p.Segs...)
	}
	for _, s := range ref.Name.Segs {
		switch s.Kind {
		case syntax.SegStar:
			c.errorf(s.Span, "", "tensor name %s: * is only allowed in right config paths", ref.Name)
		case syntax.SegVar:
			c.placeholder(s, ref.Name, right, t)
		}
	}
	segs = append(segs, ref.Name.Segs...)
	for _, s := range segs {
		if s.Kind != syntax.SegVar {
			continue
		}
		if b := t.sc.lookupVar(s.Text); b != nil {
			use[b] = true
		}
		for _, b := range t.extra {
			if b.name == s.Text {
				use[b] = true
			}
		}
	}
	out.Pattern = patternOf(segs)
	sc := t.sc
	for _, b := range t.extra {
		sc = sc.with(b)
	}
	if ref.DType != nil {
		out.DType = ref.DType.Name
		if _, err := tensor.ParseDType(ref.DType.Name); err != nil {
			hint := diag.DidYouMeanOr(ref.DType.Name, dtypeNames(), "dtypes")
			c.errorf(ref.DType.Span, hint, "unknown dtype %s", ref.DType.Name)
		}
	}
	if ref.HasShape {
		out.Shape = []ir.Expr{}
		for _, e := range ref.Shape {
			x := c.expr(e, sc)
			c.constDim(x, e)
			out.Shape = append(out.Shape, x)
		}
	}
	return out
}

// placeholder checks one {v} of a rule's own name.
func (c *checker) placeholder(s syntax.Seg, n *syntax.Name, right bool, t *truleInfo) {
	if b := t.sc.lookupVar(s.Text); b != nil && b.kind != bindLet {
		b.used = true
		return
	}
	for _, b := range t.extra {
		if b.name != s.Text {
			continue
		}
		switch {
		case b.kind == bindStack && right:
			c.errorf(s.Span, "stack gathers the left tensors into one: the right name cannot vary with it", "{%s} is bound by stack, so it can appear only in the left names", s.Text)
		case b.kind == bindUnstack && !right:
			c.errorf(s.Span, "unstack splits into right tensors: the left name cannot vary with it", "{%s} is bound by unstack, so it can appear only in the right names", s.Text)
		}
		return
	}
	c.unboundPlaceholder(s, n, t.sc, t.extra)
}

func (c *checker) unboundPlaceholder(s syntax.Seg, n *syntax.Name, sc scope, extra []*binding) {
	var cands []string
	for _, v := range sc.vars {
		cands = append(cands, v.name)
	}
	for _, v := range extra {
		cands = append(cands, v.name)
	}
	hint := diag.DidYouMean(s.Text, cands)
	if hint == "" {
		hint = fmt.Sprintf("bind it with each %s < N: ..., or with stack(%s < N) / unstack(%s < N)", s.Text, s.Text, s.Text)
	}
	c.errorf(s.Span, hint, "placeholder {%s} in %s is not bound", s.Text, n)
}

// patternOf turns joined name segments into an ir.Pattern.
func patternOf(segs []syntax.Seg) ir.Pattern {
	var p ir.Pattern
	lit := ""
	for i, s := range segs {
		if i > 0 {
			lit += "."
		}
		if s.Kind == syntax.SegVar {
			if lit != "" {
				p.Parts = append(p.Parts, ir.PatternPart{Lit: lit})
			}
			lit = ""
			p.Parts = append(p.Parts, ir.PatternPart{Var: s.Text, Off: s.Off})
			continue
		}
		lit += s.Text
	}
	if lit != "" {
		p.Parts = append(p.Parts, ir.PatternPart{Lit: lit})
	}
	return p
}

// patternText prints a pattern as written.
func patternText(p ir.Pattern) string {
	var b strings.Builder
	for _, part := range p.Parts {
		if part.Var != "" {
			b.WriteString(syntax.Seg{Kind: syntax.SegVar, Text: part.Var, Off: part.Off}.String())
		} else {
			b.WriteString(part.Lit)
		}
	}
	return b.String()
}

// checkVars warns about each variables that no name uses.
func (c *checker) checkVars() {
	for _, b := range c.eachVars {
		if !b.used {
			c.warnf(b.span, fmt.Sprintf("use {%s} in the names, or drop the each", b.name), "loop variable %s is not used in any name", b.name)
		}
	}
}
