package syntax

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// Token types of the .map lexer. Keywords and plain identifiers are split out
// of names here, so that the grammar can ask for an identifier where a dotted
// name would be wrong, and a keyword can never be taken for a name.
const (
	tokEOF        = lexer.EOF
	tokComment    = lexer.TokenType(-2)
	tokWhitespace = lexer.TokenType(-3)
	tokKeyword    = lexer.TokenType(-4)
	tokIdent      = lexer.TokenType(-5)
	tokName       = lexer.TokenType(-6)
	tokFloat      = lexer.TokenType(-7)
	tokInt        = lexer.TokenType(-8)
	tokString     = lexer.TokenType(-9)
	tokPunct      = lexer.TokenType(-10)
)

// Keywords lists the reserved words. A single-segment name can never be one
// of them (a dotted name may contain them as segments: rope.default is fine).
var Keywords = []string{
	"and", "config", "cycle", "default", "each", "else", "false", "for", "fragment", "ignore", "include", "keep",
	"left", "let", "map", "mapping", "not", "null", "oneway", "or", "refuse", "right", "sample", "target",
	"tensors", "true", "use", "variant", "verbatim", "when",
}

var keywordSet = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range Keywords {
		m[k] = true
	}
	return m
}()

// Puncts lists the punctuation tokens, longest first.
var Puncts = []string{
	"<->", "==", "!=", "<=", ">=", "|", "(", ")", "[", "]", "{", "}", ",", ":", "=", "<", ">",
	"+", "-", "*", "/", "%",
}

// lexDef is the participle lexer definition.
type lexDef struct{}

var theLexer = lexDef{}

func (lexDef) Symbols() map[string]lexer.TokenType {
	return map[string]lexer.TokenType{
		"EOF": tokEOF, "Comment": tokComment, "Whitespace": tokWhitespace, "Keyword": tokKeyword,
		"Ident": tokIdent, "Name": tokName, "Float": tokFloat, "Int": tokInt, "String": tokString,
		"Punct": tokPunct,
	}
}

func (d lexDef) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return d.LexBytes(filename, b)
}

func (lexDef) LexBytes(filename string, b []byte) (lexer.Lexer, error) {
	return &scanner{file: filename, src: b, line: 1, col: 1}, nil
}

func (d lexDef) LexString(filename string, s string) (lexer.Lexer, error) {
	return d.LexBytes(filename, []byte(s))
}

// ScanError is a lexical error: a character or literal the language does not
// have. Len is the length of the offending text in bytes.
type ScanError struct {
	Pos lexer.Position
	Len int
	Msg string
}

func (e *ScanError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.Pos.Filename, e.Pos.Line, e.Pos.Column, e.Msg)
}

// scanner is a hand-written lexer in the style of go/scanner; columns count
// bytes.
type scanner struct {
	file      string
	src       []byte
	off       int
	line, col int
	trivia    bool // also return whitespace and comment tokens
	depth     int  // open brackets
	unary     int  // consecutive prefix operators (- and not)
}

// maxNesting bounds bracket nesting and runs of prefix operators, so that
// no input can make the recursive-descent parser recurse without limit.
const maxNesting = 200

func (s *scanner) pos() lexer.Position {
	return lexer.Position{Filename: s.file, Offset: s.off, Line: s.line, Column: s.col}
}

func (s *scanner) advance(n int) {
	for _, c := range s.src[s.off : s.off+n] {
		if c == '\n' {
			s.line++
			s.col = 1
		} else {
			s.col++
		}
	}
	s.off += n
}

func (s *scanner) tok(t lexer.TokenType, n int) lexer.Token {
	tk := lexer.Token{Type: t, Value: string(s.src[s.off : s.off+n]), Pos: s.pos()}
	s.advance(n)
	return tk
}

