"""Training throughput (images/s) and peak RSS on CPU for the `tiny` and `tbx11k` run presets.

Each preset runs in its own process (so peak RSS is its own): synthetic TBX11K images at the
preset's size through the real data pipeline, the engine's optimizer step (AdamW, clipping),
1 warm-up step then `--steps` timed steps; the median step time is reported.

    python benchmarks/bench_train_throughput.py [--presets tiny tbx11k] [--steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

# Passive OpenMP waiting: on a shared CPU, spinning threads slow every step ~10x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

IMAGE_SIDE = {"tiny": 128, "tbx11k": 512}


def _measure(preset: str, steps: int, threads: int) -> dict[str, float]:
    import torch

    from tbx_train.config import run_preset
    from tbx_train.data import write_synthetic_tbx11k
    from tbx_train.engine import TrainContext, optimizer_step
    from tbx_train.run_data import build_run_data
    from tbx_train.training_state import build_training_state

    torch.set_num_threads(threads)
    config = run_preset(preset)
    side = IMAGE_SIDE[preset]
    with tempfile.TemporaryDirectory() as root:
        per_step = config.train.batch_size * config.train.grad_accum
        write_synthetic_tbx11k(root, images=per_step * (steps + 1) * 2, seed=0, size=side)
        data = replace(config.data, data_root=root, num_workers=0)
        config = replace(config, data=data, train=replace(config.train, device="cpu"))
        run_data = build_run_data(config, rank=0, world_size=1)
        state = build_training_state(config, torch.device("cpu"))
        ctx = TrainContext(state.model, state.criterion, state.optimizer, torch.device("cpu"))
        batches = iter(run_data.train_loader)
        times = []
        for _ in range(steps + 1):
            group = [next(batches) for _ in range(config.train.grad_accum)]
            started = time.perf_counter()
            optimizer_step(ctx, group)
            times.append(time.perf_counter() - started)
    step = statistics.median(times[1:])
    return {
        "preset": preset,
        "image_side": side,
        "images_per_step": per_step,
        "median_step_s": round(step, 3),
        "images_per_s": round(per_step / step, 3),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "threads": threads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "tbx11k"])
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per preset")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child, args.steps, args.threads)))
        return 0
    root = Path(__file__).resolve().parents[1]
    for preset in args.presets:
        command = [sys.executable, __file__, "--child", preset]
        command += ["--steps", str(args.steps), "--threads", str(args.threads)]
        env = {**os.environ, "PYTHONPATH": str(root)}  # this checkout's packages
        out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{result['preset']:>7}: {result['image_side']} px, {result['images_per_step']} "
            f"images/step, median step {result['median_step_s']:.2f} s, "
            f"{result['images_per_s']:.2f} images/s, peak RSS {result['peak_rss_gib']:.2f} GiB "
            f"({result['threads']} threads)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
