//go:build !linux

package safetensors

import "os"

// openDirect: direct I/O is only used on Linux.
func openDirect(path string) *os.File { return nil }

func allocMapped(n int) []byte { return nil }

func freeMapped(b []byte) {}

// pwritev writes parts back to back at off.
func pwritev(f *os.File, parts [][]byte, off int64) error {
	for _, p := range parts {
		if _, err := f.WriteAt(p, off); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return nil
}
