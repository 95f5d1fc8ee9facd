"""Time `tbx-doctor history` (and --plot, and one watch re-read) on the real TBX11K logs.

Usage (repo root): PYTHONPATH=. python benchmarks/bench_history.py [REAL_LOGS_DIR]
(default ../shared/real-logs/dino_tbx11k).
Prints wall and CPU seconds per step; not a test (numbers depend on the machine's load).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def _timed(label: str, fn) -> object:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    print(
        f"{label}: {time.perf_counter() - wall:.2f} s wall, {time.process_time() - cpu:.2f} s CPU"
    )
    return result


def main() -> None:
    from tbx_doctor.history.chain import build_chains
    from tbx_doctor.history.plot import plot_history
    from tbx_doctor.history.rows import build_history
    from tbx_doctor.profile.expectations import Profile
    from tbx_doctor.watch.follower import Watcher, WatchOptions

    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/real-logs/dino_tbx11k")
    history = _timed("history, all real logs", lambda: build_chains(build_history([root])))
    print(f"  {len(history.rows)} jobs, {len(history.chains)} chains")
    with tempfile.TemporaryDirectory() as tmp:
        _timed("plot PNG", lambda: plot_history(history, Path(tmp) / "chain.png"))
    biggest = max((root / "logs").glob("*.out.gz"), key=lambda p: p.stat().st_size)
    watcher = Watcher(biggest, WatchOptions(), Profile(), lambda event: None)
    _timed(f"one watch poll (full re-read) of {biggest.name}", watcher.poll)


if __name__ == "__main__":
    main()
