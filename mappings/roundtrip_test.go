package mappings_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/engine/format/fastllm"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/safetensors"
)

type roundTripCase struct {
	name    string
	mapping string
	arch    synth.Arch
	opts    synth.Options
	variant string // the variant the import must choose ("" for mappings without variants)
	// valuesOnly: MXFP4 bytes may change on the way back, decoded values may not.
	valuesOnly bool
}

func roundTripCases() []roundTripCase {
	llamaBias := synth.TinyLlama()
	llamaBias.AttentionBias, llamaBias.MLPBias = true, true
	llamaTied := synth.TinyLlama()
	llamaTied.TieEmbeddings = true
	mistralNull := synth.TinyMistral()
	mistralNull.SlidingWindow = 0 // sliding_window: null
	qwen3Bias := synth.TinyQwen3()
	qwen3Bias.AttentionBias, qwen3Bias.TieEmbeddings = true, true
	// head_dim 32 with 4 heads of a 64-wide model: q_proj is [128, 64], as
	// in Qwen3-0.6B where head_dim * heads != hidden_size.
	qwen3Wide := synth.TinyQwen3()
	qwen3Wide.HeadDim = 32
	qwen3MoERect := synth.TinyQwen3MoE()
	qwen3MoERect.Experts, qwen3MoERect.ExpertsPerTok, qwen3MoERect.KVHeads = 3, 1, 1
	phi3MHA := synth.TinyPhi3()
	phi3MHA.KVHeads, phi3MHA.SlidingWindow = 4, 0 // as Phi-3-mini: as many key/value heads as heads; no window
	mtp1 := synth.TinyMTPLlama()
	mtp1.PredictionHeads = 1 // the model's own head only: no mtp_heads
	mtp3 := synth.TinyMTPLlama()
	mtp3.PredictionHeads, mtp3.AttentionBias, mtp3.MLPBias = 3, true, true
	return []roundTripCase{
		{name: "gpt_oss_mxfp4_byte_exact", mapping: "gpt_oss", arch: synth.TinyGPTOSS(), opts: synth.Options{ByteExactMXFP4: true}, variant: "mxfp4"},
		{name: "gpt_oss_mxfp4", mapping: "gpt_oss", arch: synth.TinyGPTOSS(), variant: "mxfp4", valuesOnly: true},
		{name: "gpt_oss_dense", mapping: "gpt_oss", arch: synth.TinyGPTOSSDense(), variant: "dense"},
		{name: "llama", mapping: "llama", arch: synth.TinyLlama()},
		{name: "llama_biases", mapping: "llama", arch: llamaBias},
		{name: "llama_tied", mapping: "llama", arch: llamaTied},
		{name: "mistral_window", mapping: "mistral", arch: synth.TinyMistral()},
		{name: "mistral_window_null", mapping: "mistral", arch: mistralNull},
		{name: "mixtral", mapping: "mixtral", arch: synth.TinyMixtral()},
		{name: "qwen2", mapping: "qwen2", arch: synth.TinyQwen2()},
		{name: "qwen3", mapping: "qwen3", arch: synth.TinyQwen3()},
		{name: "qwen3_biases_tied", mapping: "qwen3", arch: qwen3Bias},
		{name: "qwen3_wide_heads", mapping: "qwen3", arch: qwen3Wide},
		{name: "qwen3_moe", mapping: "qwen3_moe", arch: synth.TinyQwen3MoE()},
		{name: "qwen3_moe_rect", mapping: "qwen3_moe", arch: qwen3MoERect},
		{name: "phi3", mapping: "phi3", arch: synth.TinyPhi3()},
		{name: "phi3_mha", mapping: "phi3", arch: phi3MHA},
		{name: "mtp_llama", mapping: "mtp_llama", arch: synth.TinyMTPLlama()},
		{name: "mtp_llama_one_head", mapping: "mtp_llama", arch: mtp1},
		{name: "mtp_llama_three_heads_biases", mapping: "mtp_llama", arch: mtp3},
		{name: "diffusion_llama", mapping: "diffusion_llama", arch: synth.TinyDiffusionLlama()},
		{name: "dream", mapping: "dream", arch: synth.TinyDream()},
		// Sharded inputs with an index (save_pretrained naming, and GPT-OSS's
		// published 0-based naming).
		{name: "gpt_oss_mxfp4_sharded", mapping: "gpt_oss", arch: synth.TinyGPTOSS(), opts: synth.Options{ByteExactMXFP4: true, ShardBytes: 48 << 10}, variant: "mxfp4"},
		{name: "gpt_oss_mxfp4_sharded_zero_based", mapping: "gpt_oss", arch: synth.TinyGPTOSS(), opts: synth.Options{ByteExactMXFP4: true, ShardBytes: 48 << 10, Naming: "hf-zero-based"}, variant: "mxfp4"},
		{name: "llama_sharded", mapping: "llama", arch: synth.TinyLlama(), opts: synth.Options{ShardBytes: 24 << 10}},
		{name: "qwen3_moe_sharded", mapping: "qwen3_moe", arch: synth.TinyQwen3MoE(), opts: synth.Options{ShardBytes: 24 << 10}},
		{name: "mtp_llama_sharded", mapping: "mtp_llama", arch: mtp3, opts: synth.Options{ShardBytes: 24 << 10}},
	}
}

