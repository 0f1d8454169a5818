// Package configmap translates a checkpoint's config document between the
// two sides of a mapping by the mapping's config rules (see the config
// section of docs/language.md). Import maps a left document to the right
// side and records in a format.Carried what the way back needs: left keys
// the right side has no place for, the left keys that were absent, the
// variant. Export rebuilds the left document from a right one and that
// record.
//
// It never touches tensors: the planner (package engine) translates the
// config first and plans the tensor rules in the Env the translation returns.
// How the right side stores the per-layer block layout a `cycle` rule
// manages is the side's business, asked through format.BlockSchema.
package configmap

import (
	"errors"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
)

// Translator translates config documents by one mapping's config rules.
type Translator struct {
	m      *ir.Mapping
	blocks format.BlockSchema
	extras Extras
}

// Extras are top-level left keys that travel on import without a rule
// naming them (format.Carried.Extra), checked after the rules: a key a rule
// claims is the rule's.
type Extras struct {
	// Generic are the left side's generic keys (format.GenericConfig).
	Generic format.GenericKeys
	// Keep are the keys the user asked to carry (--keep), at their own
	// risk: the right side's model does not see them.
	Keep []string
}

// WithExtras makes t carry e on import.
func (t *Translator) WithExtras(e Extras) *Translator {
	t.extras = e
	return t
}

// New returns the translator of m's config rules. blocks is how the right
// side stores a per-layer block layout; nil when it stores none, and then a
// cycle rule is an error.
func New(m *ir.Mapping, blocks format.BlockSchema) *Translator {
	return &Translator{m: m, blocks: blocks}
}

// Result is a translated config document.
type Result struct {
	// Out is the output side's config document.
	Out map[string]any
	// Carried is what the output must carry for the way back (import only).
	Carried *format.Carried
	// Variant is the active variant ("" when the mapping has none).
	Variant string
	// Env evaluates the mapping's expressions on the completed left config.
	Env   *Env
	Notes []string
}

// Error is a config problem, named by the document it is in, the key and
// the span of the rule (or expression) that found it. The document and key
// are printed escaped (diag.Subject: the key comes from the checkpoint); Msg
// must escape any name of the checkpoint it holds (quote.Name).
type Error struct {
	Doc      string // the document as its side names it (format.Format.ConfigDoc)
	Key      string // dotted path
	Pos, End ir.Pos // zero when no rule is involved
	Msg      string
}

// Diagnostic returns the error as engine.Diagnostics reports it: the
// document and key are its subject.
func (e *Error) Diagnostic() diag.Diagnostic {
	return diag.Diagnostic{Severity: diag.Error, Pos: e.Pos, End: e.End,
		Subject: diag.Subject{File: e.Doc, Key: e.Key}, Message: e.Msg}
}

func (e *Error) Error() string { return e.Diagnostic().Error() }

// ruleError is a problem of the whole document found at [pos, end) of a
// rule, let or variant: msg, then err's text. An expression that failed to
// evaluate is marked instead, which says more than its rule. The caller
// names the document (inDoc).
func ruleError(pos, end ir.Pos, err error, msg string) *Error {
	if ee, ok := err.(*ir.EvalError); ok {
		pos, end, err = ee.Pos, ee.Pos, errors.New(ee.Msg)
	}
	return &Error{Pos: pos, End: end, Msg: msg + ": " + err.Error()}
}

// inDoc returns err as an *Error of document doc.
func inDoc(doc string, err error) *Error {
	if e, ok := err.(*Error); ok && e.Doc == "" {
		e.Doc = doc
		return e
	}
	return &Error{Doc: doc, Msg: err.Error()}
}

// Env resolves the names a mapping's expressions read, once its config is
// translated: let names, then dotted paths of the completed left config.
// The planner adds the loop variables in front. It is an ir.LetEnv, so that
// errors can say how a let is defined.
type Env struct {
	Left map[string]any
	Lets map[string]any
	// LetDefs holds how each let is defined, for errors.
	LetDefs map[string]ir.Expr
}

var _ ir.LetEnv = (*Env)(nil)

// Lookup implements ir.Env.
func (e *Env) Lookup(path []string) (any, bool) {
	if len(path) == 1 {
		if v, ok := e.Lets[path[0]]; ok {
			return v, true
		}
	}
	return ir.LookupPath(e.Left, path)
}

// Let implements ir.LetEnv: the definition of let name.
func (e *Env) Let(name string) (ir.Expr, bool) {
	x, ok := e.LetDefs[name]
	return x, ok
}

// newEnv evaluates the mapping's lets, in order, on a completed left config.
func newEnv(m *ir.Mapping, left map[string]any) (*Env, error) {
	e := &Env{Left: left, Lets: map[string]any{}, LetDefs: map[string]ir.Expr{}}
	for _, l := range m.Lets {
		e.LetDefs[l.Name] = l.Expr
		v, err := ir.Eval(l.Expr, e)
		if err != nil {
			return nil, ruleError(l.Pos, l.Pos, err, "let "+l.Name)
		}
		e.Lets[l.Name] = v
	}
	return e, nil
}

// completeLeft fills in left defaults for absent keys, and for keys that
// hold their rule's `for` value (which stands for the default), and returns
// the completed config, the absent keys and those that stood for their
// default. A default applies only where its rule's conditions hold (holds
// decides them on the config completed so far): the default of a spelling
// the config does not use must not create that spelling.
func completeLeft(m *ir.Mapping, left map[string]any, holds func([]ir.Expr, ir.Env) bool) (full map[string]any, absent, stood []string, err error) {
	full = ir.DeepCopy(left).(map[string]any)
	e := &Env{Left: full} // a default may read the keys completed before it
	for _, r := range m.Config {
		if r.Kind == ir.ConfigLeftConst && r.Optional {
			// left P default V: an absent key has the constant's value.
			if _, ok := ir.LookupPath(full, r.Left.Segs); !ok && holds(r.When, e) {
				absent = append(absent, pathString(r.Left))
				v := r.Value
				if r.ValueExpr != nil {
					// A computed one reads the keys completed so far; one
					// it cannot compute stays absent, and a rule that reads
					// it says so.
					var ok bool
					if v, ok = evalQuiet(r.ValueExpr, e); !ok {
						continue
					}
				}
				setPath(full, r.Left.Segs, ir.DeepCopy(v))
			}
			continue
		}
		if r.Kind != ir.ConfigRename || r.LeftDefault == nil {
			continue
		}
		lv, present := ir.LookupPath(left, r.Left.Segs)
		standsFor := present && r.HasLeftFor && ir.ValuesEqual(lv, r.LeftFor)
		if present && !standsFor || !holds(r.When, e) {
			continue
		}
		v, err := ir.Eval(r.LeftDefault, e)
		if err != nil {
			return nil, nil, nil, ruleError(r.Pos, r.End, err, "default of "+pathString(r.Left))
		}
		setPath(full, r.Left.Segs, v)
		if standsFor {
			stood = append(stood, pathString(r.Left))
		} else {
			absent = append(absent, pathString(r.Left))
		}
	}
	return full, absent, stood, nil
}

// evalAll decides conditions by evaluating them, as the import does.
func evalAll(when []ir.Expr, e ir.Env) bool {
	ok, err := ir.EvalAll(when, e)
	return err == nil && ok
}

// evalQuiet evaluates e, reporting only whether it could.
func evalQuiet(e ir.Expr, env ir.Env) (any, bool) {
	v, err := ir.Eval(e, env)
	return v, err == nil
}
