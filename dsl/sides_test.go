package dsl_test

import (
	"testing"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/sides"
)

// The example mappings name the two sides mapper ships. The checker learns
// side names from the sides a program links in (engine/format registers
// them), and these tests link in none: register the names (and fast_llm's
// targets) the test data uses.
func init() {
	sides.Register("hf")
	sides.Register("fast_llm")
	sides.RegisterTargets("fast_llm", []string{"0.4.0", "0.3.0"}, "0.4.0")
}

// TestHeaderTarget: the IR holds the target a header names, else the
// side's default, and none for a side without targets.
func TestHeaderTarget(t *testing.T) {
	for _, c := range []struct{ header, left, right string }{
		{"left hf\nright fast_llm\n", "", "0.4.0"},
		{"left hf\nright fast_llm target \"0.3.0\"\n", "", "0.3.0"},
		{"left fast_llm target \"0.3.0\"\nright hf\n", "0.3.0", ""},
	} {
		m, diags := dsl.Load("t.map", []byte("mapping t\n"+c.header+"sample s {}\n"))
		if diags.HasErrors() {
			t.Fatalf("%q: %v", c.header, diags.Err())
		}
		if m.LeftTarget != c.left || m.RightTarget != c.right {
			t.Errorf("%q: targets %q, %q; want %q, %q", c.header, m.LeftTarget, m.RightTarget, c.left, c.right)
		}
	}
}
