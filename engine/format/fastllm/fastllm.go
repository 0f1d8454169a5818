// Package fastllm is the Fast-LLM checkpoint side ("fast_llm" in .map
// files): a directory with metadata.yaml and model_0.safetensors,
// model_1.safetensors, ..., whose tensor keys are "<parameter>/weights".
//
// metadata.yaml holds fast_llm_version, model: gpt, format: fast_llm,
// config: {type: gpt, base_model: ...}, shards: [weights] and metadata:
// {state_index: {key: file}}. mapper adds metadata.mapper: what an import
// recorded for the way back (format.Carried). The config the .map rules
// address is config.base_model; the logical tensor names drop the
// "/weights" suffix. The version written is the mapping's target (Targets).
//
// Reading is strict: the file must be a mapping with only the keys
// Fast-LLM's checkpoint metadata has, format fast_llm, model and config.type
// gpt when present, a config.base_model mapping and "weights" among the
// shards; every state_index entry must be in the file it names and every
// tensor of those files in the state_index; file names are checked by
// safetensors.OpenFiles, so none can reach outside the directory. What
// Fast-LLM's trainer saves beside the model is read past and named in the
// source's notes: the tensors of the other shards (optimizer state, never
// read), the other config sections (distributed, multi_stage) and the
// training metadata. Numbers keep their kind: an integer is an int64, a
// float a float64, so 32.0 stays a float.
//
// Every model_N.safetensors gets the __metadata__ Fast-LLM's saver writes
// (FileMetadata), and an empty file "ok" marks the complete save, as
// Fast-LLM's convert and trainer do; Open treats "ok" as the side's own.
//
// Writing uses yaml.v3 with sorted keys and floats written as PyYAML writes
// them ("32.0", "1.0e-05"), so Fast-LLM (PyYAML) and mapper read back the
// same values. Files are split as Fast-LLM does, by parameter count (2^32
// per file by default: a file is closed once it reaches the count), or by
// bytes when Output.ShardBytes is set.
package fastllm

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/quote"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// Name is the side's name in .map files.
const Name = "fast_llm"

// MetadataFile is the name of the checkpoint's metadata.
const MetadataFile = "metadata.yaml"

// The targets: a .map header names one (`right fast_llm target "0.3.0"`),
// and its name is the fast_llm_version a conversion to Fast-LLM writes.
// Fast-LLM's loader refuses a checkpoint whose version is newer than its
// own (or older than 0.3.0), so the version decides which Fast-LLM can load
// the output; the config the mapping writes decides the rest.
const (
	// Main is Fast-LLM's main branch (the Llama family; no GPT-OSS).
	Main = "0.4.0"
	// PR374 is refs/pull/374/head, the only Fast-LLM that loads GPT-OSS.
	PR374 = "0.3.0"
)

// Targets implements format.Targeted.
func (Side) Targets() []format.Target {
	return []format.Target{
		{Name: Main, Default: true, About: "Fast-LLM main at 7d61a1ba2047 (2026-07-20)"},
		{Name: PR374, About: "Fast-LLM refs/pull/374/head at 93dbfc8b9a83 (2025-10-24), the Fast-LLM with GPT-OSS"},
	}
}

// OKFile is the empty file that marks a complete Fast-LLM save (Fast-LLM's
// convert and trainer write it last).
const OKFile = "ok"

// WeightsShard is the shard holding the model weights; a tensor key is
// "<parameter>/" + WeightsShard.
const WeightsShard = "weights"

// DefaultParametersPerFile is Fast-LLM's default parameters_per_file.
const DefaultParametersPerFile int64 = 1 << 32

func init() { format.Register(Side{}) }

// Side implements format.Format for Fast-LLM checkpoints.
type Side struct{}

// Name returns "fast_llm".
func (Side) Name() string { return Name }

// Detect reports whether dir has a metadata.yaml.
func (Side) Detect(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, MetadataFile))
	return err == nil
}

