package syntax

import (
	"strconv"
	"strings"

	"github.com/mapper-dev/mapper/dsl/token"
)

// Pos is a position in a .map file (token's, shared with the IR and the
// diagnostics so that positions pass through unchanged).
type Pos = token.Pos

// Span is the half-open byte range [Pos, End) a node covers. Every node
// embeds one.
type Span struct {
	Pos Pos // first byte
	End Pos // one past the last byte
}

// Range returns the span itself; it makes every node a Node.
func (s Span) Range() Span { return s }

// Node is any AST node.
type Node interface{ Range() Span }

// File is one parsed .map file.
type File struct {
	Span
	Filename string

	MappingKw Pos // the "mapping" keyword
	Name      *Ident
	OneWay    bool
	OneWayEnd Pos // end of the "oneway" keyword when OneWay
	LeftKw    Pos
	Left      *Ident // format of the left side
	// LeftTarget is the `target "..."` after the left format, nil when the
	// header names none (the side's default target).
	LeftTarget  *Target
	RightKw     Pos
	Right       *Ident  // format of the right side
	RightTarget *Target // as LeftTarget, for the right side
	Decls       []Decl

	// Comments are every comment of the file in source order. They are not
	// part of the tree; the formatter attaches them by position.
	Comments []*Comment

	src []byte
}

// Source returns the text the file was parsed from.
func (f *File) Source() []byte { return f.src }

// Target is a side's target in the header (`target "0.4.0"`): which
// version of the program on that side the mapping writes for.
type Target struct {
	Span  // from the keyword to the end of the string
	Value *StringLit
}

// Comment is one `# ...` comment, Text including the '#'.
type Comment struct {
	Span
	Text string
}

// Ident is a plain identifier: a mapping, sample, let, variant, loop
// variable, op or dtype name.
type Ident struct {
	Span
	Name string
}

// SegKind tells what a name segment is.
type SegKind int

const (
	SegIdent  SegKind = iota // an identifier
	SegNumber                // a decimal number: model.layers.0
	SegVar                   // a placeholder {v} or {v+N}; Text is v, Off is N
	SegStar                  // *: every key of a map (right config paths)
)

// Seg is one dot-separated segment of a Name.
type Seg struct {
	Kind SegKind
	Text string // the identifier, the digits, the variable name, or "*"
	Off  int64  // a placeholder's offset: {v+2} names index v + 2
	Span Span
}

func (s Seg) String() string {
	if s.Kind == SegVar {
		if s.Off != 0 {
			return "{" + s.Text + "+" + strconv.FormatInt(s.Off, 10) + "}"
		}
		return "{" + s.Text + "}"
	}
	return s.Text
}

// Name is a dotted path: a config path, a tensor name (pattern) or a
// reference to a let, loop variable or config value.
type Name struct {
	Span
	Segs []Seg
}

// String returns the name as written.
func (n *Name) String() string {
	parts := make([]string, len(n.Segs))
	for i, s := range n.Segs {
		parts[i] = s.String()
	}
	return strings.Join(parts, ".")
}

// Decl is a top-level declaration: *IncludeDecl, *SampleDecl, *LetDecl,
// *ConfigBlock, *TensorBlock or *VariantDecl.
type Decl interface {
	Node
	declNode()
}

// SampleDecl is `sample NAME { key = value ... }`: a left config for lint-time
// shape checks.
type SampleDecl struct {
	Span
	Name           *Ident
	LBrace, RBrace Pos
	Entries        []*SampleEntry
}

// SampleEntry is one `key = value` of a sample.
type SampleEntry struct {
	Span
	Key   *Name
	Value Expr
}

// LetDecl is `let NAME = expr`.
type LetDecl struct {
	Span
	Name  *Ident
	Value Expr
}

// ConfigBlock is `config { ... }`.
type ConfigBlock struct {
	Span
	LBrace, RBrace Pos
	Items          []ConfigItem
}

// TensorBlock is `tensors { ... }`.
type TensorBlock struct {
	Span
	LBrace, RBrace Pos
	Items          []TensorItem
}

// VariantDecl is `variant NAME [when expr] { config/tensors blocks }`.
type VariantDecl struct {
	Span
	Name           *Ident
	When           Expr // nil: the default variant
	LBrace, RBrace Pos
	Blocks         []Decl // *ConfigBlock or *TensorBlock
}

// IncludeDecl is `include "path"`: a fragment file, its path relative to
// the including file, whose fragments `use` items may name.
type IncludeDecl struct {
	Span
	Path *StringLit
}

// FragmentFile is one parsed fragment file: fragment declarations only.
type FragmentFile struct {
	Span
	Filename string
	Frags    []*FragmentDecl
	Comments []*Comment
	src      []byte
}

// Source returns the text the file was parsed from.
func (f *FragmentFile) Source() []byte { return f.src }

