// Package check turns a parsed .map file (dsl/syntax) into the IR the engine
// runs (dsl/ir), and reports every problem it finds on the way, as
// positioned diagnostics (dsl/diag).
//
// It works like go/types after go/parser: the AST is complete (syntax errors
// stopped earlier), so each pass collects all the problems of its kind
// instead of stopping at the first:
//
//   - lowering: scopes (each, when/else, variant) are flattened into rules;
//     names are split into patterns; op arguments are converted by the kind
//     of parameter the op table declares; unknown ops, arities, missing
//     inverses and malformed values are reported;
//   - names: every name an expression reads must be a let, a loop variable
//     in scope, or a left config path some config rule claims; every
//     placeholder must be bound; index variables must appear on both sides;
//     unused lets and loop variables are warned about;
//   - overlaps: two rules that can be active together must not produce or
//     consume the same tensor name, nor claim or write the same config key;
//   - samples: each `sample` is used as a left config to evaluate lets and
//     declared shapes, and shapes are pushed through every pipeline with the
//     op table's own shape rules (the planner uses the same functions).
//
// The IR returned is only meant to be run when the list holds no errors.
package check

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/sides"
	"github.com/mapper-dev/mapper/dsl/syntax"
)

// Check lowers f to the IR and returns it with every diagnostic, sorted.
func Check(f *syntax.File) (*ir.Mapping, diag.List) {
	c := &checker{
		file:   f,
		m:      &ir.Mapping{Name: f.Name.Name, File: f.Filename, Left: f.Left.Name, Right: f.Right.Name, OneWay: f.OneWay},
		lets:   map[string]*letInfo{},
		spans:  map[ir.Expr]syntax.Span{},
		folded: map[ir.Expr]bool{},
		bad:    map[string]bool{},
	}
	c.header()
	c.lower()
	c.resolveNames()
	c.checkVars()
	c.checkTensorOverlaps()
	c.checkConfig()
	c.markBranches()
	c.checkSamples()
	return c.m, c.diags.Sort()
}

type checker struct {
	file  *syntax.File
	m     *ir.Mapping
	diags diag.List

	lets      map[string]*letInfo
	letOrder  []*letInfo
	variants  []*variantInfo
	samples   []*sampleInfo
	crules    []*cruleInfo
	cwhens    []*cwhenInfo
	trules    []*truleInfo
	eachVars  []*binding // every each variable, for the unused check
	nameUses  []nameUse
	spans     map[ir.Expr]syntax.Span
	folded    map[ir.Expr]bool // constant subexpressions: true when they evaluated
	nextCond  int
	claimList []claim
	bad       map[string]bool // names already reported as undefined
	// placeholders: {v} may stand in an expression's name (LowerExpr).
	placeholders bool
}

// letInfo is one let declaration.
type letInfo struct {
	decl  *syntax.LetDecl
	index int
	used  bool
	ir    *ir.Let
}

type variantInfo struct {
	decl *syntax.VariantDecl
	ir   *ir.Variant
}

type sampleInfo struct {
	decl   *syntax.SampleDecl
	ir     *ir.Sample
	keys   []*syntax.Name
	config map[string]any // nested form of the values
}

// bindKind tells what bound a variable.
type bindKind int

const (
	bindEach bindKind = iota
	bindStack
	bindUnstack
)

// binding is one bound index variable.
type binding struct {
	name  string
	ident *syntax.Ident // where it is bound (the each variable), or the op argument span
	span  syntax.Span
	kind  bindKind
	used  bool // appears in some name pattern
}

// scope is what an expression or name can see.
type scope struct {
	vars     []*binding
	letLimit int // lets with index < letLimit are visible; -1: all
}

func (s scope) lookupVar(name string) *binding {
	for i := len(s.vars) - 1; i >= 0; i-- {
		if s.vars[i].name == name {
			return s.vars[i]
		}
	}
	return nil
}

func (s scope) with(b *binding) scope {
	return scope{vars: append(slices.Clip(s.vars), b), letLimit: s.letLimit}
}

// condRef is one enclosing when (neg: in its else branch).
type condRef struct {
	id  int
	neg bool
}

// ctxInfo is where a rule sits: its variant and enclosing conditions.
type ctxInfo struct {
	variant string
	conds   []condRef
	when    []ir.Expr
}

// exclusive reports whether two rules can never be active together: they
// sit in different variants, in the two branches of one when/else, or under
// conditions that contradict each other on their face (c and not c,
// x == 1 and x == 2, or x == 1 and x != 1).
func exclusive(a, b *ctxInfo) bool {
	if a.variant != "" && b.variant != "" && a.variant != b.variant {
		return true
	}
	for _, x := range a.conds {
		for _, y := range b.conds {
			if x.id == y.id && x.neg != y.neg {
				return true
			}
		}
	}
	for _, x := range a.when {
		for _, y := range b.when {
			if contradict(x, y) || contradict(y, x) {
				return true
			}
		}
	}
	return false
}

