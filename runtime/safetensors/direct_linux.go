package safetensors

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens path a second time for direct I/O (O_DIRECT: transfers
// go from user memory to the device, bypassing the page cache), or returns
// nil where the filesystem refuses it.
func openDirect(path string) *os.File {
	d, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return d
}

// allocMapped returns n bytes of page-aligned memory outside the Go heap.
func allocMapped(n int) []byte {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil
	}
	return b
}

func freeMapped(b []byte) { _ = unix.Munmap(b) }

// pwritev writes parts back to back at off (pwritev, up to IOV_MAX pieces a
// call).
func pwritev(f *os.File, parts [][]byte, off int64) error {
	if len(parts) == 1 {
		_, err := f.WriteAt(parts[0], off)
		return err
	}
	parts = append([][]byte(nil), parts...) // trimmed below; the caller's stays intact
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	cerr := sc.Control(func(fd uintptr) {
		for len(parts) > 0 {
			if len(parts[0]) == 0 {
				parts = parts[1:]
				continue
			}
			n, err := unix.Pwritev(int(fd), parts[:min(len(parts), 1024)], off)
			switch {
			case err == unix.EINTR:
				continue
			case err != nil:
				werr = &os.PathError{Op: "pwritev", Path: f.Name(), Err: err}
				return
			case n == 0:
				werr = io.ErrShortWrite
				return
			}
			off += int64(n)
			for n > 0 {
				if n >= len(parts[0]) {
					n -= len(parts[0])
					parts = parts[1:]
				} else {
					parts[0] = parts[0][n:]
					n = 0
				}
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return werr
}
