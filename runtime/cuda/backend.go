package cuda

import (
	_ "embed"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/mapper-dev/mapper/runtime/backend"
)

//go:embed kernels.cu
var kernelSource string

// MinBytes is the input size below which callers should prefer the CPU
// backend: a call costs a few tens of microseconds of launch and
// synchronisation latency plus a round trip over PCIe, which only pays off
// once the transform moves about a megabyte or more. The backend itself is
// correct for every size, zero included.
const MinBytes = 1 << 20

// Startup is about what opening the backend costs before it does any work,
// rounded up: in mapper apply on an H200 New took 0.4 s (driver
// initialisation, context, NVRTC compiling kernels.cu) and a calibration
// (backend.Calibrate) 0.3 s; a test binary's first New, with a cold
// driver, took up to 2.2 s.
const Startup = 1000 * time.Millisecond

// chunkBytes is the capacity of each staging buffer (pinned host and device,
// input and output, per slot). A chunk never exceeds it, except for a
// transpose whose single (outer, a) row is larger, for which the buffers grow.
// (A variable only so that tests can make chunks small.)
var chunkBytes = 32 << 20

// auxBytes is a small area after each buffer for the encoder's error flag.
const auxBytes = 256

// Backend runs the heavy transforms on one CUDA device.
type Backend struct {
	reqs chan func()
	done chan struct{}

	mu     sync.RWMutex
	closed bool

	// compile turns kernels.cu into PTX for the device (compileKernels in
	// New: NVRTC, else the embedded PTX) and says which it used.
	compile     func(major, minor int) (ptx []byte, arch int, from string, err error)
	kernelsFrom string

	devName string
	ccMajor int
	ccMinor int
	arch    int

	// Owned by the worker goroutine.
	d      *driver
	dev    cuDevice
	ctx    cuContext
	mod    cuModule
	fns    map[string]cuFunction
	slots  [2]slot
	params unsafe.Pointer // pinned scratch for cuLaunchKernel's argument array
}

// slot is one staging set: pinned input and output buffers, their device
// counterparts, and the stream that runs their chunks in order.
type slot struct {
	stream  cuStream
	hostIn  unsafe.Pointer
	hostOut unsafe.Pointer
	devIn   devPtr
	devOut  devPtr
	capIn   int // usable bytes, auxBytes more are allocated
	capOut  int
}

var (
	driverOnce sync.Once
	driverLib  *driver
	driverErr  error

	nvrtcOnce sync.Once
	nvrtcLib  *nvrtc
	nvrtcErr  error
)

// The libraries are loaded once per process and never closed: unloading
// libcuda under live contexts is unsafe and reloading gains nothing.
func getDriver() (*driver, error) {
	driverOnce.Do(func() { driverLib, driverErr = loadDriver() })
	return driverLib, driverErr
}

func getNVRTC() (*nvrtc, error) {
	nvrtcOnce.Do(func() { nvrtcLib, nvrtcErr = loadNVRTC() })
	return nvrtcLib, nvrtcErr
}

// deviceInfo initialises the driver and describes device 0.
func deviceInfo(d *driver) (dev cuDevice, name string, major, minor int, err error) {
	if err = d.check(d.cuInit(0), "cuInit"); err != nil {
		return
	}
	var count int32
	if err = d.check(d.cuDeviceGetCount(&count), "cuDeviceGetCount"); err != nil {
		return
	}
	if count < 1 {
		err = errors.New("cuda: no CUDA device found (cuDeviceGetCount returned 0; check CUDA_VISIBLE_DEVICES)")
		return
	}
	if err = d.check(d.cuDeviceGet(&dev, 0), "cuDeviceGet(0)"); err != nil {
		return
	}
	var buf [256]byte
	if err = d.check(d.cuDeviceGetName(&buf[0], int32(len(buf)), dev), "cuDeviceGetName"); err != nil {
		return
	}
	name = cString(&buf[0])
	var v int32
	if err = d.check(d.cuDeviceGetAttribute(&v, attrComputeCapabilityMajor, dev), "cuDeviceGetAttribute(compute capability major)"); err != nil {
		return
	}
	major = int(v)
	if err = d.check(d.cuDeviceGetAttribute(&v, attrComputeCapabilityMinor, dev), "cuDeviceGetAttribute(compute capability minor)"); err != nil {
		return
	}
	minor = int(v)
	return
}

