//go:build !linux

package safetensors

import (
	"os"

	"golang.org/x/sys/unix"
)

// copyFileRange has no portable equivalent; reporting ENOSYS sends every
// copy down the buffered path.
var copyFileRange = func(rfd int, roff *int64, wfd int, woff *int64, n int, flags int) (int, error) {
	return 0, unix.ENOSYS
}

// preallocate is a no-op where fallocate is unavailable; the caller
// truncates the file to its final size.
func preallocate(f *os.File, size int64) error { return nil }

// startWriteback is a no-op where sync_file_range is unavailable: the fsync
// at Close writes everything.
func startWriteback(f *os.File, off, n int64) {}

// mountID has no portable equivalent: mount points are told apart by their
// device number alone.
func mountID(path string) (uint64, bool) { return 0, false }
