package mappings_test

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/mapper-dev/mapper/mappings"
)

// TestMappingsDocLines keeps docs/mappings.md's table of mappings honest:
// one row per built-in mapping, with its .map file's line count.
func TestMappingsDocLines(t *testing.T) {
	doc, err := os.ReadFile("../docs/mappings.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| \\[`([a-z0-9_]+)`\\]\\(\\.\\./mappings/([a-z0-9_]+)\\.map\\) \\|([^|]*)\\|([^|]*)\\| ([0-9]+) \\|")
	rows := map[string]int{}
	for _, m := range row.FindAllSubmatch(doc, -1) {
		if string(m[1]) != string(m[2]) {
			t.Errorf("row %s links %s.map", m[1], m[2])
		}
		n, _ := strconv.Atoi(string(m[5]))
		rows[string(m[1])] = n
	}
	for _, f := range mappings.Builtin() {
		n, ok := rows[f.Name]
		if !ok {
			t.Errorf("docs/mappings.md has no table row for %s", f.Name)
			continue
		}
		if lines := bytes.Count(f.Source, []byte("\n")); lines != n {
			t.Errorf("docs/mappings.md says %s.map has %d lines; it has %d", f.Name, n, lines)
		}
		delete(rows, f.Name)
	}
	for name := range rows {
		t.Errorf("docs/mappings.md lists %s, which is not a built-in mapping", name)
	}
}
