package engine

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/configmap"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/quote"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// An export restores what the output side's config holds beyond what the
// mapping maps (kept and generic keys, the spelling a recorded when chose,
// the keys left out), and the files' layout, dtype and __metadata__, from
// the record an import by mapper leaves in its output (format.Carried). A
// checkpoint the input side's own program saved (Fast-LLM re-saves without
// metadata.mapper, after training always) has none. PlanOptions.Like names
// a checkpoint of the output side to take that record from instead: the
// one the input was converted or trained from. Its config is imported with
// the same mapping, which gives exactly what an import of it would have
// recorded, and its weight files' headers (when it has weights) give the
// rest. Then the export's config, rebuilt with that record, must be the
// like checkpoint's own, key for key and value for value: the record holds
// only what the mapping does not map, so any difference is in a mapped
// key, and means the like checkpoint has another architecture (a wrong
// base model named). The like checkpoint's side files (tokenizer,
// generation config, chat template...) that the input lacks are copied too.
//
// An input that has a record is not exported with --like: its own record
// is the import's, complete, and says everything --like would.

// likeSource is the --like checkpoint, as far as an export takes from it.
type likeSource struct {
	dir     string
	doc     string          // its config document, as messages name it
	config  map[string]any  // its config, as read
	carried *format.Carried // what an import of it with the mapping records
	weights int             // weight files read (0: config and side files only)
	side    []string        // its side files
	notes   []string        // what it leaves out (subdirectories, unlisted files)
}

// export rebuilds the output side's config from the input's and the record
// it restores from: the input's own, or the one taken from opt.Like.
func (p *Plan) export(m *ir.Mapping, tr *configmap.Translator, doc string, opt PlanOptions) (*configmap.Result, error) {
	p.record = p.src.Carried
	if opt.Like != "" {
		if p.src.Carried != nil {
			return nil, fmt.Errorf("--like %s: %s holds the record of its import by mapper (metadata.mapper), which restores everything --like would, and exactly: export without --like",
				opt.Like, quote.Name(p.InputDir))
		}
		lk, err := p.openLike(m, tr, opt.Like)
		if err != nil {
			return nil, err
		}
		p.like, p.record, p.Like = lk, lk.carried, lk.dir
	}
	cfg, err := tr.Export(p.src.Config, p.record, doc, opt.Variant, len(p.src.Tensors))
	if err != nil {
		if p.like != nil {
			how := ""
			if v := p.record.Variant; v != "" {
				how = fmt.Sprintf(" (variant %s)", quote.Name(v))
			}
			if b := p.record.Branches; len(b) > 0 {
				how += " (recorded whens: " + branchList(b) + ")"
			}
			err = errors.Join(err, fmt.Errorf("--like %s: the export decides as its config does%s, so the errors here may only mean that it is not the %s checkpoint %s was converted or trained from",
				quote.Name(p.Like), how, p.To, quote.Name(p.InputDir)))
		}
		return nil, err
	}
	if p.like != nil {
		if err := p.checkLike(m, cfg); err != nil {
			return nil, err
		}
		for _, k := range opt.Keep {
			if _, ok := p.record.Extra[k]; !ok {
				cfg.Notes = append(cfg.Notes, fmt.Sprintf("--keep %s carries nothing: %s has no such top-level key, or a rule of %s maps it", quote.Name(k), quote.Name(p.like.doc), m.Name))
			}
		}
	} else if p.record == nil {
		cfg.Notes = append(cfg.Notes, fmt.Sprintf("without that record, tensors whose rules declare no dtype are written in the dtype they come in, and the files as the %s side shards them by default; --like DIR, naming the %s checkpoint %s was converted or trained from, restores all of it (and copies its tokenizer and other side files)",
			p.To, p.To, quote.Name(p.InputDir)))
	}
	return cfg, nil
}

// jsonValue spells a value as a config.json does, where 150000.0 is not
// 150000.
func jsonValue(v any) string {
	b, err := pyjson.Encode(v, -1, false)
	if err != nil {
		return ir.FormatValue(v)
	}
	return string(b)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return quote.Name(s)
}

// branchList lists recorded whens and how they went, for messages:
// "a: true, b: false".
func branchList(b map[string]bool) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(b)) {
		parts = append(parts, fmt.Sprintf("%s: %t", k, b[k]))
	}
	return strings.Join(parts, ", ")
}

