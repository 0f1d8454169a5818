package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// profiled runs f under a CPU profile written to the file the hidden
// MAPPER_CPUPROFILE environment variable names (for performance work:
// go tool pprof bench/bin/mapper FILE); without it f just runs.
func profiled(f func() int) int {
	path := os.Getenv("MAPPER_CPUPROFILE")
	if path == "" {
		return f()
	}
	out, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mapper: MAPPER_CPUPROFILE: %v\n", err)
		return f()
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		fmt.Fprintf(os.Stderr, "mapper: MAPPER_CPUPROFILE: %v\n", err)
		return f()
	}
	defer pprof.StopCPUProfile()
	return f()
}
