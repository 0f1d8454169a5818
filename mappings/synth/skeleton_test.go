package synth

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// TestFromConfig reads back the Arch a config was generated from, and the
// real models' sizes from published configs' keys.
func TestFromConfig(t *testing.T) {
	for _, a := range []Arch{TinyGPTOSS(), TinyGPTOSSDense(), TinyLlama(), TinyMistral(), TinyMixtral(), TinyQwen2(),
		{Family: Llama, Hidden: 64, Intermediate: 128, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 32, Vocab: 128,
			TieEmbeddings: true, AttentionBias: true, MLPBias: true}} {
		cfg, err := Config(a)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FromConfig(cfg)
		if err != nil {
			t.Fatalf("%s: %v", a.Family, err)
		}
		a.SlidingWindow = 0 // not a tensor's business
		if a.Family == GPTOSS || a.Family == Mixtral {
			got.ExpertsPerTok = a.ExpertsPerTok
		}
		if !reflect.DeepEqual(mustTensors(t, got), mustTensors(t, a)) {
			t.Errorf("%s: FromConfig gives %+v, from %+v", a.Family, got, a)
		}
	}
	// Absent keys take transformers' defaults; the dtype names the floats.
	got, err := FromConfig(map[string]any{"model_type": "llama", "hidden_size": int64(64), "intermediate_size": int64(128),
		"num_hidden_layers": int64(1), "num_attention_heads": int64(4), "vocab_size": int64(8), "torch_dtype": "float32"})
	if err != nil {
		t.Fatal(err)
	}
	if got.KVHeads != 4 || got.HeadDim != 16 || got.Float != tensor.F32 {
		t.Errorf("defaults: %+v", got)
	}
	for cfg, want := range map[string]string{
		`{"model_type": "gemma4"}`:                     `model_type "gemma4" is none of synth's families`,
		`{"model_type": "llama", "hidden_size": "64"}`: "hidden_size is 64",
	} {
		v, _ := pyjson.Decode([]byte(cfg))
		if _, err := FromConfig(v.(map[string]any)); err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("%s: %v, want %q", cfg, err, want)
		}
	}
}

func mustTensors(t *testing.T, a Arch) []Tensor {
	t.Helper()
	ts, err := Tensors(a)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestSkeleton: the config as given, headers as Generate writes them, and
// data that takes no disk.
func TestSkeleton(t *testing.T) {
	a := Llama3_8B(2, 128256)
	a.Float = tensor.F16
	dir := filepath.Join(t.TempDir(), "skel")
	config := []byte(`{"model_type": "llama"}`) // as it is: no newline, one line
	if err := Skeleton(dir, config, a, Options{ShardBytes: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.json")); !bytes.Equal(b, config) {
		t.Errorf("config.json is %q, want the bytes given", b)
	}
	src := open(t, dir)
	want := mustTensors(t, a)
	if len(src.Tensors) != len(want) || src.IndexFile == "" {
		t.Fatalf("%d tensors (index %q), want %d in shards", len(src.Tensors), src.IndexFile, len(want))
	}
	var size, blocks int64
	for _, f := range src.Checkpoint.Files {
		st, err := os.Stat(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		size += st.Size()
		blocks += diskBytes(st)
	}
	for _, tt := range src.Tensors {
		if tt.DType != tensor.F16 {
			t.Errorf("%s is %s, want F16", tt.Name, tt.DType)
		}
	}
	if size < 1<<30 || blocks > size/100 {
		t.Errorf("%d bytes on %d of disk: want a large sparse checkpoint", size, blocks)
	}
	if err := Generate(t.TempDir(), a, 1, Options{}); err == nil {
		t.Error("Generate draws F16 data")
	}
}
