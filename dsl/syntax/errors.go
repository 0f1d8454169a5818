package syntax

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/mapper-dev/mapper/dsl/diag"
)

// Syntax errors. The parser stops at the first error, so recovery is done
// around it, in the manner of go/parser: after an error, skip to a token
// where a declaration can start again and parse the rest of the file on its
// own. The message of each error is built from the offending token and the
// set of tokens the grammar accepts there, found by asking the parser
// itself (see expectedAt): participle renders its expectation only as EBNF
// text, and a message should not depend on that text's form.

// maxErrors caps the syntax errors reported for one file, as go/parser does.
const maxErrors = 10

// tokBad stands for a lexical error in the token stream the parser sees. Its
// Value is empty: participle matches a quoted literal by text whatever the
// token type, and no rule may accept this token. The parse fails there, and
// the scanner's message is reported for it.
const tokBad = lexer.TokenType(-11)

// declKeywords start the top-level declarations.
var declKeywords = []string{"include", "sample", "let", "config", "tensors", "variant"}

// tokenize scans the whole file. A lexical error becomes one tokBad token
// (its ScanError kept in bad, by offset) and scanning resumes after the
// offending text, so that errors further on are found too.
func tokenize(filename string, src []byte) (toks []lexer.Token, bad map[int]*ScanError) {
	s := &scanner{file: filename, src: src, line: 1, col: 1}
	bad = map[int]*ScanError{}
	for {
		before := s.off
		t, err := s.Next()
		if err == nil {
			toks = append(toks, t)
			if t.EOF() {
				return toks, bad
			}
			continue
		}
		var se *ScanError
		if !errors.As(err, &se) {
			se = &ScanError{Pos: s.pos(), Len: 1, Msg: err.Error()}
		}
		if se.Len == 0 && s.off >= len(src) || before >= len(src) {
			// An error about the end of the file itself (it ends inside
			// brackets nested too deep, already reported at the bracket
			// that went too deep): nothing is left to scan.
			return append(toks, lexer.EOFToken(s.pos())), bad
		}
		toks = append(toks, lexer.Token{Type: tokBad, Pos: se.Pos})
		bad[se.Pos.Offset] = se
		// Resume after the offending text; always move on, so that
		// scanning ends.
		if to := min(max(se.Pos.Offset+se.Len, before+1), len(src)); to > s.off {
			s.advance(to - s.off)
		}
	}
}

// tokenLexer replays scanned tokens to participle; the slice ends with EOF.
type tokenLexer struct{ toks []lexer.Token }

func (l *tokenLexer) Next() (lexer.Token, error) {
	t := l.toks[0]
	if !t.EOF() {
		l.toks = l.toks[1:]
	}
	return t, nil
}

// parseTokens runs parser p on toks (which end with EOF).
func parseTokens[G any](p *participle.Parser[G], toks []lexer.Token) (*G, error) {
	lx, err := lexer.Upgrade(&tokenLexer{toks})
	if err != nil {
		return nil, err
	}
	return p.ParseFromLexer(lx)
}

// errParser finds the syntax errors of one file.
type errParser struct {
	src   []byte
	lines *lineTable
	toks  []lexer.Token
	bad   map[int]*ScanError
}

// parse parses the file. On syntax errors the tree is nil and the list holds
// them in source order, at most one per declaration, at most maxErrors.
func (p *errParser) parse() (*gFile, diag.List) {
	g, err := parseTokens(theParser, p.toks)
	if err == nil {
		return g, nil
	}
	var diags diag.List
	seg, prev := 0, -1
	for err != nil && len(diags) < maxErrors {
		k := p.errIndex(err, seg)
		if k <= prev {
			// Each parse starts past the last error, or at a declaration
			// keyword it cannot fail on; were that ever wrong, stop
			// rather than report one error twice.
			break
		}
		prev = k
		start, header := p.declStart(seg, k)
		diags = append(diags, p.diagnose(start, header, k))
		if p.toks[k].EOF() {
			break
		}
		seg = p.resync(start, k)
		_, err = parseTokens(tailParser, p.toks[seg:])
	}
	if err != nil && len(diags) == maxErrors {
		// As go/parser: say that the list stops, where the next error is.
		if k := p.errIndex(err, seg); k > prev {
			off := p.toks[k].Pos.Offset
			diags = append(diags, diag.Diagnostic{Severity: diag.Error, Pos: p.lines.pos(off), End: p.lines.pos(off),
				Message: fmt.Sprintf("too many syntax errors: only the first %d are reported", maxErrors)})
		}
	}
	return nil, diags
}

