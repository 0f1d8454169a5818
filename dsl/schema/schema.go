// Package schema reads parameter schema files (*.params): which parameters,
// by name and shape, a program creates for a model config. A checkpoint
// side keeps one per program version it writes for (Fast-LLM's in
// engine/format/fastllm/schema), and the planner holds every conversion's
// tensors to it, as the program's loader would, before a byte is written.
//
// The language is the .map language's tensor block with one side (see
// docs/mappings.md, "Parameter schemas"):
//
//	schema main
//	let hidden = hidden_size default 1024
//	embeddings.word_embeddings_weight: [embeddings.vocab_size, hidden]
//	when not tied_embedding_weight {
//	  head.output_weights: [embeddings.vocab_size, hidden]
//	}
//	each i < decoder.num_blocks: decoder.{i} {
//	  let block = decoder.{i}
//	  require block.mixer.type == "attention"
//	  mixer.query.weight: [block.mixer.heads * block.mixer.head_size, hidden]
//	}
//
// Expressions are the .map language's, over the config the side gives
// (ir.Env); a name is a let or loop variable in scope, else a config path.
// A let bound to a config node reads its keys (block.mixer.heads). A name
// may hold placeholders {v} for loop variables and lets in scope, replaced
// by their decimal value before the lookup (decoder.{i}); how such a path
// resolves is the side's business. `let x = e default d` takes d when e is
// null, which is how a schema states the program's defaults for keys a
// config leaves out. `require c` says the schema describes only configs for
// which c holds: any other is refused rather than checked against a wrong
// parameter set.
package schema

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mapper-dev/mapper/dsl/check"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Schema is one checked schema file.
type Schema struct {
	Name  string // the header's name: the program version it describes
	File  string
	Items []Item
}

// Item is one item of a schema: *Let, *When, *Each, *Require, *Param,
// *Use, or at the top level *Part.
type Item interface{ item() }

// Part is `part Name(Params) { Items }`: items declared once, for every Use
// of it. Its items see the top-level lets above it and its parameters.
type Part struct {
	Name   string
	Params []string
	Items  []Item
	Pos    ir.Pos
}

// Use is `[Prefix:] Part(Args)`: Part's items with its parameters bound to
// Args and its parameter names under Prefix (empty: the enclosing prefix).
type Use struct {
	Part   *Part
	Prefix ir.Pattern
	Args   []ir.Expr
	Pos    ir.Pos
}

// Let binds Name to Expr, or to Default when Expr is null, for the items
// after it in its block.
type Let struct {
	Name    string
	Expr    ir.Expr
	Default ir.Expr // nil: none
	Pos     ir.Pos
}

// When holds Then when Cond does, else Else.
type When struct {
	Cond       ir.Expr
	Then, Else []Item
	Pos        ir.Pos
}

// Each runs Items once for every Var in [0, Bound), their names under
// Prefix (which uses {Var}).
type Each struct {
	Var    string
	Bound  ir.Expr
	Prefix ir.Pattern
	Items  []Item
	Pos    ir.Pos
}

// Require refuses a config for which Cond does not hold. Text is the
// condition as written, for messages.
type Require struct {
	Cond ir.Expr
	Text string
	Pos  ir.Pos
}

// Param is one parameter: its name pattern, below the enclosing prefixes,
// and its shape.
type Param struct {
	Pattern ir.Pattern
	Shape   []ir.Expr
	Pos     ir.Pos
}

func (*Part) item()    {}
func (*Use) item()     {}
func (*Let) item()     {}
func (*When) item()    {}
func (*Each) item()    {}
func (*Require) item() {}
func (*Param) item()   {}

// Load parses and checks a schema file. The schema is nil when the list
// holds errors.
func Load(filename string, src []byte) (*Schema, diag.List) {
	f, diags := syntax.ParseSchema(filename, src)
	if f == nil {
		return nil, diags
	}
	l := &loader{lets: map[string]syntax.Span{}, parts: map[string]*Part{}, src: f.Source()}
	l.collectLets(f.Items)
	s := &Schema{Name: f.Name.Name, File: filename, Items: l.items(f.Items, frame{top: true})}
	diags = append(diags, l.diags...).Sort()
	if diags.HasErrors() {
		return nil, diags
	}
	return s, diags
}

