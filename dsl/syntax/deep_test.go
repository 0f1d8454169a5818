package syntax_test

import (
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/syntax"
)

// Deeply nested input is an error, not a stack overflow.
func TestDeepNesting(t *testing.T) {
	for _, body := range []string{
		strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000),
		strings.Repeat("[", 100000),
		strings.Repeat("- ", 100000) + "1",
		strings.Repeat("not ", 100000) + "x",
	} {
		f, diags := syntax.Parse("deep.map", []byte("mapping m left hf right fast_llm let x = "+body))
		if f != nil || len(diags) != 1 || !strings.Contains(diags[0].Message, "nesting deeper than") {
			t.Errorf("got %v", diags)
		}
	}
	// Moderate nesting is fine.
	src := "mapping m left hf right fast_llm let x = " + strings.Repeat("(", 50) + "1" + strings.Repeat(")", 50)
	if f, diags := syntax.Parse("ok.map", []byte(src)); f == nil {
		t.Errorf("50 levels: %v", diags)
	}
}
