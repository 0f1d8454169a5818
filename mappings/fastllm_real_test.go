package mappings_test

// Tests built from what Fast-LLM's own code writes (the reference data in
// engine/format/fastllm/testdata/real, see its README): mapper's import of
// each synth checkpoint must be the metadata.yaml Fast-LLM writes for it,
// and every checkpoint Fast-LLM saved (converted, and trained with its
// optimizer state) must export to HF with the right tensors and config.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

const realData = "../engine/format/fastllm/testdata/real"

type realCase struct {
	mapping string
	arch    synth.Arch
	dir     string // under realData
	version string // the fast_llm_version the mapping's target writes
	// floatInts are config.base_model paths (and HF config keys) whose value
	// the HF config holds as an integer and Fast-LLM, whose field is a float,
	// as a float (150000 / 150000.0): mapper writes the number as it reads
	// it, so these compare by value. Writing the Fast-LLM field's own type
	// needs the per-target schema (another change); listed here so that the
	// test fails when it is no longer needed.
	floatInts []string
	// noExportConfig says why Fast-LLM wrote no export_config.json (its
	// exporter fails on the model).
	noExportConfig string
	// recorded are HF keys a recorded when consumed (not kept): without
	// metadata.mapper the export takes the branch of an absent key and
	// writes the value given here instead of the original's.
	recorded map[string]any
	// exportSaved are HF keys whose value in export_config.json (the dict
	// Fast-LLM's exporter makes) transformers' config class replaces when
	// Fast-LLM saves it (LlavaHybridConfig's own model_type): the value
	// config.json has.
	exportSaved map[string]any
}

// llavaHybridLayout is synth's tiny llava_hybrid with another layout.
func llavaHybridLayout(layout ...string) synth.Arch {
	a := synth.TinyLlavaHybrid()
	a.Layout, a.Layers = layout, len(layout)
	return a
}

// llavaHybridMamba has Mamba layers around an attention one, each with
// every bias, the convolution over d_xb and dt_rank "auto".
func llavaHybridMamba() synth.Arch {
	a := llavaHybridLayout("m2", "t", "m2")
	a.Mamba = synth.Mamba{State: 16, Inner: 128, XB: 32, Bias: true, ConvBias: true, DTProjBias: true, ConvOnXB: true}
	return a
}

// llavaHybridGDN has the three kinds of layer.
func llavaHybridGDN() synth.Arch {
	a := llavaHybridLayout("t", "m2", "gdn")
	a.GDN = synth.GDN{ValueHeads: 4, KeyHeads: 2, KeyHeadDim: 8, ValueHeadDim: 16, Kernel: 4}
	return a
}

// llavaHybridTied has tied embeddings: no lm_head.weight.
func llavaHybridTied() synth.Arch {
	a := synth.TinyLlavaHybrid()
	a.TieEmbeddings = true
	return a
}

