"""The trainer's allocator settings and the fused AdamW (tbx_train/allocator.py)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from tbx_train.allocator import adamw_options
from tbx_train.config import TrainConfig
from tbx_train.optim import build_optimizer

# A step's churn in miniature: 20-50 MiB in 4 blocks allocated, touched and freed, 20 times;
# then single blocks over 32 MiB.
# Prints the minor page faults of the loop.
_CHURN = textwrap.dedent(
    """
    import resource, sys
    import torch
    from tbx_train.allocator import configure_allocator
    applied = configure_allocator() if sys.argv[1] == "pinned" else False
    def churn():
        for mib in (40, 20, 30, 50) * 5:
            blocks = [torch.ones(mib * 2**20 // 16) for _ in range(4)]
            del blocks
        for mib in (40, 36) * 5:  # above glibc's mmap ceiling (32 MiB), as at 512 px
            block = torch.ones(mib * 2**20 // 4)
            del block
    churn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    churn()
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _churn_faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], check=True, capture_output=True, text=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_pinned_thresholds_stop_the_page_fault_churn():
    applied, pinned = _churn_faults("pinned")
    _, default = _churn_faults("default")
    assert applied
    # Default: the blocks are mmap'ed, or the heap top is trimmed and re-grown, and every page
    # is faulted in again (~200 thousand faults); pinned, the freed memory is reused.
    assert default > 20_000
    assert pinned < default / 20


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def _train(optimizer_of, steps: int = 20) -> list[torch.Tensor]:
    model = _model()
    optimizer = optimizer_of(model)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        inputs = torch.randn(5, 8, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        model(inputs).square().mean().backward()
        optimizer.step()
    return [p.detach() for p in model.parameters()]


def test_the_trainer_uses_fused_adamw_on_cpu():
    optimizer = build_optimizer(_model(), TrainConfig())
    assert optimizer.defaults["fused"] is True
    assert adamw_options([torch.zeros(2, dtype=torch.int64)]) == {}  # not a float parameter
    assert adamw_options([]) == {}


def test_fused_adamw_follows_the_single_tensor_adamw():
    def reference(model):
        return torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4, foreach=False)

    def fused(model):
        return torch.optim.AdamW(
            model.parameters(), lr=1e-2, weight_decay=1e-4, **adamw_options(model.parameters())
        )

    for expected, got in zip(_train(reference), _train(fused), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_a_single_tensor_optimizer_state_resumes_in_the_fused_one():
    """Checkpoints written before the change hold the single-tensor AdamW's state."""
    model = _model()
    plain = torch.optim.AdamW(model.parameters(), lr=1e-2, foreach=False)
    model(torch.ones(1, 8)).sum().backward()
    plain.step()
    fused = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    fused.load_state_dict(plain.state_dict())
    fused.step()
    assert all(float(state["step"]) == 2 for state in fused.state.values())
