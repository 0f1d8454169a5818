package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/mappings/synth"
	"github.com/mapper-dev/mapper/runtime/backend"
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
