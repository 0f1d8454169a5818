package configmap

import (
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
)

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

// knownValues lists the values a map translates from, for messages.
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
