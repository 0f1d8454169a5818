// Package dsl is the front end of the .map language: it turns the text of a
// mapping file into the checked IR (package dsl/ir) that the engine runs,
// with every problem reported as a positioned diagnostic (package
// dsl/diag), and prints the canonical form of a file (`mapper fmt`).
//
// The work is split like Go's own toolchain:
//
//	dsl/token   source positions, shared by every stage (like go/token)
//	dsl/syntax  scanner, participle grammar, AST with positions, formatter
//	            (like go/scanner + go/parser + go/ast + go/printer)
//	dsl/check   AST -> IR, with every semantic check (like go/types)
//	dsl/diag    diagnostics and their text, JSON and GitHub renderers
//	dsl/ir      the IR, the op table and expression evaluation
//	dsl/sides   the side names a header may use, registered by the sides
//	            the program links in (engine/format), so dsl needs no engine
//	dsl/schema  the parameter-schema language of the Fast-LLM side's
//	            schema files, on the same tokens and expressions
//
// The parser reports every syntax error it can recover from (one per
// declaration, up to ten, as go/parser does), but a file with syntax errors
// goes no further; every later pass collects all the problems it finds.
// The language itself is described in docs/language.md, its grammar in
// docs/grammar.ebnf.
package dsl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mapper-dev/mapper/dsl/check"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
)

// Load parses and checks one .map file. The mapping is nil only on a syntax
// error; otherwise it is returned even when the list holds errors (the
// engine must not run it then: use diags.HasErrors or diags.Err).
// Warnings never make a mapping unusable. The mapping's Hash is rulesHash's.
// The fragment files it includes are read from the file's directory, and
// may not lie outside it (os.Root: no .., no link leading out).
func Load(filename string, src []byte) (*ir.Mapping, diag.List) {
	return LoadUser(filename, src, nil, "")
}

// LoadUser is Load for a user's file, with mapper's own fragment files as
// a fallback: an include whose file the directory does not hold is read
// from builtin, a directory named builtinDir in diagnostics, so that a
// copy of a built-in mapping works wherever it is put (a fragment file of
// the same path beside it wins). builtin nil: no fallback.
func LoadUser(filename string, src []byte, builtin fs.FS, builtinDir string) (*ir.Mapping, diag.List) {
	var root *os.Root
	defer func() {
		if root != nil {
			root.Close()
		}
	}()
	return load(filename, src, func() (fs.FS, error) {
		r, err := os.OpenRoot(filepath.Dir(filename))
		if err != nil {
			return nil, err
		}
		root = r
		return r.FS(), nil
	}, builtin, builtinDir)
}

// LoadFS is Load with the fragment files read from dir, the directory that
// holds the file (the built-in mappings': mappings.Load).
func LoadFS(dir fs.FS, filename string, src []byte) (*ir.Mapping, diag.List) {
	return load(filename, src, func() (fs.FS, error) { return dir, nil }, nil, "")
}

func load(filename string, src []byte, dir func() (fs.FS, error), builtin fs.FS, builtinDir string) (*ir.Mapping, diag.List) {
	f, diags := syntax.Parse(filename, src)
	if f == nil {
		return nil, diags
	}
	f, sources, x := expand(f, dir, filepath.Dir(filename), builtin, builtinDir)
	m, more := check.Check(f)
	more = append(more, x.diags...)
	x.via(more)
	if m != nil {
		m.Hash = rulesHash(f)
		m.Fragments, m.Uses = sources, x.uses
	}
	return m, append(diags, more...).Sort()
}

// rulesHash is the sha256 of the file's canonical form, its fragments in
// place (see expand), without its comments and blank lines: it changes with
// the rules, not with a comment, the layout or `mapper fmt`, so that an
// export refuses only a mapping that may really lay tensors out otherwise
// than the one the import recorded. (The canonical form keeps a file's
// blank lines, and a comment leaves its line's break behind.)
func rulesHash(f *syntax.File) string {
	bare := *f
	bare.Comments = nil
	var lines [][]byte
	for _, l := range bytes.Split(syntax.Format(&bare), []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, l)
		}
	}
	sum := sha256.Sum256(bytes.Join(lines, []byte("\n")))
	return hex.EncodeToString(sum[:])
}

// Format returns the canonical form of a .map file (see syntax.Format), a
// fragment file's too. It
// fails, with the diagnostics as the error (diag.AsList recovers them), when
// the file does not parse.
func Format(filename string, src []byte) ([]byte, error) {
	if syntax.IsFragmentFile(src) {
		ff, diags := syntax.ParseFragments(filename, src)
		if err := diags.Err(); err != nil {
			return nil, err
		}
		return syntax.FormatFragments(ff), nil
	}
	f, diags := syntax.Parse(filename, src)
	if err := diags.Err(); err != nil {
		return nil, err
	}
	return syntax.Format(f), nil
}
