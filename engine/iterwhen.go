package engine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
)

// Per-iteration branches: a `when` inside an `each` whose condition reads
// the loop variable (`when hybrid_block_layout[l] == "m2"`) is decided for
// each binding, so one loop holds several layer kinds. The plan notes which
// bindings each such branch took, and an input tensor under a binding that
// no branch took is reported with the conditions that failed there and the
// values they read, rather than as a bare unclaimed name.

// iterBranches collects what per-iteration conditions decided.
type iterBranches struct {
	groups map[string]*iterGroup
	order  []string
	// skipped maps a binding's input prefix ("model.layers.3.") to the
	// conditions that were false there, for the unclaimed-tensor error;
	// applied holds the prefixes where some branch held (a tensor left
	// there is unclaimed for another reason).
	skipped map[string][]string
	applied map[string]bool
}

// iterGroup is one branch: its conditions and the bindings that took it.
type iterGroup struct {
	text     string // the conditions, as written
	at       string // file:line of the (innermost) condition
	vars     []string
	bindings [][]int64
	seen     map[string]bool
}

func newIterBranches() *iterBranches {
	return &iterBranches{groups: map[string]*iterGroup{}, skipped: map[string][]string{}, applied: map[string]bool{}}
}

func condText(conds []ir.Expr) string {
	parts := make([]string, len(conds))
	for i, c := range conds {
		parts[i] = ir.Format(c)
	}
	return strings.Join(parts, " and ")
}

// inputPrefixes are the prefixes of a binding's input names.
func inputPrefixes(p *Plan, r *ir.TensorRule, e *env) []string {
	refs := r.Left
	if p.Direction == Export {
		refs = r.Right
	}
	var out []string
	for _, ref := range refs {
		if prefix, ok := bindingPrefix(ref.Pattern, r.Loops, e); ok {
			out = append(out, prefix)
		}
	}
	return out
}

// took records that a binding of a rule took the branch of conds.
func (ib *iterBranches) took(p *Plan, r *ir.TensorRule, conds []ir.Expr, e *env) {
	for _, prefix := range inputPrefixes(p, r, e) {
		ib.applied[prefix] = true
	}
	last := conds[len(conds)-1]
	key := fmt.Sprintf("%v %s", ir.ExprPos(last), condText(conds))
	g := ib.groups[key]
	if g == nil {
		g = &iterGroup{text: condText(conds), at: ir.ExprPos(last).FileLine(), seen: map[string]bool{}}
		for _, l := range r.Loops {
			g.vars = append(g.vars, l.Var)
		}
		ib.groups[key] = g
		ib.order = append(ib.order, key)
	}
	var vals []int64
	for _, v := range g.vars {
		vals = append(vals, e.loop[v])
	}
	if k := fmt.Sprint(vals); !g.seen[k] {
		g.seen[k] = true
		g.bindings = append(g.bindings, vals)
	}
}

// skip records, for the input prefixes of a binding, why a rule did not
// apply there.
func (ib *iterBranches) skip(p *Plan, r *ir.TensorRule, conds []ir.Expr, e *env) {
	why := fmt.Sprintf("%s (%s) is false", condText(conds), ir.ExprPos(conds[len(conds)-1]).FileLine())
	all := conds[0]
	for _, c := range conds[1:] {
		all = &ir.Binary{Op: "and", X: all, Y: c} // one list of the values they read
	}
	if b := ir.Bindings(all, e); b != "" {
		why += " with " + b
	}
	for _, prefix := range inputPrefixes(p, r, e) {
		if !slices.Contains(ib.skipped[prefix], why) {
			ib.skipped[prefix] = append(ib.skipped[prefix], why)
		}
	}
}

// notes describes each branch: which bindings took it.
func (ib *iterBranches) notes() []string {
	var out []string
	for _, k := range ib.order {
		g := ib.groups[k]
		out = append(out, fmt.Sprintf("when %s (%s) holds for %s: %s", g.text, g.at, strings.Join(g.vars, ", "), bindingsText(g.bindings)))
	}
	return out
}

// bindingsText prints bindings compactly: "0, 2-5" for one variable,
// "(0, 1), (0, 2)" for several.
func bindingsText(bs [][]int64) string {
	if len(bs) > 0 && len(bs[0]) != 1 {
		parts := make([]string, len(bs))
		for i, b := range bs {
			s := make([]string, len(b))
			for j, v := range b {
				s[j] = strconv.FormatInt(v, 10)
			}
			parts[i] = "(" + strings.Join(s, ", ") + ")"
		}
		return strings.Join(parts, ", ")
	}
	var parts []string
	for i := 0; i < len(bs); {
		j := i
		for j+1 < len(bs) && bs[j+1][0] == bs[j][0]+1 {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, strconv.FormatInt(bs[i][0], 10))
		case j == i+1:
			parts = append(parts, strconv.FormatInt(bs[i][0], 10), strconv.FormatInt(bs[j][0], 10))
		default:
			parts = append(parts, fmt.Sprintf("%d-%d", bs[i][0], bs[j][0]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// unclaimedWhy says why an unclaimed tensor was left: the per-iteration
// conditions that were false for its binding, or "" when none was.
func (ib *iterBranches) unclaimedWhy(name string) (prefix, why string) {
	for p, reasons := range ib.skipped {
		if strings.HasPrefix(name, p) && len(p) > len(prefix) && !ib.applied[p] {
			prefix, why = p, strings.Join(reasons, "; ")
		}
	}
	return prefix, why
}
