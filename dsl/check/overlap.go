package check

import (
	"fmt"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
)

// checkTensorOverlaps reports two rules (or two names of one rule) that can
// be active together and whose patterns on one side can match the same
// tensor name: on that side's import or export, two rules would produce, or
// consume, one tensor.
func (c *checker) checkTensorOverlaps() {
	type side struct {
		t     *truleInfo
		i     int
		ref   *syntax.Ref
		pat   ir.Pattern
		elems []elem
	}
	collect := func(right bool) []side {
		var out []side
		for _, t := range c.trules {
			refs, tr := t.refs(right), t.rule.Left
			if right {
				tr = t.rule.Right
			}
			for i, r := range tr {
				out = append(out, side{t, i, refs[i], r.Pattern, elems(r.Pattern)})
			}
		}
		return out
	}
	for _, right := range []bool{false, true} {
		sideName := "left"
		if right {
			sideName = "right"
		}
		all := collect(right)
		for i, a := range all {
			for _, b := range all[i+1:] {
				if a.t != b.t && exclusive(a.t.ctx, b.t.ctx) {
					continue
				}
				witness, ok := overlap(a.elems, b.elems)
				if !ok {
					continue
				}
				what := "rule"
				if a.t.ignore != nil {
					what = "ignore"
				}
				where := fmt.Sprintf("the %s at line %d", what, a.ref.Pos.Line)
				if a.t == b.t {
					where = "this " + what
				}
				hint := "rules that can be active together must not share a tensor; put them in different variants or in the two branches of a when/else"
				if a.t.ignore != nil || b.t.ignore != nil {
					hint = "an ignored tensor must be one that no rule active with the ignore converts; narrow the ignored name, or put the two in different variants or branches of a when/else"
				}
				if normalized(a.pat) == normalized(b.pat) {
					c.errorf(b.ref.Name.Span, hint, "%s name %s is also named by %s (%s)", sideName, patternText(b.pat), where, patternText(a.pat))
				} else {
					c.errorf(b.ref.Name.Span, hint, "%s pattern %s overlaps %s in %s: both match %s", sideName, patternText(b.pat), patternText(a.pat), where, witness)
				}
			}
		}
	}
}

// normalized prints a pattern with its variables renamed away.
func normalized(p ir.Pattern) string {
	s := ""
	for _, part := range p.Parts {
		if part.Var != "" {
			s += fmt.Sprintf("{+%d}", part.Off)
		} else {
			s += part.Lit
		}
	}
	return s
}

// elem is one element of a pattern: a literal byte, or a placeholder that
// matches [0-9]+ spelling a number of at least min ({v+2} never spells 0
// or 1).
type elem struct {
	lit    byte
	digits bool
	min    int64
}

func elems(p ir.Pattern) []elem {
	var out []elem
	for _, part := range p.Parts {
		if part.Var != "" {
			out = append(out, elem{digits: true, min: part.Off})
			continue
		}
		for i := range len(part.Lit) {
			out = append(out, elem{lit: part.Lit[i]})
		}
	}
	return out
}

// pstate is a position in a pattern: before element i, or (in) inside the
// placeholder at i having matched at least one digit, whose number so far
// is val (capped at the placeholder's min, all that matters).
type pstate struct {
	i   int
	in  bool
	val int64
}

// step returns the states after reading byte ch from st.
func step(p []elem, st pstate, ch byte) []pstate {
	var out []pstate
	if st.in {
		if ch >= '0' && ch <= '9' {
			out = append(out, pstate{st.i, true, digitVal(st.val, ch, p[st.i].min)})
		}
		// Leaving the placeholder is an epsilon move handled by closure.
		return out
	}
	if st.i >= len(p) {
		return nil
	}
	e := p[st.i]
	switch {
	case e.digits && ch >= '0' && ch <= '9':
		out = append(out, pstate{st.i, true, digitVal(0, ch, e.min)})
	case !e.digits && e.lit == ch:
		out = append(out, pstate{st.i + 1, false, 0})
	}
	return out
}

// digitVal appends a digit to a number, capped at limit.
func digitVal(val int64, ch byte, limit int64) int64 {
	if val >= limit {
		return limit
	}
	return min(val*10+int64(ch-'0'), limit)
}

// closure adds the epsilon move out of a placeholder, taken once its
// number reaches the placeholder's min.
func closure(p []elem, st pstate) []pstate {
	if st.in && st.val >= p[st.i].min {
		return []pstate{st, {st.i + 1, false, 0}}
	}
	return []pstate{st}
}

// overlap reports whether some string matches both patterns, and one such
// string (placeholders spelled 0 where they can be, else with 9s).
func overlap(a, b []elem) (string, bool) {
	type node struct{ a, b pstate }
	type prev struct {
		from node
		ch   byte
		root bool
	}
	seen := map[node]prev{}
	var queue []node
	push := func(n node, p prev) {
		for _, x := range closure(a, n.a) {
			for _, y := range closure(b, n.b) {
				m := node{x, y}
				if _, ok := seen[m]; ok {
					continue
				}
				// An epsilon move reads nothing: m has n's predecessor.
				seen[m] = p
				queue = append(queue, m)
			}
		}
	}
	push(node{}, prev{root: true})
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if !n.a.in && !n.b.in && n.a.i == len(a) && n.b.i == len(b) {
			var out []byte
			for cur := n; ; {
				p := seen[cur]
				if p.root {
					break
				}
				out = append(out, p.ch)
				cur = p.from
			}
			for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
				out[i], out[j] = out[j], out[i]
			}
			return string(out), true
		}
		for _, ch := range candidates(a, n.a, b, n.b) {
			for _, x := range step(a, n.a, ch) {
				for _, y := range step(b, n.b, ch) {
					push(node{x, y}, prev{from: n, ch: ch})
				}
			}
		}
	}
	return "", false
}

// candidates lists the bytes worth trying from a pair of states.
func candidates(a []elem, sa pstate, b []elem, sb pstate) []byte {
	var out []byte
	digit := false
	for _, x := range []struct {
		p  []elem
		st pstate
	}{{a, sa}, {b, sb}} {
		switch {
		case x.st.in:
			digit = true
		case x.st.i < len(x.p) && x.p[x.st.i].digits:
			digit = true
		case x.st.i < len(x.p):
			out = append(out, x.p[x.st.i].lit)
		}
	}
	if digit {
		out = append(out, '0', '9')
	}
	return out
}
