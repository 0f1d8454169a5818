package ir

import (
	"math"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

func TestCheckedInt(t *testing.T) {
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	type op func(a, b int64) (int64, bool)
	for _, tc := range []struct {
		name string
		f    op
		a, b int64
		want int64
		ok   bool
	}{
		{"add", AddInt, maxI, 1, 0, false},
		{"add", AddInt, maxI, -1, maxI - 1, true},
		{"add", AddInt, minI, -1, 0, false},
		{"add", AddInt, minI, maxI, -1, true},
		{"sub", SubInt, minI, 1, 0, false},
		{"sub", SubInt, 0, minI, 0, false},
		{"sub", SubInt, -1, minI, maxI, true},
		{"sub", SubInt, maxI, -1, 0, false},
		{"mul", MulInt, 1 << 32, 1 << 31, 0, false},
		{"mul", MulInt, 1 << 32, 1 << 30, 1 << 62, true},
		{"mul", MulInt, -1 << 32, 1 << 31, minI, true},
		{"mul", MulInt, minI, -1, 0, false},
		{"mul", MulInt, -1, minI, 0, false},
		{"mul", MulInt, 0, minI, 0, true},
		{"mul", MulInt, 3037000500, 3037000500, 0, false},
		{"mul", MulInt, 3037000499, 3037000499, 9223372030926249001, true},
		{"quo", QuoInt, minI, -1, 0, false},
		{"quo", QuoInt, minI, 1, minI, true},
	} {
		got, ok := tc.f(tc.a, tc.b)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s(%d, %d) = %d, %v; want %d, %v", tc.name, tc.a, tc.b, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := NegInt(minI); ok {
		t.Error("NegInt(MinInt64) did not report the overflow")
	}
	if n, ok := NegInt(maxI); !ok || n != -maxI {
		t.Errorf("NegInt(MaxInt64) = %d, %v", n, ok)
	}
}

// TestInferOverflow: shape rules that add or multiply sizes refuse a result
// beyond int64 instead of wrapping it (a zero-size input tensor can carry any
// dimension; a sizes list comes from the config).
func TestInferOverflow(t *testing.T) {
	bf, u8 := tensor.BF16, tensor.U8
	const big = math.MaxInt64/2 + 1
	for _, tc := range []struct {
		call    Call
		in      []TensorType
		wantErr string
	}{
		{MustCall("concat", ArgValue{Int: 0}), []TensorType{tt(bf, big, 0), tt(bf, big, 0)}, "concatenated axis 0 overflows"},
		{MustCall("zip", ArgValue{Int: 0}), []TensorType{tt(bf, big, 0), tt(bf, big, 0)}, "interleaved axis 0 overflows"},
		{MustCall("flatten", ArgValue{Int: 0}, ArgValue{Int: 1}), []TensorType{tt(bf, 1<<32, 1<<32, 0)}, "the merged axis overflows"},
		{MustCall("unflatten", ArgValue{Int: 0}, ArgValue{Ints: []int{1 << 32, 1 << 32}}), []TensorType{tt(bf, 0, 2)}, "their product overflows"},
		{MustCall("split", ArgValue{Int: 0}, ArgValue{Ints: []int{big, big, -1}}), []TensorType{tt(bf, 8)}, "their sum overflows"},
		{MustCall("mxfp4"), []TensorType{tt(u8, 0, 1<<60, 16), tt(u8, 0, 1<<60)}, "the decoded axis overflows"},
	} {
		got, err := InferCall(tc.call, tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v on %v = %v, %v; want error %q", tc.call, tc.in, got, err, tc.wantErr)
		}
	}
}
