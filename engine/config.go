package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/quote"
)

// configResult is the config half of a plan.
type configResult struct {
	// Out is the output side's config document.
	Out map[string]any
	// Carried is what the output must carry for the way back (import only).
	Carried *format.Carried
	// Variant is the active variant ("" when the mapping has none).
	Variant string
	// Env evaluates the mapping's expressions: the completed left config
	// (defaults filled in), the lets and, later, loop variables.
	Env   *env
	Notes []string
}

// ConfigError is a config problem, named by the document it is in, the key
// and the rule that found it. Its message escapes the key (it comes from
// the checkpoint); Msg must do the same for any it holds.
type ConfigError struct {
	Doc  string // "config.json", "metadata.yaml config.base_model", ...
	Key  string // dotted path
	Rule string // file:line, when a rule is involved
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(quote.Name(e.Doc))
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", quote.Name(e.Key))
	}
	fmt.Fprintf(&b, ": %s", e.Msg)
	if e.Rule != "" {
		fmt.Fprintf(&b, " (rule at %s)", e.Rule)
	}
	return b.String()
}

// blockNode is the right-side node a cycle rule manages: a decoder with
// either a pattern of named blocks or a single plain block.
type blockNode struct {
	rule   *ir.ConfigRule
	path   []string
	names  []string // the pattern (import) / the pattern read back (export)
	single string   // the block's name when the node holds one plain block
}

func (n *blockNode) isSingle() bool { return n.single != "" }