// ConfigDoc names the part of dir's metadata.yaml the config rules address.
func (Side) ConfigDoc(dir string) string {
	return filepath.Join(dir, MetadataFile) + " config.base_model"
}

var modelFile = regexp.MustCompile(`^model_[0-9]+\.safetensors$`)

// Metadata is a parsed metadata.yaml.
type Metadata struct {
	Version    string
	Config     map[string]any    // config.base_model
	Shards     []string          // the state shards, "weights" among them
	StateIndex map[string]string // tensor key -> file
	Carried    *format.Carried   // metadata.mapper, nil when absent
	// Dropped lists, sorted, the sections beside config.base_model and the
	// state index that a conversion leaves out (config.distributed,
	// metadata.optimizer, ...): Fast-LLM's runtime and training state, not
	// part of the model.
	Dropped []string
}

// The keys CheckpointMetadata has: Fast-LLM refuses any other.
var topKeys = []string{"config", "fast_llm_version", "format", "metadata", "model", "shards"}

// ParseMetadata parses and checks the content of a metadata.yaml.
func ParseMetadata(data []byte) (*Metadata, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 {
		return nil, fmt.Errorf("empty file")
	}
	v, err := fromYAML(&doc)
	if err != nil {
		return nil, err
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not a mapping")
	}
	md := &Metadata{}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if !slices.Contains(topKeys, k) {
			return nil, fmt.Errorf("unknown key %q at the top level (Fast-LLM's checkpoint metadata has %s)", k, strings.Join(topKeys, ", "))
		}
	}
	if f, _ := top["format"].(string); f != "fast_llm" {
		return nil, fmt.Errorf("format is %s, want fast_llm", describe(top["format"]))
	}
	// A checkpoint of another model type (multimodal, ...) has another
	// base_model: the gpt mappings must not read it.
	if m, present := top["model"]; present && m != "gpt" {
		return nil, fmt.Errorf("model is %s; mapper reads gpt checkpoints", describe(m))
	}
	if v, present := top["fast_llm_version"]; present {
		var ok bool
		if md.Version, ok = v.(string); !ok {
			return nil, fmt.Errorf("fast_llm_version is %s, want a version string", describe(v))
		}
	}
	cfg, _ := top["config"].(map[string]any)
	base, ok := cfg["base_model"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("config.base_model is %s, want a mapping", describe(cfg["base_model"]))
	}
	if t, present := cfg["type"]; present && t != "gpt" {
		return nil, fmt.Errorf("config.type is %s; mapper reads gpt checkpoints", describe(t))
	}
	md.Config = base
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		if k != "base_model" && k != "type" {
			md.Dropped = append(md.Dropped, "config."+k)
		}
	}
	shards, ok := top["shards"].([]any)
	if !ok {
		return nil, fmt.Errorf("shards is %s, want a list", describe(top["shards"]))
	}
	for i, s := range shards {
		name, ok := s.(string)
		if !ok {
			return nil, fmt.Errorf("shards[%d] is %s, want a string", i, describe(s))
		}
		md.Shards = append(md.Shards, name)
	}
	if !slices.Contains(md.Shards, WeightsShard) {
		return nil, fmt.Errorf("shards %q do not contain %q", md.Shards, WeightsShard)
	}
	meta, ok := top["metadata"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("metadata is %s, want a mapping", describe(top["metadata"]))
	}
	si, ok := meta["state_index"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("metadata.state_index is %s, want a mapping", describe(meta["state_index"]))
	}
	md.StateIndex = make(map[string]string, len(si))
	for _, k := range slices.Sorted(maps.Keys(si)) {
		file, ok := si[k].(string)
		if !ok {
			return nil, fmt.Errorf("metadata.state_index[%q] is %s, want a file name", k, describe(si[k]))
		}
		md.StateIndex[k] = file
	}
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		if k != "state_index" && k != "mapper" {
			md.Dropped = append(md.Dropped, "metadata."+k)
		}
	}
	slices.Sort(md.Dropped)
	if m, present := meta["mapper"]; present && m != nil {
		c, err := parseCarried(m)
		if err != nil {
			return nil, fmt.Errorf("metadata.mapper: %w", err)
		}
		md.Carried = c
	}
	return md, nil
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "missing or null"
	case string:
		return strconv.Quote(v)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%v", v)
}

