package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// MaxHeaderSize is the largest header length the reference readers accept.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding the string-to-string map.
const metadataKey = "__metadata__"

// TensorInfo describes one tensor of a file. Begin and End are offsets
// relative to the start of the data buffer, End exclusive.
type TensorInfo struct {
	Name  string
	DType tensor.DType
	Shape tensor.Shape
	Begin int64
	End   int64
}

// Size is the tensor's size in bytes.
func (t TensorInfo) Size() int64 { return t.End - t.Begin }

// Header is a parsed and validated safetensors header.
type Header struct {
	// Metadata is the __metadata__ map: nil when the header has none, empty
	// (non-nil) when it is present but empty, so a rewrite can reproduce it.
	Metadata map[string]string
	// Tensors are in data order (by offset); that is also the header order of
	// every file the reference writer produces.
	Tensors []TensorInfo
	// DataStart is the file offset of the data buffer: 8 + header length.
	DataStart int64
}

// ReadHeader reads and validates the header of a safetensors file of the
// given total size, checking that the tensors exactly tile the rest of it.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	var prefix [8]byte
	if size >= 8 {
		if _, err := readFullAt(r, prefix[:], 0); err != nil {
			return nil, fmt.Errorf("safetensors: reading header length: %w", err)
		}
	}
	n, err := headerLen(prefix, size)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := readFullAt(r, buf, 8); err != nil {
		return nil, fmt.Errorf("safetensors: reading %d-byte header: %w", n, err)
	}
	return ParseHeader(buf, size-8-n)
}

// readFullAt is ReadAt that forgives the io.EOF an io.ReaderAt may return
// together with a complete read at the end of its input.
func readFullAt(r io.ReaderAt, p []byte, off int64) (int, error) {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// headerLen decodes and bounds-checks the 8-byte header length of a file of
// the given size.
func headerLen(prefix [8]byte, size int64) (int64, error) {
	if size < 8 {
		return 0, formatErr("", "file is %d bytes, shorter than the 8-byte header length", size)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	if n > MaxHeaderSize {
		return 0, formatErr("", "header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return 0, formatErr("", "file is %d bytes, shorter than its %d-byte header", size, n)
	}
	return int64(n), nil
}

// ParseHeader parses the JSON header of a safetensors file (the bytes after
// the 8-byte length, padding included) and validates it against a data buffer
// of dataLen bytes. Errors are *FormatError without a file name.
func ParseHeader(header []byte, dataLen int64) (*Header, error) {
	if len(header) == 0 || header[0] != '{' {
		return nil, formatErr("", "header does not start with '{'")
	}
	// encoding/json silently replaces invalid UTF-8, so check it up front.
	if !utf8.Valid(header) {
		return nil, formatErr("", "header is not valid UTF-8")
	}
	if dataLen < 0 {
		return nil, formatErr("", "negative data buffer length %d", dataLen)
	}
	h, err := decodeHeader(header, dataLen)
	if err != nil {
		return nil, err
	}
	h.DataStart = 8 + int64(len(header))
	if err := checkTiling(h.Tensors, dataLen); err != nil {
		return nil, err
	}
	return h, nil
}

// decodeHeader walks the JSON token by token: json.Unmarshal into a map would
// keep the last of two duplicated keys without a word.
func decodeHeader(header []byte, dataLen int64) (*Header, error) {
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, jsonErr("", err)
	}
	h := &Header{}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr("", err)
		}
		name, ok := tok.(string)
		if !ok { // the decoder only yields strings in key position; be safe anyway
			return nil, formatErr("", "header key is not a string")
		}
		if seen[name] {
			return nil, formatErr(name, "duplicated key in header")
		}
		seen[name] = true
		if name == metadataKey {
			if h.Metadata, err = decodeMetadata(dec); err != nil {
				return nil, err
			}
			continue
		}
		info, err := decodeTensorInfo(dec, name, dataLen)
		if err != nil {
			return nil, err
		}
		h.Tensors = append(h.Tensors, info)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, jsonErr("", err)
	}
	// Anything after the object must be padding.
	for _, c := range header[dec.InputOffset():] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return nil, formatErr("", "unexpected data after the header JSON object (only space padding is allowed)")
		}
	}
	return h, nil
}

func decodeMetadata(dec *json.Decoder) (map[string]string, error) {
	if err := expectDelim(dec, '{'); err != nil {
		return nil, jsonErr("", fmt.Errorf("%s is not an object: %w", metadataKey, err))
	}
	md := make(map[string]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr("", err)
		}
		key, _ := tok.(string)
		if _, dup := md[key]; dup {
			return nil, formatErr("", "%s has duplicated key %q", metadataKey, key)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, jsonErr("", err)
		}
		val, ok := tok.(string)
		if !ok {
			return nil, formatErr("", "%s value for key %q is not a string (%s)", metadataKey, key, tokenKind(tok))
		}
		md[key] = val
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, jsonErr("", err)
	}
	return md, nil
}

