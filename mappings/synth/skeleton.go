package synth

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/engine/format/hf"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// families maps a config's model_type to synth's family.
var families = map[string]Family{"gpt_oss": GPTOSS, "llama": Llama, "mistral": Mistral, "mixtral": Mixtral, "qwen2": Qwen2,
	"qwen3": Qwen3, "qwen3_moe": Qwen3MoE, "phi3": Phi3}

// FromConfig reads the Arch of a published config.json of one of synth's
// families (by its model_type): sizes, biases, tying, the expert layout and
// the weights' dtype, with transformers' defaults for absent keys. It is
// what a Skeleton of the real model needs.
func FromConfig(cfg map[string]any) (Arch, error) {
	mt, _ := cfg["model_type"].(string)
	fam, ok := families[mt]
	if !ok {
		return Arch{}, fmt.Errorf("synth: model_type %q is none of synth's families", mt)
	}
	var errs []error
	num := func(key string, def int) int {
		switch v := cfg[key].(type) {
		case int64:
			return int(v)
		case nil:
			if def >= 0 {
				return def
			}
		}
		errs = append(errs, fmt.Errorf("%s is %v", key, cfg[key]))
		return 0
	}
	flag := func(key string) bool { b, _ := cfg[key].(bool); return b }
	a := Arch{Family: fam, Hidden: num("hidden_size", -1), Intermediate: num("intermediate_size", -1),
		Layers: num("num_hidden_layers", -1), Heads: num("num_attention_heads", -1), Vocab: num("vocab_size", -1),
		TieEmbeddings: flag("tie_word_embeddings")}
	switch { // the others' biases are the family's
	case a.llamaLike():
		a.AttentionBias, a.MLPBias = flag("attention_bias"), flag("mlp_bias")
	case a.qwen3Like():
		a.AttentionBias = flag("attention_bias")
	}
	a.KVHeads = num("num_key_value_heads", a.Heads)
	if a.Heads > 0 {
		a.HeadDim = num("head_dim", a.Hidden/a.Heads)
	}
	switch {
	case fam == Qwen3MoE: // intermediate_size is the dense layers', which Qwen3-MoE's synth has none of
		a.Intermediate = num("moe_intermediate_size", -1)
		a.Experts, a.ExpertsPerTok = num("num_experts", -1), num("num_experts_per_tok", -1)
	case a.moe():
		a.Experts, a.ExpertsPerTok = num("num_local_experts", -1), num("num_experts_per_tok", -1)
	}
	if q, ok := cfg["quantization_config"].(map[string]any); ok && q["quant_method"] == "mxfp4" {
		a.MXFP4 = true
	}
	dt, ok := cfg["dtype"].(string)
	if !ok {
		dt, _ = cfg["torch_dtype"].(string)
	}
	switch dt {
	case "float32":
		a.Float = tensor.F32
	case "float16":
		a.Float = tensor.F16
	}
	if len(errs) > 0 {
		return Arch{}, fmt.Errorf("synth: %s config: %v", mt, errs)
	}
	return a, a.Validate()
}

// Skeleton writes a header-exact checkpoint of a beside a real config:
// config.json is the bytes given, as they are; a's tensors are laid out in
// save_pretrained's shards (with the index when there are several), each
// file's header written and its data left a hole (the file is truncated to
// its size: a sparse file, which takes no disk for the data where the file
// system has holes). Planning reads only headers, so it sees what it would
// on the real checkpoint; a conversion reads zeros.
func Skeleton(dir string, config []byte, a Arch, opts Options) error {
	ts, err := Tensors(a)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	entries := make([]safetensors.Entry, len(ts))
	for i, t := range ts {
		entries[i] = t.Entry
	}
	// The config is written as given below; WriteMeta needs one to write
	// the index.
	out := &format.Output{Config: map[string]any{}, Tensors: entries, ShardBytes: opts.ShardBytes, Naming: opts.Naming}
	side := hf.Side{}
	shards, err := side.Layout(out)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	for _, s := range shards {
		if err := writeHollow(filepath.Join(dir, s.File), s.Entries); err != nil {
			return err
		}
	}
	if err := side.WriteMeta(dir, out, shards); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, hf.ConfigFile), config, 0o644); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// writeHollow writes a safetensors file's header and leaves its data a hole.
func writeHollow(path string, entries []safetensors.Entry) error {
	l, err := safetensors.NewLayout(entries, nil)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	head := make([]byte, 8, l.DataStart)
	binary.LittleEndian.PutUint64(head, uint64(len(l.Header)))
	head = append(head, l.Header...)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	_, err = f.Write(head)
	if err == nil {
		err = f.Truncate(l.Size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("synth: %s: %w", path, err)
	}
	return nil
}
