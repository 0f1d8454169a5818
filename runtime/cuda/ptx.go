package cuda

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
)

// The embedded PTX is kernels.cu compiled by NVRTC for compute_75 (the
// oldest architecture CUDA 13 compiles for; the driver JIT-compiles it for
// any newer GPU). New uses it when no NVRTC library is found: a machine
// with a driver and no toolkit still gets the GPU backend. Its first line
// records the sha256 of the kernels.cu it came from and the NVRTC that
// compiled it; a test fails when kernels.cu changes and kernels.ptx does
// not. Regenerate it on any machine with NVRTC 13 (no GPU needed):
//
//	MAPPER_WRITE_PTX=$PWD/runtime/cuda/kernels.ptx go test ./runtime/cuda -run TestWriteEmbeddedPTX
//
// PTX from NVRTC 13.0 is ISA 9.0, which only a driver of CUDA 13.0 or
// later loads; with an older driver the backend needs NVRTC (of the
// driver's version or older).
//
//go:embed kernels.ptx
var embeddedPTXFile []byte

// embeddedArch is the virtual architecture kernels.ptx is compiled for.
const embeddedArch = 75

const ptxHeaderPrefix = "// mapper: kernels.cu sha256 "

// ptxHeader is kernels.ptx's first line: the source's hash and the NVRTC
// version that compiled it, e.g.
// "// mapper: kernels.cu sha256 ab12..., nvrtc 13.0, compute_75".
func ptxHeader(src string, nvrtcMajor, nvrtcMinor int) string {
	sum := sha256.Sum256([]byte(src))
	return fmt.Sprintf("%s%s, nvrtc %d.%d, compute_%d\n", ptxHeaderPrefix, hex.EncodeToString(sum[:]), nvrtcMajor, nvrtcMinor, embeddedArch)
}

// prebuiltPTX is a PTX file with its header checked against src.
type prebuiltPTX struct {
	ptx          []byte // NUL-terminated, for cuModuleLoadDataEx
	nvrtcMajor   int
	nvrtcMinor   int
	arch         int
	description  string // "embedded PTX (compute_75, from nvrtc 13.0)"
	sourceSHA256 string
}

// parsePTX checks that file holds PTX compiled from src (its header names
// src's hash) and returns it ready to load.
func parsePTX(file []byte, src string) (*prebuiltPTX, error) {
	line, rest, ok := bytes.Cut(file, []byte("\n"))
	if !ok || !bytes.HasPrefix(line, []byte(ptxHeaderPrefix)) {
		return nil, errors.New("kernels.ptx has no mapper header line (regenerate it: see runtime/cuda/ptx.go)")
	}
	var p prebuiltPTX
	if _, err := fmt.Sscanf(string(line[len(ptxHeaderPrefix):]), "%64s, nvrtc %d.%d, compute_%d", &p.sourceSHA256, &p.nvrtcMajor, &p.nvrtcMinor, &p.arch); err != nil {
		return nil, fmt.Errorf("kernels.ptx: header %q: %v", line, err)
	}
	sum := sha256.Sum256([]byte(src))
	if want := hex.EncodeToString(sum[:]); p.sourceSHA256 != want {
		return nil, fmt.Errorf("kernels.ptx was compiled from another kernels.cu (sha256 %s, this one is %s): regenerate it (see runtime/cuda/ptx.go)", p.sourceSHA256, want)
	}
	if len(bytes.TrimSpace(rest)) == 0 {
		return nil, errors.New("kernels.ptx holds no PTX")
	}
	p.ptx = append(append([]byte(nil), file...), 0)
	p.description = fmt.Sprintf("embedded PTX (compute_%d, from nvrtc %d.%d)", p.arch, p.nvrtcMajor, p.nvrtcMinor)
	return &p, nil
}

// usableOn says why p cannot run on a device of compute capability
// major.minor under a driver of CUDA version driver (e.g. 13000), or nil.
func (p *prebuiltPTX) usableOn(major, minor int, driver int32) error {
	if major*10+minor < p.arch {
		return fmt.Errorf("the %s needs compute capability %d.%d or newer; the device has %d.%d", p.description, p.arch/10, p.arch%10, major, minor)
	}
	if need := int32(p.nvrtcMajor*1000 + p.nvrtcMinor*10); driver < need {
		return fmt.Errorf("the %s needs a driver of CUDA %d.%d or later; this one is %d.%d", p.description, p.nvrtcMajor, p.nvrtcMinor, driver/1000, driver%1000/10)
	}
	return nil
}
