package check

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// maxBindings bounds how many loop bindings of one rule a sample check
// visits; samples are meant to be tiny.
const maxBindings = 256

// sampleEnv is a sample used as the left config: loop variables, then lets,
// then config paths.
type sampleEnv struct {
	bad    map[string]bool // names reported as undefined: reading one is not news
	cfg    map[string]any
	lets   map[string]any
	vars   map[string]any
	failed map[string]bool // lets that could not be evaluated (already reported)
	hit    bool            // an evaluation read a failed let
}

func (e *sampleEnv) Lookup(path []string) (any, bool) {
	if len(path) == 1 {
		if v, ok := e.vars[path[0]]; ok {
			return v, true
		}
	}
	if e.bad[strings.Join(path, ".")] {
		e.hit = true
		return nil, false
	}
	if len(path) == 1 {
		if e.failed[path[0]] {
			e.hit = true
			return nil, false
		}
		if v, ok := e.lets[path[0]]; ok {
			return v, true
		}
	}
	return ir.LookupPath(e.cfg, path)
}

// sampleRun is the state of one sample's check.
type sampleRun struct {
	c      *checker
	s      *sampleInfo
	env    *sampleEnv
	active string // the variant this sample selects ("" when none)
}

// fail reports an evaluation error unless it comes from a let that already
// failed.
func (r *sampleRun) fail(span syntax.Span, err error) {
	if r.env.hit {
		r.env.hit = false
		return
	}
	msg := err.Error()
	var ee *ir.EvalError
	if errors.As(err, &ee) {
		msg = ee.Msg
	}
	r.c.errorf(span, "", "in sample %s: %s", r.s.ir.Name, msg)
}

func (r *sampleRun) span(e ir.Expr) syntax.Span { return r.c.spans[e] }

func (r *sampleRun) evalInt(e ir.Expr) (int64, bool) {
	if r.c.constFailed(e) {
		return 0, false // reported once, without a sample
	}
	r.env.hit = false
	v, err := ir.EvalInt(e, r.env)
	if err != nil {
		r.fail(r.span(e), err)
		return 0, false
	}
	return v, true
}

func (r *sampleRun) evalBool(e ir.Expr) (bool, bool) {
	if r.c.constFailed(e) {
		return false, false
	}
	r.env.hit = false
	v, err := ir.EvalBool(e, r.env)
	if err != nil {
		r.fail(r.span(e), err)
		return false, false
	}
	return v, true
}

// applies reports whether a rule's variant is the active one and all its
// conditions hold.
func (r *sampleRun) applies(ctx *ctxInfo) bool {
	if ctx.variant != "" && ctx.variant != r.active {
		return false
	}
	for _, w := range ctx.when {
		ok, good := r.evalBool(w)
		if !good || !ok {
			return false
		}
	}
	return true
}

// checkSamples evaluates each sample and pushes declared shapes through the
// pipelines of the rules it activates.
func (c *checker) checkSamples() {
	for _, s := range c.samples {
		r := &sampleRun{c: c, s: s, env: &sampleEnv{
			bad: c.bad,
			cfg: ir.DeepCopy(s.config).(map[string]any), lets: map[string]any{}, vars: map[string]any{}, failed: map[string]bool{},
		}}
		r.run()
	}
}

