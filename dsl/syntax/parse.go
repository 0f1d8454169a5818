package syntax

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/mapper-dev/mapper/dsl/diag"
)

// Parse parses one .map file. On syntax errors (lexical or grammatical)
// the file is nil and the list holds them in source order: after each, the
// parse resumes at the next declaration, so independent slips are all
// reported, at most one per declaration and ten in all (errors.go). Each
// is positioned at the offending token with what was expected there. A few
// malformed constructs the grammar lets through (an integer that
// overflows, a cycle with several right paths, ...) are reported after a
// clean parse, all together, with the file still returned.
func Parse(filename string, src []byte) (f *File, diags diag.List) {
	lines := newLineTable(filename, src)
	defer func() {
		// The parser generator panics on some grammar mistakes; never let
		// that reach a caller.
		if r := recover(); r != nil {
			f, diags = nil, diag.List{{Severity: diag.Error, Pos: lines.pos(0), End: lines.pos(0),
				Message: fmt.Sprintf("internal error in the parser: %v", r)}}
		}
	}()
	toks, bad := tokenize(filename, src)
	g, diags := (&errParser{src: src, lines: lines, toks: toks, bad: bad}).parse()
	if g == nil {
		return nil, diags
	}
	c := &converter{lines: lines}
	f = c.file(g, src)
	f.Comments = scanComments(filename, src, lines)
	return f, c.diags.Sort()
}

// scanComments collects every comment; the source is known to lex cleanly.
func scanComments(filename string, src []byte, lines *lineTable) []*Comment {
	var out []*Comment
	lx := &scanner{file: filename, src: src, line: 1, col: 1, trivia: true}
	for {
		t, err := lx.Next()
		if err != nil || t.EOF() {
			return out
		}
		if t.Type == tokComment {
			out = append(out, &Comment{
				Span: Span{lines.pos(t.Pos.Offset), lines.pos(t.Pos.Offset + len(t.Value))},
				Text: strings.TrimRight(t.Value, " \t\r"),
			})
		}
	}
}

// converter builds the AST from the participle structs.
type converter struct {
	lines *lineTable
	diags diag.List
}

func (c *converter) pos(t lexer.Position) Pos { return c.lines.pos(t.Offset) }

func (c *converter) tokSpan(t tok) Span {
	return Span{c.lines.pos(t.Pos.Offset), c.lines.pos(t.Pos.Offset + len(t.Value))}
}

func (c *converter) spanTo(from Pos, t tok) Span {
	return Span{from, c.lines.pos(t.Pos.Offset + len(t.Value))}
}

// tokensSpan covers the non-elided tokens of a grammar node.
func (c *converter) tokensSpan(toks []tok) Span {
	first, last := -1, -1
	for i, t := range toks {
		if t.Type == tokWhitespace || t.Type == tokComment || t.EOF() {
			continue
		}
		if first < 0 {
			first = i
		}
		last = i
	}
	if first < 0 {
		return Span{}
	}
	return Span{c.lines.pos(toks[first].Pos.Offset), c.lines.pos(toks[last].Pos.Offset + len(toks[last].Value))}
}

func join(a, b Span) Span { return Span{a.Pos, b.End} }

func (c *converter) errorf(s Span, format string, args ...any) {
	c.diags.Errorf(s.Pos, s.End, format, args...)
}

func (c *converter) ident(t tok) *Ident { return &Ident{Span: c.tokSpan(t), Name: t.Value} }

// target converts a header's `target "..."`; nil when there is none.
func (c *converter) target(g *gTarget) *Target {
	if g == nil {
		return nil
	}
	v, _ := strconv.Unquote(g.Value.Value) // the scanner checked it
	lit := &StringLit{Span: c.tokSpan(g.Value), Value: v}
	return &Target{Span: Span{c.pos(g.Kw.Pos), lit.End}, Value: lit}
}

