package format

import (
	"slices"
	"testing"

	"github.com/mapper-dev/mapper/dsl/sides"
)

// testSide is a side that exists only to be registered.
type testSide struct{ Format }

func (testSide) Name() string { return "test_side" }

// TestRegisterTellsTheChecker: a registered side's name is one the .map
// checker accepts, with no list to update elsewhere.
func TestRegisterTellsTheChecker(t *testing.T) {
	Register(testSide{})
	if !slices.Contains(sides.Known(), "test_side") {
		t.Errorf("sides.Known() = %q, want test_side among them", sides.Known())
	}
	if f, err := Lookup("test_side"); err != nil || f.Name() != "test_side" {
		t.Errorf("Lookup(test_side) = %v, %v", f, err)
	}
}
