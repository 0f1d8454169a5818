"""A one-kernel Triton launch, run by check.py's worker before Fast-LLM is imported: Triton compiles a
launcher with the system's C compiler on first use, and an image without one fails there. On failure
check.py runs Fast-LLM with its Triton kernels off. A module of its own because Triton reads a kernel's
source and globals, and check.py itself must import without Triton (--dry-run)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _add_one(x_ptr, n, block: tl.constexpr):
    offsets = tl.arange(0, block)
    mask = offsets < n
    tl.store(x_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) + 1, mask=mask)


def probe() -> None:
    x = torch.zeros(8, device="cuda")
    _add_one[(1,)](x, 8, block=8)
    torch.cuda.synchronize()
    if x.sum().item() != 8:
        raise RuntimeError(f"triton probe computed {x.tolist()}")
