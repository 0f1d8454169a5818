package ir

import (
	"fmt"
	"slices"

	"github.com/mapper-dev/mapper/runtime/tensor"
)

// The op table: every pipeline op the language knows, with its parameters,
// arity, shape rule, inverse and the properties the engine plans by. The
// checker uses it for lint-time shape checks on sample configs and the
// engine's planner uses the very same functions, so the two can never
// disagree about shapes. What only the engine knows (an op's kernel, its
// byte-range form) is registered against these same OpDefs in engine/ops.go;
// docs/internals.md says what adding an op takes.

// ParamKind is the kind of one op parameter.
type ParamKind int

const (
	ParamInt     ParamKind = iota // an integer expression
	ParamIntList                  // [e1, e2, ...]; -1 means "infer this one"
	ParamDType                    // a dtype name such as BF16
	ParamRange                    // `v < N`: binds v over 0..N-1
)

func (k ParamKind) String() string {
	return [...]string{"integer", "list of integers", "dtype", "range (v < N)"}[k]
}

// Param is one op parameter.
type Param struct {
	Name     string
	Kind     ParamKind
	Optional bool
}

// TensorType is what the planner knows of a tensor before any byte moves.
type TensorType struct {
	DType tensor.DType
	Shape tensor.Shape
}

func (t TensorType) String() string { return fmt.Sprintf("%v%v", t.DType, t.Shape) }

// ArgValue is an evaluated op argument.
type ArgValue struct {
	Int   int
	Ints  []int
	DType tensor.DType
	Var   string
	Bound int
}

// Call is an op with evaluated arguments, as the planner and executor use it.
type Call struct {
	Def  *OpDef
	Args []ArgValue
}

func (c Call) String() string {
	s := c.Def.Name
	if len(c.Args) == 0 {
		return s
	}
	s += "("
	for i, a := range c.Args {
		if i > 0 {
			s += ", "
		}
		switch c.Def.Params[i].Kind {
		case ParamInt:
			s += fmt.Sprint(a.Int)
		case ParamIntList:
			s += fmt.Sprint(a.Ints)
		case ParamDType:
			s += a.DType.String()
		case ParamRange:
			s += fmt.Sprintf("%s < %d", a.Var, a.Bound)
		}
	}
	return s + ")"
}

// OpDef describes one op.
type OpDef struct {
	Name   string
	Doc    string // one line for docs and did-you-mean hints
	Params []Param
	// MinIn/MaxIn bound the tuple size the op takes (MaxIn -1: unbounded).
	MinIn, MaxIn int
	// PerElement ops apply to each tuple element independently (n -> n).
	PerElement bool
	// Outs is how many tensors an op that is not per-element gives, or 0
	// when its parameter OutsFrom says (an integer's value, a list's
	// length). The checker counts tuples with it and the docs print it.
	Outs     int
	OutsFrom string
	// ChangesDType: an output may have another dtype than the input. The
	// planner takes an undeclared dtype from the input only through
	// pipelines without such an op.
	ChangesDType bool
	// Layout ops only copy bytes of their input, in runs of at least
	// everything after their axis, so the engine can run them on byte
	// ranges. One that also ChangesDType is a layout only where a call
	// keeps the dtype (a cast to the dtype a tensor has): see IsLayout.
	Layout bool
	// Gather marks stack and unstack, which bind a range variable and work
	// across the bindings of it rather than on one tuple.
	Gather Gather
	// Infer returns the output types, or an error explaining the mismatch.
	Infer func(a []ArgValue, in []TensorType) ([]TensorType, error)
	// Inverse returns the call that undoes this one, given the input types the
	// op was applied to. Nil when the op has no inverse (the rule is one-way).
	Inverse func(a []ArgValue, in []TensorType) Call
	// Batched reports whether the op treats axis 0 as a batch: applying it to
	// consecutive slices along axis 0 and concatenating the results gives the
	// same bytes as applying it to the whole tensor. The executor chunks such
	// pipelines to bound memory.
	Batched func(a []ArgValue) bool
	// NoInverseWhy explains, for ops without an inverse, what is lost.
	NoInverseWhy string
}