func realCases() []realCase {
	return []realCase{
		{mapping: "llama", arch: synth.TinyLlama(), dir: "main/llama", version: "0.4.0"},
		{mapping: "mistral", arch: synth.TinyMistral(), dir: "main/mistral", version: "0.4.0"},
		{mapping: "mixtral", arch: synth.TinyMixtral(), dir: "main/mixtral", version: "0.4.0"},
		{mapping: "qwen2", arch: synth.TinyQwen2(), dir: "main/qwen2", version: "0.4.0"},
		{mapping: "gpt_oss", arch: synth.TinyGPTOSS(), dir: "pr374/gpt_oss", version: "0.3.0",
			floatInts: []string{"decoder.blocks.full.mixer.rotary.theta", "decoder.blocks.sliding.mixer.rotary.theta", "rope_theta"}},
		// Main's other HF formats with weights in the reference data (fresh
		// only: Fast-LLM converted them, it did not train them).
		{mapping: "mtp_llama", arch: synth.TinyMTPLlama(), dir: "main/mtp_llama", version: "0.4.0"},
		{mapping: "diffusion_llama", arch: synth.TinyDiffusionLlama(), dir: "main/diffusion_llama", version: "0.4.0"},
		{mapping: "dream", arch: synth.TinyDream(), dir: "main/dream", version: "0.4.0"},
		{mapping: "apriel_hybrid_ssm", arch: synth.TinyAprielHybridSSM(), dir: "main/apriel_hybrid_ssm", version: "0.4.0"},
		{mapping: "apriel_hybrid_ssm", arch: aprielBiased(6), dir: "main/apriel_hybrid_ssm_biased", version: "0.4.0"},
		{mapping: "apriel_hybrid_ssm", arch: aprielGDN(), dir: "main/apriel_hybrid_ssm_gdn", version: "0.4.0"},
		// A repeating layout: Fast-LLM's pattern is the layout as written
		// (the cycle rule's verbatim), not its period.
		{mapping: "apriel_hybrid_ssm", arch: aprielLayout("t", "m2", "t", "m2"), dir: "main/apriel_hybrid_ssm_periodic", version: "0.4.0"},
		// dt_rank "auto": imported as ceil(hidden_size / 16), exported
		// without a record as that number, as Fast-LLM's converter does.
		{mapping: "apriel_hybrid_ssm", arch: aprielBiased(0), dir: "main/apriel_hybrid_ssm_auto", version: "0.4.0"},
		{mapping: "llava", arch: synth.TinyLlava(), dir: "main/llava", version: "0.4.0"},
		// Attention layers only: Fast-LLM's llava_hybrid converter reads
		// every layer's weights as Mistral's (a Mamba layer's mixer is left
		// unread; the README says so).
		{mapping: "llava_hybrid", arch: llavaHybridLayout("t", "t"), dir: "main/llava_hybrid", version: "0.4.0",
			exportSaved: map[string]any{"model_type": "llava_hybrid"}},
		// Gemma 4: Fast-LLM's own test model (its hf_config.json is what
		// Fast-LLM's exporter writes: none of transformers' other keys), and
		// two synth models (README: "Gemma 4").
		{mapping: "gemma4", arch: gemma4FastLLMTest(), dir: "main/gemma4", version: "0.4.0"},
		{mapping: "gemma4", arch: gemma4Archs()["dense"], dir: "main/gemma4_dense", version: "0.4.0",
			noExportConfig: "Fast-LLM main's Gemma4BlockConverter.export_config fails on a dense block (AttributeError: _unknown_fields)",
			recorded:       map[string]any{"use_bidirectional_attention": nil}},
		{mapping: "gemma4", arch: gemma4Archs()["kv"], dir: "main/gemma4_kv", version: "0.4.0",
			recorded: map[string]any{"use_bidirectional_attention": nil}},
		{mapping: "apriel2_text", arch: synth.TinyApriel2Text(), dir: "main/apriel2_text", version: "0.4.0"},
		{mapping: "apriel2", arch: synth.TinyApriel2(), dir: "main/apriel2", version: "0.4.0"},
	}
}

// gemma4FastLLMTest is synth's tiny Gemma 4 with the config Fast-LLM's
// exporter wrote for its gemma4 test model: the keys it writes, its
// epsilon and rotary thetas, no softcapping.
func gemma4FastLLMTest() synth.Arch {
	a := synth.TinyGemma4()
	a.Remove = []string{"bos_token_id", "dtype", "eos_token_id", "final_logit_softcapping", "initializer_range",
		"max_position_embeddings", "pad_token_id", "transformers_version", "use_cache", "vocab_size_per_layer_input"}
	a.Overrides = map[string]any{
		"rms_norm_eps":                1e-05,
		"use_bidirectional_attention": nil,
		"rope_parameters": map[string]any{
			"full_attention":    map[string]any{"partial_rotary_factor": 0.25, "rope_theta": 10000.0, "rope_type": "proportional"},
			"sliding_attention": map[string]any{"rope_theta": 10000.0, "rope_type": "default"},
		},
	}
	return a
}

// name is the case's test name: its reference directory's.
func (rc realCase) name() string { return filepath.Base(rc.dir) }

func (rc realCase) path(parts ...string) string {
	return filepath.Join(append([]string{realData, rc.dir}, parts...)...)
}

// realTensor is one line of tensors.txt.
type realTensor struct {
	key   string // parameter/shard
	dtype tensor.DType
	shape tensor.Shape
	file  string
}

