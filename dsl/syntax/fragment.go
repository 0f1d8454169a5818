package syntax

import (
	"github.com/mapper-dev/mapper/dsl/diag"
)

// A fragment file holds config rules written once for several mappings:
// `fragment NAME(p, ...) { config items }` declarations, nothing else. A
// mapping names the file with `include "path"` and a fragment with
// `use NAME(...)` in a config block (dsl.Load puts the fragment's items
// there). Like a schema file, a fragment file reports its first syntax
// error only: fragments are short and few.

// IsFragmentFile reports whether src is a fragment file: its first token
// is the keyword fragment. A file that does not lex at its start is not.
func IsFragmentFile(src []byte) bool {
	s := &scanner{file: "", src: src, line: 1, col: 1}
	t, err := s.Next()
	return err == nil && t.Type == tokKeyword && t.Value == "fragment"
}

// ParseFragments parses one fragment file. As with ParseSchema, a syntax
// error stops the parse and the file is nil; problems the grammar lets
// through (an integer that overflows, ...) come with the file.
func ParseFragments(filename string, src []byte) (*FragmentFile, diag.List) {
	return parseWhole(fragParser, filename, src, func(c *converter, g *gFragFile) *FragmentFile {
		f := &FragmentFile{Span: Span{c.lines.pos(0), c.lines.pos(len(src))}, Filename: filename, src: src}
		for _, gf := range g.Frags {
			fd := &FragmentDecl{
				Span:   c.spanTo(c.pos(gf.Kw.Pos), gf.RBrace),
				Name:   c.ident(gf.Name),
				LBrace: c.pos(gf.LBrace.Pos),
				RBrace: c.pos(gf.RBrace.Pos),
				Items:  c.citems(gf.Items),
			}
			for _, p := range gf.Params {
				fd.Params = append(fd.Params, c.ident(p.Tok))
			}
			f.Frags = append(f.Frags, fd)
		}
		f.Comments = scanComments(filename, src, c.lines)
		return f
	})
}
