package syntax

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The participle grammar. These structs are the concrete syntax; parse.go
// turns them into the AST (ast.go), which is what the rest of the front end
// sees. Field tags are the grammar; docs/grammar.ebnf holds participle's own
// rendering of it (checked by a test) next to a hand-written one.

type tok = lexer.Token

type gFile struct {
	Mapping tok      `parser:"@\"mapping\""`
	Name    tok      `parser:"@Ident"`
	OneWay  *tok     `parser:"@\"oneway\"?"`
	LeftKw  tok      `parser:"@\"left\""`
	Left    tok      `parser:"@Ident"`
	LeftTgt *gTarget `parser:"@@?"`
	RightKw tok      `parser:"@\"right\""`
	Right   tok      `parser:"@Ident"`
	RightTg *gTarget `parser:"@@?"`
	Decls   []*gDecl `parser:"@@*"`
}

// gTarget is a side's target in the header: `right fast_llm target "0.4.0"`.
type gTarget struct {
	Kw    tok `parser:"@\"target\""`
	Value tok `parser:"@String"`
}

type gDecl struct {
	Include *gInclude `parser:"  @@"`
	Sample  *gSample  `parser:"| @@"`
	Let     *gLet     `parser:"| @@"`
	Config  *gConfig  `parser:"| @@"`
	Tensors *gTensors `parser:"| @@"`
	Variant *gVariant `parser:"| @@"`
}

// gInclude is `include "path"`: a fragment file whose fragments the
// mapping's config blocks may use.
type gInclude struct {
	Kw   tok `parser:"@\"include\""`
	Path tok `parser:"@String"`
}

// gFragFile is a fragment file: fragment declarations only.
type gFragFile struct {
	Frags []*gFragment `parser:"@@+"`
}

