package ir

import (
	"fmt"
	"slices"
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

// TestOpTableConsistent checks what the checker and the engine take from
// each op's properties against the op's own shape rule, by trying every op
// on a grid of small arguments and inputs: the tuple size it gives
// (PerElement, Outs, OutsFrom), whether it may change a dtype
// (ChangesDType), that a Layout op that may is a layout on some call, and
// that stack and unstack are each other's inverse. An op none of the grid
// fits fails too: widen the grid for it.
func TestOpTableConsistent(t *testing.T) {
	for _, d := range Ops() {
		if LookupOp(d.Name) != d || d.Doc == "" || d.Infer == nil || d.Batched == nil {
			t.Errorf("op %s: not in the table under its name, or without Doc, Infer or Batched", d.Name)
		}
		if (d.Inverse == nil) != (d.NoInverseWhy != "") {
			t.Errorf("op %s: an op has either an inverse or NoInverseWhy", d.Name)
		}
		outsFrom := d.outsParam()
		switch {
		case d.PerElement && (d.Outs != 0 || d.OutsFrom != ""):
			t.Errorf("op %s: per-element, so it gives one tensor per input; Outs and OutsFrom must be unset", d.Name)
		case !d.PerElement && (d.Outs > 0) == (d.OutsFrom != ""):
			t.Errorf("op %s: set exactly one of Outs and OutsFrom", d.Name)
		case d.OutsFrom != "" && (outsFrom < 0 || d.Params[outsFrom].Kind != ParamInt && d.Params[outsFrom].Kind != ParamIntList):
			t.Errorf("op %s: OutsFrom %q is not an integer or list parameter", d.Name, d.OutsFrom)
		}
		hasRange := slices.ContainsFunc(d.Params, func(p Param) bool { return p.Kind == ParamRange })
		if hasRange != (d.Gather != GatherNone) || (d.Gather != GatherNone && !d.PerElement) {
			t.Errorf("op %s: a gather op (and only one) takes a range, and works per element", d.Name)
		}

		accepted, changes, layout := 0, false, false
		// The first call that contradicts each property, reported once.
		bad := map[string]string{}
		contradicts := func(what, how string) {
			if _, seen := bad[what]; !seen {
				bad[what] = how
				t.Errorf("op %s: %s: %s", d.Name, what, how)
			}
		}
		for _, args := range gridArgs(d.Params) {
			for n := max(d.MinIn, 1); n <= d.MinIn+1 && (d.MaxIn < 0 || n <= d.MaxIn); n++ {
				for _, in := range gridInputs(n) {
					c := Call{Def: d, Args: args}
					out, err := InferCall(c, in)
					if err != nil {
						continue
					}
					accepted++
					want := d.Outs
					switch {
					case d.PerElement:
						want = n
					case d.Outs == 0 && d.Params[outsFrom].Kind == ParamIntList:
						want = len(args[outsFrom].Ints)
					case d.Outs == 0:
						want = args[outsFrom].Int
					}
					if len(out) != want {
						contradicts("PerElement, Outs or OutsFrom", fmt.Sprintf("%v on %v gives %d tensors, they say %d", c, in, len(out), want))
					}
					for i, o := range out {
						from := in[0]
						if d.PerElement {
							from = in[i]
						}
						if o.DType != from.DType {
							changes = true
							if !d.ChangesDType {
								contradicts("ChangesDType unset", fmt.Sprintf("%v on %v gives %v", c, in, o))
							}
						}
					}
					layout = layout || c.IsLayout(in)
					if d.Gather != GatherNone {
						inv, _ := InverseCalls(c, in)
						if len(inv) == 0 || inv[0].Def.Gather == GatherNone || inv[0].Def.Gather == d.Gather {
							contradicts("Gather", fmt.Sprintf("the inverse of %v is %v, not the other gather", c, inv))
						}
					}
				}
			}
		}
		if accepted == 0 {
			t.Errorf("op %s: no argument and input of the grid fits it; widen gridArgs or gridInputs", d.Name)
			continue
		}
		if d.ChangesDType && !changes {
			t.Errorf("op %s: declared ChangesDType, and no call of the grid changes a dtype", d.Name)
		}
		if d.Layout && !layout {
			t.Errorf("op %s: declared Layout, and no call of the grid is one (it changes the dtype on every call)", d.Name)
		}
		t.Logf("op %s: %d calls of the grid fit", d.Name, accepted)
	}
}

// gridArgs lists argument lists for params: every combination of a few
// values per parameter, an optional one also left out.
func gridArgs(params []Param) [][]ArgValue {
	out := [][]ArgValue{nil}
	for _, p := range params {
		var vals []ArgValue
		switch p.Kind {
		case ParamInt:
			vals = []ArgValue{{Int: 0}, {Int: 1}, {Int: 2}}
		case ParamIntList:
			vals = []ArgValue{{Ints: []int{2, -1}}, {Ints: []int{1, 1, -1}}}
		case ParamDType:
			vals = []ArgValue{{DType: tensor.BF16}, {DType: tensor.F32}}
		case ParamRange:
			vals = []ArgValue{{Var: "e", Bound: 2}}
		}
		if p.Optional {
			vals = append(vals, ArgValue{})
		}
		var next [][]ArgValue
		for _, a := range out {
			for _, v := range vals {
				next = append(next, append(slices.Clone(a), v))
			}
		}
		out = next
	}
	return out
}

// gridInputs lists tuples of n tensors of one dtype and shapes from a small
// set (MXFP4 blocks and scales among them).
func gridInputs(n int) [][]TensorType {
	shapes := []tensor.Shape{{4, 64}, {4, 2, 16}, {4, 2}, {2, 4, 64}}
	var out [][]TensorType
	var walk func(prefix []tensor.Shape)
	walk = func(prefix []tensor.Shape) {
		if len(prefix) == n {
			for _, dt := range []tensor.DType{tensor.U8, tensor.BF16, tensor.F32} {
				in := make([]TensorType, n)
				for i, s := range prefix {
					in[i] = TensorType{DType: dt, Shape: s}
				}
				out = append(out, in)
			}
			return
		}
		for _, s := range shapes {
			walk(append(slices.Clone(prefix), s))
		}
	}
	walk(nil)
	return out
}
