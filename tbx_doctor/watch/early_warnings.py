"""Early warnings that only make sense while a job runs (`tbx-doctor watch`).

The doctor's rules judge a finished log; these judge a growing one against the clock: no
iteration long after `Start training`, a running loss stuck at exactly 0 with class_error 100,
the time limit close while the current epoch is unsaved. They return `EarlyWarning`s, which
have the shape of a `Finding` but codes of their own (`WATCH_CODES`, listed by `watch --help`
and, marked watch-only, by `tbx-doctor codes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tbx_doctor.errors import DoctorError
from tbx_doctor.facts.job import JobFacts
from tbx_doctor.findings import Finding
from tbx_doctor.reading.logscan import Line
from tbx_doctor.reading.stream import ReadStatus, iter_chunks
from tbx_doctor.rules.describe import minutes, where

WATCH_CODES: dict[str, tuple[str, str]] = {
    "training-stalled": ("warning", "No iteration line N minutes after `Start training`."),
    "loss-stuck-zero": (
        "warning",
        "The running loss is exactly 0 with class_error 100 over many iterations.",
    ),
    "time-limit-near": ("warning", "The time limit is near and the current epoch is unsaved."),
}
END_TIME_KEY = b"SLURM_JOB_END_TIME"


@dataclass(frozen=True)
class EarlyWarning(Finding):
    """A `Finding` whose code is one of WATCH_CODES (check's CODES stay check's own)."""

    def __post_init__(self) -> None:
        if self.code not in WATCH_CODES:
            raise ValueError(f"unknown watch code {self.code!r}")


@dataclass(frozen=True)
class Clock:
    """What the watcher knows about time: now, when `Start training` was first seen, and the
    job's deadline (all epoch seconds; None where unknown)."""

    now: float
    start_training_seen: float | None
    deadline: float | None
    deadline_origin: str = ""


def _warning(code: str, title: str, evidence: list, explanation: str, fix: str) -> EarlyWarning:
    kept = tuple(e for e in evidence if e is not None)
    return EarlyWarning(code, WATCH_CODES[code][0], title, kept, explanation, fix)


def check_stalled(facts: JobFacts, clock: Clock, stall_minutes: float) -> list[EarlyWarning]:
    """`Start training` printed, no iteration line `stall_minutes` later, job not ended."""
    if facts.start_training is None or facts.iterations_seen or facts.ended:
        return []
    if clock.start_training_seen is None:
        return []
    waited = clock.now - clock.start_training_seen
    if waited < stall_minutes * 60:
        return []
    return [
        _warning(
            "training-stalled",
            f"No iteration {minutes(waited)} after `Start training`",
            [facts.start_training, facts.last_line],
            f"`Start training` appeared at {where(facts.start_training)} and no iteration line "
            f"followed in {minutes(waited)} of watching (threshold {stall_minutes:g} min). The "
            "first iterations normally print within a minute or two.",
            "Look at the .err file and the node (data loading, a hung NCCL init, a dead "
            "worker); py-spy dump the process; cancel the job if it stays silent.",
        )
    ]


def check_loss_stuck_zero(facts: JobFacts, iterations: int) -> list[EarlyWarning]:
    """The current epoch's running mean loss is exactly 0 after `iterations` iterations while
    class_error is 100: no image with targets has contributed any loss."""
    trained = facts.trained_epochs
    if not trained:
        return []
    epoch = trained[-1]
    ran = epoch.last_iter - max(epoch.first_iter, 0)
    text = epoch.last.text if epoch.last else ""
    if epoch.loss_mean != 0.0 or ran < iterations or "class_error: 100.00" not in text:
        return []
    return [
        _warning(
            "loss-stuck-zero",
            f"Loss exactly 0 for {ran} iterations of epoch {epoch.epoch}",
            [epoch.first, epoch.last],
            f"The running mean loss is 0.0000 at iteration {epoch.last_iter} "
            f"({where(epoch.last)}) with class_error 100.00. A mean of exactly 0 over {ran} "
            "iterations means no image with boxes produced any loss: the boxes are not reaching "
            "the criterion (annotations, category ids, filtering).",
            "Check the annotation file and the data report (images with boxes, category ids "
            "matching num_classes); tbx-train's data report prints both.",
        )
    ]


def _saved_in_epoch(facts: JobFacts) -> bool:
    """A checkpoint line after the current epoch's first iteration line (same file)."""
    epoch = facts.trained_epochs[-1]
    saves = facts.signal("saved_ckpt") + facts.signal("sigusr1")
    first = epoch.first
    return any(first is not None and s.file == first.file and s.line > first.line for s in saves)


def check_time_limit_near(
    facts: JobFacts, clock: Clock, margin_minutes: float
) -> list[EarlyWarning]:
    """The deadline is within `margin_minutes`, an epoch is in progress and nothing saved it."""
    if clock.deadline is None or facts.ended or not facts.trained_epochs:
        return []
    left = clock.deadline - clock.now
    epoch = facts.trained_epochs[-1]
    if left > margin_minutes * 60 or epoch.finished or _saved_in_epoch(facts):
        return []
    return [
        _warning(
            "time-limit-near",
            f"Time limit in {minutes(max(left, 0))}; epoch {epoch.epoch} is unsaved",
            [epoch.first, epoch.last],
            f"The job ends at its time limit in {minutes(max(left, 0))} "
            f"({clock.deadline_origin}); epoch {epoch.epoch} is at iteration {epoch.last_iter}/"
            f"{epoch.iterations} and no checkpoint was written since it began: its work will be "
            "lost when SLURM kills the job.",
            "Save on SIGUSR1 (`#SBATCH --signal=B:USR1@120`, as scripts/*.sbatch do), or shorten "
            "epochs / use mid-epoch checkpoints so a resume loses little.",
        )
    ]


def read_end_time(path: Path) -> tuple[float, Line] | None:
    """SLURM_JOB_END_TIME from an environment dump in the log's first chunk (epoch seconds)."""
    chunks = iter_chunks(path, ReadStatus(path))
    try:
        chunk, start, end = next(chunks)
    except (StopIteration, DoctorError):
        return None
    finally:
        chunks.close()  # only the head is needed: release the file now
    at = chunk.find(END_TIME_KEY, start, end)
    if at < 0:
        return None
    line_start = chunk.rfind(b"\n", start, at) + 1
    line_end = chunk.find(b"\n", at, end)
    text = chunk[line_start : line_end if line_end >= 0 else end].decode("utf-8", "replace")
    digits = "".join(c if c.isdigit() else " " for c in text.split("SLURM_JOB_END_TIME", 1)[1])
    if not digits.split():
        return None
    number = chunk.count(b"\n", start, line_start) + 1
    return float(digits.split()[0]), Line(str(path), number, text.strip())
