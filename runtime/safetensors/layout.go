package safetensors

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// Entry is a tensor to be written: everything about it but its bytes.
type Entry struct {
	Name  string
	DType tensor.DType
	Shape tensor.Shape
}

// Size is the entry's storage size in bytes.
func (e Entry) Size() (int64, error) { return byteSize(e.DType, e.Shape) }

// Layout is a complete plan of one safetensors file: its header bytes and
// where every tensor's data goes. It is computed before any data exists so
// that the file can be sized up front and filled in any order.
type Layout struct {
	// Header is the JSON header, padded with spaces so that the data buffer
	// starts at a multiple of 8; the file holds its length, then it.
	Header    []byte
	Metadata  map[string]string
	Tensors   []TensorInfo // in data (and header) order
	DataStart int64        // 8 + len(Header)
	Size      int64        // total file size

	index map[string]int
}

// NewLayout plans a file holding the given tensors and metadata (nil for no
// __metadata__ entry; an empty non-nil map writes an empty one).
//
// The result matches the reference writer byte for byte: tensors ordered by
// dtype, largest alignment first (the reverse of tensor.DType's order), then
// by name; __metadata__ first in the header, then the tensors in data order;
// compact JSON; spaces padding the header to a multiple of 8. The one freedom
// the reference leaves, the order of metadata keys (a Rust HashMap), is fixed
// here as sorted.
func NewLayout(entries []Entry, metadata map[string]string) (*Layout, error) {
	sorted := make([]Entry, len(entries))
	copy(sorted, entries)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].DType != sorted[j].DType {
			return sorted[i].DType > sorted[j].DType
		}
		return sorted[i].Name < sorted[j].Name
	})

	l := &Layout{
		Metadata: metadata,
		Tensors:  make([]TensorInfo, len(sorted)),
		index:    make(map[string]int, len(sorted)),
	}
	var pos int64
	for i, e := range sorted {
		if err := checkEntryName(e.Name); err != nil {
			return nil, err
		}
		if _, dup := l.index[e.Name]; dup {
			return nil, fmt.Errorf("safetensors: layout: tensor %q listed twice", e.Name)
		}
		size, err := byteSize(e.DType, e.Shape)
		if err != nil {
			return nil, fmt.Errorf("safetensors: layout: tensor %q: %w", e.Name, err)
		}
		if size > math.MaxInt64-pos {
			return nil, fmt.Errorf("safetensors: layout: tensor %q: data buffer size %d + %d overflows a 64-bit integer", e.Name, pos, size)
		}
		l.Tensors[i] = TensorInfo{Name: e.Name, DType: e.DType, Shape: e.Shape.Clone(), Begin: pos, End: pos + size}
		l.index[e.Name] = i
		pos += size
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("safetensors: layout: metadata entry %q is not valid UTF-8", k)
		}
	}

	l.Header = encodeHeader(l.Metadata, l.Tensors)
	if len(l.Header) > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: layout: header of %d bytes exceeds the limit of %d", len(l.Header), MaxHeaderSize)
	}
	l.DataStart = 8 + int64(len(l.Header))
	if pos > math.MaxInt64-l.DataStart {
		return nil, fmt.Errorf("safetensors: layout: file size %d + %d overflows a 64-bit integer", l.DataStart, pos)
	}
	l.Size = l.DataStart + pos
	return l, nil
}

func checkEntryName(name string) error {
	if name == metadataKey {
		return fmt.Errorf("safetensors: layout: %q is reserved and cannot name a tensor", name)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("safetensors: layout: tensor name %q is not valid UTF-8", name)
	}
	return nil
}

// Tensor returns the planned position of the named tensor.
func (l *Layout) Tensor(name string) (TensorInfo, bool) {
	i, ok := l.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return l.Tensors[i], true
}

// FileOffset is the absolute file offset of t's first byte.
func (l *Layout) FileOffset(t TensorInfo) int64 { return l.DataStart + t.Begin }

// DataSize is the size of the data buffer: the sum of the tensor sizes.
func (l *Layout) DataSize() int64 { return l.Size - l.DataStart }

// encodeHeader writes the header as serde_json (the reference) does.
func encodeHeader(metadata map[string]string, ts []TensorInfo) []byte {
	b := []byte{'{'}
	if metadata != nil {
		b = appendJSONString(b, metadataKey)
		b = append(b, ':', '{')
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, metadata[k])
		}
		b = append(b, '}')
	}
	for i, t := range ts {
		if i > 0 || metadata != nil {
			b = append(b, ',')
		}
		b = appendJSONString(b, t.Name)
		b = append(b, `:{"dtype":`...)
		b = appendJSONString(b, t.DType.String())
		b = append(b, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(d), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, t.Begin, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, t.End, 10)
		b = append(b, ']', '}')
	}
	b = append(b, '}')
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	return b
}

// appendJSONString quotes s the way serde_json does: only '"', '\\' and
// control characters are escaped (encoding/json would also escape <, >, &,
// U+2028 and U+2029, and so differ from the reference bytes).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}
