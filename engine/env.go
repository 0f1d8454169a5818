package engine

import (
	"fmt"

	"github.com/mapper-dev/mapper/dsl/ir"
)

// env resolves names in .map expressions: loop variables, then let names,
// then dotted paths of the (completed) left config.
type env struct {
	left    map[string]any
	lets    map[string]any
	letDefs map[string]ir.Expr // how each let is defined, for errors
	loop    map[string]int64
}

func (e *env) Lookup(path []string) (any, bool) {
	if len(path) == 1 {
		if v, ok := e.loop[path[0]]; ok {
			return v, true
		}
		if v, ok := e.lets[path[0]]; ok {
			return v, true
		}
	}
	return ir.LookupPath(e.left, path)
}

// Let returns the definition of let name (ir.LetEnv), unless a loop
// variable hides it.
func (e *env) Let(name string) (ir.Expr, bool) {
	if _, ok := e.loop[name]; ok {
		return nil, false
	}
	x, ok := e.letDefs[name]
	return x, ok
}

// with returns a copy of e with one more loop variable bound.
func (e *env) with(name string, v int64) *env {
	loop := make(map[string]int64, len(e.loop)+1)
	for k, x := range e.loop {
		loop[k] = x
	}
	loop[name] = v
	return &env{left: e.left, lets: e.lets, letDefs: e.letDefs, loop: loop}
}

// newEnv evaluates the mapping's lets, in order, on a completed left config.
func newEnv(m *ir.Mapping, left map[string]any) (*env, error) {
	e := &env{left: left, lets: map[string]any{}, letDefs: map[string]ir.Expr{}, loop: map[string]int64{}}
	for _, l := range m.Lets {
		e.letDefs[l.Name] = l.Expr
		v, err := ir.Eval(l.Expr, e)
		if err != nil {
			return nil, fmt.Errorf("let %s: %w", l.Name, err)
		}
		e.lets[l.Name] = v
	}
	return e, nil
}

// active reports whether every condition holds.
func active(conds []ir.Expr, e *env) (bool, error) {
	for _, c := range conds {
		ok, err := ir.EvalBool(c, e)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// posString prints a rule position as file:line.
func posString(p ir.Pos) string { return fmt.Sprintf("%s:%d", p.File, p.Line) }
