package cuda

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// truncatedMapping maps a registered file of n bytes and truncates it to
// its first eighth: reading past that faults.
func truncatedMapping(t *testing.T, n int) ([]byte, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.safetensors")
	if err := os.WriteFile(path, make([]byte, n), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mm, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	unregister := fault.Register(mm, path, nil)
	t.Cleanup(func() {
		unregister()
		unix.Munmap(mm)
	})
	if err := os.Truncate(path, int64(n/8)); err != nil {
		t.Fatal(err)
	}
	return mm, path
}

func wantFault(t *testing.T, err error, path string) {
	t.Helper()
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Path != path {
		t.Fatalf("reading a truncated mapping: %v, want a *fault.Error naming %s", err, path)
	}
}

// parCopy's goroutines hand a fault to the caller.
func TestParCopyFault(t *testing.T) {
	src, path := truncatedMapping(t, 32<<20)
	dst := make([]byte, len(src))
	wantFault(t, fault.Guard(func() error { parCopy(dst, src); return nil }), path)
}

// The pipeline fills pinned memory from the input on the backend's own
// goroutine: a fault there comes back as the call's error, and the
// backend goes on working.
func TestEmulatedFault(t *testing.T) {
	withEmulated(t, 64<<10, func(b *Backend) {
		src, path := truncatedMapping(t, 1<<20)
		dst := make([]byte, len(src)/2)
		wantFault(t, b.Convert(dst, tensor.BF16, src, tensor.F32), path)
		ok := make([]byte, 4<<10)
		if err := b.Convert(make([]byte, len(ok)/2), tensor.BF16, ok, tensor.F32); err != nil {
			t.Fatalf("after a fault: %v", err)
		}
	})
}