// Gather says whether an op gathers over its range parameter, and which
// side of the rule names one tensor per value of the variable.
type Gather int

const (
	GatherNone    Gather = iota
	GatherStack          // the names before the op: bindings join into a new axis 0
	GatherUnstack        // the names after it: axis 0 is cut into bindings
)

// Ops lists every op, sorted by name.
func Ops() []*OpDef {
	out := make([]*OpDef, 0, len(opTable))
	for _, d := range opTable {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *OpDef) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// LookupOp returns the op with the given name, or nil.
func LookupOp(name string) *OpDef { return opTable[name] }

// MustCall builds a Call for a known op; for tests and inverse construction.
func MustCall(name string, args ...ArgValue) Call {
	d := LookupOp(name)
	if d == nil {
		panic("unknown op " + name)
	}
	return Call{Def: d, Args: args}
}

var opTable map[string]*OpDef

func init() {
	opTable = map[string]*OpDef{}
	for _, d := range []*OpDef{
		OpTranspose, OpConcat, OpSplit, OpUnzip, OpZip, OpStack, OpUnstack,
		OpFlatten, OpUnflatten, OpMXFP4, OpMXFP4Encode, OpCast, OpSlice,
	} {
		opTable[d.Name] = d
	}
}

// alwaysBatched is Batched for ops that never mix axis 0 with the others.
func alwaysBatched([]ArgValue) bool { return true }

func axisIn(rank, axis int, what string) error {
	if axis < 0 || axis >= rank {
		return fmt.Errorf("%s %d is out of range for a tensor of rank %d", what, axis, rank)
	}
	return nil
}

// dtypeIs reports whether d is one of want. tensor.Invalid stands for a dtype
// the map file did not declare, which lint-time checks cannot know and accept.
func dtypeIs(d tensor.DType, want ...tensor.DType) bool {
	return d == tensor.Invalid || slices.Contains(want, d)
}

func sameAll(in []TensorType, except int) error {
	for i := 1; i < len(in); i++ {
		if in[i].DType != in[0].DType && in[i].DType != tensor.Invalid && in[0].DType != tensor.Invalid {
			return fmt.Errorf("element %d is %v but element 0 is %v", i, in[i].DType, in[0].DType)
		}
		if len(in[i].Shape) != len(in[0].Shape) {
			return fmt.Errorf("element %d has shape %v but element 0 has %v (different rank)", i, in[i].Shape, in[0].Shape)
		}
		for d := range in[0].Shape {
			if d != except && in[i].Shape[d] != in[0].Shape[d] {
				return fmt.Errorf("element %d has shape %v but element 0 has %v (dimension %d differs)", i, in[i].Shape, in[0].Shape, d)
			}
		}
	}
	return nil
}

// OpTranspose is the transpose op: swap two axes of each tensor.
var OpTranspose = &OpDef{
	Name: "transpose", Doc: "swap two axes of each tensor",
	Params: []Param{{Name: "a", Kind: ParamInt}, {Name: "b", Kind: ParamInt}},
	MinIn:  1, MaxIn: -1, PerElement: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		t := in[0]
		if err := axisIn(len(t.Shape), a[0].Int, "axis"); err != nil {
			return nil, err
		}
		if err := axisIn(len(t.Shape), a[1].Int, "axis"); err != nil {
			return nil, err
		}
		s := t.Shape.Clone()
		s[a[0].Int], s[a[1].Int] = s[a[1].Int], s[a[0].Int]
		return []TensorType{{t.DType, s}}, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call { return call("transpose", a...) },
	Batched: func(a []ArgValue) bool { return a[0].Int > 0 && a[1].Int > 0 },
}

// OpConcat is the concat op: join the tuple's tensors along an axis.
var OpConcat = &OpDef{
	Name: "concat", Doc: "join the tuple's tensors along an axis",
	Params: []Param{{Name: "axis", Kind: ParamInt}},
	MinIn:  2, MaxIn: -1, Outs: 1, Layout: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		if err := axisIn(len(in[0].Shape), a[0].Int, "axis"); err != nil {
			return nil, err
		}
		if err := sameAll(in, a[0].Int); err != nil {
			return nil, fmt.Errorf("cannot concatenate on axis %d: %v", a[0].Int, err)
		}
		s := in[0].Shape.Clone()
		for _, t := range in[1:] {
			n, ok := AddInt(int64(s[a[0].Int]), int64(t.Shape[a[0].Int]))
			if !ok {
				return nil, fmt.Errorf("concatenated axis %d overflows a 64-bit integer", a[0].Int)
			}
			s[a[0].Int] = int(n)
		}
		return []TensorType{{in[0].DType, s}}, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call {
		sizes := make([]int, len(in))
		for i, t := range in {
			sizes[i] = t.Shape[a[0].Int]
		}
		return call("split", a[0], ArgValue{Ints: sizes})
	},
	Batched: func(a []ArgValue) bool { return a[0].Int > 0 },
}

// OpSplit is the split op: cut a tensor along an axis into pieces of the given sizes.
var OpSplit = &OpDef{
	Name: "split", Doc: "cut a tensor along an axis into pieces of the given sizes",
	Params: []Param{{Name: "axis", Kind: ParamInt}, {Name: "sizes", Kind: ParamIntList}},
	MinIn:  1, MaxIn: 1, OutsFrom: "sizes", Layout: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		t := in[0]
		ax := a[0].Int
		if err := axisIn(len(t.Shape), ax, "axis"); err != nil {
			return nil, err
		}
		sizes, err := resolveSizes(a[1].Ints, t.Shape[ax], "split sizes", false)
		if err != nil {
			return nil, err
		}
		out := make([]TensorType, len(sizes))
		for i, n := range sizes {
			s := t.Shape.Clone()
			s[ax] = n
			out[i] = TensorType{t.DType, s}
		}
		return out, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call { return call("concat", a[0]) },
	Batched: func(a []ArgValue) bool { return a[0].Int > 0 },
}

// resolveSizes fills in one -1 entry so that the sizes add up (or multiply,
// when product is set) to total.
func resolveSizes(sizes []int, total int, what string, product bool) ([]int, error) {
	if len(sizes) == 0 {
		return nil, fmt.Errorf("%s: empty list", what)
	}
	out := slices.Clone(sizes)
	known, free := 0, -1
	if product {
		known = 1
	}
	for i, n := range out {
		switch {
		case n == -1 && free < 0:
			free = i
		case n == -1:
			return nil, fmt.Errorf("%s %v: only one size may be -1", what, sizes)
		case n < 0 || (product && n == 0):
			return nil, fmt.Errorf("%s %v: size %d is not positive", what, sizes, n)
		case product:
			k, ok := MulInt(int64(known), int64(n))
			if !ok {
				return nil, fmt.Errorf("%s %v: their product overflows a 64-bit integer", what, sizes)
			}
			known = int(k)
		default:
			k, ok := AddInt(int64(known), int64(n))
			if !ok {
				return nil, fmt.Errorf("%s %v: their sum overflows a 64-bit integer", what, sizes)
			}
			known = int(k)
		}
	}
	if free >= 0 {
		if product {
			if total%known != 0 {
				return nil, fmt.Errorf("%s %v do not divide %d", what, sizes, total)
			}
			out[free] = total / known
		} else {
			if known > total {
				return nil, fmt.Errorf("%s %v add up to more than %d", what, sizes, total)
			}
			out[free] = total - known
		}
		return out, nil
	}
	if known != total {
		verb := "add up to"
		if product {
			verb = "multiply to"
		}
		return nil, fmt.Errorf("%s %v %s %d, not %d", what, sizes, verb, known, total)
	}
	return out, nil
}

// OpUnzip is the unzip op: de-interleave: element i along the axis goes to output i mod n.
var OpUnzip = &OpDef{
	Name: "unzip", Doc: "de-interleave: element i along the axis goes to output i mod n",
	Params: []Param{{Name: "axis", Kind: ParamInt}, {Name: "n", Kind: ParamInt}},
	MinIn:  1, MaxIn: 1, OutsFrom: "n", Layout: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		t, ax, n := in[0], a[0].Int, a[1].Int
		if err := axisIn(len(t.Shape), ax, "axis"); err != nil {
			return nil, err
		}
		if n < 2 {
			return nil, fmt.Errorf("unzip needs n >= 2, got %d", n)
		}
		if t.Shape[ax]%n != 0 {
			return nil, fmt.Errorf("axis %d has size %d, not a multiple of %d", ax, t.Shape[ax], n)
		}
		out := make([]TensorType, n)
		for i := range out {
			s := t.Shape.Clone()
			s[ax] /= n
			out[i] = TensorType{t.DType, s}
		}
		return out, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call { return call("zip", a[0]) },
	Batched: func(a []ArgValue) bool { return a[0].Int > 0 },
}

// OpZip is the zip op: interleave the tuple's tensors along an axis.
var OpZip = &OpDef{
	Name: "zip", Doc: "interleave the tuple's tensors along an axis",
	Params: []Param{{Name: "axis", Kind: ParamInt}},
	MinIn:  2, MaxIn: -1, Outs: 1, Layout: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		if err := axisIn(len(in[0].Shape), a[0].Int, "axis"); err != nil {
			return nil, err
		}
		if err := sameAll(in, -1); err != nil {
			return nil, fmt.Errorf("cannot interleave: %v", err)
		}
		s := in[0].Shape.Clone()
		n, ok := MulInt(int64(s[a[0].Int]), int64(len(in)))
		if !ok {
			return nil, fmt.Errorf("interleaved axis %d overflows a 64-bit integer", a[0].Int)
		}
		s[a[0].Int] = int(n)
		return []TensorType{{in[0].DType, s}}, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call {
		return call("unzip", a[0], ArgValue{Int: len(in)})
	},
	Batched: func(a []ArgValue) bool { return a[0].Int > 0 },
}

// OpStack is the stack op: gather one tensor per value of v (bound in the names before it) into a new axis 0.
var OpStack = &OpDef{
	Name: "stack", Doc: "gather one tensor per value of v (bound in the names before it) into a new axis 0",
	Params: []Param{{Name: "range", Kind: ParamRange}},
	MinIn:  1, MaxIn: -1, PerElement: true, Gather: GatherStack,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		if a[0].Bound < 1 {
			return nil, fmt.Errorf("stack over %s < %d: the range is empty", a[0].Var, a[0].Bound)
		}
		return []TensorType{{in[0].DType, append(tensor.Shape{a[0].Bound}, in[0].Shape...)}}, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call { return call("unstack", a...) },
	Batched: alwaysBatched,
}

// OpUnstack is the unstack op: cut axis 0 into one tensor per value of v (used in the names after it).
var OpUnstack = &OpDef{
	Name: "unstack", Doc: "cut axis 0 into one tensor per value of v (used in the names after it)",
	Params: []Param{{Name: "range", Kind: ParamRange}},
	MinIn:  1, MaxIn: -1, PerElement: true, Gather: GatherUnstack,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		t := in[0]
		if len(t.Shape) == 0 || t.Shape[0] != a[0].Bound {
			return nil, fmt.Errorf("unstack over %s < %d needs axis 0 of size %d, got shape %v", a[0].Var, a[0].Bound, a[0].Bound, t.Shape)
		}
		return []TensorType{{t.DType, t.Shape[1:].Clone()}}, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call { return call("stack", a...) },
	Batched: alwaysBatched,
}

// OpFlatten is the flatten op: merge axes a..b (inclusive) into one.
var OpFlatten = &OpDef{
	Name: "flatten", Doc: "merge axes a..b (inclusive) into one",
	Params: []Param{{Name: "a", Kind: ParamInt}, {Name: "b", Kind: ParamInt}},
	MinIn:  1, MaxIn: -1, PerElement: true, Layout: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		t, lo, hi := in[0], a[0].Int, a[1].Int
		if err := axisIn(len(t.Shape), lo, "axis"); err != nil {
			return nil, err
		}
		if err := axisIn(len(t.Shape), hi, "axis"); err != nil {
			return nil, err
		}
		if hi < lo {
			return nil, fmt.Errorf("flatten(%d, %d): the second axis comes before the first", lo, hi)
		}
		n := int64(1)
		for _, d := range t.Shape[lo : hi+1] {
			var ok bool
			if n, ok = MulInt(n, int64(d)); !ok {
				return nil, fmt.Errorf("flatten(%d, %d) of %v: the merged axis overflows a 64-bit integer", lo, hi, t.Shape)
			}
		}
		s := append(append(t.Shape[:lo].Clone(), int(n)), t.Shape[hi+1:]...)
		return []TensorType{{t.DType, s}}, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call {
		// The leading size is left to be inferred so that the inverse still
		// works on a chunk of axis 0.
		sizes := append([]int{-1}, in[0].Shape[a[0].Int+1:a[1].Int+1]...)
		return call("unflatten", a[0], ArgValue{Ints: sizes})
	},
	Batched: alwaysBatched,
}

// OpUnflatten is the unflatten op: split one axis into several of the given sizes (one may be -1).
var OpUnflatten = &OpDef{
	Name: "unflatten", Doc: "split one axis into several of the given sizes (one may be -1)",
	Params: []Param{{Name: "axis", Kind: ParamInt}, {Name: "sizes", Kind: ParamIntList}},
	MinIn:  1, MaxIn: -1, PerElement: true, Layout: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		t, ax := in[0], a[0].Int
		if err := axisIn(len(t.Shape), ax, "axis"); err != nil {
			return nil, err
		}
		sizes, err := resolveSizes(a[1].Ints, t.Shape[ax], "unflatten sizes", true)
		if err != nil {
			return nil, err
		}
		s := append(append(t.Shape[:ax].Clone(), sizes...), t.Shape[ax+1:]...)
		return []TensorType{{t.DType, s}}, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call {
		return call("flatten", a[0], ArgValue{Int: a[0].Int + len(a[1].Ints) - 1})
	},
	Batched: func(a []ArgValue) bool { return a[0].Int > 0 || a[1].Ints[0] == -1 },
}

// OpMXFP4 is the mxfp4 op: decode (blocks [..., G, 16] U8, scales [..., G] U8) to values [..., G*32] (BF16 unless a dtype is given).
var OpMXFP4 = &OpDef{
	Name: "mxfp4", Doc: "decode (blocks [..., G, 16] U8, scales [..., G] U8) to values [..., G*32] (BF16 unless a dtype is given)",
	Params: []Param{{Name: "dtype", Kind: ParamDType, Optional: true}},
	MinIn:  2, MaxIn: 2, Outs: 1, ChangesDType: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		b, s := in[0], in[1]
		if !dtypeIs(b.DType, tensor.U8) || !dtypeIs(s.DType, tensor.U8) {
			return nil, fmt.Errorf("mxfp4 needs U8 blocks and scales, got %v and %v", b.DType, s.DType)
		}
		if len(b.Shape) < 2 || b.Shape[len(b.Shape)-1] != 16 {
			return nil, fmt.Errorf("mxfp4 blocks must end in a dimension of 16 bytes (32 values), got shape %v", b.Shape)
		}
		if !b.Shape[:len(b.Shape)-1].Equal(s.Shape) {
			return nil, fmt.Errorf("mxfp4 scales must have shape %v (the blocks' shape without its last 16), got %v", b.Shape[:len(b.Shape)-1], s.Shape)
		}
		dt := outFloat(a)
		if dt != tensor.BF16 && dt != tensor.F32 {
			return nil, fmt.Errorf("mxfp4 decodes to BF16 or F32, not %v", dt)
		}
		shape := s.Shape.Clone()
		n, ok := MulInt(int64(shape[len(shape)-1]), 32)
		if !ok {
			return nil, fmt.Errorf("mxfp4 of scales %v: the decoded axis overflows a 64-bit integer", s.Shape)
		}
		shape[len(shape)-1] = int(n)
		return []TensorType{{dt, shape}}, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call { return call("mxfp4_encode") },
	Batched: alwaysBatched,
}

func outFloat(a []ArgValue) tensor.DType {
	if len(a) > 0 && a[0].DType != tensor.Invalid {
		return a[0].DType
	}
	return tensor.BF16
}

// OpMXFP4Encode is the mxfp4_encode op: quantize values [..., K] (K a multiple of 32) to (blocks [..., K/32, 16], scales [..., K/32]) with the reference quantizer.
var OpMXFP4Encode = &OpDef{
	Name: "mxfp4_encode", Doc: "quantize values [..., K] (K a multiple of 32) to (blocks [..., K/32, 16], scales [..., K/32]) with the reference quantizer",
	MinIn: 1, MaxIn: 1, Outs: 2, ChangesDType: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		t := in[0]
		if !dtypeIs(t.DType, tensor.BF16, tensor.F16, tensor.F32) {
			return nil, fmt.Errorf("mxfp4_encode needs BF16, F16 or F32 values, got %v", t.DType)
		}
		if len(t.Shape) == 0 || t.Shape[len(t.Shape)-1]%32 != 0 {
			return nil, fmt.Errorf("mxfp4_encode needs a last dimension that is a multiple of 32, got shape %v", t.Shape)
		}
		s := t.Shape.Clone()
		s[len(s)-1] /= 32
		b := append(s.Clone(), 16)
		return []TensorType{{tensor.U8, b}, {tensor.U8, s}}, nil
	},
	NoInverseWhy: "quantization loses precision; write the rule from the quantized side with mxfp4, whose inverse re-encodes",
	Batched:      alwaysBatched,
}