// TestRoundTrip converts each generated HF checkpoint to Fast-LLM and back,
// then the Fast-LLM checkpoint to HF and back, and checks that nothing
// changed on either way.
func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := load(t, tc.mapping)
			hf0 := generate(t, tc.arch, tc.opts)
			if tc.opts.ShardBytes > 0 {
				if _, err := os.Stat(filepath.Join(hf0, "model.safetensors.index.json")); err != nil {
					t.Fatalf("the sharded input has no index: %v", err)
				}
			}

			// HF -> Fast-LLM -> HF.
			fl, imp := convert(t, m, hf0, engine.PlanOptions{})
			if imp.Direction != engine.Import || imp.Variant != tc.variant {
				t.Fatalf("import: direction %v, variant %q; want import, %q", imp.Direction, imp.Variant, tc.variant)
			}
			if tc.variant != "" && (imp.Carried == nil || imp.Carried.Variant != tc.variant) {
				t.Errorf("the import does not record variant %q for the way back: %+v", tc.variant, imp.Carried)
			}
			// No shard size: the export writes the files the import started from.
			hf1, exp := convert(t, m, fl, engine.PlanOptions{})
			if exp.Direction != engine.Export || exp.Variant != tc.variant {
				t.Fatalf("export: direction %v, variant %q; want export, %q", exp.Direction, exp.Variant, tc.variant)
			}
			checkHFRoundTrip(t, hf0, hf1, tc.valuesOnly)

			// Fast-LLM -> HF -> Fast-LLM.
			fl2, _ := convert(t, m, hf1, engine.PlanOptions{})
			checkAllIdentical(t, fl, fl2)
			checkSameMetadata(t, fl, fl2)
		})
	}
}

// checkHFRoundTrip compares an HF checkpoint with its round trip: every
// tensor identical (MXFP4 blocks/scales: identical decoded values when
// valuesOnly), and every other file byte for byte.
func checkHFRoundTrip(t *testing.T, a, b string, valuesOnly bool) {
	t.Helper()
	rep, err := engine.Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var requantized []string // MXFP4 pairs whose bytes changed
	for _, d := range rep.Tensors {
		if d.Kind == engine.Identical {
			continue
		}
		if valuesOnly && d.Kind == engine.Different && isMXFP4Part(d.Name) {
			requantized = append(requantized, strings.TrimSuffix(strings.TrimSuffix(d.Name, "_blocks"), "_scales"))
			continue
		}
		t.Errorf("%s: %s %s", d.Name, d.Kind, d.Detail)
	}
	if len(rep.Tensors) == 0 {
		t.Fatal("no tensors compared")
	}
	if valuesOnly {
		requantized = slices.Compact(slices.Sorted(slices.Values(requantized)))
		if len(requantized) == 0 {
			t.Fatal("no MXFP4 tensor changed bytes: the values-only case does not exercise re-quantization")
		}
		ca, cb := openHF(t, a), openHF(t, b)
		for _, base := range requantized {
			checkSameMXFP4Values(t, ca, cb, base)
		}
	}
	// The export writes the files the import read (names, shards, index),
	// so every file is byte-identical; only re-quantized MXFP4 data may
	// differ, and that was compared by value above.
	names := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	na, nb := names(a), names(b)
	if !slices.Equal(na, nb) {
		t.Errorf("files differ:\n  %v\n  %v", na, nb)
	}
	for _, n := range na {
		if valuesOnly && strings.HasSuffix(n, ".safetensors") {
			continue
		}
		ba, bb := readFile(t, filepath.Join(a, n)), readFile(t, filepath.Join(b, n))
		if bytes.Equal(ba, bb) {
			continue
		}
		// GPT-OSS's published one-line index lists tensors in an order of
		// its own, which is not recorded: there only the content must agree.
		if n == safetensors.IndexFile && !bytes.Contains(ba, []byte("\n  ")) {
			checkSameIndexContent(t, filepath.Join(a, n), filepath.Join(b, n))
			continue
		}
		t.Errorf("%s is not byte-identical after the round trip", n)
	}
}

