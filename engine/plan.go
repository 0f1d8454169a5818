package engine

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/configmap"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/quote"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// PlanOptions steer planning.
type PlanOptions struct {
	// To forces the output side (one of the mapping's two side names);
	// empty: detected from the input directory.
	To string
	// Variant forces the mapping variant on export (e.g. "dense").
	Variant string
	// ShardBytes limits tensor bytes per output file (0: the side's default).
	ShardBytes int64
	// Memory is the working-memory budget in bytes; chunks are sized to it.
	Memory int64
	// Workers is the number of concurrent chunk workers the budget is
	// shared among.
	Workers int
	// Keep names top-level left config keys to carry on import although no
	// rule maps them (--keep), at the user's risk; the plan notes each.
	Keep []string
	// AllowMappingMismatch lets an export run with a mapping other than
	// the one the import recorded (another name, or the same name with
	// other rules); the plan notes it. Without it such an export is
	// refused.
	AllowMappingMismatch bool
	// Like names a checkpoint of the output side that an export of an
	// input without a record of its import (a Fast-LLM checkpoint Fast-LLM
	// saved itself) takes that record from: what an import of it would have
	// recorded (kept and generic keys, absent keys, branches, variant,
	// dtype, file layout and __metadata__, document texts), once its config
	// is checked to describe the input's model; and its side files the
	// input lacks (see like.go). "": none.
	Like string
	// NoParamCheck skips holding the tensors to the parameters the side's
	// program creates for the config (format.ParamSchema; see
	// checkParams): for a mapping written for a model that program's
	// schema does not describe, such as the engine's own toy mappings.
	NoParamCheck bool
}

// Plan is everything a conversion will do, decided before a byte is written.
type Plan struct {
	Mapping   string
	MapFile   string
	Direction Direction
	From, To  string // side names
	Variant   string
	InputDir  string

	// Targets are the targets the mapping names for its sides (those that
	// have targets).
	Targets []SideTarget

	Config  map[string]any
	Carried *format.Carried
	Notes   []string

	Jobs []*Job
	// Ignored are the input tensors the import drops because the mapping
	// ignores them (`ignore` in a tensors block), by name.
	Ignored   []string
	Shards    []format.Shard
	SideFiles []string
	// Like is the checkpoint an export took its record from (PlanOptions.Like),
	// and LikeFiles its side files the output gets, which the input lacks.
	Like      string
	LikeFiles []string

	BytesIn, BytesOut int64
	// PeakMemory is the most working memory the executor may hold at once.
	PeakMemory int64
	Memory     int64
	Workers    int

	src    *format.Source
	record *format.Carried // export: the record it restores from (the input's, or like's); nil: none
	like   *likeSource     // export: the --like checkpoint, when there is one
	in     format.Format
	out    format.Format
	output *format.Output // what Layout was given; WriteMeta gets the same

	target     string                  // the output side's target, for its Layout and WriteMeta
	leftDTypes map[string]tensor.DType // import: the left tensors' dtypes (recordDTypes)
	casts      map[[2]tensor.DType]int // export: casts added, by (from, to)

	noParamCheck bool
}

// Job produces one rule instance's outputs from its sources.
type Job struct {
	Rule     string // file:line of the rule
	Pos, End ir.Pos // the rule's span, where a diagnostic about the job points
	// Sources[b][i] is tuple element i of binding b. There is one binding
	// unless the pipeline stacks over a variable (one binding per value).
	Sources [][]format.Tensor
	Stages  []Stage
	// Outputs[b][i] names tuple element i of output binding b (several
	// bindings when the pipeline unstacks).
	Outputs  [][]string
	OutTypes []ir.TensorType // per element of one output binding
	// Gather is the index of the stack (or unstack) stage, -1 when none.
	Gather int

	// Copy: the job is a pure rename; bytes go file to file.
	Copy bool
	// Units is how many independent slices along axis 0 (or stacked
	// bindings) the job splits into; ChunkUnits how many one chunk takes.
	Units, ChunkUnits int
	// UnitMemory is the working memory of one unit; a chunk needs
	// UnitMemory * ChunkUnits, or none when all its stages defer to the
	// write (Lazy: a rearrangement of mapped input).
	UnitMemory int64
	Lazy       bool

	// srcRefs[i] and dstRefs[i] are the rule's references that Sources[b][i]
	// and Outputs[b][i] come from, for diagnostics about one tensor.
	srcRefs, dstRefs []*ir.TensorRef
}

// Stage is one op of the pipeline as the executor runs it: one call for the
// whole tuple, or for per-element ops one call per element (Calls of length
// one applies to every element).
type Stage struct {
	Calls      []ir.Call
	PerElement bool
	Pos, End   ir.Pos // the op's call in the rule
}

