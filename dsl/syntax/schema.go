package syntax

import (
	"errors"
	"fmt"

	"github.com/alecthomas/participle/v2"

	"github.com/mapper-dev/mapper/dsl/diag"
)

// A parameter schema file (`*.params`) says which parameters, by name and
// shape, a program creates for a model config: what a checkpoint written for
// it must hold. It is the .map language's tensor-block syntax with one side
// only: lets, `when`/`else`, `each` loops with a name prefix, parameters
// declared as `name: [shape]`, `require` conditions, and parts (items
// declared once, used under several prefixes). Its expressions, names and
// lexer are the .map language's own; `schema`, `require` and `part` are
// words of this grammar only (they stay names in a .map file). The grammar
// is in docs/grammar.ebnf, what it means in dsl/schema.

// The participle grammar of schema files.

type gSchemaFile struct {
	Kw    tok      `parser:"@\"schema\""`
	Name  tok      `parser:"@Ident"`
	Items []*gSTop `parser:"@@*"`
}

type gSTop struct {
	Part *gSPart `parser:"  @@"`
	Item *gSItem `parser:"| @@"`
}

type gSPart struct {
	Kw     tok       `parser:"@\"part\""`
	Name   tok       `parser:"@Ident \"(\""`
	Params []*gIdent `parser:"( @@ ( \",\" @@ )* )? \")\""`
	LBrace tok       `parser:"@\"{\""`
	Items  []*gSItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

type gIdent struct {
	Tok tok `parser:"@Ident"`
}

type gSItem struct {
	Let     *gSLet    `parser:"  @@"`
	When    *gSWhen   `parser:"| @@"`
	Each    *gSEach   `parser:"| @@"`
	Require *gRequire `parser:"| @@"`
	Use     *gSUse    `parser:"| @@"`
	Param   *gRef     `parser:"| @@"`
}

type gSUse struct {
	Prefix *gName   `parser:"( @@ \":\" )?"`
	Part   tok      `parser:"@Ident \"(\""`
	Args   []*gExpr `parser:"( @@ ( \",\" @@ )* )?"`
	RParen tok      `parser:"@\")\""`
}

type gSLet struct {
	Kw      tok    `parser:"@\"let\""`
	Name    tok    `parser:"@Ident \"=\""`
	Value   *gExpr `parser:"@@"`
	Default *gExpr `parser:"( \"default\" @@ )?"`
}

type gSWhen struct {
	Kw     tok       `parser:"@\"when\""`
	Cond   *gExpr    `parser:"@@"`
	LBrace tok       `parser:"@\"{\""`
	Then   []*gSItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
	Else   *gSElse   `parser:"@@?"`
}

type gSElse struct {
	Kw     tok       `parser:"@\"else\""`
	LBrace tok       `parser:"@\"{\""`
	Items  []*gSItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

type gSEach struct {
	Kw     tok       `parser:"@\"each\""`
	Var    tok       `parser:"@Ident \"<\""`
	Bound  *gExpr    `parser:"@@ \":\""`
	Prefix *gName    `parser:"@@"`
	LBrace tok       `parser:"@\"{\""`
	Items  []*gSItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

type gRequire struct {
	Kw   tok    `parser:"@\"require\""`
	Cond *gExpr `parser:"@@"`
}

var schemaParser = participle.MustBuild[gSchemaFile](parserOptions...)

// SchemaGrammar returns participle's EBNF rendering of the schema-file
// grammar; docs/grammar.ebnf embeds it beside the .map grammar.
func SchemaGrammar() string { return schemaParser.String() }

// SchemaFile is one parsed parameter schema file.
type SchemaFile struct {
	Span
	Filename string
	SchemaKw Pos
	Name     *Ident
	Items    []SchemaItem
	Comments []*Comment
	src      []byte
}

// Source returns the text the file was parsed from.
func (f *SchemaFile) Source() []byte { return f.src }

// SchemaItem is one item of a schema file or block: *SchemaLet,
// *SchemaWhen, *SchemaEach, *Require, *PartUse, *Ref (a parameter), or at
// the top level *PartDecl.
type SchemaItem interface {
	Node
	schemaItem()
}

// SchemaLet is `let NAME = expr [default expr]`: the default is the value
// when expr is null (an absent config key).
type SchemaLet struct {
	Span
	Name    *Ident
	Value   Expr
	Default Expr // nil: none
}

// SchemaWhen is `when cond { ... } [else { ... }]` in a schema file.
type SchemaWhen struct {
	Span
	Cond           Expr
	LBrace, RBrace Pos
	Then           []SchemaItem
	Else           *SchemaElse
}

// SchemaElse is the else branch of a SchemaWhen.
type SchemaElse struct {
	Span
	LBrace, RBrace Pos
	Items          []SchemaItem
}

// SchemaEach is `each v < bound: PREFIX { ... }`.
type SchemaEach struct {
	Span
	Var            *Ident
	Bound          Expr
	Prefix         *Name
	LBrace, RBrace Pos
	Items          []SchemaItem
}

// Require is `require cond`: the config must satisfy cond for the schema to
// describe it.
type Require struct {
	Span
	Cond Expr
}

// PartDecl is `part NAME(a, b) { ... }`: items declared once and used
// wherever a PartUse names them, with a, b bound to the use's arguments.
type PartDecl struct {
	Span
	Name           *Ident
	Params         []*Ident
	LBrace, RBrace Pos
	Items          []SchemaItem
}

// PartUse is `[PREFIX:] NAME(args)`: the items of part NAME, their
// parameter names under PREFIX.
type PartUse struct {
	Span
	Prefix *Name // nil: the enclosing prefix
	Part   *Ident
	Args   []Expr
}

func (*PartDecl) schemaItem()   {}
func (*PartUse) schemaItem()    {}
func (*SchemaLet) schemaItem()  {}
func (*SchemaWhen) schemaItem() {}
func (*SchemaEach) schemaItem() {}
func (*Require) schemaItem()    {}
func (*Ref) schemaItem()        {}

// ParseSchema parses one parameter schema file. As with Parse, a syntax
// error stops the parse and the file is nil; problems the grammar lets
// through (an integer that overflows, ...) come with the file.
func ParseSchema(filename string, src []byte) (*SchemaFile, diag.List) {
	return parseWhole(schemaParser, filename, src, func(c *converter, g *gSchemaFile) *SchemaFile {
		f := &SchemaFile{
			Span:     Span{c.lines.pos(0), c.lines.pos(len(src))},
			Filename: filename,
			SchemaKw: c.pos(g.Kw.Pos),
			Name:     c.ident(g.Name),
			src:      src,
		}
		for _, t := range g.Items {
			if t.Item != nil {
				f.Items = append(f.Items, c.sitems([]*gSItem{t.Item})...)
				continue
			}
			pd := &PartDecl{
				Span:   c.spanTo(c.pos(t.Part.Kw.Pos), t.Part.RBrace),
				Name:   c.ident(t.Part.Name),
				LBrace: c.pos(t.Part.LBrace.Pos),
				RBrace: c.pos(t.Part.RBrace.Pos),
				Items:  c.sitems(t.Part.Items),
			}
			for _, p := range t.Part.Params {
				pd.Params = append(pd.Params, c.ident(p.Tok))
			}
			f.Items = append(f.Items, pd)
		}
		f.Comments = scanComments(filename, src, c.lines)
		return f
	})
}

// parseWhole parses a schema or fragment file with participle alone: a
// syntax error stops it, and the result is nil; build turns the grammar's
// tree into the AST, reporting what the grammar lets through.
func parseWhole[G, F any](p *participle.Parser[G], filename string, src []byte, build func(*converter, *G) *F) (f *F, diags diag.List) {
	lines := newLineTable(filename, src)
	defer func() {
		if r := recover(); r != nil {
			f, diags = nil, diag.List{{Severity: diag.Error, Pos: lines.pos(0), End: lines.pos(0),
				Message: fmt.Sprintf("internal error in the parser: %v", r)}}
		}
	}()
	g, err := p.ParseBytes(filename, src)
	if err != nil {
		return nil, diag.List{schemaSyntaxDiag(lines, src, err)}
	}
	c := &converter{lines: lines}
	f = build(c, g)
	return f, c.diags.Sort()
}

// schemaSyntaxDiag turns the parse error of a schema file into a
// diagnostic at the offending token. Schema files are mapper's own data,
// loaded by its tests, so participle's message is enough here; .map files,
// which users write, get the recovering parser of errors.go.
func schemaSyntaxDiag(lines *lineTable, src []byte, err error) diag.Diagnostic {
	var se *ScanError
	if errors.As(err, &se) {
		return diag.Diagnostic{Severity: diag.Error, Pos: lines.pos(se.Pos.Offset),
			End: lines.pos(min(se.Pos.Offset+se.Len, len(src))), Message: se.Msg}
	}
	var pe participle.Error
	if errors.As(err, &pe) {
		off := min(pe.Position().Offset, len(src))
		return diag.Diagnostic{Severity: diag.Error, Pos: lines.pos(off), End: lines.pos(off), Message: "syntax error: " + pe.Message()}
	}
	return diag.Diagnostic{Severity: diag.Error, Pos: lines.pos(0), End: lines.pos(0), Message: "syntax error: " + err.Error()}
}

func (c *converter) sitems(gs []*gSItem) []SchemaItem {
	var out []SchemaItem
	for _, g := range gs {
		switch {
		case g.Let != nil:
			l := &SchemaLet{Name: c.ident(g.Let.Name), Value: c.expr(g.Let.Value)}
			l.Span = join(c.tokSpan(g.Let.Kw), l.Value.Range())
			if g.Let.Default != nil {
				l.Default = c.expr(g.Let.Default)
				l.End = l.Default.Range().End
			}
			out = append(out, l)
		case g.When != nil:
			w := &SchemaWhen{
				Span:   c.spanTo(c.pos(g.When.Kw.Pos), g.When.RBrace),
				Cond:   c.expr(g.When.Cond),
				LBrace: c.pos(g.When.LBrace.Pos),
				RBrace: c.pos(g.When.RBrace.Pos),
				Then:   c.sitems(g.When.Then),
			}
			if e := g.When.Else; e != nil {
				w.Else = &SchemaElse{
					Span:   c.spanTo(c.pos(e.Kw.Pos), e.RBrace),
					LBrace: c.pos(e.LBrace.Pos),
					RBrace: c.pos(e.RBrace.Pos),
					Items:  c.sitems(e.Items),
				}
				w.End = w.Else.End
			}
			out = append(out, w)
		case g.Each != nil:
			e := g.Each
			out = append(out, &SchemaEach{
				Span:   c.spanTo(c.pos(e.Kw.Pos), e.RBrace),
				Var:    c.ident(e.Var),
				Bound:  c.expr(e.Bound),
				Prefix: c.name(e.Prefix),
				LBrace: c.pos(e.LBrace.Pos),
				RBrace: c.pos(e.RBrace.Pos),
				Items:  c.sitems(e.Items),
			})
		case g.Require != nil:
			cond := c.expr(g.Require.Cond)
			out = append(out, &Require{Span: join(c.tokSpan(g.Require.Kw), cond.Range()), Cond: cond})
		case g.Use != nil:
			u := &PartUse{Part: c.ident(g.Use.Part)}
			u.Span = c.spanTo(u.Part.Pos, g.Use.RParen)
			if g.Use.Prefix != nil {
				u.Prefix = c.name(g.Use.Prefix)
				u.Pos = u.Prefix.Pos
			}
			for _, a := range g.Use.Args {
				u.Args = append(u.Args, c.expr(a))
			}
			out = append(out, u)
		case g.Param != nil:
			out = append(out, c.ref(g.Param))
		}
	}
	return out
}
