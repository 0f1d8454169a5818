package configmap

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/quote"
)

// Import maps a left config document to the right side. doc names the
// document in errors. The variant is the one the left config selects.
func (t *Translator) Import(left map[string]any, doc string) (*Result, error) {
	im := &importer{m: t.m.Expanded(left, false), blocks: t.blocks, extras: t.extras, doc: doc, left: left, written: map[string]string{}}
	if err := im.start(); err != nil {
		return nil, inDoc(doc, err)
	}
	rules, err := activeRules(im.m, im.res.Variant, im.res.Env)
	if err != nil {
		return nil, inDoc(doc, err)
	}
	// A refusal says all there is to say: what else does not fit is moot.
	if err := refusals(doc, rules); err != nil {
		return nil, err
	}
	// Cycle rules first: they create the block structure other rules address.
	for _, r := range rules {
		if r.Kind == ir.ConfigCycle {
			im.cycle(r)
		}
	}
	for _, r := range rules {
		im.rule(r)
	}
	im.recordBranches()
	if len(im.kept) > 0 {
		slices.Sort(im.kept)
		im.res.Notes = append(im.res.Notes, fmt.Sprintf("config keys kept for the way back (keep rules of %s; no place on the %s side): %s",
			im.m.Name, im.m.Right, strings.Join(quote.Names(im.kept), ", ")))
	}
	im.carryExtras()
	im.unclaimed()
	if err := errors.Join(im.errs...); err != nil {
		return nil, err
	}
	return im.res, nil
}

// importer is one import in progress.
type importer struct {
	m       *ir.Mapping
	blocks  format.BlockSchema
	extras  Extras
	doc     string
	left    map[string]any // as given
	full    map[string]any // left with its defaults filled in
	absent  []string       // the keys the defaults filled in
	res     *Result
	rs      *resolver
	claims  [][]string        // left paths the rules claim, as segments
	kept    []string          // the keys keep rules carried, for the notes
	written map[string]string // right path -> the rule that wrote it (file:line)
	errs    []error
}

// start completes the left config, evaluates the lets and selects the
// variant.
func (im *importer) start() error {
	full, absent, stood, err := completeLeft(im.m, im.left, evalAll)
	if err != nil {
		return err
	}
	e, err := newEnv(im.m, full)
	if err != nil {
		return err
	}
	variant, err := importVariant(im.m, e)
	if err != nil {
		return err
	}
	im.full, im.absent = full, absent
	im.res = &Result{Out: map[string]any{}, Variant: variant, Env: e,
		Carried: &format.Carried{Mapping: im.m.Name, From: im.m.Left, Variant: variant, Absent: absent, ForDefault: stood}}
	im.rs = &resolver{doc: im.res.Out, schema: im.blocks}
	for _, k := range absent {
		v, _ := ir.LookupPath(full, split(k))
		im.res.Notes = append(im.res.Notes, fmt.Sprintf("config key %s is absent: its default %s is used, and the metadata records it as absent so that the way back leaves it out", k, pyValue(v)))
	}
	for _, k := range stood {
		v, _ := ir.LookupPath(full, split(k))
		was, _ := ir.LookupPath(im.left, split(k))
		im.res.Notes = append(im.res.Notes, fmt.Sprintf("config key %s is %s, which stands for its default: %s is used, and the metadata records it so that the way back writes %s again", k, pyValue(was), pyValue(v), pyValue(was)))
	}
	return nil
}

func (im *importer) fail(r *ir.ConfigRule, key, format string, args ...any) {
	im.errs = append(im.errs, &Error{Doc: im.doc, Key: key, Pos: r.Pos, End: r.End, Msg: fmt.Sprintf(format, args...)})
}

// rule applies one active rule other than a cycle.
func (im *importer) rule(r *ir.ConfigRule) {
	switch r.Kind {
	case ir.ConfigKeep:
		im.keep(r)
	case ir.ConfigIgnore:
		im.ignore(r)
	case ir.ConfigLeftConst:
		im.leftConst(r)
	case ir.ConfigRightConst:
		im.rightConst(r)
	case ir.ConfigRename:
		im.rename(r)
	}
}

