package mappings_test

// The rotary embedding as published configs state it: default, llama3 and
// yarn, in transformers v4's spelling (rope_theta + rope_scaling, with
// rope_type or the older type) and v5's (rope_parameters). Each imports to
// Fast-LLM's rotary type with its fields (as Fast-LLM's own
// _llama_rotary_import maps them) and comes back in the form it came in,
// config.json byte for byte.

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/mappings"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// rotaryWant is config.base_model's decoder.block.mixer.rotary for a rope
// form on a synth config whose rope_theta is theta.
func rotaryWant(r synth.Rope, theta any) map[string]any {
	switch r.Type {
	case "llama3":
		return map[string]any{"type": "llama3", "theta": theta, "scale_factor": 8.0, "low_frequency_factor": 1.0,
			"high_frequency_factor": 4.0, "original_context_length": int64(8192)}
	case "yarn":
		// beta_fast and beta_slow absent: transformers' defaults, written
		// explicitly; attention_factor absent stays absent (Fast-LLM's
		// default is transformers').
		return map[string]any{"type": "yarn", "theta": theta, "scale_factor": 4.0, "beta_fast": 32.0, "beta_slow": 1.0,
			"original_context_length": int64(32768)}
	}
	return map[string]any{"type": "default", "theta": theta}
}

func ropeForms() []synth.Rope {
	return []synth.Rope{
		{}, {Type: "llama3"}, {Type: "yarn"}, {Type: "yarn", Legacy: true}, {Type: "llama3", Legacy: true},
		{V5: true}, {Type: "llama3", V5: true}, {Type: "yarn", V5: true},
	}
}

func ropeName(r synth.Rope) string {
	n := r.Type
	if n == "" {
		n = "default"
	}
	if r.Legacy {
		n += "_legacy"
	}
	if r.V5 {
		n += "_v5"
	}
	return n
}

func TestRopeForms(t *testing.T) {
	families := []struct {
		mapping string
		arch    synth.Arch
		theta   any
		forms   []synth.Rope // nil: ropeForms()
	}{
		{"llama", synth.TinyLlama(), 500000.0, nil},
		{"mistral", synth.TinyMistral(), 10000.0, nil},
		{"mixtral", synth.TinyMixtral(), 1000000.0, nil},
		{"qwen2", synth.TinyQwen2(), 1000000.0, nil},
		// Fast-LLM's converters for these import Llama's rotary (Dream's
		// through Qwen2's); Qwen3's have none, and transformers reads the
		// same fields there.
		{"mtp_llama", synth.TinyMTPLlama(), 500000.0, nil},
		{"diffusion_llama", synth.TinyDiffusionLlama(), 500000.0, nil},
		{"dream", synth.TinyDream(), 1000000.0, nil},
		{"qwen3", synth.TinyQwen3(), int64(1000000), nil},
		{"qwen3_moe", synth.TinyQwen3MoE(), 1000000.0, nil},
		// Phi-3 publishes the default rotary and longrope, which Fast-LLM
		// has none of (TestRopeRefused).
		{"phi3", synth.TinyPhi3(), 10000.0, []synth.Rope{{}, {V5: true}}},
		// Fast-LLM's apriel converter imports Mistral's, into the
		// attention block.
		{"apriel_hybrid_ssm", synth.TinyAprielHybridSSM(), 10000.0, nil},
	}
	for _, fam := range families {
		forms := fam.forms
		if forms == nil {
			forms = ropeForms()
		}
		for _, r := range forms {
			t.Run(fam.mapping+"/"+ropeName(r), func(t *testing.T) {
				t.Parallel()
				a := fam.arch
				a.Rope = r
				m := load(t, fam.mapping)
				hf0 := generate(t, a, synth.Options{NoSideFiles: true})
				fl, p := convert(t, m, hf0, engine.PlanOptions{})
				md := parseMetadata(t, fl)
				// The defaults written for yarn's absent fields are named.
				if r.Type == "yarn" && !r.V5 && !strings.Contains(strings.Join(p.Notes, "\n"), "rope_scaling.beta_fast is absent: its default 32.0 is used") {
					t.Errorf("notes %q do not name the yarn defaults", p.Notes)
				}
				got, _ := lookup(md.Config, rotaryPath(fam.mapping))
				if want := rotaryWant(r, fam.theta); !reflect.DeepEqual(got, want) {
					t.Errorf("rotary:\n got %v\nwant %v", got, want)
				}
				// The spelling is recorded, so the export picks it again.
				if held, ok := md.Carried.Branches["rope_parameters != null"]; !ok || held != r.V5 {
					t.Errorf("branches %v: want rope_parameters != null recorded as %v", md.Carried.Branches, r.V5)
				}
				hf1, _ := convert(t, m, fl, engine.PlanOptions{})
				checkHFRoundTrip(t, hf0, hf1, false)
				// And the Fast-LLM side survives the other round trip.
				fl2, _ := convert(t, m, hf1, engine.PlanOptions{})
				checkSameMetadata(t, fl, fl2)
			})
		}
	}
}

