"""Benchmark: inspect-ckpt reading vs torch.load(weights_only=True) on a full-size checkpoint.

Writes an official-layout DINO-4scale checkpoint to /tmp (the real 626 keys and shapes, shared
heads aliased, real AdamW moments for the trainable parameters, StepLR state, Namespace args:
about 560 MB), then in the same run measures
  - wall time of `summarize_checkpoint` vs `torch.load(weights_only=True)` with argparse.Namespace
    allow-listed (median of several runs, page cache warm for both; target: at most half),
  - peak RSS of a child process that only inspects (target: <= 300 MB), and of one that loads.

Run: python benchmarks/bench_inspect_ckpt.py [--keep] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the checkpoint factory lives with the tests
sys.path.insert(0, str(ROOT))

# Peak RSS from VmHWM (this process's own memory map): ru_maxrss would include the parent's RSS
# copied at fork time, since Linux carries the forked map's high-water mark across exec.
_CHILD_RSS = """
import sys
from pathlib import Path
path = Path(sys.argv[1])
if sys.argv[2] == "inspect":
    from tbx_doctor.checkpoint import summarize_checkpoint
    summary = summarize_checkpoint(path)
    assert summary.model_keys == 626, summary
    assert "torch" not in sys.modules
else:
    import argparse, torch
    with torch.serialization.safe_globals([argparse.Namespace]):
        torch.load(path, weights_only=True)
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(int(status.split()[0]) // 1024)
"""


def make_checkpoint(path: Path) -> None:
    import torch
    from doctor_ckpt.factory import official_checkpoint

    torch.set_num_threads(1)
    official_checkpoint(path, epoch=49, scale=1)


def median_seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child(path: Path, mode: str) -> tuple[int, float]:
    """(peak RSS in MiB, wall seconds) of a fresh interpreter doing only `mode`."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD_RSS, str(path), mode],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.strip().splitlines()[-1]), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the checkpoint in /tmp")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    path = Path("/tmp/tbx_bench_dino_4scale_checkpoint.pth")
    if not path.exists():
        make_checkpoint(path)
    try:
        run(path, options.repeats)
    finally:
        if not options.keep:
            path.unlink(missing_ok=True)


def run(path: Path, repeats: int) -> None:
    import torch

    from tbx_doctor.checkpoint import summarize_checkpoint

    torch.set_num_threads(1)
    summary = summarize_checkpoint(path)

    def load() -> None:
        with torch.serialization.safe_globals([argparse.Namespace]):
            torch.load(path, weights_only=True)

    load()  # warm the page cache for both contenders
    inspect_s = median_seconds(lambda: summarize_checkpoint(path), repeats)
    load_s = median_seconds(load, repeats)
    inspect_rss, inspect_wall = child(path, "inspect")
    load_rss, load_wall = child(path, "load")
    print(f"checkpoint: {path} {summary.file_size / 1e6:.1f} MB, {summary.model_keys} keys, ")
    print(
        f"  {summary.parameter_count:,} model elements, {summary.trainable_parameter_count:,} "
        "trainable (optimizer moments)"
    )
    print(f"inspect (in-process, median of {repeats}): {inspect_s * 1000:.1f} ms")
    print(f"torch.load(weights_only=True) (median of {repeats}): {load_s * 1000:.1f} ms")
    print(f"ratio inspect / torch.load: {inspect_s / load_s:.3f} (target <= 0.5)")
    print(
        f"child inspect: peak RSS {inspect_rss} MiB (target <= 300), wall {inspect_wall:.2f} s "
        "(interpreter start + imports included, no torch)"
    )
    print(f"child torch.load: peak RSS {load_rss} MiB, wall {load_wall:.2f} s")
    ok = inspect_s <= 0.5 * load_s and inspect_rss <= 300
    print("targets met" if ok else "TARGETS MISSED")


if __name__ == "__main__":
    main()