func isLetter(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// identLen returns the length of the identifier at i, or 0.
func (s *scanner) identLen(i int) int {
	if i >= len(s.src) || !isLetter(s.src[i]) {
		return 0
	}
	j := i + 1
	for j < len(s.src) && (isLetter(s.src[j]) || isDigit(s.src[j])) {
		j++
	}
	return j - i
}

// placeholderLen returns the length of `{ident}` or `{ident+digits}` at i,
// or 0.
func (s *scanner) placeholderLen(i int) int {
	if i >= len(s.src) || s.src[i] != '{' {
		return 0
	}
	n := s.identLen(i + 1)
	if n == 0 {
		return 0
	}
	j := i + 1 + n
	if j < len(s.src) && s.src[j] == '+' {
		k := j + 1
		for k < len(s.src) && isDigit(s.src[k]) {
			k++
		}
		if k == j+1 {
			return 0
		}
		j = k
	}
	if j >= len(s.src) || s.src[j] != '}' {
		return 0
	}
	return j + 1 - i
}

// segLen returns the length of a name segment after a dot at i, or 0.
func (s *scanner) segLen(i int) int {
	if i >= len(s.src) {
		return 0
	}
	if n := s.identLen(i); n > 0 {
		return n
	}
	if n := s.placeholderLen(i); n > 0 {
		return n
	}
	if s.src[i] == '*' {
		return 1
	}
	j := i
	for j < len(s.src) && isDigit(s.src[j]) {
		j++
	}
	return j - i
}

func (s *scanner) errorf(n int, format string, args ...any) error {
	return &ScanError{Pos: s.pos(), Len: n, Msg: fmt.Sprintf(format, args...)}
}

// errorfAt reports a problem at offset off of the current line, ahead of
// the token being scanned.
func (s *scanner) errorfAt(off, n int, format string, args ...any) error {
	p := s.pos()
	p.Column += off - s.off
	p.Offset = off
	return &ScanError{Pos: p, Len: n, Msg: fmt.Sprintf(format, args...)}
}

// Next returns the next token. The parser never sees whitespace or comments
// (participle would otherwise glue them to the captured tokens); the
// comment scan in Parse asks for them with trivia set.
func (s *scanner) Next() (lexer.Token, error) {
	for {
		start := s.pos()
		t, err := s.next()
		if err != nil {
			return t, err
		}
		if t.Type == tokWhitespace || t.Type == tokComment {
			if s.trivia {
				return t, nil
			}
			continue
		}
		switch {
		case t.Type == tokPunct && (t.Value == "(" || t.Value == "[" || t.Value == "{"):
			s.depth++
		case t.Type == tokPunct && (t.Value == ")" || t.Value == "]" || t.Value == "}"):
			s.depth--
		}
		if (t.Type == tokPunct && t.Value == "-") || (t.Type == tokKeyword && t.Value == "not") {
			s.unary++
		} else {
			s.unary = 0
		}
		if s.depth > maxNesting || s.unary > maxNesting {
			return lexer.Token{}, &ScanError{Pos: start, Len: len(t.Value), Msg: fmt.Sprintf("nesting deeper than %d levels", maxNesting)}
		}
		return t, nil
	}
}

func (s *scanner) next() (lexer.Token, error) {
	if s.off >= len(s.src) {
		return lexer.EOFToken(s.pos()), nil
	}
	c := s.src[s.off]
	switch {
	case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		n := 0
		for s.off+n < len(s.src) {
			c := s.src[s.off+n]
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				break
			}
			n++
		}
		return s.tok(tokWhitespace, n), nil
	case c == '#':
		n := 0
		for s.off+n < len(s.src) && s.src[s.off+n] != '\n' {
			n++
		}
		if !utf8.Valid(s.src[s.off : s.off+n]) {
			return lexer.Token{}, s.errorf(n, "comment is not valid UTF-8")
		}
		return s.tok(tokComment, n), nil
	case isLetter(c) || s.placeholderLen(s.off) > 0:
		return s.scanName()
	case isDigit(c):
		return s.scanNumber()
	case c == '"':
		return s.scanString()
	}
	for _, p := range Puncts {
		if s.off+len(p) <= len(s.src) && string(s.src[s.off:s.off+len(p)]) == p {
			return s.tok(tokPunct, len(p)), nil
		}
	}
	r, size := utf8.DecodeRune(s.src[s.off:])
	switch {
	case c == '.':
		return lexer.Token{}, s.errorf(1, "unexpected '.': a name segment (identifier, number, {var} or *) must follow a dot, and a name cannot start with one")
	case c == '!':
		return lexer.Token{}, s.errorf(1, "unexpected '!' (use != or not)")
	case r == utf8.RuneError && size <= 1:
		return lexer.Token{}, s.errorf(1, "invalid UTF-8 byte 0x%02x", c)
	case strconv.IsPrint(r):
		return lexer.Token{}, s.errorf(size, "unexpected character %q", r)
	}
	return lexer.Token{}, s.errorf(size, "unexpected character %U", r)
}