func (r *sampleRun) run() {
	c := r.c
	// The variant: the first whose condition holds, else the default.
	def := ""
	for _, v := range c.variants {
		if v.ir.When == nil {
			def = v.ir.Name
			continue
		}
		if ok, good := r.evalBool(v.ir.When); good && ok && r.active == "" {
			r.active = v.ir.Name
		}
	}
	if r.active == "" {
		r.active = def
	}
	// Complete the config with the defaults of the renames that apply.
	for _, cr := range c.crules {
		if cr.rule.Kind != ir.ConfigRename || cr.rule.LeftDefault == nil {
			continue
		}
		rules := []*ir.ConfigRule{cr.rule}
		if e := cr.rule.Each; e != nil {
			// Once per node of the sample, as the engine does (ir.ExpandEach).
			rules = ir.ExpandEach(rules, r.env.cfg, false)
		}
		for _, rule := range rules {
			if !r.applies(&ctxInfo{variant: cr.ctx.variant, when: rule.When}) {
				continue
			}
			// A value standing for the default (`for "auto"`) is replaced
			// like an absent key.
			segs := rule.Left.Segs
			if v, ok := ir.LookupPath(r.env.cfg, segs); ok {
				if !rule.HasLeftFor || !ir.ValuesEqual(v, rule.LeftFor) {
					continue
				}
				parent, _ := ir.LookupPath(r.env.cfg, segs[:len(segs)-1])
				delete(parent.(map[string]any), segs[len(segs)-1])
			}
			r.env.hit = false
			v, err := ir.Eval(rule.LeftDefault, r.env)
			if err != nil {
				r.fail(r.span(cr.rule.LeftDefault), err)
				continue
			}
			_ = setPath(r.env.cfg, segs, v)
		}
	}
	for _, l := range c.letOrder {
		r.env.hit = false
		v, err := ir.Eval(l.ir.Expr, r.env)
		if err != nil && c.constFailed(l.ir.Expr) {
			r.env.failed[l.ir.Name] = true // reported once, without a sample
			continue
		}
		if err != nil {
			r.fail(r.span(l.ir.Expr), err)
			r.env.failed[l.ir.Name] = true
			continue
		}
		r.env.lets[l.ir.Name] = v
	}
	// The right values the sample's config computes (sqrt(hidden_size)).
	for _, cr := range c.crules {
		if cr.rule.ValueExpr == nil || !r.applies(cr.ctx) || c.constFailed(cr.rule.ValueExpr) {
			continue
		}
		r.env.hit = false
		v, err := ir.Eval(cr.rule.ValueExpr, r.env)
		if err != nil {
			r.fail(r.span(cr.rule.ValueExpr), err)
			continue
		}
		// A computed left value the sample states must be the one its
		// other keys give, or its import would be refused.
		if cr.rule.Kind == ir.ConfigLeftConst && cr.rule.Each == nil {
			if have, ok := ir.LookupPath(r.env.cfg, cr.rule.Left.Segs); ok && !ir.ValuesEqual(have, v) {
				r.fail(r.span(cr.rule.ValueExpr), fmt.Errorf("%s is %s, and %s = %s", strings.Join(cr.rule.Left.Segs, "."), ir.FormatValue(have), ir.Format(cr.rule.ValueExpr), ir.FormatValue(v)))
			}
		}
	}
	for _, t := range c.trules {
		if t.broken || (t.ctx.variant != "" && t.ctx.variant != r.active) {
			continue
		}
		n := 0
		r.loops(t, 0, &n)
		for _, l := range t.rule.Loops {
			delete(r.env.vars, l.Var)
		}
	}
}

// loops visits the bindings of a rule's loops; it returns false once a
// problem has been reported (one report per rule and sample).
func (r *sampleRun) loops(t *truleInfo, k int, n *int) bool {
	if k == len(t.rule.Loops) {
		*n++
		return r.binding(t)
	}
	l := t.rule.Loops[k]
	bound, ok := r.evalInt(l.Bound)
	if !ok {
		return false
	}
	if bound < 0 {
		r.c.errorf(r.span(l.Bound), "", "in sample %s: each %s < %s: the bound is %d; it must not be negative", r.s.ir.Name, l.Var, ir.Format(l.Bound), bound)
		return false
	}
	for v := int64(0); v < bound && *n < maxBindings; v++ {
		r.env.vars[l.Var] = v
		if !r.loops(t, k+1, n) {
			return false
		}
	}
	return true
}

