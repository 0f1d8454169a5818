package main

import (
	"fmt"
	"io"

	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/cuda"
)

// backendNames are the values --backend takes, each handled by selectBackend.
var backendNames = []string{"cpu", "auto", "cuda"}

// selectBackend returns the backend --backend names. auto uses a GPU when
// one can be opened and the CPU otherwise; cuda without a usable GPU is an
// error. With a GPU, inputs under cuda.MinBytes still run on the CPU, where
// they finish before a transfer would.
func selectBackend(name string, workers int, stderr io.Writer) (backend.Backend, error) {
	cpu := backend.CPU(workers)
	switch name {
	case "cpu":
		return cpu, nil
	case "cuda", "auto":
		gpu, err := cuda.New()
		if err != nil {
			if name == "cuda" {
				return nil, fmt.Errorf("--backend cuda: %v", err)
			}
			return cpu, nil
		}
		return backend.Route(gpu, cpu, cuda.MinBytes), nil
	}
	return nil, fmt.Errorf("--backend %q: want auto, cpu or cuda", name)
}
