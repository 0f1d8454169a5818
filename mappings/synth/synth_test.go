package synth

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	nlp "github.com/nlpodyssey/safetensors"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/engine/format/hf"
	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/pyjson"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

func generate(t *testing.T, a Arch, seed int64, opts Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := Generate(dir, a, seed, opts); err != nil {
		t.Fatal(err)
	}
	return dir
}

func open(t *testing.T, dir string) *format.Source {
	t.Helper()
	src, err := hf.Side{}.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestDeterministic(t *testing.T) {
	a := TinyGPTOSS()
	opts := Options{ShardBytes: 100_000, Workers: 1}
	first := readAll(t, generate(t, a, 7, opts))
	opts.Workers = 5
	second := readAll(t, generate(t, a, 7, opts))
	if len(first) < 4 {
		t.Fatalf("only %d files: %v", len(first), slices.Collect(func(yield func(string) bool) {
			for k := range first {
				yield(k)
			}
		}))
	}
	if !reflect.DeepEqual(first, second) {
		for name := range first {
			if !bytes.Equal(first[name], second[name]) {
				t.Errorf("%s differs between two runs", name)
			}
		}
		t.Fatal("not deterministic")
	}
	other := readAll(t, generate(t, a, 8, opts))
	for name, data := range first {
		if strings.HasSuffix(name, ".safetensors") && bytes.Equal(data, other[name]) {
			t.Errorf("%s: seed 8 gives seed 7's data", name)
		}
	}
	if !bytes.Equal(first["config.json"], other["config.json"]) {
		t.Error("the config depends on the seed")
	}
}

// The published gpt-oss-20b config.json, byte for byte.
func TestGPTOSS20BConfig(t *testing.T) {
	want, err := os.ReadFile("testdata/gpt-oss-20b-config.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Config(GPTOSS20B(24, 201088))
	if err != nil {
		t.Fatal(err)
	}
	got, err := pyjson.Encode(cfg, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(append(got, '\n')) != string(want) {
		t.Fatalf("config differs from the published one:\n%s", got)
	}
}

// gptOSSShapes is formats.md's table for GPT-OSS.
func gptOSSShapes(a Arch) map[string]tensor.Shape {
	H, I, E, V, q, kv := a.Hidden, a.Intermediate, a.Experts, a.Vocab, a.Heads*a.HeadDim, a.KVHeads*a.HeadDim
	m := map[string]tensor.Shape{
		"model.embed_tokens.weight": {V, H},
		"model.norm.weight":         {H},
		"lm_head.weight":            {V, H},
	}
	for l := 0; l < a.Layers; l++ {
		p := "model.layers." + string(rune('0'+l)) + "."
		for k, s := range map[string]tensor.Shape{
			"input_layernorm.weight": {H}, "post_attention_layernorm.weight": {H},
			"self_attn.q_proj.weight": {q, H}, "self_attn.q_proj.bias": {q},
			"self_attn.k_proj.weight": {kv, H}, "self_attn.k_proj.bias": {kv},
			"self_attn.v_proj.weight": {kv, H}, "self_attn.v_proj.bias": {kv},
			"self_attn.o_proj.weight": {H, q}, "self_attn.o_proj.bias": {H},
			"self_attn.sinks":   {a.Heads},
			"mlp.router.weight": {E, H}, "mlp.router.bias": {E},
			"mlp.experts.gate_up_proj_bias": {E, 2 * I},
			"mlp.experts.down_proj_bias":    {E, H},
		} {
			m[p+k] = s
		}
		if a.MXFP4 {
			m[p+"mlp.experts.gate_up_proj_blocks"] = tensor.Shape{E, 2 * I, H / 32, 16}
			m[p+"mlp.experts.gate_up_proj_scales"] = tensor.Shape{E, 2 * I, H / 32}
			m[p+"mlp.experts.down_proj_blocks"] = tensor.Shape{E, H, I / 32, 16}
			m[p+"mlp.experts.down_proj_scales"] = tensor.Shape{E, H, I / 32}
		} else {
			m[p+"mlp.experts.gate_up_proj"] = tensor.Shape{E, H, 2 * I}
			m[p+"mlp.experts.down_proj"] = tensor.Shape{E, I, H}
		}
	}
	return m
}

func TestGPTOSSOpensWithFormatsShapes(t *testing.T) {
	for _, a := range []Arch{TinyGPTOSS(), TinyGPTOSSDense()} {
		a.Hidden, a.Intermediate, a.Experts, a.Layers = 96, 64, 3, 3 // H != I, so a swapped axis shows
		dir := generate(t, a, 1, Options{})
		src := open(t, dir)
		want := gptOSSShapes(a)
		if len(src.Tensors) != len(want) {
			t.Errorf("mxfp4=%v: %d tensors, want %d", a.MXFP4, len(src.Tensors), len(want))
		}
		for name, shape := range want {
			got, ok := src.Lookup(name)
			if !ok {
				t.Errorf("mxfp4=%v: %s missing", a.MXFP4, name)
				continue
			}
			dt := tensor.BF16
			if strings.HasSuffix(name, "_blocks") || strings.HasSuffix(name, "_scales") {
				dt = tensor.U8
			}
			if !slices.Equal(got.Shape, shape) || got.DType != dt {
				t.Errorf("mxfp4=%v: %s is %v%v, want %v%v", a.MXFP4, name, got.DType, got.Shape, dt, shape)
			}
		}
		cfg, _ := Config(a)
		if !reflect.DeepEqual(src.Config, cfg) {
			t.Errorf("config read back differs:\n%#v\n%#v", src.Config, cfg)
		}
		_, hasQ := src.Config["quantization_config"]
		if hasQ != a.MXFP4 {
			t.Errorf("mxfp4=%v: quantization_config present: %v", a.MXFP4, hasQ)
		}
		if lt := src.Config["layer_types"].([]any); !reflect.DeepEqual(lt, []any{"sliding_attention", "full_attention", "sliding_attention"}) {
			t.Errorf("layer_types %v", lt)
		}
		if !slices.Equal(src.SideFiles, []string{"generation_config.json", "tokenizer.json"}) {
			t.Errorf("side files %v", src.SideFiles)
		}
		if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
			t.Error(err)
		}
	}
}

func TestFamilies(t *testing.T) {
	tied := TinyQwen2()
	tied.TieEmbeddings = true
	biased := TinyLlama()
	biased.AttentionBias, biased.MLPBias = true, true
	nullWindow := TinyMistral()
	nullWindow.SlidingWindow = 0
	over := TinyLlama()
	over.Overrides = map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0}, "extra": nil}
	over.Remove = []string{"pretraining_tp"}
	cases := []struct {
		name       string
		a          Arch
		tensors    int
		has, lacks []string
		config     map[string]any
	}{
		{"llama", TinyLlama(), 1 + 2*9 + 2, []string{"lm_head.weight", "model.layers.1.mlp.down_proj.weight"},
			[]string{"model.layers.0.self_attn.q_proj.bias"}, map[string]any{"model_type": "llama", "rope_scaling": nil, "rope_theta": 500000.0}},
		{"llama biases", biased, 1 + 2*(9+7) + 2, []string{"model.layers.0.self_attn.o_proj.bias", "model.layers.0.mlp.down_proj.bias"},
			nil, map[string]any{"attention_bias": true, "mlp_bias": true}},
		{"mistral", TinyMistral(), 1 + 2*9 + 2, nil, []string{"model.layers.0.self_attn.q_proj.bias"},
			map[string]any{"sliding_window": int64(4096), "architectures": []any{"MistralForCausalLM"}}},
		{"mistral null window", nullWindow, 1 + 2*9 + 2, nil, nil, map[string]any{"sliding_window": nil}},
		{"mixtral", TinyMixtral(), 1 + 2*(4+1+4*3+2) + 2,
			[]string{"model.layers.1.block_sparse_moe.gate.weight", "model.layers.1.block_sparse_moe.experts.3.w2.weight"},
			[]string{"model.layers.0.mlp.gate_proj.weight"}, map[string]any{"num_local_experts": int64(4), "model_type": "mixtral"}},
		{"qwen2 tied", tied, 1 + 2*12 + 1, []string{"model.layers.0.self_attn.v_proj.bias"},
			[]string{"lm_head.weight", "model.layers.0.self_attn.o_proj.bias"},
			map[string]any{"tie_word_embeddings": true, "use_sliding_window": false, "rms_norm_eps": 1e-06}},
		{"overrides", over, 1 + 2*9 + 2, nil, nil, map[string]any{"extra": nil, "rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0}}},
	}
	for _, c := range cases {
		src := open(t, generate(t, c.a, 3, Options{}))
		if len(src.Tensors) != c.tensors {
			t.Errorf("%s: %d tensors, want %d", c.name, len(src.Tensors), c.tensors)
		}
		for _, n := range c.has {
			if _, ok := src.Lookup(n); !ok {
				t.Errorf("%s: no %s", c.name, n)
			}
		}
		for _, n := range c.lacks {
			if _, ok := src.Lookup(n); ok {
				t.Errorf("%s: unexpected %s", c.name, n)
			}
		}
		for k, v := range c.config {
			if got, ok := src.Config[k]; !ok || !reflect.DeepEqual(got, v) {
				t.Errorf("%s: config %s = %#v, want %#v", c.name, k, got, v)
			}
		}
		if c.name == "overrides" {
			if _, ok := src.Config["pretraining_tp"]; ok {
				t.Error("Remove did not remove pretraining_tp")
			}
		}
		if q, _ := src.Lookup("model.layers.0.self_attn.q_proj.weight"); !slices.Equal(q.Shape, tensor.Shape{64, 64}) {
			t.Errorf("%s: q_proj %v", c.name, q.Shape)
		}
		if d, ok := src.Lookup("model.layers.0.mlp.down_proj.weight"); ok && !slices.Equal(d.Shape, tensor.Shape{64, 128}) {
			t.Errorf("%s: down_proj %v", c.name, d.Shape)
		}
	}
}

func TestShardedCheckpoint(t *testing.T) {
	a := TinyLlama()
	dir := generate(t, a, 1, Options{ShardBytes: 40_000})
	ix, err := safetensors.ReadIndex(filepath.Join(dir, safetensors.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, f := range ix.WeightMap {
		files[f] = true
	}
	if len(files) < 3 || !files["model-00001-of-0000"+string(rune('0'+len(files)))+".safetensors"] {
		t.Errorf("files %v", files)
	}
	src := open(t, dir)
	var total int64
	for _, tn := range src.Tensors {
		total += tn.Info.Size()
	}
	if total != ix.TotalSize {
		t.Errorf("total_size %d, tensors %d", ix.TotalSize, total)
	}
	// Every file reads with the reference reader too.
	for f := range files {
		raw, _ := os.ReadFile(filepath.Join(dir, f))
		if _, err := nlp.Deserialize(raw); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	zero := generate(t, a, 1, Options{ShardBytes: 40_000, Naming: "hf-zero-based"})
	if _, err := os.Stat(filepath.Join(zero, "model-00000-of-0000"+string(rune('0'+len(files)-1))+".safetensors")); err != nil {
		t.Error(err)
	}
	open(t, zero)
}

// Every file carries the __metadata__ transformers writes, {"format":
// "pt"}; NoFileMetadata leaves it out, as GPT-OSS's published shards do.
func TestFileMetadata(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want map[string]string
	}{
		{Options{ShardBytes: 40_000}, map[string]string{"format": "pt"}},
		{Options{}, map[string]string{"format": "pt"}},
		{Options{ShardBytes: 40_000, NoFileMetadata: true}, nil},
	} {
		src := open(t, generate(t, TinyLlama(), 1, c.opts))
		for _, f := range src.Checkpoint.Files {
			if !reflect.DeepEqual(f.Metadata, c.want) {
				t.Errorf("%+v: %s: __metadata__ %v, want %v", c.opts, filepath.Base(f.Path), f.Metadata, c.want)
			}
		}
	}
}

func bf16s(t *testing.T, src *format.Source, name string) []float32 {
	t.Helper()
	tn, ok := src.Lookup(name)
	if !ok {
		t.Fatalf("no %s", name)
	}
	data, err := tn.File.Data(name)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(data)/2)
	for i := range out {
		out[i] = kernels.BF16ToF32(binary.LittleEndian.Uint16(data[2*i:]))
	}
	return out
}

func TestValues(t *testing.T) {
	a := TinyLlama()
	a.Vocab = 4096
	src := open(t, generate(t, a, 5, Options{}))
	stats := func(v []float32) (mean, std float64) {
		for _, x := range v {
			mean += float64(x)
		}
		mean /= float64(len(v))
		for _, x := range v {
			std += (float64(x) - mean) * (float64(x) - mean)
		}
		return mean, math.Sqrt(std / float64(len(v)))
	}
	if m, s := stats(bf16s(t, src, "model.embed_tokens.weight")); math.Abs(m) > 0.001 || math.Abs(s-0.02) > 0.001 {
		t.Errorf("embeddings: mean %v std %v", m, s)
	}
	if m, s := stats(bf16s(t, src, "model.norm.weight")); math.Abs(m-1) > 0.01 || s > 0.03 {
		t.Errorf("norm: mean %v std %v", m, s)
	}
	// Distinct tensors get distinct data.
	if slices.Equal(bf16s(t, src, "model.layers.0.mlp.up_proj.weight"), bf16s(t, src, "model.layers.0.mlp.gate_proj.weight")) {
		t.Error("gate and up have the same data")
	}
	// A tensor larger than one segment has no repeated segment.
	emb := bf16s(t, src, "model.embed_tokens.weight")
	half := SegmentBytes / 2
	if len(emb) > half && slices.Equal(emb[:half/2], emb[half:half+half/2]) {
		t.Error("segments repeat")
	}
}

func TestMXFP4(t *testing.T) {
	for _, exact := range []bool{true, false} {
		a := TinyGPTOSS()
		src := open(t, generate(t, a, 11, Options{ByteExactMXFP4: exact}))
		var groups, sameBytes int
		for _, proj := range []string{"gate_up_proj", "down_proj"} {
			p := "model.layers.1.mlp.experts." + proj
			bt, _ := src.Lookup(p + "_blocks")
			st, _ := src.Lookup(p + "_scales")
			blocks, _ := bt.File.Data(p + "_blocks")
			scales, _ := st.File.Data(p + "_scales")
			for _, s := range scales {
				if s < 118 || s > 124 {
					t.Fatalf("scale %d outside 118..124", s)
				}
			}
			vals := make([]byte, 2*32*len(scales))
			if err := kernels.DecodeMXFP4ToBF16(vals, blocks, scales); err != nil {
				t.Fatal(err)
			}
			b2, s2 := make([]byte, len(blocks)), make([]byte, len(scales))
			if err := kernels.EncodeMXFP4FromBF16(b2, s2, vals); err != nil {
				t.Fatal(err)
			}
			vals2 := make([]byte, len(vals))
			if err := kernels.DecodeMXFP4ToBF16(vals2, b2, s2); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(vals, vals2) {
				t.Errorf("exact=%v %s: decode-encode-decode changes values", exact, proj)
			}
			for g := range scales {
				groups++
				if scales[g] == s2[g] && bytes.Equal(blocks[16*g:16*g+16], b2[16*g:16*g+16]) {
					sameBytes++
				}
			}
		}
		if exact && sameBytes != groups {
			t.Errorf("byte-exact: %d of %d groups re-encode to other bytes", groups-sameBytes, groups)
		}
		if !exact && (sameBytes == groups || sameBytes < groups*3/4) {
			t.Errorf("%d of %d groups re-encode identically; expected most, not all", sameBytes, groups)
		}
	}
}

func TestRejects(t *testing.T) {
	bad := []func(*Arch){
		func(a *Arch) { a.Hidden = 0 },
		func(a *Arch) { a.Hidden = 48 }, // MXFP4 needs multiples of 32
		func(a *Arch) { a.Heads = 3 },   // not a multiple of 2 kv heads
		func(a *Arch) { a.ExpertsPerTok = 9 },
		func(a *Arch) { a.Family = "bert" },
		func(a *Arch) { a.AttentionBias = true },
	}
	for i, f := range bad {
		a := TinyGPTOSS()
		f(&a)
		if err := Generate(filepath.Join(t.TempDir(), "x"), a, 1, Options{}); err == nil {
			t.Errorf("case %d: accepted", i)
		}
	}
	q := TinyQwen2()
	q.HeadDim = 32
	if q.Validate() == nil {
		t.Error("qwen2 with head_dim != hidden/heads accepted")
	}
	m := TinyLlama()
	m.MXFP4 = true
	if m.Validate() == nil {
		t.Error("MXFP4 llama accepted")
	}
	r := TinyMistral()
	r.RotaryBuffers = true
	if r.Validate() == nil {
		t.Error("mistral with rotary buffers accepted (transformers never saved them)")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if err := Generate(dir, TinyLlama(), 1, Options{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty dir: %v", err)
	}
	if _, err := ByName("nope"); err == nil {
		t.Error("ByName(nope)")
	}
	for _, n := range Names() {
		a, err := ByName(n)
		if err != nil || a.Validate() != nil {
			t.Errorf("%s: %v %v", n, err, a.Validate())
		}
	}
}

// BenchmarkGPTOSS20BWidths writes gpt-oss-20b's widths with 2 layers and a
// small vocabulary (about 0.9 GB).
func BenchmarkGPTOSS20BWidths(b *testing.B) {
	a := GPTOSS20B(2, 1024)
	var size int64
	ts, _ := Tensors(a)
	for _, t := range ts {
		n, _ := t.Size()
		size += n
	}
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "ckpt")
		if err := Generate(dir, a, int64(i), Options{ByteExactMXFP4: true}); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
	}
}

// TestRealWidthsArePublished: with the published sizes, the configs of the
// families that copy a published config are that config, value for value
// (testdata/hub holds them).
func TestRealWidthsArePublished(t *testing.T) {
	for name, hub := range map[string]string{
		"qwen3":     "Qwen--Qwen3-8B",
		"qwen3_moe": "Qwen--Qwen3-30B-A3B",
		"phi3":      "microsoft--Phi-3-mini-4k-instruct",
		"gemma4":    "google--gemma-4-26B-A4B",
	} {
		a, ok := RealWidths(name)
		if !ok {
			t.Fatalf("no real widths for %s", name)
		}
		got, err := Config(a)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "hub", hub, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := pyjson.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		want := v.(map[string]any)
		if name == "gemma4" {
			// Published as Gemma4ForConditionalGeneration: the text model's
			// config is its text_config, saved alone by Gemma4ForCausalLM
			// under that architecture and the file's transformers version.
			text := want["text_config"].(map[string]any)
			text["architectures"] = []any{"Gemma4ForCausalLM"}
			text["transformers_version"] = want["transformers_version"]
			want = text
		}
		if !reflect.DeepEqual(got, want) {
			for k, v := range want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s: %s = %#v, %s has %#v", name, k, got[k], hub, v)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("%s: %s is not in %s", name, k, hub)
				}
			}
		}
	}
	if _, ok := RealWidths("mistral"); ok {
		t.Error("mistral has no real widths")
	}
}

// TestAprielHybridSSM: the layers follow the layout, with the names and
// shapes of modeling_apriel_hybrid_ssm.py (MistralDecoderLayer for "t";
// for "m2", Mamba2's conv1d [C, 1, d_conv 4], in_proj [2 d_xb + 2 d_inner,
// H], dt_in_proj [dt_rank, H], dt_proj [d_inner, dt_rank], A_log [d_inner,
// d_state], D [d_inner], out_proj [H, d_inner], biases by ssm_cfg), and the
// config states the Mamba sizes as ssm_cfg.
func TestAprielHybridSSM(t *testing.T) {
	biased := TinyAprielHybridSSM()
	biased.Layers, biased.Layout, biased.Hidden = 3, []string{"m2", "t", "t"}, 96
	biased.Heads, biased.HeadDim, biased.KVHeads, biased.Intermediate, biased.Vocab = 4, 24, 2, 160, 128
	biased.TieEmbeddings = true
	biased.Mamba = Mamba{State: 16, Inner: 192, Expand: 2, Bias: true, ConvBias: true, DTProjBias: true, ConvOnXB: true}
	gdn := TinyAprielHybridSSM()
	gdn.Layers, gdn.Layout, gdn.Hidden, gdn.Intermediate, gdn.Vocab = 3, []string{"t", "m2", "gdn"}, 64, 128, 128
	gdn.Heads, gdn.HeadDim, gdn.KVHeads = 4, 16, 2
	gdn.Mamba = Mamba{State: 8, Inner: 128, XB: 64, DTRank: 4, ConvBias: true, DTProjBias: true}
	gdn.GDN = GDN{ValueHeads: 4, KeyHeads: 2, KeyHeadDim: 8, ValueHeadDim: 16, Kernel: 4}
	for _, c := range []struct {
		name    string
		a       Arch
		tensors int
		shapes  map[string]tensor.Shape
		lacks   []string
		ssm     map[string]any
	}{
		{"tiny", TinyAprielHybridSSM(), 1 + 9 + (7 + 5) + 2,
			map[string]tensor.Shape{
				"model.layers.0.self_attn.k_proj.weight": {128, 256}, "model.layers.1.mixer.conv1d.weight": {512, 1, 4},
				"model.layers.1.mixer.in_proj.weight": {1536, 256}, "model.layers.1.mixer.dt_in_proj.weight": {16, 256},
				"model.layers.1.mixer.dt_proj.weight": {512, 16}, "model.layers.1.mixer.A_log": {512, 8},
				"model.layers.1.mixer.D": {512}, "model.layers.1.mixer.out_proj.weight": {256, 512},
				"model.layers.1.mlp.down_proj.weight": {256, 1024}, "model.layers.1.post_attention_layernorm.weight": {256},
			},
			[]string{"model.layers.1.self_attn.q_proj.weight", "model.layers.0.mixer.D", "model.layers.1.mixer.conv1d.bias",
				"model.layers.1.mixer.dt_proj.bias", "model.layers.1.mixer.in_proj.bias"},
			map[string]any{"bias": false, "conv_bias": false, "d_inner": int64(512), "d_state": int64(8), "d_xb": int64(256),
				"dt_proj_bias": false, "dt_rank": int64(16), "repeat_kv_before_conv": true}},
		// d_xb left out (the hidden size), dt_rank "auto" (ceil(96 / 16)),
		// every bias, the convolution over d_xb.
		{"biased", biased, 1 + (12 + 5) + 2*9 + 1,
			map[string]tensor.Shape{
				"model.layers.0.mixer.conv1d.weight": {96, 1, 4}, "model.layers.0.mixer.conv1d.bias": {96},
				"model.layers.0.mixer.in_proj.weight": {576, 96}, "model.layers.0.mixer.in_proj.bias": {576},
				"model.layers.0.mixer.dt_in_proj.bias": {6}, "model.layers.0.mixer.dt_proj.weight": {192, 6},
				"model.layers.0.mixer.dt_proj.bias": {192}, "model.layers.0.mixer.out_proj.bias": {96},
				"model.layers.1.self_attn.q_proj.weight": {96, 96},
			},
			[]string{"lm_head.weight", "model.layers.1.mixer.A_log"},
			map[string]any{"bias": true, "conv_bias": true, "d_inner": int64(192), "d_state": int64(16), "dt_proj_bias": true,
				"dt_rank": "auto", "expand": int64(2), "repeat_kv_before_conv": false}},
		// A gated DeltaNet layer (Apriel2GatedDeltaNet's names and shapes):
		// keys 2 heads of 8, values 4 heads of 16.
		{"gdn", gdn, 1 + 9 + (9 + 5) + (7 + 5) + 2,
			map[string]tensor.Shape{
				"model.layers.2.mixer.in_proj_qkvz.weight": {160, 64}, "model.layers.2.mixer.in_proj_ba.weight": {8, 64},
				"model.layers.2.mixer.out_proj.weight": {64, 64}, "model.layers.2.mixer.convolution.weight": {96, 1, 4},
				"model.layers.2.mixer.dt_bias": {4}, "model.layers.2.mixer.A_log": {4}, "model.layers.2.mixer.norm.weight": {16},
				"model.layers.2.mlp.up_proj.weight": {128, 64},
			},
			[]string{"model.layers.2.self_attn.q_proj.weight", "model.layers.2.mixer.D"},
			map[string]any{"bias": false, "conv_bias": true, "d_inner": int64(128), "d_state": int64(8), "d_xb": int64(64),
				"dt_proj_bias": true, "dt_rank": int64(4), "repeat_kv_before_conv": true}},
	} {
		if err := c.a.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		src := open(t, generate(t, c.a, 1, Options{}))
		if len(src.Tensors) != c.tensors {
			t.Errorf("%s: %d tensors, want %d", c.name, len(src.Tensors), c.tensors)
		}
		for n, want := range c.shapes {
			if e, ok := src.Lookup(n); !ok || !e.Shape.Equal(want) {
				t.Errorf("%s: %s %v (present %v), want %v", c.name, n, e.Shape, ok, want)
			}
		}
		for _, n := range c.lacks {
			if _, ok := src.Lookup(n); ok {
				t.Errorf("%s: unexpected %s", c.name, n)
			}
		}
		if !reflect.DeepEqual(src.Config["ssm_cfg"], c.ssm) {
			t.Errorf("%s: ssm_cfg %#v, want %#v", c.name, src.Config["ssm_cfg"], c.ssm)
		}
		if g := c.a.GDN; g != (GDN{}) {
			want := map[string]any{"gdn_num_value_heads": int64(g.ValueHeads), "gdn_num_key_heads": int64(g.KeyHeads),
				"gdn_key_head_dim": int64(g.KeyHeadDim), "gdn_value_head_dim": int64(g.ValueHeadDim), "gdn_linear_conv_kernel_size": int64(g.Kernel)}
			if got := src.Config["linear_attn_config"]; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: linear_attn_config %#v, want %#v", c.name, got, want)
			}
		} else if _, ok := src.Config["linear_attn_config"]; ok {
			t.Errorf("%s: a linear_attn_config without GDN sizes", c.name)
		}
		if got, want := src.Config["hybrid_block_layout"], layout(c.a.Layout); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: hybrid_block_layout %v, want %v", c.name, got, want)
		}
	}
	for name, f := range map[string]func(*Arch){
		"short layout":     func(a *Arch) { a.Layout = []string{"t"} },
		"unknown mixer":    func(a *Arch) { a.Layout = []string{"t", "m2d"} },
		"no d_state":       func(a *Arch) { a.Mamba.State = 0 },
		"groups":           func(a *Arch) { a.Mamba.XB = 192 }, // 64 heads in 24 groups
		"inner not states": func(a *Arch) { a.Mamba.Inner = 500 },
		"gdn unsized":      func(a *Arch) { a.Layout = []string{"t", "gdn"} },
		"gdn groups": func(a *Arch) {
			a.Layout, a.GDN = []string{"t", "gdn"}, GDN{ValueHeads: 3, KeyHeads: 2, KeyHeadDim: 8, ValueHeadDim: 8, Kernel: 4}
		},
	} {
		a := TinyAprielHybridSSM()
		f(&a)
		if a.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	l := TinyLlama()
	l.Layout = []string{"t", "t"}
	if l.Validate() == nil {
		t.Error("a llama with a hybrid layout accepted")
	}
}