// openLike reads the --like checkpoint in dir (a checkpoint of the output
// side; its config and side files, and its weight files' headers when it
// has them) and imports its config with tr, for the record an import of it
// would have made. It holds nothing open when it returns.
func (p *Plan) openLike(m *ir.Mapping, tr *configmap.Translator, dir string) (*likeSource, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("--like: %w", quote.PathError(err))
	}
	if !p.out.Detect(dir) {
		return nil, fmt.Errorf("--like %s does not look like a %s checkpoint", dir, p.To)
	}
	var src *format.Source
	var err error
	if co, ok := p.out.(format.ConfigOpener); ok {
		src, err = co.OpenConfig(dir)
	} else {
		src, err = p.out.Open(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("--like %s: %w", dir, err)
	}
	defer src.Close()
	lk := &likeSource{dir: dir, doc: p.out.ConfigDoc(dir), config: src.Config, side: src.SideFiles}
	res, err := tr.Import(src.Config, lk.doc)
	if err != nil {
		return nil, err
	}
	c := res.Carried
	c.MappingHash = m.Hash
	// The dtype of every float tensor: the export casts to it only where a
	// rule declares none, as it does with an import's record. No tensor is
	// dropped here: nothing is planned, and the export writes only the
	// tensors it has (a name recorded beside them is never asked for).
	floats := map[string]tensor.DType{}
	for _, t := range src.Tensors {
		if castable(t.DType) {
			floats[t.Name] = t.DType
		}
	}
	recordInput(c, src, floats, nil)
	if src.Checkpoint != nil {
		lk.weights = len(src.Checkpoint.Files)
	}
	lk.carried = c
	for _, s := range src.Skipped {
		lk.notes = append(lk.notes, fmt.Sprintf("%s of %s (--like) is not carried over (not a regular file inside it)", quote.Name(s), quote.Name(dir)))
	}
	for _, s := range src.Unlisted {
		lk.notes = append(lk.notes, fmt.Sprintf("%s of %s (--like) is not listed in %s: not read, and not carried over", quote.Name(s), quote.Name(dir), src.IndexFile))
	}
	return lk, nil
}

// checkLike refuses an export whose config, rebuilt with the like
// checkpoint's record, is not that checkpoint's config: the record gives
// back every key the mapping does not map as it was, so a key that differs
// is one the mapping maps, and the input describes another model. Keys the
// two configs hold as the same number spelled differently (150000 and
// 150000.0: Fast-LLM holds its float fields as floats) are written as the
// like checkpoint spells them. With another variant than the like
// checkpoint's (--variant), the keys the two variants' own rules claim are
// left out of the comparison.
func (p *Plan) checkLike(m *ir.Mapping, cfg *configmap.Result) error {
	lk := p.like
	var variantOwn [][]string
	if cfg.Variant != lk.carried.Variant {
		variantOwn = variantPaths(m, cfg.Variant, lk.carried.Variant)
	}
	ignored := ignoredPaths(m, cfg.Variant)
	var errs []error
	var respelled, otherVariant, dropped []string
	compared := 0
	inDoc := p.in.ConfigDoc(p.InputDir)
	compareConfigs(lk.config, cfg.Out, nil, func(path []string, lv any, lok bool, ov any, ook bool) {
		key := strings.Join(path, ".")
		under := func(s []string) bool { return len(path) >= len(s) && slices.Equal(path[:len(s)], s) }
		if slices.ContainsFunc(ignored, under) {
			dropped = append(dropped, key) // only the like's: an export writes no ignored key
			return
		}
		if slices.ContainsFunc(variantOwn, under) {
			if !lok || !ook || !ir.ValuesEqual(lv, ov) {
				otherVariant = append(otherVariant, key)
			}
			return
		}
		if !carried(lk.carried, path) {
			compared++
		}
		if lok && ook && ir.ValuesEqual(lv, ov) {
			if !reflect.DeepEqual(lv, ov) {
				setLeaf(cfg.Out, path, ir.DeepCopy(lv))
				respelled = append(respelled, fmt.Sprintf("%s %s (the input holds %s)", quote.Name(key), jsonValue(lv), jsonValue(ov)))
			}
			return
		}
		here, there := "is absent", "none"
		if lok {
			here = "is " + ir.FormatValue(lv)
		}
		if ook {
			there = ir.FormatValue(ov)
		}
		from := ""
		if rp := rightPathsOf(m, cfg.Variant, path); len(rp) > 0 {
			from = " (from " + strings.Join(rp, ", ") + ")"
		}
		errs = append(errs, &configmap.Error{Doc: lk.doc, Key: key,
			Msg: fmt.Sprintf("%s, but %s gives %s%s", here, quote.Name(inDoc), there, from)})
	})
	if len(errs) > 0 {
		errs = append(errs, fmt.Errorf("--like %s does not describe the model of %s: %d config %s differ (above); --like must name the %s checkpoint %s was converted or trained from",
			quote.Name(lk.dir), quote.Name(p.InputDir), len(errs), plural(len(errs), "key", "keys"), p.To, quote.Name(p.InputDir)))
		return errors.Join(errs...)
	}
	cfg.Notes = append(cfg.Notes, p.likeNotes(m, cfg, compared)...)
	if len(otherVariant) > 0 {
		cfg.Notes = append(cfg.Notes, fmt.Sprintf("variant %s is not the one %s has (%s): the keys of the variants' own rules are not compared with it, and are written as variant %s has them (%s)",
			quote.Name(cfg.Variant), quote.Name(lk.doc), orNone(lk.carried.Variant), quote.Name(cfg.Variant), strings.Join(quote.Names(otherVariant), ", ")))
	}
	if len(dropped) > 0 {
		cfg.Notes = append(cfg.Notes, fmt.Sprintf("config keys %s has that %s ignores are not written, as on any export: %s",
			quote.Name(lk.doc), m.Name, strings.Join(quote.Names(dropped), ", ")))
	}
	if len(respelled) > 0 {
		cfg.Notes = append(cfg.Notes, fmt.Sprintf("written as %s spells them, the same numbers: %s", quote.Name(lk.doc), strings.Join(respelled, ", ")))
	}
	return nil
}