// FragmentDecl is `fragment NAME(p, ...) { config items }`: config rules
// written once, used by `use` with paths under a left and a right prefix;
// `{p}` in its expressions stands for the argument given for p.
type FragmentDecl struct {
	Span
	Name           *Ident
	Params         []*Ident
	LBrace, RBrace Pos
	Items          []ConfigItem
}

func (*IncludeDecl) declNode() {}
func (*SampleDecl) declNode()  {}
func (*LetDecl) declNode()     {}
func (*ConfigBlock) declNode() {}
func (*TensorBlock) declNode() {}
func (*VariantDecl) declNode() {}

// ConfigItem is one item of a config block: *ConfigEach, *ConfigWhen,
// *KeepItem, *ConstItem, *RefuseItem, *RenameItem or *CycleItem.
type ConfigItem interface {
	Node
	configItem()
}

// ConfigEach is `each v: L <-> R, ... { ... }` in a config block: its
// items apply to every config node the left (import) or right (export)
// patterns match, `{v}` standing for that node.
type ConfigEach struct {
	Span
	Var            *Ident
	Nodes          []*NodePair
	LBrace, RBrace Pos
	Items          []ConfigItem
}

// NodePair is one `L <-> R` of a ConfigEach: the node patterns on both
// sides, a * matching any key.
type NodePair struct {
	Span
	Left, Right *Name
}

// ConfigWhen is `when cond { ... } [else { ... }]` in a config block.
type ConfigWhen struct {
	Span
	Cond           Expr
	LBrace, RBrace Pos
	Then           []ConfigItem
	Else           *ConfigElse
}

// ConfigElse is the else branch of a ConfigWhen.
type ConfigElse struct {
	Span
	LBrace, RBrace Pos
	Items          []ConfigItem
}

// KeepItem is `keep a, b` (or `ignore a, b` when Ignore).
type KeepItem struct {
	Span
	Ignore bool
	Keys   []*Name
}

// ConstItem is `left path = value` or `right path = value`, or with
// Optional `left path default value`: a left constant that may be absent.
type ConstItem struct {
	Span
	Right    bool // false: a left constant
	Key      *Name
	Optional bool // written with default instead of =
	Value    Expr
}

// RefuseItem is `refuse "message"`: the config is refused, with the
// message, where the rule is active.
type RefuseItem struct {
	Span
	Message string
}

// RenameItem is `L [default e [for v]] <-> R1, R2 [default e] [map { a = b }]`.
type RenameItem struct {
	Span
	Left        *Name
	LeftDefault Expr
	// LeftFor is the value that stands for the left default when the key
	// holds it (`default ceil_div(hidden_size, 16) for "auto"`); nil: none.
	LeftFor      Expr
	Right        []*Name
	RightDefault Expr
	Map          *ValueTable
}

// CycleItem is `L <-> R cycle(length) [verbatim] { a = b, ... }`.
type CycleItem struct {
	Span
	Left   *Name
	Right  *Name
	Length Expr
	// Verbatim: the right pattern is the list as written, not its shortest
	// repeating prefix.
	Verbatim bool
	Table    *ValueTable
}

// ValueTable is `{ a = b, c = d }` of a value map or a cycle.
type ValueTable struct {
	Span
	Entries []*TableEntry
}

// TableEntry is one `left = right` of a ValueTable.
type TableEntry struct {
	Span
	Left, Right Expr
}

// UseItem is `use NAME(left = PATH, right = PATH, p = e, ...)`: the
// fragment's items in its place (see dsl.Load).
type UseItem struct {
	Span
	Name *Ident
	Args []*UseArg
	// Expanded is set by dsl.Load: the fragment's items as they apply
	// here, which the check and the rules hash see in the use's place (an
	// empty list where the use is in error). Nil as parsed.
	Expanded []ConfigItem
}

// UseArg is one `p = e` of a UseItem; Name is "left" or "right" for a
// prefix, whose Value is then a *NameExpr.
type UseArg struct {
	Span
	Name  *Ident
	Value Expr
}

func (*UseItem) configItem()    {}
func (*ConfigEach) configItem() {}
func (*ConfigWhen) configItem() {}
func (*KeepItem) configItem()   {}
func (*ConstItem) configItem()  {}
func (*RefuseItem) configItem() {}
func (*RenameItem) configItem() {}
func (*CycleItem) configItem()  {}

// TensorItem is one item of a tensors block: *EachItem, *TensorWhen,
// *LetDecl (inside an each: a name for an expression of its variables),
// *RuleItem or *IgnoreItem.
type TensorItem interface {
	Node
	tensorItem()
}

// EachItem is `each v < bound: LP <-> RP { ... }`.
type EachItem struct {
	Span
	Var            *Ident
	Bound          Expr
	Left, Right    *Name
	LBrace, RBrace Pos
	Items          []TensorItem
}