func readTensorsTxt(t *testing.T, path string) []realTensor {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []realTensor
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 4 {
			t.Fatalf("%s: %q", path, line)
		}
		dt, err := tensor.ParseDType(cols[1])
		if err != nil {
			t.Fatal(err)
		}
		var shape tensor.Shape
		if err := json.Unmarshal([]byte(cols[2]), &shape); err != nil {
			t.Fatalf("%s: shape %q: %v", path, cols[2], err)
		}
		out = append(out, realTensor{key: cols[0], dtype: dt, shape: shape, file: cols[3]})
	}
	return out
}

// yamlTop reads a metadata.yaml's top level with a plain YAML decoder.
func yamlTop(t *testing.T, path string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(readFile(t, path), &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// diffValues lists where got and want differ, by dotted path: kinds
// included (an integer is not a float), except at the floatInts paths,
// where numbers compare by value.
func diffValues(path string, got, want any, floatInts []string, used map[string]bool) []string {
	if gm, ok := got.(map[string]any); ok {
		wm, ok := want.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got a mapping, want %#v", path, want)}
		}
		keys := map[string]bool{}
		for k := range gm {
			keys[k] = true
		}
		for k := range wm {
			keys[k] = true
		}
		var out []string
		for _, k := range slices.Sorted(mapsKeys(keys)) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			gv, gok := gm[k]
			wv, wok := wm[k]
			switch {
			case !gok:
				out = append(out, fmt.Sprintf("%s: missing, want %#v", p, wv))
			case !wok:
				out = append(out, fmt.Sprintf("%s: %#v, want nothing", p, gv))
			default:
				out = append(out, diffValues(p, gv, wv, floatInts, used)...)
			}
		}
		return out
	}
	if reflect.DeepEqual(got, want) {
		return nil
	}
	if slices.Contains(floatInts, path) {
		if g, ok := number(got); ok {
			if w, ok := number(want); ok && g == w {
				used[path] = true
				return nil
			}
		}
	}
	return []string{fmt.Sprintf("%s: %#v, want %#v", path, got, want)}
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkFloatIntsUsed fails when an allowance of realCase.floatInts was not
// needed: the test must not excuse differences that no longer exist.
func checkFloatIntsUsed(t *testing.T, allowed []string, used map[string]bool, scope func(string) bool) {
	t.Helper()
	for _, p := range allowed {
		if scope(p) && !used[p] {
			t.Errorf("%s compares equal without the integer/float allowance: remove it from realCases", p)
		}
	}
}

// TestImportIsWhatFastLLMWrites: mapper's metadata.yaml for each synth
// checkpoint equals the one Fast-LLM's `convert` writes for the same HF
// checkpoint (fresh/metadata.yaml) in config.base_model, config.type,
// fast_llm_version, model, format, shards and the state index, and its
// tensors have the names and shapes of tensors.txt. What may differ:
// config.distributed (Fast-LLM fills it in from the machine it runs on),
// metadata.mapper (mapper's record for the way back), and the dtype
// (Fast-LLM converts to F32, mapper keeps the HF dtype).
func TestImportIsWhatFastLLMWrites(t *testing.T) {
	for _, rc := range realCases() {
		t.Run(rc.name(), func(t *testing.T) {
			t.Parallel()
			hf0 := generate(t, rc.arch, synth.Options{NoSideFiles: true})
			// The reference data was converted from this very config.
			var got, want map[string]any
			if err := json.Unmarshal(readFile(t, filepath.Join(hf0, "config.json")), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(readFile(t, rc.path("hf_config.json")), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("synth's config.json is not the reference's hf_config.json")
			}
			fl, p := convert(t, load(t, rc.mapping), hf0, engine.PlanOptions{})
			if len(p.Targets) != 1 || p.Targets[0].Side != "fast_llm" || p.Targets[0].Name != rc.version {
				t.Errorf("plan targets %+v, want fast_llm %s", p.Targets, rc.version)
			}

			ours := parseMetadata(t, fl)
			ref, err := fastllm.ParseMetadata(readFile(t, rc.path("fresh", fastllm.MetadataFile)))
			if err != nil {
				t.Fatal(err)
			}
			used := map[string]bool{}
			for _, d := range diffValues("", ours.Config, ref.Config, rc.floatInts, used) {
				t.Errorf("config.base_model.%s", d)
			}
			checkFloatIntsUsed(t, rc.floatInts, used, func(p string) bool { return strings.HasPrefix(p, "decoder.") })
			if ours.Version != ref.Version || ours.Version != rc.version {
				t.Errorf("fast_llm_version %q, Fast-LLM wrote %q", ours.Version, ref.Version)
			}
			if !slices.Equal(ours.Shards, ref.Shards) {
				t.Errorf("shards %v, Fast-LLM wrote %v", ours.Shards, ref.Shards)
			}
			if !reflect.DeepEqual(ours.StateIndex, ref.StateIndex) {
				t.Errorf("state_index differs:\n got %v\nwant %v", ours.StateIndex, ref.StateIndex)
			}
			ourTop, refTop := yamlTop(t, filepath.Join(fl, fastllm.MetadataFile)), yamlTop(t, rc.path("fresh", fastllm.MetadataFile))
			for _, k := range []string{"model", "format", "fast_llm_version"} {
				if ourTop[k] != refTop[k] {
					t.Errorf("%s: %v, Fast-LLM wrote %v", k, ourTop[k], refTop[k])
				}
			}
			ourCfg, refCfg := ourTop["config"].(map[string]any), refTop["config"].(map[string]any)
			if ourCfg["type"] != refCfg["type"] {
				t.Errorf("config.type %v, Fast-LLM wrote %v", ourCfg["type"], refCfg["type"])
			}
			// Only distributed and metadata.mapper may differ.
			for _, k := range slices.Sorted(mapsKeys(keySet(refCfg))) {
				if _, ok := ourCfg[k]; !ok && k != "distributed" {
					t.Errorf("config.%s: Fast-LLM writes it, mapper does not", k)
				}
			}
			for k := range ourCfg {
				if _, ok := refCfg[k]; !ok {
					t.Errorf("config.%s: mapper writes it, Fast-LLM does not", k)
				}
			}
			for k := range ourTop["metadata"].(map[string]any) {
				if k != "state_index" && k != "mapper" {
					t.Errorf("metadata.%s: not written by Fast-LLM's convert", k)
				}
			}

			// Every model_N.safetensors' __metadata__ is the one Fast-LLM's
			// saver wrote, its config modulo distributed as above.
			var refST map[string]string
			if err := json.Unmarshal(readFile(t, rc.path("fresh", "safetensors_metadata.json")), &refST); err != nil {
				t.Fatal(err)
			}
			fc := openFastLLM(t, fl)
			for _, f := range fc.ck.Files {
				for k, want := range refST {
					got, ok := f.Metadata[k]
					if k != "config" {
						if got != want {
							t.Errorf("%s: __metadata__ %s = %q, Fast-LLM wrote %q", filepath.Base(f.Path), k, got, want)
						}
						continue
					}
					var gc, wc map[string]any
					if !ok || yaml.Unmarshal([]byte(got), &gc) != nil || yaml.Unmarshal([]byte(want), &wc) != nil {
						t.Fatalf("%s: __metadata__ config %q", filepath.Base(f.Path), got)
					}
					delete(wc, "distributed")
					gm, _ := fastllm.ParseMetadata([]byte("format: fast_llm\nshards: [weights]\nmetadata: {state_index: {}}\nconfig:\n" + indentYAML(got)))
					if gm == nil || gc["type"] != wc["type"] || len(gc) != len(wc) {
						t.Errorf("%s: __metadata__ config has %v (type %v), Fast-LLM's (less distributed) %v (type %v)",
							filepath.Base(f.Path), keySet(gc), gc["type"], keySet(wc), wc["type"])
						continue
					}
					for _, d := range diffValues("", gm.Config, ref.Config, rc.floatInts, map[string]bool{}) {
						t.Errorf("%s: __metadata__ config.base_model.%s", filepath.Base(f.Path), d)
					}
				}
				if len(f.Metadata) != len(refST) {
					t.Errorf("%s: __metadata__ keys %v, Fast-LLM wrote %v", filepath.Base(f.Path), len(f.Metadata), len(refST))
				}
			}

			// Every tensor of tensors.txt, in the shape Fast-LLM gives it.
			for _, rt := range readTensorsTxt(t, rc.path("fresh", "tensors.txt")) {
				_, sh, _ := fc.raw(strings.TrimSuffix(rt.key, "/weights"))
				if !sh.Equal(rt.shape) {
					t.Errorf("%s: shape %v, Fast-LLM's %v", rt.key, sh, rt.shape)
				}
			}
		})
	}
}

// indentYAML indents a YAML document by two spaces, to nest it.
func indentYAML(doc string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(doc, "\n") {
		if line != "" {
			b.WriteString("  " + line)
		}
	}
	return b.String()
}

func keySet(m map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// writeReal writes a checkpoint as Fast-LLM saved it: its metadata.yaml,
// and model_0.safetensors with every tensor of tensors.txt in F32 (the
// safetensors __metadata__ Fast-LLM wrote included). A weight holds the
// values of the same tensor in fl (mapper's import of the synth
// checkpoint), widened to F32; optimizer state holds values far from any
// weight's, so that reading them by mistake shows in the output.
func writeReal(t *testing.T, rc realCase, stage, fl string, editMeta func(string) string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fast_llm_"+stage)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := string(readFile(t, rc.path(stage, fastllm.MetadataFile)))
	if editMeta != nil {
		meta = editMeta(meta)
	}
	if err := os.WriteFile(filepath.Join(dir, fastllm.MetadataFile), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	var stMeta map[string]string
	if err := json.Unmarshal(readFile(t, rc.path(stage, "safetensors_metadata.json")), &stMeta); err != nil {
		t.Fatal(err)
	}
	src := openFastLLM(t, fl)
	tensors := readTensorsTxt(t, rc.path(stage, "tensors.txt"))
	var entries []safetensors.Entry
	data := map[string][]byte{}
	for i, rt := range tensors {
		if rt.file != "model_0.safetensors" || rt.dtype != tensor.F32 {
			t.Fatalf("tensors.txt: %s is %v in %s; the test writes F32 into model_0.safetensors", rt.key, rt.dtype, rt.file)
		}
		entries = append(entries, safetensors.Entry{Name: rt.key, DType: tensor.F32, Shape: rt.shape})
		param, shard, _ := strings.Cut(rt.key, "/")
		n, _ := rt.shape.NumElements()
		var vals []float32
		if shard == "weights" {
			dt, sh, b := src.raw(param)
			if !sh.Equal(rt.shape) {
				t.Fatalf("%s: mapper's import has shape %v, Fast-LLM's %v", rt.key, sh, rt.shape)
			}
			vals = floats(t, dt, b)
		} else {
			vals = make([]float32, n)
			for j := range vals {
				vals[j] = 1000 + float32(i) + float32(j)/8
			}
		}
		b := make([]byte, 4*len(vals))
		for j, v := range vals {
			binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(v))
		}
		data[rt.key] = b
	}
	l, err := safetensors.NewLayout(entries, stMeta)
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.Create(filepath.Join(dir, "model_0.safetensors"), l)
	if err != nil {
		t.Fatal(err)
	}
	for k, b := range data {
		if err := w.WriteAt(k, 0, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// floats widens BF16 or F32 bytes to float32 values (exactly).
func floats(t *testing.T, dt tensor.DType, b []byte) []float32 {
	t.Helper()
	switch dt {
	case tensor.F32:
		return f32s(b)
	case tensor.BF16:
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
		return out
	}
	t.Fatalf("dtype %v is not a float the test widens", dt)
	return nil
}

// TestExportFastLLMCheckpoints exports every checkpoint Fast-LLM saved for
// the mappings with reference data, converted (fresh) and after training (trained, with
// its optimizer shards), and checks the HF checkpoint: every tensor holds
// the reference's values (mapper's own export of its import of the same
// synth checkpoint, in the same layout), in F32 where the rule declares no
// dtype (Fast-LLM's weights are F32; nothing says the HF dtype) and in the
// declared dtype elsewhere; and config.json is the synth hf_config.json
// except for the keys only metadata.mapper (or --like, TestExportFastLLMLike)
// can give back: the kept keys are missing and the keys that were absent
// (and got their default) are present; the notes say so, and name --like.
func TestExportFastLLMCheckpoints(t *testing.T) {
	for _, rc := range realCases() {
		variants := []string{""}
		if rc.mapping == "gpt_oss" {
			variants = append(variants, "mxfp4")
		}
		for _, stage := range []string{"fresh", "trained"} {
			if _, err := os.Stat(rc.path(stage)); errors.Is(err, fs.ErrNotExist) && stage == "trained" {
				continue // converted by Fast-LLM, not trained: no such data
			}
			for _, variant := range variants {
				name := rc.name() + "_" + stage
				if variant != "" {
					name += "_" + variant
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					checkRealExport(t, rc, stage, variant)
				})
			}
		}
	}
}

func checkRealExport(t *testing.T, rc realCase, stage, variant string) {
	m := load(t, rc.mapping)
	hf0 := generate(t, rc.arch, synth.Options{ByteExactMXFP4: true, NoSideFiles: true})
	fl0, imp := convert(t, m, hf0, engine.PlanOptions{})
	real := writeReal(t, rc, stage, fl0, nil)
	hf1, exp := convert(t, m, real, engine.PlanOptions{Variant: variant})
	ref, _ := convert(t, m, fl0, engine.PlanOptions{Variant: exp.Variant})

	// Tensors.
	out, want := openHF(t, hf1), openHF(t, ref)
	var outNames, refNames []string
	for _, f := range out.ck.Files {
		for _, ti := range f.Tensors {
			outNames = append(outNames, ti.Name)
		}
	}
	for _, f := range want.ck.Files {
		for _, ti := range f.Tensors {
			refNames = append(refNames, ti.Name)
		}
	}
	sort.Strings(outNames)
	sort.Strings(refNames)
	if !slices.Equal(outNames, refNames) {
		t.Fatalf("tensors %v, want %v", outNames, refNames)
	}
	f32 := 0
	for _, n := range refNames {
		gdt, gsh, gb := out.raw(n)
		wdt, wsh, wb := want.raw(n)
		if !gsh.Equal(wsh) {
			t.Errorf("%s: shape %v, want %v", n, gsh, wsh)
			continue
		}
		switch {
		case gdt == wdt:
			if !bytes.Equal(gb, wb) {
				t.Errorf("%s: %v bytes differ from the reference", n, gdt)
			}
		case gdt == tensor.F32 && wdt == tensor.BF16:
			f32++
			sameBits(t, n, f32s(gb), floats(t, wdt, wb))
		default:
			t.Errorf("%s: %v, the reference is %v", n, gdt, wdt)
		}
	}
	if f32 == 0 {
		t.Errorf("no tensor came out F32: every rule of %s declares its dtype?", rc.mapping)
	}

	// config.json: the synth one, less what needs metadata.mapper.
	refConfig := rc.path("hf_config.json")
	if rc.mapping == "gpt_oss" && exp.Variant == "dense" {
		refConfig = rc.path("hf_config_dense.json")
	}
	gotCfg, wantCfg := jsonLeaves(t, filepath.Join(hf1, "config.json")), jsonLeaves(t, refConfig)
	// Without a record, a recorded when is decided on the rebuilt config:
	// where that gives another value than the input's, it must be the one
	// Fast-LLM's exporter writes (llava's projector_hidden_act: the input's
	// "gelu", which Fast-LLM imports as its gelu, is "gelu_pytorch_tanh").
	fastLLMExport := map[string]any{}
	if rc.noExportConfig == "" {
		fastLLMExport = jsonLeaves(t, rc.path("export_config.json"))
	}
	kept := func(p string) bool {
		for k := range imp.Carried.Kept {
			if p == k || strings.HasPrefix(p, k+".") {
				return true
			}
		}
		// transformers' generic keys travel in extra, by top-level name.
		for k := range imp.Carried.Extra {
			if p == k || strings.HasPrefix(p, k+".") {
				return true
			}
		}
		return false
	}
	used := map[string]bool{}
	for _, k := range slices.Sorted(mapsKeys(keySet(wantCfg))) {
		g, ok := gotCfg[k]
		rv, recorded := rc.recorded[k]
		switch {
		case slices.Contains(imp.Carried.ForDefault, k):
			// Only metadata.mapper could write the value standing for the
			// default ("auto") again: the default, as Fast-LLM's exporter.
			for _, d := range diffValues(k, g, jsonLeaves(t, rc.path("export_config.json"))[k], rc.floatInts, used) {
				t.Errorf("config.json: %s (Fast-LLM's export_config.json)", d)
			}
		case kept(k):
			if ok {
				t.Errorf("config.json: %s is there; only metadata.mapper (absent here) could give it back", k)
			}
		case recorded:
			if !ok || !reflect.DeepEqual(g, rv) {
				t.Errorf("config.json: %s = %#v, want %#v: without the record, the branch of an absent key", k, g, rv)
			}
		case !ok:
			t.Errorf("config.json: %s missing, want %v", k, wantCfg[k])
		default:
			diffs := diffValues(k, g, wantCfg[k], rc.floatInts, used)
			if fv, ok := fastLLMExport[k]; ok && len(diffs) > 0 && len(imp.Carried.Branches) > 0 && len(diffValues(k, g, fv, nil, used)) == 0 {
				t.Logf("config.json: %s is %v, as Fast-LLM's exporter writes it; the input had %v", k, g, wantCfg[k])
				continue
			}
			for _, d := range diffs {
				t.Errorf("config.json: %s", d)
			}
		}
	}
	absent := func(p string) bool {
		return slices.ContainsFunc(imp.Carried.Absent, func(a string) bool { return p == a || strings.HasPrefix(p, a+".") })
	}
	for k, v := range gotCfg {
		if _, ok := wantCfg[k]; !ok && !absent(k) {
			t.Errorf("config.json: %s = %v is not in the synth config and was not absent from it", k, v)
		}
	}
	checkFloatIntsUsed(t, rc.floatInts, used, func(p string) bool { return !strings.HasPrefix(p, "decoder.") })

	// The notes name what was left out, and the casts.
	notes := strings.Join(exp.Notes, "\n")
	wantNotes := []string{"config.distributed"}
	if stage == "trained" {
		n := len(readTensorsTxt(t, rc.path(stage, "tensors.txt"))) / 3
		wantNotes = append(wantNotes, fmt.Sprintf("shards exp_avgs (%d tensors), exp_avgs_sq (%d tensors) are optimizer state: not read", n, n),
			"config.multi_stage", "metadata.optimizer", "metadata.completed_steps", "metadata.metrics")
	}
	if rc.mapping == "gpt_oss" && exp.Variant == "dense" {
		wantNotes = append(wantNotes, "are cast from F32 to BF16, the dtype their rules declare or the import recorded: lossy",
			"the variant is dense, the one a conversion picks when none is recorded or asked for")
	}
	// What only metadata.mapper could have given back.
	wantNotes = append(wantNotes, "config.base_model has no record of an import by mapper (metadata.mapper): the keys "+rc.mapping+" keeps are not restored (",
		"transformers' generic config keys the original had are not restored",
		"--like DIR, naming the hf checkpoint "+real+" was converted or trained from, restores all of it")
	if len(m.Branches) > 0 {
		wantNotes = append(wantNotes, "the recorded whens are decided on the rebuilt config, not as the original's were (")
	} else if strings.Contains(notes, "recorded whens") {
		t.Errorf("a note on recorded whens, though %s has none:\n%s", rc.mapping, notes)
	}
	wantNotes = append(wantNotes, imp.Carried.Absent...) // written with their defaults
	for _, k := range imp.Carried.ForDefault {
		wantNotes = append(wantNotes, k+" rather than ")
	}
	if exp.Variant == "mxfp4" {
		wantNotes = append(wantNotes, "variant mxfp4 quantizes to MXFP4 values that did not come from MXFP4")
	}
	for _, w := range wantNotes {
		if !strings.Contains(notes, w) {
			t.Errorf("the plan's notes do not say %q:\n%s", w, notes)
		}
	}
	if strings.Contains(notes, "was written by fast_llm") {
		t.Errorf("a version note, though the checkpoint has the target's version:\n%s", notes)
	}
}

// jsonLeaves reads a JSON object into dotted paths to its leaves (numbers
// as written: 150000 and 150000.0 differ).
func jsonLeaves(t *testing.T, path string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(readFile(t, path)))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(p, sub)
				continue
			}
			out[p] = v
		}
	}
	walk("", doc)
	return out
}

// TestFastLLMVersionNote: a checkpoint of another Fast-LLM version than the
// mapping targets is read, and the plan says so.
func TestFastLLMVersionNote(t *testing.T) {
	t.Parallel()
	rc := realCases()[4]
	m := load(t, rc.mapping)
	fl0, _ := convert(t, m, generate(t, rc.arch, synth.Options{NoSideFiles: true}), engine.PlanOptions{})
	real := writeReal(t, rc, "fresh", fl0, func(s string) string {
		return strings.Replace(s, "fast_llm_version: 0.3.0\n", "fast_llm_version: 0.4.0\n", 1)
	})
	_, p := convert(t, m, real, engine.PlanOptions{})
	want := "config.base_model was written by fast_llm 0.4.0; mapping gpt_oss targets fast_llm 0.3.0"
	if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, want) }) {
		t.Errorf("notes %q do not say %q", p.Notes, want)
	}
}

