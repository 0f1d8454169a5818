package dsl_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/syntax"
)

// FuzzLoad: parsing and checking never panic or hang, whatever the input;
// syntax errors come in source order, ten at most; and a file that parses
// formats to text that parses to the same tree and formats to itself.
// Seeds: testdata/fuzz/FuzzLoad (the example maps, encoded) and every .map
// file of the dsl tests.
func FuzzLoad(f *testing.F) {
	for _, pat := range []string{"testdata/*.map", "check/testdata/lint/*.map"} {
		files, _ := filepath.Glob(pat)
		for _, file := range files {
			if src, err := os.ReadFile(file); err == nil {
				f.Add(src)
			}
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if syntax.IsFragmentFile(src) {
			fuzzFragments(t, src)
			return
		}
		m, diags := dsl.Load("fuzz.map", src)
		if m == nil && len(diags) == 0 {
			t.Fatal("no mapping and no diagnostics")
		}
		// Syntax errors: recovery reports them in source order, ten at
		// most, then (as go/parser does) one note where the list stops.
		errs := diags
		if n := len(errs); n == 11 && strings.HasPrefix(errs[n-1].Message, "too many syntax errors") {
			errs = errs[:n-1]
		}
		if m == nil && (len(errs) > 10 || !slices.IsSortedFunc(diags, func(a, b diag.Diagnostic) int { return a.Pos.Offset - b.Pos.Offset })) {
			t.Fatalf("syntax errors out of order or too many: %v", diags)
		}
		for _, d := range diags {
			if d.Pos.Offset < 0 || d.Pos.Offset > len(src) || d.End.Offset < d.Pos.Offset || d.End.Offset > len(src) || d.Pos.Line < 1 {
				t.Fatalf("diagnostic outside the source: %+v", d)
			}
		}
		file, pd := syntax.Parse("fuzz.map", src)
		if file == nil || pd.HasErrors() {
			return
		}
		once := syntax.Format(file)
		file2, pd2 := syntax.Parse("fuzz.map", once)
		if file2 == nil || pd2.HasErrors() {
			t.Fatalf("formatted output does not parse: %v\n%s", pd2.Err(), once)
		}
		if a, b := syntax.Dump(file), syntax.Dump(file2); a != b {
			t.Fatalf("formatting changed the tree:\n%s\nvs\n%s\nformatted:\n%s", a, b, once)
		}
		if twice := syntax.Format(file2); string(twice) != string(once) {
			t.Fatalf("formatting is not idempotent:\n%s\nvs\n%s", once, twice)
		}
	})
}

// fuzzFragments: a fragment file lints without a panic, its diagnostics
// inside it, and one that parses formats to text that parses to the same
// tree and formats to itself.
func fuzzFragments(t *testing.T, src []byte) {
	for _, d := range dsl.LintFragments("fuzz.map", src) {
		if d.Pos.Offset < 0 || d.Pos.Offset > len(src) || d.End.Offset < d.Pos.Offset || d.End.Offset > len(src) || d.Pos.Line < 1 {
			t.Fatalf("diagnostic outside the source: %+v", d)
		}
	}
	ff, pd := syntax.ParseFragments("fuzz.map", src)
	if ff == nil || pd.HasErrors() {
		return
	}
	once := syntax.FormatFragments(ff)
	ff2, pd2 := syntax.ParseFragments("fuzz.map", once)
	if ff2 == nil || pd2.HasErrors() {
		t.Fatalf("formatted output does not parse: %v\n%s", pd2.Err(), once)
	}
	if a, b := syntax.Dump(ff), syntax.Dump(ff2); a != b {
		t.Fatalf("formatting changed the tree:\n%s\nvs\n%s", a, b)
	}
	if twice := syntax.FormatFragments(ff2); string(twice) != string(once) {
		t.Fatalf("formatting is not idempotent:\n%s\nvs\n%s", once, twice)
	}
}