// DriverPresent reports whether the CUDA driver library can be loaded, which
// takes a dlopen and nothing else: a machine without it has no GPU to try.
func DriverPresent() bool {
	_, err := getDriver()
	return err == nil
}

// Available reports whether the CUDA backend can run here: it loads the
// driver and NVRTC (or checks the embedded PTX) and queries device 0,
// without creating a context or compiling anything. On success it
// describes the device, e.g. "NVIDIA H100 80GB HBM3 (compute 9.0, driver
// 12.8, nvrtc 12.6)"; otherwise the error says what is missing.
func Available() (string, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d, err := getDriver()
	if err != nil {
		return "", err
	}
	_, name, major, minor, err := deviceInfo(d)
	if err != nil {
		return "", err
	}
	var dv int32
	_ = d.cuDriverGetVersion(&dv)
	kernels := ""
	if n, err := getNVRTC(); err == nil {
		var nmaj, nmin int32
		_ = n.version(&nmaj, &nmin)
		kernels = fmt.Sprintf("nvrtc %d.%d", nmaj, nmin)
	} else {
		p, perr := embeddedKernels(d, major, minor)
		if perr != nil {
			return "", fmt.Errorf("%w; and %v", err, perr)
		}
		kernels = p.description
	}
	return fmt.Sprintf("%s (compute %d.%d, driver %d.%d, %s)", name, major, minor, dv/1000, dv%1000/10, kernels), nil
}

// New opens device 0: it loads the driver, creates a context, compiles the
// kernels with NVRTC (or loads the embedded PTX) and allocates the staging
// buffers. The error says which
// library is missing or which call failed.
func New() (*Backend, error) {
	d, err := getDriver()
	if err != nil {
		return nil, err
	}
	return start(d, func(major, minor int) ([]byte, int, string, error) { return compileKernels(d, major, minor) })
}

// compileKernels compiles kernels.cu with NVRTC for the device's
// architecture (or the newest older one NVRTC knows); without NVRTC it
// takes the embedded PTX, when the device and the driver can run it.
func compileKernels(d *driver, major, minor int) ([]byte, int, string, error) {
	nv, err := getNVRTC()
	if err != nil {
		p, perr := embeddedKernels(d, major, minor)
		if perr != nil {
			return nil, 0, "", fmt.Errorf("%w; and %v", err, perr)
		}
		return p.ptx, p.arch, p.description, nil
	}
	arch := nv.pickArch(major, minor)
	ptx, err := nv.compile(kernelSource, "kernels.cu", arch)
	if err != nil {
		return nil, arch, "", fmt.Errorf("cuda: compiling kernels.cu for compute_%d (device compute %d.%d): %w", arch, major, minor, err)
	}
	var nmaj, nmin int32
	_ = nv.version(&nmaj, &nmin)
	return ptx, arch, fmt.Sprintf("nvrtc %d.%d, compute_%d", nmaj, nmin, arch), nil
}

// embeddedKernels is the embedded PTX if it can run on the device under
// driver d.
func embeddedKernels(d *driver, major, minor int) (*prebuiltPTX, error) {
	p, err := parsePTX(embeddedPTXFile, kernelSource)
	if err != nil {
		return nil, err
	}
	var dv int32
	if err := d.check(d.cuDriverGetVersion(&dv), "cuDriverGetVersion"); err != nil {
		return nil, err
	}
	if err := p.usableOn(major, minor, dv); err != nil {
		return nil, err
	}
	return p, nil
}

