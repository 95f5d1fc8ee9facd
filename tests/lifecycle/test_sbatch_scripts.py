"""The sbatch scripts on the local SLURM cluster (tests/slurm): refusal, signal, chain, hook."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import tbx_payload

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "scripts").glob("*.sbatch"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_declare_the_contract(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    for line in (
        "#SBATCH --output=logs/train_tbx11k_%j.out",
        "#SBATCH --error=logs/train_tbx11k_%j.err",
        "#SBATCH --signal=B:USR1@120",
    ):
        assert line in text


def _job_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "TBX_ROOT": str(ROOT),
        "TBX_PYTHON": sys.executable,
        "TBX_CPU_ONLY": "1",
        "TBX_DATA_ROOT": str(tmp_path / "data"),
        "TBX_OUTPUT_ROOT": str(tmp_path / "outputs"),
        **extra,
    }


REFUSALS = {
    # The incident: the checkpoint finished epoch 49 of 50, so nothing was left to train.
    "train_tbx11k_1gpu.sbatch": (
        dict(epoch=49, epochs_planned=50),
        {"TBX_EPOCHS": "50"},
        "finished epoch 49",
    ),
    # A 1-GPU (batch 1 x accum 2) checkpoint given to the 2-GPU script (batch 1 x 2 processes).
    "train_tbx11k_2gpu.sbatch": (
        dict(epoch=3),
        {},
        "grad_accum=2 world_size=1 (effective batch 2); this run asks for",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refused_plan_stops_the_job_before_training(slurm_cluster, write_ckpt, tmp_path, name):
    state, extra_env, reason = REFUSALS[name]
    source = write_ckpt("old/checkpoint.pth", tbx_payload(**state))
    out = tmp_path / "job.out"
    job = slurm_cluster.submit(
        ROOT / "scripts" / name,
        ["-o", str(out), "-e", str(tmp_path / "job.err"), "-c", "2", "--gres=none"],
        env=_job_env(tmp_path, TBX_RESUME=str(source), **extra_env),
        cwd=tmp_path,
    )
    info = slurm_cluster.wait_final(job, timeout=120)
    log = out.read_text()
    assert (info["JobState"], info["ExitCode"]) == ("FAILED", "3:0"), log
    assert f"Weights source: --resume {source} (TBX_RESUME given explicitly)" in log
    assert f"Run plan refused: checkpoint {source}" in log and reason in log
    assert "Job stopped before training" in log
    assert "Start training" not in log and "completed successfully" not in log
    _assert_hook_last(log)
    assert (tmp_path / "job.doctor.json").is_file()  # the hook's report beside the log


def _assert_hook_last(log: str) -> None:
    """`End Time:` then only the doctor's summary: its verdict is the last thing in the log."""
    lines = log.rstrip().splitlines()
    end = max(i for i, line in enumerate(lines) if line.startswith("End Time:"))
    tail = lines[end + 1 :]
    assert tail and not any(line.startswith("[tbx-job]") for line in tail), tail


