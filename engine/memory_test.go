package engine

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/safetensors"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// TestMemoryBudget converts checkpoints many times larger than a small
// working-memory budget, both ways, and checks the executor's own account:
// neither the reserved nor the live bytes, nor all it held at once (idle
// buffers, mapped input and write buffers included), ever pass the budget,
// the output is the same as with the default budget, and the default budget
// does use more (so the small one really constrained the run). Each budget
// is about the least the checkpoint's largest chunk allows.
func TestMemoryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("converts about 60 MiB")
	}
	gptoss := synth.TinyGPTOSS()
	gptoss.Hidden, gptoss.Intermediate, gptoss.Layers, gptoss.Experts, gptoss.Vocab = 256, 256, 4, 8, 1024
	dense := gptoss
	dense.MXFP4 = false
	llama := synth.TinyLlama()
	llama.Hidden, llama.Intermediate, llama.Heads, llama.KVHeads, llama.HeadDim, llama.Vocab, llama.Layers = 256, 768, 8, 4, 32, 4096, 6
	mixtral := synth.TinyMixtral()
	mixtral.Hidden, mixtral.Intermediate, mixtral.Heads, mixtral.KVHeads, mixtral.HeadDim, mixtral.Vocab, mixtral.Layers = 256, 512, 8, 4, 32, 2048, 5
	for _, tc := range []struct {
		name, mapping string
		arch          synth.Arch
		budget        int64
		// chunked: the budget splits some job into more chunks than the
		// default does (llama's ops all take whole tensors, so there only
		// the number of chunks running at once is limited).
		chunked bool
	}{
		{"gpt_oss-mxfp4", "gpt_oss", gptoss, 1 << 20, true},
		{"gpt_oss-dense", "gpt_oss", dense, 1 << 20, true},
		// The 768 KiB concatenation of gate and up is written from the
		// mapped input through a bounce buffer as large.
		{"llama", "llama", llama, 3 << 19, false},
		{"mixtral", "mixtral", mixtral, 2 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			budget := tc.budget
			m := builtin(t, tc.mapping)
			root := t.TempDir()
			hfDir := filepath.Join(root, "hf")
			if err := synth.Generate(hfDir, tc.arch, 3, synth.Options{ByteExactMXFP4: true}); err != nil {
				t.Fatal(err)
			}
			small := PlanOptions{Workers: 2, Memory: budget}
			check := func(what string, p *Plan, st *Stats) {
				t.Helper()
				if st.Budget != budget || p.Memory != budget {
					t.Errorf("%s: budget %d (plan %d), want %d", what, st.Budget, p.Memory, budget)
				}
				if st.PeakLive <= 0 || st.PeakLive > budget {
					t.Errorf("%s: peak live %d bytes, budget %d", what, st.PeakLive, budget)
				}
				if st.PeakReserved <= 0 || st.PeakReserved > budget {
					t.Errorf("%s: peak reserved %d bytes, budget %d", what, st.PeakReserved, budget)
				}
				if st.PeakHeld < st.PeakLive || st.PeakHeld > budget {
					t.Errorf("%s: held %d bytes at once (%d live), budget %d", what, st.PeakHeld, st.PeakLive, budget)
				}
				if p.PeakMemory > budget {
					t.Errorf("%s: the plan expects a peak of %d bytes, over the budget %d", what, p.PeakMemory, budget)
				}
				if max(p.BytesIn, p.BytesOut) < 8*budget {
					t.Errorf("%s: %d bytes in, %d out; the test wants a checkpoint of at least 8 budgets", what, p.BytesIn, p.BytesOut)
				}
			}

			refDir, fastDir, backDir := filepath.Join(root, "ref"), filepath.Join(root, "fast"), filepath.Join(root, "back")
			_, refStats := convert(t, m, hfDir, refDir, PlanOptions{Workers: 2})
			p, st := convert(t, m, hfDir, fastDir, small)
			check("import", p, st)
			if tc.chunked && refStats.PeakLive <= budget {
				t.Errorf("with the default budget the import peaks at %d bytes, not over the small budget of %d: the test constrains nothing", refStats.PeakLive, budget)
			}
			assertSameDir(t, refDir, fastDir)

			p, st = convert(t, m, fastDir, backDir, small)
			check("export", p, st)
			assertSameDir(t, hfDir, backDir)
		})
	}
}