// distinct lists each block name once, in pattern order.
func (n *blockNode) distinct() []string {
	if n.isSingle() {
		return []string{n.single}
	}
	var out []string
	for _, s := range n.names {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// resolver expands right paths over block nodes and wildcards.
type resolver struct {
	doc    map[string]any
	blocks []*blockNode
}

// resolve returns the concrete paths a right path stands for. ok is false
// when it names a block the node does not have (the value has no place).
func (r *resolver) resolve(segs []string) (paths [][]string, ok bool) {
	for _, n := range r.blocks {
		k := len(n.path)
		if len(segs) > k+1 && slices.Equal(segs[:k], n.path) && segs[k] == "blocks" {
			name, rest := segs[k+1], segs[k+2:]
			if n.isSingle() {
				if name != "*" && name != n.single {
					return nil, false
				}
				return [][]string{join(n.path, []string{"block"}, rest)}, true
			}
			if name != "*" {
				if !slices.Contains(n.names, name) {
					return nil, false
				}
				return [][]string{segs}, true
			}
			for _, b := range n.distinct() {
				paths = append(paths, join(n.path, []string{"blocks", b}, rest))
			}
			return paths, true
		}
	}
	return r.expandWildcards(segs), true
}

// expandWildcards expands "*" segments over the keys present in the document.
func (r *resolver) expandWildcards(segs []string) [][]string {
	i := slices.Index(segs, "*")
	if i < 0 {
		return [][]string{segs}
	}
	v, _ := ir.LookupPath(r.doc, segs[:i])
	m, _ := v.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out [][]string
	for _, k := range keys {
		out = append(out, r.expandWildcards(join(segs[:i], []string{k}, segs[i+1:]))...)
	}
	return out
}

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func pathString(p ir.Path) string { return strings.Join(p.Segs, ".") }

// selectVariant picks the import variant: the first whose condition holds,
// else the default one.
func selectVariant(m *ir.Mapping, e *env) (string, error) {
	def := ""
	for _, v := range m.Variants {
		if v.When == nil {
			if def == "" {
				def = v.Name
			}
			continue
		}
		ok, err := ir.EvalBool(v.When, e)
		if err != nil {
			return "", fmt.Errorf("variant %s (%s): %w", v.Name, posString(v.Pos), err)
		}
		if ok {
			return v.Name, nil
		}
	}
	if def == "" && len(m.Variants) > 0 {
		return "", fmt.Errorf("no variant of %s applies to this config and none is the default", m.Name)
	}
	return def, nil
}

func inVariant(variant, active string) bool { return variant == "" || variant == active }

// completeLeft fills in left defaults for absent keys and returns the
// completed config and the absent keys.
func completeLeft(m *ir.Mapping, left map[string]any) (map[string]any, []string, error) {
	full := ir.DeepCopy(left).(map[string]any)
	var absent []string
	e := &env{left: full}
	for _, r := range m.Config {
		if r.Kind != ir.ConfigRename || r.LeftDefault == nil {
			continue
		}
		if _, ok := ir.LookupPath(left, r.Left.Segs); ok {
			continue
		}
		v, err := ir.Eval(r.LeftDefault, e)
		if err != nil {
			return nil, nil, fmt.Errorf("default of %s (%s): %w", pathString(r.Left), posString(r.Pos), err)
		}
		setPath(full, r.Left.Segs, v)
		absent = append(absent, pathString(r.Left))
	}
	return full, absent, nil
}

// importConfig maps a left config to the right side.
func importConfig(m *ir.Mapping, left map[string]any, leftDoc, variant string) (*configResult, error) {
	full, absent, err := completeLeft(m, left)
	if err != nil {
		return nil, &ConfigError{Doc: leftDoc, Msg: err.Error()}
	}
	e, err := newEnv(m, full)
	if err != nil {
		return nil, &ConfigError{Doc: leftDoc, Msg: err.Error()}
	}
	if variant == "" {
		if variant, err = selectVariant(m, e); err != nil {
			return nil, &ConfigError{Doc: leftDoc, Msg: err.Error()}
		}
	}
	res := &configResult{Out: map[string]any{}, Variant: variant, Env: e,
		Carried: &format.Carried{Mapping: m.Name, From: m.Left, Variant: variant, Absent: absent}}
	rules, err := activeConfigRules(m, variant, e)
	if err != nil {
		return nil, &ConfigError{Doc: leftDoc, Msg: err.Error()}
	}
	rs := &resolver{doc: res.Out}
	var claims []string
	var errs []error
	fail := func(r *ir.ConfigRule, key, format string, args ...any) {
		errs = append(errs, &ConfigError{Doc: leftDoc, Key: key, Rule: posString(r.Pos), Msg: fmt.Sprintf(format, args...)})
	}
	keep := func(path string, v any) {
		if res.Carried.Kept == nil {
			res.Carried.Kept = map[string]any{}
		}
		res.Carried.Kept[path] = ir.DeepCopy(v)
	}

	// Cycle rules first: they create the block structure other rules address.
	for _, r := range rules {
		if r.Kind != ir.ConfigCycle {
			continue
		}
		key := pathString(r.Left)
		claims = append(claims, key)
		v, ok := ir.LookupPath(full, r.Left.Segs)
		if !ok {
			fail(r, key, "missing; the rule needs the per-layer list")
			continue
		}
		list, ok := v.([]any)
		if !ok {
			fail(r, key, "is %s, not a list", ir.FormatValue(v))
			continue
		}
		n, err := ir.EvalInt(r.Length, e)
		if err != nil {
			fail(r, key, "%v", err)
			continue
		}
		if int64(len(list)) != n {
			fail(r, key, "has %d entries but %s is %d: they must agree", len(list), ir.Format(r.Length), n)
			continue
		}
		names := make([]string, len(list))
		bad := false
		for i, x := range list {
			y, ok := mapValue(r.ValueMap, x, true)
			s, isStr := y.(string)
			if !ok || !isStr {
				fail(r, fmt.Sprintf("%s[%d]", key, i), "value %s has no counterpart (known: %s)", ir.FormatValue(x), knownValues(r.ValueMap, true))
				bad = true
				break
			}
			names[i] = s
		}
		if bad {
			continue
		}
		node := &blockNode{rule: r, path: r.Right[0].Segs, names: shortestCycle(names)}
		if len(node.distinct()) == 1 && len(node.names) == 1 {
			node.single = node.names[0]
			setPath(res.Out, join(node.path, []string{"block"}), map[string]any{})
		} else {
			setPath(res.Out, join(node.path, []string{"type"}), "pattern")
			setPath(res.Out, join(node.path, []string{"pattern"}), stringsToAny(node.names))
			for _, b := range node.distinct() {
				setPath(res.Out, join(node.path, []string{"blocks", b}), map[string]any{})
			}
		}
		rs.blocks = append(rs.blocks, node)
	}

	written := map[string]string{} // right path -> rule that wrote it
	write := func(r *ir.ConfigRule, segs []string, v any) {
		k := strings.Join(segs, ".")
		if prev, ok := written[k]; ok {
			if old, _ := ir.LookupPath(res.Out, segs); !ir.ValuesEqual(old, v) {
				fail(r, k, "written twice with different values (also by the rule at %s)", prev)
				return
			}
		}
		if !setPath(res.Out, segs, ir.DeepCopy(v)) {
			fail(r, k, "cannot be written: a parent key holds a value")
			return
		}
		written[k] = posString(r.Pos)
	}

	for _, r := range rules {
		switch r.Kind {
		case ir.ConfigCycle:
		case ir.ConfigKeep:
			for _, p := range r.Keys {
				claims = append(claims, pathString(p))
				if v, ok := ir.LookupPath(left, p.Segs); ok {
					keep(pathString(p), v)
				}
			}
		case ir.ConfigIgnore:
			for _, p := range r.Keys {
				claims = append(claims, pathString(p))
				if _, ok := ir.LookupPath(left, p.Segs); ok {
					res.Notes = append(res.Notes, fmt.Sprintf("config key %s dropped on purpose (ignore at %s)", quote.Name(pathString(p)), posString(r.Pos)))
				}
			}
		case ir.ConfigLeftConst:
			key := pathString(r.Left)
			claims = append(claims, key)
			v, ok := ir.LookupPath(left, r.Left.Segs)
			switch {
			case !ok:
				fail(r, key, "missing; the mapping requires %s", ir.FormatValue(r.Value))
			case !ir.ValuesEqual(v, r.Value):
				fail(r, key, "is %s; the mapping requires %s", ir.FormatValue(v), ir.FormatValue(r.Value))
			}
		case ir.ConfigRightConst:
			paths, ok := rs.resolve(r.Right[0].Segs)
			if !ok {
				continue // a block this config does not have
			}
			for _, p := range paths {
				write(r, p, r.Value)
			}
		case ir.ConfigRename:
			key := pathString(r.Left)
			claims = append(claims, key)
			v, ok := ir.LookupPath(full, r.Left.Segs)
			if !ok {
				continue
			}
			mv, ok := mapValue(r.ValueMap, v, true)
			if !ok {
				fail(r, key, "value %s has no counterpart (known: %s)", ir.FormatValue(v), knownValues(r.ValueMap, true))
				continue
			}
			placed := false
			for _, rp := range r.Right {
				paths, ok := rs.resolve(rp.Segs)
				if !ok {
					continue
				}
				if len(paths) == 0 {
					fail(r, key, "the right path %s matches nothing", pathString(rp))
				}
				for _, p := range paths {
					write(r, p, mv)
					placed = true
				}
			}
			if !placed && !slices.Contains(absent, key) {
				// The right side has no place for it in this config (a
				// block the pattern does not use): carry it so the way back
				// loses nothing.
				keep(key, v)
				res.Notes = append(res.Notes, fmt.Sprintf("config key %s has no place on the %s side in this config; carried in the metadata", quote.Name(key), m.Right))
			}
		}
	}
	for _, leaf := range leaves(left) {
		if !slices.ContainsFunc(claims, func(c string) bool { return covers(c, leaf) }) {
			errs = append(errs, &ConfigError{Doc: leftDoc, Key: leaf, Msg: fmt.Sprintf("not claimed by any config rule of %s (map it, or add it to keep or ignore)", m.Name)})
		}
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	return res, nil
}

// exportConfig rebuilds the left config from a right config and what the
// import carried.
func exportConfig(m *ir.Mapping, right map[string]any, carried *format.Carried, rightDoc, variant string) (*configResult, error) {
	if variant == "" && carried != nil {
		variant = carried.Variant
	}
	if variant == "" {
		for _, v := range m.Variants {
			if v.When == nil {
				variant = v.Name
				break
			}
		}
		if variant == "" && len(m.Variants) > 0 {
			variant = m.Variants[0].Name
		}
	}
	if variant != "" && len(m.Variants) == 0 {
		return nil, fmt.Errorf("mapping %s has no variants, so --variant %s does not apply", m.Name, variant)
	}
	if variant != "" && !slices.ContainsFunc(m.Variants, func(v *ir.Variant) bool { return v.Name == variant }) {
		return nil, fmt.Errorf("mapping %s has no variant %q (known: %s)", m.Name, variant, variantNames(m))
	}
	out := map[string]any{}
	var absent []string
	if carried != nil {
		for k, v := range carried.Kept {
			setPath(out, split(k), ir.DeepCopy(v))
		}
		absent = carried.Absent
	}
	res := &configResult{Out: out, Variant: variant}
	var errs []error
	fail := func(r *ir.ConfigRule, key, format string, args ...any) {
		errs = append(errs, &ConfigError{Doc: rightDoc, Key: key, Rule: posString(r.Pos), Msg: fmt.Sprintf(format, args...)})
	}
	rs := &resolver{doc: right}
	var claims []string
	e := &env{left: out, lets: map[string]any{}}

	// Block nodes: read the pattern (or the single block) back.
	for _, r := range m.Config {
		if r.Kind != ir.ConfigCycle || !inVariant(r.Variant, variant) {
			continue
		}
		node := &blockNode{rule: r, path: r.Right[0].Segs}
		np := strings.Join(node.path, ".")
		if p, ok := ir.LookupPath(right, join(node.path, []string{"pattern"})); ok {
			list, _ := p.([]any)
			for _, x := range list {
				s, ok := x.(string)
				if !ok {
					fail(r, np+".pattern", "holds %s, not a block name", ir.FormatValue(x))
					break
				}
				node.names = append(node.names, s)
			}
			if len(node.names) == 0 {
				fail(r, np+".pattern", "is empty or not a list")
			}
			for _, b := range node.distinct() {
				if _, ok := ir.LookupPath(right, join(node.path, []string{"blocks", b})); !ok {
					fail(r, np+".blocks."+b, "missing; the pattern names it")
				}
			}
			claims = append(claims, np+".type", np+".pattern")
			for _, b := range node.distinct() {
				claims = append(claims, np+".blocks."+b)
			}
		} else if _, ok := ir.LookupPath(right, join(node.path, []string{"block"})); ok {
			node.single = singleBlockName(m, r, node, right)
			node.names = []string{node.single}
			claims = append(claims, np+".block")
		} else {
			fail(r, np, "has neither a pattern nor a block")
			continue
		}
		rs.blocks = append(rs.blocks, node)
	}
	// claims above cover the structural keys only as leaves when the blocks
	// are empty; block contents are claimed by the rules below.
	structural := slices.Clone(claims)
	claims = nil

	applied := map[*ir.ConfigRule]bool{}
	setLeft := func(r *ir.ConfigRule, segs []string, v any) {
		if !setPath(out, segs, ir.DeepCopy(v)) {
			fail(r, strings.Join(segs, "."), "cannot be written: a parent key holds a value")
		}
	}
	// read returns the agreed value of a rule's right paths.
	read := func(r *ir.ConfigRule) (any, bool) {
		var val any
		var from string
		found := false
		for _, rp := range r.Right {
			paths, ok := rs.resolve(rp.Segs)
			if !ok {
				continue
			}
			for _, p := range paths {
				claims = append(claims, strings.Join(p, "."))
				v, ok := ir.LookupPath(right, p)
				if !ok {
					continue
				}
				ps := strings.Join(p, ".")
				if found && !ir.ValuesEqual(v, val) {
					fail(r, ps, "is %s but %s is %s: they must agree", ir.FormatValue(v), from, ir.FormatValue(val))
					return nil, false
				}
				val, from, found = v, ps, true
			}
		}
		return val, found
	}
	apply := func(r *ir.ConfigRule) {
		switch r.Kind {
		case ir.ConfigKeep, ir.ConfigIgnore:
		case ir.ConfigLeftConst:
			setLeft(r, r.Left.Segs, r.Value)
		case ir.ConfigRightConst:
			paths, ok := rs.resolve(r.Right[0].Segs)
			if !ok {
				return
			}
			for _, p := range paths {
				ps := strings.Join(p, ".")
				claims = append(claims, ps)
				if v, ok := ir.LookupPath(right, p); ok && !ir.ValuesEqual(v, r.Value) {
					fail(r, ps, "is %s; the mapping requires %s", ir.FormatValue(v), ir.FormatValue(r.Value))
				}
			}
		case ir.ConfigRename:
			key := pathString(r.Left)
			v, ok := read(r)
			if !ok {
				if r.RightDefault == nil {
					return
				}
				d, err := ir.Eval(r.RightDefault, e)
				if err != nil {
					fail(r, key, "default: %v", err)
					return
				}
				v = d
			}
			lv, ok := mapValue(r.ValueMap, v, false)
			if !ok {
				fail(r, strings.Join(r.Right[0].Segs, "."), "value %s has no counterpart (known: %s)", ir.FormatValue(v), knownValues(r.ValueMap, false))
				return
			}
			if slices.Contains(absent, key) && r.LeftDefault != nil {
				// Absent on the way in: stay absent if the value is still the default.
				if d, err := ir.Eval(r.LeftDefault, e); err == nil && ir.ValuesEqual(d, lv) {
					return
				}
			}
			setLeft(r, r.Left.Segs, lv)
		case ir.ConfigCycle:
			var node *blockNode
			for _, n := range rs.blocks {
				if n.rule == r {
					node = n
				}
			}
			if node == nil {
				return
			}
			n, err := ir.EvalInt(r.Length, e)
			if err != nil {
				fail(r, pathString(r.Left), "%v", err)
				return
			}
			list := make([]any, n)
			for i := range list {
				name := node.names[i%len(node.names)]
				lv, ok := mapValue(r.ValueMap, name, false)
				if !ok {
					fail(r, strings.Join(node.path, "."), "block %q has no counterpart (known: %s)", name, knownValues(r.ValueMap, false))
					return
				}
				list[i] = lv
			}
			setLeft(r, r.Left.Segs, list)
		}
		applied[r] = true
	}
	// Unconditional rules first (cycles last: their length reads renamed
	// keys), then conditional ones until nothing changes, since conditions
	// read the left config being rebuilt.
	for _, kind := range []bool{false, true} {
		for _, r := range m.Config {
			if inVariant(r.Variant, variant) && len(r.When) == 0 && (r.Kind == ir.ConfigCycle) == kind {
				apply(r)
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, r := range m.Config {
			if applied[r] || len(r.When) == 0 || !inVariant(r.Variant, variant) {
				continue
			}
			if ok, err := active(r.When, e); err == nil && ok {
				apply(r)
				changed = true
			}
		}
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	for _, leaf := range leaves(right) {
		if slices.ContainsFunc(claims, func(c string) bool { return covers(c, leaf) }) ||
			slices.Contains(structural, leaf) {
			continue
		}
		errs = append(errs, &ConfigError{Doc: rightDoc, Key: leaf, Msg: fmt.Sprintf("not claimed by any config rule of %s", m.Name)})
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	full, _, err := completeLeft(m, out)
	if err != nil {
		return nil, &ConfigError{Doc: rightDoc, Msg: err.Error()}
	}
	if res.Env, err = newEnv(m, full); err != nil {
		return nil, &ConfigError{Doc: rightDoc, Msg: err.Error()}
	}
	return res, nil
}

// singleBlockName decides which block a plain single block is: the first
// table entry whose block-specific rules all find their keys, preferring
// entries that have such rules, else the rule's declared Single.
func singleBlockName(m *ir.Mapping, cycle *ir.ConfigRule, node *blockNode, right map[string]any) string {
	k := len(node.path)
	fallback := ""
	for _, pair := range cycle.ValueMap {
		name, _ := pair.Right.(string)
		specific, present := 0, 0
		for _, r := range m.Config {
			if r.Kind != ir.ConfigRename {
				continue
			}
			for _, rp := range r.Right {
				s := rp.Segs
				if len(s) > k+2 && slices.Equal(s[:k], node.path) && s[k] == "blocks" && s[k+1] == name {
					specific++
					if _, ok := ir.LookupPath(right, join(node.path, []string{"block"}, s[k+2:])); ok {
						present++
					}
				}
			}
		}
		if specific > 0 && specific == present {
			return name
		}
		if specific == 0 && fallback == "" {
			fallback = name
		}
	}
	if fallback != "" {
		return fallback
	}
	return cycle.Single
}

// activeConfigRules lists the config rules of the variant whose conditions
// hold on the (completed) left config.
func activeConfigRules(m *ir.Mapping, variant string, e *env) ([]*ir.ConfigRule, error) {
	var out []*ir.ConfigRule
	for _, r := range m.Config {
		if !inVariant(r.Variant, variant) {
			continue
		}
		ok, err := active(r.When, e)
		if err != nil {
			return nil, fmt.Errorf("condition of the rule at %s: %w", posString(r.Pos), err)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// mapValue translates v through a value map (left to right when forward);
// without a map, values pass unchanged.
func mapValue(vm []ir.ValuePair, v any, forward bool) (any, bool) {
	if len(vm) == 0 {
		return v, true
	}
	for _, p := range vm {
		from, to := p.Left, p.Right
		if !forward {
			from, to = to, from
		}
		if ir.ValuesEqual(from, v) {
			return to, true
		}
	}
	return nil, false
}

func knownValues(vm []ir.ValuePair, forward bool) string {
	var s []string
	for _, p := range vm {
		if forward {
			s = append(s, ir.FormatValue(p.Left))
		} else {
			s = append(s, ir.FormatValue(p.Right))
		}
	}
	return strings.Join(s, ", ")
}

// shortestCycle returns the shortest prefix p with names[i] == p[i % len(p)].
func shortestCycle(names []string) []string {
	for n := 1; n <= len(names); n++ {
		ok := true
		for i := n; i < len(names) && ok; i++ {
			ok = names[i] == names[i%n]
		}
		if ok {
			return slices.Clone(names[:n])
		}
	}
	return names
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func variantNames(m *ir.Mapping) string {
	var s []string
	for _, v := range m.Variants {
		s = append(s, v.Name)
	}
	return strings.Join(s, ", ")
}
