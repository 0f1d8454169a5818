//go:build unix

package engine

import "golang.org/x/sys/unix"

// mmapMin is the size from which chunk buffers are mapped from the kernel
// rather than taken from the Go heap.
const mmapMin = 1 << 20

// allocBuffer returns n bytes of working memory. Large buffers are anonymous
// mappings: unmapping one gives its pages back to the system at once,
// where a dead heap buffer would stay resident until the garbage collector
// and the scavenger got to it. The kernel hands out zeroed pages.
func allocBuffer(n int64) []byte {
	if n < mmapMin {
		return make([]byte, n)
	}
	b, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return make([]byte, n)
	}
	return b
}

// freeBuffer gives back a buffer from allocBuffer. Heap buffers (small
// ones, or a large one whose mapping failed: Munmap does not know it and
// refuses) are left to the garbage collector.
func freeBuffer(b []byte) {
	if len(b) >= mmapMin {
		_ = unix.Munmap(b)
	}
}
