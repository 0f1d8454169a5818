package mappings_test

// Exporting a checkpoint Fast-LLM saved itself (no metadata.mapper) with
// --like, the HF checkpoint it was converted from: the record an import of
// that checkpoint makes restores everything only a record can (kept and
// generic keys, branches, dtype, files, __metadata__), its side files are
// copied, and a --like of another architecture is refused.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/mappings/synth"
)

// likeOptions is how the HF checkpoint a case starts from is written: in
// several shards with an index; GPT-OSS as published (0-based names, a
// one-line index, no __metadata__), so that the layout restored is not
// the default one.
func likeOptions(rc realCase) synth.Options {
	o := synth.Options{ByteExactMXFP4: true, ShardBytes: 24 << 10}
	if rc.mapping == "gpt_oss" {
		o.Naming, o.NoFileMetadata = "hf-zero-based", true
	}
	return o
}

// TestExportFastLLMLike: every checkpoint Fast-LLM saved (converted, and
// trained with its optimizer state) exports with --like the synth
// checkpoint it came from to that very checkpoint, file for file and byte
// for byte: config.json (GPT-OSS's rope_theta written as the integer it
// was, though Fast-LLM holds the float), the shards' names and
// __metadata__, the index, the tensors cast back to BF16, and the side
// files copied from --like. The notes say where the record came from.
func TestExportFastLLMLike(t *testing.T) {
	for _, rc := range realCases() {
		for _, stage := range []string{"fresh", "trained"} {
			if _, err := os.Stat(rc.path(stage)); errors.Is(err, fs.ErrNotExist) && stage == "trained" {
				continue
			}
			t.Run(rc.name()+"_"+stage, func(t *testing.T) {
				t.Parallel()
				m := load(t, rc.mapping)
				hf0 := generate(t, rc.arch, likeOptions(rc))
				fl0, imp := convert(t, m, hf0, engine.PlanOptions{})
				if len(imp.Carried.Files) == 0 {
					t.Fatal("the synth checkpoint is a single file: the test does not exercise the file layout")
				}
				real := writeReal(t, rc, stage, fl0, nil)
				hf1, exp := convert(t, m, real, engine.PlanOptions{Like: hf0})
				checkHFRoundTrip(t, hf0, hf1, false)
				if exp.Like != hf0 || !slices.Equal(exp.LikeFiles, []string{"generation_config.json", "tokenizer.json"}) {
					t.Errorf("like %q, side files from it %v", exp.Like, exp.LikeFiles)
				}
				notes := strings.Join(exp.Notes, "\n")
				want := []string{
					"has no record of an import by mapper (metadata.mapper): the export takes the record an import of " + hf0 + " (--like) with mapping " + rc.mapping + " makes",
					"/config.json agrees with it on every key the mapping maps (",
					"side files copied from " + hf0 + " (--like), which " + real + " lacks: generation_config.json, tokenizer.json",
				}
				// An apriel_hybrid_ssm config, or Gemma 4's test model's, as
				// Fast-LLM exports it has no key without a Fast-LLM place.
				if len(imp.Carried.Kept) > 0 {
					want = append(want, "config keys restored from "+hf0+"/config.json: kept by "+rc.mapping+": ")
				}
				if len(imp.Carried.Extra) > 0 {
					want = append(want, "; carried without a rule (generic, --keep): ")
				}
				for _, w := range want {
					if !strings.Contains(notes, w) {
						t.Errorf("the notes do not say %q:\n%s", w, notes)
					}
				}
				if strings.Contains(notes, "are not restored") {
					t.Errorf("a note says keys are not restored:\n%s", notes)
				}
				if rc.mapping == "gpt_oss" && !strings.Contains(notes, "written as "+hf0+"/config.json spells them, the same numbers: rope_theta 150000 (the input holds 150000.0)") {
					t.Errorf("no note on rope_theta's spelling:\n%s", notes)
				}
			})
		}
	}
}