// carry records a left value for the way back.
func (im *importer) carry(path string, v any) {
	c := im.res.Carried
	if c.Kept == nil {
		c.Kept = map[string]any{}
	}
	c.Kept[path] = ir.DeepCopy(v)
}

// write sets a right path, once: a second write must agree with the first.
func (im *importer) write(r *ir.ConfigRule, segs []string, v any) {
	k := strings.Join(segs, ".")
	if prev, ok := im.written[k]; ok {
		if old, _ := ir.LookupPath(im.res.Out, segs); !ir.ValuesEqual(old, v) {
			im.fail(r, k, "written twice with different values (also by the rule at %s)", prev)
			return
		}
	}
	if !setPath(im.res.Out, segs, ir.DeepCopy(v)) {
		im.fail(r, k, "cannot be written: a parent key holds a value")
		return
	}
	im.written[k] = r.Pos.FileLine()
}

// cycle lays out the right node for the per-layer list.
func (im *importer) cycle(r *ir.ConfigRule) {
	key := pathString(r.Left)
	im.claims = append(im.claims, r.Left.Segs)
	if im.blocks == nil {
		im.fail(r, key, "the %s side stores no per-layer block layout for a cycle rule to write", im.m.Right)
		return
	}
	names, ok := im.layerBlocks(r, key)
	if !ok {
		return
	}
	path := r.Right[0].Segs
	node, ok := mapAt(im.res.Out, path)
	if !ok {
		im.fail(r, pathString(r.Right[0]), "cannot be written: a parent key holds a value")
		return
	}
	if !r.Verbatim {
		names = shortestCycle(names)
	}
	l := im.blocks.WriteBlocks(node, names)
	im.rs.blocks = append(im.rs.blocks, &blockNode{rule: r, path: path, layout: l})
}

// layerBlocks reads a cycle's per-layer list and translates every entry to
// its block name.
func (im *importer) layerBlocks(r *ir.ConfigRule, key string) ([]string, bool) {
	v, ok := ir.LookupPath(im.full, r.Left.Segs)
	if !ok {
		im.fail(r, key, "missing; the rule needs the per-layer list")
		return nil, false
	}
	list, ok := v.([]any)
	if !ok {
		im.fail(r, key, "is %s, not a list", ir.FormatValue(v))
		return nil, false
	}
	n, err := ir.EvalInt(r.Length, im.res.Env)
	if err != nil {
		im.fail(r, key, "%v", err)
		return nil, false
	}
	if int64(len(list)) != n {
		im.fail(r, key, "has %d entries but %s is %d: they must agree", len(list), ir.Format(r.Length), n)
		return nil, false
	}
	names := make([]string, len(list))
	for i, x := range list {
		y, ok := mapValue(r.ValueMap, x, true)
		s, isStr := y.(string)
		if !ok || !isStr {
			im.fail(r, fmt.Sprintf("%s[%d]", key, i), "value %s has no counterpart (known: %s)", ir.FormatValue(x), knownValues(r.ValueMap, true))
			return nil, false
		}
		names[i] = s
	}
	return names, true
}

// keep carries the keys present for the way back.
func (im *importer) keep(r *ir.ConfigRule) {
	for _, p := range r.Keys {
		im.claims = append(im.claims, p.Segs)
		if v, ok := ir.LookupPath(im.left, p.Segs); ok {
			im.carry(pathString(p), v)
			im.kept = append(im.kept, pathString(p))
		}
	}
}

// ignore drops the keys, saying so in the notes.
func (im *importer) ignore(r *ir.ConfigRule) {
	for _, p := range r.Keys {
		im.claims = append(im.claims, p.Segs)
		if _, ok := ir.LookupPath(im.left, p.Segs); ok {
			im.res.Notes = append(im.res.Notes, fmt.Sprintf("config key %s dropped on purpose (ignore at %s)", quote.Name(pathString(p)), r.Pos.FileLine()))
		}
	}
}