func (c *converter) file(g *gFile, src []byte) *File {
	f := &File{
		Filename:  c.lines.file,
		MappingKw: c.pos(g.Mapping.Pos),
		Name:      c.ident(g.Name),
		LeftKw:    c.pos(g.LeftKw.Pos),
		Left:      c.ident(g.Left),
		RightKw:   c.pos(g.RightKw.Pos),
		Right:     c.ident(g.Right),
		src:       src,
	}
	f.LeftTarget, f.RightTarget = c.target(g.LeftTgt), c.target(g.RightTg)
	if g.OneWay != nil {
		f.OneWay = true
		f.OneWayEnd = c.tokSpan(*g.OneWay).End
	}
	f.Span = Span{c.lines.pos(0), c.lines.pos(len(src))}
	for _, d := range g.Decls {
		switch {
		case d.Include != nil:
			v, _ := strconv.Unquote(d.Include.Path.Value) // the scanner checked it
			lit := &StringLit{Span: c.tokSpan(d.Include.Path), Value: v}
			f.Decls = append(f.Decls, &IncludeDecl{Span: Span{c.pos(d.Include.Kw.Pos), lit.End}, Path: lit})
		case d.Sample != nil:
			f.Decls = append(f.Decls, c.sample(d.Sample))
		case d.Let != nil:
			f.Decls = append(f.Decls, c.let(d.Let))
		case d.Config != nil:
			f.Decls = append(f.Decls, c.config(d.Config))
		case d.Tensors != nil:
			f.Decls = append(f.Decls, c.tensors(d.Tensors))
		case d.Variant != nil:
			f.Decls = append(f.Decls, c.variant(d.Variant))
		}
	}
	return f
}

func (c *converter) sample(g *gSample) *SampleDecl {
	s := &SampleDecl{
		Span:   c.spanTo(c.pos(g.Kw.Pos), g.RBrace),
		Name:   c.ident(g.Name),
		LBrace: c.pos(g.LBrace.Pos),
		RBrace: c.pos(g.RBrace.Pos),
	}
	for _, e := range g.Entries {
		key := c.name(e.Key)
		val := c.expr(e.Value)
		s.Entries = append(s.Entries, &SampleEntry{Span: join(key.Span, val.Range()), Key: key, Value: val})
	}
	return s
}

func (c *converter) variant(g *gVariant) *VariantDecl {
	v := &VariantDecl{
		Span:   c.spanTo(c.pos(g.Kw.Pos), g.RBrace),
		Name:   c.ident(g.Name),
		LBrace: c.pos(g.LBrace.Pos),
		RBrace: c.pos(g.RBrace.Pos),
	}
	if g.When != nil {
		v.When = c.expr(g.When)
	}
	for _, b := range g.Blocks {
		if b.Config != nil {
			v.Blocks = append(v.Blocks, c.config(b.Config))
		} else {
			v.Blocks = append(v.Blocks, c.tensors(b.Tensors))
		}
	}
	return v
}

func (c *converter) let(g *gLet) *LetDecl {
	v := c.expr(g.Value)
	return &LetDecl{Span: join(c.tokSpan(g.Kw), v.Range()), Name: c.ident(g.Name), Value: v}
}

func (c *converter) config(g *gConfig) *ConfigBlock {
	return &ConfigBlock{
		Span:   c.spanTo(c.pos(g.Kw.Pos), g.RBrace),
		LBrace: c.pos(g.LBrace.Pos),
		RBrace: c.pos(g.RBrace.Pos),
		Items:  c.citems(g.Items),
	}
}

func (c *converter) citems(gs []*gCItem) []ConfigItem {
	var out []ConfigItem
	for _, g := range gs {
		switch {
		case g.Each != nil:
			e := &ConfigEach{
				Span:   c.spanTo(c.pos(g.Each.Kw.Pos), g.Each.RBrace),
				Var:    c.ident(g.Each.Var),
				LBrace: c.pos(g.Each.LBrace.Pos),
				RBrace: c.pos(g.Each.RBrace.Pos),
				Items:  c.citems(g.Each.Items),
			}
			for _, n := range g.Each.Nodes {
				l, r := c.name(n.Left), c.name(n.Right)
				e.Nodes = append(e.Nodes, &NodePair{Span: join(l.Span, r.Span), Left: l, Right: r})
			}
			out = append(out, e)
		case g.Use != nil:
			u := &UseItem{Span: c.spanTo(c.pos(g.Use.Kw.Pos), g.Use.RParen), Name: c.ident(g.Use.Name)}
			for _, a := range g.Use.Args {
				v := c.expr(a.Value)
				u.Args = append(u.Args, &UseArg{Span: join(c.tokSpan(a.Name), v.Range()), Name: c.ident(a.Name), Value: v})
			}
			out = append(out, u)
		case g.When != nil:
			w := &ConfigWhen{
				Span:   c.spanTo(c.pos(g.When.Kw.Pos), g.When.RBrace),
				Cond:   c.expr(g.When.Cond),
				LBrace: c.pos(g.When.LBrace.Pos),
				RBrace: c.pos(g.When.RBrace.Pos),
				Then:   c.citems(g.When.Then),
			}
			if e := g.When.Else; e != nil {
				w.Else = &ConfigElse{
					Span:   c.spanTo(c.pos(e.Kw.Pos), e.RBrace),
					LBrace: c.pos(e.LBrace.Pos),
					RBrace: c.pos(e.RBrace.Pos),
					Items:  c.citems(e.Items),
				}
				w.End = w.Else.End
			}
			out = append(out, w)
		case g.Keep != nil:
			k := &KeepItem{Ignore: g.Keep.Kw.Value == "ignore"}
			for _, n := range g.Keep.Keys {
				k.Keys = append(k.Keys, c.name(n))
			}
			k.Span = join(c.tokSpan(g.Keep.Kw), k.Keys[len(k.Keys)-1].Span)
			out = append(out, k)
		case g.Const != nil:
			v := c.expr(g.Const.Value)
			out = append(out, &ConstItem{
				Span:     join(c.tokSpan(g.Const.Side), v.Range()),
				Right:    g.Const.Side.Value == "right",
				Key:      c.name(g.Const.Key),
				Optional: g.Const.Op.Value == "default",
				Value:    v,
			})
		case g.Refuse != nil:
			msg, _ := strconv.Unquote(g.Refuse.Msg.Value) // the scanner checked it
			out = append(out, &RefuseItem{Span: join(c.tokSpan(g.Refuse.Kw), c.tokSpan(g.Refuse.Msg)), Message: msg})
		case g.Rule != nil:
			out = append(out, c.crule(g.Rule))
		}
	}
	return out
}

