package safetensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/mapper-dev/mapper/runtime/pyjson"
)

// IndexFile is the name of the index of a sharded Hugging Face checkpoint.
const IndexFile = "model.safetensors.index.json"

// Index is a model.safetensors.index.json: which file holds each tensor.
type Index struct {
	// TotalSize is metadata.total_size: the sum of the tensor data bytes.
	TotalSize int64
	// Metadata holds every key of "metadata" as read, total_size included;
	// readers accept keys they do not know. Encode writes only total_size.
	Metadata  map[string]json.RawMessage
	WeightMap map[string]string
	// Raw is the file's text as read (ReadIndex and ParseIndex set it):
	// the exact bytes a round trip may want to write back.
	Raw []byte
}

// ReadIndex reads and parses an index file. It is read as an input file of
// its directory (see ReadInput): a link may not lead out of it, and the
// file must be a regular one of at most MaxDocBytes.
func ReadIndex(path string) (*Index, error) {
	data, err := ReadInput(filepath.Dir(path), filepath.Base(path), MaxDocBytes)
	if err != nil {
		return nil, err
	}
	ix, err := ParseIndex(data)
	if err != nil {
		return nil, withFile(err, path)
	}
	return ix, nil
}

// ParseIndex parses the content of an index file. A tensor listed twice in
// weight_map is an error (encoding/json would keep the last silently).
func ParseIndex(data []byte) (*Index, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, indexErr("", err)
	}
	ix := &Index{}
	var haveMap bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, indexErr("", err)
		}
		switch key, _ := tok.(string); key {
		case "metadata":
			if ix.Metadata != nil {
				return nil, formatErr("", "index has two \"metadata\" keys")
			}
			if err := dec.Decode(&ix.Metadata); err != nil {
				return nil, indexErr("", fmt.Errorf("metadata: %w", err))
			}
			if ix.Metadata == nil { // "metadata": null
				ix.Metadata = map[string]json.RawMessage{}
			}
		case "weight_map":
			if haveMap {
				return nil, formatErr("", "index has two \"weight_map\" keys")
			}
			haveMap = true
			if ix.WeightMap, err = decodeWeightMap(dec); err != nil {
				return nil, err
			}
		default:
			// Not ours to judge: skip values of keys HF may add later.
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, indexErr("", err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, indexErr("", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, formatErr("", "index: unexpected data after the JSON object")
	}
	if !haveMap {
		return nil, formatErr("", "index has no \"weight_map\"")
	}
	ix.Raw = data
	if raw, ok := ix.Metadata["total_size"]; ok {
		n, err := parseSize(raw)
		if err != nil {
			return nil, formatErr("", "index metadata.total_size %s: %v", raw, err)
		}
		ix.TotalSize = n
	}
	return ix, nil
}

func decodeWeightMap(dec *json.Decoder) (map[string]string, error) {
	if err := expectDelim(dec, '{'); err != nil {
		return nil, indexErr("", fmt.Errorf("weight_map: %w", err))
	}
	wm := make(map[string]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, indexErr("", err)
		}
		name, _ := tok.(string)
		if _, dup := wm[name]; dup {
			return nil, formatErr(name, "listed twice in the index weight_map")
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, indexErr(name, err)
		}
		file, ok := tok.(string)
		if !ok {
			return nil, formatErr(name, "index weight_map value is a %s, want a file name", tokenKind(tok))
		}
		wm[name] = file
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, indexErr("", err)
	}
	return wm, nil
}

// parseSize accepts an integer, or a float with an integral value (some
// published indexes were written from Python floats).
func parseSize(raw json.RawMessage) (int64, error) {
	s := string(raw)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f != math.Trunc(f) || f >= math.MaxInt64 {
		return 0, fmt.Errorf("not a non-negative integer")
	}
	return int64(f), nil
}

func indexErr(tensor string, err error) error {
	return &FormatError{Tensor: tensor, Reason: "invalid index JSON", Err: err}
}

// NewIndex builds the index of a sharded checkpoint: every tensor of every
// shard mapped to its file, and total_size the sum of their sizes.
func NewIndex(shards []Shard) *Index {
	ix := &Index{WeightMap: make(map[string]string)}
	for _, s := range shards {
		for _, e := range s.Entries {
			ix.WeightMap[e.Name] = s.File
		}
		ix.TotalSize += s.Bytes
	}
	return ix
}

// Encode renders the index exactly as Hugging Face's save_pretrained does
// (Python's json.dumps with indent=2, sort_keys=True, ensure_ascii, plus a
// trailing newline). Only total_size is written under "metadata".
func (ix *Index) Encode() []byte {
	names := make([]string, 0, len(ix.WeightMap))
	for n := range ix.WeightMap {
		names = append(names, n)
	}
	sort.Strings(names)

	var b []byte
	b = append(b, "{\n  \"metadata\": {\n    \"total_size\": "...)
	b = strconv.AppendInt(b, ix.TotalSize, 10)
	b = append(b, "\n  },\n  \"weight_map\": "...)
	if len(names) == 0 {
		b = append(b, "{}"...)
	} else {
		b = append(b, "{\n"...)
		for i, n := range names {
			b = append(b, "    "...)
			b = pyjson.AppendString(b, n)
			b = append(b, ": "...)
			b = pyjson.AppendString(b, ix.WeightMap[n])
			if i < len(names)-1 {
				b = append(b, ',')
			}
			b = append(b, '\n')
		}
		b = append(b, "  }"...)
	}
	return append(b, "\n}\n"...)
}

// WriteIndex writes ix.Encode() to path.
func WriteIndex(path string, ix *Index) error {
	if err := os.WriteFile(path, ix.Encode(), 0o644); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