// contradict reports whether x and y cannot both hold, judged by their text.
// The operands may read a loop variable (kinds[l] == "t" and kinds[l] ==
// "m2"): both are decided on the same binding.
func contradict(x, y ir.Expr) bool {
	if u, ok := x.(*ir.Unary); ok && u.Op == "not" && ir.Format(u.X) == ir.Format(y) {
		return true
	}
	bx, ok1 := x.(*ir.Binary)
	by, ok2 := y.(*ir.Binary)
	if !ok1 || !ok2 || bx.Op != "==" || (by.Op != "==" && by.Op != "!=") || ir.Format(bx.X) != ir.Format(by.X) {
		return false
	}
	lx, ok1 := bx.Y.(*ir.Literal)
	ly, ok2 := by.Y.(*ir.Literal)
	if !ok1 || !ok2 {
		return false
	}
	// x == a and x == b (a != b), or x == a and x != a.
	return ir.ValuesEqual(lx.Value, ly.Value) == (by.Op == "!=")
}

// nameUse is a name read by an expression, resolved once all claims are known.
type nameUse struct {
	name *syntax.Name
	sc   scope
}

func (c *checker) errorf(s syntax.Span, hint, format string, args ...any) {
	c.diags.Add(diag.Error, s.Pos, s.End, hint, format, args...)
}

func (c *checker) warnf(s syntax.Span, hint, format string, args ...any) {
	c.diags.Add(diag.Warning, s.Pos, s.End, hint, format, args...)
}

// header checks the side names against the sides the program links in
// (package dsl/sides).
func (c *checker) header() {
	known := sides.Known()
	c.m.LeftTarget = c.target(c.file.Left, c.file.LeftTarget)
	c.m.RightTarget = c.target(c.file.Right, c.file.RightTarget)
	for _, side := range []*syntax.Ident{c.file.Left, c.file.Right} {
		if slices.Contains(known, side.Name) {
			continue
		}
		hint := "no checkpoint side is linked into this program"
		if len(known) > 0 {
			hint = diag.DidYouMeanOr(side.Name, known, "known formats")
		}
		c.errorf(side.Span, hint, "unknown format %q", side.Name)
	}
}

// target checks a header side's target against the targets its side
// knows and returns it, or the side's default when the header names none.
func (c *checker) target(side *syntax.Ident, t *syntax.Target) string {
	if t == nil {
		return sides.DefaultTarget(side.Name)
	}
	if !slices.Contains(sides.Known(), side.Name) {
		return t.Value.Value // the unknown format is the error
	}
	known := sides.Targets(side.Name)
	switch {
	case len(known) == 0:
		c.errorf(t.Span, "", "the %s side has no targets: it writes one layout whatever the version of its readers", side.Name)
	case !slices.Contains(known, t.Value.Value):
		c.errorf(t.Value.Span, diag.DidYouMeanOr(t.Value.Value, known, "known targets"), "unknown target %q of %s", t.Value.Value, side.Name)
	}
	return t.Value.Value
}

// lower walks the declarations and builds the IR.
func (c *checker) lower() {
	// Lets first: they are visible everywhere (a let only sees earlier lets).
	for _, d := range c.file.Decls {
		if l, ok := d.(*syntax.LetDecl); ok {
			if prev := c.lets[l.Name.Name]; prev != nil {
				c.errorf(l.Name.Span, "", "let %s is already defined at line %d", l.Name.Name, prev.decl.Name.Pos.Line)
				continue
			}
			info := &letInfo{decl: l, index: len(c.letOrder)}
			c.lets[l.Name.Name] = info
			c.letOrder = append(c.letOrder, info)
		}
	}
	for _, info := range c.letOrder {
		info.ir = &ir.Let{Name: info.decl.Name.Name, Pos: info.decl.Name.Pos}
		info.ir.Expr = c.expr(info.decl.Value, scope{letLimit: info.index})
		c.m.Lets = append(c.m.Lets, info.ir)
	}
	top := scope{letLimit: -1}
	seenVariant := map[string]*syntax.VariantDecl{}
	var defaultVariant *syntax.VariantDecl
	for _, d := range c.file.Decls {
		switch d := d.(type) {
		case *syntax.SampleDecl:
			c.sample(d)
		case *syntax.ConfigBlock:
			c.configItems(d.Items, &ctxInfo{})
		case *syntax.TensorBlock:
			c.tensorItems(d.Items, top, nil, nil, nil, &ctxInfo{})
		case *syntax.VariantDecl:
			v := &ir.Variant{Name: d.Name.Name, Pos: d.Name.Pos}
			if prev := seenVariant[v.Name]; prev != nil {
				c.errorf(d.Name.Span, "", "variant %s is already declared at line %d", v.Name, prev.Name.Pos.Line)
			}
			seenVariant[v.Name] = d
			if d.When != nil {
				v.When = c.expr(d.When, top)
			} else if defaultVariant != nil {
				c.errorf(d.Name.Span, "add a when condition to one of them",
					"variant %s has no when condition, and neither has variant %s (line %d): only one default variant is allowed",
					v.Name, defaultVariant.Name.Name, defaultVariant.Name.Pos.Line)
			} else {
				defaultVariant = d
			}
			c.variants = append(c.variants, &variantInfo{decl: d, ir: v})
			c.m.Variants = append(c.m.Variants, v)
			for _, b := range d.Blocks {
				switch b := b.(type) {
				case *syntax.ConfigBlock:
					c.configItems(b.Items, &ctxInfo{variant: v.Name})
				case *syntax.TensorBlock:
					c.tensorItems(b.Items, top, nil, nil, nil, &ctxInfo{variant: v.Name})
				}
			}
		}
	}
}

