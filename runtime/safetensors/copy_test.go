package safetensors

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// withCopyFileRange swaps the kernel copy for the duration of a test.
func withCopyFileRange(t *testing.T, fn func(rfd int, roff *int64, wfd int, woff *int64, n int, flags int) (int, error)) {
	t.Helper()
	saved := copyFileRange
	copyFileRange = fn
	t.Cleanup(func() { copyFileRange = saved })
}

func TestCopyRange(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 8))
	src := make([]byte, 3<<20+17) // several fallback buffers' worth, not a multiple
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	srcPath := writeFile(t, dir, "src", src)

	var calls atomic.Int64
	real := copyFileRange
	modes := []struct {
		name string
		fn   func(int, *int64, int, *int64, int, int) (int, error)
	}{
		{"kernel", nil},
		{"EXDEV fallback", func(int, *int64, int, *int64, int, int) (int, error) { calls.Add(1); return 0, unix.EXDEV }},
		{"EINVAL fallback", func(int, *int64, int, *int64, int, int) (int, error) { calls.Add(1); return 0, unix.EINVAL }},
		{"ENOSYS fallback", func(int, *int64, int, *int64, int, int) (int, error) { calls.Add(1); return 0, unix.ENOSYS }},
		{"EOPNOTSUPP fallback", func(int, *int64, int, *int64, int, int) (int, error) { calls.Add(1); return 0, unix.EOPNOTSUPP }},
		{"no progress fallback", func(int, *int64, int, *int64, int, int) (int, error) { calls.Add(1); return 0, nil }},
		{"partial then fallback", func(rfd int, roff *int64, wfd int, woff *int64, n int, flags int) (int, error) {
			// Copy a little for real, then decline: the buffered path must
			// resume exactly where the kernel stopped.
			if calls.Add(1) > 3 {
				return 0, unix.EXDEV
			}
			return real(rfd, roff, wfd, woff, min(n, 4097), flags)
		}},
		{"EINTR retried", func(rfd int, roff *int64, wfd int, woff *int64, n int, flags int) (int, error) {
			if calls.Add(1)%2 == 1 {
				return 0, unix.EINTR
			}
			return real(rfd, roff, wfd, woff, n, flags)
		}},
	}
	ranges := []struct{ srcOff, dstOff, n int64 }{
		{0, 0, int64(len(src))},
		{5, 1000, 1 << 20},
		{12345, 7, int64(len(src)) - 12345},
		{100, 100, 0},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			if m.fn != nil {
				withCopyFileRange(t, m.fn)
			}
			calls.Store(0)
			for i, r := range ranges {
				s, err := os.Open(srcPath)
				if err != nil {
					t.Fatal(err)
				}
				dstPath := filepath.Join(dir, m.name+itoa(i))
				d, err := os.Create(dstPath)
				if err != nil {
					t.Fatal(err)
				}
				if err := CopyRange(d, r.dstOff, s, r.srcOff, r.n); err != nil {
					t.Fatalf("range %d: %v", i, err)
				}
				s.Close()
				d.Close()
				got, _ := os.ReadFile(dstPath)
				if int64(len(got)) != r.dstOff+r.n && r.n > 0 {
					t.Fatalf("range %d: dst is %d bytes, want %d", i, len(got), r.dstOff+r.n)
				}
				if r.n > 0 && !bytes.Equal(got[r.dstOff:], src[r.srcOff:r.srcOff+r.n]) {
					t.Fatalf("range %d: copied bytes differ", i)
				}
			}
			if m.fn != nil && calls.Load() == 0 {
				t.Error("the replaced copy_file_range was never called")
			}
		})
	}
}

func TestCopyRangeErrors(t *testing.T) {
	dir := t.TempDir()
	srcPath := writeFile(t, dir, "src", make([]byte, 100))
	s, _ := os.Open(srcPath)
	defer s.Close()
	d, _ := os.Create(filepath.Join(dir, "dst"))
	defer d.Close()

	// A real I/O error from the kernel is reported, not papered over.
	withCopyFileRange(t, func(int, *int64, int, *int64, int, int) (int, error) { return 0, unix.EIO })
	if err := CopyRange(d, 0, s, 0, 10); !errors.Is(err, unix.EIO) || !strings.Contains(err.Error(), srcPath) {
		t.Errorf("CopyRange with EIO = %v", err)
	}
	// A source shorter than claimed: the kernel copies up to EOF, then 0
	// bytes, and the fallback reports the short read.
	copyFileRange = unix.CopyFileRange
	if err := CopyRange(d, 0, s, 50, 100); err == nil || !strings.Contains(err.Error(), "read") {
		t.Errorf("CopyRange past the source's end = %v", err)
	}
	if err := CopyRange(d, -1, s, 0, 1); err == nil {
		t.Error("CopyRange with a negative offset succeeded")
	}
}