type loader struct {
	src   []byte
	diags diag.List
	lets  map[string]syntax.Span // every let of the file, for "not in scope" errors
	parts map[string]*Part       // the parts declared so far
}

// frame is what an item sees: the loop variables and the lets (part
// parameters included) in scope.
type frame struct {
	vars []string // each variables, outermost first
	lets []string
	top  bool // the file's top level, where parts are declared
}

func (f frame) has(name string) bool {
	return slices.Contains(f.vars, name) || slices.Contains(f.lets, name)
}

func (l *loader) errorf(s syntax.Span, hint, format string, args ...any) {
	l.diags.Add(diag.Error, s.Pos, s.End, hint, format, args...)
}

func (l *loader) collectLets(items []syntax.SchemaItem) {
	for _, it := range items {
		var inner [][]syntax.SchemaItem
		switch it := it.(type) {
		case *syntax.SchemaLet:
			if _, ok := l.lets[it.Name.Name]; !ok {
				l.lets[it.Name.Name] = it.Name.Span
			}
		case *syntax.SchemaWhen:
			inner = append(inner, it.Then)
			if it.Else != nil {
				inner = append(inner, it.Else.Items)
			}
		case *syntax.SchemaEach:
			inner = append(inner, it.Items)
		case *syntax.PartDecl:
			inner = append(inner, it.Items)
		}
		for _, items := range inner {
			l.collectLets(items)
		}
	}
}

// bindName checks that a name about to be bound is not in scope already:
// a schema never shadows, so every name means one thing where it is read.
func (l *loader) bindName(id *syntax.Ident, fr frame) {
	if fr.has(id.Name) {
		l.errorf(id.Span, "give it another name", "%s is already bound in this scope", id.Name)
	}
}

// items lowers a block.
func (l *loader) items(items []syntax.SchemaItem, fr frame) []Item {
	var out []Item
	fr.lets = slices.Clip(fr.lets)
	top := fr.top
	fr.top = false // the blocks inside
	for _, it := range items {
		switch it := it.(type) {
		case *syntax.PartDecl:
			out = append(out, l.part(it, fr, top))
		case *syntax.PartUse:
			out = append(out, l.use(it, fr))
		case *syntax.SchemaLet:
			l.bindName(it.Name, fr)
			let := &Let{Name: it.Name.Name, Expr: l.expr(it.Value, fr), Pos: it.Pos}
			if it.Default != nil {
				let.Default = l.expr(it.Default, fr)
			}
			fr.lets = append(fr.lets, let.Name)
			out = append(out, let)
		case *syntax.SchemaWhen:
			w := &When{Cond: l.expr(it.Cond, fr), Then: l.items(it.Then, fr), Pos: it.Pos}
			if it.Else != nil {
				w.Else = l.items(it.Else.Items, fr)
			}
			out = append(out, w)
		case *syntax.SchemaEach:
			v := it.Var.Name
			l.bindName(it.Var, fr)
			bound := l.expr(it.Bound, fr)
			inner := frame{vars: append(slices.Clip(fr.vars), v), lets: fr.lets}
			p := l.pattern(it.Prefix, inner)
			if !slices.ContainsFunc(p, func(pp ir.PatternPart) bool { return pp.Var == v }) {
				l.errorf(it.Prefix.Span, fmt.Sprintf("write it as %s.{%s}", it.Prefix, v),
					"the prefix %s does not use {%s}: every iteration would declare the same names", it.Prefix, v)
			}
			out = append(out, &Each{Var: v, Bound: bound, Prefix: ir.Pattern{Parts: p}, Items: l.items(it.Items, inner), Pos: it.Pos})
		case *syntax.Require:
			r := it.Cond.Range()
			out = append(out, &Require{Cond: l.expr(it.Cond, fr), Text: string(l.src[r.Pos.Offset:r.End.Offset]), Pos: it.Pos})
		case *syntax.Ref:
			if it.DType != nil {
				l.errorf(it.DType.Span, "remove it", "a parameter schema declares shapes only: the loader converts any dtype")
			}
			if !it.HasShape {
				l.errorf(it.Name.Span, fmt.Sprintf("write %s: [...]", it.Name), "parameter %s declares no shape", it.Name)
			}
			p := &Param{Pattern: ir.Pattern{Parts: l.pattern(it.Name, fr)}, Pos: it.Pos}
			for _, x := range it.Shape {
				d := l.expr(x, fr)
				if err := ir.DimConstError(d); err != nil {
					l.errorf(x.Range(), "", "%s", evalMsg(err))
				}
				p.Shape = append(p.Shape, d)
			}
			out = append(out, p)
		}
	}
	return out
}

