package engine

import (
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/configmap"
)

// env resolves names in .map expressions: loop variables, then what the
// config translation resolves (let names, then dotted paths of the
// completed left config).
type env struct {
	cfg  *configmap.Env
	loop map[string]int64
}

var _ ir.LetEnv = (*env)(nil)

func (e *env) Lookup(path []string) (any, bool) {
	if len(path) == 1 {
		if v, ok := e.loop[path[0]]; ok {
			return v, true
		}
	}
	return e.cfg.Lookup(path)
}

// Let returns the definition of let name (ir.LetEnv), unless a loop
// variable hides it.
func (e *env) Let(name string) (ir.Expr, bool) {
	if _, ok := e.loop[name]; ok {
		return nil, false
	}
	return e.cfg.Let(name)
}

// with returns a copy of e with one more loop variable bound.
func (e *env) with(name string, v int64) *env {
	loop := make(map[string]int64, len(e.loop)+1)
	for k, x := range e.loop {
		loop[k] = x
	}
	loop[name] = v
	return &env{cfg: e.cfg, loop: loop}
}