// gFragment is `fragment NAME(p, ...) { config items }`.
type gFragment struct {
	Kw     tok       `parser:"@\"fragment\""`
	Name   tok       `parser:"@Ident \"(\""`
	Params []*gIdent `parser:"( @@ ( \",\" @@ )* )? \")\""`
	LBrace tok       `parser:"@\"{\""`
	Items  []*gCItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

// gUse is `use NAME(left = PATH, right = PATH, p = e, ...)` in a config
// block: a fragment's rules, its paths under those prefixes.
type gUse struct {
	Kw     tok        `parser:"@\"use\""`
	Name   tok        `parser:"@Ident \"(\""`
	Args   []*gUseArg `parser:"( @@ ( \",\" @@ )* )?"`
	RParen tok        `parser:"@\")\""`
}

type gUseArg struct {
	Name  tok    `parser:"@( \"left\" | \"right\" | Ident ) \"=\""`
	Value *gExpr `parser:"@@"`
}

type gSample struct {
	Kw      tok             `parser:"@\"sample\""`
	Name    tok             `parser:"@Ident"`
	LBrace  tok             `parser:"@\"{\""`
	Entries []*gSampleEntry `parser:"@@*"`
	RBrace  tok             `parser:"@\"}\""`
}

type gSampleEntry struct {
	Key   *gName `parser:"@@ \"=\""`
	Value *gExpr `parser:"@@"`
}

type gLet struct {
	Kw    tok    `parser:"@\"let\""`
	Name  tok    `parser:"@Ident \"=\""`
	Value *gExpr `parser:"@@"`
}

type gVariant struct {
	Kw     tok       `parser:"@\"variant\""`
	Name   tok       `parser:"@Ident"`
	When   *gExpr    `parser:"( \"when\" @@ )?"`
	LBrace tok       `parser:"@\"{\""`
	Blocks []*gBlock `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

type gBlock struct {
	Config  *gConfig  `parser:"  @@"`
	Tensors *gTensors `parser:"| @@"`
}

type gConfig struct {
	Kw     tok       `parser:"@\"config\""`
	LBrace tok       `parser:"@\"{\""`
	Items  []*gCItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

type gCItem struct {
	Each   *gCEach  `parser:"  @@"`
	Use    *gUse    `parser:"| @@"`
	When   *gCWhen  `parser:"| @@"`
	Keep   *gKeep   `parser:"| @@"`
	Const  *gConst  `parser:"| @@"`
	Refuse *gRefuse `parser:"| @@"`
	Rule   *gCRule  `parser:"| @@"`
}

// gCEach is `each b: L <-> R, ... { ... }` in a config block: rules for
// every node the patterns match.
type gCEach struct {
	Kw     tok       `parser:"@\"each\""`
	Var    tok       `parser:"@Ident \":\""`
	Nodes  []*gCNode `parser:"@@ ( \",\" @@ )*"`
	LBrace tok       `parser:"@\"{\""`
	Items  []*gCItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

type gCNode struct {
	Left  *gName `parser:"@@"`
	Arrow tok    `parser:"@\"<->\""`
	Right *gName `parser:"@@"`
}

type gRefuse struct {
	Kw  tok `parser:"@\"refuse\""`
	Msg tok `parser:"@String"`
}

type gCWhen struct {
	Kw     tok       `parser:"@\"when\""`
	Cond   *gExpr    `parser:"@@"`
	LBrace tok       `parser:"@\"{\""`
	Then   []*gCItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
	Else   *gCElse   `parser:"@@?"`
}

type gCElse struct {
	Kw     tok       `parser:"@\"else\""`
	LBrace tok       `parser:"@\"{\""`
	Items  []*gCItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

type gKeep struct {
	Kw   tok      `parser:"@( \"keep\" | \"ignore\" )"`
	Keys []*gName `parser:"@@ ( \",\" @@ )*"`
}

type gConst struct {
	Side  tok    `parser:"@( \"left\" | \"right\" )"`
	Key   *gName `parser:"@@"`
	Op    tok    `parser:"@( \"=\" | \"default\" )"`
	Value *gExpr `parser:"@@"`
}

type gCRule struct {
	Left         *gName   `parser:"@@"`
	LeftDefault  *gExpr   `parser:"( \"default\" @@"`
	LeftFor      *gExpr   `parser:"  ( \"for\" @@ )? )?"`
	Arrow        tok      `parser:"@\"<->\""`
	Right        []*gName `parser:"@@ ( \",\" @@ )*"`
	Cycle        *gCycle  `parser:"@@?"`
	RightDefault *gExpr   `parser:"( \"default\" @@ )?"`
	Map          *gTable  `parser:"( \"map\" @@ )?"`
}

type gCycle struct {
	Kw       tok     `parser:"@\"cycle\" \"(\""`
	Length   *gExpr  `parser:"@@ \")\""`
	Verbatim *tok    `parser:"@\"verbatim\"?"`
	Table    *gTable `parser:"@@"`
}

type gTable struct {
	LBrace  tok            `parser:"@\"{\""`
	Entries []*gTableEntry `parser:"( @@ \",\"? )*"`
	RBrace  tok            `parser:"@\"}\""`
}

type gTableEntry struct {
	Left  *gExpr `parser:"@@ \"=\""`
	Right *gExpr `parser:"@@"`
}

type gTensors struct {
	Kw     tok       `parser:"@\"tensors\""`
	LBrace tok       `parser:"@\"{\""`
	Items  []*gTItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

type gTItem struct {
	Each   *gEach    `parser:"  @@"`
	When   *gTWhen   `parser:"| @@"`
	Let    *gLet     `parser:"| @@"`
	Ignore *gTIgnore `parser:"| @@"`
	Rule   *gTRule   `parser:"| @@"`
}

// gTIgnore is `ignore a, b` in a tensors block: left tensors dropped.
type gTIgnore struct {
	Kw   tok     `parser:"@\"ignore\""`
	Refs []*gRef `parser:"@@ ( \",\" @@ )*"`
}

type gEach struct {
	Kw     tok       `parser:"@\"each\""`
	Var    tok       `parser:"@Ident \"<\""`
	Bound  *gExpr    `parser:"@@ \":\""`
	Left   *gName    `parser:"@@"`
	Arrow  tok       `parser:"@\"<->\""`
	Right  *gName    `parser:"@@"`
	LBrace tok       `parser:"@\"{\""`
	Items  []*gTItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

type gTWhen struct {
	Kw     tok       `parser:"@\"when\""`
	Cond   *gExpr    `parser:"@@"`
	LBrace tok       `parser:"@\"{\""`
	Then   []*gTItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
	Else   *gTElse   `parser:"@@?"`
}

type gTElse struct {
	Kw     tok       `parser:"@\"else\""`
	LBrace tok       `parser:"@\"{\""`
	Items  []*gTItem `parser:"@@*"`
	RBrace tok       `parser:"@\"}\""`
}

type gTRule struct {
	Left  *gTuple `parser:"@@"`
	Ops   []*gOp  `parser:"( \"|\" @@ )*"`
	Arrow tok     `parser:"@\"<->\""`
	Right *gTuple `parser:"@@"`
}

type gTuple struct {
	LParen *tok    `parser:"(  @\"(\""`
	Refs   []*gRef `parser:"   @@ ( \",\" @@ )*"`
	RParen *tok    `parser:"   @\")\""`
	Single *gRef   `parser:"| @@ )"`
}

type gRef struct {
	Name   *gName   `parser:"@@"`
	Colon  *tok     `parser:"( @\":\""`
	DType  *tok     `parser:"  @Ident?"`
	LBrack *tok     `parser:"  ( @\"[\""`
	Shape  []*gExpr `parser:"    ( @@ ( \",\" @@ )* )?"`
	RBrack *tok     `parser:"    @\"]\" )? )?"`
}

type gOp struct {
	Name   tok      `parser:"@Ident"`
	LParen *tok     `parser:"( @\"(\""`
	Args   []*gExpr `parser:"  ( @@ ( \",\" @@ )* )?"`
	RParen *tok     `parser:"  @\")\" )?"`
}

type gName struct {
	Tok tok `parser:"@( Ident | Name )"`
}

// Expressions, one struct per precedence level, loosest first.

type gExpr struct {
	Tokens []tok
	X      *gAnd      `parser:"@@"`
	Rest   []*gOrTail `parser:"@@*"`
}

type gOrTail struct {
	Op tok   `parser:"@\"or\""`
	Y  *gAnd `parser:"@@"`
}

type gAnd struct {
	Tokens []tok
	X      *gNot       `parser:"@@"`
	Rest   []*gAndTail `parser:"@@*"`
}

type gAndTail struct {
	Op tok   `parser:"@\"and\""`
	Y  *gNot `parser:"@@"`
}

type gNot struct {
	Tokens []tok
	Not    *tok  `parser:"(  @\"not\""`
	X      *gNot `parser:"   @@"`
	Cmp    *gCmp `parser:"| @@ )"`
}

type gCmp struct {
	Tokens []tok
	X      *gAdd `parser:"@@"`
	Op     *tok  `parser:"( @( \"==\" | \"!=\" | \"<=\" | \">=\" | \"<\" | \">\" )"`
	Y      *gAdd `parser:"  @@ )?"`
}

type gAdd struct {
	Tokens []tok
	X      *gMul       `parser:"@@"`
	Rest   []*gAddTail `parser:"@@*"`
}

type gAddTail struct {
	Tokens []tok
	Op     tok   `parser:"@( \"+\" | \"-\" )"`
	Y      *gMul `parser:"@@"`
}

type gMul struct {
	Tokens []tok
	X      *gUnary     `parser:"@@"`
	Rest   []*gMulTail `parser:"@@*"`
}

type gMulTail struct {
	Tokens []tok
	Op     tok     `parser:"@( \"*\" | \"/\" | \"%\" )"`
	Y      *gUnary `parser:"@@"`
}

type gUnary struct {
	Tokens []tok
	Minus  *tok      `parser:"(  @\"-\""`
	X      *gUnary   `parser:"   @@"`
	Prim   *gPostfix `parser:"| @@ )"`
}

// gPostfix is a primary followed by indexes: layer_types[l], x["key"][0].
type gPostfix struct {
	X     *gPrimary `parser:"@@"`
	Index []*gIndex `parser:"@@*"`
}

type gIndex struct {
	LBrack tok    `parser:"@\"[\""`
	I      *gExpr `parser:"@@"`
	RBrack tok    `parser:"@\"]\""`
}

// gCall is a builtin function call: ceil_div(hidden_size, 16).
type gCall struct {
	Name   tok      `parser:"@Ident"`
	LParen tok      `parser:"@\"(\""`
	Args   []*gExpr `parser:"( @@ ( \",\" @@ )* )?"`
	RParen tok      `parser:"@\")\""`
}

type gPrimary struct {
	Tokens []tok
	Call   *gCall   `parser:"  @@"`
	Name   *tok     `parser:"| @( Ident | Name )"`
	Float  *tok     `parser:"| @Float"`
	Int    *tok     `parser:"| @Int"`
	String *tok     `parser:"| @String"`
	Const  *tok     `parser:"| @( \"true\" | \"false\" | \"null\" )"`
	Paren  *gExpr   `parser:"| \"(\" @@ \")\""`
	List   *gList   `parser:"| @@"`
	Object *gObject `parser:"| @@"`
}

type gList struct {
	Tokens []tok
	LBrack tok      `parser:"@\"[\""`
	Elems  []*gExpr `parser:"( @@ ( \",\" @@ )* \",\"? )?"`
	RBrack tok      `parser:"@\"]\""`
}

type gObject struct {
	Tokens  []tok
	LBrace  tok          `parser:"@\"{\""`
	Entries []*gObjEntry `parser:"( @@ ( \",\" @@ )* \",\"? )?"`
	RBrace  tok          `parser:"@\"}\""`
}

type gObjEntry struct {
	Key   tok    `parser:"@String \":\""`
	Value *gExpr `parser:"@@"`
}

var parserOptions = []participle.Option{
	participle.Lexer(theLexer),
	participle.UseLookahead(participle.MaxLookahead),
}

var theParser = participle.MustBuild[gFile](parserOptions...)

// gDecls is the rest of a file after its header. errors.go parses with it
// from a declaration on: to find what may come at an error, and to resume
// after one.
type gDecls struct {
	Decls []*gDecl `parser:"@@*"`
}

var tailParser = participle.MustBuild[gDecls](parserOptions...)

var fragParser = participle.MustBuild[gFragFile](parserOptions...)

// FragmentGrammar returns participle's EBNF rendering of the fragment file
// grammar, as Grammar does for mappings.
func FragmentGrammar() string { return fragParser.String() }

// Grammar returns participle's EBNF rendering of the grammar the parser
// uses. docs/grammar.ebnf embeds it; a test keeps the two in step.
func Grammar() string { return theParser.String() }
