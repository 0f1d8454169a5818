package fastllm

import (
	"reflect"
	"slices"
	"testing"

	"github.com/mapper-dev/mapper/engine/format"
)

// TestBlocksRoundTrip: what WriteBlocks lays out, ReadBlocks reads back,
// with the structural keys a translator must not report as unclaimed.
func TestBlocksRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		pattern   []string
		node      map[string]any
		structure []string
	}{{
		pattern: []string{"sliding", "full", "full"},
		node: map[string]any{"type": "pattern", "pattern": []any{"sliding", "full", "full"},
			"blocks": map[string]any{"sliding": map[string]any{}, "full": map[string]any{}}},
		structure: []string{"type", "pattern", "blocks.sliding", "blocks.full"},
	}, {
		pattern:   []string{"full"},
		node:      map[string]any{"type": "fixed", "block": map[string]any{}},
		structure: []string{"type", "block"},
	}} {
		node := map[string]any{}
		l := Side{}.WriteBlocks(node, tc.pattern)
		if !reflect.DeepEqual(node, tc.node) {
			t.Errorf("WriteBlocks(%q) wrote %v, want %v", tc.pattern, node, tc.node)
		}
		back, ok, problems := Side{}.ReadBlocks(node)
		if !ok || problems != nil || back.Single != l.Single || !slices.Equal(back.Structure, tc.structure) {
			t.Errorf("ReadBlocks(%v) = %+v, %v, %v", node, back, ok, problems)
		}
		// A single block does not store its name: the translator tells it.
		if !l.Single && !slices.Equal(back.Pattern, tc.pattern) {
			t.Errorf("pattern read back %q, want %q", back.Pattern, tc.pattern)
		}
	}
}

func TestReadBlocksProblems(t *testing.T) {
	for _, tc := range []struct {
		node map[string]any
		ok   bool
		want []format.BlockProblem
	}{
		{map[string]any{"num_blocks": int64(2)}, false, []format.BlockProblem{{Msg: "has neither a pattern nor a block"}}},
		{map[string]any{"pattern": []any{}}, true, []format.BlockProblem{{Key: "pattern", Msg: "is empty or not a list"}}},
		{map[string]any{"pattern": []any{int64(3)}}, true, []format.BlockProblem{
			{Key: "pattern", Msg: "holds 3, not a block name"}, {Key: "pattern", Msg: "is empty or not a list"}}},
		{map[string]any{"pattern": []any{"a", "b"}, "blocks": map[string]any{"a": map[string]any{}}}, true,
			[]format.BlockProblem{{Key: "blocks.b", Msg: "missing; the pattern names it"}}},
		// Written before Fast-LLM typed its block sequences: no type at all.
		{map[string]any{"block": map[string]any{}}, true, nil},
		{map[string]any{"type": "pattern", "block": map[string]any{}}, true,
			[]format.BlockProblem{{Key: "type", Msg: `is "pattern", but the node is laid out as fixed`}}},
		{map[string]any{"type": "fixed", "pattern": []any{"a"}, "blocks": map[string]any{"a": map[string]any{}}}, true,
			[]format.BlockProblem{{Key: "type", Msg: `is "fixed", but the node is laid out as pattern`}}},
	} {
		_, ok, problems := Side{}.ReadBlocks(tc.node)
		if ok != tc.ok || !reflect.DeepEqual(problems, tc.want) {
			t.Errorf("ReadBlocks(%v) = ok %v, %+v; want ok %v, %+v", tc.node, ok, problems, tc.ok, tc.want)
		}
	}
}

// TestBlockAddressing: rules name a block's keys as blocks.<name>.<key>,
// which a single plain block stores under block.<key>.
func TestBlockAddressing(t *testing.T) {
	block, key, ok := Side{}.BlockKey([]string{"blocks", "*", "mixer", "heads"})
	if !ok || block != "*" || !slices.Equal(key, []string{"mixer", "heads"}) {
		t.Errorf("BlockKey = %q, %q, %v", block, key, ok)
	}
	for _, p := range [][]string{{"blocks"}, {"block", "mixer"}, {"num_blocks"}} {
		if _, _, ok := (Side{}).BlockKey(p); ok {
			t.Errorf("BlockKey(%q) addresses a block", p)
		}
	}
	pattern := format.BlockLayout{Pattern: []string{"a", "b"}}
	single := format.BlockLayout{Pattern: []string{"a"}, Single: true}
	if got := (Side{}).BlockPath(pattern, "b", []string{"x"}); !slices.Equal(got, []string{"blocks", "b", "x"}) {
		t.Errorf("pattern BlockPath = %q", got)
	}
	if got := (Side{}).BlockPath(single, "a", []string{"x"}); !slices.Equal(got, []string{"block", "x"}) {
		t.Errorf("single BlockPath = %q", got)
	}
}
