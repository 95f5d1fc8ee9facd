"""Synthetic trajectories and logs for the learning-quality tests, and the real runs' paths."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REAL_CANDIDATES = (REPO / "../shared/real-logs", Path("/work/shared/real-logs"))
RUN_A = ("39430799", "39487851", "39543743")  # collapsed
RUN_B = ("39627174", "39685032", "39687560", "39707249")  # learned


def real_root() -> Path | None:
    for candidate in REAL_CANDIDATES:
        if (candidate / "dino_tbx11k" / "outputs").is_dir():
            return candidate.resolve() / "dino_tbx11k"
    return None


def series(values: list[float], first: int = 0) -> list[tuple[int, float]]:
    return [(first + i, v) for i, v in enumerate(values)]


def healthy_ap(epochs: int = 30, start: float = 0.03, end: float = 0.18) -> list[float]:
    """AP rising from `start` to `end` (saturating), as run B did."""
    return [start + (end - start) * (1 - 0.9 ** (e * 1.5)) for e in range(epochs)]


def healthy_loss(epochs: int = 30, start: float = 3.0, end: float = 1.1) -> list[float]:
    return [end + (start - end) * 0.85**e for e in range(epochs)]


def noisy(values: list[float], seed: int, spread: float = 0.5, outlier: int | None = None):
    """Each value x uniform(1 - spread, 1 + spread); one epoch (outlier) nearly zero."""
    rng = random.Random(seed)
    out = [v * rng.uniform(1 - spread, 1 + spread) for v in values]
    if outlier is not None:
        out[outlier] = values[outlier] * 0.02
    return out


def iteration(epoch: int, i: int, n: int, avg: float) -> str:
    return (
        f"Epoch: [{epoch}]  [{i:>3}/{n}]  eta: 0:00:10  lr: 0.000100  class_error: 100.00  "
        f"loss: 0.0000 ({avg:.4f})  loss_ce: 0.1000 (0.1000)  time: 0.1300  data: 0.0001  max "
        "mem: 5139"
    )


def epoch_block(epoch: int, loss: float, ap: float, n: int = 5) -> list[str]:
    lines = [iteration(epoch, i, n, loss) for i in range(n)]
    lines += [
        f"Epoch: [{epoch}] Total time: 0:20:00 (0.1300 s / it)",
        f"Averaged stats: lr: 0.000100  class_error: 50.00  loss: {loss:.4f} ({loss:.4f})",
        "IoU metric: bbox",
        f" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = {ap:.3f}",
    ]
    return lines


def head(job: int = 5001) -> list[str]:
    return [
        f"Job ID: {job}",
        "Start Time: Mon Nov 17 10:00:00 MST 2025",
        "Using pretrained weights: /w/checkpoint0011_4scale.pth",
        "Start training",
    ]


def write(path: Path, lines: list[str], old: bool = True) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    if old:
        stamp = time.time() - 3600
        os.utime(path, (stamp, stamp))
    return path


def run_log(path: Path, aps: list[float], losses: list[float], ending: bool = True) -> Path:
    lines = head()
    for epoch, (ap, loss) in enumerate(zip(aps, losses, strict=True)):
        lines += epoch_block(epoch, loss, ap)
    if ending:
        lines += ["Training time 2:00:00", "End Time: Mon Nov 17 12:00:00 MST 2025"]
    return write(path, lines, old=ending)


def log_txt(folder: Path, aps: list[float], losses: list[float]) -> Path:
    """A DINO-style run folder: log.txt, one JSON object per epoch."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [
        {"train_loss": loss, "test_coco_eval_bbox": [ap, ap * 2] + [0.0] * 10, "epoch": e}
        for e, (ap, loss) in enumerate(zip(aps, losses, strict=True))
    ]
    (folder / "log.txt").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder
