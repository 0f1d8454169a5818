package check

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
)

// expr lowers an expression; the names it reads are resolved later, when
// every config claim is known.
func (c *checker) expr(e syntax.Expr, sc scope) ir.Expr {
	out := c.lowerExpr(e, sc)
	c.spans[out] = e.Range()
	return out
}

func (c *checker) lowerExpr(e syntax.Expr, sc scope) ir.Expr {
	pos := e.Range().Pos
	switch e := e.(type) {
	case *syntax.NameExpr:
		if len(e.Name.Segs) == 1 && e.Name.Segs[0].Kind == syntax.SegIdent {
			if b := sc.lookupVar(e.Name.Segs[0].Text); b != nil && b.def != nil {
				b.used = true
				return &ir.Local{Name: b.name, Def: b.def.Def, At: pos}
			}
		}
		ok := true
		path := pathOf(e.Name).Segs
		for i, s := range e.Name.Segs {
			switch {
			case c.nodeSeg(e.Name, i):
				path[i] = c.each.ir.Placeholder()
			case s.Kind == syntax.SegStar:
				c.errorf(s.Span, "", "%s: * cannot be read in an expression", e.Name)
				ok = false
			case s.Kind == syntax.SegVar && c.placeholders:
				path[i] = s.String()
			case s.Kind == syntax.SegVar:
				c.errorf(s.Span, "write the variable without braces", "%s: placeholders belong in tensor names, not in expressions", e.Name)
				ok = false
			}
		}
		if ok {
			c.nameUses = append(c.nameUses, nameUse{name: e.Name, sc: sc, each: c.each})
		}
		return &ir.Ref{Path: path, At: pos}
	case *syntax.UnaryExpr:
		if e.Op == "-" {
			if v, ok := constNumber(e); ok {
				return &ir.Literal{Value: v, At: pos}
			}
		}
		out := &ir.Unary{Op: e.Op, X: c.expr(e.X, sc), At: pos}
		c.fold(out, e, out.X)
		return out
	case *syntax.BinaryExpr:
		out := &ir.Binary{Op: e.Op, X: c.expr(e.X, sc), Y: c.expr(e.Y, sc), At: pos}
		c.fold(out, e, out.X, out.Y)
		return out
	case *syntax.IndexExpr:
		out := &ir.Index{X: c.expr(e.X, sc), I: c.expr(e.Index, sc), At: pos}
		c.fold(out, e, out.X, out.I)
		return out
	case *syntax.CallExpr:
		out := &ir.Apply{Name: e.Func.Name, Fn: ir.Builtins[e.Func.Name], At: pos}
		for _, a := range e.Args {
			out.Args = append(out.Args, c.expr(a, sc))
		}
		switch fn := out.Fn; {
		case fn == nil:
			hint := diag.DidYouMean(e.Func.Name, ir.BuiltinNames())
			if hint == "" {
				hint = "the functions are " + strings.Join(ir.BuiltinNames(), ", ")
			}
			c.errorf(e.Func.Span, hint, "unknown function %s", e.Func.Name)
			c.folded[out] = false
		case len(out.Args) < fn.MinArgs || (fn.MaxArgs >= 0 && len(out.Args) > fn.MaxArgs):
			c.errorf(e.Span, "", "%s takes %s (%s), got %d", fn.Name, fn.ArityText(), fn.Params, len(out.Args))
			c.folded[out] = false
		default:
			c.fold(out, e, out.Args...)
		}
		return out
	}
	v, _ := c.constValue(e, false)
	return &ir.Literal{Value: v, At: pos}
}

// LowerExpr lowers an expression that stands outside any mapping (a
// parameter schema's, see dsl/schema): the names it reads are left for its
// reader to resolve, and a placeholder segment {v} is kept in the Ref's
// path as the string "{v}", for the reader to replace with v's value.
// Constant arithmetic is checked as in a mapping, so an overflow is
// reported where it is written.
func LowerExpr(e syntax.Expr) (ir.Expr, diag.List) {
	c := &checker{spans: map[ir.Expr]syntax.Span{}, folded: map[ir.Expr]bool{}, bad: map[string]bool{}, placeholders: true}
	x := c.expr(e, scope{letLimit: -1})
	return x, c.diags.Sort()
}

// fold evaluates an arithmetic expression whose operands are all constants,
// so that 65536 * 65536 * 65536 * 65536 + hidden_size is reported as the
// overflow it is when the file is linted, not when some config meets it.
// The expression is kept as written; only its errors matter. An operand that
// already failed is not reported again through its parents.
func (c *checker) fold(out ir.Expr, e syntax.Expr, operands ...ir.Expr) {
	for _, x := range operands {
		good, isConst := c.folded[x]
		if _, lit := x.(*ir.Literal); !isConst && !lit {
			return
		}
		if isConst && !good {
			c.folded[out] = false
			return
		}
	}
	switch out.(type) {
	case *ir.Index, *ir.Apply:
	default:
		switch opOf(out) {
		case "+", "-", "*", "/", "%":
		default:
			return
		}
	}
	_, err := ir.Eval(out, emptyEnv{})
	c.folded[out] = err == nil
	if err != nil {
		msg := err.Error()
		var ee *ir.EvalError
		if errors.As(err, &ee) {
			msg = ee.Msg
		}
		c.errorf(e.Range(), "", "%s", msg)
	}
}

// emptyEnv sets nothing: constant expressions evaluate, others fail.
type emptyEnv struct{}

func (emptyEnv) Lookup([]string) (any, bool) { return nil, false }

// constDim checks the constant factors of a declared dimension: [hidden, -1]
// or [hidden * 0] is wrong whatever the config, so it is reported once here
// rather than once per sample.
func (c *checker) constDim(x ir.Expr, e syntax.Expr) {
	if c.constFailed(x) {
		return
	}
	if err := ir.DimConstError(x); err != nil {
		c.folded[x] = false
		var ee *ir.EvalError
		if errors.As(err, &ee) {
			c.errorf(e.Range(), "", "%s", ee.Msg)
		}
	}
}

// constFailed reports whether e, or a part of it, is a constant already
// reported as wrong.
func (c *checker) constFailed(e ir.Expr) bool {
	if good, ok := c.folded[e]; ok && !good {
		return true
	}
	return slices.ContainsFunc(ir.Operands(e), c.constFailed)
}

func opOf(e ir.Expr) string {
	switch e := e.(type) {
	case *ir.Binary:
		return e.Op
	case *ir.Unary:
		return e.Op
	}
	return ""
}

// constNumber folds -<number> (and - -<number>).
func constNumber(e syntax.Expr) (any, bool) {
	switch e := e.(type) {
	case *syntax.IntLit:
		return e.Value, true
	case *syntax.FloatLit:
		return e.Value, true
	case *syntax.UnaryExpr:
		if e.Op != "-" {
			return nil, false
		}
		switch v, ok := constNumber(e.X); x := v.(type) {
		case int64:
			return -x, ok
		case float64:
			return -x, ok
		}
	}
	return nil, false
}

// constValue evaluates a constant: a literal, a list or object of
// constants, or a negative number. With bareStrings (value maps and cycle
// tables) a bare identifier is the string it spells.
func (c *checker) constValue(e syntax.Expr, bareStrings bool) (any, bool) {
	switch e := e.(type) {
	case *syntax.IntLit:
		return e.Value, true
	case *syntax.FloatLit:
		return e.Value, true
	case *syntax.StringLit:
		return e.Value, true
	case *syntax.BoolLit:
		return e.Value, true
	case *syntax.NullLit:
		return nil, true
	case *syntax.ListExpr:
		out := []any{}
		ok := true
		for _, x := range e.Elems {
			v, ok1 := c.constValue(x, bareStrings)
			ok = ok && ok1
			out = append(out, v)
		}
		return out, ok
	case *syntax.ObjectExpr:
		out := map[string]any{}
		ok := true
		for _, en := range e.Entries {
			v, ok1 := c.constValue(en.Value, bareStrings)
			ok = ok && ok1
			out[en.Key] = v
		}
		return out, ok
	case *syntax.UnaryExpr:
		if v, ok := constNumber(e); ok {
			return v, true
		}
	case *syntax.NameExpr:
		if bareStrings && len(e.Name.Segs) == 1 && e.Name.Segs[0].Kind == syntax.SegIdent {
			return e.Name.Segs[0].Text, true
		}
		hint := fmt.Sprintf("write it as a string: %q", e.Name.String())
		c.errorf(e.Span, hint, "%s is not a constant: a value here must be a literal", e.Name)
		return nil, false
	}
	c.errorf(e.Range(), "", "not a constant: a value here must be a literal, a list, an object or a negative number")
	return nil, false
}