// binding checks one rule under one loop binding.
func (r *sampleRun) binding(t *truleInfo) bool {
	rule := t.rule
	for _, w := range rule.When {
		ok, good := r.evalBool(w)
		if !good {
			return false
		}
		if !ok {
			return true
		}
	}
	for _, b := range t.extra {
		r.env.vars[b.name] = int64(0)
	}
	defer func() {
		for _, b := range t.extra {
			delete(r.env.vars, b.name)
		}
	}()
	left, lok := r.types(rule.Left)
	right, rok := r.types(rule.Right)
	if lok == nil || rok == nil {
		return false
	}
	for _, ok := range lok {
		if !ok {
			return true // a left ref without a declared shape: nothing to push through
		}
	}
	types := left
	for i, op := range rule.Ops {
		call := ir.Call{Def: op.Def}
		for j, a := range op.Args {
			v, ok := r.argValue(op.Def.Params[j], a)
			if !ok {
				return false
			}
			call.Args = append(call.Args, v)
		}
		out, err := ir.InferCall(call, types)
		if err != nil {
			r.c.errorf(t.node.Ops[i].Span, "", "in sample %s: %s: %v", r.s.ir.Name, call, err)
			return false
		}
		types = out
	}
	if len(types) != len(rule.Right) {
		return true // reported as an arity error
	}
	for i, ref := range rule.Right {
		got, want := types[i], right[i]
		if !rok[i] && ref.DType == "" {
			continue
		}
		same := true
		if rok[i] && !got.Shape.Equal(want.Shape) {
			same = false
		}
		if want.DType != tensor.Invalid && got.DType != tensor.Invalid && want.DType != got.DType {
			same = false
		}
		if !same {
			verb := "the pipeline gives"
			if len(rule.Ops) == 0 {
				verb = "the left side is"
			}
			r.c.errorf(t.node.Right.Refs[i].Span, "", "in sample %s: %s %s, but %s is declared %s",
				r.s.ir.Name, verb, typeText(got), patternText(ref.Pattern), declText(ref, want, rok[i]))
			return false
		}
	}
	return true
}

// types evaluates the declared types of refs; ok[i] tells whether ref i has a
// declared shape. A nil ok means an evaluation failed (reported).
func (r *sampleRun) types(refs []*ir.TensorRef) ([]ir.TensorType, []bool) {
	out := make([]ir.TensorType, len(refs))
	ok := make([]bool, len(refs))
	for i, ref := range refs {
		if d, err := tensor.ParseDType(ref.DType); err == nil {
			out[i].DType = d
		}
		if ref.Shape == nil {
			continue
		}
		ok[i] = true
		out[i].Shape = tensor.Shape{}
		for _, e := range ref.Shape {
			if r.c.constFailed(e) {
				return nil, nil // reported once, without a sample
			}
			r.env.hit = false
			v, err := ir.EvalDim(e, r.env)
			if err != nil {
				r.fail(r.span(e), err)
				return nil, nil
			}
			out[i].Shape = append(out[i].Shape, int(v))
		}
	}
	return out, ok
}

func (r *sampleRun) argValue(p ir.Param, a ir.Arg) (ir.ArgValue, bool) {
	var v ir.ArgValue
	switch p.Kind {
	case ir.ParamInt:
		n, ok := r.evalInt(a.Expr)
		v.Int = int(n)
		return v, ok
	case ir.ParamIntList:
		for _, e := range a.List {
			n, ok := r.evalInt(e)
			if !ok {
				return v, false
			}
			v.Ints = append(v.Ints, int(n))
		}
		if v.Ints == nil {
			v.Ints = []int{}
		}
	case ir.ParamDType:
		v.DType, _ = tensor.ParseDType(a.DType)
	case ir.ParamRange:
		n, ok := r.evalInt(a.Bound)
		v.Var, v.Bound = a.Var, int(n)
		return v, ok
	}
	return v, true
}

// typeText prints a type as BF16[4 8], or [4 8] when the dtype is unknown.
func typeText(t ir.TensorType) string {
	s := fmt.Sprint([]int(t.Shape))
	if t.DType == tensor.Invalid {
		return s
	}
	return t.DType.String() + s
}

func declText(ref *ir.TensorRef, want ir.TensorType, hasShape bool) string {
	var b strings.Builder
	if ref.DType != "" {
		b.WriteString(ref.DType)
	}
	if hasShape {
		b.WriteString(fmt.Sprint([]int(want.Shape)))
	}
	return b.String()
}