// branch returns the context of a when's then (neg false) or else branch.
func (c *checker) branch(ctx *ctxInfo, id int, cond ir.Expr, neg bool) *ctxInfo {
	out := &ctxInfo{variant: ctx.variant, conds: append(slices.Clip(ctx.conds), condRef{id, neg})}
	w := cond
	if neg {
		w = &ir.Unary{Op: "not", X: cond, At: ir.ExprPos(cond)}
		c.spans[w] = c.spans[cond]
	}
	out.when = append(slices.Clip(ctx.when), w)
	return out
}

func (c *checker) sample(d *syntax.SampleDecl) {
	for _, s := range c.samples {
		if s.decl.Name.Name == d.Name.Name {
			c.errorf(d.Name.Span, "", "sample %s is already declared at line %d", d.Name.Name, s.decl.Name.Pos.Line)
		}
	}
	s := &sampleInfo{decl: d, ir: &ir.Sample{Name: d.Name.Name, Pos: d.Name.Pos, Values: map[string]any{}}, config: map[string]any{}}
	for _, e := range d.Entries {
		path, ok := c.leftPath(e.Key, "sample key")
		if !ok {
			continue
		}
		v, ok := c.constValue(e.Value, false)
		if !ok {
			continue
		}
		key := strings.Join(path.Segs, ".")
		if _, dup := s.ir.Values[key]; dup {
			c.errorf(e.Key.Span, "", "sample key %s is set twice", key)
			continue
		}
		if err := setPath(s.config, path.Segs, v); err != nil {
			c.errorf(e.Key.Span, "", "sample key %s: %v", key, err)
			continue
		}
		s.ir.Values[key] = v
		s.keys = append(s.keys, e.Key)
	}
	c.samples = append(c.samples, s)
	c.m.Samples = append(c.m.Samples, s.ir)
}

// setPath stores v at a dotted path of a nested config map.
func setPath(m map[string]any, path []string, v any) error {
	for i, seg := range path[:len(path)-1] {
		next, ok := m[seg]
		if !ok {
			nm := map[string]any{}
			m[seg] = nm
			m = nm
			continue
		}
		nm, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is already set to %s", strings.Join(path[:i+1], "."), ir.FormatValue(next))
		}
		m = nm
	}
	last := path[len(path)-1]
	if old, ok := m[last]; ok {
		if om, ok1 := old.(map[string]any); ok1 {
			if nm, ok2 := v.(map[string]any); ok2 {
				for k, x := range nm {
					if err := setPath(om, []string{k}, x); err != nil {
						return err
					}
				}
				return nil
			}
		}
		return fmt.Errorf("already set")
	}
	m[last] = v
	return nil
}

// pathOf converts a config name to an ir.Path.
func pathOf(n *syntax.Name) ir.Path {
	p := ir.Path{Pos: n.Pos, End: n.End}
	for _, s := range n.Segs {
		p.Segs = append(p.Segs, s.Text)
	}
	return p
}

// leftPath checks a left config path: identifiers and numbers only.
func (c *checker) leftPath(n *syntax.Name, what string) (ir.Path, bool) {
	ok := true
	for _, s := range n.Segs {
		switch s.Kind {
		case syntax.SegStar:
			c.errorf(s.Span, "a wildcard stands for every key of a map on the right side only", "%s %s: * is only allowed in right config paths", what, n)
			ok = false
		case syntax.SegVar:
			c.errorf(s.Span, "", "%s %s: placeholders like {%s} are only allowed in tensor names", what, n, s.Text)
			ok = false
		}
	}
	return pathOf(n), ok
}

// rightPath checks a right config path: * is allowed, placeholders are not.
func (c *checker) rightPath(n *syntax.Name) ir.Path {
	for _, s := range n.Segs {
		if s.Kind == syntax.SegVar {
			c.errorf(s.Span, "", "config path %s: placeholders like {%s} are only allowed in tensor names", n, s.Text)
		}
	}
	return pathOf(n)
}
