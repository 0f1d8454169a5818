package hf

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/quote"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

// What an import records about an HF checkpoint beyond its content, and how
// the way back restores it (format.Original):
//
//   - config.json: its text, when it is not what save_pretrained would
//     write for its content (keys unsorted, another indentation, "1e-5" for
//     1e-05, no trailing newline...). On export, when the rebuilt config
//     has the same keys and values as that text, the text is written as it
//     was; when it differs (a value changed in training, a key the mapping
//     sets), the config is written in save_pretrained's form but in the
//     original's key order. A plan note says which.
//   - model.safetensors.index.json: its text, when it is not the index
//     save_pretrained writes (GPT-OSS's one-line index, extra metadata keys
//     such as total_parameters). Written back when the output has the same
//     files, tensors and total_size.
//   - every weight file's __metadata__ (transformers writes {"format":
//     "pt"}; GPT-OSS's published shards have none), given back per file.
//     A file the record does not name (another sharding) gets the
//     __metadata__ every recorded file had, or {"format": "pt"}; an output
//     with no record at all gets {"format": "pt"}, as transformers writes.
//     A note says so whenever the record does not decide.

// DefaultFileMetadata is the __metadata__ transformers' save_pretrained
// writes in every safetensors file.
func DefaultFileMetadata() map[string]string { return map[string]string{"format": "pt"} }

