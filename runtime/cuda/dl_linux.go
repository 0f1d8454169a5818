//go:build linux && (amd64 || arm64)

package cuda

import (
	"fmt"
	"strings"

	"github.com/ebitengine/purego"
)

// dlSupported reports whether this platform can load shared libraries at
// run time (purego without cgo).
const dlSupported = true

// openLibrary tries each name in turn with dlopen and returns the first that
// loads, with its handle. The error names every library that was tried and
// the loader's message for each.
func openLibrary(names ...string) (handle uintptr, name string, err error) {
	var msgs []string
	for _, n := range names {
		h, e := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if e == nil {
			return h, n, nil
		}
		msgs = append(msgs, fmt.Sprintf("%s: %v", n, e))
	}
	return 0, "", fmt.Errorf("cannot load %s (%s)", strings.Join(names, ", "), strings.Join(msgs, "; "))
}

func closeLibrary(handle uintptr) {
	if handle != 0 {
		_ = purego.Dlclose(handle)
	}
}

// symbol binds the C function name of the library to *fptr (a pointer to a
// Go func variable whose signature mirrors the C one). Unlike
// purego.RegisterLibFunc it returns an error for a missing symbol instead of
// panicking.
func symbol(handle uintptr, lib, name string, fptr any) error {
	addr, err := purego.Dlsym(handle, name)
	if err != nil || addr == 0 {
		return fmt.Errorf("%s: symbol %s not found: %v", lib, name, err)
	}
	purego.RegisterFunc(fptr, addr)
	return nil
}

// hasSymbol reports whether the library exports name.
func hasSymbol(handle uintptr, name string) bool {
	addr, err := purego.Dlsym(handle, name)
	return err == nil && addr != 0
}