// OpCast is the cast op: convert each tensor to a dtype (BF16, F16, F32; F8_E4M3 and F8_E5M2 as sources).
var OpCast = &OpDef{
	Name: "cast", Doc: "convert each tensor to a dtype (BF16, F16, F32; F8_E4M3 and F8_E5M2 as sources)",
	Params: []Param{{Name: "dtype", Kind: ParamDType}},
	MinIn:  1, MaxIn: -1, PerElement: true, ChangesDType: true, Layout: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		to, from := a[0].DType, in[0].DType
		okTo := to == tensor.BF16 || to == tensor.F16 || to == tensor.F32
		okFrom := dtypeIs(from, tensor.BF16, tensor.F16, tensor.F32, tensor.F8_E4M3, tensor.F8_E5M2)
		if !okTo || !okFrom {
			return nil, fmt.Errorf("cannot cast %v to %v", from, to)
		}
		return []TensorType{{to, in[0].Shape.Clone()}}, nil
	},
	Inverse: func(a []ArgValue, in []TensorType) Call {
		return call("cast", ArgValue{DType: in[0].DType})
	},
	Batched: alwaysBatched,
}

// OpSlice is the slice op: keep indices [start, end) of one axis.
var OpSlice = &OpDef{
	Name: "slice", Doc: "keep indices [start, end) of one axis",
	Params: []Param{{Name: "axis", Kind: ParamInt}, {Name: "start", Kind: ParamInt}, {Name: "end", Kind: ParamInt}},
	MinIn:  1, MaxIn: -1, PerElement: true, Layout: true,
	Infer: func(a []ArgValue, in []TensorType) ([]TensorType, error) {
		t, ax := in[0], a[0].Int
		if err := axisIn(len(t.Shape), ax, "axis"); err != nil {
			return nil, err
		}
		if a[1].Int < 0 || a[1].Int > a[2].Int || a[2].Int > t.Shape[ax] {
			return nil, fmt.Errorf("slice [%d, %d) is out of range for axis %d of size %d", a[1].Int, a[2].Int, ax, t.Shape[ax])
		}
		s := t.Shape.Clone()
		s[ax] = a[2].Int - a[1].Int
		return []TensorType{{t.DType, s}}, nil
	},
	NoInverseWhy: "the cut-off part is lost",
	Batched:      func(a []ArgValue) bool { return a[0].Int > 0 },
}

