package engine

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/runtime/pyjson"
)

// dropRecord rewrites a Fast-LLM checkpoint's metadata.yaml without
// metadata.mapper, as Fast-LLM saves it again.
func dropRecord(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, fastllm.MetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	md, err := fastllm.ParseMetadata(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fastllm.EncodeMetadata(md.Version, md.Config, md.StateIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fastllm.MetadataFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLikeKeepAndIgnore: with --like, --keep carries a key of the like
// checkpoint's config (and says when it carries nothing); a key the mapping
// ignores is not written, as on any export, is not taken for a difference,
// and is named. A --like that is missing or not an HF checkpoint is
// refused, saying which.
func TestLikeKeepAndIgnore(t *testing.T) {
	src, err := os.ReadFile("testdata/small.map")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "  keep bos_token_id", "  ignore notes\n  keep bos_token_id", 1)
	m := loadMapping(t, "small_ignore.map", []byte(text))
	root := t.TempDir()
	hfDir, fl := filepath.Join(root, "hf"), filepath.Join(root, "fl")
	cfg := smallConfig()
	cfg["notes"], cfg["my_extra"] = "trained on x", int64(1)
	writeSmallHF(t, hfDir, cfg)
	convert(t, m, hfDir, fl, PlanOptions{Workers: 1, Keep: []string{"my_extra"}})
	dropRecord(t, fl)

	out := filepath.Join(root, "back")
	p, _ := convert(t, m, fl, out, PlanOptions{Workers: 1, Like: hfDir, Keep: []string{"my_extra", "absent_key"}})
	data, err := os.ReadFile(filepath.Join(out, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := pyjson.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	delete(cfg, "notes")
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("config.json %v, want %v", got, cfg)
	}
	for _, w := range []string{
		"config keys " + hfDir + "/config.json has that small ignores are not written, as on any export: notes",
		"carried without a rule (generic, --keep): ",
		"--keep absent_key carries nothing: " + hfDir + "/config.json has no such top-level key",
	} {
		if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, w) }) {
			t.Errorf("notes do not say %q:\n%s", w, strings.Join(p.Notes, "\n"))
		}
	}

	for _, tc := range []struct {
		opt  PlanOptions
		want string
	}{
		{PlanOptions{Like: hfDir}, "my_extra: not claimed by any config rule of small"},
		{PlanOptions{Like: filepath.Join(root, "nowhere")}, "--like: stat " + filepath.Join(root, "nowhere") + ": no such file or directory"},
		{PlanOptions{Like: fl}, "--like " + fl + " does not look like a hf checkpoint"},
	} {
		if _, err := testPlan(m, fl, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--like %s: %v, want %q", tc.opt.Like, err, tc.want)
		}
	}
}
