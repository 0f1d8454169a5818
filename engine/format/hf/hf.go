// Package hf is the Hugging Face checkpoint side ("hf" in .map files): a
// directory with config.json and model.safetensors, or shards
// model-0000K-of-0000N.safetensors with model.safetensors.index.json, as
// transformers' save_pretrained writes it.
//
// Reading takes config.json exactly as written (integers stay int64, floats
// float64; duplicate keys are an error) and the tensors under their file keys.
// Every other regular file (tokenizer, generation config, chat template,
// README), or link to one inside the directory, is a side file, copied
// through; subdirectories, links leading out and anything that is not a
// regular file are reported as skipped. Every file is read as
// safetensors.OpenInput says; a *.safetensors file the index does not list
// is left alone and reported (Source.Unlisted).
//
// Writing reproduces save_pretrained: config.json as json.dumps(config,
// indent=2, sort_keys=True) plus a newline, shards of at most 5 GB
// (5,000,000,000 bytes) named 1-based, and the index (indent 2, sorted,
// trailing newline, metadata.total_size) when there is more than one shard.
// Output.Naming "hf-zero-based" writes the layout GPT-OSS publishes instead:
// 0-based shard names and a one-line index (json.dumps(index) with no indent
// and no sorting, tensors in plan order). Every file gets the __metadata__
// {"format": "pt"} that transformers writes, unless Output.Original (what an
// import recorded) says what the input's files had; Original also brings
// back the exact text of a config.json or an index that was not in this
// form (see original.go). Open records such texts (Source.Texts).
//
// An HF config has no room for mapper's own metadata, so an Output with
// Carried set is refused.
package hf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// Name is the side's name in .map files.
const Name = "hf"

// ConfigFile is the name of the model config.
const ConfigFile = "config.json"

// DefaultShardBytes is save_pretrained's default max_shard_size, "5GB".
const DefaultShardBytes int64 = 5_000_000_000

func init() { format.Register(Side{}) }

// Side implements format.Format for Hugging Face checkpoints.
type Side struct{}

// Name returns "hf".
func (Side) Name() string { return Name }

// Detect reports whether dir has a config.json.
func (Side) Detect(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ConfigFile))
	return err == nil
}

// ConfigDoc names dir's config.json.
func (Side) ConfigDoc(dir string) string { return filepath.Join(dir, ConfigFile) }

// IdentityKeys implements format.Identified: transformers picks a model's
// classes by architectures and model_type.
func (Side) IdentityKeys() []string { return []string{"architectures", "model_type"} }

// owned reports whether the hf side reads (and writes) the file itself.
func owned(name string) bool {
	return name == ConfigFile || name == safetensors.IndexFile || strings.HasSuffix(name, ".safetensors")
}

// ReadConfig reads and parses a config.json, which must hold an object. It
// is read as an input file of its directory (safetensors.ReadInput): a link
// may not lead out of it, and the file must be a regular one of at most
// safetensors.MaxDocBytes.
func ReadConfig(path string) (map[string]any, error) {
	cfg, _, err := readConfig(path)
	return cfg, err
}

// readConfig is ReadConfig, also returning the file's bytes.
func readConfig(path string) (map[string]any, []byte, error) {
	data, err := safetensors.ReadInput(filepath.Dir(path), filepath.Base(path), safetensors.MaxDocBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("hf: %w", err)
	}
	v, err := pyjson.Decode(data)
	if err != nil {
		return nil, nil, fmt.Errorf("hf: %s: %w", path, err)
	}
	cfg, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("hf: %s: the config is a %s, want a JSON object", path, kind(v))
	}
	return cfg, data, nil
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "list"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64, float64:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// Open reads config.json and the tensor headers of dir.
func (Side) Open(dir string) (*format.Source, error) {
	cfg, raw, err := readConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	side, skipped, err := format.ListDir(dir, owned)
	if err != nil {
		return nil, fmt.Errorf("hf: %w", err)
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("hf: %w", err)
	}
	src := &format.Source{
		Format:     Name,
		Dir:        dir,
		Config:     cfg,
		SideFiles:  side,
		Skipped:    skipped,
		Naming:     fileNaming(ck),
		Unlisted:   ck.Unlisted,
		Checkpoint: ck,
	}
	if ck.Index != nil {
		src.IndexFile = safetensors.IndexFile
	}
	src.Texts = texts(cfg, raw, ck.Index)
	for _, name := range ck.Names() {
		f, info, _ := ck.Lookup(name)
		src.Tensors = append(src.Tensors, format.Tensor{
			Name: name, DType: info.DType, Shape: info.Shape, File: f, Info: info,
		})
	}
	return src, nil
}

