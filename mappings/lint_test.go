package mappings_test

import (
	"slices"
	"testing"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/mappings"
)

// TestBuiltinLintClean requires every built-in mapping to check without a
// single diagnostic, warnings included (what `mapper lint mappings/` says).
func TestBuiltinLintClean(t *testing.T) {
	files := mappings.Builtin()
	for _, name := range []string{"apriel2", "apriel2_text", "apriel_hybrid_ssm", "diffusion_llama", "dream", "gemma4", "gpt_oss", "llama", "llava", "llava_hybrid", "mistral", "mixtral", "mtp_llama", "phi3",
		"qwen2", "qwen3", "qwen3_moe"} {
		if _, ok := mappings.Lookup(name); !ok {
			t.Errorf("no built-in mapping %s", name)
		}
	}
	for _, f := range files {
		m, diags := f.Load()
		for _, d := range diags {
			t.Errorf("%v", d)
		}
		if m != nil && m.Name != f.Name {
			t.Errorf("%s declares mapping %s", f.Path, m.Name)
		}
	}
	frags := mappings.Fragments()
	if len(frags) == 0 {
		t.Error("no built-in fragment files")
	}
	for _, f := range frags {
		for _, d := range dsl.LintFragments(f.Path, f.Source) {
			t.Errorf("%v", d)
		}
	}
}

// TestBuiltinFormatted requires every built-in mapping to be in the
// canonical form `mapper fmt` writes.
func TestBuiltinFormatted(t *testing.T) {
	for _, f := range slices.Concat(mappings.Builtin(), mappings.Fragments()) {
		got, err := dsl.Format(f.Path, f.Source)
		if err != nil {
			t.Errorf("%s: %v", f.Path, err)
			continue
		}
		if string(got) != string(f.Source) {
			t.Errorf("%s is not formatted (run mapper fmt -w %s)", f.Path, f.Path)
		}
	}
}
