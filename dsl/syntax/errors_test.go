package syntax_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/syntax"
)

const header = "mapping m\nleft hf\nright fast_llm\n"

// TestSyntaxErrors: after a syntax error the parser resumes at the next
// declaration, so independent slips are all reported, each where it is,
// in source order; a slip that breaks a declaration's structure gives one
// error, not one per line after it. Each want line is "line:col: message",
// with " | hint" when there is one.
func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{
			name: "three slips",
			src: header + `let a.b = 1
config {
  x = y
}
tensors {
  a.w -> b.w
}
let z = 2
`,
			want: []string{
				`4:5: syntax error: expected an identifier, found name "a.b" | a plain identifier is needed here, not a dotted name`,
				`6:5: syntax error: expected "<->", found "=" | rules relate the two sides with <->`,
				`9:7: syntax error: expected "<->", found "-" | rules relate the two sides with <->`,
			},
		},
		{
			name: "lexical errors do not stop the parse",
			src: header + `let x = a $ b
let y = 12ab
let z = "abc
let map = 3
`,
			want: []string{
				`4:11: unexpected character '$'`,
				`5:9: invalid number "12ab"`,
				`6:9: string literal not terminated`,
				`7:5: syntax error: expected an identifier, found keyword "map" | "map" is a keyword and cannot be used as a name`,
			},
		},
		{
			name: "one error per declaration",
			src: header + `config {
  a = b
  c = d
}
tensors {
  x -> y
  z -> w
}
`,
			want: []string{
				`5:5: syntax error: expected "<->", found "=" | rules relate the two sides with <->`,
				`9:5: syntax error: expected "<->", found "-" | rules relate the two sides with <->`,
			},
		},
		{
			name: "a missing closing brace",
			src: header + `config {
  a <-> b

tensors {
  c <-> d
}
sample s {
  a = 1
let x = 1 +
`,
			want: []string{
				`7:1: syntax error: expected a config rule or "}", found keyword "tensors"`,
				`12:1: syntax error: expected a name or "}", found keyword "let"`,
				`12:12: syntax error: expected an expression, found end of file`,
			},
		},
		{
			name: "a closing brace too many",
			src: header + `config {
  a <-> b
} }
tensors {
  c <-> d
} }
`,
			want: []string{
				`6:3: syntax error: expected a declaration (include, sample, let, config, tensors or variant), found "}"`,
				`9:3: syntax error: expected a declaration (include, sample, let, config, tensors or variant), found "}"`,
			},
		},
		{
			name: "a variant without its brace",
			src: header + `variant v when x
  config { a <-> b }
  tensors { c <-> d }
}
let y = ]
`,
			want: []string{
				`5:3: syntax error: expected "{", found keyword "config"`,
				`8:9: syntax error: expected an expression, found "]"`,
			},
		},
		{
			name: "a broken block inside a variant",
			src: header + `variant v {
  config { a <-> b
  tensors { c <-> d }
}
let y = 1 < 2 < 3
`,
			want: []string{
				`6:3: syntax error: expected a config rule or "}", found keyword "tensors"`,
				`8:15: syntax error: expected a declaration (include, sample, let, config, tensors or variant), found "<" | comparisons do not chain: write a < b and b < c`,
			},
		},
		{
			name: "the header, then declarations",
			src: `mapping m left hf config { a <-> b }
let x = 1 1
`,
			want: []string{
				`1:19: syntax error: expected "right", found keyword "config"`,
				`2:11: syntax error: expected a declaration (include, sample, let, config, tensors or variant), found number 1`,
			},
		},
		{
			name: "no header",
			src: `config { a <-> b }
tensors { a -> b }
`,
			want: []string{
				`1:1: syntax error: expected "mapping" (a file starts with its header), found keyword "config"`,
				`2:13: syntax error: expected "<->", found "-" | rules relate the two sides with <->`,
			},
		},
		{
			name: "two declarations on one line",
			src:  header + "let a = ] let b = )\n",
			want: []string{
				`4:9: syntax error: expected an expression, found "]"`,
				`4:19: syntax error: expected an expression, found ")"`,
			},
		},
		{
			name: "what is expected where",
			src: header + `sample s { a = {"k": 1, k: 2} }
sample t { a = [1, 2 }
let u = 1 +
config { left = 3 }
config { a <-> b map { x = } }
tensors { each l < 3 a <-> b { x <-> y } }
tensors { a | transpose(0, 1 <-> b }
tensors { a | <-> b }
variant v { a <-> b }
`,
			want: []string{
				`4:25: syntax error: expected a string or "}", found identifier "k"`,
				`5:22: syntax error: expected "]", found "}"`,
				`7:1: syntax error: expected an expression, found keyword "config"`,
				`7:15: syntax error: expected a name, found "="`,
				`8:28: syntax error: expected an expression, found "}"`,
				`9:22: syntax error: expected ":", found identifier "a"`,
				`10:30: syntax error: expected ")", found "<->"`,
				`11:15: syntax error: expected an identifier, found "<->"`,
				`12:13: syntax error: expected "config", "tensors" or "}", found identifier "a"`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, diags := syntax.Parse("t.map", []byte(tc.src))
			if f != nil {
				t.Error("a file with syntax errors gave a tree")
			}
			var got []string
			for _, d := range diags {
				s := fmt.Sprintf("%d:%d: %s", d.Pos.Line, d.Pos.Column, d.Message)
				if d.Hint != "" {
					s += " | " + d.Hint
				}
				got = append(got, s)
			}
			if g, w := strings.Join(got, "\n"), strings.Join(tc.want, "\n"); g != w {
				t.Errorf("got:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

// TestSyntaxErrorCap: as go/parser, at most ten syntax errors per file,
// then one line saying the list stops there; ten exactly get no such line.
func TestSyntaxErrorCap(t *testing.T) {
	src := header + strings.Repeat("let x = ]\n", 15)
	f, diags := syntax.Parse("t.map", []byte(src))
	if f != nil || len(diags) != 11 {
		t.Fatalf("got a tree: %v, %d errors, want 10 and the cap's", f != nil, len(diags))
	}
	if last := diags[10]; last.Pos.Line != 14 || last.Message != "too many syntax errors: only the first 10 are reported" {
		t.Errorf("cap: %d:%d: %s", last.Pos.Line, last.Pos.Column, last.Message)
	}
	if _, ten := syntax.Parse("t.map", []byte(header+strings.Repeat("let x = ]\n", 10))); len(ten) != 10 {
		t.Errorf("ten errors: %d diagnostics, want 10", len(ten))
	}
	for i, d := range diags[:10] {
		if d.Pos.Line != 4+i || d.Pos.Column != 9 || d.Message != `syntax error: expected an expression, found "]"` {
			t.Errorf("error %d: %d:%d: %s", i, d.Pos.Line, d.Pos.Column, d.Message)
		}
	}
}
