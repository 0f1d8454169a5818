package configmap

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
)

// Export rebuilds the left config document from a right one and what the
// import carried (nil: nothing). doc names the right document in errors;
// variant forces the variant ("": the carried one, else the default).
// maxList bounds the per-layer lists a cycle rebuilds: the right config's
// layer count is only a number, and the input's tensor count is the most
// layers it can hold.
func (t *Translator) Export(right map[string]any, carried *format.Carried, doc, variant string, maxList int) (*Result, error) {
	asked := variant != ""
	variant, err := exportVariant(t.m, carried, variant)
	if err != nil {
		return nil, err
	}
	m := t.m.Expanded(right, true)
	out := map[string]any{}
	ex := &exporter{m: m, blocks: t.blocks, doc: doc, right: right, variant: variant, maxList: maxList,
		res:     &Result{Out: out, Variant: variant},
		rs:      &resolver{doc: right, schema: t.blocks},
		env:     &Env{Left: out, Lets: map[string]any{}},
		applied: map[*ir.ConfigRule]bool{}}
	if carried != nil {
		for k, v := range carried.Kept {
			setPath(out, split(k), ir.DeepCopy(v))
		}
		for k, v := range carried.Extra {
			out[k] = ir.DeepCopy(v)
		}
		ex.absent = carried.Absent
		ex.stood = carried.ForDefault
		ex.branches = carried.Branches
	}
	ex.readBlocks()
	ex.applyAll()
	if err := errors.Join(ex.errs...); err != nil {
		return nil, err
	}
	ex.unclaimed()
	if err := errors.Join(ex.errs...); err != nil {
		return nil, err
	}
	full, _, _, err := completeLeft(m, out, ex.decide)
	if err != nil {
		return nil, inDoc(doc, err)
	}
	if ex.res.Env, err = newEnv(m, full); err != nil {
		return nil, inDoc(doc, err)
	}
	if err := ex.refused(); err != nil {
		return nil, err
	}
	if err := ex.computed(); err != nil {
		return nil, err
	}
	if err := ex.leftComputed(); err != nil {
		return nil, err
	}
	if carried == nil {
		ex.noteUncarried(asked, t.extras.Generic.What)
	}
	return ex.res, nil
}

// refused reports the refuse rules the rebuilt left config, its defaults
// filled in as an import would, makes active: an import of it would stop
// there.
func (ex *exporter) refused() error {
	for _, r := range ex.m.Config {
		if r.Kind != ir.ConfigRefuse || !ir.InVariant(r.Variant, ex.variant) {
			continue
		}
		if ok, err := ir.EvalAll(r.When, ex.res.Env); err == nil && ok {
			ex.fail(r, "", "the left config this makes would be refused: %v", r.Value)
		}
	}
	return errors.Join(ex.errs...)
}

// computed checks the right values the mapping computes from the left
// config (right P = sqrt(hidden_size)), once the left config is rebuilt:
// the right config must hold what an import of that config would write.
// Unlike a literal constant, which is mostly the right side's own default,
// an absent key is refused: the right side's default is not what the left
// config computes.
func (ex *exporter) computed() error {
	for _, r := range ex.m.Config {
		if r.Kind != ir.ConfigRightConst || r.ValueExpr == nil || !ex.applied[r] {
			continue
		}
		paths, ok := ex.rs.resolve(r.Right[0].Segs)
		if !ok {
			continue
		}
		want, err := ir.Eval(r.ValueExpr, ex.res.Env)
		if err != nil {
			ex.fail(r, pathString(r.Right[0]), "%v", err)
			continue
		}
		for _, p := range paths {
			ps := strings.Join(p, ".")
			switch v, ok := ir.LookupPath(ex.right, p); {
			case !ok:
				ex.fail(r, ps, "missing; the mapping requires %s = %s", ir.Format(r.ValueExpr), pyValue(want))
			case !ir.ValuesEqual(v, want):
				ex.fail(r, ps, "is %s; the mapping requires %s = %s (%s has no way to say another value)",
					pyValue(v), ir.Format(r.ValueExpr), pyValue(want), ex.m.Left)
			}
		}
	}
	return errors.Join(ex.errs...)
}

// leftComputed writes the left values the mapping computes from the left
// config's other keys (left patch_size = embeddings.patch_height), once
// those are rebuilt; an optional one absent on the way in stays absent.
func (ex *exporter) leftComputed() error {
	for _, r := range ex.m.Config {
		if r.Kind != ir.ConfigLeftConst || r.ValueExpr == nil || !ex.applied[r] {
			continue
		}
		if r.Optional && slices.Contains(ex.absent, pathString(r.Left)) {
			continue
		}
		v, err := ir.Eval(r.ValueExpr, ex.res.Env)
		if err != nil {
			ex.fail(r, pathString(r.Left), "%v", err)
			continue
		}
		ex.setLeft(r, r.Left.Segs, v)
	}
	return errors.Join(ex.errs...)
}

