package syntax

import (
	"strconv"
	"strings"
)

// Format prints f in the canonical layout:
//
//   - the header on three lines (mapping NAME [oneway], left F [target T], right F [target T]);
//   - a blank line between top-level declarations (consecutive lets may stay
//     together: blank lines between them are kept, at most one);
//   - one rule, entry or item per line, two spaces of indentation per block
//     level, `} else {` on one line, empty blocks as `{}`;
//   - single spaces around <->, |, =, binary operators and after commas and
//     colons; value tables as `{ a = b, c = d }`, objects as `{"k": v}`;
//   - numbers and strings in canonical spelling (1e-05, 32.0, Go quoting),
//     parentheses only where precedence needs them;
//   - inside blocks, a blank line between items is kept (at most one), none
//     after `{` or before `}`.
//
// Comments are kept: a comment on its own line stays before the item that
// follows it, a comment after an item on the same line stays there (one
// space before the '#'). A comment written inside a multi-line item moves
// to its own line before that item, and one between `}` and `else` moves
// inside the block it closes. Format is idempotent.
func Format(f *File) []byte {
	p := &printer{src: f.src, comments: f.Comments}
	p.file(f)
	return []byte(p.out.String())
}

// FormatFragments returns the canonical form of a fragment file: as a
// mapping's, one blank line between its fragments.
func FormatFragments(f *FragmentFile) []byte {
	p := &printer{src: f.src, comments: f.Comments}
	for _, fd := range f.Frags {
		params := make([]string, len(fd.Params))
		for i, x := range fd.Params {
			params[i] = x.Name
		}
		head := "fragment " + fd.Name.Name + "(" + strings.Join(params, ", ") + ")"
		p.block(fd.Pos, fd.LBrace, fd.RBrace, head, len(fd.Items), blankForce, func() { p.configItems(fd.Items) })
	}
	p.flush(len(p.src)+1, blankKeep)
	return []byte(p.out.String())
}

// blank policies for an element.
const (
	blankKeep  = iota // as in the source (at most one)
	blankForce        // always one blank line before
	blankNever        // never
)

type printer struct {
	src      []byte
	comments []*Comment
	next     int // first comment not yet printed
	out      strings.Builder
	indent   int
	lastLine int    // source line where the last printed element ended (0: none yet)
	lastFile string // the file of lastLine: items a fragment put in a mapping (dsl.Load) come from another
	// blankBefore is sourceBlank's answer for the first element from
	// another file: an expanded use's own.
	blankBefore bool
	blockTop    bool // the last line printed opened a block
}

// emit writes one output line at the current indentation.
func (p *printer) emit(text string, blank bool) {
	if blank && p.out.Len() > 0 && !p.blockTop {
		p.out.WriteByte('\n')
	}
	p.out.WriteString(strings.Repeat("  ", p.indent))
	p.out.WriteString(text)
	p.out.WriteByte('\n')
	p.blockTop = false
}

// sourceBlank reports whether the source had a blank line before pos:
// never between elements of two files, except where blankBefore says so.
func (p *printer) sourceBlank(pos Pos) bool {
	if pos.File != p.lastFile {
		b := p.blankBefore
		p.blankBefore = false
		return b
	}
	return p.lastLine > 0 && pos.Line > p.lastLine+1
}

// mark records where the last printed element ended.
func (p *printer) mark(end Pos) {
	p.lastLine, p.lastFile = end.Line, end.File
}

// flush prints, each on its own line, the comments that start before off.
// policy applies to the first one. It reports whether it printed any.
func (p *printer) flush(off int, policy int) bool {
	any := false
	for p.next < len(p.comments) && p.comments[p.next].Pos.Offset < off {
		c := p.comments[p.next]
		p.next++
		blank := p.sourceBlank(c.Pos)
		if !any && policy == blankForce {
			blank = true
		}
		if !any && policy == blankNever {
			blank = false
		}
		p.emit(c.Text, blank)
		p.mark(c.Pos)
		any = true
	}
	return any
}

// trailing returns the comment that follows end on the same source line
// with only spaces in between (" # ..."), and consumes it.
func (p *printer) trailing(end Pos) string {
	if p.next >= len(p.comments) {
		return ""
	}
	c := p.comments[p.next]
	if c.Pos.Line != end.Line || c.Pos.Offset < end.Offset || strings.TrimSpace(string(p.src[end.Offset:c.Pos.Offset])) != "" {
		return ""
	}
	p.next++
	return " " + c.Text
}