// checkSameIndexContent compares two model.safetensors.index.json files:
// the same total_size and the same tensors, each mapped to a file that exists.
func checkSameIndexContent(t *testing.T, a, b string) {
	t.Helper()
	ia, err := safetensors.ReadIndex(a)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := safetensors.ReadIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	if ia.TotalSize != ib.TotalSize {
		t.Errorf("index total_size %d, want %d", ib.TotalSize, ia.TotalSize)
	}
	if ka, kb := slices.Sorted(maps.Keys(ia.WeightMap)), slices.Sorted(maps.Keys(ib.WeightMap)); !slices.Equal(ka, kb) {
		t.Errorf("index tensors differ:\n  %v\n  %v", ka, kb)
	}
	for name, file := range ib.WeightMap {
		if _, err := os.Stat(filepath.Join(filepath.Dir(b), file)); err != nil {
			t.Errorf("index maps %s to %s: %v", name, file, err)
		}
	}
}

func isMXFP4Part(name string) bool {
	return strings.HasSuffix(name, "_blocks") || strings.HasSuffix(name, "_scales")
}

// checkSameMXFP4Values decodes base_blocks/base_scales on both sides with
// the runtime kernel and compares the values bit for bit.
func checkSameMXFP4Values(t *testing.T, a, b *checkpoint, base string) {
	t.Helper()
	decode := func(c *checkpoint) []float32 {
		_, bs, blocks := c.raw(base + "_blocks")
		_, ss, scales := c.raw(base + "_scales")
		if len(bs) != len(ss)+1 || bs[len(bs)-1] != 16 {
			t.Fatalf("%s: blocks %v and scales %v do not pair", base, bs, ss)
		}
		dst := make([]byte, 4*32*len(scales))
		if err := kernels.DecodeMXFP4ToF32(dst, blocks, scales); err != nil {
			t.Fatal(err)
		}
		return f32s(dst)
	}
	sameBits(t, base+" (decoded)", decode(b), decode(a))
}

// checkAllIdentical requires every tensor of two checkpoints to be identical.
func checkAllIdentical(t *testing.T, a, b string) {
	t.Helper()
	rep, err := engine.Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tensors) == 0 {
		t.Fatal("no tensors compared")
	}
	for _, d := range rep.Tensors {
		if d.Kind != engine.Identical {
			t.Errorf("%s: %s %s", d.Name, d.Kind, d.Detail)
		}
	}
}

func parseMetadata(t testing.TB, dir string) *fastllm.Metadata {
	t.Helper()
	md, err := fastllm.ParseMetadata(readFile(t, filepath.Join(dir, fastllm.MetadataFile)))
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return md
}

// checkSameMetadata parses both metadata.yaml files and compares
// config.base_model and metadata.mapper.
func checkSameMetadata(t *testing.T, a, b string) {
	t.Helper()
	ma, mb := parseMetadata(t, a), parseMetadata(t, b)
	if !reflect.DeepEqual(ma.Config, mb.Config) {
		t.Errorf("config.base_model differs:\n  %v\n  %v", ma.Config, mb.Config)
	}
	if ma.Carried == nil || mb.Carried == nil {
		t.Fatalf("metadata.mapper missing: %+v, %+v", ma.Carried, mb.Carried)
	}
	if !reflect.DeepEqual(ma.Carried, mb.Carried) {
		t.Errorf("metadata.mapper differs:\n  %+v\n  %+v", ma.Carried, mb.Carried)
	}
	if !reflect.DeepEqual(ma.StateIndex, mb.StateIndex) {
		t.Errorf("state_index differs:\n  %v\n  %v", ma.StateIndex, mb.StateIndex)
	}
}

