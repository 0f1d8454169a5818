package mappings_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/mappings"
	"github.com/mapper-dev/mapper/mappings/synth"
)

// loadSource checks a .map source given as text, a user's copy of a
// built-in mapping: its includes are the built-in fragment files.
func loadSource(t *testing.T, path, src string) *ir.Mapping {
	t.Helper()
	m, diags := mappings.LoadFile(path, []byte(src))
	if diags.HasErrors() {
		t.Fatalf("%s does not check: %v", path, diags.Err())
	}
	return m
}

// mixtralG1 is a user's copy of the built-in mixtral mapping that stacks
// each expert's up projection (w3) before its gate (w1) in layer_1.
func mixtralG1(t *testing.T, name string) *ir.Mapping {
	t.Helper()
	f, _ := mappings.Lookup("mixtral")
	src := strings.Replace(string(f.Source), "mapping mixtral\n", "mapping "+name+"\n", 1)
	const order = "(experts.{e}.w1.weight: [inter, hidden], experts.{e}.w3.weight: [inter, hidden])"
	if !strings.Contains(src, order) {
		t.Fatal("mixtral.map no longer stacks [w1; w3] as this test expects")
	}
	src = strings.Replace(src, order, "(experts.{e}.w3.weight: [inter, hidden], experts.{e}.w1.weight: [inter, hidden])", 1)
	return loadSource(t, filepath.Join("user", name+".map"), src)
}

// TestExportRefusesAnotherMapping: a checkpoint imported with a user's
// mapping (mixtral_g1, experts stacked differently) is refused by an export
// with the built-in mixtral, with a message naming both mappings and their
// sha256; --mapping-mismatch=allow exports it with a note (and the experts
// come back swapped, which is why it is refused). The same name with other
// rules is refused too; a checkpoint with no record is not.
func TestExportRefusesAnotherMapping(t *testing.T) {
	t.Parallel()
	a := synth.TinyMixtral()
	g1 := mixtralG1(t, "mixtral_g1")
	builtin := load(t, "mixtral")
	if g1.Hash == "" || builtin.Hash == "" || g1.Hash == builtin.Hash {
		t.Fatalf("hashes %q and %q", g1.Hash, builtin.Hash)
	}
	hf0 := generate(t, a, synth.Options{})
	fl, imp := convert(t, g1, hf0, engine.PlanOptions{})
	if imp.Carried.Mapping != "mixtral_g1" || imp.Carried.MappingHash != g1.Hash {
		t.Fatalf("the import records mapping %q sha256 %q", imp.Carried.Mapping, imp.Carried.MappingHash)
	}
	if md := parseMetadata(t, fl); md.Carried.MappingHash != g1.Hash {
		t.Fatalf("metadata.yaml records sha256 %q, want %q", md.Carried.MappingHash, g1.Hash)
	}

	_, err := engine.NewPlan(builtin, fl, engine.PlanOptions{})
	if err == nil {
		t.Fatal("export with the built-in mixtral of a mixtral_g1 import accepted")
	}
	for _, want := range []string{
		"mapping mixtral_g1 (sha256 " + g1.Hash + ")",
		"mapping mixtral (mappings/mixtral.map, sha256 " + builtin.Hash + ")",
		"--mapping-mismatch=allow",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// Overridden: exported, with a note naming both.
	hf1, p := convert(t, builtin, fl, engine.PlanOptions{AllowMappingMismatch: true})
	if !slices.ContainsFunc(p.Notes, func(n string) bool {
		return strings.Contains(n, "the import recorded mapping mixtral_g1 (sha256 "+g1.Hash+"); this export uses mapping mixtral (") &&
			strings.Contains(n, "--mapping-mismatch=allow")
	}) {
		t.Errorf("notes %q", p.Notes)
	}
	rep, err := engine.Diff(hf0, hf1)
	if err != nil {
		t.Fatal(err)
	}
	var wrong []string
	for _, d := range rep.Tensors {
		if d.Kind != engine.Identical {
			wrong = append(wrong, d.Name)
		}
	}
	if len(wrong) != 2*a.Experts*a.Layers {
		t.Errorf("%d tensors differ, want every w1 and w3 (%d): %v", len(wrong), 2*a.Experts*a.Layers, wrong)
	}

	// With the recorded mapping: the original, byte for byte.
	hf2, _ := convert(t, g1, fl, engine.PlanOptions{})
	checkHFRoundTrip(t, hf0, hf2, false)

	// The same name with other rules is another mapping.
	same := mixtralG1(t, "mixtral")
	if _, err := engine.NewPlan(same, fl, engine.PlanOptions{}); err == nil || !strings.Contains(err.Error(), "mapping mixtral_g1") {
		t.Errorf("export with another mixtral_g1-like file: %v", err)
	}
	fl2, _ := convert(t, builtin, hf0, engine.PlanOptions{})
	_, err = engine.NewPlan(same, fl2, engine.PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "a mapping of the same name with other rules") ||
		!strings.Contains(err.Error(), builtin.Hash) || !strings.Contains(err.Error(), same.Hash) {
		t.Errorf("export with an edited mixtral.map of the same name: %v", err)
	}

	// A checkpoint without a record (a Fast-LLM save) is not refused.
	md := parseMetadata(t, fl)
	bare, err := fastllm.EncodeMetadata(md.Version, md.Config, md.StateIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fl, fastllm.MetadataFile), bare, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err = engine.NewPlan(builtin, fl, engine.PlanOptions{})
	if err != nil {
		t.Fatalf("export of a checkpoint without metadata.mapper: %v", err)
	}
	p.Close()
	// Its HF shards get transformers' {"format": "pt"}, and a note says so.
	hf3, p := convert(t, builtin, fl, engine.PlanOptions{})
	checkNote(t, "export", p.Notes, `safetensors __metadata__ {"format": "pt"} in every file, as transformers writes it: the input records none`)
	if md := openFile(t, filepath.Join(hf3, "model.safetensors")).Metadata; len(md) != 1 || md["format"] != "pt" {
		t.Errorf("__metadata__ %v", md)
	}
}
