package safetensors

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseHeader feeds whole files to ReadHeader (and so ParseHeader). It
// must never panic; every rejection must be a *FormatError; and whatever it
// accepts must tile the data buffer exactly and survive a rewrite: planning
// the same tensors with NewLayout gives a header it accepts again, with the
// same tensors.
func FuzzParseHeader(f *testing.F) {
	f.Add(craft(`{}`, nil))
	f.Add(craft(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Fuzz(func(t *testing.T, file []byte) {
		h, err := ReadHeader(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("rejection is not a *FormatError: %v", err)
			}
			return
		}
		dataLen := int64(len(file)) - h.DataStart
		var pos int64
		entries := make([]Entry, len(h.Tensors))
		for i, ti := range h.Tensors {
			size, err := byteSize(ti.DType, ti.Shape)
			if err != nil || ti.Begin != pos || ti.End-ti.Begin != size {
				t.Fatalf("accepted tensor %+v at %d (size %d, %v)", ti, pos, size, err)
			}
			pos = ti.End
			entries[i] = Entry{Name: ti.Name, DType: ti.DType, Shape: ti.Shape}
		}
		if pos != dataLen {
			t.Fatalf("accepted tensors end at %d, data buffer is %d bytes", pos, dataLen)
		}

		l, err := NewLayout(entries, h.Metadata)
		if err != nil {
			t.Fatalf("NewLayout of accepted tensors: %v", err)
		}
		h2, err := ParseHeader(l.Header, l.DataSize())
		if err != nil {
			t.Fatalf("our own header %q is rejected: %v", l.Header, err)
		}
		if len(h2.Tensors) != len(h.Tensors) || len(h2.Metadata) != len(h.Metadata) || (h2.Metadata == nil) != (h.Metadata == nil) {
			t.Fatalf("rewrite changed the header: %+v vs %+v", h2, h)
		}
		for k, v := range h.Metadata {
			if h2.Metadata[k] != v {
				t.Fatalf("rewrite changed metadata %q: %q vs %q", k, h2.Metadata[k], v)
			}
		}
		for _, ti := range h.Tensors {
			t2, ok := l.Tensor(ti.Name)
			if !ok || t2.DType != ti.DType || !t2.Shape.Equal(ti.Shape) || t2.Size() != ti.Size() {
				t.Fatalf("rewrite changed tensor %q: %+v vs %+v", ti.Name, t2, ti)
			}
		}
	})
}
