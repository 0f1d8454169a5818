package sides

import (
	"slices"
	"testing"
)

func TestRegister(t *testing.T) {
	Register("b_side")
	Register("a_side")
	Register("b_side")
	if got := Known(); !slices.Equal(got, []string{"a_side", "b_side"}) {
		t.Errorf("Known() = %q, want each name once, sorted", got)
	}
}
