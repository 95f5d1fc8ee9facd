"""Fewer memory-allocator round trips per training step: glibc malloc settings and fused AdamW.

Why: a CPU training step frees and re-allocates hundreds of MiB of activations and gradients.
glibc's default is adaptive: blocks above a threshold (128 KiB at start, raised up to 32 MiB each
time such a block is freed) are mmap'ed, and the heap top is given back to the kernel whenever
more than twice that threshold is free at the top. A DINO step makes the heap top move up and
down ~26 times (~107 MiB each way), and every re-grown or re-mapped page is a minor page fault
the kernel must zero: measured 20-32 thousand faults per step at 128-256 px and 240 thousand at
512 px (R50; the official code: 24 thousand and 950 thousand, with 2.9 s of system time).

The settings keep freed memory in the process for the next step: the mmap threshold pinned at
glibc's ceiling (no adaptation), no mmap at all (blocks over 32 MiB, such as the 512 px encoder's
[5440, 2048] activations, come from the heap too), and the heap top trimmed only above 1 GiB.
Measured (benchmarks/bench_vs_official.py): 0-3 faults per step at 128-256 px, 2 thousand at
512 px, and the same peak RSS (3.03 vs 3.02 GiB at 512 px): the peak is reached every step anyway;
the memory is just not handed back and faulted in again. The trainer applies this to itself at
start-up (`configure_allocator`), so no user has to export MALLOC_* variables; the price is that
the process's RSS does not shrink after its largest step.

The other churn is the single-tensor AdamW: per parameter and step it allocates temporaries for
the moment updates. The fused kernel (CPU since torch 2.4, and CUDA) updates in place.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from collections.abc import Iterable

import torch

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
# glibc's ceiling for the mmap threshold on 64-bit (HEAP_MAX_SIZE / 2); mallopt refuses more.
MMAP_THRESHOLD_BYTES = 32 * 2**20
# Free memory kept at the heap top before trimming: more than a step's churn at the presets'
# sizes (~107 MiB per round trip at the tiny size, several hundred MiB for R50 at 512 px).
TRIM_THRESHOLD_BYTES = 1024 * 2**20


def configure_allocator() -> bool:
    """Pin glibc's mmap and trim thresholds, no mmap (see the module docstring); True when
    applied.

    A no-op returning False off glibc (macOS, musl) or where mallopt refuses a value.
    Affects allocations made from now on, in this process and in processes it forks.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # Each threshold call also turns glibc's adaptive thresholds off.
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        (M_MMAP_MAX, 0),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
    )
    return all([mallopt(parameter, value) == 1 for parameter, value in settings])


def adamw_options(params: Iterable[torch.Tensor]) -> dict[str, bool]:
    """AdamW keyword arguments for these parameters: `fused=True` when the fused kernel
    supports them all (floating point, on the CPU or CUDA), else {} (torch's default)."""
    tensors = list(params)
    supported = all(t.device.type in ("cpu", "cuda") and t.is_floating_point() for t in tensors)
    return {"fused": True} if tensors and supported else {}