// errIndex returns the index of the token a parse error is at; the parse
// started at token seg.
func (p *errParser) errIndex(err error, seg int) int {
	var pe participle.Error
	if !errors.As(err, &pe) {
		return seg
	}
	off := pe.Position().Offset
	i, _ := slices.BinarySearchFunc(p.toks, off, func(t lexer.Token, off int) int { return t.Pos.Offset - off })
	return min(max(i, seg), len(p.toks)-1)
}

func isKeyword(t lexer.Token, words ...string) bool {
	return t.Type == tokKeyword && slices.Contains(words, t.Value)
}

// bracketDelta is how a token changes the bracket depth. A tokBad for a
// bracket (nested too deep) still counts, to keep the depth right.
func (p *errParser) bracketDelta(t lexer.Token) int {
	v := t.Value
	switch se := p.bad[t.Pos.Offset]; {
	case t.Type == tokBad && se != nil:
		v = string(p.src[se.Pos.Offset:min(se.Pos.Offset+se.Len, len(p.src))])
	case t.Type != tokPunct:
		return 0
	}
	switch v {
	case "(", "[", "{":
		return 1
	case ")", "]", "}":
		return -1
	}
	return 0
}

// declStart returns where the declaration holding the error at token k
// starts, or that the error is in the header. The parse started at seg and
// took every token before k, so those are a prefix of a valid file: a
// declaration keyword outside brackets starts a declaration there.
func (p *errParser) declStart(seg, k int) (start int, header bool) {
	start, depth := -1, 0
	for i := seg; i < k; i++ {
		t := p.toks[i]
		if depth == 0 && isKeyword(t, declKeywords...) {
			start = i
		}
		depth += p.bracketDelta(t)
	}
	switch {
	case start >= 0:
		return start, false
	case seg == 0:
		return 0, true
	}
	return seg, false
}

// resync returns where parsing resumes after an error at token k in the
// declaration that starts at token start: the first token from k on that
// can only start a declaration (sample, let and variant never nest; config
// and tensors do, in a variant's body), or the token after the closing
// brace of the declaration's block, or the end of the file. Declarations
// in between are not parsed, so one slip gives one error, not a cascade.
func (p *errParser) resync(start, k int) int {
	variant := isKeyword(p.toks[start], "variant")
	// Whether the variant's own "{" has been seen: when it is missing,
	// the blocks after it are still its body, and its "}" ends it.
	opened := false
	depth := 0
	for i := start; i < len(p.toks); i++ {
		t := p.toks[i]
		if t.EOF() {
			return i
		}
		if i >= k && (isKeyword(t, "include", "sample", "let", "variant") ||
			isKeyword(t, "config", "tensors") && (!variant || depth < 0 || depth == 0 && opened)) {
			return i
		}
		if variant && depth == 0 && t.Type == tokPunct && t.Value == "{" && !isKeyword(p.toks[i-1], "config", "tensors") {
			opened = true
		}
		depth += p.bracketDelta(t)
		if i >= k && t.Type == tokPunct && t.Value == "}" && (depth == 0 && (!variant || opened) || depth < 0 && variant && !opened) {
			return i + 1
		}
	}
	return len(p.toks) - 1
}

// diagnose builds the diagnostic for the error at token k.
func (p *errParser) diagnose(start int, header bool, k int) diag.Diagnostic {
	t := p.toks[k]
	if se := p.bad[t.Pos.Offset]; t.Type == tokBad && se != nil {
		return diag.Diagnostic{
			Severity: diag.Error,
			Pos:      p.lines.pos(se.Pos.Offset),
			End:      p.lines.pos(min(se.Pos.Offset+se.Len, len(p.src))),
			Message:  se.Msg,
		}
	}
	off := t.Pos.Offset
	if t.EOF() && off > 0 && off == len(p.src) && p.src[off-1] == '\n' {
		// Point at the end of the last line, not at the empty line after it.
		off--
	}
	d := diag.Diagnostic{
		Severity: diag.Error,
		Pos:      p.lines.pos(off),
		End:      p.lines.pos(min(off+len(t.Value), len(p.src))),
	}
	exp := p.expectedAt(start, header, k)
	if words := describeExpected(exp, t); words != "" {
		d.Message = fmt.Sprintf("syntax error: expected %s, found %s", words, describeToken(t))
	} else {
		d.Message = "syntax error: unexpected " + describeToken(t)
	}
	d.Hint = syntaxHint(exp, t)
	return d
}

