package backend

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// TestParallelFault: the workers of a parallel kernel read the input on
// their own goroutines; when it is a mapped file that was truncated, the
// fault reaches the caller's guard as an error naming the file instead of
// crashing the process from a worker.
func TestParallelFault(t *testing.T) {
	const n = 4 << 20 // F32 elements: many chunks, so several workers
	path := filepath.Join(t.TempDir(), "in.safetensors")
	if err := os.WriteFile(path, make([]byte, 4*n), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mm, err := unix.Mmap(int(f.Fd()), 0, 4*n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mm)
	defer fault.Register(mm, path, nil)()
	// Keep the first eighth: the fault comes from a worker, not the first
	// chunk alone.
	if err := os.Truncate(path, int64(len(mm)/8)); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 2*n)
	err = fault.Guard(func() error { return CPU(8).Convert(dst, tensor.BF16, mm, tensor.F32) })
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Path != path {
		t.Fatalf("converting a truncated mapping: %v, want a *fault.Error naming %s", err, path)
	}
}