// TestRefusedFastLLMValues: a value Fast-LLM can hold and HF cannot say is
// refused on export, naming the key, the value and the rule.
func TestRefusedFastLLMValues(t *testing.T) {
	cases := []struct {
		rc       realCase
		from, to string
		want     []string
	}{
		{realCases()[0], "          causal: true\n", "          causal: false\n",
			[]string{"decoder.block.mixer.causal: is false; the mapping requires true (hf has no way to say another value)", "mappings/llama.map:"}},
		{realCases()[3], "      type: none\n", "      type: lora\n",
			[]string{`peft.type: is "lora"; the mapping requires "none"`}},
		{realCases()[2], "          routing: aux_loss\n", "          routing: sinkhorn\n",
			[]string{`decoder.block.mlp.routing: is "sinkhorn"; the mapping requires "aux_loss"`}},
		{realCases()[4], "      type: language_model_head\n", "      type: multi_token_prediction\n",
			[]string{`head.type: is "multi_token_prediction"; the mapping requires "language_model_head"`}},
	}
	for _, tc := range cases {
		t.Run(tc.rc.mapping, func(t *testing.T) {
			t.Parallel()
			m := load(t, tc.rc.mapping)
			fl0, _ := convert(t, m, generate(t, tc.rc.arch, synth.Options{NoSideFiles: true}), engine.PlanOptions{})
			real := writeReal(t, tc.rc, "fresh", fl0, func(s string) string {
				if !strings.Contains(s, tc.from) {
					t.Fatalf("metadata.yaml has no %q", tc.from)
				}
				return strings.Replace(s, tc.from, tc.to, 1)
			})
			refused(t, tc.rc.mapping, real, engine.PlanOptions{}, tc.want...)
		})
	}
}

