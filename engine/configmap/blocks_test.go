package configmap

import "testing"

// TestCycleNeedsBlockSchema: a right side that stores no per-layer block
// layout cannot take a cycle rule; the error says so instead of writing
// another side's layout into its config.
func TestCycleNeedsBlockSchema(t *testing.T) {
	m := cfgMapping(t)
	_, err := New(m, nil).Import(withLeft(t, nil), leftDoc)
	assertErr(t, err, "layer_types: the fast_llm side stores no per-layer block layout for a cycle rule to write", "cfgtest.map:8")
	_, err = New(m, nil).Export(withRight(t, nil), nil, rightDoc, "", anyLength)
	assertErr(t, err, "decoder: the fast_llm side stores no per-layer block layout for a cycle rule to read", "cfgtest.map:8")
}
