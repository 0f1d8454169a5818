package safetensors

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/mapper-dev/mapper/runtime/quote"
)

// copyChunk bounds one copy_file_range call; the kernel caps a call near
// 2 GiB anyway, and int is the syscall's length type.
const copyChunk = 1 << 30

// CopyBuffer is the memory a CopyRange takes while it runs, at most: the
// buffer of the pread/pwrite fallback. It is mapped for the call and
// unmapped after (a sync.Pool kept one per copy that ever ran at once, in
// the Go heap, beyond any budget); one call copies a whole tensor, so the
// mapping costs little beside it.
const CopyBuffer = 1 << 20

// CopyRange copies n bytes from src at srcOff to dst at dstOff without
// touching either file's position, so concurrent calls on the same files are
// safe. It lets the kernel copy (copy_file_range: no trip through user space,
// and a reflink on filesystems that share extents), and falls back to
// pread/pwrite through a pooled buffer where the kernel cannot
// (cross-filesystem, unsupported, or a copy that makes no progress).
func CopyRange(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) error {
	if n < 0 || dstOff < 0 || srcOff < 0 {
		return fmt.Errorf("safetensors: copy %d bytes from %s@%d to %s@%d: negative argument",
			n, quote.Name(src.Name()), srcOff, quote.Name(dst.Name()), dstOff)
	}
	done, err := copyKernel(dst, dstOff, src, srcOff, n)
	if err != nil {
		return fmt.Errorf("safetensors: copy %d bytes from %s@%d to %s@%d: %w",
			n, quote.Name(src.Name()), srcOff, quote.Name(dst.Name()), dstOff, err)
	}
	if done == n {
		return nil
	}
	return copyBuffered(dst, dstOff+done, src, srcOff+done, n-done)
}

// copyKernel copies with copy_file_range until done or until the kernel
// declines, and reports how far it got. Only errors that a buffered copy
// would not fix are returned.
func copyKernel(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	sc, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	dc, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	var copied int64
	var opErr error
	// Control keeps both descriptors alive (not closed underneath us) for the
	// duration of the copy.
	cerr := sc.Control(func(sfd uintptr) {
		cerr := dc.Control(func(dfd uintptr) {
			for copied < n {
				roff, woff := srcOff+copied, dstOff+copied
				m, err := copyFileRange(int(sfd), &roff, int(dfd), &woff, int(min(n-copied, copyChunk)), 0)
				switch {
				case err == unix.EINTR:
					continue
				case err != nil:
					if !kernelDeclined(err) {
						opErr = err
					}
					return
				case m <= 0:
					// No progress: a special file, or a source shorter than
					// claimed. The buffered path copies or says which.
					return
				}
				copied += int64(m)
			}
		})
		if cerr != nil {
			opErr = cerr
		}
	})
	if cerr != nil {
		return copied, cerr
	}
	return copied, opErr
}

// kernelDeclined reports the copy_file_range errors that mean "not here",
// not "the copy failed".
func kernelDeclined(err error) bool {
	return errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM)
}

func copyBuffered(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) error {
	buf := allocMapped(CopyBuffer)
	if buf == nil {
		buf = make([]byte, CopyBuffer)
	} else {
		defer freeMapped(buf)
	}
	for n > 0 {
		chunk := buf[:min(n, int64(len(buf)))]
		if _, err := readFullAt(src, chunk, srcOff); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				// The caller sized the copy from the file: it shrank since.
				return fmt.Errorf("safetensors: copy: %s ends before byte %d: the file shrank while being read; inputs must not change during a conversion",
					quote.Name(src.Name()), srcOff+int64(len(chunk)))
			}
			return fmt.Errorf("safetensors: copy: read %d bytes of %s at %d: %w", len(chunk), quote.Name(src.Name()), srcOff, quote.PathError(err))
		}
		if _, err := dst.WriteAt(chunk, dstOff); err != nil {
			return fmt.Errorf("safetensors: copy: %w", quote.PathError(err))
		}
		n -= int64(len(chunk))
		srcOff += int64(len(chunk))
		dstOff += int64(len(chunk))
	}
	return nil
}
