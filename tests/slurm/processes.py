"""Find and kill the processes left behind by a stopped cluster, by PID.

slurmstepd (and the job under it) outlives slurmd, so after the daemons stop we look for every
process with a file open (or its working directory) under the cluster's directory and kill it
together with its descendants. Nothing is ever selected by program name.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

_PROC = Path("/proc")


def _pids() -> Iterator[int]:
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def _holds_path_under(pid: int, root: str) -> bool:
    base = _PROC / str(pid)
    try:
        links = [base / "cwd", *(base / "fd").iterdir()]
        for link in links:
            target = os.readlink(link)
            if target == root or target.startswith(root + os.sep):
                return True
    except OSError:  # the process ended, or it is not ours to inspect
        return False
    return False


def processes_using(root: Path, exclude: set[int]) -> list[int]:
    """PIDs of processes with an open file or working directory under `root`."""
    prefix = str(root.resolve())
    return [pid for pid in _pids() if pid not in exclude and _holds_path_under(pid, prefix)]


def _children(pid: int) -> list[int]:
    found = []
    for task in (_PROC / str(pid) / "task").glob("*/children"):
        try:
            found += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and all its descendants (collected first, so none is re-parented away)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    for member in tree:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(member, signal.SIGKILL)
