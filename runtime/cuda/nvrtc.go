package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"unsafe"
)

// nvrtcLibNames are the NVRTC sonames tried, newest first. NVRTC is part of
// the CUDA toolkit (and of the nvidia-cuda-nvrtc pip wheels), not of the
// driver, so it may be missing where libcuda is present.
var nvrtcLibNames = []string{
	"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so.11.1", "libnvrtc.so.11.0", "libnvrtc.so",
}

// EnvNVRTC names an environment variable that may hold the full path of the
// NVRTC library to use; it is tried before the default search.
const EnvNVRTC = "MAPPER_NVRTC"

// nvrtcCandidates lists what loadNVRTC tries, in order: $MAPPER_NVRTC, the
// sonames on the loader's search path, then the same names under
// $CUDA_HOME/$CUDA_PATH and the usual toolkit directories.
func nvrtcCandidates() []string {
	var out []string
	if p := os.Getenv(EnvNVRTC); p != "" {
		out = append(out, p)
	}
	out = append(out, nvrtcLibNames...)
	var dirs []string
	for _, env := range []string{"CUDA_HOME", "CUDA_PATH"} {
		if r := os.Getenv(env); r != "" {
			dirs = append(dirs, filepath.Join(r, "lib64"), filepath.Join(r, "lib"))
		}
	}
	dirs = append(dirs, "/usr/local/cuda/lib64", "/usr/local/cuda/targets/"+cudaTargetDir()+"/lib")
	if m, _ := filepath.Glob("/usr/local/cuda-*/lib64"); len(m) > 0 {
		sort.Sort(sort.Reverse(sort.StringSlice(m)))
		dirs = append(dirs, m...)
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		for _, n := range nvrtcLibNames {
			p := filepath.Join(d, n)
			if seen[p] {
				continue
			}
			seen[p] = true
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

func cudaTargetDir() string {
	if runtime.GOARCH == "arm64" {
		return "sbsa-linux"
	}
	return "x86_64-linux"
}

type nvrtcResult int32

// nvrtc is the subset of the NVRTC API used to compile kernels.cu to PTX.
type nvrtc struct {
	handle uintptr
	lib    string

	version             func(major, minor *int32) nvrtcResult
	getErrorString      func(res nvrtcResult) string
	createProgram       func(prog *uintptr, src *byte, name string, numHeaders int32, headers, includeNames unsafe.Pointer) nvrtcResult
	destroyProgram      func(prog *uintptr) nvrtcResult
	compileProgram      func(prog uintptr, numOptions int32, options unsafe.Pointer) nvrtcResult
	getPTXSize          func(prog uintptr, size *uintptr) nvrtcResult
	getPTX              func(prog uintptr, ptx *byte) nvrtcResult
	getProgramLogSize   func(prog uintptr, size *uintptr) nvrtcResult
	getProgramLog       func(prog uintptr, log *byte) nvrtcResult
	getNumSupportedArch func(n *int32) nvrtcResult // may be nil (NVRTC < 11.2)
	getSupportedArchs   func(archs *int32) nvrtcResult
}

func loadNVRTC() (*nvrtc, error) {
	cands := nvrtcCandidates()
	h, lib, err := openLibrary(cands...)
	if err != nil {
		return nil, fmt.Errorf("NVRTC not found (tried %s); the cuda backend compiles its kernels with libnvrtc (CUDA toolkit or the nvidia-cuda-nvrtc wheel; set %s to its path) or else loads its embedded PTX: %w",
			strings.Join(cands, ", "), EnvNVRTC, err)
	}
	n := &nvrtc{handle: h, lib: lib}
	for _, s := range []struct {
		name string
		fptr any
	}{
		{"nvrtcVersion", &n.version},
		{"nvrtcGetErrorString", &n.getErrorString},
		{"nvrtcCreateProgram", &n.createProgram},
		{"nvrtcDestroyProgram", &n.destroyProgram},
		{"nvrtcCompileProgram", &n.compileProgram},
		{"nvrtcGetPTXSize", &n.getPTXSize},
		{"nvrtcGetPTX", &n.getPTX},
		{"nvrtcGetProgramLogSize", &n.getProgramLogSize},
		{"nvrtcGetProgramLog", &n.getProgramLog},
	} {
		if err := symbol(h, lib, s.name, s.fptr); err != nil {
			closeLibrary(h)
			return nil, fmt.Errorf("NVRTC %s is unusable: %w", lib, err)
		}
	}
	if hasSymbol(h, "nvrtcGetNumSupportedArchs") && hasSymbol(h, "nvrtcGetSupportedArchs") {
		_ = symbol(h, lib, "nvrtcGetNumSupportedArchs", &n.getNumSupportedArch)
		_ = symbol(h, lib, "nvrtcGetSupportedArchs", &n.getSupportedArchs)
	}
	return n, nil
}

func (n *nvrtc) err(res nvrtcResult, call string) error {
	msg := fmt.Sprintf("nvrtcResult %d", res)
	if n.getErrorString != nil {
		if s := n.getErrorString(res); s != "" {
			msg = s
		}
	}
	return fmt.Errorf("nvrtc (%s): %s: %s", n.lib, call, msg)
}

// pickArch returns the virtual architecture to compile for: the device's
// compute capability, or the newest one this NVRTC supports that is not newer
// (the driver JIT-compiles PTX of an older virtual architecture for newer
// GPUs).
func (n *nvrtc) pickArch(major, minor int) int {
	want := major*10 + minor
	if n.getNumSupportedArch == nil {
		return want
	}
	var cnt int32
	if n.getNumSupportedArch(&cnt) != 0 || cnt <= 0 || cnt > 1024 {
		return want
	}
	archs := make([]int32, cnt)
	if n.getSupportedArchs(&archs[0]) != 0 {
		return want
	}
	best := 0
	for _, a := range archs {
		if int(a) == want {
			return want
		}
		if int(a) < want && int(a) > best {
			best = int(a)
		}
	}
	if best == 0 {
		return want
	}
	return best
}

// compile compiles CUDA C source to PTX for compute_<arch>. The program log
// is part of any compile error.
func (n *nvrtc) compile(src, name string, arch int, extra ...string) ([]byte, error) {
	var pinner runtime.Pinner
	defer pinner.Unpin()

	csrc := append([]byte(src), 0)
	pinner.Pin(&csrc[0])
	var prog uintptr
	if res := n.createProgram(&prog, &csrc[0], name, 0, nil, nil); res != 0 {
		return nil, n.err(res, "nvrtcCreateProgram("+name+")")
	}
	defer n.destroyProgram(&prog)

	opts := append([]string{
		fmt.Sprintf("--gpu-architecture=compute_%d", arch),
		// Exact IEEE float32 arithmetic: the MXFP4 encoder divides by 6 and
		// multiplies by a power of two and must match the CPU bit for bit.
		"--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false",
		"--std=c++14",
	}, extra...)
	cOpts := make([]uintptr, len(opts))
	for i, o := range opts {
		b := append([]byte(o), 0)
		pinner.Pin(&b[0])
		cOpts[i] = uintptr(unsafe.Pointer(&b[0]))
	}
	pinner.Pin(&cOpts[0])
	res := n.compileProgram(prog, int32(len(cOpts)), unsafe.Pointer(&cOpts[0]))
	if res != 0 {
		return nil, fmt.Errorf("%w; options %q; log:\n%s", n.err(res, "nvrtcCompileProgram("+name+")"), opts, n.log(prog))
	}
	var size uintptr
	if res := n.getPTXSize(prog, &size); res != 0 {
		return nil, n.err(res, "nvrtcGetPTXSize")
	}
	if size == 0 {
		return nil, fmt.Errorf("nvrtc (%s): empty PTX for %s", n.lib, name)
	}
	ptx := make([]byte, size)
	if res := n.getPTX(prog, &ptx[0]); res != 0 {
		return nil, n.err(res, "nvrtcGetPTX")
	}
	if ptx[len(ptx)-1] != 0 {
		ptx = append(ptx, 0)
	}
	return ptx, nil
}

func (n *nvrtc) log(prog uintptr) string {
	var size uintptr
	if n.getProgramLogSize(prog, &size) != 0 || size <= 1 {
		return ""
	}
	buf := make([]byte, size)
	if n.getProgramLog(prog, &buf[0]) != 0 {
		return ""
	}
	return strings.TrimRight(string(buf), "\x00\n")
}