// start creates a backend on driver d and waits for its worker to set up.
func start(d *driver, compile func(major, minor int) ([]byte, int, string, error)) (*Backend, error) {
	b := &Backend{
		reqs:    make(chan func()),
		done:    make(chan struct{}),
		d:       d,
		fns:     map[string]cuFunction{},
		compile: compile,
	}
	initErr := make(chan error, 1)
	go b.serve(initErr)
	if err := <-initErr; err != nil {
		<-b.done
		return nil, err
	}
	return b, nil
}

// serve is the worker: it owns the OS thread the context is current on and
// runs every request in turn until reqs is closed.
func (b *Backend) serve(initErr chan<- error) {
	runtime.LockOSThread()
	// The thread is not unlocked: it exits with the goroutine, taking any
	// per-thread driver state with it.
	defer close(b.done)
	if err := b.init(); err != nil {
		b.release()
		initErr <- err
		return
	}
	initErr <- nil
	for f := range b.reqs {
		f()
	}
	b.release()
}

func (b *Backend) init() error {
	d := b.d
	dev, name, major, minor, err := deviceInfo(d)
	if err != nil {
		return err
	}
	b.dev, b.devName, b.ccMajor, b.ccMinor = dev, name, major, minor
	// Compile before creating the context: a missing NVRTC is the most
	// likely failure and needs no cleanup.
	ptx, arch, from, err := b.compile(major, minor)
	if err != nil {
		return err
	}
	b.arch, b.kernelsFrom = arch, from
	if d.primaryCtx {
		if err := d.check(d.cuDevicePrimaryCtxRetain(&b.ctx, dev), "cuDevicePrimaryCtxRetain"); err != nil {
			return err
		}
	} else if err := d.check(d.cuCtxCreate(&b.ctx, 0, dev), "cuCtxCreate_v2"); err != nil {
		return err
	}
	if err := d.check(d.cuCtxSetCurrent(b.ctx), "cuCtxSetCurrent"); err != nil {
		return err
	}
	if err := b.loadModule(ptx); err != nil {
		return err
	}
	for _, k := range kernelNames {
		var f cuFunction
		if err := d.check(d.cuModuleGetFunction(&f, b.mod, k), "cuModuleGetFunction(%s)", k); err != nil {
			return err
		}
		b.fns[k] = f
	}
	var p unsafe.Pointer
	if err := d.check(d.cuMemAllocHost(&p, 1024), "cuMemAllocHost_v2(kernel parameters)"); err != nil {
		return err
	}
	b.params = p
	for i := range b.slots {
		s := &b.slots[i]
		if err := d.check(d.cuStreamCreate(&s.stream, streamNonBlocking), "cuStreamCreate"); err != nil {
			return err
		}
		if err := b.grow(s, chunkBytes, chunkBytes); err != nil {
			return err
		}
	}
	return nil
}

// loadModule loads PTX with the JIT error log captured for the error.
func (b *Backend) loadModule(ptx []byte) error {
	var pinner runtime.Pinner
	defer pinner.Unpin()
	logBuf := make([]byte, 16<<10)
	pinner.Pin(&logBuf[0])
	pinner.Pin(&ptx[0])
	opts := []int32{jitErrorLogBuffer, jitErrorLogBufferSizeBytes}
	vals := []uintptr{uintptr(unsafe.Pointer(&logBuf[0])), uintptr(len(logBuf))}
	pinner.Pin(&opts[0])
	pinner.Pin(&vals[0])
	res := b.d.cuModuleLoadDataEx(&b.mod, unsafe.Pointer(&ptx[0]), uint32(len(opts)), &opts[0], &vals[0])
	if err := b.d.check(res, "cuModuleLoadDataEx(kernels.cu PTX for compute_%d)", b.arch); err != nil {
		if msg := cString(&logBuf[0]); msg != "" {
			return fmt.Errorf("%w; JIT log:\n%s", err, msg)
		}
		return err
	}
	return nil
}

