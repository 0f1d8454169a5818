package cuda

// Host emulation: the real Backend (pipeline, chunking, launch arguments,
// error flag) runs against a fake driver whose "device" memory is host
// memory and whose cuLaunchKernel runs kernels.cu compiled for the host by
// g++ (testdata/emu/emu.cpp: one OS thread per CUDA thread, barriers for
// __syncthreads and the warp intrinsics). Chunks and grids are shrunk so that
// every multi-chunk and grid-stride path runs. This checks the kernels' bit
// manipulation and index arithmetic against the CPU reference without a GPU;
// it cannot check PTX generation, the real driver ABI or performance, which
// the GPU tests (cuda_test.go, bench/gpu.sh) do.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/mapper-dev/mapper/runtime/backend"
	"github.com/mapper-dev/mapper/runtime/backend/backendtest"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

var (
	emuOnce sync.Once
	emuBin  string
	emuSkip string
	emuErr  error
)

func buildEmu(t *testing.T) string {
	t.Helper()
	emuOnce.Do(func() {
		cxx, err := exec.LookPath("g++")
		if err != nil {
			emuSkip = "g++ not found: " + err.Error()
			return
		}
		dir, err := os.MkdirTemp("", "mapper-cuda-emu")
		if err != nil {
			emuErr = err
			return
		}
		probe := filepath.Join(dir, "probe.cpp")
		_ = os.WriteFile(probe, []byte("#include <barrier>\nint main(){std::barrier<> b(1); b.arrive_and_wait();}\n"), 0o644)
		if out, err := exec.Command(cxx, "-std=c++20", "-pthread", "-o", filepath.Join(dir, "probe"), probe).CombinedOutput(); err != nil {
			emuSkip = "g++ lacks C++20 <barrier>: " + string(out)
			return
		}
		emuBin = filepath.Join(dir, "emu")
		src, _ := filepath.Abs(filepath.Join("testdata", "emu", "emu.cpp"))
		if out, err := exec.Command(cxx, "-std=c++20", "-O1", "-pthread", "-Wall", "-o", emuBin, src).CombinedOutput(); err != nil {
			emuErr = fmt.Errorf("compiling kernels.cu for the host: %v\n%s", err, out)
		}
	})
	if emuSkip != "" {
		t.Skip(emuSkip)
	}
	if emuErr != nil {
		t.Fatal(emuErr)
	}
	return emuBin
}

// fakeGPU is the emulated device behind a fake driver.
type fakeGPU struct {
	t        *testing.T
	bin      string
	dir      string
	mu       sync.Mutex
	dev      map[uint64][]byte         // device allocations by base address
	host     map[unsafe.Pointer][]byte // pinned host allocations
	fnNames  []string
	launches int
	lastErr  string
}

var errName = []byte("CUDA_ERROR_EMULATION\x00")

func (g *fakeGPU) find(p uint64, n int) []byte {
	for base, buf := range g.dev {
		if p >= base && p+uint64(n) <= base+uint64(len(buf)) {
			return buf[p-base : p-base+uint64(n)]
		}
	}
	g.t.Errorf("fake driver: device range %#x+%d is not allocated", p, n)
	return nil
}

func kernelArgCount(name string) int {
	switch {
	case strings.HasPrefix(name, "cast_"):
		return 3
	case strings.HasPrefix(name, "mxfp4_decode"):
		return 4
	case strings.HasPrefix(name, "mxfp4_encode"):
		return 5
	case strings.HasPrefix(name, "transpose_box"):
		return 11
	}
	return -1
}

func (g *fakeGPU) launch(fn cuFunction, gx, gy, gz, bx, by, bz uint32, params unsafe.Pointer) cuResult {
	name := g.fnNames[fn]
	n := kernelArgCount(name)
	ptrs := unsafe.Slice((*unsafe.Pointer)(params), n)
	var script strings.Builder
	fmt.Fprintf(&script, "kernel %s\ngrid %d %d %d\nblock %d %d %d\n", name, gx, gy, gz, bx, by, bz)
	type used struct {
		base uint64
		path string
	}
	var allocs []used
	index := map[uint64]int{}
	var argLines []string
	for i := range n {
		v := *(*uint64)(ptrs[i])
		found := false
		for base, buf := range g.dev {
			if v >= base && v < base+uint64(len(buf)) {
				k, ok := index[base]
				if !ok {
					k = len(allocs)
					index[base] = k
					p := filepath.Join(g.dir, fmt.Sprintf("a%d", k))
					if err := os.WriteFile(p, buf, 0o644); err != nil {
						g.t.Error(err)
						return 999
					}
					allocs = append(allocs, used{base, p})
				}
				argLines = append(argLines, fmt.Sprintf("ptr %d %d", k, v-base))
				found = true
				break
			}
		}
		if !found {
			argLines = append(argLines, fmt.Sprintf("int %d", int64(v)))
		}
	}
	for _, a := range allocs {
		fmt.Fprintf(&script, "alloc %d %s\n", len(g.dev[a.base]), a.path)
	}
	script.WriteString(strings.Join(argLines, "\n") + "\n")
	cmd := exec.Command(g.bin)
	cmd.Stdin = strings.NewReader(script.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.lastErr = fmt.Sprintf("emu %s: %v: %s\nscript:\n%s", name, err, out, script.String())
		g.t.Error(g.lastErr)
		return 999
	}
	for _, a := range allocs {
		b, err := os.ReadFile(a.path + ".out")
		if err != nil || len(b) != len(g.dev[a.base]) {
			g.t.Errorf("emu %s: reading back %s: %v (%d bytes)", name, a.path, err, len(b))
			return 999
		}
		copy(g.dev[a.base], b)
	}
	g.launches++
	return 0
}

