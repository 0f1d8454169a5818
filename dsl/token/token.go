// Package token holds what every stage of the .map toolchain shares about
// source text: positions. It is a leaf, as go/token is, so the scanner,
// the parser, the diagnostics and the IR can all carry the same Pos without
// importing one another.
package token

import "strconv"

// Pos is a position in a .map file. Line and Column are 1-based; Column counts
// bytes.
type Pos struct {
	File   string
	Offset int
	Line   int
	Column int
}

// FileLine prints the position as messages cite a rule: file:line. Where a
// message is itself positioned, diagnostics print file:line:col instead.
func (p Pos) FileLine() string { return p.File + ":" + strconv.Itoa(p.Line) }