// TestExportDTypeRecorded: a checkpoint whose tensors were widened to F32
// after an import by mapper goes back to HF in the dtypes the import
// recorded (BF16 here), byte for byte, MXFP4 experts quantized from F32
// included; the plan says the casts are lossy.
func TestExportDTypeRecorded(t *testing.T) {
	for _, rc := range realCases() {
		t.Run(rc.name(), func(t *testing.T) {
			t.Parallel()
			m := load(t, rc.mapping)
			hf0 := generate(t, rc.arch, synth.Options{ByteExactMXFP4: true})
			fl0, imp := convert(t, m, hf0, engine.PlanOptions{})
			if imp.Carried.DType != "BF16" || imp.Carried.DTypes != nil {
				t.Fatalf("import recorded dtype %q / %v, want BF16", imp.Carried.DType, imp.Carried.DTypes)
			}
			// Widen every tensor to F32, keeping metadata.mapper.
			rewriteF32(t, fl0)
			hf1, exp := convert(t, m, fl0, engine.PlanOptions{})
			checkHFRoundTrip(t, hf0, hf1, false)
			if !slices.ContainsFunc(exp.Notes, func(n string) bool { return strings.Contains(n, "cast from F32 to BF16") }) {
				t.Errorf("no cast note: %q", exp.Notes)
			}
		})
	}
}

// rewriteF32 rewrites a Fast-LLM checkpoint's tensors as F32 (exact),
// keeping its metadata.yaml.
func rewriteF32(t *testing.T, dir string) {
	t.Helper()
	md := parseMetadata(t, dir)
	c := openFastLLM(t, dir)
	files := map[string][]safetensors.Entry{}
	data := map[string][]byte{}
	for key, file := range md.StateIndex {
		name := strings.TrimSuffix(key, "/weights")
		dt, sh, b := c.raw(name)
		vals := floats(t, dt, b)
		out := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		files[file] = append(files[file], safetensors.Entry{Name: key, DType: tensor.F32, Shape: sh.Clone()})
		data[key] = out
	}
	c.ck.Close()
	for file, es := range files {
		l, err := safetensors.NewLayout(es, nil)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, file)
		os.Remove(path)
		w, err := safetensors.Create(path, l)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if err := w.WriteAt(e.Name, 0, data[e.Name]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Finish(); err != nil {
			t.Fatal(err)
		}
	}
}
