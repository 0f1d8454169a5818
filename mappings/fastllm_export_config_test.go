package mappings_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/mappings/synth"
)

// TestExportConfigIsFastLLMs exports Fast-LLM's own converted checkpoint of
// each format of main (writeReal) and compares the config.json with the one
// Fast-LLM's HF exporter makes of that checkpoint (export_config.json, before
// transformers adds its defaults; see the reference data's README): every key
// Fast-LLM writes must have Fast-LLM's value, auto_map included. PR #374's
// exporter is left out: it writes hidden_act gpt_oss_glu, which is not HF's.
func TestExportConfigIsFastLLMs(t *testing.T) {
	for _, rc := range realCases() {
		if !strings.HasPrefix(rc.dir, "main/") {
			continue
		}
		t.Run(rc.name(), func(t *testing.T) {
			t.Parallel()
			if rc.noExportConfig != "" {
				if _, err := os.Stat(rc.path("export_config.json")); err == nil {
					t.Fatalf("%s has an export_config.json; the case says there is none: %s", rc.dir, rc.noExportConfig)
				}
				t.Skipf("no reference: %s", rc.noExportConfig)
			}
			m := load(t, rc.mapping)
			fl0, _ := convert(t, m, generate(t, rc.arch, synth.Options{NoSideFiles: true}), engine.PlanOptions{})
			hf, _ := convert(t, m, writeReal(t, rc, "fresh", fl0, nil), engine.PlanOptions{})
			// Leaves by dotted path (a llava config's text_config and
			// vision_config are sub-configs, where mapper may write more
			// keys too), numbers as written: 500000.0 and 500000 differ.
			got, want := jsonLeaves(t, filepath.Join(hf, "config.json")), jsonLeaves(t, rc.path("export_config.json"))
			used := map[string]bool{}
			for _, k := range sortedKeys(want) {
				g, ok := got[k]
				if !ok {
					t.Errorf("config.json has no %s; Fast-LLM's exporter writes %v", k, want[k])
					continue
				}
				w := want[k]
				if v, ok := rc.exportSaved[k]; ok {
					w = v
				}
				for _, d := range diffValues(k, g, w, rc.floatInts, used) {
					t.Errorf("config.json: %s (Fast-LLM's exporter)", d)
				}
			}
			var extra []string
			for _, k := range sortedKeys(got) {
				if _, ok := want[k]; !ok {
					extra = append(extra, fmt.Sprintf("%s: %v", k, got[k]))
				}
			}
			t.Logf("every key of Fast-LLM's export has its value; mapper writes %d more: %s", len(extra), strings.Join(extra, ", "))
		})
	}
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
