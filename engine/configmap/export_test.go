package configmap

import (
	"testing"

	"github.com/mapper-dev/mapper/engine/format"
)

// TestExportConditionalLeavesNothing: a conditional rule that has nothing
// to write back (its right key absent, or its left key absent on the way in
// and still at the default) is applied once; the export ends, and the key
// stays absent.
func TestExportConditionalLeavesNothing(t *testing.T) {
	m := loadMapping(t, "c.map", []byte(`mapping c
left hf
right fast_llm
config {
  t <-> t
  when t == "a" {
    x <-> y
    z default 4 <-> w
  }
}
`))
	res, err := exportConfig(m, doc(t, `{"t": "a", "w": 4}`), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "right key absent", res.Out, `{"t": "a", "z": 4}`)
	res, err = exportConfig(m, doc(t, `{"t": "a", "w": 4}`), &format.Carried{Absent: []string{"z"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "absent on the way in", res.Out, `{"t": "a"}`)
}

// TestExportEmptyPattern: a pattern that names no block is an error, not a
// division by zero when the list is expanded.
func TestExportEmptyPattern(t *testing.T) {
	m := cfgMapping(t)
	for _, p := range []any{[]any{}, []any{int64(3)}, "sliding"} {
		_, err := exportConfig(m, withRight(t, map[string]any{"decoder.pattern": p}), nil, "")
		assertErr(t, err, "decoder.pattern: ")
	}
}
