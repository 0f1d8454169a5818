package configmap

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine/format"
)

// importVariant picks the variant on import: the first whose condition
// holds on the completed left config, else the default one.
func importVariant(m *ir.Mapping, e *Env) (string, error) {
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
			return "", ruleError(v.Pos, v.Pos, err, "variant "+v.Name)
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

// exportVariant picks the variant on export: the one asked for, else the
// one the import recorded, else the default one, else the first.
func exportVariant(m *ir.Mapping, carried *format.Carried, asked string) (string, error) {
	variant := asked
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
		return "", fmt.Errorf("mapping %s has no variants, so --variant %s does not apply", m.Name, variant)
	}
	if variant != "" && !slices.ContainsFunc(m.Variants, func(v *ir.Variant) bool { return v.Name == variant }) {
		return "", fmt.Errorf("mapping %s has no variant %q (known: %s)", m.Name, variant, variantNames(m))
	}
	return variant, nil
}

func variantNames(m *ir.Mapping) string {
	var s []string
	for _, v := range m.Variants {
		s = append(s, v.Name)
	}
	return strings.Join(s, ", ")
}

// refusals returns the error of the active refuse rules, nil when there
// is none.
func refusals(doc string, rules []*ir.ConfigRule) error {
	var errs []error
	for _, r := range rules {
		if r.Kind == ir.ConfigRefuse {
			errs = append(errs, &Error{Doc: doc, Pos: r.Pos, End: r.End, Msg: fmt.Sprint(r.Value)})
		}
	}
	return errors.Join(errs...)
}

// activeRules lists the config rules of the variant whose conditions hold
// on the (completed) left config: on import every condition can be decided
// up front.
func activeRules(m *ir.Mapping, variant string, e *Env) ([]*ir.ConfigRule, error) {
	var out []*ir.ConfigRule
	for _, r := range m.Config {
		if !ir.InVariant(r.Variant, variant) {
			continue
		}
		ok, err := ir.EvalAll(r.When, e)
		if err != nil {
			return nil, ruleError(r.Pos, r.End, err, "condition of the rule")
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}