// isLiteral says whether e is what constValue accepts without bare
// strings: a literal, a negative number, or a list or object of them.
func isLiteral(e syntax.Expr) bool {
	switch e := e.(type) {
	case *syntax.IntLit, *syntax.FloatLit, *syntax.StringLit, *syntax.BoolLit, *syntax.NullLit:
		return true
	case *syntax.ListExpr:
		for _, x := range e.Elems {
			if !isLiteral(x) {
				return false
			}
		}
		return true
	case *syntax.ObjectExpr:
		for _, en := range e.Entries {
			if !isLiteral(en.Value) {
				return false
			}
		}
		return true
	case *syntax.UnaryExpr:
		_, ok := constNumber(e)
		return ok
	}
	return false
}

// claim is a left config path some config rule claims.
type claim struct {
	segs []string
	name *syntax.Name
	rule *cruleInfo
}

// related reports whether a is equal to, under or above b; a * segment
// (a config each's node pattern) matches any one segment.
func related(a, b []string) bool {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] && a[i] != "*" && b[i] != "*" {
			return false
		}
	}
	return true
}

// claimed returns whether path is equal to, under or above a claimed path.
func (c *checker) claimed(path []string) bool {
	for _, cl := range c.claimList {
		if related(path, cl.segs) {
			return true
		}
	}
	return false
}

// resolveNames checks every name read by an expression.
func (c *checker) resolveNames() {
	for _, u := range c.nameUses {
		path := pathOf(u.name).Segs
		if u.each != nil && len(u.name.Segs) > 0 && u.name.Segs[0].Kind == syntax.SegVar {
			// {v}.key reads the key of every node the each's patterns match.
			if !slices.ContainsFunc(u.each.expand(nodePath(u.name, u.each)), c.claimed) {
				c.undefined(u)
			}
			continue
		}
		if len(path) == 1 {
			if u.sc.lookupVar(path[0]) != nil {
				continue
			}
			if l := c.lets[path[0]]; l != nil {
				if u.sc.letLimit < 0 || l.index < u.sc.letLimit {
					l.used = true
					continue
				}
				if !c.claimed(path) {
					c.errorf(u.name.Span, "move the let above this one", "let %s is used before its definition (line %d)", path[0], l.decl.Pos.Line)
					c.bad[path[0]] = true
					l.used = true
					continue
				}
			}
		}
		if c.claimed(path) {
			continue
		}
		c.undefined(u)
	}
	for _, l := range c.letOrder {
		if !l.used {
			c.warnf(l.decl.Name.Span, "remove it, or use it", "let %s is never used", l.decl.Name.Name)
		}
	}
	for _, b := range c.locals {
		if !b.used {
			c.warnf(b.span, "remove it, or use it", "let %s is never used", b.name)
		}
	}
}

func (c *checker) undefined(u nameUse) {
	text := u.name.String()
	var cands []string
	for _, v := range u.sc.vars {
		cands = append(cands, v.name)
	}
	for _, l := range c.letOrder {
		if u.sc.letLimit < 0 || l.index < u.sc.letLimit {
			cands = append(cands, l.decl.Name.Name)
		}
	}
	for _, cl := range c.claimList {
		cands = append(cands, strings.Join(cl.segs, "."))
	}
	hint := diag.DidYouMean(text, cands)
	if hint == "" {
		for _, s := range c.samples {
			if _, ok := s.ir.Values[text]; ok {
				hint = fmt.Sprintf("sample %s sets %s, but no config rule claims it: add a rule for it, or `keep %s`", s.ir.Name, text, text)
				break
			}
		}
	}
	if hint == "" {
		hint = "a name must be a let, a loop variable in scope, or a left config key that a config rule claims"
	}
	c.errorf(u.name.Span, hint, "undefined name %s", text)
	c.bad[text] = true
}
