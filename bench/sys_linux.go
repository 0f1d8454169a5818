package main

import (
	"os"
	"syscall"
)

// writeDirect writes n bytes (rounded up to 4 KiB) sequentially to a new
// file at path with O_DIRECT from a page-aligned 1 MiB buffer, then fsyncs
// it: the device's pace, without the page cache.
func writeDirect(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_DIRECT, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf, err := syscall.Mmap(-1, 0, 1<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return err
	}
	defer syscall.Munmap(buf)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for left := (n + 4095) &^ 4095; left > 0; {
		k, err := f.Write(buf[:min(left, int64(len(buf)))])
		if err != nil {
			return err
		}
		left -= int64(k)
	}
	return f.Sync()
}

// memTotal is the machine's RAM in bytes.
func memTotal() int64 {
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}