// fileNaming tells the 0-based names GPT-OSS publishes from
// save_pretrained's default.
func fileNaming(ck *safetensors.Checkpoint) string {
	for _, f := range ck.Files {
		if strings.HasPrefix(filepath.Base(f.Path), "model-00000-of-") {
			return safetensors.NamingHFZeroBased.String()
		}
	}
	return ""
}

var errCarried = errors.New("hf: hf configs cannot carry mapper metadata")

// Layout splits out.Tensors, in order, into shards as save_pretrained does
// (or into the files out.Files names), gives each its __metadata__, and
// adds to out.Notes what out.Original decided (see original.go).
func (Side) Layout(out *format.Output) ([]format.Shard, error) {
	if out.Carried != nil {
		return nil, errCarried
	}
	naming, err := naming(out)
	if err != nil {
		return nil, err
	}
	var shards []format.Shard
	if out.Files != nil {
		shards, err = format.ShardsByFile(out.Tensors, out.Files, func(name string) string { return name })
		if err != nil {
			return nil, err
		}
	} else {
		limit := out.ShardBytes
		if limit <= 0 {
			limit = DefaultShardBytes
		}
		plan, err := safetensors.PlanShards(out.Tensors, limit, naming)
		if err != nil {
			return nil, fmt.Errorf("hf: %w", err)
		}
		shards = format.ShardsOf(plan, func(name string) string { return name })
	}
	notes := fileMetadata(out, shards)
	if out.Config != nil {
		_, note, err := configText(out)
		if err != nil {
			return nil, fmt.Errorf("hf: %s: %w", ConfigFile, err)
		}
		notes = append(notes, note)
	}
	_, note, err := indexText(out, shards)
	if err != nil {
		return nil, err
	}
	for _, n := range append(notes, note) {
		if n != "" {
			out.Notes = append(out.Notes, n)
		}
	}
	return shards, nil
}

func naming(out *format.Output) (safetensors.Naming, error) {
	n, err := format.ParseNaming(out.Naming, safetensors.NamingHF)
	if err != nil {
		return n, fmt.Errorf("hf: %w", err)
	}
	if n == safetensors.NamingFastLLM {
		return n, fmt.Errorf("hf: file naming %q is not a Hugging Face one", out.Naming)
	}
	return n, nil
}

// RenderConfig renders config as JSON, as Python writes it.
func (Side) RenderConfig(config map[string]any) ([]byte, error) {
	return pyjson.Encode(config, 2, true)
}

// ShowConfig renders config.json as WriteMeta writes it.
func (Side) ShowConfig(out *format.Output) (string, []byte, error) {
	cfg, _, err := configText(out)
	if err != nil {
		return "", nil, fmt.Errorf("hf: %s: %w", ConfigFile, err)
	}
	return ConfigFile, cfg, nil
}

// WriteMeta writes config.json and, for more than one shard (or one not
// named model.safetensors), the index; each as out.Original restores it.
func (Side) WriteMeta(dir string, out *format.Output, shards []format.Shard) error {
	if out.Carried != nil {
		return errCarried
	}
	if out.Config == nil {
		return fmt.Errorf("hf: no config to write")
	}
	if _, err := naming(out); err != nil {
		return err
	}
	cfg, _, err := configText(out)
	if err != nil {
		return fmt.Errorf("hf: %s: %w", ConfigFile, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), cfg, 0o644); err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	index, _, err := indexText(out, shards)
	if err != nil {
		return err
	}
	if index == nil {
		// A leftover index would make readers look for shards that are not there.
		if err := os.Remove(filepath.Join(dir, safetensors.IndexFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hf: %w", err)
		}
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, safetensors.IndexFile), index, 0o644); err != nil {
		return fmt.Errorf("hf: %w", err)
	}
	return nil
}

// compactIndex is the one-line index GPT-OSS publishes:
// {"metadata": {"total_size": N}, "weight_map": {...}}, tensors in shard and
// plan order, no trailing newline.
func compactIndex(shards []format.Shard) ([]byte, error) {
	var total int64
	wm := pyjson.Object{}
	for _, s := range shards {
		total += s.Bytes
		for _, e := range s.Entries {
			wm = append(wm, pyjson.Member{Key: e.Name, Value: s.File})
		}
	}
	doc := pyjson.Object{
		{Key: "metadata", Value: pyjson.Object{{Key: "total_size", Value: total}}},
		{Key: "weight_map", Value: wm},
	}
	b, err := pyjson.Encode(doc, -1, false)
	if err != nil {
		return nil, fmt.Errorf("hf: %s: %w", safetensors.IndexFile, err)
	}
	return b, nil
}