def _wait_for_line(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in {path} after {timeout} s")


def _run_handles_stop_signals() -> bool:
    # tbx-train run (engine) installs tbx_train.signals.StopRequest; until then nothing saves.
    sources = [ROOT / "tbx_train/commands/run.py", ROOT / "tbx_train/runner.py"]
    return any("StopRequest" in p.read_text() for p in sources if p.exists())


@pytest.mark.skipif(
    not _run_handles_stop_signals(), reason="tbx-train run does not install StopRequest yet"
)
@pytest.mark.parametrize(
    ("script", "images"), [("train_tbx11k_1gpu.sbatch", "6"), ("train_tbx11k_2gpu.sbatch", "12")]
)
def test_usr1_saves_mid_epoch_and_the_chain_resumes(slurm_cluster, tmp_path, script, images):
    """SLURM's warning signal -> checkpoint + exit 75 -> resubmitted job resumes and finishes.

    Both runs have 5 optimizer steps per epoch. The 2-GPU script runs 2 srun tasks (gloo on the
    CPU; 2 validation images so both ranks evaluate one): srun forwards the signal to both.
    """
    data = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-m", "tbx_train", "synth", str(data), "--images", images, "--size", "64"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    logs = tmp_path / "logs"
    env = _job_env(
        tmp_path, TBX_PRESET="tiny", TBX_EPOCHS="1", TBX_LOG_DIR=str(logs),
        TBX_EXTRA_ARGS="--batch-size 1 --grad-accum 1 --print-freq 1 --num-workers 0",
        TBX_SCRIPT=str(ROOT / "scripts" / script),
        TBX_CPUS="4",  # the cluster's memory limit is 1 GB per CPU; training needs about 1.1 GB
    )  # fmt: skip
    first = int(
        subprocess.run(
            ["bash", str(ROOT / "scripts" / script)],
            env={**os.environ, **env, **slurm_cluster.env}, cwd=tmp_path,
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    out1 = logs / f"train_tbx11k_{first}.out"
    _wait_for_line(out1, "Epoch: [0]", timeout=600)
    slurm_cluster.client("scancel", "--batch", "--signal=USR1", str(first))
    info = slurm_cluster.wait_final(first, timeout=600)
    log1 = out1.read_text()
    assert (info["JobState"], info["ExitCode"]) == ("FAILED", "75:0"), log1
    assert "Received SIGUSR1" in log1 and "Interrupted by SIGUSR1: saved checkpoint" in log1
    assert "completed successfully" not in log1
    _assert_hook_last(log1)
    second = int(re.search(r"Submitted job (\d+) to continue", log1).group(1))
    info = slurm_cluster.wait_final(second, timeout=600)
    log2 = (logs / f"train_tbx11k_{second}.out").read_text()
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), log2
    checkpoint = tmp_path / f"outputs/tbx11k_run_{first}/checkpoint.pth"
    assert f"Weights source: --resume {checkpoint} (job {first} of this chain" in log2
    assert re.search(rf"Resuming from checkpoint: {checkpoint} \(epoch 0, iteration \d+\)", log2)
    assert "Training completed successfully: 1 epoch(s) trained in this job" in log2
    _assert_hook_last(log2)


def _signal_until_final(slurm_cluster, job: int, timeout: float) -> dict[str, str]:
    """SLURM's warning to the batch shell, again and again, until the job has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = slurm_cluster.job_info(job)
        if info.get("JobState") not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING"):
            return info
        slurm_cluster.client("scancel", "--batch", "--signal=USR1", str(job), check=False)
        time.sleep(0.02)
    raise AssertionError(f"job {job} still running after {timeout} s")


def test_usr1_after_training_ended_does_not_fail_the_job(slurm_cluster, tmp_path):
    """The warning comes 120 s before the limit even when training has just finished: it lands
    while tbx-train shuts down, while the verdict is written or while the exit trap runs the
    hook. None of these may turn a job that trained every epoch into FAILED (exit 138)."""
    data = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-m", "tbx_train", "synth", str(data), "--images", "6", "--size", "64"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    out = tmp_path / "job.out"
    env = _job_env(
        tmp_path, TBX_PRESET="tiny", TBX_EPOCHS="1",
        TBX_EXTRA_ARGS="--batch-size 1 --grad-accum 1 --num-workers 0",
    )  # fmt: skip
    job = slurm_cluster.submit(
        ROOT / "scripts" / "train_tbx11k_1gpu.sbatch",
        ["-o", str(out), "-e", str(tmp_path / "job.err"), "-c", "4", "--gres=none"],
        env=env,
        cwd=tmp_path,
    )
    _wait_for_line(out, "Training time", timeout=600)
    info = _signal_until_final(slurm_cluster, job, timeout=300)
    log = out.read_text()
    assert (info["JobState"], info["ExitCode"]) == ("COMPLETED", "0:0"), log
    assert "Training completed successfully: 1 epoch(s) trained in this job" in log
    _assert_hook_last(log)