func (c *converter) crule(g *gCRule) ConfigItem {
	left := c.name(g.Left)
	var right []*Name
	for _, n := range g.Right {
		right = append(right, c.name(n))
	}
	if g.Cycle != nil {
		cy := &CycleItem{
			Left:     left,
			Right:    right[0],
			Length:   c.expr(g.Cycle.Length),
			Verbatim: g.Cycle.Verbatim != nil,
			Table:    c.table(g.Cycle.Table),
		}
		cy.Span = join(left.Span, cy.Table.Span)
		if g.LeftDefault != nil {
			c.errorf(c.expr(g.LeftDefault).Range(), "a cycle rule takes no default")
		}
		if g.RightDefault != nil {
			c.errorf(c.expr(g.RightDefault).Range(), "a cycle rule takes no default")
		}
		if g.Map != nil {
			c.errorf(c.table(g.Map).Span, "a cycle rule takes no value map: its table is the map")
		}
		if len(right) > 1 {
			c.errorf(join(right[1].Span, right[len(right)-1].Span), "a cycle rule maps to exactly one right node, not %d paths", len(right))
		}
		return cy
	}
	r := &RenameItem{Left: left, Right: right}
	r.Span = join(left.Span, right[len(right)-1].Span)
	if g.LeftDefault != nil {
		r.LeftDefault = c.expr(g.LeftDefault)
	}
	if g.LeftFor != nil {
		r.LeftFor = c.expr(g.LeftFor)
	}
	if g.RightDefault != nil {
		r.RightDefault = c.expr(g.RightDefault)
		r.End = r.RightDefault.Range().End
	}
	if g.Map != nil {
		r.Map = c.table(g.Map)
		r.End = r.Map.End
	}
	return r
}

func (c *converter) table(g *gTable) *ValueTable {
	t := &ValueTable{Span: c.spanTo(c.pos(g.LBrace.Pos), g.RBrace)}
	for _, e := range g.Entries {
		l, r := c.expr(e.Left), c.expr(e.Right)
		t.Entries = append(t.Entries, &TableEntry{Span: join(l.Range(), r.Range()), Left: l, Right: r})
	}
	return t
}

func (c *converter) tensors(g *gTensors) *TensorBlock {
	return &TensorBlock{
		Span:   c.spanTo(c.pos(g.Kw.Pos), g.RBrace),
		LBrace: c.pos(g.LBrace.Pos),
		RBrace: c.pos(g.RBrace.Pos),
		Items:  c.titems(g.Items),
	}
}

