"""Build small training logs in the formats tbx-doctor reads (DINO lines, banners, SLURM)."""

from __future__ import annotations

import os
import time
from pathlib import Path

CKPT = "/scratch/u/proj/outputs/run_{job}/checkpoint.pth"


def iteration(epoch: int, i: int, n: int, loss: float, avg: float) -> str:
    return (
        f"Epoch: [{epoch}]  [{i:>3}/{n}]  eta: 0:00:10  lr: 0.000100  class_error: 100.00  "
        f"loss: {loss:.4f} ({avg:.4f})  loss_ce: 0.1000 (0.1000)  time: 0.1300  data: 0.0001  max "
        "mem: 5139"
    )


def epoch_lines(
    epoch: int,
    n: int = 40,
    loss: float = 2.2,
    ap: float | None = 0.03,
    minutes: int = 20,
    avg_of=None,
) -> list[str]:
    """n iteration lines (running average `avg_of(i)` or constant `loss`), total time, eval."""
    lines = [iteration(epoch, i, n, loss, avg_of(i) if avg_of else loss) for i in range(n)]
    lines.append(f"Epoch: [{epoch}] Total time: 0:{minutes:02d}:00 (0.1300 s / it)")
    lines.append(f"Averaged stats: lr: 0.000100  class_error: 50.00  loss: {loss:.4f} ({loss:.4f})")
    lines.append("Test:  [0/5]  eta: 0:00:01  class_error: 0.00  loss: 1.0000 (1.0000)")
    lines.append("Test: Total time: 0:00:05 (0.0500 s / it)")
    if ap is not None:
        lines.append("IoU metric: bbox")
        lines.append(
            f" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = {ap:.3f}"
        )
    return lines


def banner(job: int, start: str = "Mon Nov 17 10:00:00 MST 2025") -> list[str]:
    return ["=" * 20, f"Job ID: {job}", "Node: sg001", f"Start Time: {start}", "=" * 20]


def ending(end: str = "Mon Nov 17 13:00:00 MST 2025", time_text: str = "2:50:00") -> list[str]:
    return [f"Training time {time_text}", "Training completed successfully!", f"End Time: {end}"]


def healthy(job: int = 1001, epochs: int = 2) -> list[str]:
    """A fresh run from pretrained weights that trains `epochs` epochs and ends normally."""
    lines = [*banner(job), "Using pretrained weights: /w/checkpoint0011_4scale.pth"]
    lines.append(
        "Run plan: mode=pretrained source=/w/checkpoint0011_4scale.pth source_epoch=-1 "
        "start_epoch=0 "
        f"epochs={epochs} epochs_to_run={epochs} batch_size=1 grad_accum=2 world_size=1 "
        "effective_batch=2"
    )
    lines.append("Start training")
    for e in range(epochs):
        lines += epoch_lines(e, loss=2.2 - 0.1 * e)
    return lines + ending()


def resumed(
    job: int, source_job: int, first_epoch: int, epochs: int, namespace: str = ""
) -> list[str]:
    """A DINO-style resumed run (wrapper banner + Namespace) training first_epoch..epochs-1."""
    lines = [
        *banner(job),
        f"Resuming from previous job checkpoint: {CKPT.format(job=source_job)}",
        "Resuming from checkpoint - pretrained weights not needed",
    ]
    if namespace:
        lines.append(namespace)
    lines.append("Start training")
    for e in range(first_epoch, epochs):
        lines += epoch_lines(e, loss=1.5)
    return lines + ending()


def namespace(epochs: int, batch: int = 1, accum: int | None = None, job: int = 1) -> str:
    accum_text = f", gradient_accumulation_steps={accum}" if accum else ""
    return (
        "Namespace(config_file='c.py', options=None, "
        f"output_dir='/scratch/u/proj/outputs/run_{job}', "
        f"resume='', pretrain_model_path=None, start_epoch=0, eval=False, world_size=1, "
        f"batch_size={batch}, epochs={epochs}{accum_text}, lr=0.0001)"
    )


def write_log(folder: Path, name: str, lines: list[str] | str, old: bool = True) -> Path:
    """Write a log; by default make it an hour old so it is not taken for a running job."""
    path = folder / name
    text = lines if isinstance(lines, str) else "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    if old:
        stamp = time.time() - 3600
        os.utime(path, (stamp, stamp))
    return path
