"""Time DINO's matcher + criterion (forward and backward) at the paper's sizes on CPU.

Run: `python benchmarks/bench_criterion.py [--threads N] [--repeats N]` from the repository root.
Inputs are random tensors with the model contract's shapes (the network is not involved): batch 2,
900 queries, 6 decoder layers, denoising as the official quirk sizes it for the batch's max GT.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "model"))
from detection_outputs import random_dn_meta, random_outputs, random_targets

from tbx_train.config import MODEL_PRESETS
from tbx_train.model.criterion import SetCriterion, build_weight_dict, weighted_total
from tbx_train.model.matcher import HungarianMatcher


def time_step(num_classes: int, counts: list[int], repeats: int) -> list[float]:
    """Seconds per criterion forward + backward, one entry per repeat."""
    config = MODEL_PRESETS["dino-4scale-r50"]
    generator = torch.Generator().manual_seed(0)
    max_gt = max(counts)
    groups = max(1, 2 * config.dn_number // (2 * max_gt))  # the official group count
    matcher = HungarianMatcher(config.set_cost_class, config.set_cost_bbox, config.set_cost_giou)
    criterion = SetCriterion(num_classes, matcher, build_weight_dict(config))
    targets = random_targets(counts, num_classes, generator)
    seconds = []
    for _ in range(repeats):
        outputs = random_outputs(len(counts), config.num_queries, num_classes, 6, generator)
        outputs["dn_meta"] = random_dn_meta(len(counts), max_gt, groups, num_classes, 6, generator)
        start = time.perf_counter()
        losses = criterion(outputs, targets)
        weighted_total(losses, criterion.weight_dict).backward()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per case")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for num_classes, counts in ((4, [3, 0]), (4, [7, 3]), (91, [7, 3])):
        seconds = time_step(num_classes, counts, args.repeats)
        median_ms, min_ms, max_ms = (1e3 * f(seconds) for f in (statistics.median, min, max))
        print(
            f"classes={num_classes:3d} boxes={counts}: median {median_ms:.1f} ms "
            f"(min {min_ms:.1f}, max {max_ms:.1f}, threads {args.threads})"
        )


if __name__ == "__main__":
    main()
