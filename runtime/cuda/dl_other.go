//go:build !(linux && (amd64 || arm64))

package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

const dlSupported = false

var errNoDL = fmt.Errorf("the cuda backend loads the CUDA driver at run time and is only supported on linux/amd64 and linux/arm64, not %s/%s", runtime.GOOS, runtime.GOARCH)

func openLibrary(names ...string) (uintptr, string, error) {
	return 0, "", fmt.Errorf("cannot load %s: %w", strings.Join(names, ", "), errNoDL)
}

func closeLibrary(uintptr) {}

func symbol(_ uintptr, lib, name string, _ any) error {
	return errors.Join(fmt.Errorf("%s: symbol %s", lib, name), errNoDL)
}

func hasSymbol(uintptr, string) bool { return false }