// Probe tokens: one of each token class, each keyword and punctuation
// token, and the end of the file, in the order messages name them.
var probes = func() []lexer.Token {
	out := []lexer.Token{
		{Type: tokIdent, Value: "x"},
		{Type: tokName, Value: "x.y"},
		{Type: tokInt, Value: "1"},
		{Type: tokFloat, Value: "1.5"},
		{Type: tokString, Value: `"s"`},
	}
	for _, k := range Keywords {
		out = append(out, lexer.Token{Type: tokKeyword, Value: k})
	}
	for _, s := range Puncts {
		out = append(out, lexer.Token{Type: tokPunct, Value: s})
	}
	return append(out, lexer.Token{Type: tokEOF})
}()

// Keys of the token classes in expected sets; keywords and punctuation are
// keyed by their text.
const (
	keyIdent  = "<ident>"
	keyName   = "<name>"
	keyInt    = "<int>"
	keyFloat  = "<float>"
	keyString = "<string>"
	keyEOF    = "<eof>"
)

func tokenKey(t lexer.Token) string {
	switch t.Type {
	case tokIdent:
		return keyIdent
	case tokName:
		return keyName
	case tokInt:
		return keyInt
	case tokFloat:
		return keyFloat
	case tokString:
		return keyString
	case tokEOF:
		return keyEOF
	}
	return t.Value
}

// expectedAt returns the keys of the tokens the grammar accepts in place of
// token k, in the declaration (or, with header, the file) starting at token
// start. The declarations before start are complete, so they do not change
// what may follow.
func (p *errParser) expectedAt(start int, header bool, k int) map[string]bool {
	prefix := p.toks[start:k]
	if !header {
		// The shorter prefix must still stop at token k, as the file did.
		if sp := p.spine(start, k); len(sp) < len(prefix) && reach(tailParser, sp, p.toks[k]) == p.toks[k].Pos.Offset {
			prefix = sp
		}
	}
	return p.expectedAfter(prefix, header, k)
}

// expectedAfter puts each probe token in place of token k after prefix,
// cuts the input there and parses it: the probe is accepted when the parse
// gets past it.
func (p *errParser) expectedAfter(prefix []lexer.Token, header bool, k int) map[string]bool {
	at := p.toks[k].Pos
	set := map[string]bool{}
	for _, probe := range probes {
		probe.Pos = at
		var end int
		if header {
			end = reach(theParser, prefix, probe)
		} else {
			end = reach(tailParser, prefix, probe)
		}
		if end > at.Offset {
			set[tokenKey(probe)] = true
		}
	}
	return set
}

// reach parses prefix followed by t and the end of the file, and returns
// the offset of the error, or math.MaxInt when the parse succeeds.
func reach[G any](parser *participle.Parser[G], prefix []lexer.Token, t lexer.Token) int {
	toks := append(slices.Clip(prefix), t)
	if !t.EOF() {
		eof := lexer.EOFToken(t.Pos)
		eof.Pos.Offset += len(t.Value)
		toks = append(toks, eof)
	}
	_, err := parseTokens(parser, toks)
	var pe participle.Error
	switch {
	case err == nil:
		return math.MaxInt
	case errors.As(err, &pe):
		return pe.Position().Offset
	}
	return -1
}

// Kinds of block bodies: what their items are.
type bodyKind int

const (
	noBody      bodyKind = iota
	entryBody            // sample entries
	blockBody            // a variant's config and tensors blocks
	configBody           // config items (config blocks, their when and else)
	tensorsBody          // tensor items (tensors blocks, each, when and else)
)

// spine returns the tokens from start to k that decide what may come at
// k: the declaration's, less the complete items before the one holding k
// in each block around it. The grammar of a block's body is a list of
// items, so the items before do not change what may follow; leaving them
// out keeps probing an error in a long block from parsing the whole block
// for each probe.
func (p *errParser) spine(start, k int) []lexer.Token {
	var out []lexer.Token
	pos, level := start, noBody
	for {
		o := p.outerOpen(pos, k)
		if o < 0 {
			break
		}
		kind := p.bodyKindAt(pos, o, level)
		if kind == noBody {
			break
		}
		out = append(out, p.toks[pos:o+1]...)
		pos, level = p.itemStart(kind, o, k), kind
	}
	return append(out, p.toks[pos:k]...)
}

