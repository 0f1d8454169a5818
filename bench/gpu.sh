#!/usr/bin/env bash
# bench/gpu.sh: the GPU check for runtime/cuda, for a machine with an NVIDIA
# GPU (driver installed) and, ideally, NVRTC (libnvrtc.so.12/13 from a CUDA
# toolkit or the nvidia-cuda-nvrtc wheel; MAPPER_NVRTC=/path/to/libnvrtc.so.N
# if it is not on the loader path; without it the backend runs the embedded
# PTX, which TestGPUEmbeddedPTX checks either way). No Go toolchain is needed
# there.
#
# Build the test binary and the mapper binary on any machine (no CUDA
# toolkit, no cgo):
#     CGO_ENABLED=0 go test -c -o bench/bin/cuda.test ./runtime/cuda
#     CGO_ENABLED=0 go build -o bench/bin/mapper ./cmd/mapper
# then, from the repository root on the GPU machine:
#     bash bench/gpu.sh
#
# It runs (1) the bit-for-bit tests of every kernel against the CPU backend
# (TestGPU*, verbose), then (2) the benchmarks, each kernel on the GPU and on
# the CPU backend in the same run (gpu_GB/s, cpu_GB/s, speedup), then (3) a
# whole GPT-OSS conversion at gpt-oss-20b widths (2 layers) both ways with
# --backend cpu, cuda and auto (MAPPER_AUTO_GPU_BYTES=0, so that auto opens
# the GPU and calibrates although the checkpoint is small), requiring
# identical files, and prints a summary with auto's calibration decision
# (TestGPUCalibrate's, and the conversions' notes). Benchmarks and the conversion run even when a kernel test failed,
# so that one run on a borrowed machine reports everything. Exit status: 0 when the tests passed, 1 when one failed, 2 when the
# GPU tests could not run (no binary, no GPU, no driver or no NVRTC: the
# reason is printed). Expected runtime: well under 4 minutes on an H100.
# BENCHTIME (default 2x) and TIMEOUT (default 200s for the tests) can be set.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
BIN="$ROOT/bench/bin/cuda.test"
BENCHTIME=${BENCHTIME:-2x}
TIMEOUT=${TIMEOUT:-200s}
LOG=$(mktemp -d)
trap 'rm -rf "$LOG"' EXIT

if [[ ! -x "$BIN" ]]; then
    echo "gpu.sh: $BIN not found; build it with: CGO_ENABLED=0 go test -c -o bench/bin/cuda.test ./runtime/cuda" >&2
    exit 2
fi
echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "(nvidia-smi not available)"
ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libnvrtc' | sed 's/^/  /' || true

# The tests read testdata/ relative to the package directory.
cd "$ROOT/runtime/cuda" || exit 2

echo "== tests (bit for bit against the CPU backend)"
start=$(date +%s)
"$BIN" -test.v -test.count=1 -test.timeout "$TIMEOUT" -test.run '^Test(GPU|Loader|DriverError)' 2>&1 | tee "$LOG/test.txt"
test_rc=${PIPESTATUS[0]}
test_s=$(( $(date +%s) - start ))

skipped=$(grep -c -- '--- SKIP: TestGPU' "$LOG/test.txt" || true)
passed=$(grep -c -- '--- PASS: TestGPU' "$LOG/test.txt" || true)
failed=$(grep -c -- '--- FAIL' "$LOG/test.txt" || true)

# Benchmarks and the whole conversion run whenever the GPU could be used
# (some GPU test ran), even after a failure: a device lease is short, and
# one run should say everything it can. RESULT still fails on any failure.
gpu_ran=$(( passed + $(grep -c -- '--- FAIL: TestGPU' "$LOG/test.txt" || true) ))
bench_rc=0
bench_s=0
if [[ $gpu_ran -gt 0 ]]; then
    echo "== benchmarks (GPU timed loop; CPU backend timed in the same run)"
    start=$(date +%s)
    "$BIN" -test.run '^$' -test.bench . -test.benchtime "$BENCHTIME" -test.benchmem=false -test.timeout 150s 2>&1 | tee "$LOG/bench.txt"
    bench_rc=${PIPESTATUS[0]}
    bench_s=$(( $(date +%s) - start ))
fi

