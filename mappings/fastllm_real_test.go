package mappings_test

// mtp_llama, diffusion_llama and dream against what Fast-LLM's own
// converters (main 7d61a1ba) wrote for the same input
// (engine/format/fastllm/testdata/real, see its README): the config.base_model
// of the import, the names and shapes of the imported tensors, and the HF
// config of the export.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

const realMain = "../engine/format/fastllm/testdata/real/main"

// leaves flattens a config into dotted path -> value; a null, a list and an
// empty map are leaves.
func leaves(prefix string, v any, out map[string]any) map[string]any {
	if m, ok := v.(map[string]any); ok && len(m) > 0 {
		for k, x := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			leaves(p, x, out)
		}
		return out
	}
	out[prefix] = v
	return out
}

// notYetWritten matches the config.base_model keys Fast-LLM writes
// explicitly on import that mapper's mappings of main's Llama family do not
// write yet: types and constants its converters set (see
// /work/shared/spec/fastllm.md, "What a checkpoint saved by Fast-LLM looks
// like"). The comparison below is modulo these keys, and only these: a key
// the mapping does write must have Fast-LLM's value, and a key of Fast-LLM's
// outside this list that the mapping does not write is a failure.
var notYetWritten = regexp.MustCompile(`^(` + strings.Join([]string{
	`decoder\.type`, `decoder\.block\.type`, `decoder\.block\.mlp\.type`, `peft\.type`,
	`decoder\.block\.mixer\.(causal|softmax_scale_power|shared_key_value|query_norm|key_norm|value_norm)`,
	`decoder\.block\.mlp\.(pre_norm|post_norm)`,
	`decoder\.block\.(pre|post)_(mixer|mlp)_normalization`,
	`(decoder\.block|head)\.normalization\.zero_centered`,
	`embeddings\.embedding_scale`, `head\.final_logit_softcap`, `head\.prediction_heads`,
}, "|") + `)$`)

// realTensor is one line of tensors.txt.
type realTensor struct {
	dtype string
	shape []int
}

func readTensorsTxt(t *testing.T, path string) map[string]realTensor {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]realTensor{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		var shape []int
		for _, d := range strings.Split(strings.Trim(cols[2], "[]"), ", ") {
			if d == "" {
				continue
			}
			n, err := strconv.Atoi(d)
			if err != nil {
				t.Fatalf("%s: %q: %v", path, line, err)
			}
			shape = append(shape, n)
		}
		out[strings.TrimSuffix(cols[0], "/weights")] = realTensor{cols[1], shape}
	}
	return out
}

var realCases = []struct {
	mapping string
	arch    func() synth.Arch
}{
	{"mtp_llama", synth.TinyMTPLlama},
	{"diffusion_llama", synth.TinyDiffusionLlama},
	{"dream", synth.TinyDream},
}

// TestFastLLMReferenceImport imports the HF config Fast-LLM converted (synth
// writes it byte for byte) and compares with Fast-LLM's fresh checkpoint.
func TestFastLLMReferenceImport(t *testing.T) {
	for _, tc := range realCases {
		t.Run(tc.mapping, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(realMain, tc.mapping)
			hf := generate(t, tc.arch(), synth.Options{NoSideFiles: true})
			if got, want := readFile(t, filepath.Join(hf, "config.json")), readFile(t, filepath.Join(dir, "hf_config.json")); !bytes.Equal(got, want) {
				t.Fatalf("synth's config.json is not Fast-LLM's input:\n%s\nwant\n%s", got, want)
			}
			out, _ := convert(t, load(t, tc.mapping), hf, engine.PlanOptions{})

			// config.base_model, modulo the keys main's mappings do not write yet.
			ours := leaves("", parseMetadata(t, out).Config, map[string]any{})
			theirs := leaves("", parseMetadata(t, filepath.Join(dir, "fresh")).Config, map[string]any{})
			var modulo []string
			for k, v := range theirs {
				got, ok := ours[k]
				switch {
				case ok && !reflect.DeepEqual(got, v):
					t.Errorf("config.base_model.%s = %#v, Fast-LLM writes %#v", k, got, v)
				case !ok && notYetWritten.MatchString(k):
					modulo = append(modulo, k)
				case !ok:
					t.Errorf("config.base_model.%s: Fast-LLM writes %#v, mapper nothing", k, v)
				}
			}
			for k, v := range ours {
				if _, ok := theirs[k]; !ok {
					t.Errorf("config.base_model.%s = %#v: Fast-LLM does not write it", k, v)
				}
			}
			sort.Strings(modulo)
			t.Logf("equal to Fast-LLM's config.base_model except for %d keys mapper does not write yet: %s", len(modulo), strings.Join(modulo, ", "))

			// Tensors: the same names and shapes (Fast-LLM converts to F32,
			// mapper keeps the input's BF16).
			want := readTensorsTxt(t, filepath.Join(dir, "fresh", "tensors.txt"))
			fl := openFastLLM(t, out)
			var names []string
			for _, f := range fl.ck.Files {
				for _, info := range f.Tensors {
					name := strings.TrimSuffix(info.Name, "/weights")
					names = append(names, name)
					w, ok := want[name]
					if !ok {
						t.Errorf("tensor %s: Fast-LLM has none", name)
						continue
					}
					if !slices.Equal([]int(info.Shape), w.shape) {
						t.Errorf("tensor %s has shape %v, Fast-LLM's %v", name, info.Shape, w.shape)
					}
				}
			}
			for name := range want {
				if !slices.Contains(names, name) {
					t.Errorf("tensor %s: Fast-LLM has it, mapper not", name)
				}
			}
			if len(names) != len(want) {
				t.Errorf("%d tensors, Fast-LLM %d", len(names), len(want))
			}
		})
	}
}

