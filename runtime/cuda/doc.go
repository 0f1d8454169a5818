// Package cuda is mapper's CUDA backend: it implements backend.Backend
// (casts among BF16/F16/F32 and from FP8, MXFP4 decode and the reference
// MXFP4 encoder, and two-axis transposes) on an NVIDIA GPU, byte for byte
// identical to the CPU reference in runtime/backend.
//
// Nothing is linked at build time: the CUDA driver (libcuda.so.1) is opened
// at run time with purego, and the kernels (kernels.cu, embedded) are
// compiled to PTX at run time with NVRTC (libnvrtc.so.*, from a CUDA toolkit
// or the nvidia-cuda-nvrtc wheel; $MAPPER_NVRTC may name it) for the
// device's own architecture. Without NVRTC, the embedded kernels.ptx
// (compute_75, from NVRTC 13.0: a driver of CUDA 13.0 or later) is loaded
// instead; see ptx.go. The package therefore builds with CGO_ENABLED=0 and
// no toolkit, and New returns an error naming what is missing on machines
// without a GPU or a driver, or with neither NVRTC nor a driver new enough
// for the embedded PTX.
//
// Every driver call happens on one goroutine locked to its OS thread that
// serves the Backend's methods in turn, so a Backend is safe for concurrent
// use (calls are serialised). Large inputs are processed in chunks through
// two pinned staging buffers, each with its own stream, so that copying
// chunk k+1 into pinned memory and its transfer overlap the kernel and the
// transfers of chunk k. Each backend holds 128 MiB of pinned host memory and
// 128 MiB of device memory for this (more only for a transpose whose single
// row exceeds a 32 MiB chunk); Close frees it.
//
// Below MinBytes of input a transform costs more in launch latency and PCIe
// round trips than on the CPU; callers choosing a backend per call should
// keep such inputs on the CPU backend. Available reports, cheaply, whether
// the backend can run here and on which device.
package cuda