// elem prints one single-line element covering span: first the comments
// before and inside it, then its text with any trailing comment.
func (p *printer) elem(span Span, text string, policy int) {
	flushed := p.flush(span.End.Offset, policy)
	blank := p.sourceBlank(span.Pos)
	switch {
	case policy == blankNever:
		blank = false
	case policy == blankForce && !flushed:
		blank = true
	}
	p.emit(text+p.trailing(span.End), blank)
	if span.End.File != p.lastFile || span.End.Line > p.lastLine {
		p.mark(span.End)
	}
}

// open prints a block header ending in `{`; lbrace is the brace's position.
func (p *printer) open(start, lbrace Pos, header string, policy int) {
	end := lbrace
	end.Offset++
	end.Column++
	p.elem(Span{start, end}, header+" {", policy)
	p.indent++
	p.blockTop = true
}

// close prints the `}` at rbrace, followed by suffix (" else {") whose own
// brace is at next (when suffix is set).
func (p *printer) close(rbrace Pos, suffix string, next Pos) {
	end := rbrace
	if suffix != "" {
		end = next
	}
	p.flush(end.Offset, blankKeep)
	p.indent--
	p.blockTop = false
	after := end
	after.Offset++
	after.Column++
	p.emit("}"+suffix+p.trailing(after), false)
	p.mark(end)
	if suffix != "" {
		p.indent++
		p.blockTop = true
	}
}

// empty reports whether a block has nothing to print inside: no items and
// no comment between its braces.
func (p *printer) empty(n int, lbrace, rbrace Pos) bool {
	if n > 0 {
		return false
	}
	for _, c := range p.comments[p.next:] {
		if c.Pos.Offset > lbrace.Offset && c.Pos.Offset < rbrace.Offset {
			return false
		}
	}
	return true
}

// block prints `header {` items `}`, or `header {}` when empty.
func (p *printer) block(start, lbrace, rbrace Pos, header string, n int, policy int, items func()) {
	if p.empty(n, lbrace, rbrace) {
		end := rbrace
		end.Offset++
		end.Column++
		p.elem(Span{start, end}, header+" {}", policy)
		return
	}
	p.open(start, lbrace, header, policy)
	items()
	p.close(rbrace, "", Pos{})
}

func (p *printer) file(f *File) {
	head := "mapping " + f.Name.Name
	end := f.Name.End
	if f.OneWay {
		head += " oneway"
		end = f.OneWayEnd
	}
	p.elem(Span{f.MappingKw, end}, head, blankKeep)
	p.elem(sideSpan(f.LeftKw, f.Left, f.LeftTarget), "left "+sideString(f.Left, f.LeftTarget), blankNever)
	p.elem(sideSpan(f.RightKw, f.Right, f.RightTarget), "right "+sideString(f.Right, f.RightTarget), blankNever)
	var prev Decl
	for _, d := range f.Decls {
		policy := blankForce
		_, prevLet := prev.(*LetDecl)
		_, prevInc := prev.(*IncludeDecl)
		_, isLet := d.(*LetDecl)
		_, isInc := d.(*IncludeDecl)
		if isLet && prevLet || isInc && prevInc {
			policy = blankKeep
		}
		p.decl(d, policy)
		prev = d
	}
	p.flush(len(p.src)+1, blankKeep)
}

// sideSpan is a header side line's span: the keyword to the format, or to
// the target when there is one.
func sideSpan(kw Pos, format *Ident, t *Target) Span {
	if t == nil {
		return Span{kw, format.End}
	}
	return Span{kw, t.End}
}

// sideString prints a header side after its keyword: the format, and its
// target when there is one.
func sideString(format *Ident, t *Target) string {
	if t == nil {
		return format.Name
	}
	return format.Name + " target " + strconv.Quote(t.Value.Value)
}

func (p *printer) decl(d Decl, policy int) {
	switch d := d.(type) {
	case *IncludeDecl:
		p.elem(d.Span, "include "+strconv.Quote(d.Path.Value), policy)
	case *SampleDecl:
		p.block(d.Pos, d.LBrace, d.RBrace, "sample "+d.Name.Name, len(d.Entries), policy, func() {
			for _, e := range d.Entries {
				p.elem(e.Span, e.Key.String()+" = "+exprString(e.Value, 0), blankKeep)
			}
		})
	case *LetDecl:
		p.elem(d.Span, "let "+d.Name.Name+" = "+exprString(d.Value, 0), policy)
	case *ConfigBlock:
		p.block(d.Pos, d.LBrace, d.RBrace, "config", len(d.Items), policy, func() { p.configItems(d.Items) })
	case *TensorBlock:
		p.block(d.Pos, d.LBrace, d.RBrace, "tensors", len(d.Items), policy, func() { p.tensorItems(d.Items) })
	case *VariantDecl:
		head := "variant " + d.Name.Name
		if d.When != nil {
			head += " when " + exprString(d.When, 0)
		}
		p.block(d.Pos, d.LBrace, d.RBrace, head, len(d.Blocks), policy, func() {
			for _, b := range d.Blocks {
				p.decl(b, blankKeep)
			}
		})
	}
}

