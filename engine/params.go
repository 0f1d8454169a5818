package engine

import (
	"errors"
	"fmt"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// checkParams holds the tensors on a side whose program builds its model
// from the config (format.ParamSchema: Fast-LLM) to the parameters that
// program creates for it, as its loader would, before a byte is written: an
// output side's tensors as the plan will write them, for the config written;
// an input side's tensors, for the input's config. A parameter the program
// does not create, one it creates that is not there, and one of another
// shape are each refused, naming the rule that produces (or reads) the
// tensor and the schema's declaration. Dtypes are not compared: the loader
// converts any.
func (p *Plan) checkParams(m *ir.Mapping) error {
	if p.noParamCheck {
		return nil
	}
	var errs []error
	if ps, ok := p.in.(format.ParamSchema); ok {
		read := map[string]tensorAt{}
		for _, j := range p.Jobs {
			for _, b := range j.Sources {
				for i, t := range b {
					read[t.Name] = tensorAt{rule: j.Rule, pos: j.srcRefs[i].Pos, end: j.srcRefs[i].End}
				}
			}
		}
		var have []tensorAt
		for _, t := range p.src.Tensors {
			at := read[t.Name]
			at.name, at.shape, at.file = t.Name, t.Shape, t.File.Path
			have = append(have, at)
		}
		if err := checkSide(m, ps, p.src.Config, have, false); err != nil {
			errs = append(errs, err)
		}
	}
	if ps, ok := p.out.(format.ParamSchema); ok {
		var have []tensorAt
		for _, j := range p.Jobs {
			for _, b := range j.Outputs {
				for i, n := range b {
					have = append(have, tensorAt{name: n, shape: j.OutTypes[i].Shape, rule: j.Rule, pos: j.dstRefs[i].Pos, end: j.dstRefs[i].End})
				}
			}
		}
		if err := checkSide(m, ps, p.Config, have, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tensorAt is one tensor of the side checked: the rule that produces (or
// reads) it, with the span of the rule's reference to it, and for an input
// the file it is in.
type tensorAt struct {
	name     string
	shape    tensor.Shape
	rule     string
	pos, end ir.Pos
	file     string
}

// checkSide compares one side's tensors with the parameters its program
// creates for cfg; output tells whether the plan writes them.
func checkSide(m *ir.Mapping, ps format.ParamSchema, cfg map[string]any, have []tensorAt, output bool) error {
	want, err := ps.Params(m, cfg, 2*len(have)+1024)
	if err != nil {
		return err
	}
	declared := make(map[string]format.Param, len(want.List))
	for _, d := range want.List {
		declared[d.Name] = d
	}
	present := make(map[string]bool, len(have))
	for _, t := range have {
		present[t.name] = true
	}
	var missing []string
	for _, d := range want.List {
		if !present[d.Name] {
			missing = append(missing, d.Name)
		}
	}
	config, what := "the config written", "the rule produces it with shape"
	if !output {
		config, what = "the checkpoint's config", "has shape"
	}
	// Problems are grouped by the rule (or the declaration) they come
	// from, so that a wrong rule in a loop of 32 layers is one finding.
	var g groups
	for _, t := range have {
		d, ok := declared[t.name]
		switch {
		case !ok:
			msg := fmt.Sprintf("%s creates no parameter of this name for %s", want.Program, config)
			if s := diag.DidYouMean(t.name, missing); s != "" {
				msg += "; " + s
			}
			g.add("extra "+t.rule, &TensorError{Tensor: t.name, File: t.file, Pos: t.pos, End: t.end, Msg: msg})
		case !d.Shape.Equal(t.shape):
			g.add("shape "+t.rule, &TensorError{Tensor: t.name, File: t.file, Pos: t.pos, End: t.end,
				Msg: fmt.Sprintf("%s %v, but %s creates it as %v for %s (%s)", what, t.shape, want.Program, d.Shape, config, d.Where())})
		}
	}
	for _, n := range missing {
		d := declared[n]
		msg := fmt.Sprintf("%s creates it as %v for %s (%s), but no rule of %s produces it", want.Program, d.Shape, config, d.Where(), m.Name)
		if !output {
			msg = fmt.Sprintf("%s creates it as %v for %s (%s), but the checkpoint does not hold it", want.Program, d.Shape, config, d.Where())
		}
		g.add("missing "+d.Where(), &TensorError{Tensor: n, Msg: msg})
	}
	return errors.Join(g.errors()...)
}

// groups collects errors by a key, in the order keys first appear, and
// shows a few of each.
type groups struct {
	keys []string
	byKy map[string][]error
}

func (g *groups) add(key string, err error) {
	if g.byKy == nil {
		g.byKy = map[string][]error{}
	}
	if _, ok := g.byKy[key]; !ok {
		g.keys = append(g.keys, key)
	}
	g.byKy[key] = append(g.byKy[key], err)
}

func (g *groups) errors() []error {
	const shown = 3
	var out []error
	for _, k := range g.keys {
		errs := g.byKy[k]
		out = append(out, errs[:min(len(errs), shown)]...)
		if len(errs) > shown {
			out = append(out, moreError(errs[:shown], "... and %d more like it", len(errs)-shown))
		}
	}
	return out
}
