package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// plainBackend hides the optional fused kernels of the backend it wraps.
type plainBackend struct{ backend.Backend }

func convertWith(t *testing.T, be backend.Backend, in, out string) error {
	t.Helper()
	p, err := NewPlan(builtin(t, "gpt_oss"), in, PlanOptions{Workers: 2, Memory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Execute(context.Background(), ExecOptions{Output: out, Backend: be})
	return err
}

// TestFusedTransposeMXFP4: GPT-OSS's down projections (mxfp4 | transpose on
// import, transpose | mxfp4_encode on export) run fused on the CPU backend,
// and the export's gate_up rows are quantized where they lie (split | zip
// | mxfp4_encode); the output is byte for byte the one without those
// kernels, and a NaN the encoder refuses is reported the same way by each.
func TestFusedTransposeMXFP4(t *testing.T) {
	if _, ok := backend.CPU(1).(backend.MXFP4Transposer); !ok {
		t.Fatal("the CPU backend has no fused MXFP4 transposes")
	}
	a := synth.TinyGPTOSS()
	a.Hidden, a.Intermediate, a.Experts = 288, 128, 3 // rows of 576 bytes: long enough to defer
	root := t.TempDir()
	hf := filepath.Join(root, "hf")
	if err := synth.Generate(hf, a, 4, synth.Options{ByteExactMXFP4: true}); err != nil {
		t.Fatal(err)
	}
	dir := func(name string) string { return filepath.Join(root, name) }
	for _, c := range []struct{ in, fused, plain string }{{hf, "fast", "fast-plain"}, {dir("fast"), "back", "back-plain"}} {
		if err := convertWith(t, backend.CPU(2), c.in, dir(c.fused)); err != nil {
			t.Fatal(err)
		}
		if err := convertWith(t, plainBackend{backend.CPU(2)}, c.in, dir(c.plain)); err != nil {
			t.Fatal(err)
		}
		assertSameDir(t, dir(c.plain), dir(c.fused))
	}
	assertSameDir(t, hf, dir("back"))

	// A NaN in layer 1's layer_2 (the transposed down projection).
	ff, err := format.Lookup("fast_llm")
	if err != nil {
		t.Fatal(err)
	}
	src, err := ff.Open(dir("fast"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"decoder.1.mlp.layer_2.weight", "decoder.0.mlp.layer_1.weight"} {
		tn, ok := src.Lookup(name)
		if !ok {
			t.Fatalf("no %s in the Fast-LLM checkpoint", name)
		}
		fast := filepath.Join(root, "fast-"+name)
		if err := os.CopyFS(fast, os.DirFS(dir("fast"))); err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(filepath.Join(fast, filepath.Base(tn.File.Path)), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt([]byte{0xc0, 0x7f}, tn.File.FileOffset(tn.Info)+2*1000); err != nil {
			t.Fatal(err)
		}
		w.Close()
		fusedErr := convertWith(t, backend.CPU(2), fast, fast+"-nan")
		plainErr := convertWith(t, plainBackend{backend.CPU(2)}, fast, fast+"-nan-plain")
		if fusedErr == nil || plainErr == nil {
			t.Fatalf("%s: NaN accepted: fused %v, two steps %v", name, fusedErr, plainErr)
		}
		if fusedErr.Error() != plainErr.Error() || !strings.Contains(fusedErr.Error(), "mxfp4_encode") {
			t.Errorf("%s: errors differ:\n fused     %v\n two steps %v", name, fusedErr, plainErr)
		}
	}
	src.Close()
}

// countingFused counts the fused calls that reach the CPU backend it wraps.
type countingFused struct {
	backend.Backend
	t, parts *atomic.Int64
}

func (c countingFused) EncodeMXFP4T(blocks, scales, src []byte, st tensor.DType, batch, rows, cols int) (bool, error) {
	c.t.Add(1)
	return c.Backend.(backend.MXFP4Transposer).EncodeMXFP4T(blocks, scales, src, st, batch, rows, cols)
}

func (c countingFused) DecodeMXFP4T(dst []byte, dt tensor.DType, blocks, scales []byte, batch, rows, cols int) (bool, error) {
	c.t.Add(1)
	return c.Backend.(backend.MXFP4Transposer).DecodeMXFP4T(dst, dt, blocks, scales, batch, rows, cols)
}

func (c countingFused) EncodeMXFP4Parts(blocks, scales []byte, parts [][]byte, st tensor.DType) (bool, error) {
	c.parts.Add(1)
	return c.Backend.(backend.MXFP4Gatherer).EncodeMXFP4Parts(blocks, scales, parts, st)
}

// TestRoutedFused: behind a router whose large backend has no fused paths
// (as the GPU), the fused kinds placed on the CPU still reach the CPU's
// fused kernels, both ways of a GPT-OSS conversion, with the bytes of a
// conversion on the CPU alone; placed as split, they do not.
func TestRoutedFused(t *testing.T) {
	a := synth.TinyGPTOSS()
	a.Hidden, a.Intermediate, a.Experts = 288, 128, 3
	root := t.TempDir()
	dir := func(name string) string { return filepath.Join(root, name) }
	if err := synth.Generate(dir("hf"), a, 2, synth.Options{ByteExactMXFP4: true}); err != nil {
		t.Fatal(err)
	}
	var placed backend.Routes
	for k := range backend.NumKinds {
		placed.Place[k] = backend.OnLarge
	}
	placed.Place[backend.MXFP4DecodeT] = backend.OnSmall
	placed.Place[backend.MXFP4EncodeT] = backend.OnSmall
	placed.Place[backend.MXFP4EncodeParts] = backend.OnSmall
	split := placed
	split.Place[backend.MXFP4DecodeT], split.Place[backend.MXFP4EncodeT], split.Place[backend.MXFP4EncodeParts] = backend.Split, backend.Split, backend.Split
	for _, c := range []struct{ in, cpu, routed, split string }{{dir("hf"), "fast", "fast-routed", "fast-split"}, {dir("fast"), "back", "back-routed", "back-split"}} {
		if err := convertWith(t, backend.CPU(2), c.in, dir(c.cpu)); err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			out    string
			routes backend.Routes
		}{{c.routed, placed}, {c.split, split}} {
			var fused, parts atomic.Int64
			be := backend.RouteBy(plainBackend{backend.CPU(2)}, countingFused{backend.CPU(2), &fused, &parts}, 0, r.routes)
			if err := convertWith(t, be, c.in, dir(r.out)); err != nil {
				t.Fatal(err)
			}
			assertSameDir(t, dir(c.cpu), dir(r.out))
			wantFused := r.routes.Place[backend.MXFP4EncodeT] == backend.OnSmall
			if (fused.Load() > 0) != wantFused || (c.in != dir("hf") && (parts.Load() > 0) != wantFused) {
				t.Errorf("%s: %d fused transposes, %d gathered encodes", r.out, fused.Load(), parts.Load())
			}
		}
	}
}

// HeavyBytes counts the jobs that run a backend transform: all of a
// GPT-OSS import but its copies, none of a conversion that only renames.
func TestHeavyBytes(t *testing.T) {
	root := t.TempDir()
	if err := synth.Generate(root, synth.TinyGPTOSS(), 2, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(builtin(t, "gpt_oss"), root, PlanOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var want int64
	for _, j := range p.Jobs {
		if !j.Copy && strings.Contains(fmt.Sprint(j.Stages), "mxfp4") {
			want += p.chunkInputBytes(j, 0, j.Units) + p.chunkOutputBytes(j, 0, j.Units)
		}
	}
	if got := p.HeavyBytes(); want == 0 || got < want || got > p.BytesIn+p.BytesOut {
		t.Errorf("HeavyBytes() = %d; the MXFP4 jobs move %d, the plan %d in and %d out", got, want, p.BytesIn, p.BytesOut)
	}
}
