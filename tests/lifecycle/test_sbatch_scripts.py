"""The sbatch scripts on the local SLURM cluster (tests/slurm): plan refusal path, hook last."""

from __future__ import annotations

import subprocess
import sys
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


def test_refused_plan_stops_the_job_before_training(slurm_cluster, write_ckpt, tmp_path):
    finished = write_ckpt("old/checkpoint.pth", tbx_payload(epoch=49, epochs_planned=50))
    out = tmp_path / "job.out"
    job = slurm_cluster.submit(
        ROOT / "scripts/train_tbx11k_1gpu.sbatch",
        ["-o", str(out), "-e", str(tmp_path / "job.err"), "-c", "1", "--gres=none"],
        env=_job_env(tmp_path, TBX_RESUME=str(finished), TBX_EPOCHS="50"),
        cwd=tmp_path,
    )
    info = slurm_cluster.wait_final(job, timeout=120)
    log = out.read_text()
    assert (info["JobState"], info["ExitCode"]) == ("FAILED", "3:0"), log
    assert f"Weights source: --resume {finished} (TBX_RESUME given explicitly)" in log
    assert f"Run plan refused: checkpoint {finished} finished epoch 49" in log
    assert "Job stopped before training" in log
    assert "Start training" not in log and "completed successfully" not in log
    lines = log.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("End Time:"))
    assert end > next(i for i, line in enumerate(lines) if "Run plan refused" in line)
    assert not any("tbx-job" in line for line in lines[end + 1 :] if "hook" not in line)
