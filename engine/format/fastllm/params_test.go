package fastllm

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// realTensors reads tensors.txt: the parameters of the weights shard with
// their shapes.
func realTensors(t *testing.T, path string) map[string]tensor.Shape {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]tensor.Shape{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		name, ok := strings.CutSuffix(cols[0], "/"+WeightsShard)
		if !ok {
			continue // optimizer state
		}
		var shape tensor.Shape
		for _, d := range strings.Split(strings.Trim(cols[2], "[]"), ",") {
			n, err := strconv.Atoi(strings.TrimSpace(d))
			if err != nil {
				t.Fatalf("%s: %q: %v", path, line, err)
			}
			shape = append(shape, n)
		}
		out[name] = shape
	}
	return out
}

// TestSchemaReal evaluates each target's schema on the config Fast-LLM's
// own code wrote (testdata/real/TARGET/ARCH/{fresh,trained}/metadata.yaml)
// and compares the parameters it declares with the ones Fast-LLM saved
// (tensors.txt): the same names, the same shapes, nothing more or less.
func TestSchemaReal(t *testing.T) {
	lists, err := filepath.Glob(filepath.Join("testdata", "real", "*", "*", "*", "tensors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]bool{}
	for _, list := range lists {
		dir := filepath.Dir(list)
		rel, _ := filepath.Rel(filepath.Join("testdata", "real"), dir)
		version := strings.Split(filepath.ToSlash(rel), "/")[0] // the directory's name: main or pr374
		target := map[string]string{"main": Main, "pr374": PR374}[version]
		arch := filepath.Base(filepath.Dir(dir))
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, MetadataFile))
			if err != nil {
				t.Fatal(err)
			}
			md, err := ParseMetadata(data)
			if err != nil {
				t.Fatal(err)
			}
			if md.Version != target {
				t.Errorf("fast_llm_version %s under %s, whose target is %s", md.Version, version, target)
			}
			s, err := Schema(target)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != version {
				t.Errorf("the schema of %s is %s", target, s.Name)
			}
			decl, err := s.Expand(ConfigView(md.Config), 10000)
			if err != nil {
				t.Fatalf("Expand: %v", err)
			}
			want := realTensors(t, list)
			got := map[string]tensor.Shape{}
			for _, d := range decl {
				got[d.Name] = d.Shape
				if w, ok := want[d.Name]; !ok {
					t.Errorf("the schema declares %s %v (%s:%d), Fast-LLM creates no such parameter", d.Name, d.Shape, d.Pos.File, d.Pos.Line)
				} else if !w.Equal(d.Shape) {
					t.Errorf("%s: the schema declares %v (%s:%d), Fast-LLM creates %v", d.Name, d.Shape, d.Pos.File, d.Pos.Line, w)
				}
			}
			for n, w := range want {
				if _, ok := got[n]; !ok {
					t.Errorf("Fast-LLM creates %s %v, the schema does not declare it", n, w)
				}
			}
			checked[version+"/"+arch] = true
		})
	}
	for _, want := range []string{"main/llama", "main/mistral", "main/mixtral", "main/qwen2", "pr374/gpt_oss",
		"main/mtp_llama", "main/dream", "main/diffusion_llama", "main/apriel_hybrid_ssm", "main/apriel_hybrid_ssm_biased",
		"main/apriel_hybrid_ssm_periodic", "main/apriel_hybrid_ssm_gdn", "main/apriel_hybrid_ssm_auto", "main/gemma4", "main/gemma4_dense", "main/gemma4_kv", "main/llava", "main/apriel2"} {
		if !checked[want] {
			t.Errorf("%s was not checked against Fast-LLM's tensors", want)
		}
	}
}

// TestSchemaFiles: every target of the side has a schema that loads, and
// every schema file is some target's.
func TestSchemaFiles(t *testing.T) {
	ents, err := schemaFiles.ReadDir("schema")
	if err != nil {
		t.Fatal(err)
	}
	var files, named []string
	for _, e := range ents {
		files = append(files, e.Name())
	}
	for _, tg := range (Side{}).Targets() {
		named = append(named, schemaFile[tg.Name])
		if _, err := Schema(tg.Name); err != nil {
			t.Errorf("target %s: %v", tg.Name, err)
		}
	}
	slices.Sort(named)
	if !slices.Equal(files, named) {
		t.Errorf("schema files %v, the targets' %v", files, named)
	}
	if _, err := Schema("9.9.9"); err == nil || !strings.Contains(err.Error(), `no parameter schema for Fast-LLM target "9.9.9"`) {
		t.Errorf("unknown target: %v", err)
	}
}

