package cuda

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/backend/backendtest"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// The embedded PTX was compiled from this kernels.cu and defines every
// kernel the backend looks up. When kernels.cu changes, regenerate it (see
// ptx.go); this test says so.
func TestEmbeddedPTXMatchesSource(t *testing.T) {
	p, err := parsePTX(embeddedPTXFile, kernelSource)
	if err != nil {
		t.Fatal(err)
	}
	if p.arch != embeddedArch {
		t.Errorf("kernels.ptx is for compute_%d, want compute_%d", p.arch, embeddedArch)
	}
	for _, k := range kernelNames {
		if !bytes.Contains(p.ptx, []byte(".entry "+k+"(")) {
			t.Errorf("kernels.ptx defines no kernel %s", k)
		}
	}
	if !bytes.Contains(p.ptx, []byte(".target sm_75")) {
		t.Error("kernels.ptx does not target sm_75")
	}
}

func TestParsePTX(t *testing.T) {
	const src = "extern \"C\" __global__ void k() {}\n"
	good := ptxHeader(src, 13, 0) + ".version 9.0\n.target sm_75\n"
	for _, tc := range []struct{ name, file, want string }{
		{"good", good, ""},
		{"no header", ".version 9.0\n", "no mapper header line"},
		{"another source", ptxHeader(src+"// edited\n", 13, 0) + ".version 9.0\n", "compiled from another kernels.cu"},
		{"empty body", ptxHeader(src, 13, 0) + "\n", "holds no PTX"},
		{"bad header", ptxHeaderPrefix + "xyz\n.version 9.0\n", "header"},
	} {
		p, err := parsePTX([]byte(tc.file), src)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && (p.nvrtcMajor != 13 || p.arch != 75 || p.ptx[len(p.ptx)-1] != 0 || p.description != "embedded PTX (compute_75, from nvrtc 13.0)"):
			t.Errorf("%s: parsed %+v", tc.name, p)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	p, err := parsePTX([]byte(good), src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		major, minor int
		driver       int32
		want         string
	}{
		{9, 0, 13000, ""},
		{7, 5, 13020, ""},
		{7, 0, 13000, "needs compute capability 7.5 or newer; the device has 7.0"},
		{9, 0, 12080, "needs a driver of CUDA 13.0 or later; this one is 12.8"},
	} {
		err := p.usableOn(tc.major, tc.minor, tc.driver)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("usableOn(%d.%d, driver %d) = %v, want %q", tc.major, tc.minor, tc.driver, err, tc.want)
		}
	}
}

// TestWriteEmbeddedPTX regenerates kernels.ptx where $MAPPER_WRITE_PTX names
// the file to write; it needs NVRTC 13, not a GPU.
func TestWriteEmbeddedPTX(t *testing.T) {
	path := os.Getenv("MAPPER_WRITE_PTX")
	if path == "" {
		t.Skip("MAPPER_WRITE_PTX not set")
	}
	nv, err := getNVRTC()
	if err != nil {
		t.Fatal(err)
	}
	ptx, err := nv.compile(kernelSource, "kernels.cu", embeddedArch)
	if err != nil {
		t.Fatal(err)
	}
	var major, minor int32
	if res := nv.version(&major, &minor); res != 0 {
		t.Fatal(nv.err(res, "nvrtcVersion"))
	}
	out := append([]byte(ptxHeader(kernelSource, int(major), int(minor))), bytes.TrimRight(ptx, "\x00")...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d bytes, nvrtc %d.%d, compute_%d", path, len(out), major, minor, embeddedArch)
}

// TestGPUEmbeddedPTX runs the kernels of the embedded PTX (or of the file
// $MAPPER_TEST_PTX names, to try a regenerated one before embedding it)
// against the CPU backend, bit for bit: the path taken where no NVRTC is
// found.
func TestGPUEmbeddedPTX(t *testing.T) {
	gpu(t) // skips without a GPU
	d, err := getDriver()
	if err != nil {
		t.Fatal(err)
	}
	file, name := embeddedPTXFile, "embedded kernels.ptx"
	if path := os.Getenv("MAPPER_TEST_PTX"); path != "" {
		if file, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
		name = path
	}
	p, err := parsePTX(file, kernelSource)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b, err := start(d, func(major, minor int) ([]byte, int, string, error) {
		var dv int32
		if err := d.check(d.cuDriverGetVersion(&dv), "cuDriverGetVersion"); err != nil {
			return nil, 0, "", err
		}
		return p.ptx, p.arch, p.description, p.usableOn(major, minor, dv)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Logf("Kernels: %s (%s)", b.Kernels(), name)
	r := rand.New(rand.NewPCG(11, 12))
	cpu := backend.CPU(0)
	backendtest.Convert(t, b, cpu, r, 1<<20)
	backendtest.DecodeMXFP4(t, b, cpu, r, 100000)
	backendtest.EncodeMXFP4(t, b, cpu, r, 100000)
	cases := backendtest.RandomTransposeCases(r, 100, 1<<20)
	cases = append(cases,
		backendtest.TransposeCase{Shape: tensor.Shape{4, 2880, 720}, ElemSize: 2, A: 1, B: 2},
		backendtest.TransposeCase{Shape: tensor.Shape{1000, 3, 2000}, ElemSize: 1, A: 0, B: 2},
		backendtest.TransposeCase{Shape: tensor.Shape{3000, 7, 40}, ElemSize: 4, A: 0, B: 1},
		backendtest.TransposeCase{Shape: tensor.Shape{70000, 2, 3}, ElemSize: 8, A: 0, B: 2},
	)
	backendtest.Transpose(t, b, cpu, r, cases)
}