conv_rc=0
conv_msg="not run (bench/bin/mapper missing or no GPU)"
MAPPER="$ROOT/bench/bin/mapper"
if [[ $gpu_ran -gt 0 && -x "$MAPPER" ]]; then
    echo "== whole conversion: --backend cuda and auto must write the same files as --backend cpu"
    W=$(mktemp -d)
    conv() { # conv IN OUT BACKEND
        local t0=$(date +%s%N)
        MAPPER_AUTO_GPU_BYTES=0 "$MAPPER" apply gpt_oss "$1" "$2" --backend "$3" --progress none 2> >(tee -a "$LOG/conv.txt" >&2) || return 1
        echo "  $3: $(( ($(date +%s%N) - t0) / 1000000 )) ms" | tee -a "$LOG/conv.txt"
    }
    same() { # same DIR_A DIR_B
        local f
        for f in "$1"/*; do
            cmp -s "$f" "$2/$(basename "$f")" || { echo "  differs: $(basename "$f")"; return 1; }
        done
        [[ $(ls "$1" | wc -l) -eq $(ls "$2" | wc -l) ]]
    }
    if "$MAPPER" synth gpt_oss "$W/hf" --width real --layers 2 --vocab 8192 &&
        conv "$W/hf" "$W/fl_cpu" cpu && conv "$W/hf" "$W/fl_cuda" cuda && same "$W/fl_cpu" "$W/fl_cuda" &&
        conv "$W/hf" "$W/fl_auto" auto && same "$W/fl_cpu" "$W/fl_auto" &&
        conv "$W/fl_cpu" "$W/back_cpu" cpu && conv "$W/fl_cpu" "$W/back_cuda" cuda && same "$W/back_cpu" "$W/back_cuda" &&
        conv "$W/fl_cpu" "$W/back_auto" auto && same "$W/back_cpu" "$W/back_auto"; then
        conv_msg="identical files both ways with cpu, cuda and auto (import decodes MXFP4, export re-encodes)"
    else
        conv_rc=1
        conv_msg="FAILED"
    fi
    # Does the GPU pay off for a whole conversion when the CPU has fewer
    # workers? The same conversions with --workers 2, 4 and 16, cpu against
    # cuda (auto's decision aside): wall time in ms, import then export.
    if [[ $conv_rc -eq 0 ]]; then
        echo "== whole conversion by worker count (ms; import, export)"
        for w in 2 4 16; do
            line="  workers $w:"
            for be in cpu cuda; do
                rm -rf "$W/x" "$W/y"
                t0=$(date +%s%N)
                "$MAPPER" apply gpt_oss "$W/hf" "$W/x" --backend $be --workers $w --progress none 2>/dev/null || line="$line FAILED"
                t1=$(date +%s%N)
                "$MAPPER" apply gpt_oss "$W/fl_cpu" "$W/y" --backend $be --workers $w --progress none 2>/dev/null || line="$line FAILED"
                t2=$(date +%s%N)
                line="$line $be $(( (t1 - t0) / 1000000 )) $(( (t2 - t1) / 1000000 ))"
            done
            echo "$line" | tee -a "$LOG/sweep.txt"
        done
    fi
    rm -rf "$W"
fi

echo
echo "== summary"
echo "tests: $passed GPU tests passed, $failed failed, $skipped skipped (${test_s}s, exit $test_rc)"
if [[ $skipped -gt 0 && $passed -eq 0 ]]; then
    echo "GPU tests were skipped; reason:"
    grep -m1 'no GPU:' "$LOG/test.txt" | sed 's/^ */  /'
    exit 2
fi
grep -E '^\s+cuda_test.go:[0-9]+: (Available|DeviceName|Calibration|Routed):' "$LOG/test.txt" | sed 's/^ */  /'
if [[ -f "$LOG/bench.txt" ]]; then
    echo "benchmarks (${bench_s}s, exit $bench_rc):"
    printf '  %-52s %10s %10s %8s\n' benchmark gpu_GB/s cpu_GB/s speedup
    awk '/^Benchmark/ {
        name=$1; g="-"; c="-"; s="-";
        for (i = 2; i < NF; i++) {
            if ($(i+1) == "gpu_GB/s") g = $i;
            if ($(i+1) == "cpu_GB/s") c = $i;
            if ($(i+1) == "speedup") s = $i;
        }
        printf "  %-52s %10s %10s %8s\n", name, g, c, s
    }' "$LOG/bench.txt"
fi
echo "whole conversion: $conv_msg"
if [[ -f "$LOG/conv.txt" ]]; then
    # Times per backend in run order (import cpu, cuda, auto; export the
    # same) and what auto decided.
    grep -E '^  (cpu|cuda|auto): [0-9]+ ms$' "$LOG/conv.txt" | tr '\n' ' ' | sed 's/^/  times:/; s/ *$/\n/'
    grep -E '^note: backend auto:' "$LOG/conv.txt" | sed 's/^/  /'
fi
if [[ -f "$LOG/sweep.txt" ]]; then
    echo "whole conversion by worker count (ms; import, export):"
    cat "$LOG/sweep.txt"
fi
if [[ $test_rc -ne 0 || $failed -gt 0 || $conv_rc -ne 0 ]]; then
    echo "RESULT: FAIL"
    exit 1
fi
if [[ $bench_rc -ne 0 ]]; then
    echo "RESULT: tests passed, benchmarks failed"
    exit 1
fi
echo "RESULT: PASS"
