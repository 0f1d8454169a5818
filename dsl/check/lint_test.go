package check_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/syntax"
)

// want is one expectation: a diagnostic on line whose "severity: message"
// matches re.
type want struct {
	line    int
	re      *regexp.Regexp
	matched bool
}

var wantRE = regexp.MustCompile("#\\s*want((?:\\s+(?:\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`))+)\\s*$")
var quotedRE = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")

// parseWants reads the `# want "re" ...` annotations (Go-quoted or
// back-quoted) of a file, like
// go/analysis's analysistest: each regexp must match one diagnostic
// reported on that line ("error: ..." or "warning: ...").
func parseWants(t *testing.T, name string, src []byte) []*want {
	var out []*want
	for i, line := range strings.Split(string(src), "\n") {
		m := wantRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, q := range quotedRE.FindAllString(m[1], -1) {
			s, err := strconv.Unquote(q)
			if err != nil {
				t.Fatalf("%s:%d: bad want %s: %v", name, i+1, q, err)
			}
			re, err := regexp.Compile(s)
			if err != nil {
				t.Fatalf("%s:%d: bad want regexp %s: %v", name, i+1, q, err)
			}
			out = append(out, &want{line: i + 1, re: re})
		}
	}
	return out
}

// lintFile lints a file as mapper lint does: a fragment file on its own,
// a mapping with the fragments it includes put in place.
func lintFile(name string, src []byte) diag.List {
	if syntax.IsFragmentFile(src) {
		return dsl.LintFragments(name, src)
	}
	_, diags := dsl.Load(name, src)
	return diags
}

// onLine reports whether a diagnostic is on a line of file: at it, or
// inside a fragment that a use on that line put there.
func onLine(d diag.Diagnostic, file string, line int) bool {
	if d.Pos.File == file && d.Pos.Line == line {
		return true
	}
	for _, v := range d.Via {
		if v.File == file && v.Line == line {
			return true
		}
	}
	return false
}

// TestLint runs every testdata/lint/*.map file: every diagnostic must be
// wanted on its line, and every want must be matched.
func TestLint(t *testing.T) {
	files, err := filepath.Glob("testdata/lint/*.map")
	if err != nil || len(files) == 0 {
		t.Fatalf("no lint test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			wants := parseWants(t, file, src)
			diags := lintFile(file, src)
			for _, d := range diags {
				text := fmt.Sprintf("%s: %s", d.Severity, d.Message)
				ok := false
				for _, w := range wants {
					if !w.matched && onLine(d, file, w.line) && w.re.MatchString(text) {
						w.matched, ok = true, true
						break
					}
				}
				if !ok {
					t.Errorf("%s:%d:%d: unexpected %s", file, d.Pos.Line, d.Pos.Column, text)
				}
			}
			for _, w := range wants {
				if !w.matched {
					t.Errorf("%s:%d: no diagnostic matching %q", file, w.line, w.re)
				}
			}
			if t.Failed() {
				lib, _ := os.ReadFile("testdata/lint/frag_lib.map")
				t.Logf("all diagnostics:\n%s", diag.Text(diags, diag.Sources{file: src, "testdata/lint/frag_lib.map": lib}))
			}
		})
	}
}
