package safetensors

import (
	"errors"
	"syscall"
)

// Large writes go to the device directly (O_DIRECT) where the filesystem
// allows it: on the machines measured (docs/performance.md), copying
// gigabytes into the page cache and writing them back cost more than the
// disk itself, and a preallocated file made buffered write-back slower
// still. Direct transfers need the file offset, the length and the memory
// aligned (directAlign covers the logical block size of common devices), so
// a write is cut in three: the unaligned head and tail go through the page
// cache, the aligned body is copied into page-aligned bounce buffers and
// written from there. A page is thus written either directly or through the
// cache, never both: neighbouring writes only meet in the partial pages at
// their ends, which both send through the cache. Close's fsync makes both
// durable. The first EINVAL (a device with larger blocks, a filesystem that
// accepted O_DIRECT at open but not for this write) turns direct writes off
// for the file.

const (
	directAlign = 4096
	// directMin is the smallest write worth sending directly.
	directMin = 256 << 10
	// bounceSize is the length of a full bounce buffer; a shorter write
	// gets one of its own length.
	bounceSize = 4 << 20
	// KeptBuffers is how many full bounce buffers are kept for reuse across
	// writers, outside any write: KeptBuffers*bounceSize bytes at most.
	KeptBuffers = 4
)

// WriteBuffer is the memory a write of n bytes takes beside its data while
// it runs: the bounce buffer a direct write copies through, none for a
// write through the page cache. A caller that budgets memory reserves it
// (the writer cannot, and a bounce buffer per write in flight adds up).
func WriteBuffer(n int64) int64 {
	if n < directMin {
		return 0
	}
	return min(bounceSize, (n+directAlign-1)/directAlign*directAlign)
}

// bounces keeps a few full bounce buffers for reuse across writers.
var bounces = make(chan []byte, KeptBuffers)

// getBounce returns a page-aligned buffer of min(n, bounceSize) bytes
// outside the Go heap (n a multiple of directAlign), or nil where none can
// be mapped.
func getBounce(n int64) []byte {
	if n < bounceSize {
		return allocMapped(int(n))
	}
	select {
	case b := <-bounces:
		return b
	default:
		return allocMapped(bounceSize)
	}
}

func putBounce(b []byte) {
	if len(b) < bounceSize {
		freeMapped(b)
		return
	}
	select {
	case bounces <- b:
	default:
		freeMapped(b)
	}
}

// writeParts writes parts back to back from absolute offset abs.
func (w *Writer) writeParts(abs int64, parts [][]byte) error {
	var n int64
	for _, p := range parts {
		n += int64(len(p))
	}
	if w.d == nil || n < directMin || w.noDirect.Load() {
		return w.writeCached(abs, parts, n)
	}
	a := (abs + directAlign - 1) / directAlign * directAlign
	b := (abs + n) / directAlign * directAlign
	if b-a < directMin/2 {
		return w.writeCached(abs, parts, n)
	}
	c := partCursor{parts: parts}
	if err := w.writeCached(abs, c.take(a-abs), a-abs); err != nil {
		return err
	}
	if err := w.writeDirect(a, &c, b-a); err != nil {
		return err
	}
	return w.writeCached(b, c.take(abs+n-b), abs+n-b)
}

// writeCached writes through the page cache.
func (w *Writer) writeCached(abs int64, parts [][]byte, n int64) error {
	if n == 0 {
		return nil
	}
	if err := pwritev(w.f, parts, abs); err != nil {
		return err
	}
	if w.d == nil {
		startWriteback(w.f, abs, n)
	}
	return nil
}

// writeDirect writes the next n bytes of c at abs through bounce buffers;
// abs and n are multiples of directAlign.
func (w *Writer) writeDirect(abs int64, c *partCursor, n int64) error {
	buf := getBounce(n)
	if buf == nil {
		return w.writeCached(abs, c.take(n), n)
	}
	defer putBounce(buf)
	for n > 0 {
		k := min(n, int64(len(buf)))
		c.copyTo(buf[:k])
		if !w.noDirect.Load() {
			_, err := w.d.WriteAt(buf[:k], abs)
			if err == nil {
				abs, n = abs+k, n-k
				continue
			}
			if !errors.Is(err, syscall.EINVAL) {
				return err
			}
			w.noDirect.Store(true)
		}
		if err := w.writeCached(abs, [][]byte{buf[:k]}, k); err != nil {
			return err
		}
		abs, n = abs+k, n-k
	}
	return nil
}

// partCursor reads a list of byte slices as one stream.
type partCursor struct {
	parts [][]byte
	i     int // current part
	off   int // bytes of parts[i] consumed
}

// take returns the next n bytes as slices of the parts (no copy).
func (c *partCursor) take(n int64) [][]byte {
	var out [][]byte
	for n > 0 {
		p := c.parts[c.i][c.off:]
		if int64(len(p)) > n {
			out = append(out, p[:n])
			c.off += int(n)
			return out
		}
		out = append(out, p)
		n -= int64(len(p))
		c.i, c.off = c.i+1, 0
	}
	return out
}

// copyTo fills dst with the next len(dst) bytes.
func (c *partCursor) copyTo(dst []byte) {
	for len(dst) > 0 {
		k := copy(dst, c.parts[c.i][c.off:])
		dst = dst[k:]
		c.off += k
		if c.off == len(c.parts[c.i]) {
			c.i, c.off = c.i+1, 0
		}
	}
}
