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

// TestShardsByFileOverflow: a file's size is a sum of tensor sizes (2^59
// bytes each here), refused rather than wrapped when it leaves int64.
func TestShardsByFileOverflow(t *testing.T) {
	var es []safetensors.Entry
	files := map[string]string{}
	for i := range 16 {
		n := string(rune('a' + i))
		es = append(es, safetensors.Entry{Name: n, DType: tensor.U8, Shape: tensor.Shape{1 << 59}})
		files[n] = "model.safetensors"
	}
	_, err := ShardsByFile(es, files, func(n string) string { return n })
	if err == nil || !strings.Contains(err.Error(), "tensor p: file model.safetensors: size 8646911284551352320 + 576460752303423488 overflows") {
		t.Errorf("16 * 2^59 bytes in one file: %v", err)
	}
}