// exporter is one export in progress.
type exporter struct {
	m       *ir.Mapping
	blocks  format.BlockSchema
	doc     string
	right   map[string]any
	variant string
	absent  []string // left keys absent on the way in
	stood   []string // left keys that held their rule's for value on the way in
	// branches are the recorded whens' outcomes on the way in (ir.Branch).
	branches map[string]bool
	maxList  int     // the longest per-layer list a cycle may rebuild
	res      *Result // res.Out is the left config being rebuilt
	rs       *resolver
	// env reads the left config being rebuilt, for defaults, lengths and
	// conditions; the lets wait for the completed config.
	env *Env
	// claims are the right paths the rules read; structural the keys of the
	// block nodes, which count only while they are leaves (empty blocks).
	claims, structural []string
	applied            map[*ir.ConfigRule]bool
	errs               []error
}

func (ex *exporter) fail(r *ir.ConfigRule, key, format string, args ...any) {
	ex.errs = append(ex.errs, &Error{Doc: ex.doc, Key: key, Pos: r.Pos, End: r.End, Msg: fmt.Sprintf(format, args...)})
}

// readBlocks reads back every block node the variant's cycle rules manage.
func (ex *exporter) readBlocks() {
	for _, r := range ex.m.Config {
		if r.Kind != ir.ConfigCycle || !ir.InVariant(r.Variant, ex.variant) {
			continue
		}
		path := r.Right[0].Segs
		np := strings.Join(path, ".")
		if ex.blocks == nil {
			ex.fail(r, np, "the %s side stores no per-layer block layout for a cycle rule to read", ex.m.Right)
			continue
		}
		v, _ := ir.LookupPath(ex.right, path)
		doc, _ := v.(map[string]any)
		l, ok, problems := ex.blocks.ReadBlocks(doc)
		for _, p := range problems {
			key := np
			if p.Key != "" {
				key += "." + p.Key
			}
			ex.fail(r, key, "%s", p.Msg)
		}
		if !ok {
			continue
		}
		for _, s := range l.Structure {
			ex.structural = append(ex.structural, np+"."+s)
		}
		node := &blockNode{rule: r, path: path, layout: l}
		if l.Single && len(l.Pattern) == 0 {
			node.layout.Pattern = []string{ex.rs.singleBlockName(ex.m, node)}
		}
		ex.rs.blocks = append(ex.rs.blocks, node)
	}
}