func (c *converter) titems(gs []*gTItem) []TensorItem {
	var out []TensorItem
	for _, g := range gs {
		switch {
		case g.Each != nil:
			e := g.Each
			out = append(out, &EachItem{
				Span:   c.spanTo(c.pos(e.Kw.Pos), e.RBrace),
				Var:    c.ident(e.Var),
				Bound:  c.expr(e.Bound),
				Left:   c.name(e.Left),
				Right:  c.name(e.Right),
				LBrace: c.pos(e.LBrace.Pos),
				RBrace: c.pos(e.RBrace.Pos),
				Items:  c.titems(e.Items),
			})
		case g.Let != nil:
			out = append(out, c.let(g.Let))
		case g.When != nil:
			w := &TensorWhen{
				Span:   c.spanTo(c.pos(g.When.Kw.Pos), g.When.RBrace),
				Cond:   c.expr(g.When.Cond),
				LBrace: c.pos(g.When.LBrace.Pos),
				RBrace: c.pos(g.When.RBrace.Pos),
				Then:   c.titems(g.When.Then),
			}
			if e := g.When.Else; e != nil {
				w.Else = &TensorElse{
					Span:   c.spanTo(c.pos(e.Kw.Pos), e.RBrace),
					LBrace: c.pos(e.LBrace.Pos),
					RBrace: c.pos(e.RBrace.Pos),
					Items:  c.titems(e.Items),
				}
				w.End = w.Else.End
			}
			out = append(out, w)
		case g.Ignore != nil:
			ig := &IgnoreItem{}
			for _, r := range g.Ignore.Refs {
				ig.Refs = append(ig.Refs, c.ref(r))
			}
			ig.Span = join(c.tokSpan(g.Ignore.Kw), ig.Refs[len(ig.Refs)-1].Span)
			out = append(out, ig)
		case g.Rule != nil:
			r := &RuleItem{Left: c.tuple(g.Rule.Left), Right: c.tuple(g.Rule.Right)}
			for _, o := range g.Rule.Ops {
				r.Ops = append(r.Ops, c.op(o))
			}
			r.Span = join(r.Left.Span, r.Right.Span)
			out = append(out, r)
		}
	}
	return out
}

func (c *converter) tuple(g *gTuple) *Tuple {
	if g.Single != nil {
		r := c.ref(g.Single)
		return &Tuple{Span: r.Span, Refs: []*Ref{r}}
	}
	t := &Tuple{Span: join(c.tokSpan(*g.LParen), c.tokSpan(*g.RParen)), Paren: true}
	for _, r := range g.Refs {
		t.Refs = append(t.Refs, c.ref(r))
	}
	return t
}

func (c *converter) ref(g *gRef) *Ref {
	r := &Ref{Name: c.name(g.Name)}
	r.Span = r.Name.Span
	if g.Colon != nil {
		r.End = c.tokSpan(*g.Colon).End
	}
	if g.DType != nil {
		r.DType = c.ident(*g.DType)
		r.End = r.DType.End
	}
	if g.LBrack != nil {
		r.HasShape = true
		for _, e := range g.Shape {
			r.Shape = append(r.Shape, c.expr(e))
		}
		r.End = c.tokSpan(*g.RBrack).End
	}
	return r
}

func (c *converter) op(g *gOp) *OpCall {
	o := &OpCall{Name: c.ident(g.Name)}
	o.Span = o.Name.Span
	for _, a := range g.Args {
		o.Args = append(o.Args, c.expr(a))
	}
	if g.RParen != nil {
		o.End = c.tokSpan(*g.RParen).End
	}
	return o
}

// name splits a name token into its segments.
func (c *converter) name(g *gName) *Name {
	t := g.Tok
	n := &Name{Span: c.tokSpan(t)}
	off := t.Pos.Offset
	for _, part := range strings.Split(t.Value, ".") {
		s := Seg{Text: part, Span: Span{c.lines.pos(off), c.lines.pos(off + len(part))}}
		switch {
		case part == "*":
			s.Kind = SegStar
		case strings.HasPrefix(part, "{"):
			s.Kind = SegVar
			s.Text = part[1 : len(part)-1]
			if v, off, ok := strings.Cut(s.Text, "+"); ok {
				s.Text = v
				n, err := strconv.ParseInt(off, 10, 32)
				if err != nil {
					c.errorf(s.Span, "placeholder offset %s does not fit in 32 bits", off)
				}
				s.Off = n
			}
		case isDigit(part[0]):
			s.Kind = SegNumber
		default:
			s.Kind = SegIdent
		}
		n.Segs = append(n.Segs, s)
		off += len(part) + 1
	}
	return n
}

// Expressions.

func (c *converter) expr(g *gExpr) Expr {
	x := c.and(g.X)
	for _, t := range g.Rest {
		y := c.and(t.Y)
		x = &BinaryExpr{Span: join(x.Range(), y.Range()), Op: "or", OpPos: c.pos(t.Op.Pos), X: x, Y: y}
	}
	return x
}

func (c *converter) and(g *gAnd) Expr {
	x := c.not(g.X)
	for _, t := range g.Rest {
		y := c.not(t.Y)
		x = &BinaryExpr{Span: join(x.Range(), y.Range()), Op: "and", OpPos: c.pos(t.Op.Pos), X: x, Y: y}
	}
	return x
}

