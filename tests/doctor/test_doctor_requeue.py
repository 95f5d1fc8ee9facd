"""tbx-train's planned stop (signal -> checkpoint -> exit 75) as the sbatch scripts log it.

The lines are modelled on a real 2-task job of scripts/train_tbx11k_2gpu.sbatch stopped with
`scancel --signal=USR1` (tests/lifecycle/test_sbatch_scripts.py): scripts/tbx_job.sh's
`[tbx-job]` lines, tbx-train's interruption line, and srun's exit lines in the .err.
"""

from __future__ import annotations

import json

import pytest
from doctor_helpers import codes_of, run_check
from doctor_logtext import iteration, write_log
from typer.testing import CliRunner

from tbx_doctor.cli import app

RUN = "/scratch/u/tbx/outputs/tbx11k_run_1234"
INTERRUPTED = (
    f"Interrupted by SIGUSR1: saved checkpoint {RUN}/checkpoint.pth (epoch 0, iteration 3); "
    "exiting with code 75 for requeue"
)
# srun's words for one task, and for several tasks, that ended with tbx-train's exit code 75.
SRUN_75 = [
    "srun: error: vm: task 0: Exited with exit code 75",
    "srun: error: vm: tasks 0-1: Exited with exit code 75",
]
SCANCEL_STEP = "slurmstepd-vm: error: *** STEP 1234.0 ON vm CANCELLED AT 2026-11-25T20:20:07 ***"
TIME_LIMIT = (
    "slurmstepd-vm: error: *** JOB 1234 ON vm CANCELLED AT 2026-11-25T20:20:09 DUE TO TIME "
    "LIMIT ***"
)


def _out(interrupted: bool = True) -> list[str]:
    """The first job's .out up to the end of the script (before the hook's summary)."""
    lines = [
        "Start Time: Wed Nov 25 20:19:29 UTC 2026",
        f"[tbx-job] Job 1234 on vm: preset tbx11k-2gpu, world size 2, run dir {RUN}",
        "Training from scratch",
        "Run plan: mode=fresh source=- source_epoch=- start_epoch=0 epochs=12 epochs_to_run=12 "
        "batch_size=1 grad_accum=1 world_size=2 effective_batch=2",
        "Start training",
        *(iteration(0, i, 3000, 9.0, 9.5) for i in range(3)),
        "[tbx-job] Received SIGUSR1 at 2026-11-25 20:20:02: forwarding it to tbx-train (pid "
        "32526), which saves a checkpoint after the current step and exits 75",
    ]
    if interrupted:
        lines.append(INTERRUPTED)
    lines += [
        "Training time 0:00:14",
        f"[tbx-job] Training stopped by signal after saving {RUN}/checkpoint.pth (exit 75)",
        f"[tbx-job] Submitted job 1235 to continue from {RUN}/checkpoint.pth (starts when job "
        "1234 has ended)",
        "End Time: Wed Nov 25 20:20:08 UTC 2026",
    ]
    return lines


def _job(tmp_path, srun: str, interrupted: bool = True, extra_err: tuple[str, ...] = ()):
    """Write train_tbx11k_1234.out/.err; return the .out."""
    out = write_log(tmp_path, "train_tbx11k_1234.out", _out(interrupted))
    write_log(tmp_path, "train_tbx11k_1234.err", [srun, *extra_err])
    return out


@pytest.mark.parametrize("srun", SRUN_75)
def test_srun_exit_75_after_the_save_line_is_the_planned_requeue(tmp_path, srun):
    rc, report = run_check(_job(tmp_path, srun))
    codes = codes_of(report)
    assert rc == 0 and report["verdict"] != "failed", report["findings"]
    assert codes["requeued"] == "info" and "task-failed" not in codes
    assert report["run"]["end_reason"] == "requeued"
    duration = report["checklist"][-1]
    assert duration["item"].startswith("No immediate exit") and duration["status"] == "pass"
    assert duration["evidence"].startswith("stopped on SIGUSR1 after saving a resumable checkpoint")
    requeued = next(f for f in report["findings"] if f["code"] == "requeued")
    assert srun in [e["text"] for e in requeued["evidence"]]


@pytest.mark.parametrize("srun", SRUN_75)
def test_exit_75_without_a_save_line_stays_a_failure(tmp_path, srun):
    rc, report = run_check(_job(tmp_path, srun, interrupted=False))
    assert rc == 1 and report["verdict"] == "failed"
    failed = next(f for f in report["findings"] if f["code"] == "task-failed")
    assert failed["severity"] == "error"
    assert failed["title"] == "A task exited 75 without a saved-checkpoint line"
    assert "no `Interrupted by SIG...: saved checkpoint` line" in failed["explanation"]
    assert "requeued" not in codes_of(report)


