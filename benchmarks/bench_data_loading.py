"""Data-loading throughput: synthetic TBX11K through CocoDetection + collate_fn in a DataLoader.

Measures images/s for the training pipeline (read PNG, flip, multi-scale resize, normalise, pad)
at 128 px (the demo's synthetic default) and 512 px (TBX11K's size), with 0 and 2 workers, plus
how fast `write_synthetic_tbx11k` writes images. Median of 3 passes after a warm-up pass; prints
a table and one JSON line. Run: `python benchmarks/bench_data_loading.py [--images N]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tbx_train.data import (
    CocoDetection,
    DetectionTransform,
    TransformConfig,
    collate_fn,
    tbx11k_source,
    write_synthetic_tbx11k,
)


def _loader_rate(dataset: CocoDetection, workers: int, batch_size: int, passes: int = 3) -> float:
    """Median images/s over `passes` epochs, after one warm-up epoch (worker start-up excluded)."""
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_fn,
        persistent_workers=workers > 0,
    )
    rates = []
    for epoch in range(passes + 1):
        dataset.set_epoch(epoch)  # persistent workers keep their copy: draws differ, cost does not
        start, seen = time.perf_counter(), 0
        for images, _masks, _targets in loader:
            seen += images.shape[0]
        if epoch:
            rates.append(seen / (time.perf_counter() - start))
    return statistics.median(rates)


def _bench_size(root: Path, size: int, images: int) -> list[dict]:
    start = time.perf_counter()
    write_synthetic_tbx11k(root, images=images, seed=0, size=size)
    write_rate = images / (time.perf_counter() - start)
    source = tbx11k_source(root)
    transform = DetectionTransform(TransformConfig.around(size), train=True)
    dataset = CocoDetection(source.train_json, source.image_root, transform)
    batch_size = 4 if size <= 128 else 2
    rows = []
    for workers in (0, 2):
        rate = _loader_rate(dataset, workers, batch_size)
        rows.append(
            {"size_px": size, "workers": workers, "batch_size": batch_size,
             "images_per_s": round(rate, 1), "synth_write_images_per_s": round(write_rate, 1)}
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=240, help="synthetic images per size")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core per process: the workers share the box's 2 cores
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (128, 512):
            rows += _bench_size(Path(tmp) / f"synth{size}", size, args.images)
    print(f"{'size':>5} {'workers':>7} {'batch':>5} {'images/s':>9} {'synth write/s':>13}")
    for r in rows:
        print(f"{r['size_px']:>5} {r['workers']:>7} {r['batch_size']:>5} "
              f"{r['images_per_s']:>9.1f} {r['synth_write_images_per_s']:>13.1f}")  # fmt: skip
    print(json.dumps({"benchmark": "data_loading", "rows": rows}))


if __name__ == "__main__":
    main()