// TensorWhen is `when cond { ... } [else { ... }]` in a tensors block.
type TensorWhen struct {
	Span
	Cond           Expr
	LBrace, RBrace Pos
	Then           []TensorItem
	Else           *TensorElse
}

// TensorElse is the else branch of a TensorWhen.
type TensorElse struct {
	Span
	LBrace, RBrace Pos
	Items          []TensorItem
}

// RuleItem is `LEFT | op | op ... <-> RIGHT`.
type RuleItem struct {
	Span
	Left  *Tuple
	Ops   []*OpCall
	Right *Tuple
}

// IgnoreItem is `ignore a, b: [shape]` in a tensors block: left tensors
// an import drops on purpose, with optional declared types.
type IgnoreItem struct {
	Span
	Refs []*Ref
}

func (*EachItem) tensorItem()   {}
func (*LetDecl) tensorItem()    {}
func (*TensorWhen) tensorItem() {}
func (*RuleItem) tensorItem()   {}
func (*IgnoreItem) tensorItem() {}

// Tuple is one Ref or a parenthesised list of them.
type Tuple struct {
	Span
	Paren bool // written in parentheses (always when it has several refs)
	Refs  []*Ref
}

// Ref is a tensor name with an optional dtype and shape: `name: BF16[a, b]`.
type Ref struct {
	Span
	Name     *Name
	DType    *Ident // nil when not declared
	HasShape bool   // a shape was declared (Shape may still be empty: a scalar)
	Shape    []Expr
}

// OpCall is one pipeline stage: `name` or `name(arg, ...)`.
type OpCall struct {
	Span
	Name *Ident
	Args []Expr
}

// Expr is an expression: *NameExpr, *IntLit, *FloatLit, *StringLit,
// *BoolLit, *NullLit, *ListExpr, *ObjectExpr, *IndexExpr, *CallExpr,
// *UnaryExpr or *BinaryExpr.
// Parentheses leave no node of their own.
type Expr interface {
	Node
	exprNode()
}

// NameExpr reads a let, a loop variable or a left config value.
type NameExpr struct {
	Span
	Name *Name
}

// IntLit is an integer literal (never negative: -1 is a UnaryExpr).
type IntLit struct {
	Span
	Value int64
}

// FloatLit is a floating-point literal.
type FloatLit struct {
	Span
	Value float64
}

// StringLit is a string literal, Value unquoted.
type StringLit struct {
	Span
	Value string
}

// BoolLit is true or false.
type BoolLit struct {
	Span
	Value bool
}

// NullLit is null.
type NullLit struct {
	Span
}

// ListExpr is `[a, b, ...]`.
type ListExpr struct {
	Span
	Elems []Expr
}

// ObjectExpr is `{"k": v, ...}`.
type ObjectExpr struct {
	Span
	Entries []*ObjectEntry
}

// ObjectEntry is one `"k": v` of an ObjectExpr.
type ObjectEntry struct {
	Span
	Key   string
	Value Expr
}

// IndexExpr is `x[i]`: an element of a list, or a key of an object.
type IndexExpr struct {
	Span
	X, Index Expr
}

// CallExpr is a builtin function call `f(a, b)`.
type CallExpr struct {
	Span
	Func *Ident
	Args []Expr
}

// UnaryExpr is `-x` or `not x`.
type UnaryExpr struct {
	Span
	Op string // "-" or "not"
	X  Expr
}

// BinaryExpr is `x op y`, op one of or and == != < <= > >= + - * / %.
type BinaryExpr struct {
	Span
	Op    string
	OpPos Pos
	X, Y  Expr
}

func (*NameExpr) exprNode()   {}
func (*IntLit) exprNode()     {}
func (*FloatLit) exprNode()   {}
func (*StringLit) exprNode()  {}
func (*BoolLit) exprNode()    {}
func (*NullLit) exprNode()    {}
func (*ListExpr) exprNode()   {}
func (*ObjectExpr) exprNode() {}
func (*IndexExpr) exprNode()  {}
func (*CallExpr) exprNode()   {}
func (*UnaryExpr) exprNode()  {}
func (*BinaryExpr) exprNode() {}

// ExprNames calls visit for every name an expression reads, in source
// order (not a builtin's name, nor an object's keys).
func ExprNames(e Expr, visit func(*Name)) {
	switch e := e.(type) {
	case *NameExpr:
		visit(e.Name)
	case *UnaryExpr:
		ExprNames(e.X, visit)
	case *BinaryExpr:
		ExprNames(e.X, visit)
		ExprNames(e.Y, visit)
	case *IndexExpr:
		ExprNames(e.X, visit)
		ExprNames(e.Index, visit)
	case *CallExpr:
		for _, x := range e.Args {
			ExprNames(x, visit)
		}
	case *ListExpr:
		for _, x := range e.Elems {
			ExprNames(x, visit)
		}
	case *ObjectExpr:
		for _, en := range e.Entries {
			ExprNames(en.Value, visit)
		}
	}
}
