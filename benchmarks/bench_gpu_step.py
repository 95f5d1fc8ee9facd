"""Benchmark one DINO-4scale R50 training step on a CUDA device, fp32 and bf16 autocast.

    python benchmarks/bench_gpu_step.py                  # 512x512 and 800x800, batch 1 and 2
    python benchmarks/bench_gpu_step.py --size 512 --batch 2 --steps 20

Forward + loss + backward + clip + AdamW step, synchronised, median over `--steps` steps after
3 warm-up steps, for both attention cores (the CUDA default is grid_sample). Prints a line per
configuration, the device name, and peak CUDA memory. Skips with a message without a GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def _step_fn(model, criterion, optimizer, images, masks, targets, dtype):
    import torch

    def step() -> float:
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            outputs = model(images, masks, targets)
            losses = criterion(outputs, targets)
        loss = sum(losses[k] * w for k, w in criterion.weight_dict.items())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        return loss.item()

    return step


def measure(size: int, batch: int, steps: int, precision: str, core: str) -> dict:
    """Median seconds of one step of the tbx11k model at `size` px on cuda:0."""
    import torch

    from tbx_train.config import model_preset
    from tbx_train.model import build_dino, deformable_attention

    chosen = getattr(deformable_attention, f"sample_by_{core}")
    deformable_attention.multi_scale_deformable_attention = chosen
    torch.manual_seed(0)
    model, criterion, _ = build_dino(model_preset("tbx11k"))
    model.cuda().train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    images = torch.randn(batch, 3, size, size, device="cuda")
    masks = torch.zeros(batch, size, size, dtype=torch.bool, device="cuda")
    boxes = torch.tensor([[0.3, 0.4, 0.2, 0.3], [0.7, 0.5, 0.15, 0.25]], device="cuda")
    labels = torch.tensor([1, 3], device="cuda")
    targets = [{"labels": labels, "boxes": boxes} for _ in range(batch)]
    dtype = torch.bfloat16 if precision == "bf16" else None
    step = _step_fn(model, criterion, optimizer, images, masks, targets, dtype)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for index in range(steps + 3):
        torch.cuda.synchronize()
        start = time.perf_counter()
        loss = step()
        torch.cuda.synchronize()
        if index >= 3:
            times.append(time.perf_counter() - start)
    return {
        "device": torch.cuda.get_device_name(0),
        "size": size,
        "batch": batch,
        "precision": precision,
        "attention": core,
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "last_loss": round(loss, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, action="append", help="square image side (px)")
    parser.add_argument("--batch", type=int, action="append", help="images per step")
    parser.add_argument("--steps", type=int, default=10, help="timed steps after 3 warm-ups")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench_gpu_step: no CUDA device here; nothing measured")
        return 0
    for size in args.size or [512, 800]:
        for batch in args.batch or [1, 2]:
            for precision in ("fp32", "bf16"):
                for core in ("grid_sample", "embedding_bag"):
                    try:
                        result = measure(size, batch, args.steps, precision, core)
                    except (RuntimeError, NotImplementedError) as error:
                        first = str(error).splitlines()[0]
                        print(f"{size}x{size} batch {batch} {precision} {core}: failed: {first}")
                        continue
                    print(
                        f"{result['device']}: {size}x{size} batch {batch} {precision} "
                        f"{core}: step median {result['median_s']} s (min {result['min_s']}), "
                        f"peak {result['peak_mem_gib']} GiB"
                    )
                    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
