package syntax

import (
	"strconv"
	"strings"
)

// formatFloat spells a float the canonical way: Go's shortest 'g' form, with
// ".0" added when that would otherwise read as an integer (32.0, not 32).
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}
