package check_test

import (
	"testing"
)

// TestConstOverflowPosition: a constant that overflows is reported when the
// file is linted, at the subexpression that overflows, even though the
// dimension it is part of also reads the config.
func TestConstOverflowPosition(t *testing.T) {
	src := []byte(`mapping m
left hf
right fast_llm
config {
  hidden_size <-> hidden_size
}
tensors {
  a.w: [65536 * 65536 * 65536 * 65536 + hidden_size] <-> b.w
}
`)
	diags := lintFile("m.map", src)
	if len(diags) != 1 {
		t.Fatalf("want one diagnostic, got %v", diags)
	}
	const want = "m.map:8:9: error: ((65536 * 65536) * 65536) * 65536 = 281474976710656 * 65536 overflows a 64-bit integer"
	if got := diags[0].Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