// part lowers a part declaration: its items see the lets above it and its
// parameters, and no loop variable.
func (l *loader) part(d *syntax.PartDecl, fr frame, top bool) *Part {
	if !top {
		l.errorf(d.Name.Span, "declare it at the top level of the file", "part %s is declared inside a block", d.Name.Name)
	}
	p := &Part{Name: d.Name.Name, Pos: d.Pos}
	if prev, dup := l.parts[p.Name]; dup {
		l.errorf(d.Name.Span, "", "part %s is already declared at line %d", p.Name, prev.Pos.Line)
	}
	inner := frame{lets: fr.lets}
	for _, id := range d.Params {
		l.bindName(id, inner)
		inner.lets = append(slices.Clip(inner.lets), id.Name)
		p.Params = append(p.Params, id.Name)
	}
	p.Items = l.items(d.Items, inner)
	l.parts[p.Name] = p // after its items: a part cannot use itself
	return p
}

func (l *loader) use(u *syntax.PartUse, fr frame) *Use {
	out := &Use{Pos: u.Pos}
	for _, a := range u.Args {
		out.Args = append(out.Args, l.expr(a, fr))
	}
	if u.Prefix != nil {
		out.Prefix = ir.Pattern{Parts: l.pattern(u.Prefix, fr)}
	}
	p, ok := l.parts[u.Part.Name]
	if !ok {
		var known []string
		for n := range l.parts {
			known = append(known, n)
		}
		l.errorf(u.Part.Span, diag.DidYouMean(u.Part.Name, known), "unknown part %s (a part is used after its declaration)", u.Part.Name)
		return out
	}
	if len(u.Args) != len(p.Params) {
		l.errorf(u.Span, "", "part %s takes %d arguments (%s), got %d", p.Name, len(p.Params), strings.Join(p.Params, ", "), len(u.Args))
	}
	out.Part = p
	return out
}

// appendLit appends literal text, merged into a literal part before it.
func appendLit(parts []ir.PatternPart, lit string) []ir.PatternPart {
	if n := len(parts); n > 0 && parts[n-1].Var == "" {
		parts[n-1].Lit += lit
		return parts
	}
	return append(parts, ir.PatternPart{Lit: lit})
}

// pattern splits a parameter name or prefix into literal text and
// placeholders; a placeholder must be a loop variable in scope.
func (l *loader) pattern(n *syntax.Name, fr frame) []ir.PatternPart {
	var parts []ir.PatternPart
	for i, s := range n.Segs {
		if i > 0 {
			parts = appendLit(parts, ".")
		}
		switch s.Kind {
		case syntax.SegVar:
			if !slices.Contains(fr.vars, s.Text) {
				l.errorf(s.Span, "a parameter name's placeholders are the variables of the each loops around it", "placeholder {%s} in %s is not bound", s.Text, n)
			}
			parts = append(parts, ir.PatternPart{Var: s.Text})
			continue
		case syntax.SegStar:
			l.errorf(s.Span, "", "* cannot stand in a parameter name")
		}
		parts = appendLit(parts, s.Text)
	}
	return parts
}

// expr lowers an expression and checks the names it reads against the
// scope: a placeholder must be bound, and a let must be in scope where it is
// read (otherwise the name would silently read the config).
func (l *loader) expr(e syntax.Expr, fr frame) ir.Expr {
	x, diags := check.LowerExpr(e)
	l.diags = append(l.diags, diags...)
	l.names(e, fr)
	return x
}