// outerOpen returns the index of the outermost "{" in tokens [pos, k)
// not closed before k, or -1.
func (p *errParser) outerOpen(pos, k int) int {
	var open []int
	for i := pos; i < k; i++ {
		switch d := p.bracketDelta(p.toks[i]); {
		case d > 0:
			open = append(open, i)
		case d < 0 && len(open) > 0:
			open = open[:len(open)-1]
		}
	}
	for _, i := range open {
		if p.toks[i].Value == "{" {
			return i
		}
	}
	return -1
}

// bodyKindAt returns the kind of the body that the "{" at o opens, in the
// construct starting at pos, in a body of kind level (noBody at the top).
// The brace may also open an object or a table: then no complete items
// are found in it, and nothing is left out.
func (p *errParser) bodyKindAt(pos, o int, level bodyKind) bodyKind {
	switch {
	case o > pos && isKeyword(p.toks[o-1], "config"):
		return configBody
	case o > pos && isKeyword(p.toks[o-1], "tensors"):
		return tensorsBody
	case level == noBody && isKeyword(p.toks[pos], "sample"):
		return entryBody
	case level == noBody && isKeyword(p.toks[pos], "variant"):
		return blockBody
	case level == configBody || level == tensorsBody:
		return level // each, when and else hold items of their block's kind
	}
	return noBody
}

// itemStart returns where the item holding token k starts in the body that
// the "{" at o opens, or o+1 when that is not found. The tokens before the
// start taken must parse as complete items of the kind. A few tokens that
// can start an item are tried, latest first (each try costs a parse of the
// body): those that start a line, as mapper fmt writes items, or when no
// line starts with one, the others.
func (p *errParser) itemStart(kind bodyKind, o, k int) int {
	var lineStarts, others []int
	depth := 0
	for i := o + 2; i < k; i++ {
		depth += p.bracketDelta(p.toks[i-1])
		switch t := p.toks[i]; {
		// After ":" a name is a reference's dtype (x: BF16[...]), never an
		// item: a reference may end at its ":", so the tokens before would
		// pass for complete items and the dtype for the next one.
		case depth != 0 || !canStartItem(kind, t) || p.toks[i-1].Value == ":":
		case t.Pos.Line > p.toks[i-1].Pos.Line:
			lineStarts = append(lineStarts, i)
		default:
			others = append(others, i)
		}
	}
	cands := lineStarts
	if len(cands) == 0 {
		cands = others
	}
	for j := len(cands) - 1; j >= 0 && j >= len(cands)-3; j-- {
		if p.completeItems(kind, o+1, cands[j]) {
			return cands[j]
		}
	}
	return o + 1
}

func canStartItem(kind bodyKind, t lexer.Token) bool {
	name := t.Type == tokIdent || t.Type == tokName
	switch kind {
	case entryBody:
		return name
	case blockBody:
		return isKeyword(t, "config", "tensors")
	case configBody:
		return name || isKeyword(t, "each", "use", "when", "keep", "ignore", "left", "right", "refuse")
	case tensorsBody:
		return name || isKeyword(t, "each", "when", "let", "ignore") || t.Type == tokPunct && t.Value == "("
	}
	return false
}

// bodyOpeners open a top-level declaration whose body holds items of a
// kind, to check that tokens are complete items of it.
var bodyOpeners = map[bodyKind][]lexer.Token{
	entryBody:   {{Type: tokKeyword, Value: "sample"}, {Type: tokIdent, Value: "s"}, {Type: tokPunct, Value: "{"}},
	blockBody:   {{Type: tokKeyword, Value: "variant"}, {Type: tokIdent, Value: "v"}, {Type: tokPunct, Value: "{"}},
	configBody:  {{Type: tokKeyword, Value: "config"}, {Type: tokPunct, Value: "{"}},
	tensorsBody: {{Type: tokKeyword, Value: "tensors"}, {Type: tokPunct, Value: "{"}},
}

// completeItems reports whether tokens [from, to) are complete items of a
// body of the kind.
func (p *errParser) completeItems(kind bodyKind, from, to int) bool {
	toks := slices.Concat(bodyOpeners[kind], p.toks[from:to])
	return reach(tailParser, toks, lexer.Token{Type: tokPunct, Value: "}"}) == math.MaxInt
}

// A phrase names a group of tokens in an "expected ..." message.
type phrase struct {
	words string
	keys  []string // the phrase is used when all of these are accepted
	also  []string // tokens it covers too, when accepted
}