// canonicalConfig is config.json as save_pretrained writes cfg.
func canonicalConfig(cfg map[string]any) ([]byte, error) {
	b, err := pyjson.Encode(cfg, 2, true)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// texts lists the documents of an opened checkpoint whose exact text the
// side would not write back from their content.
func texts(cfg map[string]any, raw []byte, ix *safetensors.Index) map[string]string {
	out := map[string]string{}
	if canon, err := canonicalConfig(cfg); err != nil || !bytes.Equal(canon, raw) {
		out[ConfigFile] = string(raw)
	}
	if ix != nil && !bytes.Equal(ix.Encode(), ix.Raw) {
		out[safetensors.IndexFile] = string(ix.Raw)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func originalText(out *format.Output, file string) (string, bool) {
	if out.Original == nil {
		return "", false
	}
	t, ok := out.Original.Texts[file]
	return t, ok
}

// configText is config.json as this side writes out.Config, and a note when
// the text recorded at import decided it.
func configText(out *format.Output) ([]byte, string, error) {
	canon, err := canonicalConfig(out.Config)
	if err != nil {
		return nil, "", err
	}
	text, ok := originalText(out, ConfigFile)
	if !ok {
		return canon, "", nil
	}
	orig, err := pyjson.DecodeOrdered([]byte(text))
	if err != nil {
		return canon, fmt.Sprintf("%s: the original text recorded at import does not parse (%v); written in save_pretrained form", ConfigFile, err), nil
	}
	diffs := differences(orig, out.Config, "")
	if len(diffs) == 0 {
		return []byte(text), fmt.Sprintf("%s: written as the original text recorded at import (not in save_pretrained form; the rebuilt config has the same keys and values)", ConfigFile), nil
	}
	b, err := pyjson.Encode(inOrder(out.Config, orig), 2, false)
	if err != nil {
		return nil, "", err
	}
	return append(b, '\n'), fmt.Sprintf("%s: differs from the original recorded at import (%s): written in save_pretrained form, keys in the original's order", ConfigFile, listPaths(diffs)), nil
}

// inOrder gives v the key order of orig, an ordered decoding of the
// original: keys of orig keep their order, a key orig does not have goes
// right after the greatest key that sorts before it (first when none), so
// a sorted original stays sorted. Objects inside lists follow orig's
// element at the same index.
func inOrder(v, orig any) any {
	switch v := v.(type) {
	case map[string]any:
		o, _ := orig.(pyjson.Object)
		var keys []string
		for _, k := range o.Keys() {
			if _, ok := v[k]; ok {
				keys = append(keys, k)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if _, ok := o.Get(k); ok {
				continue
			}
			// After the greatest key that sorts before it (first when none).
			i, best := 0, ""
			for j, x := range keys {
				if x < k && x >= best {
					i, best = j+1, x
				}
			}
			keys = slices.Insert(keys, i, k)
		}
		res := make(pyjson.Object, len(keys))
		for i, k := range keys {
			ov, _ := o.Get(k)
			res[i] = pyjson.Member{Key: k, Value: inOrder(v[k], ov)}
		}
		return res
	case []any:
		ol, _ := orig.([]any)
		res := make([]any, len(v))
		for i, e := range v {
			var oe any
			if i < len(ol) {
				oe = ol[i]
			}
			res[i] = inOrder(e, oe)
		}
		return res
	}
	return v
}

// differences lists the dotted paths where the original (an ordered
// decoding) and the rebuilt config differ. Numbers compare by value: 1 and
// 1.0 are the same (the original's spelling is what gets written).
func differences(orig, v any, path string) []string {
	at := func(k string) string {
		if path == "" {
			return quote.Name(k)
		}
		return path + "." + quote.Name(k)
	}
	switch o := orig.(type) {
	case pyjson.Object:
		m, ok := v.(map[string]any)
		if !ok {
			return []string{pathOrTop(path)}
		}
		var out []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			ov, ok := o.Get(k)
			if !ok {
				out = append(out, at(k)+" (added)")
				continue
			}
			out = append(out, differences(ov, m[k], at(k))...)
		}
		for _, k := range o.Keys() {
			if _, ok := m[k]; !ok {
				out = append(out, at(k)+" (removed)")
			}
		}
		return out
	case []any:
		l, ok := v.([]any)
		if !ok || len(l) != len(o) {
			return []string{pathOrTop(path)}
		}
		var out []string
		for i := range o {
			out = append(out, differences(o[i], l[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if !ir.ValuesEqual(orig, v) {
		return []string{pathOrTop(path)}
	}
	return nil
}

func pathOrTop(p string) string {
	if p == "" {
		return "the whole config"
	}
	return p
}

func listPaths(ps []string) string {
	const shown = 5
	if len(ps) <= shown {
		return strings.Join(ps, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ps[:shown], ", "), len(ps)-shown)
}

// indexText is the index this side writes for shards (nil: none), and a
// note when the text recorded at import decided it, or could not.
func indexText(out *format.Output, shards []format.Shard) ([]byte, string, error) {
	text, recorded := originalText(out, safetensors.IndexFile)
	if !needsIndex(shards) {
		if recorded {
			return nil, fmt.Sprintf("%s: not written, as the output is the single file %s (the input had one, recorded at import)", safetensors.IndexFile, defaultFile), nil
		}
		return nil, "", nil
	}
	n, err := naming(out)
	if err != nil {
		return nil, "", err
	}
	var own []byte
	if n == safetensors.NamingHFZeroBased {
		if own, err = compactIndex(shards); err != nil {
			return nil, "", err
		}
	} else {
		plan := make([]safetensors.Shard, len(shards))
		for i, s := range shards {
			plan[i] = safetensors.Shard{File: s.File, Entries: s.Entries, Bytes: s.Bytes}
		}
		own = safetensors.NewIndex(plan).Encode()
	}
	if !recorded {
		return own, "", nil
	}
	ix, err := safetensors.ParseIndex([]byte(text))
	if err != nil {
		return own, fmt.Sprintf("%s: the original text recorded at import does not parse (%v); written in mapper's form", safetensors.IndexFile, err), nil
	}
	mine, err := safetensors.ParseIndex(own)
	if err != nil {
		return nil, "", fmt.Errorf("%s: mapper's own index does not parse: %w", safetensors.IndexFile, err)
	}
	if ix.TotalSize == mine.TotalSize && maps.Equal(ix.WeightMap, mine.WeightMap) {
		return []byte(text), fmt.Sprintf("%s: written as the original text recorded at import (same files, tensors and total_size)", safetensors.IndexFile), nil
	}
	note := fmt.Sprintf("%s: the output's files or tensors differ from the original's, so it is written in mapper's form, not as the text recorded at import", safetensors.IndexFile)
	if extra := slices.DeleteFunc(slices.Sorted(maps.Keys(ix.Metadata)), func(k string) bool { return k == "total_size" }); len(extra) > 0 {
		note += fmt.Sprintf("; its metadata keys %s are not written", strings.Join(extra, ", "))
	}
	return own, note, nil
}

// defaultFile is the single file save_pretrained writes.
const defaultFile = "model.safetensors"

// needsIndex reports whether shards need an index: more than one file, or
// one not named model.safetensors (readers find only that one without an
// index; an input with a single model-00001-of-00001.safetensors and its
// index comes back that way).
func needsIndex(shards []format.Shard) bool {
	return len(shards) > 1 || (len(shards) == 1 && shards[0].File != defaultFile)
}

// fileMetadata sets the __metadata__ of every shard from out.Original and
// returns the notes the user must hear.
func fileMetadata(out *format.Output, shards []format.Shard) []string {
	var rec map[string]map[string]string
	if out.Original != nil {
		rec = out.Original.FileMetadata
	}
	if len(rec) == 0 {
		for i := range shards {
			shards[i].Metadata = DefaultFileMetadata()
		}
		if len(shards) == 0 {
			return nil
		}
		return []string{fmt.Sprintf("safetensors __metadata__ %s in every file, as transformers writes it: the input records none for the way back", format.DescribeFileMetadata(DefaultFileMetadata(), 0))}
	}
	// What every recorded file had, when they agree.
	var common map[string]string
	uniform := true
	for i, f := range slices.Sorted(maps.Keys(rec)) {
		if i == 0 {
			common = rec[f]
		} else if !format.SameFileMetadata(common, rec[f]) {
			uniform = false
		}
	}
	var missing []string
	for i, s := range shards {
		if md, ok := rec[s.File]; ok {
			shards[i].Metadata = maps.Clone(md)
			continue
		}
		missing = append(missing, s.File)
		if uniform {
			shards[i].Metadata = maps.Clone(common)
		} else {
			shards[i].Metadata = DefaultFileMetadata()
		}
	}
	if len(missing) == 0 {
		return nil
	}
	files := listPaths(quote.Names(missing))
	if uniform {
		return []string{fmt.Sprintf("%s: not among the input's files recorded at import; given the safetensors __metadata__ every one of those had (%s)", files, format.DescribeFileMetadata(common, 0))}
	}
	return []string{fmt.Sprintf("%s: not among the input's files recorded at import, whose safetensors __metadata__ differ; given %s, as transformers writes it", files, format.DescribeFileMetadata(DefaultFileMetadata(), 0))}
}