func (l *loader) names(e syntax.Expr, fr frame) {
	syntax.ExprNames(e, func(n *syntax.Name) {
		for i, s := range n.Segs {
			switch {
			case s.Kind == syntax.SegVar && !fr.has(s.Text):
				l.errorf(s.Span, "a placeholder in an expression is a loop variable or a let in scope", "placeholder {%s} in %s is not bound", s.Text, n)
			case i == 0 && s.Kind == syntax.SegIdent && !fr.has(s.Text):
				if def, ok := l.lets[s.Text]; ok {
					l.errorf(s.Span, "a let is visible after it in its block and the blocks inside",
						"let %s (line %d) is not in scope here", s.Text, def.Pos.Line)
				}
			}
		}
	})
}

func evalMsg(err error) string {
	if ee, ok := err.(*ir.EvalError); ok {
		return ee.Msg
	}
	return err.Error()
}

// Declared is one parameter a schema declares for a config.
type Declared struct {
	Name  string
	Shape tensor.Shape
	Pos   ir.Pos // the declaration
	// Use is where the part that declares it is used, innermost first (the
	// line that says what the part's parameters are); zero outside parts.
	Use  ir.Pos
	Part string
}

// Expand evaluates the schema on a config: every parameter it declares, in
// declaration order. Errors are *ir.EvalError at the item that failed: an
// expression that does not evaluate, a require that does not hold, two
// declarations of one name. limit caps the work (loop iterations plus
// parameters), since a config's loop bounds can be anything: past it,
// Expand fails naming the loop that ran away.
func (s *Schema) Expand(cfg ir.Env, limit int) ([]Declared, error) {
	x := &expander{limit: limit, seen: map[string]ir.Pos{}, parts: map[*Part]*env{}}
	err := x.items(s.Items, &env{cfg: cfg}, "")
	return x.out, err
}

type expander struct {
	out   []Declared
	seen  map[string]ir.Pos
	parts map[*Part]*env // each part's scope: where it is declared
	steps int
	limit int
	loop  *Each // innermost loop running, for the limit's message
	bound int64
	use   *Use // innermost part use running
}

func (x *expander) step(pos ir.Pos) error {
	if x.steps++; x.steps <= x.limit {
		return nil
	}
	if x.loop != nil {
		return &ir.EvalError{Pos: x.loop.Pos, Msg: fmt.Sprintf("each %s < %s: %s = %d declares more than %d parameters",
			x.loop.Var, ir.Format(x.loop.Bound), ir.Format(x.loop.Bound), x.bound, x.limit)}
	}
	return &ir.EvalError{Pos: pos, Msg: fmt.Sprintf("the schema declares more than %d parameters", x.limit)}
}

// under joins a name below a prefix.
func under(prefix, name string) string {
	if prefix == "" || name == "" {
		return prefix + name
	}
	return prefix + "." + name
}