func decodeTensorInfo(dec *json.Decoder, name string, dataLen int64) (TensorInfo, error) {
	info := TensorInfo{Name: name}
	if err := expectDelim(dec, '{'); err != nil {
		return info, jsonErr(name, fmt.Errorf("entry is not an object: %w", err))
	}
	var haveDType, haveShape, haveOffsets bool
	var offsets []int64
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return info, jsonErr(name, err)
		}
		field, _ := tok.(string)
		switch field {
		case "dtype":
			if haveDType {
				return info, formatErr(name, "duplicated field %q", field)
			}
			haveDType = true
			tok, err := dec.Token()
			if err != nil {
				return info, jsonErr(name, err)
			}
			s, ok := tok.(string)
			if !ok {
				return info, formatErr(name, "dtype is not a string (%s)", tokenKind(tok))
			}
			if info.DType, err = tensor.ParseDType(s); err != nil {
				return info, formatErr(name, "unknown dtype %q", s)
			}
		case "shape":
			if haveShape {
				return info, formatErr(name, "duplicated field %q", field)
			}
			haveShape = true
			dims, err := decodeInts(dec, name, "shape")
			if err != nil {
				return info, err
			}
			info.Shape = make(tensor.Shape, len(dims))
			for i, d := range dims {
				if d < 0 {
					return info, formatErr(name, "negative dimension %d in shape %v", d, dims)
				}
				info.Shape[i] = int(d)
			}
		case "data_offsets":
			if haveOffsets {
				return info, formatErr(name, "duplicated field %q", field)
			}
			haveOffsets = true
			if offsets, err = decodeInts(dec, name, "data_offsets"); err != nil {
				return info, err
			}
		default:
			return info, formatErr(name, "unknown field %q", field)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return info, jsonErr(name, err)
	}
	switch {
	case !haveDType:
		return info, formatErr(name, "missing field \"dtype\"")
	case !haveShape:
		return info, formatErr(name, "missing field \"shape\"")
	case !haveOffsets:
		return info, formatErr(name, "missing field \"data_offsets\"")
	case len(offsets) != 2:
		return info, formatErr(name, "data_offsets has %d values, want 2", len(offsets))
	}
	info.Begin, info.End = offsets[0], offsets[1]
	if info.Begin < 0 || info.End < 0 {
		return info, formatErr(name, "negative data_offsets %v", offsets)
	}
	if info.Begin > info.End {
		return info, formatErr(name, "data_offsets begin %d is after end %d", info.Begin, info.End)
	}
	size, err := byteSize(info.DType, info.Shape)
	if err != nil {
		return info, &FormatError{Tensor: name, Reason: "invalid shape", Err: err}
	}
	if info.End-info.Begin != size {
		return info, formatErr(name, "data_offsets [%d, %d] span %d bytes, but %v%v needs %d",
			info.Begin, info.End, info.End-info.Begin, info.DType, info.Shape, size)
	}
	if info.End > dataLen {
		return info, formatErr(name, "data_offsets end %d runs past the end of the file (data buffer is %d bytes)",
			info.End, dataLen)
	}
	return info, nil
}

// decodeInts reads a JSON array of integers that fit in an int64.
func decodeInts(dec *json.Decoder, name, field string) ([]int64, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, jsonErr(name, fmt.Errorf("%s is not an array: %w", field, err))
	}
	out := []int64{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonErr(name, err)
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, formatErr(name, "%s holds a %s, want integers", field, tokenKind(tok))
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, formatErr(name, "%s value %s overflows int64", field, num)
			}
			return nil, formatErr(name, "%s value %s is not an integer", field, num)
		}
		out = append(out, v)
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, jsonErr(name, err)
	}
	return out, nil
}

// checkTiling sorts tensors into data order and checks that they cover the
// data buffer exactly: no gap, no overlap, nothing after the last tensor.
func checkTiling(ts []TensorInfo, dataLen int64) error {
	// Stable, so zero-size tensors sharing an offset keep their header order.
	sort.SliceStable(ts, func(i, j int) bool {
		if ts[i].Begin != ts[j].Begin {
			return ts[i].Begin < ts[j].Begin
		}
		return ts[i].End < ts[j].End
	})
	var pos int64
	prev := ""
	for _, t := range ts {
		switch {
		case t.Begin > pos:
			return formatErr(t.Name, "gap of %d bytes before data_offsets begin %d (previous data ends at %d)",
				t.Begin-pos, t.Begin, pos)
		case t.Begin < pos:
			return formatErr(t.Name, "data_offsets [%d, %d] overlap tensor %q, which ends at %d",
				t.Begin, t.End, prev, pos)
		}
		pos, prev = t.End, t.Name
	}
	if pos < dataLen {
		return formatErr("", "%d unused bytes after the last tensor", dataLen-pos)
	}
	return nil
}

// byteSize is the storage size of a tensor. Unlike tensor.Shape.ByteSize it
// rejects sub-byte tensors that do not fill whole bytes, as the reference
// reader does.
func byteSize(dt tensor.DType, shape tensor.Shape) (int64, error) {
	if !dt.Valid() {
		return 0, fmt.Errorf("invalid dtype %v", dt)
	}
	n, err := shape.NumElements()
	if err != nil {
		return 0, err
	}
	hi, nbits := bits.Mul64(uint64(n), uint64(dt.Bits()))
	if hi != 0 || nbits > math.MaxInt64 {
		return 0, fmt.Errorf("shape %v of %v is too large", shape, dt)
	}
	if nbits%8 != 0 {
		return 0, fmt.Errorf("%d elements of %v do not fill whole bytes", n, dt)
	}
	return int64(nbits / 8), nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("found %s, want %q", tokenKind(tok), string(want))
	}
	return nil
}

// jsonErr reports a malformed header, turning a bare io.EOF into something
// a reader can act on.
func jsonErr(tensor string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &FormatError{Tensor: tensor, Reason: "invalid header JSON", Err: err}
}

func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", string(v))
	case string:
		return "string"
	case json.Number:
		return "number " + string(v)
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}
