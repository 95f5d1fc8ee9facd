"""Benchmark `tbx-doctor check` against `grep -c "Epoch:"` on a ~1 GB log, plus start-up time.

Builds /tmp/tbx_doctor_bench_1g.out by repeating a real 62 MB log
(../shared/real-logs/dino_tbx11k/logs/train_tbx11k_39687560.out.gz), then in the same run:
- wall time of `grep -c "Epoch:"` and of `python -m tbx_doctor check --format json` on it
  (target: check <= 3x grep; best of N runs each, page cache warm for both);
- peak RSS of the check process (target <= 200 MB; resource.getrusage of the child);
- wall time of `check` end to end on a small log (target < 1 s) and the heavy modules it
  imported (must be none of torch, pandas, numpy).
Python's bytecode cache is on for the timed runs, as on an installed package (pip compiles it):
this machine sets PYTHONDONTWRITEBYTECODE=1, which would time compiling ~60 modules at every
start (~0.06 s). The cache goes to a folder under /tmp, not into the checkout.
Run: python benchmarks/bench_doctor_check.py [--size-mb 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "../shared/real-logs/dino_tbx11k/logs/train_tbx11k_39687560.out.gz"
FALLBACK = Path("/work/shared/real-logs/dino_tbx11k/logs/train_tbx11k_39687560.out.gz")
BIG = Path("/tmp/tbx_doctor_bench_1g.out")
SMALL = REPO / "fixtures/incident/train_tbx11k_39543743.out"


def build_big(size_mb: int) -> Path:
    source = REAL if REAL.exists() else FALLBACK
    if BIG.exists() and abs(BIG.stat().st_size - size_mb * 1e6) < 80e6:
        return BIG
    data = gzip.decompress(source.read_bytes())
    with BIG.open("wb") as out:
        while out.tell() < size_mb * 1e6:
            out.write(data)
    return BIG


PYCACHE = Path("/tmp/tbx_doctor_bench_pycache")
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = str(PYCACHE)


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MB of all children so far) of one run.

    CPU time is reported too because this 2-core machine is shared: wall time varies with load.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    big = build_big(args.size_mb)
    check = [sys.executable, "-m", "tbx_doctor", "check", str(big), "--format", "json"]
    grep = ["grep", "-c", "Epoch:", str(big)]
    timed(grep)  # warm the page cache
    timed([*check[:3], "check", str(SMALL)])  # fill the bytecode cache
    grep_runs = [timed(grep) for _ in range(args.runs)]
    grep_s, grep_cpu = min(r[0] for r in grep_runs), min(r[1] for r in grep_runs)
    check_runs = [timed(check) for _ in range(args.runs)]
    check_s, check_cpu = min(r[0] for r in check_runs), min(r[1] for r in check_runs)
    peak_mb = max(r[2] for r in check_runs)  # grep's RSS is tiny: the max is check's
    probe = (
        "import sys,runpy;sys.argv=['tbx-doctor','check',%r,'--format','json']\n"
        "try: runpy.run_module('tbx_doctor',run_name='__main__')\nexcept SystemExit: pass\n"
        "print([m for m in ('torch','pandas','numpy') if m in sys.modules],file=sys.stderr)"
    )
    small_s = min(timed([sys.executable, "-c", probe % str(SMALL)])[0] for _ in range(args.runs))
    heavy = (
        subprocess.run(
            [sys.executable, "-c", probe % str(SMALL)],
            cwd=REPO,
            env=ENV,
            capture_output=True,
            text=True,
        )
        .stderr.strip()
        .splitlines()[-1]
    )
    print(f"log: {big} ({big.stat().st_size / 1e6:.0f} MB), machine: {os.cpu_count()} CPUs")
    print(f"load average         : {os.getloadavg()[0]:.1f}")
    print(f"grep -c 'Epoch:'     : {grep_s:.2f} s wall, {grep_cpu:.2f} s CPU")
    print(
        f"tbx-doctor check     : {check_s:.2f} s wall, {check_cpu:.2f} s CPU "
        f"({check_s / grep_s:.1f}x grep wall, {check_cpu / grep_cpu:.1f}x CPU; target <= 3x)"
    )
    print(f"check peak RSS       : {peak_mb:.0f} MB (target <= 200 MB)")
    print(f"check on a small log : {small_s:.2f} s (target < 1 s); heavy modules imported: {heavy}")


if __name__ == "__main__":
    main()