// TestRopeGPTOSSV5: GPT-OSS's yarn, as transformers v5 writes it.
func TestRopeGPTOSSV5(t *testing.T) {
	t.Parallel()
	a := synth.TinyGPTOSS()
	a.Rope = synth.Rope{V5: true}
	m := load(t, "gpt_oss")
	hf0 := generate(t, a, synth.Options{ByteExactMXFP4: true})
	fl, _ := convert(t, m, hf0, engine.PlanOptions{})
	md := parseMetadata(t, fl)
	want := map[string]any{"type": "yarn", "theta": int64(150000), "scale_factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
		"original_context_length": int64(4096)}
	for _, b := range []string{"sliding", "full"} {
		got, _ := lookup(md.Config, "decoder.blocks."+b+".mixer.rotary")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s rotary:\n got %v\nwant %v", b, got, want)
		}
	}
	if v, ok := md.Carried.Kept["rope_parameters.truncate"]; !ok || v != false {
		t.Errorf("metadata.mapper.kept rope_parameters.truncate = %v (%v), want false", v, ok)
	}
	hf1, _ := convert(t, m, fl, engine.PlanOptions{})
	checkHFRoundTrip(t, hf0, hf1, false)
}

// TestRopeRefused: rope types Fast-LLM has no rotary for are refused,
// naming the type, in every spelling; so are yarn fields it has no place
// for, Qwen2's multimodal rotary, and Phi-3's longrope and partial rotary.
func TestRopeRefused(t *testing.T) {
	v5 := func(a synth.Arch, params map[string]any) synth.Arch {
		a.Rope = synth.Rope{V5: true}
		return withOverrides(a, "rope_parameters", params)
	}
	cases := []struct {
		name, mapping string
		arch          synth.Arch
		want          []string
	}{
		{"dynamic", "llama", withOverrides(synth.TinyLlama(), "rope_scaling", map[string]any{"factor": 2.0, "rope_type": "dynamic"}),
			[]string{"rope_scaling.rope_type", `value "dynamic" has no counterpart (known: "llama3", "yarn")`}},
		{"linear_legacy", "qwen2", withOverrides(synth.TinyQwen2(), "rope_scaling", map[string]any{"factor": 2.0, "type": "linear"}),
			[]string{"rope_scaling.rope_type", `value "linear" (absent, so its default rope_scaling.type) has no counterpart`}},
		{"longrope_v5", "mistral", v5(synth.TinyMistral(), map[string]any{"rope_theta": 10000.0, "rope_type": "longrope",
			"long_factor": []any{1.0}, "short_factor": []any{1.0}}),
			[]string{"rope_parameters.rope_type", `value "longrope" has no counterpart (known: "default", "llama3", "yarn")`}},
		{"yarn_mscale", "llama", withOverrides(synth.TinyLlama(), "rope_scaling", map[string]any{"factor": 4.0,
			"rope_type": "yarn", "mscale": 1.0, "original_max_position_embeddings": int64(4096)}),
			[]string{"rope_scaling.mscale: not claimed by any config rule of llama"}},
		{"mrope", "qwen2", withOverrides(synth.TinyQwen2(), "use_mrope", true),
			[]string{"use_mrope is true: multimodal rotary (Qwen2-VL's) has no Fast-LLM rotary type"}},
		{"both_spellings", "llama", withOverrides(synth.TinyLlama(), "rope_parameters", map[string]any{"rope_theta": 500000.0, "rope_type": "default"}),
			[]string{"rope_theta: not claimed", "rope_scaling: not claimed"}},
		// The copies refuse as their sources do.
		{"dynamic_dream", "dream", withOverrides(synth.TinyDream(), "rope_scaling", map[string]any{"factor": 2.0, "rope_type": "dynamic"}),
			[]string{"rope_scaling.rope_type", `value "dynamic" has no counterpart (known: "llama3", "yarn")`}},
		{"dynamic_apriel", "apriel_hybrid_ssm", withOverrides(synth.TinyAprielHybridSSM(), "rope_scaling", map[string]any{"factor": 2.0, "rope_type": "dynamic"}),
			[]string{"rope_scaling.rope_type", `value "dynamic" has no counterpart (known: "llama3", "yarn")`}},
		{"linear_v5_qwen3", "qwen3", v5(synth.TinyQwen3(), map[string]any{"rope_theta": int64(1000000), "rope_type": "linear", "factor": 2.0}),
			[]string{"rope_parameters.rope_type", `value "linear" has no counterpart (known: "default", "llama3", "yarn")`}},
		// Phi-3's longrope in v5's spelling (the 128k model's fields moved
		// into rope_parameters), another type, and a partial rotary there.
		{"longrope_v5_phi3", "phi3", v5(synth.TinyPhi3(), map[string]any{"rope_theta": 10000.0, "rope_type": "longrope",
			"long_factor": []any{1.0}, "short_factor": []any{1.0}, "original_max_position_embeddings": int64(4096)}),
			[]string{"rope_parameters.rope_type is longrope: Phi-3's long-context rotary embedding (longrope, called su in older configs) has no Fast-LLM counterpart"}},
		{"yarn_v5_phi3", "phi3", v5(synth.TinyPhi3(), map[string]any{"rope_theta": 10000.0, "rope_type": "yarn", "factor": 4.0}),
			[]string{"rope_parameters.rope_type", `value "yarn" has no counterpart (known: "default")`}},
		{"partial_v5_phi3", "phi3", v5(synth.TinyPhi3(), map[string]any{"rope_theta": 10000.0, "rope_type": "default", "partial_rotary_factor": 0.75}),
			[]string{"rope_parameters.partial_rotary_factor is not 1: a rotary embedding over part of each head"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			refused(t, tc.mapping, generate(t, tc.arch, synth.Options{NoSideFiles: true}), engine.PlanOptions{}, tc.want...)
		})
	}
}

