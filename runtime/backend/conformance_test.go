package backend_test

import (
	"testing"

	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/backend/backendtest"
)

// TestCPUConformance runs the checks every backend passes on the CPU
// backend with many workers against one worker: the parallel split must not
// change a byte. It also keeps backendtest exercised on machines without a
// GPU, where the CUDA tests skip.
func TestCPUConformance(t *testing.T) {
	backendtest.All(t, backend.CPU(8), backend.CPU(1), 7)
}