// InferCall applies one call to a tuple, handling per-element ops and arity.
func InferCall(c Call, in []TensorType) ([]TensorType, error) {
	d := c.Def
	if len(in) < d.MinIn || (d.MaxIn >= 0 && len(in) > d.MaxIn) {
		return nil, fmt.Errorf("%s takes %s, got %d", d.Name, d.Takes(), len(in))
	}
	if !d.PerElement {
		return d.Infer(c.Args, in)
	}
	var out []TensorType
	for i, t := range in {
		o, err := d.Infer(c.Args, []TensorType{t})
		if err != nil {
			if len(in) > 1 {
				return nil, fmt.Errorf("element %d: %v", i, err)
			}
			return nil, err
		}
		out = append(out, o...)
	}
	return out, nil
}

// InverseCalls returns what undoes c applied to in, and false when c has no
// inverse. For a per-element op it returns one call per element (their
// arguments may differ: a cast back to each element's own dtype); otherwise
// one call for the whole tuple.
func InverseCalls(c Call, in []TensorType) ([]Call, bool) {
	if c.Def.Inverse == nil {
		return nil, false
	}
	if !c.Def.PerElement {
		return []Call{c.Def.Inverse(c.Args, in)}, true
	}
	out := make([]Call, len(in))
	for i := range in {
		out[i] = c.Def.Inverse(c.Args, in[i:i+1])
	}
	return out, true
}