// TestExportFastLLMLikeRefused: a --like whose architecture is not the
// checkpoint's (another hidden size and head count: the wrong base model)
// is refused, naming each key, both values and the Fast-LLM key; so is
// --like with a checkpoint that has its own record, and on import.
func TestExportFastLLMLikeRefused(t *testing.T) {
	for _, rc := range realCases() {
		t.Run(rc.name(), func(t *testing.T) {
			t.Parallel()
			m := load(t, rc.mapping)
			fl0, _ := convert(t, m, generate(t, rc.arch, synth.Options{NoSideFiles: true}), engine.PlanOptions{})
			real := writeReal(t, rc, "fresh", fl0, nil)
			other := rc.arch
			other.Hidden, other.Heads = 2*other.Hidden, 2*other.Heads
			hfHeads, heads, wantHeads := "num_attention_heads", "decoder.block.mixer.heads", rc.arch.Heads
			switch rc.mapping {
			case "gpt_oss", "gemma4":
				heads = "decoder.blocks.*.mixer.heads"
			case "apriel_hybrid_ssm", "llava_hybrid":
				heads = "decoder.blocks.t.mixer.heads"
			case "apriel2_text", "apriel2":
				// The heads are the attention block's own key: a pattern's
				// block (apriel2_text) or the fixed decoder's (apriel2).
				block := "attn_full"
				other = synth.TinyApriel2Text()
				if rc.mapping == "apriel2" {
					other, block = synth.TinyApriel2(), "block"
				}
				other.Hidden = 2 * other.Hidden
				mixer := other.Apriel2.Blocks[block]["mixer"].(map[string]any)
				wantHeads = int(mixer["heads"].(int64))
				mixer["heads"] = int64(2 * wantHeads)
				other.Heads = 2 * wantHeads
				heads = "decoder.blocks." + block + ".mixer.heads"
				if block == "block" {
					heads = "decoder.block.mixer.heads"
				}
				hfHeads = heads
			}
			like := generate(t, other, synth.Options{})
			// The message names the Fast-LLM key where it is not the HF one.
			from := " (from " + heads + ")"
			if heads == hfHeads {
				from = ""
			}
			text := "" // where the text model's keys are
			if rc.mapping == "llava" || rc.mapping == "llava_hybrid" {
				text = "text_config."
			}
			refused(t, rc.mapping, real, engine.PlanOptions{Like: like},
				fmt.Sprintf("%s/config.json: %shidden_size: is %d, but %s/metadata.yaml config.base_model gives %d (from hidden_size)", like, text, other.Hidden, real, rc.arch.Hidden),
				fmt.Sprintf("%s/config.json: %s%s: is %d, but %s/metadata.yaml config.base_model gives %d%s", like, text, hfHeads, other.Heads, real, wantHeads, from),
				"--like "+like+" does not describe the model of "+real+": 2 config keys differ (above); --like must name the hf checkpoint "+real+" was converted or trained from")
			if rc.mapping != "llama" {
				return
			}
			hf0 := generate(t, rc.arch, synth.Options{})
			refused(t, rc.mapping, fl0, engine.PlanOptions{Like: hf0},
				"--like "+hf0+": "+fl0+" holds the record of its import by mapper (metadata.mapper), which restores everything --like would, and exactly: export without --like")
			refused(t, rc.mapping, hf0, engine.PlanOptions{Like: hf0},
				"--like "+hf0+": an export takes what its input has no record of from a hf checkpoint; this is an import (hf -> fast_llm)")
			// A --like whose rotary the checkpoint does not have: the export
			// takes its branch, fails there, and says why it may.
			llama3 := generate(t, withOverrides(rc.arch, "rope_scaling", map[string]any{"rope_type": "llama3", "factor": 8.0,
				"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": int64(8192)}), synth.Options{})
			refused(t, rc.mapping, real, engine.PlanOptions{Like: llama3},
				`decoder.block.mixer.rotary.type: value "default" has no counterpart (known: "llama3", "yarn")`,
				"--like "+llama3+": the export decides as its config does (recorded whens: rope_parameters != null: false, rope_scaling == null: false), so the errors here may only mean that it is not the hf checkpoint "+real+" was converted or trained from")
			// Another model altogether: its import is refused as any is.
			refused(t, rc.mapping, real, engine.PlanOptions{Like: generate(t, synth.TinyQwen2(), synth.Options{})},
				`config.json: model_type: is "qwen2"; the mapping requires "llama"`)
		})
	}
}