// likeNotes say what the export takes from the like checkpoint: every key
// it restores or leaves out, the branches, the variant, and what of the
// files it restores or cannot.
func (p *Plan) likeNotes(m *ir.Mapping, cfg *configmap.Result, compared int) []string {
	lk, c := p.like, p.like.carried
	notes := []string{fmt.Sprintf("%s has no record of an import by mapper (metadata.mapper): the export takes the record an import of %s (--like) with mapping %s makes, and %s agrees with it on every key the mapping maps (%d compared)",
		quote.Name(p.InputDir), quote.Name(lk.dir), m.Name, quote.Name(lk.doc), compared)}
	var parts []string
	if len(c.Kept) > 0 {
		parts = append(parts, fmt.Sprintf("kept by %s: %s", m.Name, strings.Join(quote.Names(slices.Sorted(maps.Keys(c.Kept))), ", ")))
	}
	if len(c.Extra) > 0 {
		parts = append(parts, fmt.Sprintf("carried without a rule (generic, --keep): %s", strings.Join(quote.Names(slices.Sorted(maps.Keys(c.Extra))), ", ")))
	}
	if len(parts) > 0 {
		notes = append(notes, fmt.Sprintf("config keys restored from %s: %s", quote.Name(lk.doc), strings.Join(parts, "; ")))
	}
	if len(c.Absent) > 0 {
		notes = append(notes, fmt.Sprintf("config keys left out as %s has none (their defaults hold): %s", quote.Name(lk.doc), strings.Join(c.Absent, ", ")))
	}
	if len(c.ForDefault) > 0 {
		notes = append(notes, fmt.Sprintf("config keys written as %s spells their default (a rule's for value): %s", quote.Name(lk.doc), strings.Join(c.ForDefault, ", ")))
	}
	if len(c.Branches) > 0 {
		notes = append(notes, fmt.Sprintf("recorded whens decided as %s decides them (%s)", quote.Name(lk.doc), branchList(c.Branches)))
	}
	if c.Variant != "" && cfg.Variant == c.Variant {
		notes = append(notes, fmt.Sprintf("variant %s, the one %s has", quote.Name(c.Variant), quote.Name(lk.doc)))
	}
	if lk.weights == 0 {
		notes = append(notes, fmt.Sprintf("%s (--like) has no weight files: their layout, their safetensors __metadata__ and the tensors' dtype are not restored (the %s side's defaults; tensors whose rules declare no dtype are written in the one they come in)",
			quote.Name(lk.dir), p.To))
	} else {
		var parts []string
		if c.Variant == cfg.Variant {
			parts = append(parts, fmt.Sprintf("the layout of its %d weight %s", lk.weights, plural(lk.weights, "file", "files")))
		}
		dt := "the dtypes of its tensors"
		if c.DType != "" {
			dt = "its tensors' dtype " + c.DType
		}
		parts = append(parts, "their safetensors __metadata__", dt+" for the tensors whose rules declare none")
		note := fmt.Sprintf("from %s's weight files: %s", quote.Name(lk.dir), strings.Join(parts, ", "))
		if c.Variant != cfg.Variant {
			note += fmt.Sprintf(" (not their layout: they hold variant %s)", quote.Name(c.Variant))
		}
		notes = append(notes, note)
	}
	for _, f := range slices.Sorted(maps.Keys(c.Texts)) {
		notes = append(notes, fmt.Sprintf("%s of %s is not in the form mapper writes: its exact text is restored where the output's content is the same", quote.Name(f), quote.Name(lk.dir)))
	}
	return append(notes, lk.notes...)
}

