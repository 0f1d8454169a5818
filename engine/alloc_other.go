//go:build !unix

package engine

// allocBuffer returns n bytes of working memory from the Go heap.
func allocBuffer(n int64) []byte { return make([]byte, n) }

// freeBuffer leaves the buffer to the garbage collector.
func freeBuffer(b []byte) {}