func newFakeDriver(t *testing.T, g *fakeGPU) *driver {
	d := &driver{lib: "fake"}
	ok := func() cuResult { return 0 }
	d.cuInit = func(uint32) cuResult { return ok() }
	d.cuDriverGetVersion = func(v *int32) cuResult { *v = 12080; return 0 }
	d.cuDeviceGetCount = func(c *int32) cuResult { *c = 1; return 0 }
	d.cuDeviceGet = func(dev *cuDevice, _ int32) cuResult { *dev = 0; return 0 }
	d.cuDeviceGetName = func(name *byte, n int32, _ cuDevice) cuResult {
		copy(unsafe.Slice(name, n), "Host emulation\x00")
		return 0
	}
	d.cuDeviceGetAttribute = func(v *int32, attr int32, _ cuDevice) cuResult {
		*v = map[int32]int32{attrComputeCapabilityMajor: 9, attrComputeCapabilityMinor: 0}[attr]
		return 0
	}
	d.cuCtxCreate = func(ctx *cuContext, _ uint32, _ cuDevice) cuResult { *ctx = 1; return 0 }
	d.cuCtxDestroy = func(cuContext) cuResult { return 0 }
	d.cuCtxSetCurrent = func(cuContext) cuResult { return 0 }
	d.cuModuleLoadDataEx = func(m *cuModule, _ unsafe.Pointer, _ uint32, _ *int32, _ *uintptr) cuResult {
		*m = 1
		return 0
	}
	d.cuModuleUnload = func(cuModule) cuResult { return 0 }
	d.cuModuleGetFunction = func(f *cuFunction, _ cuModule, name string) cuResult {
		*f = cuFunction(len(g.fnNames))
		g.fnNames = append(g.fnNames, name)
		return 0
	}
	d.cuMemAlloc = func(p *devPtr, n uintptr) cuResult {
		g.mu.Lock()
		defer g.mu.Unlock()
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = 0xcd // uninitialised device memory
		}
		base := uint64(uintptr(unsafe.Pointer(&buf[0])))
		g.dev[base] = buf
		*p = devPtr(base)
		return 0
	}
	d.cuMemFree = func(p devPtr) cuResult {
		g.mu.Lock()
		defer g.mu.Unlock()
		if _, ok := g.dev[uint64(p)]; !ok {
			t.Errorf("cuMemFree of unknown pointer %#x", p)
			return 1
		}
		delete(g.dev, uint64(p))
		return 0
	}
	d.cuMemAllocHost = func(p *unsafe.Pointer, n uintptr) cuResult {
		g.mu.Lock()
		defer g.mu.Unlock()
		buf := make([]byte, n)
		*p = unsafe.Pointer(&buf[0])
		g.host[*p] = buf
		return 0
	}
	d.cuMemFreeHost = func(p unsafe.Pointer) cuResult {
		g.mu.Lock()
		defer g.mu.Unlock()
		if _, ok := g.host[p]; !ok {
			t.Errorf("cuMemFreeHost of unknown pointer %p", p)
			return 1
		}
		delete(g.host, p)
		return 0
	}
	d.cuMemcpyHtoDAsync = func(dst devPtr, src unsafe.Pointer, n uintptr, _ cuStream) cuResult {
		copy(g.find(uint64(dst), int(n)), unsafe.Slice((*byte)(src), n))
		return 0
	}
	d.cuMemcpyDtoHAsync = func(dst unsafe.Pointer, src devPtr, n uintptr, _ cuStream) cuResult {
		copy(unsafe.Slice((*byte)(dst), n), g.find(uint64(src), int(n)))
		return 0
	}
	streams := 0
	d.cuStreamCreate = func(s *cuStream, _ uint32) cuResult { streams++; *s = cuStream(streams); return 0 }
	d.cuStreamDestroy = func(cuStream) cuResult { streams--; return 0 }
	d.cuStreamSynchronize = func(cuStream) cuResult { return 0 }
	d.cuLaunchKernel = func(fn cuFunction, gx, gy, gz, bx, by, bz, _ uint32, _ cuStream, params, _ unsafe.Pointer) cuResult {
		return g.launch(fn, gx, gy, gz, bx, by, bz, params)
	}
	d.cuGetErrorName = func(_ cuResult, s **byte) cuResult { *s = &errName[0]; return 0 }
	d.cuGetErrorString = func(_ cuResult, s **byte) cuResult { *s = &errName[0]; return 0 }
	return d
}

