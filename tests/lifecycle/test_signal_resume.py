"""SIGUSR1 mid-epoch: stop after the step, save `next_iteration`, resume to identical weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

from tbx_train.checkpoint import build_checkpoint, build_strategy, load_checkpoint, save_checkpoint
from tbx_train.engine import EpochPlan, train_one_epoch
from tbx_train.logs import MetricLogger
from tbx_train.sampler import StepBatchSampler
from tbx_train.signals import EXIT_REQUEUE, StopRequest, format_interrupt_line

from . import scale_worker

SIGNAL_AT = 5  # the micro-batch during which SLURM's warning arrives


def _signalling(batches, at: int | None, start: int):
    for index, batch in enumerate(batches, start=start):
        if index == at:
            os.kill(os.getpid(), signal.SIGUSR1)
        yield batch


def _epoch(ctx, start_iteration, global_step, stop, signal_at=None):
    sampler = StepBatchSampler(scale_worker.NUM_IMAGES, 1, grad_accum=2, seed=3)
    sampler.set_epoch(0, start_iteration)
    plan = EpochPlan(
        epoch=0, iterations=len(sampler), grad_accum=2, start_iteration=start_iteration,
        global_step=global_step, stop_requested=stop,
    )  # fmt: skip
    batches = _signalling(scale_worker.micro_batches(sampler), signal_at, start_iteration)
    return train_one_epoch(ctx, batches, plan, MetricLogger(write=lambda line: None))


def _context(kind: str):
    return scale_worker.context(*scale_worker.build(kind))


# tiny-dino: the real model; its denoising noise is seeded per micro-batch (SeededByImage), which
# is what makes a resumed run draw the same noise as the uninterrupted one.
@pytest.mark.parametrize("kind", ["stand-in", "tiny-dino"])
def test_stop_request_resume_matches_uninterrupted_epoch(tmp_path, kind):
    torch.set_num_threads(1)
    reference = _context(kind)
    _epoch(reference, 0, 0, stop=lambda: False)

    ctx = _context(kind)
    with StopRequest() as stop:
        result = _epoch(ctx, 0, 0, stop=stop.should_stop, signal_at=SIGNAL_AT)
    assert (stop.signal_name, result.completed, result.stop_reason) == (
        "SIGUSR1", False, "stop_requested",
    )  # fmt: skip
    assert (result.next_iteration, result.global_step) == (SIGNAL_AT + 1, 3)  # step 3 finished
    path = tmp_path / "checkpoint.pth"
    save_checkpoint(path, build_checkpoint(
        model=ctx.model.state_dict(), optimizer=ctx.optimizer.state_dict(), lr_scheduler={},
        epoch=-1, global_step=result.global_step, next_iteration=result.next_iteration,
        epochs_planned=1, strategy=build_strategy(1, 2, 1), config={}, dataset={},
    ))  # fmt: skip

    saved = load_checkpoint(path)
    resumed = _context(kind)
    torch.manual_seed(123)  # a new process: the global RNG is not where the first run left it
    resumed.model.load_state_dict(saved["model"])
    resumed.optimizer.load_state_dict(saved["optimizer"])
    done = _epoch(resumed, saved["next_iteration"], saved["global_step"], stop=lambda: False)
    assert done.completed and done.global_step == 8
    for name, tensor in reference.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, rtol=0, atol=1e-7)


def test_handlers_are_restored_and_flag_is_local_without_a_group():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert not stop.should_stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.should_stop() and stop.stop_signal() == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


def test_interrupt_line_contract():
    assert format_interrupt_line("SIGUSR1", "out/checkpoint.pth", 3, 700) == (
        "Interrupted by SIGUSR1: saved checkpoint out/checkpoint.pth (epoch 3, iteration 700); "
        f"exiting with code {EXIT_REQUEUE} for requeue"
    )
    assert EXIT_REQUEUE == 75


def test_signals_module_is_light_so_run_can_install_handlers_first():
    # `tbx-train run` installs StopRequest before importing torch; this keeps that cheap.
    code = "import sys, tbx_train.signals; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
