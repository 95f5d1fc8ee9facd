"""A user's project folder for the shipped sbatch scripts, and the environment jobs run with.

The scripts expect to be submitted from a project root holding `scripts/`, `logs/`, `outputs/`
and `data/`. A scenario gets such a folder in a temporary directory, with `scripts` a link to the
repository's own scripts, so the very files a user submits run unchanged; everything that differs
for a test (CPU only, tiny preset, tiny data, 2 epochs) is passed through their TBX_* variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# The interpreter running the tests: /work/main/.venv here, the clone's own .venv in CI.
PYTHON = Path(sys.executable)
SCRIPT_1GPU = "scripts/train_tbx11k_1gpu.sbatch"
SCRIPT_2GPU = "scripts/train_tbx11k_2gpu.sbatch"


def make_project(folder: Path, data_root: Path) -> Path:
    """Lay out a project folder that uses the repository's scripts and `data_root`."""
    folder.mkdir(parents=True)
    (folder / "scripts").symlink_to(REPO / "scripts")
    (folder / "logs").mkdir()  # SLURM does not create the folder of --output
    (folder / "data").mkdir()
    (folder / "data" / "TBX11K").symlink_to(data_root)
    return folder


def job_env(project: Path, **extra: str) -> dict[str, str]:
    """Environment for `sbatch` (and so for the job): this repository's code, test-sized run."""
    path = os.pathsep.join([str(PYTHON.parent), os.environ.get("PATH", "")])
    pythonpath = os.pathsep.join(p for p in [str(REPO), os.environ.get("PYTHONPATH", "")] if p)
    return {
        "PATH": path,
        "PYTHONPATH": pythonpath,  # the code under test wins over any installed copy
        "OMP_NUM_THREADS": "1",  # the jobs share two cores; 8 threads each would thrash
        "TBX_ROOT": str(project),
        "TBX_PYTHON": str(PYTHON),
        "TBX_CPU_ONLY": "1",
        "TBX_PRESET": "tiny",
        "TBX_EPOCHS": "2",
        # The hook judges the tiny preset by its own expectations, not TBX11K's.
        "TBX_DOCTOR_PROFILE": str(Path(__file__).with_name("tiny_profile.toml")),
        **extra,
    }


def write_synthetic_data(sets: dict[Path, tuple[int, int]]) -> None:
    """`tbx-train synth FOLDER --images N --seed S` for each FOLDER: (N, S), all at once."""
    running = []
    for folder, (images, seed) in sets.items():
        command = [str(PYTHON), "-m", "tbx_train", "synth", str(folder)]
        command += ["--images", str(images), "--seed", str(seed), "--size", "64"]
        output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
        running.append(subprocess.Popen(command, env=_python_env(), **output))
    for process in running:
        output, _ = process.communicate(timeout=300)
        if process.returncode != 0:
            raise RuntimeError(f"{process.args} failed:\n{output.decode(errors='replace')}")


def _python_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def run_tool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m <args>` (tbx_doctor / tbx_train) from this repository."""
    return subprocess.run(
        [str(PYTHON), "-m", *args],
        cwd=cwd,
        env=_python_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def job_logs(project: Path, job_id: int) -> tuple[Path, Path]:
    """The `.out` and `.err` the scripts' `#SBATCH --output/--error` name for `job_id`."""
    stem = project / "logs" / f"train_tbx11k_{job_id}"
    return stem.with_suffix(".out"), stem.with_suffix(".err")


def run_dir(project: Path, job_id: int) -> Path:
    """The run folder the scripts give job `job_id`."""
    return project / "outputs" / f"tbx11k_run_{job_id}"


def hook_report(project: Path, job_id: int) -> dict[str, Any]:
    """The JSON report `tbx-doctor hook` wrote beside the job's `.out`."""
    return json.loads((project / "logs" / f"train_tbx11k_{job_id}.doctor.json").read_text())
