"""Make the SLURM and munge programs available, installing Debian's packages when missing.

The fixture needs the daemons (munged, slurmctld, slurmd) and the clients (sbatch, scontrol, ...).
On a Debian/Ubuntu machine where we are root they are installed with apt; anywhere else the
caller gets `SlurmUnavailable` with a reason that says what is missing, and the tests skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
PROGRAMS = (
    "munged",
    "mungekey",
    "slurmctld",
    "slurmd",
    "sbatch",
    "scontrol",
    "squeue",
    "scancel",
    "sinfo",
    "srun",
)
# Daemons live in /usr/sbin, which a non-login PATH (CI runners, IDEs) often lacks.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin"])
# Several processes may run apt on one machine; wait for the dpkg lock instead of failing.
_APT_LOCK_WAIT = ("-o", "DPkg::Lock::Timeout=300")


class SlurmUnavailable(RuntimeError):
    """The local cluster cannot be provided here; the message is the skip reason."""


def find_programs() -> dict[str, Path] | None:
    """Absolute paths of every program in PROGRAMS, or None when any is missing."""
    found = {name: shutil.which(name, path=_SEARCH_PATH) for name in PROGRAMS}
    if any(path is None for path in found.values()):
        return None
    return {name: Path(path) for name, path in found.items() if path is not None}


def _apt(*args: str, timeout: float) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", *_APT_LOCK_WAIT, *args]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SlurmUnavailable(f"`{' '.join(command)}` took more than {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SlurmUnavailable(
            f"`{' '.join(command)}` failed (exit {done.returncode}): {' | '.join(tail)}"
        )


def ensure_programs() -> dict[str, Path]:
    """Return the program paths, installing PACKAGES with apt first when some are missing.

    Raises SlurmUnavailable when they are missing and cannot be installed (not root, no
    apt-get, or apt failed).
    """
    programs = find_programs()
    if programs is not None:
        return programs
    missing = "slurm-wlm/munge programs are not installed"
    if os.geteuid() != 0:
        raise SlurmUnavailable(f"{missing} and installing them needs root")
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable(f"{missing} and there is no apt-get to install them")
    _apt("update", "-q", timeout=300)
    _apt("install", "-y", "-q", "--no-install-recommends", *PACKAGES, timeout=600)
    programs = find_programs()
    if programs is None:
        raise SlurmUnavailable(f"installed {', '.join(PACKAGES)} but some of {PROGRAMS} are absent")
    return programs
