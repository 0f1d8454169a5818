package ir

// PerIteration splits a rule's conditions into those decided once for the
// rule (outer) and those that read one of its loop variables (inner),
// decided for each binding: `when hybrid_block_layout[l] == "m2"` inside
// `each l` picks the layers a rule applies to.
func PerIteration(when []Expr, loops []Loop) (outer, inner []Expr) {
	for _, w := range when {
		if readsLoop(w, loops) {
			inner = append(inner, w)
		} else {
			outer = append(outer, w)
		}
	}
	return outer, inner
}

// readsLoop reports whether e reads a loop variable (a loop variable hides
// a let or config key of its name).
func readsLoop(e Expr, loops []Loop) bool {
	if r, ok := e.(*Ref); ok {
		for _, l := range loops {
			if len(r.Path) == 1 && r.Path[0] == l.Var {
				return true
			}
		}
		return false
	}
	for _, x := range Operands(e) {
		if readsLoop(x, loops) {
			return true
		}
	}
	return false
}