// applyAll applies the variant's rules: unconditional ones first (cycles
// last: their length reads renamed keys), then conditional ones until
// nothing changes, since conditions read the left config being rebuilt.
func (ex *exporter) applyAll() {
	for _, cycles := range []bool{false, true} {
		for _, r := range ex.m.Config {
			if ir.InVariant(r.Variant, ex.variant) && len(r.When) == 0 && (r.Kind == ir.ConfigCycle) == cycles {
				ex.apply(r)
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, r := range ex.m.Config {
			if ex.applied[r] || len(r.When) == 0 || !ir.InVariant(r.Variant, ex.variant) {
				continue
			}
			if ex.holds(r.When) {
				ex.apply(r)
				changed = true
			}
		}
	}
}

// holds decides a rule's conditions on the left config being rebuilt,
// completed with its defaults (a condition may read a key that is absent
// because it holds its default).
func (ex *exporter) holds(when []ir.Expr) bool {
	full, _, _, err := completeLeft(ex.m, ex.res.Out, ex.decide)
	if err != nil {
		return false // the final completion reports it
	}
	return ex.decide(when, &Env{Left: full})
}

// decide decides conditions on e; a recorded when (ir.Branch) takes the
// branch the import recorded instead. Without a record (a checkpoint mapper
// did not write) it is decided like any other.
func (ex *exporter) decide(when []ir.Expr, e ir.Env) bool {
	for _, w := range when {
		if b, neg := ex.m.BranchOf(w); b != nil {
			if held, ok := ex.branches[b.Key]; ok {
				if held == neg {
					return false
				}
				continue
			}
		}
		if ok, err := ir.EvalBool(w, e); err != nil || !ok {
			return false
		}
	}
	return true
}

// apply applies one rule, once: what a rule reads from the right config
// does not change, so a rule that had nothing to write back (its key
// absent, or still at the default it was absent with) must not be tried
// again, or the conditional rules would never settle.
func (ex *exporter) apply(r *ir.ConfigRule) {
	ex.applied[r] = true
	switch r.Kind {
	case ir.ConfigKeep, ir.ConfigIgnore:
		// What keep carried is back already; ignore left nothing.
	case ir.ConfigLeftConst:
		if r.Optional && slices.Contains(ex.absent, pathString(r.Left)) {
			return // absent on the way in: absent on the way back
		}
		if r.ValueExpr != nil {
			return // computed on the rebuilt left config (leftComputed)
		}
		ex.setLeft(r, r.Left.Segs, r.Value)
	case ir.ConfigRightConst:
		ex.rightConst(r)
	case ir.ConfigRename:
		ex.rename(r)
	case ir.ConfigCycle:
		ex.cycle(r)
	case ir.ConfigRefuse:
		// Decided on the completed config, once it is rebuilt (refused).
	}
}

func (ex *exporter) setLeft(r *ir.ConfigRule, segs []string, v any) {
	if !setPath(ex.res.Out, segs, ir.DeepCopy(v)) {
		ex.fail(r, strings.Join(segs, "."), "cannot be written: a parent key holds a value")
	}
}

// read returns the value of a rule's right paths, which must agree.
func (ex *exporter) read(r *ir.ConfigRule) (any, bool) {
	var val any
	var from string
	found := false
	for _, rp := range r.Right {
		paths, ok := ex.rs.resolve(rp.Segs)
		if !ok {
			continue
		}
		for _, p := range paths {
			ex.claims = append(ex.claims, strings.Join(p, "."))
			v, ok := ir.LookupPath(ex.right, p)
			if !ok {
				continue
			}
			ps := strings.Join(p, ".")
			if found && !ir.ValuesEqual(v, val) {
				ex.fail(r, ps, "is %s but %s is %s: they must agree", ir.FormatValue(v), from, ir.FormatValue(val))
				return nil, false
			}
			val, from, found = v, ps, true
		}
	}
	return val, found
}

// rightConst checks that the right config holds the constant.
func (ex *exporter) rightConst(r *ir.ConfigRule) {
	paths, ok := ex.rs.resolve(r.Right[0].Segs)
	if !ok {
		return
	}
	for _, p := range paths {
		ps := strings.Join(p, ".")
		ex.claims = append(ex.claims, ps)
		if r.ValueExpr != nil {
			continue // checked on the rebuilt left config (computed)
		}
		if v, ok := ir.LookupPath(ex.right, p); ok && !ir.ValuesEqual(v, r.Value) {
			ex.fail(r, ps, "is %s; the mapping requires %s (%s has no way to say another value)", ir.FormatValue(v), ir.FormatValue(r.Value), ex.m.Left)
		}
	}
}

// rename sets the left key from the right paths (or the right default),
// through the value map backwards. A key absent on the way in stays absent
// while its value is still the left default.
func (ex *exporter) rename(r *ir.ConfigRule) {
	key := pathString(r.Left)
	v, ok := ex.read(r)
	if !ok {
		if r.RightDefault == nil {
			return
		}
		d, err := ir.Eval(r.RightDefault, ex.env)
		if err != nil {
			ex.fail(r, key, "default: %v", err)
			return
		}
		v = d
	}
	lv, ok := mapValue(r.ValueMap, v, false)
	if !ok {
		ex.fail(r, strings.Join(r.Right[0].Segs, "."), "value %s has no counterpart (known: %s)", ir.FormatValue(v), knownValues(r.ValueMap, false))
		return
	}
	if slices.Contains(ex.absent, key) && r.LeftDefault != nil {
		if d, err := ir.Eval(r.LeftDefault, ex.env); err == nil && ir.ValuesEqual(d, lv) {
			return
		}
	}
	// The key said the value that stands for its default: it says so
	// again while the default is what the right side holds.
	if slices.Contains(ex.stood, key) && r.HasLeftFor && r.LeftDefault != nil {
		if d, err := ir.Eval(r.LeftDefault, ex.env); err == nil && ir.ValuesEqual(d, lv) {
			lv = r.LeftFor
		}
	}
	ex.setLeft(r, r.Left.Segs, lv)
}

// cycle expands the node's pattern back into the per-layer list.
func (ex *exporter) cycle(r *ir.ConfigRule) {
	node := ex.rs.node(r)
	if node == nil || len(node.layout.Pattern) == 0 {
		return // reading the node back failed, and said why
	}
	n, err := ir.EvalInt(r.Length, ex.env)
	if err != nil {
		ex.fail(r, pathString(r.Left), "%v", err)
		return
	}
	if n < 0 {
		ex.fail(r, pathString(r.Left), "the per-layer list would have %s = %d entries; a length must not be negative", ir.Format(r.Length), n)
		return
	}
	if n > int64(ex.maxList) {
		ex.fail(r, pathString(r.Left), "the per-layer list would have %s = %d entries, more than the %d tensors of the input hold layers for",
			ir.Format(r.Length), n, ex.maxList)
		return
	}
	list := make([]any, n)
	for i := range list {
		name := node.layout.Pattern[i%len(node.layout.Pattern)]
		lv, ok := mapValue(r.ValueMap, name, false)
		if !ok {
			ex.fail(r, strings.Join(node.path, "."), "block %q has no counterpart (known: %s)", name, knownValues(r.ValueMap, false))
			return
		}
		list[i] = lv
	}
	ex.setLeft(r, r.Left.Segs, list)
}

// noteUncarried says what a right config without the import's record
// cannot give back (a checkpoint the right side's own program saved): the
// kept keys are missing, and so are the left side's generic keys (generic
// names them; "" when the side has none), the keys that have a default are
// written whether or not the original had them, each recorded when is
// decided on the rebuilt config, which may not be how the original spelled
// its keys, and the variant is the default one unless one was asked for.
func (ex *exporter) noteUncarried(askedVariant bool, generic string) {
	var kept, defaulted, stood []string
	for _, r := range ex.m.Config {
		if !ex.applied[r] {
			continue
		}
		switch {
		case r.Kind == ir.ConfigKeep:
			for _, p := range r.Keys {
				kept = append(kept, pathString(p))
			}
		case r.Kind == ir.ConfigRename && r.LeftDefault != nil, r.Kind == ir.ConfigLeftConst && r.Optional:
			if _, ok := ir.LookupPath(ex.res.Out, r.Left.Segs); ok {
				defaulted = append(defaulted, pathString(r.Left))
				if r.HasLeftFor {
					stood = append(stood, fmt.Sprintf("%s rather than %s", pathString(r.Left), ir.FormatValue(r.LeftFor)))
				}
			}
		}
	}
	var parts []string
	if len(kept) > 0 {
		parts = append(parts, fmt.Sprintf("the keys %s keeps are not restored (%s)", ex.m.Name, strings.Join(kept, ", ")))
	}
	if generic != "" {
		parts = append(parts, fmt.Sprintf("%s the original had are not restored", generic))
	}
	if len(defaulted) > 0 {
		parts = append(parts, fmt.Sprintf("the keys with a default are written whether or not the original had them (%s)", strings.Join(defaulted, ", ")))
	}
	if len(stood) > 0 {
		parts = append(parts, fmt.Sprintf("the keys whose rule names a value that stands for their default are written as the value (%s)", strings.Join(stood, ", ")))
	}
	if decided := ex.decidedBranches(); len(decided) > 0 {
		parts = append(parts, fmt.Sprintf("the recorded whens are decided on the rebuilt config, not as the original's were (%s), so keys the original spelled another way come back in this branch's spelling", strings.Join(decided, ", ")))
	}
	if ex.variant != "" && !askedVariant {
		parts = append(parts, fmt.Sprintf("the variant is %s, the one a conversion picks when none is recorded or asked for", ex.variant))
	}
	if len(parts) > 0 {
		ex.res.Notes = append(ex.res.Notes, fmt.Sprintf("%s has no record of an import by mapper (metadata.mapper): %s", ex.doc, strings.Join(parts, "; ")))
	}
}

// decidedBranches lists how each recorded when (ir.Branch) of the variant
// went on the rebuilt config, where its enclosing conditions hold:
// "cond: true".
func (ex *exporter) decidedBranches() []string {
	var out []string
	for _, b := range ex.m.Branches {
		if !ir.InVariant(b.Variant, ex.variant) || slices.ContainsFunc(out, func(s string) bool { return strings.HasPrefix(s, b.Key+": ") }) {
			continue
		}
		if ok, err := ir.EvalAll(b.Outer, ex.res.Env); err != nil || !ok {
			continue
		}
		held, err := ir.EvalBool(b.Cond, ex.res.Env)
		if err != nil {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %t", b.Key, held))
	}
	return out
}

// unclaimed reports every right key no rule reads.
func (ex *exporter) unclaimed() {
	for _, leaf := range leaves(ex.right) {
		if slices.ContainsFunc(ex.claims, func(c string) bool { return covers(c, leaf) }) ||
			slices.Contains(ex.structural, leaf) {
			continue
		}
		ex.errs = append(ex.errs, &Error{Doc: ex.doc, Key: leaf, Msg: fmt.Sprintf("not claimed by any config rule of %s", ex.m.Name)})
	}
}