// fastLLMCheckpoint writes a Fast-LLM checkpoint made of Fast-LLM's own
// metadata.yaml, less the config keys in drop, and F32 tensors of the names
// and shapes of its tensors.txt.
func fastLLMCheckpoint(t *testing.T, dir string, drop []string) string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(readFile(t, filepath.Join(dir, "fresh", fastllm.MetadataFile)), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range drop {
		if !deleteYAML(doc.Content[0], append([]string{"config", "base_model"}, strings.Split(k, ".")...)) {
			t.Fatalf("%s: no key %s to drop", dir, k)
		}
	}
	md, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "fast_llm")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, fastllm.MetadataFile), md, 0o644); err != nil {
		t.Fatal(err)
	}
	ts := readTensorsTxt(t, filepath.Join(dir, "fresh", "tensors.txt"))
	var entries []safetensors.Entry
	for name, rt := range ts {
		entries = append(entries, safetensors.Entry{Name: name + "/weights", DType: tensor.F32, Shape: tensor.Shape(rt.shape)})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	l, err := safetensors.NewLayout(entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.Create(filepath.Join(out, "model_0.safetensors"), l)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		size, _ := e.Size()
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + len(e.Name))
		}
		if err := w.WriteAt(e.Name, 0, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	return out
}

// deleteYAML removes the key at path from a mapping node, and the
// mappings it leaves empty (peft once peft.type is gone).
func deleteYAML(n *yaml.Node, path []string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != path[0] {
			continue
		}
		if len(path) > 1 {
			if !deleteYAML(n.Content[i+1], path[1:]) {
				return false
			}
			if len(n.Content[i+1].Content) > 0 {
				return true
			}
		}
		n.Content = append(n.Content[:i], n.Content[i+2:]...)
		return true
	}
	return false
}

// TestFastLLMReferenceExport exports Fast-LLM's own checkpoint of each
// format to HF and compares the config.json with the one Fast-LLM's
// exporter makes of it (export_config.json): every key Fast-LLM writes must
// have Fast-LLM's value.
func TestFastLLMReferenceExport(t *testing.T) {
	for _, tc := range realCases {
		t.Run(tc.mapping, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(realMain, tc.mapping)
			// The keys Fast-LLM writes that the mapping does not claim yet
			// (the same list as on import) are dropped from its metadata.yaml.
			var drop []string
			m := load(t, tc.mapping)
			ours, _ := convert(t, m, generate(t, tc.arch(), synth.Options{NoSideFiles: true}), engine.PlanOptions{})
			written := leaves("", parseMetadata(t, ours).Config, map[string]any{})
			for k := range leaves("", parseMetadata(t, filepath.Join(dir, "fresh")).Config, map[string]any{}) {
				if _, ok := written[k]; !ok && notYetWritten.MatchString(k) {
					drop = append(drop, k)
				}
			}
			sort.Strings(drop)
			fast := fastLLMCheckpoint(t, dir, drop)
			hf, p := convert(t, m, fast, engine.PlanOptions{})
			if p.Direction != engine.Export {
				t.Fatalf("direction %v", p.Direction)
			}
			// Decoded as Python does: 500000.0 and 500000 differ.
			decode := func(path string) map[string]any {
				v, err := pyjson.Decode(readFile(t, path))
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				return v.(map[string]any)
			}
			got, want := decode(filepath.Join(hf, "config.json")), decode(filepath.Join(dir, "export_config.json"))
			for k, v := range want {
				if g, ok := got[k]; !ok || !reflect.DeepEqual(g, v) {
					t.Errorf("config.json %s = %v (present %v); Fast-LLM's exporter writes %v", k, g, ok, v)
				}
			}
			var extra []string
			for k, v := range got {
				if _, ok := want[k]; !ok {
					extra = append(extra, fmt.Sprintf("%s: %v", k, v))
				}
			}
			sort.Strings(extra)
			t.Logf("every key Fast-LLM's exporter writes has its value (metadata.yaml less %d keys mapper does not claim yet); mapper writes %d more: %s",
				len(drop), len(extra), strings.Join(extra, ", "))
		})
	}
}
