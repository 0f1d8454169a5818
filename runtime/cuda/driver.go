package cuda

import (
	"fmt"
	"unsafe"
)

// Handles of the CUDA driver API. CUdevice is an int, CUdeviceptr an
// unsigned long long, the others opaque pointers.
type (
	cuResult   int32
	cuDevice   int32
	cuContext  uintptr
	cuModule   uintptr
	cuFunction uintptr
	cuStream   uintptr
	devPtr     uint64
)

const (
	cudaSuccess cuResult = 0

	// CUdevice_attribute values.
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76

	// CUjit_option values for cuModuleLoadDataEx.
	jitErrorLogBuffer          = 5
	jitErrorLogBufferSizeBytes = 6

	// cuStreamCreate flag: no implicit synchronization with stream 0.
	streamNonBlocking = 1
)

// driverLibs are the sonames tried for the CUDA driver. libcuda.so.1 is the
// one the driver installs; libcuda.so only exists with a toolkit.
var driverLibs = []string{"libcuda.so.1", "libcuda.so"}

// driver is the subset of the CUDA driver API the backend calls, bound at run
// time with purego. Every function returns a CUresult.
type driver struct {
	handle uintptr
	lib    string

	cuInit               func(flags uint32) cuResult
	cuDriverGetVersion   func(version *int32) cuResult
	cuDeviceGetCount     func(count *int32) cuResult
	cuDeviceGet          func(dev *cuDevice, ordinal int32) cuResult
	cuDeviceGetName      func(name *byte, length int32, dev cuDevice) cuResult
	cuDeviceGetAttribute func(value *int32, attr int32, dev cuDevice) cuResult

	cuCtxCreate               func(ctx *cuContext, flags uint32, dev cuDevice) cuResult
	cuCtxDestroy              func(ctx cuContext) cuResult
	cuDevicePrimaryCtxRetain  func(ctx *cuContext, dev cuDevice) cuResult
	cuDevicePrimaryCtxRelease func(dev cuDevice) cuResult
	cuCtxSetCurrent           func(ctx cuContext) cuResult

	cuModuleLoadDataEx  func(mod *cuModule, image unsafe.Pointer, numOptions uint32, options *int32, optionValues *uintptr) cuResult
	cuModuleUnload      func(mod cuModule) cuResult
	cuModuleGetFunction func(fn *cuFunction, mod cuModule, name string) cuResult

	cuMemAlloc     func(ptr *devPtr, size uintptr) cuResult
	cuMemFree      func(ptr devPtr) cuResult
	cuMemAllocHost func(ptr *unsafe.Pointer, size uintptr) cuResult
	cuMemFreeHost  func(ptr unsafe.Pointer) cuResult

	cuMemcpyHtoDAsync func(dst devPtr, src unsafe.Pointer, size uintptr, stream cuStream) cuResult
	cuMemcpyDtoHAsync func(dst unsafe.Pointer, src devPtr, size uintptr, stream cuStream) cuResult

	cuStreamCreate      func(stream *cuStream, flags uint32) cuResult
	cuStreamDestroy     func(stream cuStream) cuResult
	cuStreamSynchronize func(stream cuStream) cuResult

	cuLaunchKernel func(fn cuFunction, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedMem uint32,
		stream cuStream, params unsafe.Pointer, extra unsafe.Pointer) cuResult

	cuGetErrorName   func(res cuResult, str **byte) cuResult
	cuGetErrorString func(res cuResult, str **byte) cuResult

	// primaryCtx is set when the library lacks cuCtxCreate_v2 and the
	// device's primary context is used instead.
	primaryCtx bool
}