func call(name string, args ...ArgValue) Call { return Call{Def: opTable[name], Args: args} }

// Takes says how many tensors the op takes, as errors quote it: "exactly 2
// tensors", "2 or more tensors".
func (d *OpDef) Takes() string {
	switch {
	case d.MinIn == d.MaxIn && d.MinIn == 1:
		return "exactly 1 tensor"
	case d.MinIn == d.MaxIn:
		return fmt.Sprintf("exactly %d tensors", d.MinIn)
	case d.MaxIn < 0:
		return fmt.Sprintf("%d or more tensors", d.MinIn)
	}
	return fmt.Sprintf("%d to %d tensors", d.MinIn, d.MaxIn)
}

// OutCount returns how many tensors the op gives for n inputs, and false
// when that depends on an argument that is not a constant. args are as
// written (a rule before its config is known).
func (d *OpDef) OutCount(args []Arg, n int) (int, bool) {
	switch {
	case d.PerElement:
		return n, true
	case d.Outs > 0:
		return d.Outs, true
	}
	i := d.outsParam()
	if i < 0 || i >= len(args) {
		return 0, false
	}
	if d.Params[i].Kind == ParamIntList {
		return len(args[i].List), args[i].List != nil
	}
	if args[i].Expr == nil {
		return 0, false
	}
	v, err := EvalInt(args[i].Expr, noNames{})
	return int(v), err == nil
}

