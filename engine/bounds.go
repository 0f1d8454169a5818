package engine

import (
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// The loop bounds of a mapping come from the input's config, which says
// nothing reliable about the input's tensors: num_hidden_layers = 10^9 must
// not make the planner allocate per layer for a minute and a few gigabytes
// before it notices that layer 2 does not exist. Two facts bound every loop:
//
//   - Each binding of a rule reads input tensors of its own (two bindings
//     reading the same tensor is an error), so no loop runs more times than
//     the input has tensors. That caps each bound before anything is
//     allocated for its bindings.
//   - Once the input holds nothing at all for a binding (no tensor under
//     model.layers.7. when planning layer 7), the loop has run past the
//     checkpoint; the rule stops there with one error instead of one per
//     remaining layer. So nested loops, each within the cap, still visit
//     only bindings that some input tensor names, plus the one that stops.

// expansion walks the bindings of one rule's loops.
type expansion struct {
	p     *Plan
	rule  *ir.TensorRule
	limit int // the input's tensor count
}

// boundError is a loop bound the input cannot satisfy. A rule that hits one
// has unplanned bindings, so tensors it would have claimed are not reported
// as unclaimed. Rules of one each-block hit the same bound: key tells
// them apart, so that it is reported once.
type boundError struct {
	key string
	err error
}

func (e *boundError) Error() string { return e.err.Error() }
func (e *boundError) Unwrap() error { return e.err }

// loopError is a bound the input cannot satisfy, marked at `v < bound` of
// its loop (or where its expression failed to evaluate).
func loopError(key string, l ir.Loop, err error, format string, args ...any) *boundError {
	return &boundError{key: key, err: spanError(l.Pos, l.End, err, "each %s < %s%s", l.Var, ir.Format(l.Bound), fmt.Sprintf(format, args...))}
}

// loopText prints `each l < layers (file:line:col)`.
func loopText(l ir.Loop) string {
	return fmt.Sprintf("each %s < %s (%s:%d:%d)", l.Var, ir.Format(l.Bound), l.Pos.File, l.Pos.Line, l.Pos.Column)
}

// valueText prints what a bound came to and the config values behind it:
// "layers = num_hidden_layers = 3", or "a * b = 12 (a = 3, b = 4)".
func valueText(x ir.Expr, n int64, e *env) string {
	b := ir.Bindings(x, e)
	if _, ref := x.(*ir.Ref); ref && b != "" {
		return b
	}
	s := fmt.Sprintf("%s = %d", ir.Format(x), n)
	if b != "" {
		s += " (" + b + ")"
	}
	return s
}

// each calls f once per combination of loop values, outermost first.
func (x *expansion) each(loops []ir.Loop, e *env, f func(*env) error) error {
	if len(loops) == 0 {
		return f(e)
	}
	l := loops[0]
	n, err := ir.EvalInt(l.Bound, e)
	if err != nil {
		return loopError(fmt.Sprintf("%v %v", l.Pos, e.loop), l, err, "")
	}
	key := fmt.Sprintf("%v %d", l.Pos, n)
	switch {
	case n < 0:
		return loopError(key, l, nil, ": %s; a bound must not be negative", valueText(l.Bound, n, e))
	case n > int64(x.limit):
		return loopError(key, l, nil, ": %s, more than the %d tensors of the input, and each binding reads tensors of its own",
			valueText(l.Bound, n, e), x.limit)
	}
	for i := range n {
		if err := x.each(loops[1:], e.with(l.Var, i), f); err != nil {
			return err
		}
	}
	return nil
}

// pastInput reports, for a binding whose first source is missing, whether
// the input holds nothing at all for this binding: then the loop runs past
// the checkpoint. It returns the error to stop the rule with, or nil.
func (x *expansion) pastInput(e *env, missing string) error {
	r, p := x.rule, x.p
	if len(r.Loops) == 0 {
		return nil
	}
	refs := r.Left
	if p.Direction == Export {
		refs = r.Right
	}
	for _, ref := range refs {
		prefix, ok := bindingPrefix(ref.Pattern, r.Loops, e)
		if !ok || p.hasPrefix(prefix) {
			return nil
		}
	}
	var vals, loops []string
	key := ""
	for _, l := range r.Loops {
		vals = append(vals, fmt.Sprintf("%s = %d", l.Var, e.loop[l.Var]))
		n, _ := ir.EvalInt(l.Bound, e) // it evaluated when the loop started
		loops = append(loops, fmt.Sprintf("%s with %s", loopText(l), valueText(l.Bound, n, e)))
		key += fmt.Sprintf("%v %d;", l.Pos, e.loop[l.Var])
	}
	return &boundError{key: key, err: &TensorError{Tensor: missing, Pos: r.Pos, End: r.End, Msg: fmt.Sprintf(
		"missing from the input %s checkpoint %s, which holds no tensor at all for %s: %s runs past the checkpoint, so the rule stops there",
		p.From, p.InputDir, strings.Join(vals, ", "), strings.Join(loops, " and "))}}
}

// bindingPrefix expands a tensor pattern up to its last loop variable and
// the literal text after it through the next '.': "model.layers.7." for
// model.layers.{l}.mlp.w. Every tensor of that binding starts with it. ok is
// false when the pattern reads no loop variable.
func bindingPrefix(pat ir.Pattern, loops []ir.Loop, e *env) (string, bool) {
	last := -1
	for i, part := range pat.Parts {
		for _, l := range loops {
			if part.Var == l.Var {
				last = i
			}
		}
	}
	if last < 0 {
		return "", false
	}
	var b strings.Builder
	for _, part := range pat.Parts[:last+1] {
		if part.Var == "" {
			b.WriteString(part.Lit)
			continue
		}
		v, ok := e.loop[part.Var]
		if !ok {
			return "", false // a stacked variable before the loop's own: no simple prefix
		}
		b.WriteString(strconv.FormatInt(v+part.Off, 10))
	}
	if last+1 < len(pat.Parts) && pat.Parts[last+1].Var == "" {
		lit := pat.Parts[last+1].Lit
		if i := strings.IndexByte(lit, '.'); i >= 0 {
			b.WriteString(lit[:i+1])
		} else {
			b.WriteString(lit)
		}
	}
	return b.String(), true
}

// hasPrefix reports whether an input tensor name starts with prefix (the
// names are sorted).
func (p *Plan) hasPrefix(prefix string) bool {
	ts := p.src.Tensors
	i := sort.Search(len(ts), func(i int) bool { return ts[i].Name >= prefix })
	return i < len(ts) && strings.HasPrefix(ts[i].Name, prefix)
}

// gatherBound checks the bound of a stack or unstack before names are made
// for each of its values: it must not be empty. When the input side's names use the variable,
// every value reads a tensor of its own, so the input's tensor count caps
// it; an output side's bound is checked against the tensor it comes from by
// the op's shape rule.
func gatherBound(v string, n int64, inputUses bool, limit int) error {
	if n < 1 {
		// Not just a stack of nothing: there would be no tensor to plan with.
		return fmt.Errorf("the range %s < %d is empty", v, n)
	}
	if inputUses && n > int64(limit) {
		return fmt.Errorf("the range %s < %d is larger than the %d tensors of the input, and each value reads a tensor of its own", v, n, limit)
	}
	return nil
}

// addSize adds two byte counts, refusing a total beyond int64.
func addSize(a, b int64) (int64, error) {
	s, ok := ir.AddInt(a, b)
	if !ok || s < 0 {
		return 0, fmt.Errorf("%d + %d bytes overflows a 64-bit integer", a, b)
	}
	return s, nil
}

// satMul and satAdd are for memory estimates, which are only compared with
// a budget: a product past int64 needs more than any budget, and saying so
// with MaxInt64 is exact enough.
func satMul(a, b int64) int64 {
	if n, ok := ir.MulInt(a, b); ok {
		return n
	}
	return math.MaxInt64
}

func satAdd(a, b int64) int64 {
	if n, ok := ir.AddInt(a, b); ok {
		return n
	}
	return math.MaxInt64
}

// scaleBytes is size * u / units for 0 <= u <= units, without the
// intermediate product overflowing (a chunk's offset in a large tensor).
func scaleBytes(size, u, units int64) int64 {
	hi, lo := bits.Mul64(uint64(size), uint64(u))
	q, _ := bits.Div64(hi, lo, uint64(units))
	return int64(q)
}

// checkSizes refuses types whose element count or byte size leaves int64:
// declared shapes are products of config values, and every size computed
// from a type later (chunks, offsets, memory) relies on this bound.
func checkSizes(ts []ir.TensorType) error {
	for _, t := range ts {
		d := t.DType
		if d == tensor.Invalid {
			d = tensor.F32 // as typesBytes assumes
		}
		if _, err := t.Shape.ByteSize(d); err != nil {
			return err
		}
	}
	return nil
}