// TestGPTOSSExportDense imports an MXFP4 GPT-OSS, exports it with --variant
// dense and checks the dense checkpoint against the reference decoder; then
// it imports the dense checkpoint again and exports it with --variant mxfp4,
// which must give the original config and expert values back.
func TestGPTOSSExportDense(t *testing.T) {
	t.Parallel()
	a := synth.TinyGPTOSS()
	E, H, I := a.Experts, a.Hidden, a.Intermediate
	m := load(t, "gpt_oss")
	hf0 := generate(t, a, synth.Options{})
	fl, _ := convert(t, m, hf0, engine.PlanOptions{})
	dense, p := convert(t, m, fl, engine.PlanOptions{Variant: "dense"})
	if p.Variant != "dense" {
		t.Fatalf("export variant %q, want dense", p.Variant)
	}

	// The config is exactly a dense GPT-OSS's: no quantization_config.
	cfg := readFile(t, filepath.Join(dense, "config.json"))
	if bytes.Contains(cfg, []byte("quantization_config")) {
		t.Errorf("the dense export keeps quantization_config:\n%s", cfg)
	}
	want := generate(t, synth.TinyGPTOSSDense(), synth.Options{NoSideFiles: true})
	if !bytes.Equal(cfg, readFile(t, filepath.Join(want, "config.json"))) {
		t.Errorf("dense config.json differs from a generated dense GPT-OSS's:\n%s", cfg)
	}

	hf, d := openHF(t, hf0), openHF(t, dense)
	for l := range a.Layers {
		x := fmt.Sprintf("model.layers.%d.mlp.experts.", l)
		for _, n := range []string{"gate_up_proj_blocks", "gate_up_proj_scales", "down_proj_blocks", "down_proj_scales"} {
			if d.has(x + n) {
				t.Errorf("the dense export has %s%s", x, n)
			}
		}
		// Reference: decode the original MXFP4 ([E, 2I, H] and [E, H, I])
		// and write it input-major ([E, H, 2I] and [E, I, H]), the 2I axis
		// still interleaved.
		gu := refDecodeMXFP4(hf.u8(x+"gate_up_proj_blocks", E, 2*I, H/32, 16), hf.u8(x+"gate_up_proj_scales", E, 2*I, H/32))
		dn := refDecodeMXFP4(hf.u8(x+"down_proj_blocks", E, H, I/32, 16), hf.u8(x+"down_proj_scales", E, H, I/32))
		wantGU, wantDn := make([]float32, len(gu)), make([]float32, len(dn))
		for e := range E {
			for h := range H {
				for k := range 2 * I {
					wantGU[(e*H+h)*2*I+k] = gu[(e*2*I+k)*H+h]
				}
				for i := range I {
					wantDn[(e*I+i)*H+h] = dn[(e*H+h)*I+i]
				}
			}
		}
		sameBits(t, x+"gate_up_proj", d.bf16(x+"gate_up_proj", E, H, 2*I), wantGU)
		sameBits(t, x+"down_proj", d.bf16(x+"down_proj", E, I, H), wantDn)
		sameBits(t, x+"gate_up_proj_bias", d.bf16(x+"gate_up_proj_bias", E, 2*I), hf.bf16(x+"gate_up_proj_bias", E, 2*I))
		sameBits(t, x+"down_proj_bias", d.bf16(x+"down_proj_bias", E, H), hf.bf16(x+"down_proj_bias", E, H))
	}

	// The dense checkpoint imports to the very same Fast-LLM tensors, and
	// records dense as its variant.
	fl2, imp := convert(t, m, dense, engine.PlanOptions{})
	if imp.Variant != "dense" {
		t.Errorf("re-import variant %q, want dense", imp.Variant)
	}
	checkAllIdentical(t, fl, fl2)
	if md, md2 := parseMetadata(t, fl), parseMetadata(t, fl2); !reflect.DeepEqual(md.Config, md2.Config) {
		t.Errorf("config.base_model differs after the dense detour:\n  %v\n  %v", md.Config, md2.Config)
	} else if md2.Carried == nil || md2.Carried.Variant != "dense" {
		t.Errorf("metadata.mapper of the dense import: %+v, want variant dense", md2.Carried)
	}

	// Back to MXFP4 by name: the original config byte for byte and the
	// original expert values.
	hf2, p2 := convert(t, m, fl2, engine.PlanOptions{Variant: "mxfp4"})
	if p2.Variant != "mxfp4" {
		t.Fatalf("export variant %q, want mxfp4", p2.Variant)
	}
	if !bytes.Equal(readFile(t, filepath.Join(hf0, "config.json")), readFile(t, filepath.Join(hf2, "config.json"))) {
		t.Errorf("config.json after dense and back to mxfp4 differs from the original:\n%s", readFile(t, filepath.Join(hf2, "config.json")))
	}
	checkHFRoundTrip(t, hf0, hf2, true)
}