// withEmulated runs f on a Backend over the emulated device with small
// chunks and grids, and checks that Close frees every allocation.
func withEmulated(t *testing.T, chunk int, f func(b *Backend)) {
	bin := buildEmu(t)
	g := &fakeGPU{t: t, bin: bin, dir: t.TempDir(), dev: map[uint64][]byte{}, host: map[unsafe.Pointer][]byte{}}
	oldChunk, oldBlocks, oldThreads, oldTile, oldRun := chunkBytes, maxBlocks, threadsPerBlock, tileBytes, minRun
	chunkBytes, maxBlocks, threadsPerBlock, tileBytes, minRun = chunk, 3, 64, 256, 64
	defer func() {
		chunkBytes, maxBlocks, threadsPerBlock, tileBytes, minRun = oldChunk, oldBlocks, oldThreads, oldTile, oldRun
	}()
	b, err := start(newFakeDriver(t, g), func(int, int) ([]byte, int, string, error) { return []byte("fake PTX\x00"), 90, "fake", nil })
	if err != nil {
		t.Fatal(err)
	}
	if b.DeviceName() != "Host emulation (compute 9.0)" {
		t.Errorf("DeviceName() = %q", b.DeviceName())
	}
	f(b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if len(g.dev) != 0 || len(g.host) != 0 {
		t.Errorf("after Close: %d device and %d host allocations not freed", len(g.dev), len(g.host))
	}
	if err := b.Convert(make([]byte, 4), 0, make([]byte, 2), 0); err == nil {
		t.Error("Convert after Close: no error")
	}
	t.Logf("%d kernel launches emulated", g.launches)
}

func TestEmulatedConvert(t *testing.T) {
	withEmulated(t, 64<<10, func(b *Backend) {
		backendtest.Convert(t, b, backend.CPU(0), rand.New(rand.NewPCG(1, 2)), 4096)
	})
}

func TestEmulatedMXFP4(t *testing.T) {
	withEmulated(t, 16<<10, func(b *Backend) {
		r := rand.New(rand.NewPCG(3, 4))
		backendtest.DecodeMXFP4(t, b, backend.CPU(0), r, 200)
		backendtest.EncodeMXFP4(t, b, backend.CPU(0), r, 300)
	})
}

func TestEmulatedTranspose(t *testing.T) {
	// 2 KiB chunks: most cases take several chunks, and the larger ones
	// split the swapped axis (a row of one outer slice per chunk).
	withEmulated(t, 2<<10, func(b *Backend) {
		r := rand.New(rand.NewPCG(5, 6))
		n := 60
		if testing.Short() {
			n = 15
		}
		cases := append(backendtest.RandomTransposeCases(r, n, 6000),
			backendtest.TransposeCase{Shape: tensor.Shape{4, 64, 64}, ElemSize: 1, A: 0, B: 2},  // slabs of the middle axis
			backendtest.TransposeCase{Shape: tensor.Shape{64, 128}, ElemSize: 2, A: 0, B: 1},    // squares over (a, b)
			backendtest.TransposeCase{Shape: tensor.Shape{16, 300}, ElemSize: 4, A: 0, B: 1},    // squares, ragged edges
			backendtest.TransposeCase{Shape: tensor.Shape{100, 20}, ElemSize: 8, A: 0, B: 1},    // bands of a
			backendtest.TransposeCase{Shape: tensor.Shape{8, 4, 300}, ElemSize: 2, A: 0, B: 1},  // runs longer than a tile and a chunk
			backendtest.TransposeCase{Shape: tensor.Shape{10, 20, 8}, ElemSize: 4, A: 0, B: 1},  // 16-byte items
			backendtest.TransposeCase{Shape: tensor.Shape{3, 5, 7, 6}, ElemSize: 1, A: 1, B: 3}, // batches outside and between
		)
		backendtest.Transpose(t, b, backend.CPU(0), r, cases)
	})
}

// Concurrent callers share the worker; each gets its own result.
func TestEmulatedConcurrent(t *testing.T) {
	withEmulated(t, 4<<10, func(b *Backend) {
		ref := backend.CPU(1)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 7))
				for range 2 {
					n := 1 + r.IntN(3000)
					src := make([]byte, 4*n)
					for i := range src {
						src[i] = byte(r.Uint32())
					}
					got, want := make([]byte, 2*n), make([]byte, 2*n)
					_ = ref.Convert(want, tensor.F16, src, tensor.F32)
					if err := b.Convert(got, tensor.F16, src, tensor.F32); err != nil {
						t.Error(err)
						return
					}
					if !bytes.Equal(got, want) {
						t.Errorf("worker %d: %d elements differ from the CPU", w, n)
					}
				}
			}()
		}
		wg.Wait()
	})
}