func parseCarried(v any) (*format.Carried, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is %s, want a mapping", describe(v))
	}
	c := &format.Carried{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		val := m[k]
		var ok bool
		var err error
		switch k {
		case "mapping":
			c.Mapping, ok = val.(string)
		case "mapping_sha256":
			c.MappingHash, ok = val.(string)
		case "from":
			c.From, ok = val.(string)
		case "variant":
			c.Variant, ok = val.(string)
		case "kept":
			c.Kept, ok = val.(map[string]any)
		case "extra":
			c.Extra, ok = val.(map[string]any)
		case "branches":
			var bm map[string]any
			if bm, ok = val.(map[string]any); ok {
				c.Branches = make(map[string]bool, len(bm))
				for cond, b := range bm {
					held, isBool := b.(bool)
					if !isBool {
						return nil, fmt.Errorf("branches: %q is %s, want true or false", cond, describe(b))
					}
					c.Branches[cond] = held
				}
			}
		case "naming":
			c.Naming, ok = val.(string)
		case "files":
			var fm map[string]any
			if fm, ok = val.(map[string]any); ok {
				c.Files = make(map[string]string, len(fm))
				for t, f := range fm {
					s, isStr := f.(string)
					if !isStr {
						return nil, fmt.Errorf("files: %s is %s, want a file name", quote.Name(t), describe(f))
					}
					c.Files[t] = s
				}
			}
		case "file_metadata":
			var fm map[string]any
			if fm, ok = val.(map[string]any); ok {
				c.FileMetadata = make(map[string]map[string]string, len(fm))
				for f, md := range fm {
					m, err := stringMap(md, "file_metadata."+f, true)
					if err != nil {
						return nil, err
					}
					c.FileMetadata[f] = m
				}
			}
		case "texts":
			tm, err := stringMap(val, "texts", false)
			if err != nil {
				return nil, err
			}
			c.Texts, ok = tm, true
		case "dtype":
			c.DType, ok = val.(string)
		case "dtypes":
			dm, err := stringMap(val, "dtypes", false)
			if err != nil {
				return nil, err
			}
			c.DTypes, ok = dm, true
		case "absent":
			c.Absent, ok, err = stringList(val, k)
		case "for_default":
			c.ForDefault, ok, err = stringList(val, k)
		default:
			return nil, fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s is %s", k, describe(val))
		}
	}
	return c, nil
}

// stringList reads a list of strings; ok is false when v is not a list.
func stringList(v any, what string) (out []string, ok bool, err error) {
	list, ok := v.([]any)
	for _, e := range list {
		s, isStr := e.(string)
		if !isStr {
			return nil, true, fmt.Errorf("%s holds %s, want strings", what, describe(e))
		}
		out = append(out, s)
	}
	return out, ok, nil
}

// stringMap reads a mapping of strings to strings; with nullable, null
// reads as a nil map (a file without __metadata__).
func stringMap(v any, what string, nullable bool) (map[string]string, error) {
	if v == nil && nullable {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is %s, want a mapping of strings", quote.Name(what), describe(v))
	}
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		e := m[k]
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s is %s, want a string", quote.Name(what+"."+k), describe(e))
		}
		out[k] = s
	}
	return out, nil
}

