"""Shared helpers for the history/watch/plot tests: real-log location, small tbx-train logs."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP_REASON = "../shared/real-logs (relative to the repo root) is absent: real-log tests need it"


def real_logs_dir() -> Path:
    """The real TBX11K logs folder, or skip the calling test with the reason."""
    for candidate in (REPO / "../shared/real-logs", Path("/work/shared/real-logs")):
        if (candidate / "dino_tbx11k" / "logs").is_dir():
            return candidate.resolve() / "dino_tbx11k"
    pytest.skip(SKIP_REASON)


@lru_cache(maxsize=1)
def real_history():
    """The history of every real log (built once per test session: ~2 s)."""
    from tbx_doctor.history.chain import build_chains
    from tbx_doctor.history.rows import build_history

    return build_chains(build_history([real_logs_dir()]))


def iteration(epoch: int, i: int, n: int, avg: float, loss: float = 0.0) -> str:
    return (
        f"Epoch: [{epoch}]  [{i:>3}/{n}]  eta: 0:00:10  lr: 0.000100  class_error: 100.00  "
        f"loss: {loss:.4f} ({avg:.4f})  loss_ce: 0.1000 (0.1000)  time: 0.1300  data: 0.0001"
    )


def epoch_lines(epoch: int, n: int = 20, avg: float = 2.0, ap: float = 0.03) -> list[str]:
    """A whole epoch as DINO prints it: iterations, total time, the AP line."""
    lines = [iteration(epoch, i, n, avg) for i in range(n)]
    lines.append(f"Epoch: [{epoch}] Total time: 0:20:00 (0.1300 s / it)")
    lines.append(
        f" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = {ap:.3f}"
    )
    return lines


def tbx_log(
    job: str,
    source: str | None,
    epochs: range,
    planned: int = 4,
    accum: int = 2,
    end: str = "Training time 0:40:00",
) -> str:
    """A tbx-train job log: decision line, Run plan, epochs, ending."""
    start = epochs.start
    if source is None:
        decision = "Training from scratch"
        plan_source = "-"
    else:
        decision = (
            f"Resuming from checkpoint: /runs/run_{source}/checkpoint.pth (epoch {start - 1})"
        )
        plan_source = f"/runs/run_{source}/checkpoint.pth"
    mode = "fresh" if source is None else "resume"
    lines = [
        f"Job ID: {job}",
        "Start Time: Mon Nov 17 10:00:00 MST 2025",
        decision,
        f"Run plan: mode={mode} source={plan_source} source_epoch={start - 1} "
        f"start_epoch={start} epochs={planned} epochs_to_run={planned - start} batch_size=1 "
        f"grad_accum={accum} world_size=1 effective_batch={accum}",
        "Start training",
    ]
    for epoch in epochs:
        lines += epoch_lines(epoch)
    lines += [end, "End Time: Mon Nov 17 12:00:00 MST 2025"]
    return "\n".join(lines) + "\n"
