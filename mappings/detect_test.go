package mappings_test

import (
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/mappings"
	"github.com/mapper-dev/mapper/mappings/synth"
)

func builtins(t *testing.T) []*ir.Mapping {
	t.Helper()
	var out []*ir.Mapping
	for _, f := range mappings.Builtin() {
		out = append(out, load(t, f.Name))
	}
	return out
}

// TestDetect: every synthetic family is recognised as its mapping by the
// architectures and model_type the mappings declare, and the Fast-LLM
// checkpoint it imports to by the mapping it records.
func TestDetect(t *testing.T) {
	all := builtins(t)
	for _, name := range synth.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, err := synth.ByName(name)
			if err != nil {
				t.Fatal(err)
			}
			want := string(a.Family)
			hf := generate(t, a, synth.Options{NoSideFiles: true})
			d, err := engine.Detect(hf, all)
			if err != nil {
				t.Fatal(err)
			}
			if d.Mapping.Name != want || d.Side != "hf" || !strings.Contains(d.Reason, "config.json: architectures [") {
				t.Errorf("detected %s (%s: %s), want %s", d.Mapping.Name, d.Side, d.Reason, want)
			}
			fl, _ := convert(t, d.Mapping, hf, engine.PlanOptions{})
			d, err = engine.Detect(fl, all)
			if err != nil {
				t.Fatal(err)
			}
			if d.Mapping.Name != want || d.Side != "fast_llm" || !strings.Contains(d.Reason, "records that mapper wrote it with mapping "+want) {
				t.Errorf("detected %s (%s: %s) for the Fast-LLM checkpoint, want %s", d.Mapping.Name, d.Side, d.Reason, want)
			}
		})
	}
}

// TestDetectRefuses: what detection cannot tell, it says.
func TestDetectRefuses(t *testing.T) {
	all := builtins(t)
	cases := []struct {
		name string
		dir  func(t *testing.T) string
		want string
	}{
		{"unknown_architecture", func(t *testing.T) string {
			return generate(t, withOverrides(synth.TinyLlama(), "architectures", []any{"GemmaForCausalLM"}, "model_type", "gemma"), synth.Options{})
		}, `config.json: architectures ["GemmaForCausalLM"], model_type "gemma", which no mapping declares; name the mapping`},
		{"original_llava_layout", func(t *testing.T) string {
			// liuhaotian/llava-v1.5-7b says model_type llava too, but its
			// architecture is the original LLaVA's, which llava.map does
			// not declare (and no tool can convert: see docs/mappings.md).
			return generate(t, withOverrides(synth.TinyLlava(), "architectures", []any{"LlavaLlamaForCausalLM"}), synth.Options{})
		}, `architectures ["LlavaLlamaForCausalLM"], model_type "llava", which no mapping declares`},
		{"architectures_and_model_type_disagree", func(t *testing.T) string {
			return generate(t, withOverrides(synth.TinyLlama(), "model_type", "qwen2"), synth.Options{})
		}, `architectures ["LlamaForCausalLM"], model_type "qwen2", which no mapping declares`},
		{"fast_llm_not_from_mapper", func(t *testing.T) string {
			// Fast-LLM's own checkpoint of a Diffusion-Llama: no metadata.mapper.
			for _, rc := range realCases() {
				if rc.mapping == "diffusion_llama" {
					fl, _ := convert(t, load(t, rc.mapping), generate(t, rc.arch, synth.Options{}), engine.PlanOptions{})
					return writeReal(t, rc, "fresh", fl, nil)
				}
			}
			t.Fatal("no reference data for diffusion_llama")
			return ""
		}, "a fast_llm checkpoint that mapper did not write (no record of a mapping), and a fast_llm config does not say what model it is; name the mapping"},
		{"not_a_checkpoint", func(t *testing.T) string { return t.TempDir() }, "does not look like a checkpoint of any side the mappings convert (fast_llm, hf)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := engine.Detect(tc.dir(t), all)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Detect: %v; want an error with %q", err, tc.want)
			}
		})
	}

	// A Fast-LLM checkpoint recording a mapping that is not among the
	// candidates.
	fl, _ := convert(t, load(t, "llama"), generate(t, synth.TinyLlama(), synth.Options{}), engine.PlanOptions{})
	var others []*ir.Mapping
	for _, m := range all {
		if m.Name != "llama" {
			others = append(others, m)
		}
	}
	if _, err := engine.Detect(fl, others); err == nil || !strings.Contains(err.Error(), "records that mapper wrote it with mapping llama, and no known mapping has that name: give its .map file") {
		t.Errorf("Detect without llama: %v", err)
	}
}

// TestDetectFromTheMapping: the detection data is the mapping's own left
// constants: a mapping of one's own is picked by what it declares, and two
// mappings declaring the same model are ambiguous.
func TestDetectFromTheMapping(t *testing.T) {
	src, _ := mappings.Lookup("llama")
	own := strings.Replace(strings.Replace(string(src.Source), "mapping llama", "mapping my_llama", 1),
		`left architectures = ["LlamaForCausalLM"]`, `left architectures = ["MyLlamaForCausalLM"]`, 1)
	m := loadSource(t, "my_llama.map", own)
	hf := generate(t, withOverrides(synth.TinyLlama(), "architectures", []any{"MyLlamaForCausalLM"}), synth.Options{})
	d, err := engine.Detect(hf, append(builtins(t), m))
	if err != nil || d.Mapping.Name != "my_llama" {
		t.Fatalf("Detect: %v, %v; want my_llama", d, err)
	}
	twin := loadSource(t, "twin.map", strings.Replace(own, "mapping my_llama", "mapping twin", 1))
	_, err = engine.Detect(hf, []*ir.Mapping{m, twin})
	if err == nil || !strings.Contains(err.Error(), `fits my_llama and twin; name the mapping`) {
		t.Errorf("Detect with two mappings of one model: %v", err)
	}
}

// TestNoBuiltinNamedAuto: "auto" as a MAPPING argument asks for detection,
// so no built-in mapping may have that name.
func TestNoBuiltinNamedAuto(t *testing.T) {
	if _, ok := mappings.Lookup("auto"); ok {
		t.Error(`a built-in mapping is called "auto", which mapper apply/plan read as "detect the mapping"`)
	}
}
