package check

import (
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
)

func TestOverlap(t *testing.T) {
	pat := func(parts ...ir.PatternPart) []elem { return elems(ir.Pattern{Parts: parts}) }
	lit := func(s string) ir.PatternPart { return ir.PatternPart{Lit: s} }
	v := func(s string) ir.PatternPart { return ir.PatternPart{Var: s} }
	off := func(s string, n int64) ir.PatternPart { return ir.PatternPart{Var: s, Off: n} }
	for _, c := range []struct {
		a, b    []elem
		ok      bool
		witness string
	}{
		{pat(lit("a.b")), pat(lit("a.b")), true, "a.b"},
		{pat(lit("a.b")), pat(lit("a.c")), false, ""},
		{pat(lit("l."), v("i"), lit(".w")), pat(lit("l.12.w")), true, "l.12.w"},
		{pat(lit("l."), v("i"), lit(".w")), pat(lit("l.x.w")), false, ""},
		{pat(lit("l."), v("i"), lit(".w")), pat(lit("l."), v("j"), lit(".w")), true, "l.0.w"},
		{pat(lit("l."), v("i"), lit("."), v("j")), pat(lit("l.1."), v("k")), true, "l.1.0"},
		{pat(lit("l."), v("i")), pat(lit("l.")), false, ""},
		{pat(lit("e."), v("i"), lit(".w")), pat(lit("e."), v("i"), lit(".w.b")), false, ""},
		// {i+1} spells 1, 2, ...: never 0.
		{pat(lit("n."), off("i", 1), lit(".w")), pat(lit("n.0.w")), false, ""},
		{pat(lit("n."), off("i", 1), lit(".w")), pat(lit("n.1.w")), true, "n.1.w"},
		{pat(lit("n."), off("i", 1), lit(".w")), pat(lit("n.10.w")), true, "n.10.w"},
		{pat(lit("n."), off("i", 1), lit(".w")), pat(lit("n."), v("j"), lit(".w")), true, "n.9.w"},
		{pat(lit("n."), off("i", 12)), pat(lit("n.9")), false, ""},
		{pat(lit("n."), off("i", 12)), pat(lit("n.11")), false, ""},
		{pat(lit("n."), off("i", 12)), pat(lit("n.12")), true, "n.12"},
		{pat(lit("n."), off("i", 12)), pat(lit("n."), off("j", 3)), true, "n.90"},
	} {
		w, ok := overlap(c.a, c.b)
		if ok != c.ok || w != c.witness {
			t.Errorf("overlap(%v, %v) = %q, %v; want %q, %v", c.a, c.b, w, ok, c.witness, c.ok)
		}
	}
}
