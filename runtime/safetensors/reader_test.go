package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// craft assembles a file from a header and a data buffer.
func craft(header string, data []byte) []byte {
	return craftLen(uint64(len(header)), header, data)
}

// craftLen is craft with an explicit (possibly lying) header length.
func craftLen(n uint64, header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, n)
	b = append(b, header...)
	return append(b, data...)
}

func writeFile(t testing.TB, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenRejects(t *testing.T) {
	f32 := func(name string, shape string, b, e int) string {
		return `"` + name + `":{"dtype":"F32","shape":` + shape + `,"data_offsets":[` + itoa(b) + `,` + itoa(e) + `]}`
	}
	cases := []struct {
		name   string
		file   []byte
		tensor string // the tensor the error must name ("" for none)
		want   string // substring of the error
	}{
		{"shorter than 8 bytes", []byte{1, 2, 3}, "", "shorter than the 8-byte header length"},
		{"empty file", nil, "", "shorter than the 8-byte header length"},
		{"shorter than header", craftLen(100, "{}", nil), "", "shorter than its 100-byte header"},
		{"header too large", craftLen(100_000_001, "{}", nil), "", "exceeds the limit of 100000000"},
		{"zero header", craftLen(0, "", nil), "", "does not start with '{'"},
		{"header not an object", craft(`[]`, nil), "", "does not start with '{'"},
		{"leading space", craft(` {}`, nil), "", "does not start with '{'"},
		{"invalid utf-8", craft("{\"a\xff\":1}", nil), "", "not valid UTF-8"},
		{"invalid json", craft(`{"a":`, nil), "a", "invalid header JSON"},
		{"bad json syntax", craft(`{"a" 1}`, nil), "a", "invalid header JSON"},
		{"trailing garbage", craft(`{}  x`, nil), "", "unexpected data after the header JSON"},
		{"two objects", craft(`{}{}`, nil), "", "unexpected data after the header JSON"},
		{"duplicated tensor", craft(`{`+f32("w", "[1]", 0, 4)+`,`+f32("w", "[1]", 4, 8)+`}`, make([]byte, 8)),
			"w", "duplicated key"},
		{"duplicated metadata", craft(`{"__metadata__":{},"__metadata__":{}}`, nil), "__metadata__", "duplicated key"},
		{"unknown dtype", craft(`{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)),
			"w", `unknown dtype "F12"`},
		{"dtype not a string", craft(`{"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)),
			"w", "dtype is not a string"},
		{"negative dimension", craft(`{`+f32("w", "[2,-1]", 0, 4)+`}`, make([]byte, 4)), "w", "negative dimension -1"},
		{"element count overflow", craft(`{`+f32("w", "[4294967296,4294967296,4]", 0, 4)+`}`, make([]byte, 4)),
			"w", "too many elements"},
		{"dimension overflows int64", craft(`{`+f32("w", "[99999999999999999999]", 0, 4)+`}`, make([]byte, 4)),
			"w", "overflows int64"},
		{"fractional dimension", craft(`{`+f32("w", "[1.5]", 0, 4)+`}`, make([]byte, 4)), "w", "not an integer"},
		{"size mismatch", craft(`{`+f32("w", "[2]", 0, 4)+`}`, make([]byte, 4)), "w", "span 4 bytes, but F32[2] needs 8"},
		{"sub-byte misaligned", craft(`{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, make([]byte, 2)),
			"w", "do not fill whole bytes"},
		{"begin after end", craft(`{`+f32("w", "[1]", 8, 4)+`}`, make([]byte, 8)), "w", "begin 8 is after end 4"},
		{"negative offset", craft(`{`+f32("w", "[1]", -4, 0)+`}`, nil), "w", "negative data_offsets"},
		{"one offset", craft(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, make([]byte, 4)),
			"w", "data_offsets has 1 values"},
		{"gap", craft(`{`+f32("a", "[1]", 0, 4)+`,`+f32("b", "[1]", 8, 12)+`}`, make([]byte, 12)),
			"b", "gap of 4 bytes"},
		{"gap at start", craft(`{`+f32("a", "[1]", 4, 8)+`}`, make([]byte, 8)), "a", "gap of 4 bytes"},
		{"overlap", craft(`{`+f32("a", "[2]", 0, 8)+`,`+f32("b", "[1]", 4, 8)+`}`, make([]byte, 8)),
			"b", `overlap tensor "a"`},
		{"same range twice", craft(`{`+f32("a", "[1]", 0, 4)+`,`+f32("b", "[1]", 0, 4)+`}`, make([]byte, 4)),
			"b", `overlap tensor "a"`},
		{"past the file", craft(`{`+f32("w", "[2]", 0, 8)+`}`, make([]byte, 4)), "w", "runs past the end of the file"},
		{"bytes after last tensor", craft(`{`+f32("w", "[1]", 0, 4)+`}`, make([]byte, 8)), "",
			"4 unused bytes after the last tensor"},
		{"data but no tensors", craft(`{}`, make([]byte, 3)), "", "3 unused bytes after the last tensor"},
		{"metadata value not a string", craft(`{"__metadata__":{"k":1}}`, nil), "",
			`__metadata__ value for key "k" is not a string`},
		{"metadata value object", craft(`{"__metadata__":{"k":{}}}`, nil), "", `__metadata__ value for key "k"`},
		{"metadata not an object", craft(`{"__metadata__":"x"}`, nil), "", "__metadata__ is not an object"},
		{"metadata duplicated key", craft(`{"__metadata__":{"k":"a","k":"b"}}`, nil), "", `duplicated key "k"`},
		{"entry not an object", craft(`{"w":[1]}`, nil), "w", "entry is not an object"},
		{"missing dtype", craft(`{"w":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "w", `missing field "dtype"`},
		{"missing shape", craft(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), "w", `missing field "shape"`},
		{"missing offsets", craft(`{"w":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), "w", `missing field "data_offsets"`},
		{"unknown field", craft(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, make([]byte, 4)),
			"w", `unknown field "x"`},
		{"duplicated field", craft(`{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)),
			"w", `duplicated field "dtype"`},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, "case"+itoa(i)+".safetensors", tc.file)
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatalf("Open accepted the file")
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FormatError", err, err)
			}
			if fe.File != path {
				t.Errorf("FormatError.File = %q, want %q", fe.File, path)
			}
			if fe.Tensor != tc.tensor {
				t.Errorf("FormatError.Tensor = %q, want %q", fe.Tensor, tc.tensor)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the cause %q and the file", msg, tc.want)
			}
			if tc.tensor != "" && !strings.Contains(msg, `"`+tc.tensor+`"`) {
				t.Errorf("error %q does not name tensor %q", msg, tc.tensor)
			}
			// ReadHeader over the same bytes must agree.
			if _, err := ReadHeader(bytes.NewReader(tc.file), int64(len(tc.file))); err == nil {
				t.Errorf("ReadHeader accepted the file")
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestOpenAccepts(t *testing.T) {
	dir := t.TempDir()
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	cases := []struct {
		name     string
		file     []byte
		tensors  []TensorInfo // expected, in data order
		metadata map[string]string
	}{
		{"empty", craft(`{}`, nil), nil, nil},
		{"empty padded", craft(`{}      `, nil), nil, nil},
		{"empty metadata", craft(`{"__metadata__":{}}`, nil), nil, map[string]string{}},
		{"metadata and whitespace", craft("{ \"__metadata__\" : {\"format\":\"pt\"}\n}\n  ", nil), nil,
			map[string]string{"format": "pt"}},
		{"scalar", craft(`{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, data[:4]),
			[]TensorInfo{{Name: "s", DType: tensor.F32, Shape: tensor.Shape{}, Begin: 0, End: 4}}, nil},
		{"zero-size tensors", craft(`{"z2":{"dtype":"BF16","shape":[3,0],"data_offsets":[4,4]},`+
			`"s":{"dtype":"I32","shape":[],"data_offsets":[0,4]},`+
			`"z1":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, data[:4]),
			[]TensorInfo{
				{Name: "z1", DType: tensor.F32, Shape: tensor.Shape{0}, Begin: 0, End: 0},
				{Name: "s", DType: tensor.I32, Shape: tensor.Shape{}, Begin: 0, End: 4},
				{Name: "z2", DType: tensor.BF16, Shape: tensor.Shape{3, 0}, Begin: 4, End: 4},
			}, nil},
		{"header out of data order", craft(`{"b":{"dtype":"U8","shape":[2,4],"data_offsets":[4,12]},`+
			`"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}`, data),
			[]TensorInfo{
				{Name: "a", DType: tensor.F8_E4M3, Shape: tensor.Shape{4}, Begin: 0, End: 4},
				{Name: "b", DType: tensor.U8, Shape: tensor.Shape{2, 4}, Begin: 4, End: 12},
			}, nil},
		{"sub-byte", craft(`{"q":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}`, data[:2]),
			[]TensorInfo{{Name: "q", DType: tensor.F4, Shape: tensor.Shape{4}, Begin: 0, End: 2}}, nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, "ok"+itoa(i)+".safetensors", tc.file)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(f.Tensors) != len(tc.tensors) {
				t.Fatalf("got %d tensors, want %d: %+v", len(f.Tensors), len(tc.tensors), f.Tensors)
			}
			for j, want := range tc.tensors {
				got := f.Tensors[j]
				if got.Name != want.Name || got.DType != want.DType || !got.Shape.Equal(want.Shape) ||
					got.Begin != want.Begin || got.End != want.End {
					t.Errorf("tensor %d = %+v, want %+v", j, got, want)
				}
				b, err := f.Data(want.Name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, data[want.Begin:want.End]) {
					t.Errorf("Data(%q) = %v, want %v", want.Name, b, data[want.Begin:want.End])
				}
				if off := f.FileOffset(got); int(off)+len(b) > len(tc.file) || !bytes.Equal(tc.file[off:off+int64(len(b))], b) {
					t.Errorf("FileOffset(%q) = %d does not locate its bytes", want.Name, off)
				}
			}
			if (f.Metadata == nil) != (tc.metadata == nil) || len(f.Metadata) != len(tc.metadata) {
				t.Fatalf("metadata = %#v, want %#v", f.Metadata, tc.metadata)
			}
			for k, v := range tc.metadata {
				if f.Metadata[k] != v {
					t.Errorf("metadata[%q] = %q, want %q", k, f.Metadata[k], v)
				}
			}
		})
	}
}

func TestFileAccessors(t *testing.T) {
	path := writeFile(t, t.TempDir(), "a.safetensors",
		craft(`{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`, []byte{1, 2, 3, 4}))
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Tensor("nope"); ok {
		t.Error("Tensor found a missing name")
	}
	if _, err := f.Data("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Data(missing) error = %v", err)
	}
	tt, err := f.Load("w")
	if err != nil || tt.DType != tensor.BF16 || !tt.Shape.Equal(tensor.Shape{2}) || !bytes.Equal(tt.Data, []byte{1, 2, 3, 4}) {
		t.Errorf("Load = %+v, %v", tt, err)
	}
	if cap(tt.Data) != len(tt.Data) {
		t.Errorf("Data slice has spare capacity %d: appends would write into the mapping", cap(tt.Data))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Data("w"); err == nil {
		t.Error("Data after Close succeeded")
	}
}

func TestOpenMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "absent.safetensors"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open(dir) = %v", err)
	}
}
