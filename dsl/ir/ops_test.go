package ir

import (
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

func tt(d tensor.DType, s ...int) TensorType { return TensorType{DType: d, Shape: s} }

// The shape rules the planner and the linter share: each result or refusal
// below is a layout fact a mapping relies on.
func TestInferCall(t *testing.T) {
	bf, u8 := tensor.BF16, tensor.U8
	for _, tc := range []struct {
		call    Call
		in      []TensorType
		want    []TensorType
		wantErr string
	}{
		{MustCall("mxfp4"), []TensorType{tt(u8, 4, 128, 90, 16), tt(u8, 4, 128, 90)}, []TensorType{tt(bf, 4, 128, 2880)}, ""},
		{MustCall("mxfp4"), []TensorType{tt(u8, 4, 128, 90, 8), tt(u8, 4, 128, 90)}, nil, "must end in a dimension of 16"},
		{MustCall("mxfp4"), []TensorType{tt(u8, 4, 128, 90, 16), tt(u8, 4, 90, 128)}, nil, "scales must have shape [4 128 90]"},
		{MustCall("mxfp4_encode"), []TensorType{tt(bf, 4, 64, 2880)}, []TensorType{tt(u8, 4, 64, 90, 16), tt(u8, 4, 64, 90)}, ""},
		{MustCall("mxfp4_encode"), []TensorType{tt(bf, 4, 64, 100)}, nil, "multiple of 32"},
		{MustCall("concat", ArgValue{Int: 0}), []TensorType{tt(bf, 8, 64), tt(bf, 8, 64)}, []TensorType{tt(bf, 16, 64)}, ""},
		{MustCall("concat", ArgValue{Int: 0}), []TensorType{tt(bf, 8, 64), tt(bf, 8, 32)}, nil, "dimension 1 differs"},
		{MustCall("unzip", ArgValue{Int: 1}, ArgValue{Int: 2}), []TensorType{tt(bf, 4, 6)}, []TensorType{tt(bf, 4, 3), tt(bf, 4, 3)}, ""},
		{MustCall("unzip", ArgValue{Int: 1}, ArgValue{Int: 2}), []TensorType{tt(bf, 4, 5)}, nil, "not a multiple of 2"},
		{MustCall("split", ArgValue{Int: 0}, ArgValue{Ints: []int{3, -1}}), []TensorType{tt(bf, 8, 2)}, []TensorType{tt(bf, 3, 2), tt(bf, 5, 2)}, ""},
		{MustCall("split", ArgValue{Int: 0}, ArgValue{Ints: []int{3, 3}}), []TensorType{tt(bf, 8, 2)}, nil, "add up to 6, not 8"},
		{MustCall("flatten", ArgValue{Int: 0}, ArgValue{Int: 1}), []TensorType{tt(bf, 4, 6, 2)}, []TensorType{tt(bf, 24, 2)}, ""},
		{MustCall("unflatten", ArgValue{Int: 0}, ArgValue{Ints: []int{-1, 6}}), []TensorType{tt(bf, 24, 2)}, []TensorType{tt(bf, 4, 6, 2)}, ""},
		{MustCall("unflatten", ArgValue{Int: 0}, ArgValue{Ints: []int{-1, 5}}), []TensorType{tt(bf, 24, 2)}, nil, "do not divide 24"},
		{MustCall("stack", ArgValue{Var: "e", Bound: 3}), []TensorType{tt(bf, 2, 2)}, []TensorType{tt(bf, 3, 2, 2)}, ""},
		{MustCall("unstack", ArgValue{Var: "e", Bound: 3}), []TensorType{tt(bf, 4, 2)}, nil, "needs axis 0 of size 3"},
		{MustCall("transpose", ArgValue{Int: 0}, ArgValue{Int: 2}), []TensorType{tt(bf, 2, 3)}, nil, "axis 2 is out of range"},
		{MustCall("cast", ArgValue{DType: tensor.F32}), []TensorType{tt(tensor.F8_E4M3, 2)}, []TensorType{tt(tensor.F32, 2)}, ""},
		{MustCall("cast", ArgValue{DType: tensor.F8_E4M3}), []TensorType{tt(bf, 2)}, nil, "cannot cast BF16 to F8_E4M3"},
		{MustCall("zip", ArgValue{Int: 1}), []TensorType{tt(bf, 2, 3)}, nil, "takes 2 or more tensors, got 1"},
	} {
		got, err := InferCall(tc.call, tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v on %v: error %v, want %q", tc.call, tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Fatalf("%v on %v = %v, %v; want %v", tc.call, tc.in, got, err, tc.want)
		}
		for i := range got {
			if got[i].DType != tc.want[i].DType || !got[i].Shape.Equal(tc.want[i].Shape) {
				t.Errorf("%v on %v: output %d is %v, want %v", tc.call, tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

// The inverse of every invertible op, applied to its output, gives back the
// input types: the planner relies on this to derive exports.
func TestInverseTypes(t *testing.T) {
	bf := tensor.BF16
	for _, tc := range []struct {
		call Call
		in   []TensorType
	}{
		{MustCall("concat", ArgValue{Int: 0}), []TensorType{tt(bf, 8, 64), tt(bf, 4, 64)}},
		{MustCall("flatten", ArgValue{Int: 0}, ArgValue{Int: 1}), []TensorType{tt(bf, 4, 6, 2)}},
		{MustCall("unzip", ArgValue{Int: 2}, ArgValue{Int: 2}), []TensorType{tt(bf, 4, 6, 8)}},
		{MustCall("mxfp4"), []TensorType{tt(tensor.U8, 4, 2, 16), tt(tensor.U8, 4, 2)}},
		{MustCall("cast", ArgValue{DType: tensor.F32}), []TensorType{tt(tensor.F16, 3), tt(bf, 2)}},
		{MustCall("stack", ArgValue{Var: "e", Bound: 5}), []TensorType{tt(bf, 3, 2)}},
	} {
		out, err := InferCall(tc.call, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		inv, ok := InverseCalls(tc.call, tc.in)
		if !ok {
			t.Fatalf("%v has no inverse", tc.call)
		}
		var back []TensorType
		if tc.call.Def.PerElement {
			for i, o := range out {
				r, err := InferCall(inv[i%len(inv)], []TensorType{o})
				if err != nil {
					t.Fatalf("inverse of %v: %v", tc.call, err)
				}
				back = append(back, r...)
			}
		} else if back, err = InferCall(inv[0], out); err != nil {
			t.Fatalf("inverse of %v: %v", tc.call, err)
		}
		for i := range tc.in {
			if back[i].DType != tc.in[i].DType || !back[i].Shape.Equal(tc.in[i].Shape) {
				t.Errorf("%v then %v: %v, want %v", tc.call, inv, back, tc.in)
			}
		}
	}
}