// phrases, most telling first. The tokens a phrase covers are not named
// again.
var phrases = []phrase{
	{`"mapping" (a file starts with its header)`, []string{"mapping"}, nil},
	{"a declaration (include, sample, let, config, tensors or variant)", declKeywords, nil},
	{"a config rule", []string{"each", "when", "keep", "ignore", "left", "right", "refuse", keyIdent, keyName}, []string{"use"}},
	{"a tensor rule", []string{"each", "when", "let", "ignore", "(", keyIdent, keyName}, nil},
	// After a binary operator "not" is not allowed (it binds more loosely).
	{"an expression", []string{"-", "(", "[", "{", "true", "false", "null", keyIdent, keyName, keyInt, keyFloat, keyString}, []string{"not"}},
	{"a name", []string{keyIdent, keyName}, nil},
}

// continuations are tokens that extend something already complete, in
// tiers: operators (and an index or a call) extend an operand; the next
// tier a name, a list or a rule. A tier is not named when anything outside it may come instead.
var continuations = [][]string{
	{"or", "and", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "[", "("},
	{":", "|", ",", "[", "default", "for", "map", "cycle", "verbatim", "else", "oneway"},
	{keyEOF},
}

// closers end a bracketed construct.
var closers = []string{"}", ")", "]"}

// describeExpected words an expected set for a message about token t.
func describeExpected(exp map[string]bool, t lexer.Token) string {
	if len(exp) == 0 {
		return ""
	}
	if t.EOF() {
		// The file ended inside brackets: what is missing is the closer.
		for _, c := range closers {
			if exp[c] {
				return fmt.Sprintf("%q", c)
			}
		}
	}
	left := maps.Clone(exp)
	var parts []string
	for _, ph := range phrases {
		if allOf(exp, ph.keys) && anyOf(left, ph.keys) {
			parts = append(parts, ph.words)
			for _, k := range slices.Concat(ph.keys, ph.also) {
				delete(left, k)
			}
		}
	}
	for _, tier := range continuations {
		outside := len(parts) > 0
		for k := range left {
			outside = outside || !slices.Contains(tier, k)
		}
		if outside {
			for _, k := range tier {
				delete(left, k)
			}
		}
	}
	for _, p := range probes {
		if k := tokenKey(p); left[k] {
			parts = append(parts, quoteKey(k))
		}
	}
	return orList(parts)
}

func allOf(set map[string]bool, keys []string) bool {
	for _, k := range keys {
		if !set[k] {
			return false
		}
	}
	return true
}

func anyOf(set map[string]bool, keys []string) bool {
	return slices.ContainsFunc(keys, func(k string) bool { return set[k] })
}

func quoteKey(k string) string {
	switch k {
	case keyIdent:
		return "an identifier"
	case keyName:
		return "a name"
	case keyInt:
		return "an integer"
	case keyFloat:
		return "a number"
	case keyString:
		return "a string"
	case keyEOF:
		return "end of file"
	}
	return fmt.Sprintf("%q", k)
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// describeToken names a token for an error message.
func describeToken(t lexer.Token) string {
	switch t.Type {
	case tokEOF:
		return "end of file"
	case tokKeyword:
		return fmt.Sprintf("keyword %q", t.Value)
	case tokIdent:
		return fmt.Sprintf("identifier %q", t.Value)
	case tokName:
		return fmt.Sprintf("name %q", t.Value)
	case tokInt, tokFloat:
		return "number " + t.Value
	case tokString:
		return "string " + t.Value
	}
	return fmt.Sprintf("%q", t.Value)
}

// syntaxHint suggests a fix for a few common slips, from the token found
// and the tokens the parser would have taken.
func syntaxHint(exp map[string]bool, t lexer.Token) string {
	switch {
	case t.Type == tokKeyword && !slices.Contains(declKeywords, t.Value) && (exp[keyIdent] || exp[keyName]):
		// A declaration keyword out of place is a slip in structure
		// (a missing "}", an unfinished expression), not a name.
		return fmt.Sprintf("%q is a keyword and cannot be used as a name", t.Value)
	case t.Type == tokPunct && slices.Contains([]string{"=", "<", "-", ">"}, t.Value) && exp["<->"]:
		return "rules relate the two sides with <->"
	case t.Type == tokPunct && slices.Contains([]string{"==", "!=", "<", "<=", ">", ">="}, t.Value) && exp["+"]:
		// After an operand, only a comparison already made refuses another.
		return "comparisons do not chain: write a < b and b < c"
	case t.Type == tokName && exp[keyIdent] && !exp[keyName]:
		return "a plain identifier is needed here, not a dotted name"
	}
	return ""
}
