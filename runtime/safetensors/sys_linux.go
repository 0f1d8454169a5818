package safetensors

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// copyFileRange is the kernel copy; a variable so tests can force the
// buffered fallback.
var copyFileRange = unix.CopyFileRange

// preallocate reserves size bytes for f so that a full disk fails now rather
// than halfway through a conversion. Filesystems without fallocate are fine:
// the caller truncates to size either way.
func preallocate(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := sc.Control(func(fd uintptr) {
		for {
			ferr = unix.Fallocate(int(fd), 0, 0, size)
			if ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if errors.Is(ferr, unix.EOPNOTSUPP) || errors.Is(ferr, unix.ENOSYS) || errors.Is(ferr, unix.EINVAL) {
		return nil
	}
	return ferr
}