func carriedValue(c *format.Carried) map[string]any {
	m := map[string]any{"mapping": c.Mapping, "from": c.From}
	if c.MappingHash != "" {
		m["mapping_sha256"] = c.MappingHash
	}
	if c.Variant != "" {
		m["variant"] = c.Variant
	}
	if len(c.Kept) > 0 {
		m["kept"] = c.Kept
	}
	if len(c.Extra) > 0 {
		m["extra"] = c.Extra
	}
	if len(c.Branches) > 0 {
		m["branches"] = anyValues(c.Branches)
	}
	if len(c.Absent) > 0 {
		m["absent"] = anyList(c.Absent)
	}
	if len(c.ForDefault) > 0 {
		m["for_default"] = anyList(c.ForDefault)
	}
	if len(c.Files) > 0 {
		m["files"] = anyValues(c.Files)
	}
	if c.Naming != "" {
		m["naming"] = c.Naming
	}
	if c.DType != "" {
		m["dtype"] = c.DType
	}
	if len(c.DTypes) > 0 {
		m["dtypes"] = anyValues(c.DTypes)
	}
	if len(c.FileMetadata) > 0 {
		fm := make(map[string]any, len(c.FileMetadata))
		for f, md := range c.FileMetadata {
			if md == nil {
				fm[f] = nil
				continue
			}
			fm[f] = anyValues(md)
		}
		m["file_metadata"] = fm
	}
	if len(c.Texts) > 0 {
		m["texts"] = anyValues(c.Texts)
	}
	return m
}

// anyValues is m as the YAML encoder takes documents.
func anyValues[V any](m map[string]V) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// EncodeMetadata renders metadata.yaml for a checkpoint written for
// version (a target's name; "": the default target) with the given config
// (config.base_model), state index (nil: left out) and carried data (nil:
// none). config.type is gpt, as Fast-LLM writes it; config.distributed,
// which Fast-LLM fills in from the machine it runs on, is left out.
func EncodeMetadata(version string, config map[string]any, stateIndex map[string]string, carried *format.Carried) ([]byte, error) {
	if version == "" {
		version = Main
	}
	meta := map[string]any{}
	if stateIndex != nil {
		si := make(map[string]any, len(stateIndex))
		for k, f := range stateIndex {
			si[k] = f
		}
		meta["state_index"] = si
	}
	if carried != nil {
		meta["mapper"] = carriedValue(carried)
	}
	if config == nil {
		config = map[string]any{}
	}
	doc := map[string]any{
		"fast_llm_version": version,
		"model":            "gpt",
		"format":           "fast_llm",
		"config":           map[string]any{"base_model": config, "type": "gpt"},
		"shards":           []any{WeightsShard},
		"metadata":         meta,
	}
	return encodeYAML(doc, false)
}

