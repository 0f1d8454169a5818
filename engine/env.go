package engine

import (
	"fmt"

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

func (e *env) Lookup(path []string) (any, bool) {
	if len(path) == 1 {
		if v, ok := e.loop[path[0]]; ok {
			return v, true
		}
	}
	return e.cfg.Lookup(path)
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

// posString prints a rule position as file:line.
func posString(p ir.Pos) string { return fmt.Sprintf("%s:%d", p.File, p.Line) }
