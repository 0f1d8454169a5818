package safetensors

import (
	"fmt"
	"math"
)

// Naming is a convention for naming the files of a sharded checkpoint.
type Naming int

const (
	// NamingHF is save_pretrained's: model-00001-of-00003.safetensors, 1-based,
	// or model.safetensors when there is a single file.
	NamingHF Naming = iota
	// NamingHFZeroBased is the 0-based variant GPT-OSS publishes:
	// model-00000-of-00002.safetensors ... model-00002-of-00002.safetensors
	// (the last number is the count minus one), or model.safetensors alone.
	NamingHFZeroBased
	// NamingFastLLM is Fast-LLM's: model_0.safetensors, model_1.safetensors, ...
	// even for a single file.
	NamingFastLLM
)

func (n Naming) String() string {
	switch n {
	case NamingHF:
		return "hf"
	case NamingHFZeroBased:
		return "hf-zero-based"
	case NamingFastLLM:
		return "fast-llm"
	}
	return fmt.Sprintf("Naming(%d)", int(n))
}

// FileName is the name of shard i (0-based) of count shards.
func (n Naming) FileName(i, count int) string {
	switch n {
	case NamingFastLLM:
		return fmt.Sprintf("model_%d.safetensors", i)
	case NamingHFZeroBased:
		if count == 1 {
			return "model.safetensors"
		}
		return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, count-1)
	default:
		if count == 1 {
			return "model.safetensors"
		}
		return fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, count)
	}
}

// Shard is one planned file of a sharded checkpoint.
type Shard struct {
	File    string  // file name, relative to the checkpoint directory
	Entries []Entry // in the order given to PlanShards
	Bytes   int64   // sum of the entries' data sizes
}

// PlanShards splits entries, in the given order, into files of at most
// maxBytes of tensor data each (maxBytes <= 0: no limit). Like
// save_pretrained it is greedy: a new file starts when the next tensor would
// pass the limit, and a tensor larger than the limit gets a file of its own.
// (save_pretrained emits such a tensor's file ahead of the one being filled;
// here files keep the order of the entries.) No entries give one empty file.
func PlanShards(entries []Entry, maxBytes int64, naming Naming) ([]Shard, error) {
	var shards []Shard
	var cur Shard
	var total int64
	for _, e := range entries {
		size, err := e.Size()
		if err != nil {
			return nil, fmt.Errorf("safetensors: shard plan: tensor %q: %w", e.Name, err)
		}
		if size > math.MaxInt64-total {
			// Every shard's size, and the index's total_size, is a sum of these.
			return nil, fmt.Errorf("safetensors: shard plan: tensor %q: total size %d + %d overflows a 64-bit integer", e.Name, total, size)
		}
		total += size
		if maxBytes > 0 && len(cur.Entries) > 0 && cur.Bytes+size > maxBytes {
			shards = append(shards, cur)
			cur = Shard{}
		}
		cur.Entries = append(cur.Entries, e)
		cur.Bytes += size
		if maxBytes > 0 && size > maxBytes { // alone it stays
			shards = append(shards, cur)
			cur = Shard{}
		}
	}
	if len(cur.Entries) > 0 || len(shards) == 0 {
		shards = append(shards, cur)
	}
	for i := range shards {
		shards[i].File = naming.FileName(i, len(shards))
	}
	return shards, nil
}
