#!/usr/bin/env bash
# Entry point on the GPU machine (see README.md): runs check.py from the repository root, results to
# $OUT (the device tool's return folder) or bench/out/fastllm. Arguments go to check.py.
set -u
cd "$(dirname "$0")/../.."
[ -f bench/bin/mapper ] && chmod +x bench/bin/mapper
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
exec python3 bench/fastllm/check.py --out "${OUT:-bench/out/fastllm}" "$@"
