package format

import (
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

func TestShardsByFile(t *testing.T) {
	es := []safetensors.Entry{
		{Name: "b", DType: tensor.BF16, Shape: tensor.Shape{4}},
		{Name: "a", DType: tensor.F32, Shape: tensor.Shape{2}},
		{Name: "c", DType: tensor.U8, Shape: tensor.Shape{3}},
	}
	key := func(n string) string { return n + "/k" }
	files := map[string]string{"a": "model-2.safetensors", "b": "model-1.safetensors", "c": "model-1.safetensors"}
	shards, err := ShardsByFile(es, files, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 2 || shards[0].File != "model-1.safetensors" || shards[1].File != "model-2.safetensors" {
		t.Fatalf("files %+v", shards)
	}
	if !slices.Equal(shards[0].Logical, []string{"b", "c"}) || shards[0].Entries[0].Name != "b/k" || shards[0].Bytes != 8+3 {
		t.Fatalf("first shard %+v", shards[0])
	}

	for _, tc := range []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"a": "x.safetensors", "b": "x.safetensors"}, "no file recorded for tensor c"},
		{map[string]string{"a": "../x.safetensors", "b": "x.safetensors", "c": "x.safetensors"}, `recorded file "../x.safetensors" is not a plain`},
		{map[string]string{"a": "x.bin", "b": "x.safetensors", "c": "x.safetensors"}, `recorded file "x.bin" is not a plain`},
	} {
		if _, err := ShardsByFile(es, tc.files, key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.files, err, tc.want)
		}
	}
}
