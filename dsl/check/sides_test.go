package check_test

import "github.com/mapper-dev/mapper/dsl/sides"

// The lint files name the two sides mapper ships. The checker learns side
// names from the sides a program links in (engine/format registers them),
// and these tests link in none: register the names the test data uses.
func init() {
	sides.Register("hf")
	sides.Register("fast_llm")
}