// likeFiles lists the like checkpoint's side files the output gets: those
// the input does not have itself (its own win, noted).
func (p *Plan) likeFiles() {
	if p.like == nil {
		return
	}
	var shadowed []string
	for _, f := range p.like.side {
		if slices.Contains(p.src.SideFiles, f) {
			shadowed = append(shadowed, f)
			continue
		}
		p.LikeFiles = append(p.LikeFiles, f)
	}
	if len(p.LikeFiles) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("side files copied from %s (--like), which %s lacks: %s",
			quote.Name(p.Like), quote.Name(p.InputDir), strings.Join(quote.Names(p.LikeFiles), ", ")))
	}
	if len(shadowed) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("side files of %s copied rather than those of the same name in %s (--like): %s",
			quote.Name(p.InputDir), quote.Name(p.Like), strings.Join(quote.Names(shadowed), ", ")))
	}
}

// compareConfigs walks two config documents side by side and calls leaf
// for every path where they are not both maps: a value of either, or its
// absence (ok false).
func compareConfigs(a, b map[string]any, path []string, leaf func(path []string, av any, aok bool, bv any, bok bool)) {
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		av, aok := a[k]
		bv, bok := b[k]
		p := append(slices.Clip(path), k)
		am, aMap := av.(map[string]any)
		bm, bMap := bv.(map[string]any)
		if aMap && bMap {
			compareConfigs(am, bm, p, leaf)
			continue
		}
		leaf(p, av, aok, bv, bok)
	}
}

// carried reports whether the record holds the left key at path whole:
// under a kept key, or an extra.
func carried(c *format.Carried, path []string) bool {
	if _, ok := c.Extra[path[0]]; ok {
		return true
	}
	for k := range c.Kept {
		ks := strings.Split(k, ".")
		if len(path) >= len(ks) && slices.Equal(path[:len(ks)], ks) {
			return true
		}
	}
	return false
}

// setLeaf replaces the value at path, whose parents are maps.
func setLeaf(doc map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		doc = doc[k].(map[string]any)
	}
	doc[path[len(path)-1]] = v
}

// variantPaths lists the left paths the config rules of the given
// variants claim.
func variantPaths(m *ir.Mapping, variants ...string) [][]string {
	var out [][]string
	for _, r := range m.Config {
		if r.Variant == "" || !slices.Contains(variants, r.Variant) {
			continue
		}
		if len(r.Left.Segs) > 0 {
			out = append(out, r.Left.Segs)
		}
		for _, k := range r.Keys {
			out = append(out, k.Segs)
		}
	}
	return out
}

// ignoredPaths lists the left paths the ignore rules of the variant claim:
// an import drops them, and nothing brings them back.
func ignoredPaths(m *ir.Mapping, variant string) [][]string {
	var out [][]string
	for _, r := range m.Config {
		if r.Kind == ir.ConfigIgnore && ir.InVariant(r.Variant, variant) {
			for _, k := range r.Keys {
				out = append(out, k.Segs)
			}
		}
	}
	return out
}

// rightPathsOf lists the right paths of the rules of the variant that
// rename (or cycle) the left key at path, for messages.
func rightPathsOf(m *ir.Mapping, variant string, path []string) []string {
	var out []string
	for _, r := range m.Config {
		if (r.Kind != ir.ConfigRename && r.Kind != ir.ConfigCycle) || !ir.InVariant(r.Variant, variant) || !slices.Equal(r.Left.Segs, path) {
			continue
		}
		for _, rp := range r.Right {
			if s := strings.Join(rp.Segs, "."); !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// likeDirs is the --like directory of a plan as a list, for the checks that
// protect every directory a conversion reads.
func (p *Plan) likeDirs() []string {
	if p.Like == "" {
		return nil
	}
	return []string{p.Like}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
