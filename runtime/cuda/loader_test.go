package cuda

// Tests that need no GPU: the run-time loader and the errors New and
// Available give where the driver or NVRTC is missing.

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestLoaderMissingLibrary(t *testing.T) {
	const name = "libmapper-does-not-exist.so.7"
	_, _, err := openLibrary(name, "libmapper-neither.so")
	if err == nil {
		t.Fatal("opening a nonexistent library: no error")
	}
	for _, want := range []string{name, "libmapper-neither.so"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestLoaderCallsC(t *testing.T) {
	if !dlSupported {
		t.Skipf("no run-time loader on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	h, name, err := openLibrary("libc.so.6")
	if err != nil {
		t.Skipf("no libc.so.6 to test the loader with: %v", err)
	}
	var strlen func(s string) uintptr
	if err := symbol(h, name, "strlen", &strlen); err != nil {
		t.Fatal(err)
	}
	if n := strlen("mapper"); n != 6 {
		t.Errorf("strlen via purego = %d, want 6", n)
	}
	var missing func()
	err = symbol(h, name, "mapper_no_such_symbol", &missing)
	if err == nil || !strings.Contains(err.Error(), "mapper_no_such_symbol") {
		t.Errorf("binding a missing symbol: %v", err)
	}
	if hasSymbol(h, "mapper_no_such_symbol") || !hasSymbol(h, "strlen") {
		t.Error("hasSymbol is wrong")
	}
}

// Where there is no driver (CI, this package's development machine) New and
// Available must fail cleanly, naming libcuda.
func TestNewWithoutDriver(t *testing.T) {
	if _, _, err := openLibrary(driverLibs...); err == nil {
		t.Skip("a CUDA driver is installed; the GPU tests cover New")
	}
	b, err := New()
	if err == nil {
		b.Close()
		t.Fatal("New without a driver: no error")
	}
	if !strings.Contains(err.Error(), "libcuda.so.1") {
		t.Errorf("New error %q does not name libcuda.so.1", err)
	}
	if _, err2 := Available(); err2 == nil || !strings.Contains(err2.Error(), "libcuda.so.1") {
		t.Errorf("Available error %v does not name libcuda.so.1", err2)
	}
}

func TestNVRTCMissingError(t *testing.T) {
	if _, _, err := openLibrary(nvrtcCandidates()...); err == nil {
		t.Skip("NVRTC is installed")
	}
	t.Setenv(EnvNVRTC, "/nonexistent/libnvrtc-mapper.so")
	_, err := loadNVRTC()
	if err == nil {
		t.Fatal("loadNVRTC without NVRTC: no error")
	}
	for _, want := range []string{"NVRTC not found", "libnvrtc.so.12", "libnvrtc.so.13", "/nonexistent/libnvrtc-mapper.so", "the cuda backend compiles its kernels with libnvrtc"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDriverErrorText(t *testing.T) {
	d := &driver{}
	if err := d.check(0, "cuInit"); err != nil {
		t.Fatalf("success is an error: %v", err)
	}
	err := d.check(2, "cuMemAlloc_v2(%d bytes)", 64)
	var de *DriverError
	if !errors.As(err, &de) || de.Code != 2 || !strings.Contains(err.Error(), "cuMemAlloc_v2(64 bytes)") ||
		!strings.Contains(err.Error(), "CUresult 2") {
		t.Errorf("check(2) = %v", err)
	}
}