def test_another_tasks_failure_is_still_reported_beside_the_requeue(tmp_path):
    srun = "srun: error: vm: task 0: Exited with exit code 75"
    other = "srun: error: vm: task 1: Exited with exit code 1"
    rc, report = run_check(_job(tmp_path, srun, extra_err=(other,)))
    failed = next(f for f in report["findings"] if f["code"] == "task-failed")
    assert rc == 1 and [e["text"] for e in failed["evidence"]] == [other]


@pytest.mark.parametrize("interrupted", [True, False])
def test_hook_summary_follows_the_save_line(tmp_path, interrupted):
    log = _job(tmp_path, "srun: error: vm: tasks 0-1: Exited with exit code 75", interrupted)
    result = CliRunner().invoke(app, ["hook", "--log", str(log)])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "train_tbx11k_1234.doctor.json").read_text())
    codes = codes_of(written)  # one job: the report object itself
    assert written["verdict"] == ("warning" if interrupted else "failed")
    if interrupted:
        assert "FAILED" not in result.output and "info: requeued:" in result.output
        assert "task-failed" not in codes
    else:
        assert result.output.startswith(
            "tbx-doctor: FAILED: job 1234: failed: A task exited 75 without"
        )
        assert codes["task-failed"] == "error"


@pytest.mark.parametrize("extra_err", [(SCANCEL_STEP,), (SCANCEL_STEP, TIME_LIMIT), ()])
def test_first_job_of_a_chain_tells_the_stop_in_order(tmp_path, extra_err):
    """Time-limit warning -> checkpoint at epoch 0, iteration 3 -> exit 75 -> job 1235."""
    srun = "srun: error: vm: task 0: Exited with exit code 75"
    rc, report = run_check(_job(tmp_path, srun, extra_err=extra_err))
    codes = codes_of(report)
    assert rc == 0 and report["verdict"] in ("healthy", "warning"), report["findings"]
    assert "cancelled" not in codes  # srun's step cancel after exit 75 is not a cancellation
    requeued = next(f for f in report["findings"] if f["code"] == "requeued")
    assert requeued["fix"].startswith("Nothing to fix: the next job of the chain")
    story = requeued["explanation"]
    steps = [
        "received SIGUSR1 at 2026-11-25 20:20:02",
        "before the time limit",
        f"saved {RUN}/checkpoint.pth at epoch 0, iteration 3",
        "exited with code 75",
        f"Submitted job 1235 to continue from {RUN}/checkpoint.pth",
    ]
    positions = [story.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), story
    if TIME_LIMIT in extra_err:
        limit = next(f for f in report["findings"] if f["code"] == "time-limit")
        assert limit["severity"] == "warning" and limit["fix"].startswith("Nothing is lost.")
        assert "epoch 0, iteration 3" in limit["explanation"]
    else:
        assert "time-limit" not in codes


def test_scancel_sigterm_save_is_a_cancel_with_the_progress_kept(tmp_path):
    """scancel: SLURM's JOB cancel line stays a `cancelled` warning, exit 75 no failure."""
    lines = [
        line.replace("SIGUSR1", "SIGTERM")
        for line in _out()
        if not line.startswith("[tbx-job] Submitted job")
    ]
    lines.insert(
        -1,
        "[tbx-job] Stopped by SIGTERM (scancel or preemption, not the time-limit warning): not "
        f"continuing; resume with TBX_RESUME={RUN}/checkpoint.pth",
    )
    out = write_log(tmp_path, "train_tbx11k_1234.out", lines)
    job_cancel = "slurmstepd-vm: error: *** JOB 1234 ON vm CANCELLED AT 2026-11-25T20:20:01 ***"
    write_log(tmp_path, "train_tbx11k_1234.err", [job_cancel, SRUN_75[1]])
    rc, report = run_check(out)
    codes = codes_of(report)
    assert rc == 0 and report["verdict"] == "warning", report["findings"]
    assert (codes["cancelled"], codes["requeued"]) == ("warning", "info")
    assert "task-failed" not in codes
    cancelled = next(f for f in report["findings"] if f["code"] == "cancelled")
    assert "tbx-train saved its progress at epoch 0, iteration 3" in cancelled["explanation"]
    requeued = next(f for f in report["findings"] if f["code"] == "requeued")
    assert requeued["fix"].startswith("No job continues this run")