// TestRopeExportWithoutRecord: a Fast-LLM checkpoint mapper did not write
// has no record of the spelling; the export then writes transformers v4's,
// and a scaled rotary, whose presence only the record tells, is refused
// rather than written as the default one.
func TestRopeExportWithoutRecord(t *testing.T) {
	t.Parallel()
	m := load(t, "llama")
	for _, r := range []synth.Rope{{V5: true}, {Type: "llama3"}} {
		a := synth.TinyLlama()
		a.Rope = r
		fl, _ := convert(t, m, generate(t, a, synth.Options{NoSideFiles: true}), engine.PlanOptions{})
		md := parseMetadata(t, fl)
		md.Carried = nil
		writeMetadata(t, fl, md)
		if r.Type == "" {
			hf, _ := convert(t, m, fl, engine.PlanOptions{})
			cfg := readJSON(t, filepath.Join(hf, "config.json"))
			if _, v5 := cfg["rope_parameters"]; v5 || cfg["rope_theta"] != 500000.0 {
				t.Errorf("export without a record: rope_parameters %v, rope_theta %v; want v4's rope_theta", cfg["rope_parameters"], cfg["rope_theta"])
			}
			continue
		}
		refused(t, "llama", fl, engine.PlanOptions{}, "decoder.block.mixer.rotary.type", fmt.Sprintf(`is %q; the mapping requires "default"`, r.Type))
	}
}

// rotaryPath is where a mapping writes the rotary embedding: its one
// block's, or apriel_hybrid_ssm's attention block's.
func rotaryPath(mapping string) string {
	if mapping == "apriel_hybrid_ssm" {
		return apriels + ".mixer.rotary"
	}
	return "decoder.block.mixer.rotary"
}

// apriels is apriel_hybrid_ssm's attention block.
const apriels = "decoder.blocks.t"

// ropeFamily are the mappings whose rope rules are llama.map's, from
// mappings/fragments/llama_rope.map, with the rope_theta default of each
// model's transformers config class.
var ropeFamily = map[string]float64{
	"llama": 1e4, "mistral": 1e4, "mixtral": 1e6, "qwen2": 1e4, "mtp_llama": 1e4,
	"diffusion_llama": 1e4, "dream": 1e4, "qwen3": 1e4, "qwen3_moe": 1e4, "apriel_hybrid_ssm": 1e4, "llava": 1e4, "llava_hybrid": 1e4,
}

// ropeBlock is the line that starts Llama's v5 rope rules.
var ropeBlock = regexp.MustCompile(`rope_parameters\.rope_type default "default" <-> \S+ map \{ "default" = "default", llama3 = llama3, yarn = yarn \}`)

// TestRopeFragment: the mappings with Llama's rotary take it from the
// fragment, with their config class's rope_theta default, and no other
// built-in mapping copies it out (a new Llama-like mapping uses the
// fragment).
func TestRopeFragment(t *testing.T) {
	for _, f := range mappings.Builtin() {
		_, family := ropeFamily[f.Name]
		uses := strings.Contains(string(f.Source), "use llama_rope(")
		switch {
		case family && !uses:
			t.Errorf("%s does not use llama_rope", f.Path)
		case ropeBlock.Match(f.Source):
			t.Errorf("%s copies Llama's rope rules out: use llama_rope (mappings/fragments/llama_rope.map)", f.Path)
		}
	}
	for name, theta := range ropeFamily {
		if d := ropeThetaDefaults(t, name); !reflect.DeepEqual(d, []any{theta, theta}) {
			t.Errorf("%s.map: rope_theta defaults %v, want %v (v4 and v5)", name, d, theta)
		}
	}
}