func (c *converter) not(g *gNot) Expr {
	if g.Not != nil {
		x := c.not(g.X)
		return &UnaryExpr{Span: join(c.tokSpan(*g.Not), x.Range()), Op: "not", X: x}
	}
	return c.cmp(g.Cmp)
}

func (c *converter) cmp(g *gCmp) Expr {
	x := c.add(g.X)
	if g.Op == nil {
		return x
	}
	y := c.add(g.Y)
	return &BinaryExpr{Span: c.tokensSpan(g.Tokens), Op: g.Op.Value, OpPos: c.pos(g.Op.Pos), X: x, Y: y}
}

func (c *converter) add(g *gAdd) Expr {
	x := c.mul(g.X)
	start := c.tokensSpan(g.X.Tokens)
	for _, t := range g.Rest {
		y := c.mul(t.Y)
		x = &BinaryExpr{Span: join(start, c.tokensSpan(t.Tokens)), Op: t.Op.Value, OpPos: c.pos(t.Op.Pos), X: x, Y: y}
	}
	return x
}

func (c *converter) mul(g *gMul) Expr {
	x := c.unary(g.X)
	start := c.tokensSpan(g.X.Tokens)
	for _, t := range g.Rest {
		y := c.unary(t.Y)
		x = &BinaryExpr{Span: join(start, c.tokensSpan(t.Tokens)), Op: t.Op.Value, OpPos: c.pos(t.Op.Pos), X: x, Y: y}
	}
	return x
}

func (c *converter) unary(g *gUnary) Expr {
	if g.Minus != nil {
		x := c.unary(g.X)
		return &UnaryExpr{Span: c.tokensSpan(g.Tokens), Op: "-", X: x}
	}
	return c.postfix(g.Prim)
}

func (c *converter) postfix(g *gPostfix) Expr {
	x := c.primary(g.X)
	start := c.tokensSpan(g.X.Tokens).Pos // a parenthesised operand starts at its (
	for _, ix := range g.Index {
		i := c.expr(ix.I)
		x = &IndexExpr{Span: c.spanTo(start, ix.RBrack), X: x, Index: i}
	}
	return x
}

func (c *converter) primary(g *gPrimary) Expr {
	switch {
	case g.Call != nil:
		call := &CallExpr{Span: c.spanTo(c.pos(g.Call.Name.Pos), g.Call.RParen), Func: c.ident(g.Call.Name)}
		for _, a := range g.Call.Args {
			call.Args = append(call.Args, c.expr(a))
		}
		return call
	case g.Name != nil:
		n := c.name(&gName{Tok: *g.Name})
		return &NameExpr{Span: n.Span, Name: n}
	case g.Int != nil:
		s := c.tokSpan(*g.Int)
		v, err := strconv.ParseInt(g.Int.Value, 10, 64)
		if err != nil {
			c.errorf(s, "integer %s does not fit in 64 bits", g.Int.Value)
		}
		return &IntLit{Span: s, Value: v}
	case g.Float != nil:
		s := c.tokSpan(*g.Float)
		v, err := strconv.ParseFloat(g.Float.Value, 64)
		if err != nil || math.IsInf(v, 0) {
			c.errorf(s, "number %s is out of range", g.Float.Value)
			v = 0
		}
		return &FloatLit{Span: s, Value: v}
	case g.String != nil:
		v, _ := strconv.Unquote(g.String.Value) // the scanner checked it
		return &StringLit{Span: c.tokSpan(*g.String), Value: v}
	case g.Const != nil:
		s := c.tokSpan(*g.Const)
		switch g.Const.Value {
		case "true":
			return &BoolLit{Span: s, Value: true}
		case "false":
			return &BoolLit{Span: s, Value: false}
		}
		return &NullLit{Span: s}
	case g.Paren != nil:
		return c.expr(g.Paren)
	case g.List != nil:
		l := &ListExpr{Span: c.spanTo(c.pos(g.List.LBrack.Pos), g.List.RBrack)}
		for _, e := range g.List.Elems {
			l.Elems = append(l.Elems, c.expr(e))
		}
		return l
	case g.Object != nil:
		o := &ObjectExpr{Span: c.spanTo(c.pos(g.Object.LBrace.Pos), g.Object.RBrace)}
		seen := map[string]bool{}
		for _, e := range g.Object.Entries {
			k, _ := strconv.Unquote(e.Key.Value)
			v := c.expr(e.Value)
			ks := c.tokSpan(e.Key)
			if seen[k] {
				c.errorf(ks, "duplicate key %q in object", k)
			}
			seen[k] = true
			o.Entries = append(o.Entries, &ObjectEntry{Span: join(ks, v.Range()), Key: k, Value: v})
		}
		return o
	}
	return &NullLit{}
}
