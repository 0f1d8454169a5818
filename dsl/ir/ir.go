// Package ir is the checked, typed form of a .map file that the engine runs:
// mappings, config rules and tensor rules flattened out of their scopes, the
// op table with its shape rules and inverses, and expression evaluation. The
// checker (dsl/check) produces it; nothing here parses text.
package ir

import (
	"slices"

	"github.com/mapper-dev/mapper/dsl/token"
)

// The IR is what the checker produces from the AST and the engine consumes. Everything in it is flattened: a rule carries the loops,
// conditions and variant of every block that encloses it, so the engine never
// walks scopes.

// Pos is a position in a .map file, carried from the source through the IR
// so that the engine's errors can name the rule.
type Pos = token.Pos

// Mapping is one checked .map file.
type Mapping struct {
	Name string
	File string
	// Hash is the hex sha256 of the rules, the .map file's canonical form
	// less comments (set by dsl.Load): an import records it, so that an
	// export with other rules, even under the same name, is caught.
	Hash string
	// Fragments holds the text of the fragment files the mapping includes,
	// by the name their positions carry, for diagnostics' source lines.
	Fragments map[string][]byte
	// Uses are the fragments put in the mapping, with the uses that put
	// them there (Via).
	Uses     []FragmentUse
	Left     string // format of the left side, e.g. "hf"
	Right    string // format of the right side, e.g. "fast_llm"
	OneWay   bool   // declared import-only: ops without an inverse are allowed
	Samples  []*Sample
	Lets     []*Let
	Variants []*Variant
	Config   []*ConfigRule
	Tensors  []*TensorRule
	// Ignores are the left tensors an import drops on purpose (`ignore`
	// in a tensors block).
	Ignores []*IgnoreRule
	// Branches are the config whens whose branch an import records and an
	// export takes again (see Branch).
	Branches []*Branch

	// LeftTarget and RightTarget are the targets of the sides: which
	// version of the program on that side the mapping writes for (the
	// fast_llm side's targets are the fast_llm_version it writes). The
	// header's `target "..."`, else the side's default; "" for a side
	// that has no targets.
	LeftTarget, RightTarget string
}

// Branch is a config `when` whose branch the import records (by Key) and
// the export takes again. The checker marks a when so when its condition
// reads a left key that, among the rules that can be active with it, only
// rules under the when itself claim: the export rebuilds the left config
// from the right one, and without the record it would decide the condition
// on a config that lacks the key, take the other branch, and lose what the
// import consumed (two spellings of one value, or a key kept only in one
// branch). A when whose keys other rules restore is decided again on
// export, so that a changed right config is followed.
type Branch struct {
	// Key is the condition as Format prints it: the record's key. Two whens
	// with the same text hold together on one config, so one record serves
	// both.
	Key  string
	Cond Expr // the condition; ConfigRule.When holds it (then) or `not` of it (else)
	// Outer are the enclosing conditions: the when is decided only where
	// they hold.
	Outer   []Expr
	Variant string
	// Keys are the left keys its condition reads that only its own rules
	// claim (the reason it is recorded).
	Keys []string
	Pos  Pos
}

// BranchOf reports the recorded when whose condition a rule's When entry
// x is: x itself (the then branch) or `not` of it (the else branch, neg).
func (m *Mapping) BranchOf(x Expr) (b *Branch, neg bool) {
	for _, b := range m.Branches {
		if b.Cond == x {
			return b, false
		}
	}
	if u, ok := x.(*Unary); ok && u.Op == "not" {
		for _, b := range m.Branches {
			if b.Cond == u.X {
				return b, true
			}
		}
	}
	return nil, false
}

// Sample is a named left-side configuration used only by lint-time shape checks.
type Sample struct {
	Name   string
	Pos    Pos
	Values map[string]any // dotted left config path -> value
}

// Let binds a name to an expression evaluated on the (completed) left config.
type Let struct {
	Name string
	Expr Expr
	Pos  Pos
}

// Variant is one alternative of the mapping's variant group. Exactly one
// variant is active in a conversion: on import the first whose When holds
// (a variant without When is the default); on export the one the user names,
// else the one recorded at import, else the same rule as on import.
type Variant struct {
	Name string
	When Expr // nil: the default variant
	Pos  Pos
}

// InVariant reports whether a rule declared in variant ("" outside any
// variant block) takes part in a conversion whose variant is active.
func InVariant(variant, active string) bool { return variant == "" || variant == active }

// ConfigKind tells what a config rule does.
type ConfigKind int

const (
	// ConfigRename: Left <-> Right[0], Right[1], ... (fan-out: on export all
	// right values must agree). Defaults and a value map are optional.
	ConfigRename ConfigKind = iota
	// ConfigLeftConst: the left key has Value: written on export, checked on
	// import. With Optional the key may also be absent on import, and the
	// export then leaves it out again.
	ConfigLeftConst
	// ConfigRightConst: the right key has Value (or, computed, the value of
	// ValueExpr on the left config): written on import, checked on export.
	ConfigRightConst
	// ConfigKeep: left keys with no right counterpart, carried through unchanged.
	ConfigKeep
	// ConfigIgnore: left keys dropped on purpose.
	ConfigIgnore
	// ConfigCycle: a per-layer left list <-> the shortest repeating pattern of
	// block names on the right node Right[0], or with Verbatim the list as
	// written (see docs/language.md).
	ConfigCycle
	// ConfigRefuse: where it is active, the config is refused with the
	// message Value (a string), on import and on export.
	ConfigRefuse
)