// ropeThetaDefaults are the defaults of a mapping's rope_theta rules, or
// their text where one is not a constant.
func ropeThetaDefaults(t *testing.T, name string) []any {
	t.Helper()
	var out []any
	for _, r := range load(t, name).Config {
		// Under text_config for the multimodal mappings (use llama_rope(left = text_config, ...)).
		p := strings.TrimPrefix(strings.Join(r.Left.Segs, "."), "text_config.")
		if (p == "rope_theta" || p == "rope_parameters.rope_theta") && r.LeftDefault != nil {
			if l, ok := r.LeftDefault.(*ir.Literal); ok {
				out = append(out, l.Value)
			} else {
				out = append(out, ir.Format(r.LeftDefault))
			}
		}
	}
	return out
}

// writeMetadata rewrites a Fast-LLM checkpoint's metadata.yaml from md.
func writeMetadata(t *testing.T, dir string, md *fastllm.Metadata) {
	t.Helper()
	b, err := fastllm.EncodeMetadata(md.Version, md.Config, md.StateIndex, md.Carried)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fastllm.MetadataFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readJSON reads a config.json as the hf side does.
func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := pyjson.Decode(readFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v.(map[string]any)
}

// TestLlamaRotaryBuffers: a Llama saved with its rotary buffers (as
// Llama-2 was published) converts: the buffers are dropped, the plan says
// how many, the record of the input's files leaves them out, and the way
// back gives every other tensor back as it was.
func TestLlamaRotaryBuffers(t *testing.T) {
	t.Parallel()
	a := synth.TinyLlama()
	a.RotaryBuffers = true
	m := load(t, "llama")
	hf0 := generate(t, a, synth.Options{NoSideFiles: true, ShardBytes: 64 << 10})
	fl, p := convert(t, m, hf0, engine.PlanOptions{})
	want := []string{"model.layers.0.self_attn.rotary_emb.inv_freq", "model.layers.1.self_attn.rotary_emb.inv_freq"}
	if !slices.Equal(p.Ignored, want) {
		t.Errorf("ignored %v, want %v", p.Ignored, want)
	}
	if !slices.ContainsFunc(p.Notes, func(n string) bool {
		return strings.HasPrefix(n, "2 tensors dropped, as mappings/llama.map:") &&
			strings.Contains(n, "(ignore model.layers.{l}.self_attn.rotary_emb.inv_freq)")
	}) {
		t.Errorf("no note says the buffers were dropped: %q", p.Notes)
	}
	md := parseMetadata(t, fl)
	if len(md.Carried.Files) == 0 {
		t.Fatal("the input's files are not recorded: the test needs shards")
	}
	for _, n := range want {
		if _, ok := md.Carried.Files[n]; ok {
			t.Errorf("metadata.mapper.files names %s, which does not come back", n)
		}
		if _, ok := md.StateIndex[n]; ok {
			t.Errorf("the Fast-LLM checkpoint holds %s", n)
		}
	}
	hf1, _ := convert(t, m, fl, engine.PlanOptions{})
	rep, err := engine.Diff(hf0, hf1)
	if err != nil {
		t.Fatal(err)
	}
	var only []string
	for _, d := range rep.Tensors {
		switch d.Kind {
		case engine.Identical:
		case engine.OnlyInA:
			only = append(only, d.Name)
		default:
			t.Errorf("%s: %s %s", d.Name, d.Kind, d.Detail)
		}
	}
	if slices.Sort(only); !slices.Equal(only, want) {
		t.Errorf("only in the input: %v, want the buffers %v", only, want)
	}
	// synth writes what LlamaRotaryEmbedding computed: 1 / theta^(2i/d).
	dt, sh, data := openHF(t, hf0).raw(want[0])
	if dt != tensor.F32 || !slices.Equal([]int(sh), []int{a.HeadDim / 2}) {
		t.Fatalf("%s is %v%v, want F32[%d]", want[0], dt, sh, a.HeadDim/2)
	}
	for i := range a.HeadDim / 2 {
		got := float64(math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])))
		if w := math.Pow(500000, -float64(2*i)/float64(a.HeadDim)); math.Abs(got-w) > 1e-6*w {
			t.Errorf("inv_freq[%d] = %v, want %v", i, got, w)
		}
	}
}
