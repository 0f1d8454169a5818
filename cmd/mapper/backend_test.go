package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mapper-dev/mapper/runtime/backend"
)

// namedCPU is a CPU backend under another name, standing in for a GPU.
type namedCPU struct {
	backend.Backend
	closed *bool
}

func (n namedCPU) Name() string { return "gpu" }
func (n namedCPU) Close() error { *n.closed = true; return nil }

func TestSelectBackend(t *testing.T) {
	for _, c := range []struct {
		name, env   string
		present     bool
		openErr     error
		heavy       int64
		want, note  string // want: Name() or the error; note: a regexp-free substring of stderr
		opened, err bool
	}{
		{name: "cpu", present: true, heavy: 1 << 40, want: "cpu"},
		{name: "auto", present: false, heavy: 1 << 40, want: "cpu"},
		{name: "auto", present: true, heavy: 1 << 30, want: "cpu",
			note: "note: backend auto: cpu; 1.0 GiB to transform is under the 60.1 GiB from which a GPU's start (about 2.0s) could pay off with 16 workers (--backend cuda forces the GPU)\n"},
		{name: "auto", present: true, heavy: 1 << 30, env: "512MiB", opened: true, note: "calibrated in"},
		{name: "auto", present: true, heavy: 1 << 30, env: "lots", err: true, want: "MAPPER_AUTO_GPU_BYTES=lots: "},
		{name: "auto", present: true, heavy: 1 << 40, openErr: errors.New("no NVRTC"), want: "cpu",
			note: "note: backend auto: cpu; the GPU is not usable: no NVRTC\n"},
		{name: "cuda", present: true, opened: true, want: "gpu+cpu"},
		{name: "cuda", openErr: errors.New("no NVRTC"), err: true, want: "--backend cuda: no NVRTC"},
		{name: "tpu", err: true, want: `--backend "tpu": want auto, cpu or cuda`},
	} {
		t.Run(c.name+"/"+c.want, func(t *testing.T) {
			if c.env != "" {
				t.Setenv(autoGPUBytesEnv, c.env)
			}
			opened, closed := false, false
			g := gpuSide{
				present: func() bool { return c.present },
				open: func() (backend.Backend, error) {
					if c.openErr != nil {
						return nil, c.openErr
					}
					opened = true
					return namedCPU{backend.CPU(1), &closed}, nil
				},
				minIn:   1 << 20,
				startup: 2 * time.Second,
				calib:   backend.CalibrateOptions{Elements: 32 << 10, Runs: 1},
			}
			var stderr strings.Builder
			be, err := selectWith(g, c.name, 16, c.heavy, &stderr)
			switch {
			case c.err:
				if err == nil || !strings.HasPrefix(err.Error(), c.want) {
					t.Fatalf("err = %v, want %s...", err, c.want)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if opened != c.opened {
				t.Errorf("GPU opened: %v", opened)
			}
			if !strings.Contains(stderr.String(), c.note) || c.note == "" && stderr.Len() > 0 {
				t.Errorf("stderr %q, want %q", stderr.String(), c.note)
			}
			// Calibrated against the CPU, the stand-in wins some kinds and
			// loses others by chance: the name says which, and a GPU
			// left with nothing to run is closed.
			if c.want != "" && be.Name() != c.want {
				t.Errorf("Name() = %q, want %q", be.Name(), c.want)
			}
			if c.env != "" && (be.Name() == "cpu") != closed {
				t.Errorf("Name() = %q, GPU closed: %v", be.Name(), closed)
			}
		})
	}
}