// TestGemma4: a full-attention layer has heads of global_head_dim and,
// when keys are values, the global key/value heads and no v_proj; a dense
// model has no router, experts or extra norms and null MoE keys; the
// layer types are transformers' (every sixth and the last full).
func TestGemma4(t *testing.T) {
	kv := TinyGemma4()
	kv.Layers, kv.HeadDim, kv.GlobalHeadDim, kv.SharedKV, kv.GlobalKVHeads = 7, 16, 64, true, 2
	dense := TinyGemma4()
	dense.Experts, dense.ExpertsPerTok, dense.ExpertIntermediate, dense.TieEmbeddings = 0, 0, 0, false
	shape := func(src *format.Source, name string) tensor.Shape {
		ti, ok := src.Lookup(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return ti.Shape
	}
	src := open(t, generate(t, kv, 3, Options{}))
	if len(src.Tensors) != 1+7*22-2+1 { // layers 5 and 6 (full) have no v_proj
		t.Errorf("%d tensors", len(src.Tensors))
	}
	want := []any{"sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention",
		"full_attention", "full_attention"}
	if !reflect.DeepEqual(src.Config["layer_types"], want) {
		t.Errorf("layer_types %v", src.Config["layer_types"])
	}
	for _, c := range []struct {
		name string
		want tensor.Shape
	}{
		{"model.layers.0.self_attn.q_proj.weight", tensor.Shape{8 * 16, 256}},
		{"model.layers.0.self_attn.v_proj.weight", tensor.Shape{4 * 16, 256}},
		{"model.layers.0.self_attn.k_norm.weight", tensor.Shape{16}},
		{"model.layers.5.self_attn.q_proj.weight", tensor.Shape{8 * 64, 256}},
		{"model.layers.5.self_attn.k_proj.weight", tensor.Shape{2 * 64, 256}},
		{"model.layers.6.self_attn.o_proj.weight", tensor.Shape{256, 8 * 64}},
		{"model.layers.6.experts.gate_up_proj", tensor.Shape{4, 2 * 256, 256}},
		{"model.layers.6.experts.down_proj", tensor.Shape{4, 256, 256}},
		{"model.layers.6.layer_scalar", tensor.Shape{1}},
	} {
		if got := shape(src, c.name); !got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if _, ok := src.Lookup("model.layers.5.self_attn.v_proj.weight"); ok {
		t.Error("a full layer whose keys are the values has a v_proj")
	}
	src = open(t, generate(t, dense, 3, Options{}))
	if len(src.Tensors) != 1+2*14+1+1 { // embeddings, layers, norm, lm_head
		t.Errorf("dense: %d tensors", len(src.Tensors))
	}
	for _, n := range []string{"model.layers.0.router.proj.weight", "model.layers.1.experts.down_proj", "model.layers.0.pre_feedforward_layernorm_2.weight"} {
		if _, ok := src.Lookup(n); ok {
			t.Errorf("dense: %s", n)
		}
	}
	for _, k := range []string{"num_experts", "top_k_experts", "moe_intermediate_size", "num_global_key_value_heads"} {
		if v, ok := src.Config[k]; !ok || v != nil {
			t.Errorf("dense: %s = %v, want null", k, v)
		}
	}
	if src.Config["enable_moe_block"] != false {
		t.Errorf("dense: enable_moe_block %v", src.Config["enable_moe_block"])
	}
	for i, f := range []func(*Arch){
		func(a *Arch) { a.GlobalHeadDim = 0 },
		func(a *Arch) { a.GlobalKVHeads = 2 }, // without SharedKV
		func(a *Arch) { a.SharedKV = true },   // without GlobalKVHeads
		func(a *Arch) { a.ExpertIntermediate = 0 },
		func(a *Arch) { a.Rope.V5 = true },
	} {
		a := TinyGemma4()
		f(&a)
		if a.Validate() == nil {
			t.Errorf("case %d: accepted", i)
		}
	}
	if l := TinyLlama(); func() bool { l.SharedKV = true; return l.Validate() == nil }() {
		t.Error("a llama with SharedKV accepted")
	}
}

// shapesOf is a's tensors and their shapes by name.
func shapesOf(t *testing.T, a Arch) ([]Tensor, map[string][]int) {
	t.Helper()
	ts, err := Tensors(a)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]int{}
	for _, x := range ts {
		shape := make([]int, len(x.Shape))
		for i, d := range x.Shape {
			shape[i] = int(d)
		}
		got[x.Name] = shape
	}
	return ts, got
}

// TestLlava: the text model is Mistral's under language_model., the vision
// tower and projector have pixtral-12b's names with Arch.Vision's shapes,
// the config nests text_config and vision_config, and the sizes only a
// valid Llava has are enforced.
func TestLlava(t *testing.T) {
	a := TinyLlava()
	ts, got := shapesOf(t, a)
	for name, want := range map[string][]int{
		"language_model.model.embed_tokens.weight":                        {128, 64},
		"language_model.lm_head.weight":                                   {128, 64},
		"language_model.model.layers.1.self_attn.k_proj.weight":           {32, 64},
		"vision_tower.patch_conv.weight":                                  {32, 3, 4, 4},
		"vision_tower.ln_pre.weight":                                      {32},
		"vision_tower.transformer.layers.1.attention.q_proj.weight":       {32, 32},
		"vision_tower.transformer.layers.0.feed_forward.down_proj.weight": {32, 64},
		"multi_modal_projector.linear_1.weight":                           {64, 32},
		"multi_modal_projector.linear_2.bias":                             {64},
	} {
		if !slices.Equal(got[name], want) {
			t.Errorf("%s: %v, want %v", name, got[name], want)
		}
	}
	// 2 + 2*9 + 1 text, 2 + 2*9 vision, 4 projector.
	if len(ts) != 21+20+4 {
		t.Errorf("%d tensors, want 45", len(ts))
	}
	c, err := Config(a)
	if err != nil {
		t.Fatal(err)
	}
	if tc := c["text_config"].(map[string]any); tc["model_type"] != "mistral" || tc["hidden_size"] != int64(64) {
		t.Errorf("text_config %v", tc)
	}
	if vc := c["vision_config"].(map[string]any); vc["model_type"] != "pixtral" || vc["patch_size"] != int64(4) {
		t.Errorf("vision_config %v", vc)
	}
	for _, bad := range []struct {
		edit func(*Arch)
		want string
	}{
		{func(a *Arch) { a.Vision.Heads = 3 }, "vision hidden size 32 is not a multiple of 3 heads"},
		{func(a *Arch) { a.Vision.PatchSize = 0 }, "want all > 0"},
		{func(a *Arch) { a.TieEmbeddings = true }, "its embeddings are not tied"},
	} {
		b := TinyLlava()
		bad.edit(&b)
		if err := b.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want %q", b.Vision, err, bad.want)
		}
	}
	m := TinyMistral()
	m.Vision = a.Vision
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "only llava and llava_hybrid have a vision tower") {
		t.Errorf("mistral with a vision tower: %v", err)
	}
}

