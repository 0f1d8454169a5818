// Package token holds what every stage of the .map toolchain shares about
// source text: positions. It is a leaf, as go/token is, so the scanner,
// the parser, the diagnostics and the IR can all carry the same Pos without
// importing one another.
package token

// Pos is a position in a .map file. Line and Column are 1-based; Column counts
// bytes.
type Pos struct {
	File   string
	Offset int
	Line   int
	Column int
}