func (s *scanner) scanName() (lexer.Token, error) {
	n := s.identLen(s.off)
	plain := n > 0
	if n == 0 {
		n = s.placeholderLen(s.off)
	}
	for s.off+n < len(s.src) && s.src[s.off+n] == '.' {
		m := s.segLen(s.off + n + 1)
		if m == 0 {
			// A dangling dot: report it where it is.
			s.advance(n)
			return lexer.Token{}, s.errorf(1, "a name segment (identifier, number, {var} or *) must follow '.'")
		}
		n += 1 + m
		plain = false
	}
	switch {
	case plain && keywordSet[string(s.src[s.off:s.off+n])]:
		return s.tok(tokKeyword, n), nil
	case plain:
		return s.tok(tokIdent, n), nil
	}
	return s.tok(tokName, n), nil
}

func (s *scanner) scanNumber() (lexer.Token, error) {
	i := s.off
	for i < len(s.src) && isDigit(s.src[i]) {
		i++
	}
	float := false
	if i+1 < len(s.src) && s.src[i] == '.' && isDigit(s.src[i+1]) {
		float = true
		i++
		for i < len(s.src) && isDigit(s.src[i]) {
			i++
		}
	}
	if i < len(s.src) && (s.src[i] == 'e' || s.src[i] == 'E') {
		j := i + 1
		if j < len(s.src) && (s.src[j] == '+' || s.src[j] == '-') {
			j++
		}
		if j < len(s.src) && isDigit(s.src[j]) {
			float = true
			for j < len(s.src) && isDigit(s.src[j]) {
				j++
			}
			i = j
		}
	}
	if i < len(s.src) && (isLetter(s.src[i]) || s.src[i] == '.') {
		j := i
		for j < len(s.src) && (isLetter(s.src[j]) || isDigit(s.src[j]) || s.src[j] == '.') {
			j++
		}
		return lexer.Token{}, s.errorf(j-s.off, "invalid number %q", s.src[s.off:j])
	}
	if float {
		return s.tok(tokFloat, i-s.off), nil
	}
	return s.tok(tokInt, i-s.off), nil
}

func (s *scanner) scanString() (lexer.Token, error) {
	i := s.off + 1
	for {
		if i >= len(s.src) || s.src[i] == '\n' {
			return lexer.Token{}, s.errorf(i-s.off, "string literal not terminated")
		}
		if s.src[i] == '\\' {
			i += 2
			continue
		}
		if s.src[i] == '"' {
			i++
			break
		}
		r, n := utf8.DecodeRune(s.src[i:])
		if r == utf8.RuneError && n <= 1 {
			// strconv.Unquote would turn the byte into U+FFFD without a word.
			return lexer.Token{}, s.errorfAt(i, 1, "invalid UTF-8 byte 0x%02x in a string literal", s.src[i])
		}
		i += n
	}
	raw := string(s.src[s.off:i])
	v, err := strconv.Unquote(raw)
	if err != nil {
		return lexer.Token{}, s.errorf(i-s.off, "invalid string literal %s (Go escapes only)", raw)
	}
	if !utf8.ValidString(v) {
		// \xff or \377: a byte escape can spell what no config file can hold.
		return lexer.Token{}, s.errorf(i-s.off, "string literal %s is not valid UTF-8 once its escapes are applied (config values are text)", raw)
	}
	return s.tok(tokString, i-s.off), nil
}

// lineTable converts byte offsets to line and column.
type lineTable struct {
	file   string
	starts []int // offset of each line's first byte
}

func newLineTable(file string, src []byte) *lineTable {
	t := &lineTable{file: file, starts: []int{0}}
	for i, c := range src {
		if c == '\n' {
			t.starts = append(t.starts, i+1)
		}
	}
	return t
}

func (t *lineTable) pos(off int) Pos {
	i := sort.Search(len(t.starts), func(i int) bool { return t.starts[i] > off }) - 1
	if i < 0 {
		i = 0
	}
	return Pos{File: t.file, Offset: off, Line: i + 1, Column: off - t.starts[i] + 1}
}