// TestSchemaHybridMoE: a hybrid_moe MLP whose routed branch does not say it
// is a moe is refused, not sized as a dense MLP; without the branch's own
// norms it has none.
func TestSchemaHybridMoE(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "real", "main", "gemma4", "fresh", MetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Schema(Main)
	if err != nil {
		t.Fatal(err)
	}
	parse := func() (map[string]any, map[string]any) {
		md, err := ParseMetadata(data)
		if err != nil {
			t.Fatal(err)
		}
		blocks := md.Config["decoder"].(map[string]any)["blocks"].(map[string]any)
		return md.Config, blocks["full_attention"].(map[string]any)["mlp"].(map[string]any)
	}
	cfg, mlp := parse()
	delete(mlp["routed"].(map[string]any), "type")
	if _, err := s.Expand(ConfigView(cfg), 10000); err == nil || !strings.Contains(err.Error(), `requires m.routed.type == "moe"`) {
		t.Errorf("a routed branch without its type: %v", err)
	}
	cfg, mlp = parse()
	delete(mlp["dense"].(map[string]any), "post_norm")
	decl, err := s.Expand(ConfigView(cfg), 10000)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range decl {
		names = append(names, d.Name)
	}
	if !slices.Contains(names, "decoder.0.mlp.dense.post_norm.weight") || slices.Contains(names, "decoder.1.mlp.dense.post_norm.weight") {
		t.Errorf("dense post_norm only in the sliding block (layer 0): %v", names)
	}
}

// TestConfigView: decoder.N (and any block sequence's S.N) is block N as
// Fast-LLM resolves it.
func TestConfigView(t *testing.T) {
	sliding := map[string]any{"mixer": map[string]any{"window_size": int64(128)}}
	full := map[string]any{"mixer": map[string]any{}}
	pattern := configView{"decoder": map[string]any{"type": "pattern", "pattern": []any{"sliding", "full"},
		"blocks": map[string]any{"sliding": sliding, "full": full}, "num_blocks": int64(4)}}
	for _, c := range []struct {
		path string
		want any
		ok   bool
	}{
		{"decoder.0.mixer.window_size", int64(128), true},
		{"decoder.2.mixer.window_size", int64(128), true},
		{"decoder.3.mixer.window_size", nil, false},
		{"decoder.num_blocks", int64(4), true},
		{"decoder.blocks.full.mixer", full["mixer"], true},
	} {
		v, ok := pattern.Lookup(strings.Split(c.path, "."))
		if ok != c.ok || !ir.ValuesEqual(v, c.want) {
			t.Errorf("pattern %s = %v, %v; want %v, %v", c.path, v, ok, c.want, c.ok)
		}
	}
	fixed := configView{"decoder": map[string]any{"block": sliding, "num_blocks": int64(2)}}
	if v, ok := fixed.Lookup([]string{"decoder", "1", "mixer", "window_size"}); !ok || v != int64(128) {
		t.Errorf("fixed decoder.1.mixer.window_size = %v, %v", v, ok)
	}
	// A fixed decoder without a block has every default; a pattern naming a
	// block it lacks has none.
	if v, ok := (configView{"decoder": map[string]any{}}).Lookup([]string{"decoder", "0"}); !ok || len(v.(map[string]any)) != 0 {
		t.Errorf("default block = %v, %v", v, ok)
	}
	// Any block sequence resolves so: the vision encoder's of a multimodal
	// model too.
	vision := configView{"vision_encoder": map[string]any{"encoder": map[string]any{"block": sliding, "num_blocks": int64(2)}}}
	if v, ok := vision.Lookup([]string{"vision_encoder", "encoder", "1", "mixer", "window_size"}); !ok || v != int64(128) {
		t.Errorf("vision_encoder.encoder.1.mixer.window_size = %v, %v", v, ok)
	}
	if v, ok := (configView{}).Lookup([]string{"vision_encoder", "encoder", "0"}); !ok || len(v.(map[string]any)) != 0 {
		t.Errorf("absent sequence's block = %v, %v", v, ok)
	}
	if _, ok := vision.Lookup([]string{"vision_encoder", "hidden_size"}); ok {
		t.Errorf("an absent key resolved")
	}
	broken := configView{"decoder": map[string]any{"type": "pattern", "pattern": []any{"x"}, "blocks": map[string]any{}}}
	if _, ok := broken.Lookup([]string{"decoder", "0", "mixer"}); ok {
		t.Errorf("a block the pattern names but blocks lacks resolved")
	}
}