// TestExportFastLLMLikeConfigOnly: a --like holding config.json and side
// files alone (downloaded without the weights) restores config.json byte
// for byte and gives its side files; the notes say what it cannot restore.
func TestExportFastLLMLikeConfigOnly(t *testing.T) {
	t.Parallel()
	rc := realCases()[0]
	m := load(t, rc.mapping)
	hf0 := generate(t, rc.arch, synth.Options{})
	fl0, _ := convert(t, m, hf0, engine.PlanOptions{})
	real := writeReal(t, rc, "trained", fl0, nil)
	like := filepath.Join(t.TempDir(), "like")
	if err := os.Mkdir(like, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "generation_config.json", "tokenizer.json"} {
		if err := os.WriteFile(filepath.Join(like, f), readFile(t, filepath.Join(hf0, f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hf1, exp := convert(t, m, real, engine.PlanOptions{Like: like})
	for _, f := range []string{"config.json", "generation_config.json", "tokenizer.json"} {
		if string(readFile(t, filepath.Join(hf1, f))) != string(readFile(t, filepath.Join(hf0, f))) {
			t.Errorf("%s differs from the original's", f)
		}
	}
	if dt, _, _ := openHF(t, hf1).raw("model.norm.weight"); dt.String() != "F32" {
		t.Errorf("model.norm.weight is %v: nothing recorded a dtype to cast it to", dt)
	}
	want := like + " (--like) has no weight files: their layout, their safetensors __metadata__ and the tensors' dtype are not restored"
	if !slices.ContainsFunc(exp.Notes, func(n string) bool { return strings.Contains(n, want) }) {
		t.Errorf("the notes do not say %q:\n%s", want, strings.Join(exp.Notes, "\n"))
	}
}

// TestExportFastLLMLikeVariant: GPT-OSS exported as dense experts with
// --like an MXFP4 checkpoint: the keys of the variants' own rules
// (quantization_config) are not compared, and the note says so; every
// other key is the original's.
func TestExportFastLLMLikeVariant(t *testing.T) {
	t.Parallel()
	rc := realCases()[4]
	m := load(t, rc.mapping)
	hf0 := generate(t, rc.arch, likeOptions(rc))
	fl0, _ := convert(t, m, hf0, engine.PlanOptions{})
	real := writeReal(t, rc, "trained", fl0, nil)
	hf1, exp := convert(t, m, real, engine.PlanOptions{Like: hf0, Variant: "dense"})
	got, want := jsonLeaves(t, filepath.Join(hf1, "config.json")), jsonLeaves(t, filepath.Join(hf0, "config.json"))
	for k, v := range want {
		if strings.HasPrefix(k, "quantization_config") {
			if _, ok := got[k]; ok {
				t.Errorf("%s in the dense export", k)
			}
			continue
		}
		if g, ok := got[k]; !ok || !reflect.DeepEqual(g, v) {
			t.Errorf("%s: %v, want %v", k, g, v)
		}
	}
	notes := strings.Join(exp.Notes, "\n")
	for _, w := range []string{
		"variant dense is not the one " + hf0 + "/config.json has (mxfp4): the keys of the variants' own rules are not compared with it, and are written as variant dense has them (quantization_config)",
		"'s weight files: their safetensors __metadata__, its tensors' dtype BF16 for the tensors whose rules declare none (not their layout: they hold variant mxfp4)",
	} {
		if !strings.Contains(notes, w) {
			t.Errorf("the notes do not say %q:\n%s", w, notes)
		}
	}
}

// TestExportLikeRopeForms: a checkpoint with no record exports every rope
// form, spelling included (v4 or v5, rope_type or type, yarn's absent
// fields), with --like the checkpoint it came from, byte for byte: the
// branches are the ones its config takes. Without --like a scaled rotary
// is refused and v5's spelling lost (TestRopeExportWithoutRecord).
func TestExportLikeRopeForms(t *testing.T) {
	m := load(t, "llama")
	for _, r := range ropeForms() {
		t.Run(ropeName(r), func(t *testing.T) {
			t.Parallel()
			a := synth.TinyLlama()
			a.Rope = r
			hf0 := generate(t, a, synth.Options{})
			fl, _ := convert(t, m, hf0, engine.PlanOptions{})
			md := parseMetadata(t, fl)
			md.Carried = nil
			writeMetadata(t, fl, md)
			hf1, _ := convert(t, m, fl, engine.PlanOptions{Like: hf0})
			checkHFRoundTrip(t, hf0, hf1, false)
		})
	}
}
