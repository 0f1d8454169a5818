package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mapper-dev/mapper/engine"
	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/cuda"
)

// backendNames are the values --backend takes, each handled by selectBackend.
var backendNames = []string{"cpu", "auto", "cuda"}

// autoGPUBytesEnv overrides the least heavy work for which auto opens a GPU
// (a size such as 0 or 10GiB): bench/gpu.sh sets 0 to time the routing on
// a small checkpoint.
const autoGPUBytesEnv = "MAPPER_AUTO_GPU_BYTES"

// gpuSide is what selectBackend needs of a GPU backend; tests fake it.
type gpuSide struct {
	present func() bool // a driver to try
	open    func() (backend.Backend, error)
	minIn   int // inputs below it stay on the CPU
	startup time.Duration
	calib   backend.CalibrateOptions
}

var realGPU = gpuSide{
	present: cuda.DriverPresent,
	open:    func() (backend.Backend, error) { return cuda.New() },
	minIn:   cuda.MinBytes,
	startup: cuda.Startup,
}

// selectBackend returns the backend --backend names. cpu is the CPU
// backend. cuda is the GPU for every transform whose input reaches
// cuda.MinBytes (smaller ones finish on the CPU before a transfer would),
// and an error without a usable GPU. auto (the default) uses the CPU alone
// unless a CUDA driver is installed and the plan's heavy work (heavy bytes,
// engine.Plan.HeavyBytes) is large enough for the GPU's startup to pay off
// at all (backend.AutoMinBytes); then it opens the GPU, times each kind of
// transform on it and on the CPU (backend.Calibrate), and routes each kind
// to the faster one. What auto decided, and why, is written to stderr as a
// note.
func selectBackend(name string, workers int, heavy int64, stderr io.Writer) (backend.Backend, error) {
	return selectWith(realGPU, name, workers, heavy, stderr)
}

func selectWith(g gpuSide, name string, workers int, heavy int64, stderr io.Writer) (backend.Backend, error) {
	cpu := backend.CPU(workers)
	switch name {
	case "cpu":
		return cpu, nil
	case "cuda":
		gpu, err := g.open()
		if err != nil {
			return nil, fmt.Errorf("--backend cuda: %v", err)
		}
		return backend.Route(gpu, cpu, g.minIn), nil
	case "auto":
	default:
		return nil, fmt.Errorf("--backend %q: want auto, cpu or cuda", name)
	}
	if !g.present() {
		return cpu, nil
	}
	least := backend.AutoMinBytes(workers, g.startup)
	if v, ok := os.LookupEnv(autoGPUBytesEnv); ok {
		n, err := parseSize(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %v", autoGPUBytesEnv, v, err)
		}
		least = n
	}
	if heavy < least {
		fmt.Fprintf(stderr, "note: backend auto: cpu; %s to transform is under the %s from which a GPU's start (about %.1fs) could pay off with %d workers (--backend cuda forces the GPU)\n",
			engine.FormatBytes(heavy), engine.FormatBytes(least), g.startup.Seconds(), workers)
		return cpu, nil
	}
	t0 := time.Now()
	gpu, err := g.open()
	if err != nil {
		fmt.Fprintf(stderr, "note: backend auto: cpu; the GPU is not usable: %v\n", err)
		return cpu, nil
	}
	opened := time.Since(t0)
	routes, err := backend.Calibrate(gpu, cpu, g.calib)
	if err != nil {
		gpu.Close()
		return nil, fmt.Errorf("--backend auto: %v", err)
	}
	for _, p := range routes.Problems {
		fmt.Fprintf(stderr, "note: backend auto: not used on the GPU: %s\n", p)
	}
	be := backend.RouteBy(gpu, cpu, g.minIn, routes)
	fmt.Fprintf(stderr, "note: backend auto: %s (GPU opened in %.1fs, calibrated in %.1fs; inputs under %s always on cpu)\n",
		routes.Describe(gpu.Name(), cpu.Name()), opened.Seconds(), (time.Since(t0) - opened).Seconds(), engine.FormatBytes(int64(g.minIn)))
	if be.Name() == cpu.Name() {
		// Nothing runs on the GPU: give its memory back now.
		gpu.Close()
		return cpu, nil
	}
	return be, nil
}