// TestMemoryManyWorkers: sixteen workers (64 tasks in flight) on a budget
// of about one chunk: what each chunk holds beside its buffers (the mapped
// input of a concatenation, its write buffer) is reserved with it, so the
// executor never holds more than the budget however many run at once; and
// a budget below the largest chunk's whole need, write buffer included, is
// refused at plan time.
func TestMemoryManyWorkers(t *testing.T) {
	llama := synth.TinyLlama()
	llama.Hidden, llama.Intermediate, llama.Heads, llama.KVHeads, llama.HeadDim, llama.Vocab, llama.Layers = 256, 768, 8, 4, 32, 4096, 6
	m := builtin(t, "llama")
	root := t.TempDir()
	hfDir, refDir, outDir := filepath.Join(root, "hf"), filepath.Join(root, "ref"), filepath.Join(root, "out")
	if err := synth.Generate(hfDir, llama, 5, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	// The largest chunk: gate and up (768 KiB) concatenated from the
	// mapping, written through a bounce buffer as large.
	const budget = 3 << 19
	_, err := testPlan(m, hfDir, PlanOptions{Workers: 16, Memory: budget - 4096})
	if err == nil || !strings.Contains(err.Error(), "768.0 KiB of write buffer") {
		t.Fatalf("a budget 4 KiB short of the largest chunk: %v", err)
	}
	convert(t, m, hfDir, refDir, PlanOptions{Workers: 2})
	p, st := convert(t, m, hfDir, outDir, PlanOptions{Workers: 16, Memory: budget})
	if p.Workers != 16 {
		t.Fatalf("planned %d workers", p.Workers)
	}
	for _, c := range []struct {
		what string
		n    int64
	}{{"reserved", st.PeakReserved}, {"live", st.PeakLive}, {"held", st.PeakHeld}} {
		if c.n <= 0 || c.n > budget {
			t.Errorf("peak %s: %d bytes, budget %d", c.what, c.n, budget)
		}
	}
	if st.PeakHeld <= st.PeakLive {
		t.Errorf("held %d bytes at most, no more than the %d live: the mapped input and write buffers went uncounted", st.PeakHeld, st.PeakLive)
	}
	assertSameDir(t, refDir, outDir)
}

// TestPlanRefusesOversizedChunk: a job whose smallest chunk does not fit the
// budget is refused at plan time, naming the tensor and the sizes, rather
// than run over budget. The need counts the mapped input the chunk reads
// beside its working memory.
func TestPlanRefusesOversizedChunk(t *testing.T) {
	m := loadMapFile(t, "testdata/small.map")
	dir := filepath.Join(t.TempDir(), "hf")
	writeSmallHF(t, dir, smallConfig())
	// One unit of layer_1 is one expert: working memory for [gate; up]
	// (2 KiB) and its place in the stack (2 KiB), and the mapped gate and
	// up it reads (2 KiB). Writes this small need no buffer.
	_, err := testPlan(m, dir, PlanOptions{Workers: 1, Memory: 5 << 10})
	if err == nil {
		t.Fatal("planned a chunk over the budget")
	}
	for _, s := range []string{"tensor decoder.0.mlp.layer_1.weight", "testdata/small.map:53",
		"needs 6.0 KiB (4.0 KiB of working memory, 2.0 KiB of input, 0 B of write buffer)", "budget of 5.0 KiB", "raise --memory"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not mention %q: %v", s, err)
		}
	}
	// A diagnostic marking the rule, its output tensor the subject.
	if l := Diagnostics(err); len(l) != 1 || l[0].Pos.Line != 53 || l[0].End.Offset <= l[0].Pos.Offset ||
		l[0].Subject != (diag.Subject{Tensor: "decoder.0.mlp.layer_1.weight"}) {
		t.Errorf("diagnostics %+v, want one marking the rule at line 53", l)
	}
	p, err := testPlan(m, dir, PlanOptions{Workers: 1, Memory: 6 << 10})
	if err != nil {
		t.Fatalf("a budget of exactly one chunk: %v", err)
	}
	p.Close()
}