// when prints a when/else pair; then and els print the branch items.
func (p *printer) when(start, lbrace, rbrace Pos, cond Expr, n int, then func(), hasElse bool, elseLBrace, elseRBrace Pos, m int, els func()) {
	head := "when " + exprString(cond, 0)
	if !hasElse {
		p.block(start, lbrace, rbrace, head, n, blankKeep, then)
		return
	}
	p.open(start, lbrace, head, blankKeep)
	then()
	p.close(rbrace, " else {", elseLBrace)
	els()
	p.close(elseRBrace, "", Pos{})
}

func (p *printer) configItems(items []ConfigItem) {
	for _, it := range items {
		switch it := it.(type) {
		case *UseItem:
			if it.Expanded != nil {
				// As if the items were written here (the rules hash): the
				// blank line before them is the use's.
				if len(it.Expanded) > 0 {
					p.blankBefore = p.sourceBlank(it.Pos)
					p.configItems(it.Expanded)
				}
				p.mark(it.End)
				continue
			}
			args := make([]string, len(it.Args))
			for i, a := range it.Args {
				args[i] = a.Name.Name + " = " + exprString(a.Value, 0)
			}
			p.elem(it.Span, "use "+it.Name.Name+"("+strings.Join(args, ", ")+")", blankKeep)
		case *ConfigEach:
			pairs := make([]string, len(it.Nodes))
			for i, n := range it.Nodes {
				pairs[i] = n.Left.String() + " <-> " + n.Right.String()
			}
			head := "each " + it.Var.Name + ": " + strings.Join(pairs, ", ")
			p.block(it.Pos, it.LBrace, it.RBrace, head, len(it.Items), blankKeep, func() { p.configItems(it.Items) })
		case *ConfigWhen:
			var elseL, elseR Pos
			var elseItems []ConfigItem
			if it.Else != nil {
				elseL, elseR, elseItems = it.Else.LBrace, it.Else.RBrace, it.Else.Items
			}
			p.when(it.Pos, it.LBrace, it.RBrace, it.Cond, len(it.Then), func() { p.configItems(it.Then) },
				it.Else != nil, elseL, elseR, len(elseItems), func() { p.configItems(elseItems) })
		case *KeepItem:
			kw := "keep "
			if it.Ignore {
				kw = "ignore "
			}
			p.elem(it.Span, kw+names(it.Keys), blankKeep)
		case *ConstItem:
			kw := "left "
			if it.Right {
				kw = "right "
			}
			op := " = "
			if it.Optional {
				op = " default "
			}
			p.elem(it.Span, kw+it.Key.String()+op+exprString(it.Value, 0), blankKeep)
		case *RefuseItem:
			p.elem(it.Span, "refuse "+strconv.Quote(it.Message), blankKeep)
		case *RenameItem:
			s := it.Left.String()
			if it.LeftDefault != nil {
				s += " default " + exprString(it.LeftDefault, 0)
			}
			if it.LeftFor != nil {
				s += " for " + exprString(it.LeftFor, 0)
			}
			s += " <-> " + names(it.Right)
			if it.RightDefault != nil {
				s += " default " + exprString(it.RightDefault, 0)
			}
			if it.Map != nil {
				s += " map " + tableString(it.Map)
			}
			p.elem(it.Span, s, blankKeep)
		case *CycleItem:
			s := it.Left.String() + " <-> " + it.Right.String() + " cycle(" + exprString(it.Length, 0) + ") "
			if it.Verbatim {
				s += "verbatim "
			}
			s += tableString(it.Table)
			p.elem(it.Span, s, blankKeep)
		}
	}
}

