"""Benchmark one DINO training step on CPU: forward + loss + backward + clip + AdamW step.

    python benchmarks/bench_model_step.py                       # tbx11k at 512x512 and tiny
    python benchmarks/bench_model_step.py --preset tiny --size 256 --steps 10 --threads 1

Each configuration runs in a fresh subprocess so its peak RSS (ru_maxrss, build included) is its
own. Prints one line per configuration, and a JSON line with the same numbers. Times are medians
over `--steps` timed steps after one warm-up step; the machine is shared, so quote medians, and
the process CPU time per step, which other jobs on the machine disturb much less than wall time.
Reference (official DINO, pure-PyTorch attention, 2 threads, batch 1, this machine kind): tbx11k
512x512 6.6-6.8 s and ~4.5 GB peak RSS; a ResNet-18 2+2-layer 256x256 variant ~0.40 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def _targets(batch: int):
    import torch

    boxes = torch.tensor([[0.3, 0.4, 0.2, 0.3], [0.7, 0.5, 0.15, 0.25]])
    return [{"labels": torch.tensor([1, 3]), "boxes": boxes.clone()} for _ in range(batch)]


def _use_attention_core(name: str) -> None:
    """Force one deformable-attention core (default: the module's own choice per device)."""
    from tbx_train.model import deformable_attention

    if name != "auto":
        core = getattr(deformable_attention, f"sample_by_{name}")
        deformable_attention.multi_scale_deformable_attention = core


def measure(
    preset: str, size: int, batch: int, steps: int, threads: int, attention: str = "auto"
) -> dict:
    """Time `steps` training steps (after a warm-up) in this process; returns the numbers."""
    import torch

    from tbx_train.config import model_preset
    from tbx_train.model import build_dino

    _use_attention_core(attention)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, criterion, _ = build_dino(model_preset(preset))
    model.train()
    backbone = [p for n, p in model.named_parameters() if "backbone" in n and p.requires_grad]
    others = [p for n, p in model.named_parameters() if "backbone" not in n and p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": others}, {"params": backbone, "lr": 1e-5}], lr=1e-4, weight_decay=1e-4
    )
    images = torch.randn(batch, 3, size, size)
    masks = torch.zeros(batch, size, size, dtype=torch.bool)
    targets = _targets(batch)
    times, cpu_times = [], []
    for _ in range(steps + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        outputs = model(images, masks, targets)
        losses = criterion(outputs, targets)
        loss = sum(losses[k] * w for k, w in criterion.weight_dict.items())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    timed = times[1:]
    return {
        "preset": preset,
        "size": size,
        "batch": batch,
        "threads": threads,
        "attention": attention,
        "steps": steps,
        "median_s": round(statistics.median(timed), 3),
        "min_s": round(min(timed), 3),
        # CPU seconds of this process: steadier than wall time on a shared machine.
        "median_cpu_s": round(statistics.median(cpu_times[1:]), 3),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help="model preset (repeatable)")
    parser.add_argument("--size", type=int, help="square image side in pixels")
    parser.add_argument("--batch", type=int, default=1, help="images per step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument(
        "--attention",
        choices=["auto", "embedding_bag", "grid_sample"],
        default="auto",
        help="deformable-attention core (auto: embedding_bag on CPU)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one configuration, in this process
        result = measure(
            args.preset[0], args.size, args.batch, args.steps, args.threads, args.attention
        )
        print(json.dumps(result))
        return 0
    defaults = {"tbx11k": 512, "tiny": 256}
    for preset in args.preset or list(defaults):
        size = args.size or defaults.get(preset, 512)
        command = [sys.executable, __file__, "--child", "--preset", preset, "--size", str(size)]
        command += ["--batch", str(args.batch), "--steps", str(args.steps)]
        command += ["--threads", str(args.threads), "--attention", args.attention]
        line = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(line.strip().splitlines()[-1])
        print(
            f"{preset} {size}x{size} batch {args.batch}, {args.threads} threads, attention "
            f"{args.attention}: step "
            f"median {result['median_s']} s (min {result['min_s']} s, {args.steps} steps; "
            f"CPU {result['median_cpu_s']} s), "
            f"peak RSS {result['peak_rss_gib']} GiB, load avg {result['load_avg_1min']}"
        )
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