// ConfigRule is one config rule, flattened out of its enclosing blocks.
type ConfigRule struct {
	Kind ConfigKind
	Pos  Pos
	End  Pos // one past the rule's last byte, so that errors can mark it

	Left        Path // rename, left const, cycle
	LeftDefault Expr // rename: value used when the left key is absent (import)
	// LeftFor (rename with LeftDefault, when HasLeftFor): a left value that
	// stands for the default, as an absent key does (`default E for "auto"`).
	LeftFor      any
	HasLeftFor   bool
	Right        []Path // rename (fan-out), right const (one), cycle (one: the decoder node)
	RightDefault Expr   // rename: value used when the right key is absent (export)
	ValueMap     []ValuePair
	Value        any    // constants
	ValueExpr    Expr   // right constant computed from the left config (Value unused)
	Optional     bool   // left constant: may be absent (`left P default V`)
	Length       Expr   // cycle: the full list length (an expression on the left config)
	Single       string // cycle: block name when the right side holds a single plain block and nothing tells which
	Verbatim     bool   // cycle: the right pattern is the list as written, not its shortest repeating prefix
	Keys         []Path // keep, ignore

	When    []Expr // conjunction of enclosing when conditions (on the left config)
	Variant string // "" when outside any variant
	// Each is the config each the rule sits under (nil: none). Its paths
	// and names then start with Each.Placeholder(), and the engine runs
	// it once per node (ExpandEach).
	Each *ConfigEach
}

// ValuePair is one entry of a value map or cycle table: Left <-> Right.
type ValuePair struct {
	Left, Right any
	Pos         Pos
}

// Path is a dotted config path. A "*" segment stands for every key of the map
// at that point (right side only).
type Path struct {
	Segs []string
	Pos  Pos
	End  Pos
}

// TensorRule is LEFT | op | op ... <-> RIGHT, flattened out of its scopes.
// Read left to right it is the import; the export runs the inverse ops in
// reverse order.
type TensorRule struct {
	Pos     Pos
	End     Pos    // one past the rule's last byte, so that errors can mark it
	Loops   []Loop // enclosing each-scopes, outermost first
	When    []Expr
	Variant string
	Left    []*TensorRef
	Ops     []*Op
	Right   []*TensorRef
}

// IgnoreRule is `ignore a, b` in a tensors block, flattened out of its
// scopes: left tensors that an import drops when the input has them (the
// plan notes how many), after checking any type they declare. No rule
// converts them, so an export writes none. Refs are patterns over the
// enclosing loops' variables, as a rule's left references are.
type IgnoreRule struct {
	Pos     Pos
	End     Pos
	Loops   []Loop
	When    []Expr
	Variant string
	Refs    []*TensorRef
}

// Loop is `each Var < Bound`.
type Loop struct {
	Var   string
	Bound Expr
	Pos   Pos // the variable
	End   Pos // the end of the bound: errors about the bound mark `v < bound`
}

// TensorRef names one tensor (pattern with its scope prefix already joined)
// and optionally declares its dtype and shape.
type TensorRef struct {
	Pattern Pattern
	DType   string // "" when not declared; a safetensors dtype name
	Shape   []Expr // nil when not declared
	Pos     Pos
	End     Pos // the end of the ref as written, its type included
}

// Pattern is a tensor name with placeholders, e.g. model.layers.{l}.mlp.
type Pattern struct {
	Parts []PatternPart
}

// PatternPart is either literal text or a variable placeholder.
type PatternPart struct {
	Lit string
	Var string // non-empty for a placeholder
	Off int64  // a placeholder's offset: {v+2} stands for the number v + 2
}

// Op is one pipeline stage. Args are in the order of Def.Params.
type Op struct {
	Name string
	Def  *OpDef
	Args []Arg
	Pos  Pos
	End  Pos // the end of the call, its arguments included
}

// Arg is one op argument, as written. Which field is set depends on the
// parameter kind.
type Arg struct {
	Expr  Expr   // ParamInt
	List  []Expr // ParamIntList
	DType string // ParamDType
	Var   string // ParamRange: `Var < Bound`
	Bound Expr   // ParamRange
	Pos   Pos
}

// Expr is an expression over config values, let names and loop variables.
type Expr interface {
	exprPos() Pos
}

// Ref reads a let name, a loop variable or a dotted left config path.
type Ref struct {
	Path []string
	At   Pos
}

// Literal is a constant: int64, float64, string, bool, nil, []any or
// map[string]any.
type Literal struct {
	Value any
	At    Pos
}

// Binary is X Op Y with Op one of + - * / % == != < <= > >= and or.
type Binary struct {
	Op   string
	X, Y Expr
	At   Pos
}

// Unary is Op X with Op one of - not.
type Unary struct {
	Op string
	X  Expr
	At Pos
}

func (e *Ref) exprPos() Pos     { return e.At }
func (e *Literal) exprPos() Pos { return e.At }
func (e *Binary) exprPos() Pos  { return e.At }
func (e *Unary) exprPos() Pos   { return e.At }

// ExprPos returns where an expression starts.
func ExprPos(e Expr) Pos { return e.exprPos() }

// FragmentUse is one fragment put in a mapping: the span of its
// declaration, and the use chain that put it there (the use, then the uses
// around it, in fragments, innermost first).
type FragmentUse struct {
	Pos, End Pos
	Chain    []Pos
}

// Via returns the uses through which a position inside a fragment came
// into the mapping, innermost first (all of them, without repeats, where
// the fragment is used more than once); nil outside fragments.
func (m *Mapping) Via(p Pos) []Pos {
	var out []Pos
	for _, u := range m.Uses {
		if p.File != u.Pos.File || p.Offset < u.Pos.Offset || p.Offset >= u.End.Offset {
			continue
		}
		for _, c := range u.Chain {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}