// chunkPeaks runs every chunk of every job of a plan on its own, each with
// a fresh account, and checks that what a chunk holds at once never passes
// what it reserved: the reservation is what keeps the budget.
func chunkPeaks(t *testing.T, p *Plan) {
	t.Helper()
	dir := t.TempDir()
	targets := map[string]target{}
	for _, sh := range p.Shards {
		l, err := safetensors.NewLayout(sh.Entries, nil)
		if err != nil {
			t.Fatal(err)
		}
		w, err := safetensors.Create(filepath.Join(dir, sh.File), l)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		for i, e := range sh.Entries {
			size, _ := e.Size()
			targets[sh.Logical[i]] = target{w: w, key: e.Name, size: size}
		}
	}
	be := backend.CPU(1)
	chunks := 0
	for _, job := range p.Jobs {
		if job.Copy {
			continue
		}
		for u0 := 0; u0 < job.Units; u0 += job.ChunkUnits {
			u1 := min(u0+job.ChunkUnits, job.Units)
			mem := newBudget(p.Memory)
			need := job.UnitMemory * int64(u1-u0)
			if _, err := p.runChunk(be, job, u0, u1, targets, mem); err != nil {
				t.Fatalf("%s chunk [%d, %d): %v", job.Outputs[0][0], u0, u1, err)
			}
			if got := mem.peakLive.Load(); got > need || got > p.Memory {
				t.Errorf("%s (rule at %s), units [%d, %d) of %d: held %d bytes at once, reserved %d (budget %d)",
					job.Outputs[0][0], job.Rule, u0, u1, job.Units, got, need, p.Memory)
			}
			if live := mem.live.Load(); live != 0 {
				t.Errorf("%s: %d bytes still accounted live after the chunk", job.Outputs[0][0], live)
			}
			chunks++
		}
	}
	if chunks == 0 {
		t.Fatal("the plan has no chunk to run")
	}
}

// TestChunkAccounting checks every chunk of the seed mappings, both ways,
// under budgets small enough to split them.
func TestChunkAccounting(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    func(t *testing.T) *ir.Mapping
		gen  func(t *testing.T, dir string)
	}{
		{"small", func(t *testing.T) *ir.Mapping { return loadMapFile(t, "testdata/small.map") },
			func(t *testing.T, dir string) { writeSmallHF(t, dir, smallConfig()) }},
		{"gpt_oss", func(t *testing.T) *ir.Mapping { return builtin(t, "gpt_oss") }, synthGen(synth.TinyGPTOSS())},
		{"gpt_oss-dense", func(t *testing.T) *ir.Mapping { return builtin(t, "gpt_oss") }, synthGen(synth.TinyGPTOSSDense())},
		{"mixtral", func(t *testing.T) *ir.Mapping { return builtin(t, "mixtral") }, synthGen(synth.TinyMixtral())},
		{"qwen2", func(t *testing.T) *ir.Mapping { return builtin(t, "qwen2") }, synthGen(synth.TinyQwen2())},
		{"slice", func(t *testing.T) *ir.Mapping { return loadMapping(t, "slice.map", []byte(sliceSrc)) }, writeSliceHF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m(t)
			if m.OneWay {
				chunkPeaks(t, planOrFail(t, m, writeTo(t, tc.gen), PlanOptions{Workers: 2, Memory: 16 << 10}))
				return
			}
			root := t.TempDir()
			hfDir, fastDir := filepath.Join(root, "hf"), filepath.Join(root, "fast")
			tc.gen(t, hfDir)
			opt := PlanOptions{Workers: 2, Memory: 96 << 10}
			imp := planOrFail(t, m, hfDir, opt)
			chunkPeaks(t, imp)
			if _, err := imp.Execute(t.Context(), ExecOptions{Output: fastDir}); err != nil {
				t.Fatal(err)
			}
			chunkPeaks(t, planOrFail(t, m, fastDir, opt))
		})
	}
}

func synthGen(a synth.Arch) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		if err := synth.Generate(dir, a, 1, synth.Options{}); err != nil {
			t.Fatal(err)
		}
	}
}

// sliceSrc is a one-way mapping whose slice runs on an allocated buffer (the
// cast's output) and on the mapped input.
const sliceSrc = `mapping sl oneway
left hf
right fast_llm
config {
  n <-> n
}
tensors {
  a: BF16[16, 64] | cast(F32) | slice(1, 8, 24) <-> a
  b: BF16[16, 64] | slice(1, 40, 64) | transpose(0, 1) <-> b
}
`

func writeSliceHF(t *testing.T, dir string) {
	writeHF(t, dir, map[string]any{"n": int64(1)}, []safetensors.Entry{
		{Name: "a", DType: tensor.BF16, Shape: tensor.Shape{16, 64}},
		{Name: "b", DType: tensor.BF16, Shape: tensor.Shape{16, 64}},
	})
}

func writeTo(t *testing.T, gen func(t *testing.T, dir string)) string {
	dir := filepath.Join(t.TempDir(), "in")
	gen(t, dir)
	return dir
}
