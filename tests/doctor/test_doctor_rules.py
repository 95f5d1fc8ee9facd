"""For every finding code: a log that triggers it and a healthy one that does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from doctor_helpers import codes_of, run_check
from doctor_learning_triggers import LEARNING_TRIGGERS
from doctor_logtext import (
    banner,
    ending,
    epoch_lines,
    healthy,
    namespace,
    resumed,
    write_log,
)

from tbx_doctor.findings import CODES

SLURM = "slurmstepd-vm: error: *** JOB 1001 ON vm CANCELLED AT 2026-11-25T17:08:50{} ***"
SIGUSR1 = (
    "Interrupted by SIGUSR1: saved checkpoint /o/checkpoint.pth (epoch 0, iteration 20); "
    "exiting with code 75 for requeue"
)
INCIDENT = [
    "Start Time: Mon Nov 17 18:06:06 MST 2025",
    "Resuming from previous job checkpoint: /scratch/u/proj/outputs/run_900/checkpoint.pth",
    "Start training",
    "Training time 0:00:00",
    "Training completed successfully!",
    "End Time: Mon Nov 17 18:07:05 MST 2025",
]


def _healthy(tmp: Path) -> list:
    return [write_log(tmp, "train_1001.out", healthy())]


def _with(
    tmp: Path, extra_out: list[str] = (), err: list[str] = (), cut: int | None = None
) -> list:
    """The healthy log with lines inserted before its ending (and an .err), or cut off."""
    lines = healthy()
    lines = lines[:cut] if cut else lines[:-3] + list(extra_out) + lines[-3:]
    paths = [write_log(tmp, "train_1001.out", lines)]
    if err:
        write_log(tmp, "train_1001.err", list(err))
    return paths


def _resume_chain(tmp: Path, accum: int | None = None) -> list:
    """Job 900 trained epochs 0-1 of 4 (batch 1, no accumulation); job 1001 resumes it."""
    write_log(
        tmp,
        "train_900.out",
        [
            *banner(900),
            namespace(4, job=900),
            "Start training",
            *epoch_lines(0),
            *epoch_lines(1),
            *ending(),
        ],
    )
    lines = resumed(1001, 900, 2, 4, namespace(4, accum=accum, job=1001))
    return [write_log(tmp, "train_1001.out", lines)]


def _trace(exception: str) -> list[str]:
    return [
        "Traceback (most recent call last):",
        '  File "main.py", line 1, in <module>',
        exception,
    ]


def _loss_explosion(tmp: Path) -> list:
    lines = healthy()
    start = lines.index("Start training") + 1
    body = epoch_lines(0) + epoch_lines(1, avg_of=lambda i: 2.0 + 5.0 * i)
    return [write_log(tmp, "train_1001.out", lines[:start] + body + ending())]


def _first_epoch(tmp: Path, loss: float = 2.2, ap: float = 0.03) -> list:
    lines = healthy(epochs=1)
    start = lines.index("Start training") + 1
    return [
        write_log(
            tmp, "train_1001.out", lines[:start] + epoch_lines(0, loss=loss, ap=ap) + ending()
        )
    ]


TRIGGERS = {
    "immediate-exit": lambda t: [write_log(t, "train_1001.out", INCIDENT)],
    "zero-epochs": lambda t: [write_log(t, "train_1001.out", INCIDENT)],
    "false-success": lambda t: [write_log(t, "train_1001.out", INCIDENT)],
    "resumed-from-checkpoint": lambda t: _resume_chain(t),
    "used-pretrained": _healthy,
    "fresh-no-pretrained": lambda t: [
        write_log(t, "train_1001.out", [*healthy()[:5], "Training from scratch", *healthy()[7:]])
    ],
    "unexpected-resume": lambda t: [*_resume_chain(t), "--expect", "pretrained"],
    "unexpected-fresh": lambda t: [*_healthy(t), "--expect", "resume"],
    "resume-strategy-mismatch": lambda t: _resume_chain(t, accum=2),
    "nan-loss": lambda t: _with(
        t,
        [
            "Epoch: [1]  [ 39/40]  eta: 0:00:00  lr: 0.000100  class_error: 0.00  loss: nan "
            "(nan)  time: 0.1"
        ],
    ),
    "loss-explosion": _loss_explosion,
    "loss-abnormal-first-epoch": lambda t: _first_epoch(t, loss=8.0),
    "low-first-epoch-ap": lambda t: _first_epoch(t, ap=0.0018),
    "crash-traceback": lambda t: _with(t, _trace("RuntimeError: something broke")),
    "cuda-oom": lambda t: _with(
        t, _trace("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
    ),
    "host-oom-killed": lambda t: _with(
        t,
        err=[
            "slurmstepd-vm: error: Detected 1 oom-kill event(s) in StepId=8.batch. Some of your "
            "processes may have been killed by the cgroup out-of-memory handler."
        ],
    ),
    "nccl-error": lambda t: _with(
        t,
        [
            "[rank0]:[E1116 13:36:21.5 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught "
            "collective operation timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE) ran for 600005 "
            "milliseconds before timing out."
        ],
    ),
    "time-limit": lambda t: _with(t, cut=60, err=[SLURM.format(" DUE TO TIME LIMIT")]),
    "cancelled": lambda t: _with(t, cut=60, err=[SLURM.format("")]),
    "preempted": lambda t: _with(t, cut=60, err=[SLURM.format(" DUE TO PREEMPTION")]),
    "node-fail": lambda t: _with(t, cut=60, err=[SLURM.format(" DUE TO NODE FAILURE")]),
    "incomplete-log": lambda t: _with(t, cut=60),
    "data-error": lambda t: _with(
        t,
        _trace(
            "FileNotFoundError: [Errno 2] No such file or directory: '/d/imgs/health/h0001.png'"
        ),
    ),
    "config-error": lambda t: _with(t, ["main.py: error: unrecognized arguments: --bogus 1"]),
    "banner-contradiction": lambda t: [
        write_log(
            t,
            "train_1001.out",
            ["NOTE: Starting FRESH training (not resuming)", *resumed(1001, 900, 2, 4)],
        )
    ],
    "task-failed": lambda t: _with(t, err=["srun: error: vm: task 0: Exited with exit code 7"]),
    "requeued": lambda t: [write_log(t, "train_1001.out", [*healthy()[:60], SIGUSR1])],
}

TRIGGERS.update(LEARNING_TRIGGERS)

# Healthy counterparts: the same kind of job without the problem.
HEALTHY = {code: _healthy for code in CODES}
HEALTHY["used-pretrained"] = lambda t: _resume_chain(t)
HEALTHY["unexpected-resume"] = lambda t: [*_healthy(t), "--expect", "pretrained"]
HEALTHY["unexpected-fresh"] = lambda t: [*_resume_chain(t), "--expect", "resume"]
HEALTHY["resume-strategy-mismatch"] = lambda t: _resume_chain(t)
HEALTHY["nccl-error"] = lambda t: _with(
    t,
    ["sg009:4077539:4077576 [0] NCCL INFO Using network IB"],
    err=[
        "[W1116 13:36:21.5 Utils.hpp:137] Warning: Environment variable "
        "NCCL_ASYNC_ERROR_HANDLING is deprecated"
    ],
)


def test_every_code_has_a_trigger_and_a_healthy_case():
    assert set(TRIGGERS) == set(CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_trigger(code, tmp_path):
    code_rc, report = run_check(*TRIGGERS[code](tmp_path))
    assert isinstance(report, dict), report
    found = {f["code"]: f for f in report["findings"]}
    assert code in found, (code, codes_of(report))
    finding = found[code]
    assert finding["severity"] == CODES[code][0]
    assert finding["evidence"] and all(
        e["file"] and e["line"] > 0 and e["text"] for e in finding["evidence"]
    )
    assert finding["explanation"] and finding["fix"]
    assert code_rc == (1 if any(f["severity"] == "error" for f in report["findings"]) else 0)


@pytest.mark.parametrize("code", sorted(CODES))
def test_healthy(code, tmp_path):
    _code_rc, report = run_check(*HEALTHY[code](tmp_path))
    assert isinstance(report, dict), report
    assert code not in codes_of(report)