func (x *expander) items(items []Item, e *env, prefix string) error {
	for _, it := range items {
		switch it := it.(type) {
		case *Part:
			x.parts[it] = e
		case *Use:
			args := make([]any, len(it.Args))
			for i, a := range it.Args {
				v, err := ir.Eval(a, e)
				if err != nil {
					return err
				}
				args[i] = v
			}
			pe := x.parts[it.Part]
			for i, name := range it.Part.Params {
				pe = pe.bind(name, args[i], nil)
			}
			outer := x.use
			x.use = it
			at := under(prefix, e.expand(it.Prefix))
			err := x.items(it.Part.Items, pe, at)
			x.use = outer
			if err != nil {
				var ee *ir.EvalError
				if errors.As(err, &ee) && !strings.Contains(ee.Msg, "(in ") {
					where := ""
					if at != "" {
						where = ", for " + at
					}
					return &ir.EvalError{Pos: ee.Pos, Msg: fmt.Sprintf("%s (in %s at line %d%s)", ee.Msg, it.Part.Name, it.Pos.Line, where)}
				}
				return err
			}
		case *Let:
			v, err := ir.Eval(it.Expr, e)
			if err == nil && v == nil && it.Default != nil {
				v, err = ir.Eval(it.Default, e)
			}
			if err != nil {
				return err
			}
			e = e.bind(it.Name, v, it)
		case *When:
			ok, err := ir.EvalBool(it.Cond, e)
			if err != nil {
				return err
			}
			branch := it.Else
			if ok {
				branch = it.Then
			}
			if err := x.items(branch, e, prefix); err != nil {
				return err
			}
		case *Each:
			n, err := ir.EvalInt(it.Bound, e)
			if err != nil {
				return err
			}
			if n < 0 {
				return &ir.EvalError{Pos: it.Pos, Msg: fmt.Sprintf("each %s < %s: the bound is %d; it must not be negative", it.Var, ir.Format(it.Bound), n)}
			}
			outer, outerBound := x.loop, x.bound
			x.loop, x.bound = it, n
			for i := range n {
				if err := x.step(it.Pos); err != nil {
					return err
				}
				ie := e.bind(it.Var, i, nil)
				if err := x.items(it.Items, ie, under(prefix, ie.expand(it.Prefix))); err != nil {
					return err
				}
			}
			x.loop, x.bound = outer, outerBound
		case *Require:
			ok, err := ir.EvalBool(it.Cond, e)
			if err != nil {
				return err
			}
			if !ok {
				msg := "requires " + it.Text
				if b := ir.Bindings(it.Cond, e); b != "" {
					msg += ", but " + b
				}
				return &ir.EvalError{Pos: it.Pos, Msg: msg}
			}
		case *Param:
			if err := x.step(it.Pos); err != nil {
				return err
			}
			name := under(prefix, e.expand(it.Pattern))
			if prev, dup := x.seen[name]; dup {
				return &ir.EvalError{Pos: it.Pos, Msg: fmt.Sprintf("parameter %s is also declared at line %d", name, prev.Line)}
			}
			x.seen[name] = it.Pos
			d := Declared{Name: name, Pos: it.Pos, Shape: make(tensor.Shape, 0, len(it.Shape))}
			if x.use != nil {
				d.Use, d.Part = x.use.Pos, x.use.Part.Name
			}
			for _, dim := range it.Shape {
				n, err := ir.EvalDim(dim, e)
				if err != nil {
					return err
				}
				d.Shape = append(d.Shape, int(n))
			}
			x.out = append(x.out, d)
		}
	}
	return nil
}

// env is the scope an expression is evaluated in: a chain of bindings over
// the config.
type env struct {
	cfg    ir.Env
	parent *env
	name   string
	value  any
	let    *Let // nil for a loop variable
}

func (e *env) bind(name string, v any, let *Let) *env {
	return &env{cfg: e.cfg, parent: e, name: name, value: v, let: let}
}

func (e *env) find(name string) *env {
	for b := e; b != nil && b.name != ""; b = b.parent {
		if b.name == name {
			return b
		}
	}
	return nil
}

// Lookup implements ir.Env: placeholders are replaced by their values, a
// bound name's value is read (and descended into when the path goes on),
// anything else is the config's.
func (e *env) Lookup(path []string) (any, bool) {
	resolved := make([]string, len(path))
	for i, seg := range path {
		if !strings.HasPrefix(seg, "{") {
			resolved[i] = seg
			continue
		}
		b := e.find(strings.Trim(seg, "{}"))
		if b == nil {
			return nil, false
		}
		n, ok := b.value.(int64)
		if !ok {
			return nil, false
		}
		resolved[i] = strconv.FormatInt(n, 10)
	}
	if b := e.find(resolved[0]); b != nil {
		v := b.value
		for _, seg := range resolved[1:] {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[seg]; !ok {
				return nil, false
			}
		}
		return v, true
	}
	return e.cfg.Lookup(resolved)
}

// Let implements ir.LetEnv, so that messages show what a let stands for.
func (e *env) Let(name string) (ir.Expr, bool) {
	if b := e.find(name); b != nil && b.let != nil {
		return b.let.Expr, true
	}
	return nil, false
}

func (e *env) expand(p ir.Pattern) string {
	var sb strings.Builder
	for _, part := range p.Parts {
		if part.Var == "" {
			sb.WriteString(part.Lit)
			continue
		}
		v, _ := e.find(part.Var).value.(int64) // Load checked that every placeholder is a loop variable
		sb.WriteString(strconv.FormatInt(v, 10))
	}
	return sb.String()
}