func (s Stage) String() string {
	if len(s.Calls) == 1 {
		return s.Calls[0].String()
	}
	parts := make([]string, len(s.Calls))
	for i, c := range s.Calls {
		parts[i] = c.String()
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func (s Stage) call(i int) ir.Call {
	if len(s.Calls) == 1 {
		return s.Calls[0]
	}
	return s.Calls[i]
}

// TensorError is a problem with one tensor, naming it, the input file that
// holds it ("" for a tensor missing or to be written) and the span of the
// rule (or of its tensor ref or op) that found it (zero when no rule is
// involved). The file and tensor are printed escaped (diag.Subject: they
// come from the checkpoint); Msg must escape any name of the checkpoint it
// holds (quote.Name).
type TensorError struct {
	Tensor   string
	File     string
	Pos, End ir.Pos
	Msg      string
}

// Diagnostic returns the error as Diagnostics reports it.
func (e *TensorError) Diagnostic() diag.Diagnostic {
	return diag.Diagnostic{Severity: diag.Error, Pos: e.Pos, End: e.End,
		Subject: diag.Subject{File: e.File, Tensor: e.Tensor}, Message: e.Msg}
}

func (e *TensorError) Error() string { return e.Diagnostic().Error() }

// NewPlan opens the input checkpoint (headers and config only) and plans the
// conversion. Every problem that can be found without writing is reported;
// the returned plan holds the input open until Close or Execute.
func NewPlan(m *ir.Mapping, inDir string, opt PlanOptions) (*Plan, error) {
	dir, err := detectDirection(m, inDir, opt.To)
	if err != nil {
		return nil, err
	}
	from, to := m.Left, m.Right
	if dir == Export {
		if m.OneWay {
			return nil, fmt.Errorf("mapping %s is declared oneway: it converts %s to %s only", m.Name, m.Left, m.Right)
		}
		from, to = to, from
	}
	inFmt, err := format.Lookup(from)
	if err != nil {
		return nil, err
	}
	outFmt, err := format.Lookup(to)
	if err != nil {
		return nil, err
	}
	src, err := inFmt.Open(inDir)
	if err != nil {
		return nil, err
	}
	p := &Plan{Mapping: m.Name, MapFile: m.File, Direction: dir, From: from, To: to, InputDir: inDir,
		src: src, in: inFmt, out: outFmt, Memory: opt.Memory, Workers: max(opt.Workers, 1), noParamCheck: opt.NoParamCheck}
	var mismatch string
	if dir == Export {
		if mismatch, err = p.checkRecordedMapping(m, opt.AllowMappingMismatch); err != nil {
			src.Close()
			return nil, err
		}
	}
	if p.Memory <= 0 {
		p.Memory = DefaultMemory
	}
	if err := p.build(m, opt); err != nil {
		src.Close()
		return nil, err
	}
	if mismatch != "" {
		p.Notes = append([]string{mismatch}, p.Notes...)
	}
	return p, nil
}

// checkRecordedMapping refuses an export with a mapping other than the one
// the import recorded: another mapping may lay the tensors out differently
// (a user's Mixtral mapping that stacks experts in another order), and the
// export would write them back wrong without any error. The same name with
// other rules (a different sha256) is another mapping too. A checkpoint
// with no record (saved by Fast-LLM itself) is not checked; a record
// without a hash (an older mapper) is checked by name only.
// With allow it returns the note to make instead.
func (p *Plan) checkRecordedMapping(m *ir.Mapping, allow bool) (string, error) {
	c := p.src.Carried
	if c == nil {
		return "", nil
	}
	sameHash := c.MappingHash == "" || m.Hash == "" || c.MappingHash == m.Hash
	if c.Mapping == m.Name && sameHash {
		return "", nil
	}
	hash := func(h string) string {
		if h == "" {
			return "sha256 not recorded"
		}
		return "sha256 " + h
	}
	recorded := fmt.Sprintf("mapping %s (%s)", quote.Name(c.Mapping), hash(quote.Name(c.MappingHash)))
	given := fmt.Sprintf("mapping %s (%s, %s)", m.Name, quote.Name(m.File), hash(m.Hash))
	if allow {
		return fmt.Sprintf("the import recorded %s; this export uses %s, as --mapping-mismatch=allow says", recorded, given), nil
	}
	what := "another mapping"
	if c.Mapping == m.Name {
		what = "a mapping of the same name with other rules"
	}
	return "", fmt.Errorf("%s was imported with %s, and this export uses %s: %s may lay the tensors out differently and write them back wrong; export with the recorded mapping, or pass --mapping-mismatch=allow to export anyway",
		quote.Name(p.InputDir), recorded, given, what)
}

// DefaultMemory is the working-memory budget when none is given.
const DefaultMemory = 2 << 30

// Close releases the input checkpoint.
func (p *Plan) Close() error { return p.src.Close() }

func detectDirection(m *ir.Mapping, dirPath, to string) (Direction, error) {
	dir := dirPath
	if st, err := os.Stat(dir); err != nil {
		return 0, fmt.Errorf("input: %w", err)
	} else if !st.IsDir() {
		return 0, fmt.Errorf("input %s is not a directory", dir)
	}
	if to != "" && to != m.Left && to != m.Right {
		return 0, fmt.Errorf("--to %s: mapping %s converts between %s and %s", to, m.Name, m.Left, m.Right)
	}
	if to != "" && m.Left == m.Right {
		return 0, fmt.Errorf("mapping %s has %s on both sides; the direction cannot be told by side", m.Name, m.Left)
	}
	if to != "" {
		dir, from := Import, m.Left
		if to == m.Left {
			dir, from = Export, m.Right
		}
		if len(format.Detect(dirPath, from)) == 0 {
			return 0, fmt.Errorf("--to %s converts from a %s checkpoint, and %s does not look like one", to, from, dirPath)
		}
		return dir, nil
	}
	found := format.Detect(dir, m.Left, m.Right)
	switch {
	case len(found) == 1 && found[0] == m.Left:
		return Import, nil
	case len(found) == 1:
		return Export, nil
	case len(found) == 0:
		return 0, fmt.Errorf("%s holds neither a %s nor a %s checkpoint", dir, m.Left, m.Right)
	}
	return 0, fmt.Errorf("%s looks like both a %s and a %s checkpoint; say which to produce with --to", dir, m.Left, m.Right)
}

func (p *Plan) build(m *ir.Mapping, opt PlanOptions) error {
	right := p.out
	if p.Direction == Export {
		right = p.in
	}
	left := p.in
	if p.Direction == Export {
		left = p.out
	}
	blocks, _ := right.(format.BlockSchema) // nil: the side stores no blocks
	tr := configmap.New(m, blocks)
	var extras configmap.Extras
	if g, ok := left.(format.GenericConfig); ok {
		extras.Generic = g.GenericKeys()
	}
	extras.Keep = opt.Keep
	tr.WithExtras(extras)
	doc := p.in.ConfigDoc(p.InputDir)
	var cfg *configmap.Result
	var err error
	if p.Direction == Import {
		if opt.Variant != "" {
			return fmt.Errorf("--variant chooses the layout written on export; on import the config decides")
		}
		if opt.Like != "" {
			return fmt.Errorf("--like %s: an export takes what its input has no record of from a %s checkpoint; this is an import (%s -> %s), and its input's config says it all",
				opt.Like, p.From, p.From, p.To)
		}
		cfg, err = tr.Import(p.src.Config, doc)
	} else {
		if len(opt.Keep) > 0 && opt.Like == "" {
			return fmt.Errorf("--keep carries keys on import (or keys of the --like checkpoint's config); on export what the import carried comes back by itself")
		}
		cfg, err = p.export(m, tr, doc, opt)
	}
	if err != nil {
		return err
	}
	p.Config, p.Variant, p.Notes = cfg.Out, cfg.Variant, cfg.Notes
	if p.Direction == Import {
		p.Carried = cfg.Carried
		p.Carried.MappingHash = m.Hash
	}
	p.noteTargets(m)
	p.Notes = append(p.Notes, p.src.Notes...)
	if err := p.planTensors(m, &env{cfg: cfg.Env}); err != nil {
		return err
	}
	if err := p.checkParams(m); err != nil {
		return err
	}
	if p.Direction == Import {
		recordInput(p.Carried, p.src, p.leftDTypes, p.Ignored)
		for _, f := range slices.Sorted(maps.Keys(p.src.Texts)) {
			p.Notes = append(p.Notes, fmt.Sprintf("%s is not in the form mapper writes: its exact text is recorded with what the output carries for the way back (texts)", quote.Name(f)))
		}
	}
	p.noteLossy()
	p.noteCasts()
	p.SideFiles = p.sideFiles()
	p.likeFiles()
	for _, s := range p.src.Skipped {
		p.Notes = append(p.Notes, fmt.Sprintf("%s is not carried over (not a regular file inside the input directory)", quote.Name(s)))
	}
	// Not an error: publishers ship such files on purpose (Mistral's
	// consolidated.safetensors beside the index), but a file the user
	// expected to be read must not be left out silently.
	for _, s := range p.src.Unlisted {
		p.Notes = append(p.Notes, fmt.Sprintf("%s is not listed in %s: its tensors are not read and it is not carried over", quote.Name(s), p.src.IndexFile))
	}
	return p.layout(opt)
}

// planTensors expands every active rule into jobs and checks that every
// input tensor is claimed exactly once and every output produced once.
func (p *Plan) planTensors(m *ir.Mapping, e *env) error {
	var errs []error
	claimed := map[string]string{}  // input tensor -> rule
	produced := map[string]string{} // output tensor -> rule
	incomplete := false             // a rule's bindings could not all be planned
	reported := map[string]bool{}   // bound problems already reported
	ib := newIterBranches()
	condErrs := map[string]bool{} // per-iteration condition errors, reported once
	for _, r := range m.Tensors {
		if !ir.InVariant(r.Variant, p.Variant) {
			continue
		}
		outer, inner := ir.PerIteration(r.When, r.Loops)
		ok, err := ir.EvalAll(outer, e)
		if err != nil {
			errs = append(errs, spanError(r.Pos, r.End, err, "condition of the rule"))
			continue
		}
		if !ok {
			continue
		}
		// Every binding is planned, so a problem in layer 7 is not hidden
		// behind one in layer 0; the first few failures of a rule are
		// reported and the rest counted. A failing binding still claims the
		// tensors it names: reporting them as claimed by no rule would be
		// false. Only a loop that runs past the input stops early (see
		// bounds.go): then there is nothing left to find.
		var failures []error
		claimNames := func(be *env) {
			names, _ := p.sourceNames(r, be) // a bad bound is also the failure reported
			for _, n := range names {
				if _, ok := claimed[n]; !ok {
					claimed[n] = r.Pos.FileLine()
				}
			}
		}
		x := &expansion{p: p, rule: r, limit: len(p.src.Tensors)}
		err = x.each(r.Loops, e, func(be *env) error {
			if len(inner) > 0 {
				ok, err := ir.EvalAll(inner, be)
				if err != nil {
					d := spanError(r.Pos, r.End, err, "condition of the rule")
					if !condErrs[d.Error()] {
						condErrs[d.Error()] = true
						failures = append(failures, d)
					}
					claimNames(be)
					return nil
				}
				if !ok {
					ib.skip(p, r, inner, be)
					return nil
				}
				ib.took(p, r, inner, be)
			}
			if len(r.Loops) > 0 {
				names, err := p.sourceNames(r, be)
				if err != nil {
					return err
				}
				if len(names) > 0 {
					if _, ok := p.src.Lookup(names[0]); !ok {
						if err := x.pastInput(be, names[0]); err != nil {
							return err
						}
					}
				}
			}
			job, err := p.planJob(r, be)
			if err != nil {
				failures = append(failures, err)
				claimNames(be)
				return nil
			}
			for _, b := range job.Sources {
				for _, t := range b {
					if prev, dup := claimed[t.Name]; dup {
						failures = append(failures, &TensorError{Tensor: t.Name, File: t.File.Path, Pos: r.Pos, End: r.End, Msg: "claimed by two rules (also " + prev + ")"})
						claimNames(be)
						return nil
					}
					claimed[t.Name] = job.Rule
				}
			}
			for _, b := range job.Outputs {
				for _, n := range b {
					if prev, dup := produced[n]; dup {
						failures = append(failures, &TensorError{Tensor: n, Pos: r.Pos, End: r.End, Msg: "produced by two rules (also " + prev + ")"})
						return nil
					}
					produced[n] = job.Rule
				}
			}
			p.Jobs = append(p.Jobs, job)
			return nil
		})
		if err != nil {
			incomplete = true
			var be *boundError
			if !errors.As(err, &be) || !reported[be.key] {
				errs = append(errs, err)
			}
			if be != nil {
				reported[be.key] = true
			}
		}
		const shown = 3
		errs = append(errs, failures[:min(len(failures), shown)]...)
		if len(failures) > shown {
			errs = append(errs, moreError(failures[:shown], "... and %d more instances of this rule fail", len(failures)-shown))
		}
	}
	if p.Direction == Import {
		ierrs, stopped := p.planIgnores(m, e, claimed, reported)
		errs = append(errs, ierrs...)
		incomplete = incomplete || stopped
	}
	p.Notes = append(p.Notes, ib.notes()...)
	byPrefix := map[string]*TensorError{} // one error per binding no branch took
	more := map[string]int{}
	for _, t := range p.src.Tensors {
		if incomplete {
			// Tensors of the bindings not planned would be listed here;
			// the error that stopped them says why.
			break
		}
		if _, ok := claimed[t.Name]; ok {
			continue
		}
		msg := fmt.Sprintf("not claimed by any rule of %s (variant %q); mapper drops nothing silently", m.Name, p.Variant)
		prefix, why := ib.unclaimedWhy(t.Name)
		if why == "" {
			errs = append(errs, &TensorError{Tensor: t.Name, File: t.File.Path, Msg: msg})
			continue
		}
		if byPrefix[prefix] != nil {
			more[prefix]++
			continue
		}
		te := &TensorError{Tensor: t.Name, File: t.File.Path, Msg: msg + "; under " + prefix + " no per-iteration branch applies: " + why}
		byPrefix[prefix] = te
		errs = append(errs, te)
	}
	for prefix, n := range more {
		byPrefix[prefix].Msg += fmt.Sprintf(" (and %d more tensors under %s)", n, prefix)
	}
	return errors.Join(errs...)
}

// planIgnores claims the input tensors the mapping ignores, for an import:
// each one the input has (an ignore names tensors that may be absent) is
// checked against the type its ignore declares and dropped, and the plan
// notes how many each ignore dropped. A tensor a rule claimed too is an
// error (the checker refuses overlapping patterns; this catches what only
// the config makes coincide). stopped tells that a loop bound stopped an
// ignore, as for rules.
func (p *Plan) planIgnores(m *ir.Mapping, e *env, claimed map[string]string, reported map[string]bool) (errs []error, stopped bool) {
	for _, r := range m.Ignores {
		if !ir.InVariant(r.Variant, p.Variant) {
			continue
		}
		outer, inner := ir.PerIteration(r.When, r.Loops)
		ok, err := ir.EvalAll(outer, e)
		if err != nil {
			errs = append(errs, spanError(r.Pos, r.End, err, "condition of the ignore"))
			continue
		}
		if !ok {
			continue
		}
		var dropped []string
		condFailed := false
		x := &expansion{p: p, limit: len(p.src.Tensors)}
		err = x.each(r.Loops, e, func(be *env) error {
			if ok, err := ir.EvalAll(inner, be); err != nil || !ok {
				if err != nil && !condFailed {
					condFailed = true // the same error would come for each binding
					errs = append(errs, spanError(r.Pos, r.End, err, "condition of the ignore"))
				}
				return nil
			}
			for _, ref := range r.Refs {
				name := expand(ref.Pattern, be)
				t, ok := p.src.Lookup(name)
				if !ok {
					continue
				}
				if prev, dup := claimed[name]; dup {
					errs = append(errs, &TensorError{Tensor: name, File: t.File.Path, Pos: ref.Pos, End: ref.End,
						Msg: "ignored, but also claimed by the rule at " + prev})
					continue
				}
				claimed[name] = r.Pos.FileLine()
				want, hasShape, err := declared(ref, be)
				if err != nil {
					errs = append(errs, spanError(ref.Pos, ref.End, err, "shape of %s", quote.Name(name)))
					continue
				}
				if err := checkType(want, hasShape, ir.TensorType{DType: t.DType, Shape: t.Shape}); err != nil {
					errs = append(errs, &TensorError{Tensor: name, File: t.File.Path, Pos: ref.Pos, End: ref.End,
						Msg: strings.Replace(err.Error(), "the rule declares", "the ignore declares", 1)})
					continue
				}
				dropped = append(dropped, name)
			}
			return nil
		})
		if err != nil {
			stopped = true
			var be *boundError
			if !errors.As(err, &be) || !reported[be.key] {
				errs = append(errs, err)
			}
			if be != nil {
				reported[be.key] = true
			}
		}
		if len(dropped) == 0 {
			continue
		}
		p.Ignored = append(p.Ignored, dropped...)
		var pats []string
		for _, ref := range r.Refs {
			pats = append(pats, patternString(ref.Pattern))
		}
		n := "1 tensor"
		if len(dropped) > 1 {
			n = fmt.Sprintf("%d tensors", len(dropped))
		}
		p.Notes = append(p.Notes, fmt.Sprintf("%s dropped, as %s says (ignore %s): not converted, and not written back on export",
			n, r.Pos.FileLine(), strings.Join(pats, ", ")))
	}
	return errs, stopped
}

// patternString prints a tensor pattern as written: model.layers.{l}.w.
func patternString(p ir.Pattern) string {
	var b strings.Builder
	for _, part := range p.Parts {
		switch {
		case part.Var == "":
			b.WriteString(part.Lit)
		case part.Off != 0:
			fmt.Fprintf(&b, "{%s+%d}", part.Var, part.Off)
		default:
			fmt.Fprintf(&b, "{%s}", part.Var)
		}
	}
	return b.String()
}

// SideTarget is the target a mapping names for one of its sides (the
// header's `target "..."`, or the side's default).
type SideTarget struct {
	Side  string `json:"side"`
	Name  string `json:"name"`
	About string `json:"about"`
}

func (t SideTarget) String() string { return fmt.Sprintf("%s %s (%s)", t.Side, t.Name, t.About) }

// noteTargets records the mapping's targets and says when the input
// states another version than the one its side's target names: the
// mapping's config rules then decide what of it they can read.
func (p *Plan) noteTargets(m *ir.Mapping) {
	for _, st := range []struct{ side, name string }{{m.Left, m.LeftTarget}, {m.Right, m.RightTarget}} {
		t, ok := format.LookupTarget(st.side, st.name)
		if !ok {
			continue
		}
		p.Targets = append(p.Targets, SideTarget{Side: st.side, Name: t.Name, About: t.About})
		if st.side == p.To {
			p.target = t.Name
		}
		if st.side == p.From && p.src.Version != "" && p.src.Version != t.Name {
			p.Notes = append(p.Notes, fmt.Sprintf("%s was written by %s %s; mapping %s targets %s %s (%s): its config rules decide what is read",
				quote.Name(p.in.ConfigDoc(p.InputDir)), st.side, quote.Name(p.src.Version), m.Name, st.side, t.Name, t.About))
		}
	}
}

// recordedDTypes is what an import records of the left tensors' dtypes:
// the one they all have, else each one.
func recordedDTypes(d map[string]tensor.DType) (string, map[string]string) {
	var one tensor.DType
	same := true
	for _, x := range d {
		if one == tensor.Invalid {
			one = x
		}
		same = same && x == one
	}
	if len(d) == 0 {
		return "", nil
	}
	if same {
		return one.String(), nil
	}
	out := make(map[string]string, len(d))
	for n, x := range d {
		out[n] = x.String()
	}
	return "", out
}

// noteCasts says in the plan which casts an export adds, and whether they
// lose precision.
func (p *Plan) noteCasts() {
	keys := slices.SortedFunc(maps.Keys(p.casts), func(a, b [2]tensor.DType) int {
		return strings.Compare(a[0].String()+a[1].String(), b[0].String()+b[1].String())
	})
	for _, k := range keys {
		from, to := k[0], k[1]
		msg := fmt.Sprintf("%d tensors are cast from %v to %v, the dtype their rules declare or the import recorded", p.casts[k], from, to)
		if widens(from, to) {
			msg += ": exact"
		} else {
			msg += fmt.Sprintf(": lossy, rounding every value %v cannot hold (exact only for values that came from %v, as after an import by mapper, not after training in %v)", to, to, from)
		}
		p.Notes = append(p.Notes, msg)
	}
}

// widens reports whether every value of from is a value of to.
func widens(from, to tensor.DType) bool {
	return from == to || to == tensor.F32 && (from == tensor.BF16 || from == tensor.F16)
}

// sideFiles are the input's side files the output gets: all but those
// named like a marker file the output side writes itself (Fast-LLM's ok),
// which are noted instead.
func (p *Plan) sideFiles() []string {
	mk, ok := p.out.(format.Markers)
	if !ok {
		return p.src.SideFiles
	}
	var out []string
	for _, f := range p.src.SideFiles {
		if slices.Contains(mk.Markers(), f) {
			p.Notes = append(p.Notes, fmt.Sprintf("%s of the input is not copied: the %s output writes its own", quote.Name(f), p.To))
			continue
		}
		out = append(out, f)
	}
	return out
}

// recordInput records in c what the way back needs of the HF checkpoint src
// to write the same files: which file holds each tensor (less dropped, which
// do not come back) and their naming, each file's __metadata__, the exact
// texts of documents not in mapper's form, and the dtypes the HF tensors
// were in (dtypes: by left tensor name).
func recordInput(c *format.Carried, src *format.Source, dtypes map[string]tensor.DType, dropped []string) {
	c.Texts = src.Texts
	c.DType, c.DTypes = recordedDTypes(dtypes)
	if src.Checkpoint == nil {
		return
	}
	c.Files, c.Naming = inputFiles(src)
	for _, n := range dropped {
		delete(c.Files, n)
	}
	c.FileMetadata = inputFileMetadata(src)
}

// inputFileMetadata records each input weight file's __metadata__ (nil:
// none), so that the way back can write it again.
func inputFileMetadata(src *format.Source) map[string]map[string]string {
	out := make(map[string]map[string]string, len(src.Checkpoint.Files))
	for _, f := range src.Checkpoint.Files {
		out[filepath.Base(f.Path)] = maps.Clone(f.Metadata)
	}
	return out
}

// inputFiles records which file holds each input tensor, when there are
// several or the one file has a name other than the side's default, and
// the naming convention the side found them in, so that the way back can
// write the same files.
func inputFiles(src *format.Source) (map[string]string, string) {
	if len(src.Checkpoint.Files) == 0 {
		return nil, ""
	}
	if len(src.Checkpoint.Files) == 1 && src.IndexFile == "" {
		return nil, ""
	}
	files := make(map[string]string, len(src.Tensors))
	for _, t := range src.Tensors {
		files[t.Name] = filepath.Base(t.File.Path)
	}
	return files, src.Naming
}

// noteLossy says in the plan when an export quantizes: re-encoding values
// that came from MXFP4 gives them back exactly, quantizing anything else
// loses precision, and the user should hear which one this is.
func (p *Plan) noteLossy() {
	if p.Direction != Export {
		return
	}
	for _, j := range p.Jobs {
		for _, st := range j.Stages {
			if st.Calls[0].Def != ir.OpMXFP4Encode {
				continue
			}
			switch {
			case p.like != nil && p.record.Variant == p.Variant:
				p.Notes = append(p.Notes, fmt.Sprintf("variant %s quantizes to MXFP4, as %s (--like) stores the experts: the values come back exactly only where they still are that checkpoint's MXFP4 values (not after training); elsewhere this loses precision", p.Variant, quote.Name(p.Like)))
			case p.record != nil && p.like == nil && p.record.Variant == p.Variant:
				p.Notes = append(p.Notes, fmt.Sprintf("variant %s re-encodes MXFP4 as imported: the decoded values come back exactly (the bytes too where every 32-value group holds a magnitude of 4 or 6)", p.Variant))
			default:
				p.Notes = append(p.Notes, fmt.Sprintf("variant %s quantizes to MXFP4 values that did not come from MXFP4: this loses precision", p.Variant))
			}
			return
		}
	}
}

func expand(pat ir.Pattern, e *env) string {
	var b strings.Builder
	for _, part := range pat.Parts {
		if part.Var == "" {
			b.WriteString(part.Lit)
			continue
		}
		b.WriteString(strconv.FormatInt(e.loop[part.Var]+part.Off, 10))
	}
	return b.String()
}

// evalCall evaluates an op's arguments.
func evalCall(op *ir.Op, e *env) (ir.Call, error) {
	c := ir.Call{Def: op.Def, Args: make([]ir.ArgValue, len(op.Args))}
	for i, a := range op.Args {
		kind := op.Def.Params[i].Kind
		v := &c.Args[i]
		switch kind {
		case ir.ParamInt:
			n, err := ir.EvalInt(a.Expr, e)
			if err != nil {
				return c, err
			}
			v.Int = int(n)
		case ir.ParamIntList:
			for _, x := range a.List {
				n, err := ir.EvalInt(x, e)
				if err != nil {
					return c, err
				}
				v.Ints = append(v.Ints, int(n))
			}
		case ir.ParamDType:
			d, err := tensor.ParseDType(a.DType)
			if err != nil {
				return c, err
			}
			v.DType = d
		case ir.ParamRange:
			n, err := ir.EvalInt(a.Bound, e)
			if err != nil {
				return c, err
			}
			v.Var, v.Bound = a.Var, int(n)
		}
	}
	return c, nil
}

// declared evaluates a tensor ref's declared type; ok is false when the ref
// declares no shape.
func declared(ref *ir.TensorRef, e *env) (ir.TensorType, bool, error) {
	var t ir.TensorType
	if ref.DType != "" {
		d, err := tensor.ParseDType(ref.DType)
		if err != nil {
			return t, false, err
		}
		t.DType = d
	}
	if ref.Shape == nil {
		return t, false, nil
	}
	for _, x := range ref.Shape {
		n, err := ir.EvalDim(x, e)
		if err != nil {
			return t, false, err
		}
		t.Shape = append(t.Shape, int(n))
	}
	return t, true, nil
}

// sourceNames lists the input tensors a rule names for one binding of its
// loops, every value of a stacked variable included, without looking them
// up or checking anything.
func (p *Plan) sourceNames(r *ir.TensorRule, e *env) ([]string, error) {
	refs := r.Left
	if p.Direction == Export {
		refs = r.Right
	}
	gatherVar, gatherN := "", int64(0)
	var gatherOp *ir.Op
	for _, op := range r.Ops {
		if op.Def == nil || op.Def.Gather == ir.GatherNone || len(op.Args) == 0 {
			continue
		}
		if n, err := ir.EvalInt(op.Args[0].Bound, e); err == nil {
			gatherVar, gatherN, gatherOp = op.Args[0].Var, n, op
		}
	}
	if gatherVar != "" && usesVar(refs, gatherVar) {
		if err := gatherBound(gatherVar, gatherN, true, len(p.src.Tensors)); err != nil {
			return nil, spanError(gatherOp.Pos, gatherOp.End, err, "")
		}
	}
	var out []string
	for _, t := range refs {
		if gatherVar == "" || !usesVar([]*ir.TensorRef{t}, gatherVar) {
			out = append(out, expand(t.Pattern, e))
			continue
		}
		for b := range gatherN {
			out = append(out, expand(t.Pattern, e.with(gatherVar, b)))
		}
	}
	return out, nil
}

// usesVar reports whether a name of refs has a placeholder for v.
func usesVar(refs []*ir.TensorRef, v string) bool {
	return v != "" && slices.ContainsFunc(refs, func(t *ir.TensorRef) bool {
		return slices.ContainsFunc(t.Pattern.Parts, func(pp ir.PatternPart) bool { return pp.Var == v })
	})
}

func isGather(c ir.Call) bool { return c.Def.Gather != ir.GatherNone }

// planJob plans one tensor rule for one binding of its loops.
func (p *Plan) planJob(r *ir.TensorRule, e *env) (*Job, error) {
	j := &jobPlan{p: p, r: r, e: e, job: &Job{Rule: r.Pos.FileLine(), Pos: r.Pos, End: r.End, Gather: -1}}
	if err := j.evalCalls(); err != nil {
		return nil, err
	}
	if err := j.nameSides(); err != nil {
		return nil, err
	}
	if err := j.lookupSources(); err != nil {
		return nil, err
	}
	if err := j.checkSources(); err != nil {
		return nil, err
	}
	types, leftTypes, need, err := j.pipelineTypes()
	if err != nil {
		return nil, err
	}
	castFrom := tensor.Invalid // export: the dtype a cast to the left's needs starts from
	if p.Direction == Import {
		j.importStages(types)
	} else if types, castFrom, err = j.exportStages(types, leftTypes, need); err != nil {
		return nil, err
	}
	return j.finish(types, castFrom)
}

// jobPlan is the state of planJob's steps.
type jobPlan struct {
	p   *Plan
	r   *ir.TensorRule
	e   *env
	job *Job

	calls     []ir.Call // the rule's ops, evaluated
	gatherVar string    // the variable a stack or unstack gathers over ("": none)
	gatherN   int
	gatherOp  *ir.Op

	srcRefs, dstRefs      []*ir.TensorRef // by direction: what is read, what is written
	srcNames, dstNames    [][]string      // per binding (see names), per ref
	leftNames, rightNames [][]string      // the same by side
	actual                []ir.TensorType // the sources' types (every binding agrees)
}

// evalCalls evaluates the ops' arguments and finds a gathering op.
func (j *jobPlan) evalCalls() error {
	j.calls = make([]ir.Call, len(j.r.Ops))
	for i, op := range j.r.Ops {
		c, err := evalCall(op, j.e)
		if err != nil {
			return spanError(op.Pos, op.End, err, "%s", op.Name)
		}
		j.calls[i] = c
		if isGather(c) {
			j.gatherVar, j.gatherN, j.gatherOp = c.Args[0].Var, c.Args[0].Bound, op
		}
	}
	return nil
}

// names lists a side's tensors: one binding, or one per value of the
// gathered variable when the side's names use it. With only set, just the
// first binding: an output side's range is trusted only once the op's shape
// rule has checked it against the tensor it cuts or builds.
func (j *jobPlan) names(refs []*ir.TensorRef, only bool) [][]string {
	uses := usesVar(refs, j.gatherVar)
	n := 1
	if uses && !only {
		n = j.gatherN
	}
	out := make([][]string, n)
	for b := range out {
		be := j.e
		if uses {
			be = j.e.with(j.gatherVar, int64(b))
		}
		for _, t := range refs {
			out[b] = append(out[b], expand(t.Pattern, be))
		}
	}
	return out
}

// nameSides expands the names of both sides, once the gathered range is
// known to be one the input can hold.
func (j *jobPlan) nameSides() error {
	j.srcRefs, j.dstRefs = j.r.Left, j.r.Right
	if j.p.Direction == Export {
		j.srcRefs, j.dstRefs = j.r.Right, j.r.Left
	}
	if j.gatherVar != "" {
		if err := gatherBound(j.gatherVar, int64(j.gatherN), usesVar(j.srcRefs, j.gatherVar), len(j.p.src.Tensors)); err != nil {
			return spanError(j.gatherOp.Pos, j.gatherOp.End, err, "")
		}
	}
	j.srcNames, j.dstNames = j.names(j.srcRefs, false), j.names(j.dstRefs, true)
	j.leftNames, j.rightNames = j.srcNames, j.dstNames
	if j.p.Direction == Export {
		j.leftNames, j.rightNames = j.dstNames, j.srcNames
	}
	return nil
}

// lookupSources finds every source tensor in the input.
func (j *jobPlan) lookupSources() error {
	p := j.p
	var errs []error
	missing := 0
	j.job.Sources = make([][]format.Tensor, len(j.srcNames))
	for b, ns := range j.srcNames {
		for i, n := range ns {
			ref := j.srcRefs[i] // names() makes one name per ref, in order
			t, ok := p.src.Lookup(n)
			if !ok {
				// A stack over many values can miss them all: name a few.
				if missing++; missing <= 3 {
					errs = append(errs, &TensorError{Tensor: n, Pos: ref.Pos, End: ref.End, Msg: fmt.Sprintf("missing from the input %s checkpoint %s", p.From, p.InputDir)})
				}
				continue
			}
			if len(j.calls) > 0 && slices.Contains(t.Shape, 0) {
				// An empty tensor holds no values to transform, and its other
				// dimensions could be anything at no cost in bytes.
				errs = append(errs, &TensorError{Tensor: t.Name, File: t.File.Path, Pos: ref.Pos, End: ref.End,
					Msg: fmt.Sprintf("has shape %v: a tensor with a zero dimension cannot go through the rule's ops", t.Shape)})
				continue
			}
			j.job.Sources[b] = append(j.job.Sources[b], t)
		}
	}
	if missing > 3 {
		errs = append(errs, moreError(errs, "... and %d more tensors of this rule are missing", missing-3))
	}
	return errors.Join(errs...)
}

// checkSources checks that every binding of a gathered source has the same
// type, and the sources against what the rule declares for them. On export
// a float source may come in another float dtype than the rule declares:
// Fast-LLM keeps its weights in F32 whatever the model was imported from.
// The pipeline then carries that dtype and the left side is cast to the
// dtype it needs (see exportTypes).
func (j *jobPlan) checkSources() error {
	srcs := j.job.Sources
	for b := 1; b < len(srcs); b++ {
		for i, t := range srcs[b] {
			t0 := srcs[0][i]
			if t.DType != t0.DType || !t.Shape.Equal(t0.Shape) {
				return &TensorError{Tensor: t.Name, File: t.File.Path, Pos: j.srcRefs[i].Pos, End: j.srcRefs[i].End,
					Msg: fmt.Sprintf("is %v%v but %s is %v%v; stacked tensors must agree", t.DType, t.Shape, quote.Name(t0.Name), t0.DType, t0.Shape)}
			}
		}
	}
	j.actual = make([]ir.TensorType, len(srcs[0]))
	for i, t := range srcs[0] {
		j.actual[i] = ir.TensorType{DType: t.DType, Shape: t.Shape}
	}
	for i, ref := range j.srcRefs {
		want, hasShape, err := declared(ref, j.e)
		if err != nil {
			return spanError(ref.Pos, ref.End, err, "shape of %s", quote.Name(j.srcNames[0][i]))
		}
		if j.p.Direction == Export && castable(want.DType) && castable(j.actual[i].DType) {
			want.DType = tensor.Invalid
		}
		if err := checkType(want, hasShape, j.actual[i]); err != nil {
			t := srcs[0][i]
			return &TensorError{Tensor: t.Name, File: t.File.Path, Pos: ref.Pos, End: ref.End, Msg: err.Error()}
		}
	}
	return nil
}

// pipelineTypes gives the types through the pipeline, left to right, and
// checks the right side's. The left side's types are the sources' on
// import; on export the declared ones (an inverse needs the shapes the
// forward pass saw), in the dtype the sources bring, and need is the dtype
// each left tensor must end up in.
func (j *jobPlan) pipelineTypes() (types [][]ir.TensorType, leftTypes []ir.TensorType, need []tensor.DType, err error) {
	p, r := j.p, j.r
	leftTypes = j.actual
	if p.Direction == Export {
		if leftTypes, need, err = p.exportTypes(r, j.e, j.calls, j.actual, j.leftNames[0]); err != nil {
			return nil, nil, nil, err
		}
	} else {
		p.recordDTypes(r, j.job.Sources, j.leftNames)
	}
	if types, err = forwardTypes(r, j.calls, leftTypes, j.leftNames[0][0]); err != nil {
		return nil, nil, nil, err
	}
	if p.Direction == Export && !matchTypes(types[len(types)-1], j.actual) {
		// The sources' dtype differs from the one the last dtype-changing
		// op gives (mxfp4 decodes to BF16, Fast-LLM holds F32): that op
		// gives the sources' dtype instead, so that its inverse starts
		// from them (mxfp4_encode quantizes F32 directly).
		if adapted, ok := adaptDType(j.calls, j.actual); ok {
			if t2, err := forwardTypes(r, adapted, leftTypes, j.leftNames[0][0]); err == nil && matchTypes(t2[len(t2)-1], j.actual) {
				j.calls, types = adapted, t2
			}
		}
	}
	rightTypes := types[len(types)-1]
	if len(rightTypes) != len(r.Right) {
		return nil, nil, nil, spanError(r.Pos, r.End, nil, "the pipeline gives %d tensors but the right side names %d", len(rightTypes), len(r.Right))
	}
	if p.Direction == Export {
		for i := range rightTypes {
			if err := checkType(rightTypes[i], true, j.actual[i]); err != nil {
				t := j.job.Sources[0][i]
				return nil, nil, nil, &TensorError{Tensor: t.Name, File: t.File.Path, Pos: j.srcRefs[i].Pos, End: j.srcRefs[i].End,
					Msg: fmt.Sprintf("does not match what the rule's left side declares: %v", err)}
			}
		}
		return types, leftTypes, need, nil
	}
	for i, ref := range r.Right {
		want, hasShape, err := declared(ref, j.e)
		if err != nil {
			return nil, nil, nil, spanError(ref.Pos, ref.End, err, "shape of %s", quote.Name(j.rightNames[0][i]))
		}
		if err := checkType(want, hasShape, rightTypes[i]); err != nil {
			return nil, nil, nil, &TensorError{Tensor: j.rightNames[0][i], Pos: ref.Pos, End: ref.End, Msg: "the pipeline produces a tensor that " + err.Error()}
		}
	}
	return types, leftTypes, need, nil
}

// importStages runs the ops as written.
func (j *jobPlan) importStages(types [][]ir.TensorType) {
	for i, c := range j.calls {
		j.job.Stages = append(j.job.Stages, Stage{Calls: []ir.Call{c}, PerElement: c.Def.PerElement, Pos: j.r.Ops[i].Pos, End: j.r.Ops[i].End})
	}
	j.job.OutTypes = types[len(types)-1]
}

// exportStages runs the ops' inverses in reverse order, after a cast the
// left side needs: that runs first, on the sources, and the rest of the
// pipeline only moves bytes (exportTypes casts nowhere else). It returns the
// types the executor sees and the dtype a cast starts from (Invalid: none).
func (j *jobPlan) exportStages(types [][]ir.TensorType, leftTypes []ir.TensorType, need []tensor.DType) ([][]ir.TensorType, tensor.DType, error) {
	r := j.r
	castFrom := tensor.Invalid
	to, err := castTo(leftTypes, need)
	if err != nil {
		return nil, castFrom, spanError(r.Pos, r.End, err, "")
	}
	if to != tensor.Invalid {
		cast := ir.Call{Def: ir.OpCast, Args: []ir.ArgValue{{DType: to}}}
		j.job.Stages = append(j.job.Stages, Stage{Calls: []ir.Call{cast}, PerElement: true, Pos: r.Pos, End: r.End})
		castFrom = leftTypes[0].DType
		for i := range leftTypes {
			leftTypes[i].DType = to
		}
		// The types the executor sees: the sources, then the pipeline in
		// the dtype they were cast to.
		if types, err = forwardTypes(r, j.calls, leftTypes, j.leftNames[0][0]); err != nil {
			return nil, castFrom, err
		}
		types = append(types, j.actual)
	}
	for i := len(j.calls) - 1; i >= 0; i-- {
		inv, ok := ir.InverseCalls(j.calls[i], types[i])
		if !ok {
			return nil, castFrom, spanError(r.Ops[i].Pos, r.Ops[i].End, nil, "%s has no inverse (%s), so the rule converts one way only", j.calls[i].Def.Name, j.calls[i].Def.NoInverseWhy)
		}
		j.job.Stages = append(j.job.Stages, Stage{Calls: inv, PerElement: j.calls[i].Def.PerElement, Pos: r.Ops[i].Pos, End: r.Ops[i].End})
	}
	j.job.OutTypes = leftTypes
	return types, castFrom, nil
}

// finish names the outputs, now that the shapes are checked and the output
// side's range is real, and decides the chunking.
func (j *jobPlan) finish(types [][]ir.TensorType, castFrom tensor.DType) (*Job, error) {
	job := j.job
	for i, s := range job.Stages {
		if isGather(s.Calls[0]) {
			job.Gather = i
		}
	}
	job.Outputs = j.names(j.dstRefs, false)
	job.srcRefs, job.dstRefs = j.srcRefs, j.dstRefs
	if len(j.dstRefs) != len(job.OutTypes) {
		return nil, spanError(j.r.Pos, j.r.End, nil, "%d outputs for %d names", len(job.OutTypes), len(j.dstRefs))
	}
	if castFrom != tensor.Invalid {
		j.p.noteCast(castFrom, job.OutTypes[0].DType, len(job.Outputs)*len(job.OutTypes))
	}
	job.Copy = len(job.Stages) == 0
	j.p.chunking(job, types)
	return job, nil
}

// castable: the float dtypes cast converts between.
func castable(d tensor.DType) bool { return d == tensor.F32 || d == tensor.BF16 || d == tensor.F16 }

// exportTypes gives a rule's left tensors' types on export as the
// pipeline produces them: the declared shapes, and for a pipeline that only
// moves bytes the sources' dtype (a float source may be in another float
// dtype than the rule declares). need is the dtype each must be written in
// (Invalid: the one it is produced in): the declared one, else the one the
// import recorded.
func (p *Plan) exportTypes(r *ir.TensorRule, e *env, calls []ir.Call, actual []ir.TensorType, names []string) ([]ir.TensorType, []tensor.DType, error) {
	left := make([]ir.TensorType, len(r.Left))
	need := make([]tensor.DType, len(r.Left))
	layout := !changesDType(calls)
	for i, ref := range r.Left {
		t, hasShape, err := declared(ref, e)
		if err != nil {
			return nil, nil, spanError(ref.Pos, ref.End, err, "shape of %s", quote.Name(names[i]))
		}
		if !hasShape {
			if len(calls) > 0 {
				return nil, nil, spanError(ref.Pos, ref.End, nil, "%s declares no shape; the export needs it to invert %s", quote.Name(names[i]), calls[0].Def.Name)
			}
			t.Shape = actual[i].Shape
		}
		need[i] = t.DType
		if d, err := tensor.ParseDType(p.record.LeftDType(names[i])); need[i] == tensor.Invalid && err == nil && castable(d) {
			need[i] = d
		}
		if layout && (t.DType == tensor.Invalid || castable(t.DType) && castable(actual[0].DType)) {
			t.DType = actual[0].DType
		}
		left[i] = t
	}
	if !layout {
		need = nil // the ops decide the left dtypes, as declared
	}
	return left, need, nil
}

// forwardTypes runs the types of a rule's left tensors through its calls:
// the types after each one, the left types first. name is a left tensor's,
// for errors.
func forwardTypes(r *ir.TensorRule, calls []ir.Call, left []ir.TensorType, name string) ([][]ir.TensorType, error) {
	types := [][]ir.TensorType{left}
	if err := checkSizes(left); err != nil {
		return nil, &TensorError{Tensor: name, Pos: r.Pos, End: r.End, Msg: err.Error()}
	}
	for i, c := range calls {
		out, err := ir.InferCall(c, types[i])
		if err == nil {
			err = checkSizes(out)
		}
		if err != nil {
			return nil, &TensorError{Tensor: name, Pos: r.Ops[i].Pos, End: r.Ops[i].End, Msg: fmt.Sprintf("%s: %v", c.Def.Name, err)}
		}
		types = append(types, out)
	}
	return types, nil
}

// matchTypes reports whether types a pipeline gives match the actual ones.
func matchTypes(got, actual []ir.TensorType) bool {
	if len(got) != len(actual) {
		return false
	}
	for i := range got {
		if checkType(got[i], true, actual[i]) != nil {
			return false
		}
	}
	return true
}

// adaptDType returns calls with the last dtype-changing call made to give
// the sources' float dtype instead of the one it names, when it takes a
// dtype (cast, mxfp4) and the calls after it keep the dtype; ok is false
// otherwise. Its inverse then starts from the sources as they are.
func adaptDType(calls []ir.Call, actual []ir.TensorType) ([]ir.Call, bool) {
	d := actual[0].DType
	if !castable(d) || slices.ContainsFunc(actual, func(t ir.TensorType) bool { return t.DType != d }) {
		return nil, false
	}
	for i := len(calls) - 1; i >= 0; i-- {
		c := calls[i]
		if !c.Def.ChangesDType {
			continue
		}
		if len(c.Def.Params) == 0 || c.Def.Params[0].Kind != ir.ParamDType {
			return nil, false
		}
		args := slices.Clone(c.Args)
		if len(args) == 0 {
			args = []ir.ArgValue{{}}
		}
		args[0].DType = d
		out := slices.Clone(calls)
		out[i] = ir.Call{Def: c.Def, Args: args}
		return out, true
	}
	return nil, false
}

// castTo is the dtype a layout rule's left tensors are cast to on export
// (Invalid: none): the one they need, where it differs from the one they
// arrive in. One cast serves the whole tuple, so its needs must agree.
func castTo(left []ir.TensorType, need []tensor.DType) (tensor.DType, error) {
	to := tensor.Invalid
	for i, d := range need {
		if d == tensor.Invalid || d == left[i].DType {
			continue
		}
		if !castable(left[i].DType) {
			return tensor.Invalid, fmt.Errorf("%v tensors must be written as %v; only floats are cast", left[i].DType, d)
		}
		to = d
		break
	}
	if to == tensor.Invalid {
		return to, nil
	}
	for _, d := range need {
		if d != tensor.Invalid && d != to {
			return tensor.Invalid, fmt.Errorf("the left tensors must be written as %v and as %v, but one cast serves them all", d, to)
		}
	}
	return to, nil
}

// noteCast counts the tensors a cast an export adds makes, for the plan's
// notes.
func (p *Plan) noteCast(from, to tensor.DType, tensors int) {
	if p.casts == nil {
		p.casts = map[[2]tensor.DType]int{}
	}
	p.casts[[2]tensor.DType{from, to}] += tensors
}

// recordDTypes records, on import, the dtype of each left tensor whose rule
// declares none, so that the way back can cast a tensor trained in another
// dtype back to it.
func (p *Plan) recordDTypes(r *ir.TensorRule, sources [][]format.Tensor, names [][]string) {
	if p.leftDTypes == nil {
		p.leftDTypes = map[string]tensor.DType{}
	}
	for i, ref := range r.Left {
		if ref.DType != "" {
			continue
		}
		for b := range sources {
			if i < len(sources[b]) && i < len(names[b]) {
				p.leftDTypes[names[b][i]] = sources[b][i].DType
			}
		}
	}
}

func changesDType(calls []ir.Call) bool {
	return slices.ContainsFunc(calls, func(c ir.Call) bool { return c.Def.ChangesDType })
}

// checkType compares a declared type (dtype Invalid: not declared; shape
// only when hasShape) with an actual one.
func checkType(want ir.TensorType, hasShape bool, got ir.TensorType) error {
	if want.DType != tensor.Invalid && got.DType != tensor.Invalid && want.DType != got.DType {
		return fmt.Errorf("is %v, the rule declares %v", got.DType, want.DType)
	}
	if hasShape && !want.Shape.Equal(got.Shape) {
		return fmt.Errorf("has shape %v, the rule declares %v", got.Shape, want.Shape)
	}
	return nil
}

// chunking decides how a job splits along axis 0 so that peak memory stays
// bounded whatever the tensor size. types are the forward types per stage.
func (p *Plan) chunking(job *Job, fwd [][]ir.TensorType) {
	job.Units, job.ChunkUnits = 1, 1
	if job.Copy {
		return
	}
	// Working memory of the whole job: the largest input+output of one
	// stage; stage 0 reads the mapped input and costs nothing for it.
	stageTypes := fwd
	if p.Direction == Export {
		stageTypes = slices.Clone(fwd)
		slices.Reverse(stageTypes)
	}
	gatherN := 1 // bindings of the stacked variable, when there is one
	if job.Gather >= 0 {
		gatherN = job.Stages[job.Gather].Calls[0].Args[0].Bound
	}
	bindings := func(i int) int64 {
		// The types before an import stack / after an export unstack are
		// per binding (what fwd holds), and there are gatherN of them.
		if (p.Direction == Import && i <= job.Gather) || (p.Direction == Export && job.Gather >= 0 && i > job.Gather) {
			return int64(gatherN)
		}
		return 1
	}
	var peak int64
	for i := 1; i < len(stageTypes); i++ {
		in := int64(0)
		if i > 1 {
			in = satMul(typesBytes(stageTypes[i-1]), bindings(i-1))
		}
		out := satMul(typesBytes(stageTypes[i]), bindings(i))
		peak = max(peak, satAdd(in, out))
	}
	units := 1
	switch {
	case job.Gather >= 0:
		// Chunk over the gathered variable when the stages on the other
		// side of the gather keep axis 0 as a batch.
		ok := true
		for i, s := range job.Stages {
			if (p.Direction == Import && i > job.Gather) || (p.Direction == Export && i < job.Gather) {
				ok = ok && stageBatched(s)
			}
		}
		if ok {
			units = gatherN
		}
	case slices.IndexFunc(job.Stages, func(s Stage) bool { return !stageBatched(s) }) < 0:
		units = 0
		for _, t := range job.Sources[0] {
			units = gcd(units, leading(t.Shape))
		}
		for _, t := range job.OutTypes {
			units = gcd(units, leading(t.Shape))
		}
		units = max(units, 1)
	}
	job.Units = units
	job.UnitMemory = peak / int64(units)
	if peak%int64(units) != 0 {
		job.UnitMemory++ // rounded up, without peak + units - 1 overflowing
	}
	perWorker := p.Memory / int64(p.Workers)
	k := int64(1)
	if job.UnitMemory > 0 {
		k = max(1, min(perWorker, ChunkTarget)/job.UnitMemory)
	}
	job.ChunkUnits = int(min(k, int64(units)))
	// What a chunk holds beside its working memory (its mapped input, its
	// write buffer) counts in the budget too: shrink chunks until all of
	// it fits a worker's share. With large budgets the working-memory cap
	// above decides, as it did before.
	job.Lazy = p.allLazy(job)
	prev := job.ChunkUnits
	job.ChunkUnits = p.fitChunk(job, job.ChunkUnits, perWorker)
	if job.Lazy && job.ChunkUnits != prev && !p.allLazy(job) {
		job.Lazy = false
		job.ChunkUnits = p.fitChunk(job, job.ChunkUnits, perWorker)
	}
}

// chunkNeed bounds what a chunk of k units of job reserves: its working
// memory, the mapped input it reads, and its write buffer.
func (p *Plan) chunkNeed(job *Job, k int) (working, input, write int64) {
	if !job.Lazy {
		working = satMul(job.UnitMemory, int64(k))
	}
	unitIn := int64(0)
	if job.Gather >= 0 && p.Direction == Import && job.Units > 1 {
		for b := range job.Sources {
			unitIn = max(unitIn, p.chunkInputBytes(job, b, b+1))
		}
	} else {
		units := int64(job.Units)
		for _, srcs := range job.Sources {
			for _, s := range srcs {
				size := s.Info.Size()
				unitIn = satAdd(unitIn, size/units+min(size%units, 1)) // rounded up
			}
		}
	}
	return working, satMul(unitIn, int64(k)), safetensors.WriteBuffer(satMul(p.chunkOutputBytes(job, 0, 1), int64(k)))
}

// fitChunk returns the most units, at most k (and at least 1), whose chunk
// needs no more than room in all.
func (p *Plan) fitChunk(job *Job, k int, room int64) int {
	fits := func(k int) bool {
		w, in, wb := p.chunkNeed(job, k)
		return satAdd(satAdd(w, in), wb) <= room
	}
	lo, hi := 1, k // the need grows with k: find the last k that fits
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// ChunkTarget caps one chunk's working memory so that large tensors split
// into enough pieces for every worker to take some.
const ChunkTarget = 64 << 20

func stageBatched(s Stage) bool {
	for _, c := range s.Calls {
		if !c.Def.Batched(c.Args) {
			return false
		}
	}
	return true
}

func leading(s tensor.Shape) int {
	if len(s) == 0 {
		return 1
	}
	return s[0]
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func typesBytes(ts []ir.TensorType) int64 {
	var n int64
	for _, t := range ts {
		d := t.DType
		if d == tensor.Invalid {
			d = tensor.F32 // undeclared dtype: assume the widest float we produce
		}
		b, _ := t.Shape.ByteSize(d) // checkSizes refused the types where this fails
		n = satAdd(n, b)
	}
	return n
}

// layout orders the outputs and lets the output side shard them.
func (p *Plan) layout(opt PlanOptions) error {
	var entries []safetensors.Entry
	for _, j := range p.Jobs {
		for _, b := range j.Outputs {
			for i, n := range b {
				t := j.OutTypes[i]
				entries = append(entries, safetensors.Entry{Name: n, DType: t.DType, Shape: t.Shape})
			}
		}
		for _, b := range j.Sources {
			for _, t := range b {
				var err error
				if p.BytesIn, err = addSize(p.BytesIn, t.Info.Size()); err != nil {
					return fmt.Errorf("input size: %w", err)
				}
			}
		}
		if !j.Copy {
			p.PeakMemory = max(p.PeakMemory, satMul(j.UnitMemory, int64(j.ChunkUnits)))
		}
	}
	slices.SortFunc(entries, func(a, b safetensors.Entry) int { return naturalCompare(a.Name, b.Name) })
	for _, en := range entries {
		if en.DType == tensor.Invalid {
			return fmt.Errorf("tensor %s: the output dtype is unknown; declare it in the rule", quote.Name(en.Name))
		}
		n, err := en.Size()
		if err != nil {
			return fmt.Errorf("tensor %s: %w", quote.Name(en.Name), err)
		}
		if p.BytesOut, err = addSize(p.BytesOut, n); err != nil {
			return fmt.Errorf("output size at tensor %s: %w", quote.Name(en.Name), err)
		}
	}
	p.output = &format.Output{Config: p.Config, Carried: p.Carried, Tensors: entries, ShardBytes: opt.ShardBytes, Target: p.target}
	if c := p.record; p.Direction == Export && c != nil && c.Variant == p.Variant && opt.ShardBytes == 0 &&
		!slices.ContainsFunc(entries, func(e safetensors.Entry) bool { _, ok := c.Files[e.Name]; return !ok }) {
		// Write the files the import started from.
		p.output.Files, p.output.Naming = c.Files, c.Naming
	}
	if c := p.record; p.Direction == Export && c != nil {
		p.output.Original = &format.Original{FileMetadata: c.FileMetadata, Texts: c.Texts}
	}
	shards, err := p.out.Layout(p.output)
	if err != nil {
		return err
	}
	p.Shards = shards
	p.Notes = append(p.Notes, p.output.Notes...)
	// Workers run chunks side by side, within the budget.
	p.PeakMemory = min(satMul(p.PeakMemory, int64(p.Workers)), p.Memory)
	for _, j := range p.Jobs {
		if j.Copy {
			continue
		}
		if w, in, wb := p.chunkNeed(j, j.ChunkUnits); satAdd(satAdd(w, in), wb) > p.Memory {
			return &TensorError{Tensor: j.Outputs[0][0], Pos: j.Pos, End: j.End, Msg: fmt.Sprintf(
				"one chunk needs %s (%s of working memory, %s of input, %s of write buffer), more than the budget of %s; raise --memory",
				FormatBytes(satAdd(satAdd(w, in), wb)), FormatBytes(w), FormatBytes(in), FormatBytes(wb), FormatBytes(p.Memory))}
		}
	}
	return nil
}

// naturalCompare orders names with embedded numbers numerically, so layer 2
// comes before layer 10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, _ := strconv.ParseUint(a[:da], 10, 64)
			nb, _ := strconv.ParseUint(b[:db], 10, 64)
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// FormatBytes prints a byte count with a binary unit.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