// encodeYAML renders v as a YAML document, indented by 2; compact puts a
// sequence's "- " at its key's indentation, as PyYAML's safe_dump does.
func encodeYAML(v any, compact bool) ([]byte, error) {
	n, err := toYAML(v, "")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if compact {
		enc.CompactSeqIndent()
	}
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// FileMetadata is the safetensors __metadata__ Fast-LLM's saver writes in
// every model_N.safetensors of a checkpoint written for version (a
// target's name; "": the default) with the given config
// (config.base_model): the top-level keys of its metadata.yaml, a string
// as itself and anything else as a YAML dump (Fast-LLM's
// export_safetensors_metadata), with "metadata" as it stands when the
// saver starts, before the state index is added: empty after a conversion.
// mapper's own record (metadata.mapper) stays in metadata.yaml: it is
// written once, not in every file. Fast-LLM's loader does not read this.
func FileMetadata(version string, config map[string]any) (map[string]string, error) {
	if version == "" {
		version = Main
	}
	md := map[string]string{"fast_llm_version": version, "model": "gpt", "format": "fast_llm"}
	for k, v := range map[string]any{
		"config":   map[string]any{"base_model": config, "type": "gpt"},
		"shards":   []any{WeightsShard},
		"metadata": map[string]any{},
	} {
		b, err := encodeYAML(v, true)
		if err != nil {
			return nil, fmt.Errorf("__metadata__ %s: %w", k, err)
		}
		md[k] = string(b)
	}
	return md, nil
}

// Open reads metadata.yaml and the tensor headers of dir.
func (Side) Open(dir string) (*format.Source, error) {
	path := filepath.Join(dir, MetadataFile)
	data, err := safetensors.ReadInput(dir, MetadataFile, safetensors.MaxDocBytes)
	if err != nil {
		return nil, fmt.Errorf("fast_llm: %w", err)
	}
	md, err := ParseMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("fast_llm: %s: %w", path, err)
	}
	// The logical names first: a bad key is reported before any file opens.
	// Keys of the other shards (optimizer state) are checked against their
	// files like the weights, and never read.
	logical := make(map[string]string, len(md.StateIndex))
	skipped := map[string]int{} // shard -> tensors
	var bad []error
	for _, key := range slices.Sorted(maps.Keys(md.StateIndex)) {
		name, shard, err := logicalName(key, md.Shards)
		switch {
		case err != nil:
			bad = append(bad, err)
		case shard != WeightsShard:
			skipped[shard]++
		default:
			logical[key] = name
		}
	}
	if len(bad) > 0 {
		const shown = 5
		if len(bad) > shown {
			bad = append(bad[:shown], fmt.Errorf("... and %d more such keys", len(bad)-shown))
		}
		return nil, fmt.Errorf("fast_llm: %s: %w", path, errors.Join(bad...))
	}
	files := stateFiles(md.StateIndex)
	ck, err := safetensors.OpenFiles(dir, files)
	if err != nil {
		return nil, fmt.Errorf("fast_llm: %s: %w", path, err)
	}
	fail := func(err error) (*format.Source, error) {
		ck.Close()
		return nil, err
	}
	// Every tensor of the files is in the index, in the file it names ...
	for i, f := range ck.Files {
		for _, t := range f.Tensors {
			listed, ok := md.StateIndex[t.Name]
			if !ok {
				return fail(fmt.Errorf("fast_llm: %s: tensor %q is not in %s", quote.Name(f.Path), t.Name, quote.Name(path)))
			}
			if listed != files[i] {
				return fail(fmt.Errorf("fast_llm: %s: tensor %q is in %s, but %s says %s", quote.Name(f.Path), t.Name, quote.Name(files[i]), quote.Name(path), quote.Name(listed)))
			}
		}
	}
	// ... and every index entry is in its file.
	keys := make([]string, 0, len(md.StateIndex))
	for k := range md.StateIndex {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, _, ok := ck.Lookup(k); !ok {
			return fail(fmt.Errorf("fast_llm: %s: tensor %q is listed in %s but not in the file", quote.Name(filepath.Join(dir, md.StateIndex[k])), k, quote.Name(path)))
		}
	}
	ownedFiles := make(map[string]bool, len(files))
	for _, f := range files {
		ownedFiles[f] = true
	}
	listed, skippedEntries, err := format.ListDir(dir, func(name string) bool {
		return name == MetadataFile || name == OKFile || ownedFiles[name]
	})
	if err != nil {
		return fail(fmt.Errorf("fast_llm: %w", err))
	}
	// A model_N.safetensors the state index does not name is stale state,
	// not a side file to copy: it is reported as unlisted.
	var side, unlisted []string
	for _, name := range listed {
		if modelFile.MatchString(name) {
			unlisted = append(unlisted, name)
		} else {
			side = append(side, name)
		}
	}
	src := &format.Source{
		Format:     Name,
		Dir:        dir,
		Config:     md.Config,
		Carried:    md.Carried,
		SideFiles:  side,
		Skipped:    skippedEntries,
		Unlisted:   unlisted,
		IndexFile:  MetadataFile,
		Version:    md.Version,
		Checkpoint: ck,
	}
	if len(skipped) > 0 {
		var parts []string
		for _, sh := range md.Shards {
			if n := skipped[sh]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s (%d tensors)", quote.Name(sh), n))
				delete(skipped, sh) // a shard listed twice is named once
			}
		}
		src.Notes = append(src.Notes, fmt.Sprintf("%s: %s %s %s optimizer state: not read, and not carried over (only the %s shard is the model)",
			quote.Name(path), plural(len(parts), "shard", "shards"), strings.Join(parts, ", "), plural(len(parts), "is", "are"), WeightsShard))
	}
	if len(md.Dropped) > 0 {
		src.Notes = append(src.Notes, fmt.Sprintf("%s: %s %s Fast-LLM's runtime and training state, not part of the model: not carried over",
			quote.Name(path), strings.Join(quote.Names(md.Dropped), ", "), plural(len(md.Dropped), "is", "are")))
	}
	for _, k := range keys {
		if _, ok := logical[k]; !ok {
			continue // another shard's
		}
		f, info, _ := ck.Lookup(k)
		src.Tensors = append(src.Tensors, format.Tensor{
			Name: logical[k], DType: info.DType, Shape: info.Shape, File: f, Info: info,
		})
	}
	slices.SortFunc(src.Tensors, func(a, b format.Tensor) int { return strings.Compare(a.Name, b.Name) })
	return src, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// logicalName splits a tensor key "<parameter>/<shard>" into the