// leftConst checks that the left config holds the constant, or the value
// it computes from the left config's other keys.
func (im *importer) leftConst(r *ir.ConfigRule) {
	key := pathString(r.Left)
	im.claims = append(im.claims, r.Left.Segs)
	v, ok := ir.LookupPath(im.left, r.Left.Segs)
	if !ok && r.Optional {
		return // recorded as absent (completeLeft): the way back leaves it out
	}
	want, what := r.Value, ir.FormatValue(r.Value)
	if r.ValueExpr != nil {
		var err error
		if want, err = ir.Eval(r.ValueExpr, im.res.Env); err != nil {
			im.fail(r, key, "%v", err)
			return
		}
		what = ir.Format(r.ValueExpr) + " = " + ir.FormatValue(want)
	}
	switch {
	case !ok:
		im.fail(r, key, "missing; the mapping requires %s", what)
	case !ir.ValuesEqual(v, want):
		im.fail(r, key, "is %s; the mapping requires %s", ir.FormatValue(v), what)
	}
}

// rightConst writes the constant, or the value it computes from the left
// config, wherever its path leads.
func (im *importer) rightConst(r *ir.ConfigRule) {
	paths, ok := im.rs.resolve(r.Right[0].Segs)
	if !ok {
		return // a block this config does not have
	}
	v := r.Value
	if r.ValueExpr != nil {
		var err error
		if v, err = ir.Eval(r.ValueExpr, im.res.Env); err != nil {
			im.fail(r, pathString(r.Right[0]), "%v", err)
			return
		}
	}
	for _, p := range paths {
		im.write(r, p, v)
	}
}

// rename writes the left value, through the value map, to every right path
// (a fan-out); a value with no place on the right is carried instead.
func (im *importer) rename(r *ir.ConfigRule) {
	key := pathString(r.Left)
	im.claims = append(im.claims, r.Left.Segs)
	v, ok := ir.LookupPath(im.full, r.Left.Segs)
	if !ok {
		return
	}
	mv, ok := mapValue(r.ValueMap, v, true)
	if !ok {
		from := ""
		if slices.Contains(im.absent, key) {
			from = fmt.Sprintf(" (absent, so its default %s)", ir.Format(r.LeftDefault))
		}
		im.fail(r, key, "value %s%s has no counterpart (known: %s)", ir.FormatValue(v), from, knownValues(r.ValueMap, true))
		return
	}
	if r.RightDefault != nil {
		// The right side's default: its absence says it, as the right
		// side's own program leaves out what it did not set; the export
		// reads the default back.
		if d, err := ir.Eval(r.RightDefault, im.res.Env); err == nil && ir.ValuesEqual(d, mv) {
			return
		}
	}
	placed := false
	for _, rp := range r.Right {
		paths, ok := im.rs.resolve(rp.Segs)
		if !ok {
			continue
		}
		if len(paths) == 0 {
			im.fail(r, key, "the right path %s matches nothing", pathString(rp))
		}
		for _, p := range paths {
			im.write(r, p, mv)
			placed = true
		}
	}
	if !placed && !slices.Contains(im.absent, key) {
		// The right side has no place for it in this config (a block the
		// pattern does not use): carry it so the way back loses nothing.
		im.carry(key, v)
		im.res.Notes = append(im.res.Notes, fmt.Sprintf("config key %s has no place on the %s side in this config; carried in the metadata", quote.Name(key), im.m.Right))
	}
}

// pyValue spells a value as config.json would: 32.0 stays a float.
func pyValue(v any) string {
	text, err := pyjson.Encode(v, -1, false)
	if err != nil {
		return ir.FormatValue(v)
	}
	return string(text)
}