// loadDriver opens libcuda and binds every function the backend uses. The
// versioned (_v2) entry points are the ones the driver's header maps the
// plain names to; the plain ones are the 32-bit-size legacy ABI.
func loadDriver() (*driver, error) {
	h, lib, err := openLibrary(driverLibs...)
	if err != nil {
		return nil, fmt.Errorf("CUDA driver not found: %w", err)
	}
	d := &driver{handle: h, lib: lib}
	syms := []struct {
		name string
		fptr any
	}{
		{"cuInit", &d.cuInit},
		{"cuDriverGetVersion", &d.cuDriverGetVersion},
		{"cuDeviceGetCount", &d.cuDeviceGetCount},
		{"cuDeviceGet", &d.cuDeviceGet},
		{"cuDeviceGetName", &d.cuDeviceGetName},
		{"cuDeviceGetAttribute", &d.cuDeviceGetAttribute},
		{"cuCtxSetCurrent", &d.cuCtxSetCurrent},
		{"cuModuleLoadDataEx", &d.cuModuleLoadDataEx},
		{"cuModuleUnload", &d.cuModuleUnload},
		{"cuModuleGetFunction", &d.cuModuleGetFunction},
		{"cuMemAlloc_v2", &d.cuMemAlloc},
		{"cuMemFree_v2", &d.cuMemFree},
		{"cuMemAllocHost_v2", &d.cuMemAllocHost},
		{"cuMemFreeHost", &d.cuMemFreeHost},
		{"cuMemcpyHtoDAsync_v2", &d.cuMemcpyHtoDAsync},
		{"cuMemcpyDtoHAsync_v2", &d.cuMemcpyDtoHAsync},
		{"cuStreamCreate", &d.cuStreamCreate},
		{"cuStreamDestroy_v2", &d.cuStreamDestroy},
		{"cuStreamSynchronize", &d.cuStreamSynchronize},
		{"cuLaunchKernel", &d.cuLaunchKernel},
		{"cuGetErrorName", &d.cuGetErrorName},
		{"cuGetErrorString", &d.cuGetErrorString},
	}
	if hasSymbol(h, "cuCtxCreate_v2") {
		syms = append(syms,
			struct {
				name string
				fptr any
			}{"cuCtxCreate_v2", &d.cuCtxCreate},
			struct {
				name string
				fptr any
			}{"cuCtxDestroy_v2", &d.cuCtxDestroy})
	} else {
		d.primaryCtx = true
		syms = append(syms,
			struct {
				name string
				fptr any
			}{"cuDevicePrimaryCtxRetain", &d.cuDevicePrimaryCtxRetain},
			struct {
				name string
				fptr any
			}{"cuDevicePrimaryCtxRelease_v2", &d.cuDevicePrimaryCtxRelease})
	}
	for _, s := range syms {
		if err := symbol(h, lib, s.name, s.fptr); err != nil {
			closeLibrary(h)
			return nil, fmt.Errorf("CUDA driver %s is unusable: %w", lib, err)
		}
	}
	return d, nil
}

// cString reads a NUL-terminated C string owned by the library.
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	var n int
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// DriverError is a failed CUDA driver call.
type DriverError struct {
	Call   string // the driver function and, where useful, what it was for
	Code   int    // the CUresult
	Name   string // e.g. CUDA_ERROR_OUT_OF_MEMORY
	Detail string // cuGetErrorString's text
}

func (e *DriverError) Error() string {
	name := e.Name
	if name == "" {
		name = fmt.Sprintf("CUresult %d", e.Code)
	}
	if e.Detail != "" {
		return fmt.Sprintf("cuda: %s: %s (%s)", e.Call, name, e.Detail)
	}
	return fmt.Sprintf("cuda: %s: %s", e.Call, name)
}

// check turns a CUresult into nil or a *DriverError naming the call.
func (d *driver) check(res cuResult, call string, args ...any) error {
	if res == cudaSuccess {
		return nil
	}
	if len(args) > 0 {
		call = fmt.Sprintf(call, args...)
	}
	e := &DriverError{Call: call, Code: int(res)}
	var p *byte
	if d.cuGetErrorName != nil && d.cuGetErrorName(res, &p) == cudaSuccess {
		e.Name = cString(p)
	}
	p = nil
	if d.cuGetErrorString != nil && d.cuGetErrorString(res, &p) == cudaSuccess {
		e.Detail = cString(p)
	}
	return e
}