// parameter's name and a shard that metadata.yaml lists.
func logicalName(key string, shards []string) (name, shard string, err error) {
	i := strings.LastIndexByte(key, '/')
	if i > 0 && slices.Contains(shards, key[i+1:]) {
		return key[:i], key[i+1:], nil
	}
	return "", "", fmt.Errorf("tensor key %q is not <parameter>/<shard> for a shard of %v", key, shards)
}

// stateFiles lists the files of a state index once each, in the order of
// the numbers in their names (model_2 before model_10).
func stateFiles(index map[string]string) []string {
	seen := map[string]bool{}
	var files []string
	for _, f := range index {
		if !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	slices.SortFunc(files, naturalCompare)
	return files
}

var digits = regexp.MustCompile(`[0-9]+|[^0-9]+`)

// naturalCompare orders strings with runs of digits compared as numbers.
func naturalCompare(a, b string) int {
	pa, pb := digits.FindAllString(a, -1), digits.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, y := pa[i], pb[i]
		if x == y {
			continue
		}
		if x[0] >= '0' && x[0] <= '9' && y[0] >= '0' && y[0] <= '9' {
			tx, ty := strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if c := len(tx) - len(ty); c != 0 {
				return c
			}
			if c := strings.Compare(tx, ty); c != 0 {
				return c
			}
		}
		return strings.Compare(x, y)
	}
	if c := len(pa) - len(pb); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// Layout splits out.Tensors, in order, into model_N.safetensors files.
func (Side) Layout(out *format.Output) ([]format.Shard, error) {
	n, err := format.ParseNaming(out.Naming, safetensors.NamingFastLLM)
	if err != nil {
		return nil, fmt.Errorf("fast_llm: %w", err)
	}
	if n != safetensors.NamingFastLLM {
		return nil, fmt.Errorf("fast_llm: file naming %q is not Fast-LLM's", out.Naming)
	}
	var plan []safetensors.Shard
	if out.ShardBytes > 0 {
		plan, err = safetensors.PlanShards(out.Tensors, out.ShardBytes, safetensors.NamingFastLLM)
	} else {
		plan, err = planByParameters(out.Tensors, DefaultParametersPerFile)
	}
	if err != nil {
		return nil, fmt.Errorf("fast_llm: %w", err)
	}
	for _, s := range plan {
		for _, e := range s.Entries {
			if e.Name == "" {
				return nil, fmt.Errorf("fast_llm: a tensor has an empty name")
			}
		}
	}
	if out.Config == nil {
		return nil, fmt.Errorf("fast_llm: no config to write")
	}
	md, err := FileMetadata(out.Target, out.Config)
	if err != nil {
		return nil, fmt.Errorf("fast_llm: %w", err)
	}
	shards := format.ShardsOf(plan, Key)
	for i := range shards {
		shards[i].Metadata = maps.Clone(md)
	}
	return shards, nil
}

// Markers names the empty completion marker, "ok", that WriteMeta writes.
func (Side) Markers() []string { return []string{OKFile} }

// Key is the file-level key of a logical tensor name.
func Key(logical string) string { return logical + "/" + WeightsShard }

// planByParameters splits entries as Fast-LLM's saver does: tensors are
// added in order and a file is closed as soon as it holds at least limit
// parameters. No entries give one empty file.
func planByParameters(entries []safetensors.Entry, limit int64) ([]safetensors.Shard, error) {
	var shards []safetensors.Shard
	var cur safetensors.Shard
	var params int64
	for _, e := range entries {
		size, err := e.Size()
		if err != nil {
			return nil, fmt.Errorf("shard plan: tensor %q: %w", e.Name, err)
		}
		numel, _ := e.Shape.NumElements() // Size checked the shape
		if size > math.MaxInt64-cur.Bytes || numel > math.MaxInt64-params {
			return nil, fmt.Errorf("shard plan: tensor %q: the file's size or parameter count overflows a 64-bit integer", e.Name)
		}
		cur.Entries = append(cur.Entries, e)
		cur.Bytes += size
		params += numel
		if params >= limit {
			shards = append(shards, cur)
			cur, params = safetensors.Shard{}, 0
		}
	}
	if len(cur.Entries) > 0 || len(shards) == 0 {
		shards = append(shards, cur)
	}
	for i := range shards {
		shards[i].File = safetensors.NamingFastLLM.FileName(i, len(shards))
	}
	return shards, nil
}

// RenderConfig renders config.base_model as YAML, as metadata.yaml holds it.
func (Side) RenderConfig(config map[string]any) ([]byte, error) {
	return encodeYAML(config, false)
}

// ShowConfig renders metadata.yaml less its state index.
func (Side) ShowConfig(out *format.Output) (string, []byte, error) {
	if out.Config == nil {
		return "", nil, fmt.Errorf("fast_llm: no config to write")
	}
	data, err := EncodeMetadata(out.Target, out.Config, nil, out.Carried)
	if err != nil {
		return "", nil, fmt.Errorf("fast_llm: %s: %w", MetadataFile, err)
	}
	return MetadataFile + " (less metadata.state_index)", data, nil
}

// WriteMeta writes metadata.yaml.
func (Side) WriteMeta(dir string, out *format.Output, shards []format.Shard) error {
	index := map[string]string{}
	for _, s := range shards {
		for _, e := range s.Entries {
			if prev, dup := index[e.Name]; dup {
				return fmt.Errorf("fast_llm: tensor %q in two files (%s and %s)", e.Name, quote.Name(prev), quote.Name(s.File))
			}
			index[e.Name] = s.File
		}
	}
	if out.Config == nil {
		return fmt.Errorf("fast_llm: no config to write")
	}
	data, err := EncodeMetadata(out.Target, out.Config, index, out.Carried)
	if err != nil {
		return fmt.Errorf("fast_llm: %s: %w", MetadataFile, err)
	}
	if err := os.WriteFile(filepath.Join(dir, MetadataFile), data, 0o644); err != nil {
		return fmt.Errorf("fast_llm: %w", err)
	}
	// The output directory appears whole at the commit, so the marker can
	// be written with the metadata.
	if err := os.WriteFile(filepath.Join(dir, OKFile), nil, 0o644); err != nil {
		return fmt.Errorf("fast_llm: %w", err)
	}
	return nil
}

// anyList is a list of strings as a document holds it.
func anyList(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}
