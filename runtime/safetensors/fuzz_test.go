package safetensors

import (
	"bytes"
	"errors"
	"maps"
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

// FuzzParseIndex feeds model.safetensors.index.json documents to
// ParseIndex. It must never panic; every rejection must be a *FormatError;
// and whatever it accepts must survive a rewrite: Encode gives a document
// it accepts again, with the same weight map and total size.
func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"metadata": {"total_size": 12}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}`))
	f.Add([]byte(`{"metadata": {"total_size": 1.2e3, "format": "pt"}, "weight_map": {}, "extra": [1, {"x": null}]}`))
	f.Add([]byte(`{"weight_map": {"caf\u00e9 \u2028": "x.safetensors"}, "metadata": null}`))
	f.Add([]byte(`{"weight_map": {"a": "x", "a": "y"}}`))
	f.Add(NewIndex([]Shard{{File: "m.safetensors", Entries: []Entry{{Name: "w"}}, Bytes: 7}}).Encode())
	f.Fuzz(func(t *testing.T, doc []byte) {
		ix, err := ParseIndex(doc)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("rejection is not a *FormatError: %v", err)
			}
			return
		}
		if ix.WeightMap == nil {
			t.Fatal("accepted an index without a weight map")
		}
		again, err := ParseIndex(ix.Encode())
		if err != nil {
			t.Fatalf("our own encoding %q is rejected: %v", ix.Encode(), err)
		}
		if again.TotalSize != ix.TotalSize || !maps.Equal(again.WeightMap, ix.WeightMap) {
			t.Fatalf("rewrite changed the index: %+v vs %+v", again, ix)
		}
	})
}