// TestTargetOf: the target of the mapping's fast_llm side, on either side,
// else the default.
func TestTargetOf(t *testing.T) {
	for _, c := range []struct {
		m    ir.Mapping
		want string
	}{
		{ir.Mapping{Left: "hf", Right: Name, RightTarget: PR374}, PR374},
		{ir.Mapping{Left: "hf", Right: Name}, Main},
		{ir.Mapping{Left: Name, LeftTarget: PR374, Right: "hf"}, PR374},
	} {
		if got := TargetOf(&c.m); got != c.want {
			t.Errorf("%+v: %s, want %s", c.m, got, c.want)
		}
	}
}

// TestSchemaSSM: main's schema sizes a Mamba block from its keys, with
// Fast-LLM's defaults for the absent ones, and refuses the sizes Fast-LLM's
// Mamba and GDN cannot build (heads that do not split into groups) and the
// mixers it does not describe.
func TestSchemaSSM(t *testing.T) {
	s, err := Schema(Main)
	if err != nil {
		t.Fatal(err)
	}
	config := func(mixer map[string]any) configView {
		return configView{"hidden_size": int64(64), "tied_embedding_weight": true, "embeddings": map[string]any{"vocab_size": int64(32)},
			"decoder": map[string]any{"num_blocks": int64(1), "block": map[string]any{"mixer": mixer}}}
	}
	decl, err := s.Expand(config(map[string]any{"type": "mamba"}), 1000)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]tensor.Shape{}
	for _, d := range decl {
		got[d.Name] = d.Shape
	}
	// MambaConfig's defaults: state_size 16, d_inner 2048, d_xb 1024,
	// dt_rank 64, add_linear_biases and repeat_kv_before_conv true, kernel 4.
	for name, want := range map[string]tensor.Shape{
		"decoder.0.mixer.in_proj.weight": {6144, 64}, "decoder.0.mixer.in_proj.bias": {6144},
		"decoder.0.mixer.convolution.weight": {2048, 1, 4}, "decoder.0.mixer.convolution.bias": {2048},
		"decoder.0.mixer.dt_in_proj.weight": {64, 64}, "decoder.0.mixer.dt_proj.weight": {2048, 64},
		"decoder.0.mixer.dt_proj.bias": {2048}, "decoder.0.mixer.A_log": {2048, 16}, "decoder.0.mixer.D": {2048},
		"decoder.0.mixer.out_proj.weight": {64, 2048}, "decoder.0.mixer.out_proj.bias": {64},
	} {
		if !got[name].Equal(want) {
			t.Errorf("%s: %v, want %v", name, got[name], want)
		}
	}
	// KimiDeltaAttentionConfig's defaults: 16 heads of 64 (P = 1024), kernel 4.
	decl, err = s.Expand(config(map[string]any{"type": "kda"}), 1000)
	if err != nil {
		t.Fatal(err)
	}
	got = map[string]tensor.Shape{}
	for _, d := range decl {
		got[d.Name] = d.Shape
	}
	for name, want := range map[string]tensor.Shape{
		"decoder.0.mixer.q_proj.weight": {1024, 64}, "decoder.0.mixer.v_conv.weight": {1024, 1, 4},
		"decoder.0.mixer.f_a_proj.weight": {64, 64}, "decoder.0.mixer.f_b_proj.weight": {1024, 64},
		"decoder.0.mixer.beta_proj.weight": {16, 64}, "decoder.0.mixer.o_proj.weight": {64, 1024},
		"decoder.0.mixer.dt_bias": {1024}, "decoder.0.mixer.A_log": {16}, "decoder.0.mixer.norm.weight": {64},
	} {
		if !got[name].Equal(want) {
			t.Errorf("%s: %v, want %v", name, got[name], want)
		}
	}
	if _, ok := got["decoder.0.mixer.q_proj.bias"]; ok {
		t.Error("kda: q_proj has a bias; Fast-LLM's KDA layers default to none")
	}
	for _, c := range []struct {
		mixer map[string]any
		want  string
	}{
		{map[string]any{"type": "mamba", "state_size": int64(16), "d_inner": int64(100)}, "requires inner % state == 0"},
		{map[string]any{"type": "mamba", "state_size": int64(16), "d_inner": int64(64), "d_xb": int64(48)}, "requires inner % state == 0"},
		{map[string]any{"type": "gdn", "value_heads": int64(6), "key_heads": int64(4)}, "requires value_heads % key_heads == 0"},
		{map[string]any{"type": "kda", "normalization": map[string]any{"type": "rms_norm"}}, `requires norm_kind == "gated_rms_norm"`},
		{map[string]any{"type": "stochastic"}, `requires mixer_type == "attention" or mixer_type == "mamba" or mixer_type == "gdn" or mixer_type == "kda"`},
	} {
		if _, err := s.Expand(config(c.mixer), 1000); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.mixer, err, c.want)
		}
	}
}
