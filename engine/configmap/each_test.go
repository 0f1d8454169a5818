package configmap

import (
	"reflect"
	"strings"
	"testing"
)

// eachSrc carries a tree of named blocks across, with per-block rules that
// depend on each block's own type, a fixed single block as a second node
// pattern, a value map and a refusal.
const eachSrc = `mapping eachtest
left hf
right fast_llm

config {
  hidden_size <-> hidden_size
  decoder.type <-> decoder.type
  decoder.pattern <-> decoder.pattern
  each b: decoder.blocks.* <-> decoder.blocks.*, decoder.block <-> decoder.block {
    {b}.mixer.type <-> {b}.mixer.type map { attention = attention, mamba = mamba }
    {b}.eps default 1e-05 <-> {b}.normalization.epsilon
    right {b}.normalization.type = "rms_norm"
    when {b}.mixer.type == "attention" {
      {b}.mixer.heads <-> {b}.mixer.heads
      {b}.mixer.rotary.type <-> {b}.mixer.rotary.type map { mistral_1d = "default" }
    }
    when {b}.mixer.type == "mamba" {
      {b}.mixer.state_size <-> {b}.mixer.state_size
      when {b}.mixer.state_size > 64 {
        refuse "too large a state"
      }
    }
  }
}
`

func TestEachImportExport(t *testing.T) {
	m := loadMapping(t, "eachtest.map", []byte(eachSrc))
	for _, tc := range []struct{ name, left, right string }{
		{"pattern",
			`{"hidden_size": 8, "decoder": {"type": "pattern", "pattern": ["a", "m"], "blocks": {
				"a": {"mixer": {"type": "attention", "heads": 2, "rotary": {"type": "mistral_1d"}}, "eps": 1e-06},
				"m": {"mixer": {"type": "mamba", "state_size": 16}}}}}`,
			`{"hidden_size": 8, "decoder": {"type": "pattern", "pattern": ["a", "m"], "blocks": {
				"a": {"mixer": {"type": "attention", "heads": 2, "rotary": {"type": "default"}}, "normalization": {"epsilon": 1e-06, "type": "rms_norm"}},
				"m": {"mixer": {"type": "mamba", "state_size": 16}, "normalization": {"epsilon": 1e-05, "type": "rms_norm"}}}}}`},
		{"fixed",
			`{"hidden_size": 8, "decoder": {"type": "fixed", "block": {"mixer": {"type": "mamba", "state_size": 32}}}}`,
			`{"hidden_size": 8, "decoder": {"type": "fixed", "block": {"mixer": {"type": "mamba", "state_size": 32}, "normalization": {"epsilon": 1e-05, "type": "rms_norm"}}}}`},
		{"no blocks", `{"hidden_size": 8}`, `{"hidden_size": 8}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			left, want := doc(t, tc.left), doc(t, tc.right)
			res, err := importConfig(m, left)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Out, want) {
				t.Fatalf("import:\n got %v\nwant %v", res.Out, want)
			}
			back, err := exportConfig(m, res.Out, res.Carried, "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Out, left) {
				t.Fatalf("export:\n got %v\nwant %v", back.Out, left)
			}
		})
	}
}

func TestEachErrors(t *testing.T) {
	m := loadMapping(t, "eachtest.map", []byte(eachSrc))
	for _, tc := range []struct{ name, left, want string }{
		{"unknown type", `{"decoder": {"type": "pattern", "blocks": {"s": {"mixer": {"type": "stochastic"}}}}}`,
			`decoder.blocks.s.mixer.type: value "stochastic" has no counterpart`},
		// A key of another type's block is claimed by no rule.
		{"foreign key", `{"decoder": {"type": "fixed", "block": {"mixer": {"type": "mamba", "state_size": 8, "heads": 2}}}}`,
			`decoder.block.mixer.heads: not claimed by any config rule`},
		{"refused", `{"decoder": {"type": "fixed", "block": {"mixer": {"type": "mamba", "state_size": 128}}}}`,
			`too large a state`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := importConfig(m, doc(t, tc.left))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// The export reads the nodes of the right config.
	right := doc(t, `{"decoder": {"type": "fixed", "block": {"mixer": {"type": "attention", "heads": 2, "rotary": {"type": "yarn"}}}}}`)
	if _, err := exportConfig(m, right, nil, ""); err == nil || !strings.Contains(err.Error(), `decoder.block.mixer.rotary.type: value "yarn" has no counterpart`) {
		t.Fatalf("export: got %v", err)
	}
}