// recordBranches records which branch the import took at every recorded
// when (ir.Branch) it decided, so that the export takes the same one.
func (im *importer) recordBranches() {
	for _, b := range im.m.Branches {
		if !ir.InVariant(b.Variant, im.res.Variant) {
			continue
		}
		if ok, err := ir.EvalAll(b.Outer, im.res.Env); err != nil || !ok {
			continue // not decided here: the rules under it are not active
		}
		held, err := ir.EvalBool(b.Cond, im.res.Env)
		if err != nil {
			continue // activeRules reported it
		}
		c := im.res.Carried
		if c.Branches == nil {
			c.Branches = map[string]bool{}
		}
		c.Branches[b.Key] = held
	}
}

// carryExtras carries the top-level left keys no rule claims that the left
// side lists as generic or the user named with --keep (Extras). A key a
// rule claims, even in part, stays the rule's.
func (im *importer) carryExtras() {
	ruled := func(k string) bool {
		return slices.ContainsFunc(im.claims, func(c []string) bool { return c[0] == k })
	}
	for _, k := range im.extras.Keep {
		_, present := im.left[k]
		switch {
		case !present:
			im.res.Notes = append(im.res.Notes, fmt.Sprintf("--keep %s: %s has no such top-level key", quote.Name(k), quote.Name(im.doc)))
		case ruled(k):
			im.res.Notes = append(im.res.Notes, fmt.Sprintf("--keep %s does nothing: a rule of %s maps that key", quote.Name(k), im.m.Name))
		}
	}
	var generic []string
	for _, k := range slices.Sorted(maps.Keys(im.left)) {
		if ruled(k) {
			continue
		}
		v := im.left[k]
		if slices.Contains(im.extras.Keep, k) {
			im.extra(k, v)
			im.res.Notes = append(im.res.Notes, fmt.Sprintf("config key %s carried as asked (--keep): no rule of %s maps it, so the %s side's model does not see it; it comes back on the way back",
				quote.Name(k), im.m.Name, im.m.Right))
			continue
		}
		g, ok := im.extras.Generic.Lookup(k)
		if !ok {
			continue
		}
		if g.Pinned && !ir.ValuesEqual(v, g.Only) {
			im.errs = append(im.errs, &Error{Doc: im.doc, Key: k, Msg: fmt.Sprintf(
				"is %s; as one of %s it travels only at %s, since another value changes the model (map it in a rule, or --keep %s at your own risk)",
				ir.FormatValue(v), im.extras.Generic.What, ir.FormatValue(g.Only), k)})
			continue
		}
		im.extra(k, v)
		generic = append(generic, k)
	}
	if len(generic) > 0 {
		im.res.Notes = append(im.res.Notes, fmt.Sprintf("config keys carried for the way back as %s (no rule of %s names them): %s",
			im.extras.Generic.What, im.m.Name, strings.Join(generic, ", ")))
	}
}

// extra carries a top-level key whole, under its literal name.
func (im *importer) extra(k string, v any) {
	c := im.res.Carried
	if c.Extra == nil {
		c.Extra = map[string]any{}
	}
	c.Extra[k] = ir.DeepCopy(v)
}

// unclaimed reports every left key no rule claims and no extra carries:
// mapper drops nothing silently.
func (im *importer) unclaimed() {
	for _, leaf := range leafPaths(im.left) {
		if _, carried := im.res.Carried.Extra[leaf[0]]; carried {
			continue
		}
		if slices.ContainsFunc(im.claims, func(c []string) bool { return hasPrefix(leaf, c) }) {
			continue
		}
		how := "map it, or add it to keep or ignore"
		if !slices.ContainsFunc(im.claims, func(c []string) bool { return c[0] == leaf[0] }) {
			// A whole top-level key: the user may carry it as it is.
			how += fmt.Sprintf("; or carry it unread with --keep %s, at your own risk", quote.Name(leaf[0]))
		}
		im.errs = append(im.errs, &Error{Doc: im.doc, Key: strings.Join(leaf, "."), Msg: fmt.Sprintf("not claimed by any config rule of %s (%s)", im.m.Name, how)})
	}
}