// grow makes the slot's buffers hold at least in and out bytes (plus the aux
// area). Only called with no chunk in flight on the slot.
func (b *Backend) grow(s *slot, in, out int) error {
	d := b.d
	if in > s.capIn {
		if s.hostIn != nil {
			_ = d.cuMemFreeHost(s.hostIn)
			s.hostIn = nil
		}
		if s.devIn != 0 {
			_ = d.cuMemFree(s.devIn)
			s.devIn = 0
		}
		s.capIn = 0
		if err := d.check(d.cuMemAllocHost(&s.hostIn, uintptr(in+auxBytes)), "cuMemAllocHost_v2(%d bytes, staging)", in+auxBytes); err != nil {
			return err
		}
		if err := d.check(d.cuMemAlloc(&s.devIn, uintptr(in+auxBytes)), "cuMemAlloc_v2(%d bytes, staging)", in+auxBytes); err != nil {
			return err
		}
		s.capIn = in
	}
	if out > s.capOut {
		if s.hostOut != nil {
			_ = d.cuMemFreeHost(s.hostOut)
			s.hostOut = nil
		}
		if s.devOut != 0 {
			_ = d.cuMemFree(s.devOut)
			s.devOut = 0
		}
		s.capOut = 0
		if err := d.check(d.cuMemAllocHost(&s.hostOut, uintptr(out+auxBytes)), "cuMemAllocHost_v2(%d bytes, staging)", out+auxBytes); err != nil {
			return err
		}
		if err := d.check(d.cuMemAlloc(&s.devOut, uintptr(out+auxBytes)), "cuMemAlloc_v2(%d bytes, staging)", out+auxBytes); err != nil {
			return err
		}
		s.capOut = out
	}
	return nil
}

// release frees everything init created, in reverse order; it runs on the
// worker thread and tolerates a partial init.
func (b *Backend) release() {
	d := b.d
	for i := range b.slots {
		s := &b.slots[i]
		if s.stream != 0 {
			_ = d.cuStreamSynchronize(s.stream)
		}
		if s.hostIn != nil {
			_ = d.cuMemFreeHost(s.hostIn)
		}
		if s.hostOut != nil {
			_ = d.cuMemFreeHost(s.hostOut)
		}
		if s.devIn != 0 {
			_ = d.cuMemFree(s.devIn)
		}
		if s.devOut != 0 {
			_ = d.cuMemFree(s.devOut)
		}
		if s.stream != 0 {
			_ = d.cuStreamDestroy(s.stream)
		}
		*s = slot{}
	}
	if b.params != nil {
		_ = d.cuMemFreeHost(b.params)
		b.params = nil
	}
	if b.mod != 0 {
		_ = d.cuModuleUnload(b.mod)
		b.mod = 0
	}
	if b.ctx != 0 {
		if d.primaryCtx {
			_ = d.cuDevicePrimaryCtxRelease(b.dev)
		} else {
			_ = d.cuCtxDestroy(b.ctx)
		}
		b.ctx = 0
	}
}

var errClosed = errors.New("cuda: backend is closed")

// do runs f on the worker thread and returns its error.
func (b *Backend) do(f func() error) error {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errClosed
	}
	res := make(chan error, 1)
	b.reqs <- func() { res <- f() }
	b.mu.RUnlock()
	return <-res
}

// Name is "cuda".
func (b *Backend) Name() string { return "cuda" }

// DeviceName is the device's name as the driver reports it, with its compute
// capability, e.g. "NVIDIA H100 80GB HBM3 (compute 9.0)".
func (b *Backend) DeviceName() string {
	return fmt.Sprintf("%s (compute %d.%d)", b.devName, b.ccMajor, b.ccMinor)
}

// Kernels says where the kernels came from: "nvrtc 13.0, compute_90" or
// "embedded PTX (compute_75, from nvrtc 13.0)".
func (b *Backend) Kernels() string { return b.kernelsFrom }

// Close waits for calls in progress, then frees the buffers, streams, module
// and context. Later calls return an error. Close is idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.reqs)
	b.mu.Unlock()
	<-b.done
	return nil
}

var _ backend.Backend = (*Backend)(nil)