// TestApriel2: the multimodal Apriel2 is apriel2_text's model with the
// vision encoder under model.vision_encoder., sized from its config section
// (its own width, grouped heads, an adapter to the text width); its config
// says the multimodal architecture; an encoder synth cannot size is
// refused, and so is a vision encoder on apriel2_text.
func TestApriel2(t *testing.T) {
	a := TinyApriel2()
	ts, got := shapesOf(t, a)
	for name, want := range map[string][]int{
		"model.embed_tokens.weight":                                             {386, 256},
		"lm_head.weight":                                                        {386, 256},
		"model.decoder.blocks.1.mixer.k_proj.weight":                            {128, 256},
		"model.vision_encoder.embeddings.patch_embeddings.weight":               {128, 3, 4, 4},
		"model.vision_encoder.embeddings.normalization.weight":                  {128},
		"model.vision_encoder.encoder.blocks.1.mixer.k_proj.weight":             {64, 128},
		"model.vision_encoder.encoder.blocks.0.mixer.o_proj.weight":             {128, 128},
		"model.vision_encoder.encoder.blocks.0.mlp.down_proj.weight":            {128, 512},
		"model.vision_encoder.encoder.blocks.1.post_attention_layernorm.weight": {128},
		"model.vision_encoder.adapter.linear_1.weight":                          {384, 128},
		"model.vision_encoder.adapter.linear_1.bias":                            {384},
		"model.vision_encoder.adapter.linear_2.weight":                          {256, 384},
		"model.vision_encoder.adapter.linear_2.bias":                            {256},
	} {
		if !slices.Equal(got[name], want) {
			t.Errorf("%s: %v, want %v", name, got[name], want)
		}
	}
	// Text: embed, norm, lm_head and 2 * 9; vision: 2 + 2 * 9 + 4.
	if len(ts) != 21+24 {
		t.Errorf("%d tensors, want 45", len(ts))
	}
	c, err := Config(a)
	if err != nil {
		t.Fatal(err)
	}
	if c["model_type"] != "apriel2" || c["image_token_index"] != int64(384) || c["vision_encoder"].(map[string]any)["hidden_size"] != int64(128) {
		t.Errorf("config %v", c)
	}
	for _, bad := range []struct {
		edit func(*Arch)
		want string
	}{
		{func(a *Arch) { a.Apriel2.Vision = nil }, "a vision encoder is apriel2's, and apriel2 needs one"},
		{func(a *Arch) { delete(a.Apriel2.Vision["encoder"].(map[string]any), "block") }, "needs a fixed encoder"},
		{func(a *Arch) {
			a.Apriel2.Vision["encoder"].(map[string]any)["block"].(map[string]any)["mixer"] = map[string]any{"type": "mamba"}
		}, "the vision blocks' mixer is mamba, want attention"},
		{func(a *Arch) { delete(a.Apriel2.Vision["embeddings"].(map[string]any), "patch_width") }, "need patch_height and patch_width"},
	} {
		b := TinyApriel2()
		bad.edit(&b)
		if err := b.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v, want %q", err, bad.want)
		}
	}
	text := TinyApriel2Text()
	text.Apriel2.Vision = a.Apriel2.Vision
	if err := text.Validate(); err == nil || !strings.Contains(err.Error(), "a vision encoder is apriel2's") {
		t.Errorf("apriel2_text with a vision encoder: %v", err)
	}
}
