package check_test

import "github.com/mapper-dev/mapper/dsl/sides"

// The lint files name the two sides mapper ships. The checker learns side
// names from the sides a program links in (engine/format registers them),
// and these tests link in none: register the names (and fast_llm's
// targets) the test data uses.
func init() {
	sides.Register("hf")
	sides.Register("fast_llm")
	sides.RegisterTargets("fast_llm", []string{"0.4.0", "0.3.0"}, "0.4.0")
}