func (p *printer) tensorItems(items []TensorItem) {
	for _, it := range items {
		switch it := it.(type) {
		case *EachItem:
			head := "each " + it.Var.Name + " < " + exprString(it.Bound, 0) + ": " + it.Left.String() + " <-> " + it.Right.String()
			p.block(it.Pos, it.LBrace, it.RBrace, head, len(it.Items), blankKeep, func() { p.tensorItems(it.Items) })
		case *TensorWhen:
			var elseL, elseR Pos
			var elseItems []TensorItem
			if it.Else != nil {
				elseL, elseR, elseItems = it.Else.LBrace, it.Else.RBrace, it.Else.Items
			}
			p.when(it.Pos, it.LBrace, it.RBrace, it.Cond, len(it.Then), func() { p.tensorItems(it.Then) },
				it.Else != nil, elseL, elseR, len(elseItems), func() { p.tensorItems(elseItems) })
		case *RuleItem:
			s := tupleString(it.Left)
			for _, o := range it.Ops {
				s += " | " + o.Name.Name
				if len(o.Args) > 0 {
					s += "(" + exprList(o.Args) + ")"
				}
			}
			s += " <-> " + tupleString(it.Right)
			p.elem(it.Span, s, blankKeep)
		case *IgnoreItem:
			p.elem(it.Span, "ignore "+refsString(it.Refs), blankKeep)
		case *LetDecl:
			p.elem(it.Span, "let "+it.Name.Name+" = "+exprString(it.Value, 0), blankKeep)
		}
	}
}

func names(ns []*Name) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = n.String()
	}
	return strings.Join(parts, ", ")
}

func tupleString(t *Tuple) string {
	if t.Paren {
		return "(" + refsString(t.Refs) + ")"
	}
	return refsString(t.Refs)
}

// refsString prints references with their declared types: `a: BF16[n], b`.
func refsString(refs []*Ref) string {
	parts := make([]string, len(refs))
	for i, r := range refs {
		s := r.Name.String()
		if r.DType != nil || r.HasShape {
			s += ": "
			if r.DType != nil {
				s += r.DType.Name
			}
			if r.HasShape {
				s += "[" + exprList(r.Shape) + "]"
			}
		}
		parts[i] = s
	}
	return strings.Join(parts, ", ")
}

func tableString(t *ValueTable) string {
	if len(t.Entries) == 0 {
		return "{}"
	}
	parts := make([]string, len(t.Entries))
	for i, e := range t.Entries {
		parts[i] = exprString(e.Left, 0) + " = " + exprString(e.Right, 0)
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

func exprList(es []Expr) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = exprString(e, 0)
	}
	return strings.Join(parts, ", ")
}

// Precedence levels, loosest first.
const (
	precOr = iota + 1
	precAnd
	precNot
	precCmp
	precAdd
	precMul
	precNeg
	precPrimary
)

func binaryPrec(op string) int {
	switch op {
	case "or":
		return precOr
	case "and":
		return precAnd
	case "==", "!=", "<", "<=", ">", ">=":
		return precCmp
	case "+", "-":
		return precAdd
	}
	return precMul
}

func exprPrec(e Expr) int {
	switch e := e.(type) {
	case *BinaryExpr:
		return binaryPrec(e.Op)
	case *UnaryExpr:
		if e.Op == "not" {
			return precNot
		}
		return precNeg
	}
	return precPrimary
}

// exprString prints e, in parentheses when it binds looser than min.
func exprString(e Expr, min int) string {
	s := exprText(e)
	if exprPrec(e) < min {
		return "(" + s + ")"
	}
	return s
}

func exprText(e Expr) string {
	switch e := e.(type) {
	case *NameExpr:
		return e.Name.String()
	case *IntLit:
		return strconv.FormatInt(e.Value, 10)
	case *FloatLit:
		return formatFloat(e.Value)
	case *StringLit:
		return strconv.Quote(e.Value)
	case *BoolLit:
		return strconv.FormatBool(e.Value)
	case *NullLit:
		return "null"
	case *ListExpr:
		return "[" + exprList(e.Elems) + "]"
	case *IndexExpr:
		return exprString(e.X, precPrimary) + "[" + exprString(e.Index, 0) + "]"
	case *CallExpr:
		return e.Func.Name + "(" + exprList(e.Args) + ")"
	case *ObjectExpr:
		parts := make([]string, len(e.Entries))
		for i, en := range e.Entries {
			parts[i] = strconv.Quote(en.Key) + ": " + exprString(en.Value, 0)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case *UnaryExpr:
		if e.Op == "not" {
			// not a == b means not (a == b); say so.
			return "not " + exprString(e.X, precCmp+1)
		}
		x := exprString(e.X, precNeg)
		if strings.HasPrefix(x, "-") {
			return "- " + x
		}
		return "-" + x
	case *BinaryExpr:
		p := binaryPrec(e.Op)
		left := p
		if p == precCmp {
			left = p + 1 // comparisons do not chain
		}
		return exprString(e.X, left) + " " + e.Op + " " + exprString(e.Y, p+1)
	}
	return ""
}
