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

// TestComputedRightValue: a right constant computed from the left config
// is written on import with the value it has there, and checked on export
// against the left config rebuilt: another value, or none, is refused,
// naming the expression and its value. Under a when it is computed only
// where the when holds.
func TestComputedRightValue(t *testing.T) {
	m := loadMapping(t, "c.map", []byte(`mapping c
left hf
right fast_llm
config {
  hidden_size <-> hidden_size
  moe <-> moe
  right embeddings.embedding_scale = sqrt(hidden_size)
  when moe {
    right router.input_scale = 1.0 / sqrt(hidden_size)
  }
}
`))
	res, err := importConfig(m, doc(t, `{"hidden_size": 256, "moe": true}`))
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "import", res.Out, `{"hidden_size": 256, "moe": true, "embeddings": {"embedding_scale": 16.0}, "router": {"input_scale": 0.0625}}`)
	res, err = importConfig(m, doc(t, `{"hidden_size": 2816, "moe": false}`))
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "import without the when", res.Out, `{"hidden_size": 2816, "moe": false, "embeddings": {"embedding_scale": 53.0659966456864}}`)

	back, err := exportConfig(m, doc(t, `{"hidden_size": 256, "moe": true, "embeddings": {"embedding_scale": 16.0}, "router": {"input_scale": 0.0625}}`), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "export", back.Out, `{"hidden_size": 256, "moe": true}`)
	_, err = exportConfig(m, doc(t, `{"hidden_size": 256, "moe": true, "embeddings": {"embedding_scale": 1.0}, "router": {"input_scale": 0.0625}}`), nil, "")
	assertErr(t, err, "embeddings.embedding_scale: is 1.0; the mapping requires sqrt(hidden_size) = 16.0 (hf has no way to say another value)", "c.map:7")
	_, err = exportConfig(m, doc(t, `{"hidden_size": 256, "moe": true, "embeddings": {"embedding_scale": 16.0}}`), nil, "")
	assertErr(t, err, "router.input_scale: missing; the mapping requires 1 / sqrt(hidden_size) = 0.0625", "c.map:9")
	if _, err = exportConfig(m, doc(t, `{"hidden_size": 256, "moe": false, "embeddings": {"embedding_scale": 16.0}}`), nil, ""); err != nil {
		t.Errorf("the when does not hold, nothing to check: %v", err)
	}
	// What the expression cannot compute is an error of the rule.
	_, err = importConfig(m, doc(t, `{"hidden_size": -4, "moe": false}`))
	assertErr(t, err, "embeddings.embedding_scale: c.map:7:38: sqrt(hidden_size): hidden_size is -4; it must not be negative", "c.map:7")
}

// TestComputedLeftValue: a left key that mirrors others (left patch_size
// default embeddings.patch_height) is checked on import against the value
// its expression gives, and written on export from the left config
// rebuilt; an optional one absent on the way in stays absent on the way
// back, and one a config mapper did not import is written.
func TestComputedLeftValue(t *testing.T) {
	m := loadMapping(t, "c.map", []byte(`mapping c
left hf
right fast_llm
config {
  embeddings.patch_height <-> embeddings.patch_height
  num_blocks <-> encoder.num_blocks
  left patch_size default embeddings.patch_height
  left num_hidden_layers = num_blocks
}
`))
	for _, tc := range []struct{ name, in string }{
		{"stated", `{"embeddings": {"patch_height": 16}, "num_blocks": 3, "num_hidden_layers": 3, "patch_size": 16}`},
		{"optional_absent", `{"embeddings": {"patch_height": 16}, "num_blocks": 3, "num_hidden_layers": 3}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := importConfig(m, doc(t, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			assertDoc(t, "import", res.Out, `{"embeddings": {"patch_height": 16}, "encoder": {"num_blocks": 3}}`)
			back, err := exportConfig(m, res.Out, res.Carried, "")
			if err != nil {
				t.Fatal(err)
			}
			assertDoc(t, "round trip", back.Out, tc.in)
		})
	}
	back, err := exportConfig(m, doc(t, `{"embeddings": {"patch_height": 14}, "encoder": {"num_blocks": 2}}`), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "export without a record", back.Out, `{"embeddings": {"patch_height": 14}, "num_blocks": 2, "num_hidden_layers": 2, "patch_size": 14}`)
	_, err = importConfig(m, doc(t, `{"embeddings": {"patch_height": 16}, "num_blocks": 3, "num_hidden_layers": 3, "patch_size": 14}`))
	assertErr(t, err, "patch_size: is 14; the mapping requires embeddings.patch_height = 16", "c.map:7")
	_, err = importConfig(m, doc(t, `{"embeddings": {"patch_height": 16}, "num_blocks": 3}`))
	assertErr(t, err, "num_hidden_layers: missing; the mapping requires num_blocks = 3", "c.map:8")
}

// TestRightDefaultLeftOut: a rename's right default is left out on import
// when the value is the default (the right side's absence says it) and
// read back on export, so both round trips are exact; another value is
// written. A left key absent on the way in stays absent.
func TestRightDefaultLeftOut(t *testing.T) {
	m := loadMapping(t, "c.map", []byte(`mapping c
left hf
right fast_llm
config {
  k default false <-> block.shared default false
}
`))
	for _, c := range []struct{ left, right string }{
		{`{"k": true}`, `{"block": {"shared": true}}`},
		{`{"k": false}`, `{}`},
	} {
		res, err := importConfig(m, doc(t, c.left))
		if err != nil {
			t.Fatal(err)
		}
		assertDoc(t, "import "+c.left, res.Out, c.right)
		back, err := exportConfig(m, res.Out, res.Carried, "")
		if err != nil {
			t.Fatal(err)
		}
		assertDoc(t, "export "+c.right, back.Out, c.left)
	}
	res, err := importConfig(m, doc(t, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "import of an absent key", res.Out, `{}`)
	back, err := exportConfig(m, res.Out, res.Carried, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "export of an absent key", back.Out, `{}`)
	back, err = exportConfig(m, doc(t, `{}`), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	assertDoc(t, "export without a record", back.Out, `{"k": false}`)
}
