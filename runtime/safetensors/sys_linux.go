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

// startWriteback asks the kernel to start writing bytes [off, off+n) of f to
// disk now (sync_file_range with SYNC_FILE_RANGE_WRITE: it queues the dirty
// pages and returns, promising nothing about durability). Without it the
// pages wait for the flusher's thresholds, and a conversion's final fsync
// waits for gigabytes the disk could have taken while the CPU was busy.
// Advisory: an error only means the fsync does all the work.
func startWriteback(f *os.File, off, n int64) {
	if n <= 0 {
		return
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = sc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}

// mountID is the ID of the mount path is in (statx STATX_MNT_ID, Linux 5.8),
// or false where the kernel does not say; callers then rely on the device
// number alone.
func mountID(path string) (uint64, bool) {
	var sx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT, unix.STATX_MNT_ID, &sx); err != nil {
		return 0, false
	}
	return sx.Mnt_id, sx.Mask&unix.STATX_MNT_ID != 0
}