// outsParam is the index of the parameter OutsFrom names, or -1.
func (d *OpDef) outsParam() int {
	if d.OutsFrom == "" {
		return -1
	}
	return slices.IndexFunc(d.Params, func(p Param) bool { return p.Name == d.OutsFrom })
}

// noNames sets nothing: constant expressions evaluate, others fail.
type noNames struct{}

func (noNames) Lookup([]string) (any, bool) { return nil, false }

// Arity describes, for the docs, the tuple sizes an op takes and gives:
// "n -> n (each)" for a per-element op, "2+ -> 1" for concat, "1 -> n" for
// unzip(axis, n).
func (d *OpDef) Arity() string {
	if d.PerElement {
		return "n -> n (each)"
	}
	in := fmt.Sprint(d.MinIn)
	switch {
	case d.MaxIn < 0:
		in += "+"
	case d.MaxIn != d.MinIn:
		in += fmt.Sprintf("..%d", d.MaxIn)
	}
	out := fmt.Sprint(d.Outs)
	if i := d.outsParam(); d.Outs == 0 && i >= 0 {
		out = d.OutsFrom
		if d.Params[i].Kind == ParamIntList {
			out = "len(" + d.OutsFrom + ")"
		}
	}
	return in + " -> " + out
}

// IsLayout reports whether c applied to in only rearranges their bytes: a
// Layout op, and for one that may change the dtype, a call that does not.
func (c Call) IsLayout(in []TensorType) bool {
	if !c.Def.Layout {
		return false
	}
	if !c.Def.ChangesDType {
		return true
	}
	out, err := InferCall(c, in)
	if err != nil {
		return false
	}
	for i, t := range out {
		from := in[0]
		if c.Def.PerElement {
			from = in[i]
		}
		if t.DType != from.DType {
			return false
		}
	}
	return true
}
