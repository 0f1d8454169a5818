//go:build unix

package synth

import (
	"os"
	"syscall"
)

// diskBytes is how much disk a file takes (its allocated blocks).
func diskBytes(st os.FileInfo) int64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Blocks * 512
	}
	return 0
}
