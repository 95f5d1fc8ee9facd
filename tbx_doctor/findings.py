"""Finding codes (DESIGN 4.2: stable, kebab-case, never renamed) and the Finding record."""

from __future__ import annotations

from dataclasses import dataclass

from tbx_doctor.reading.logscan import Line

SEVERITY_RANK = {"error": 3, "warning": 2, "info": 1}

# code -> (default severity, what it means). `tbx-doctor codes` prints this table.
CODES: dict[str, tuple[str, str]] = {
    "immediate-exit": ("error", "The job ended within minutes without training any iteration."),
    "zero-epochs": ("error", "A training job ran its epoch loop zero times."),
    "false-success": ("error", "A line claims success although the job trained nothing or failed."),
    "resumed-from-checkpoint": (
        "info",
        "The job resumed from a checkpoint (which one, at which epoch).",
    ),
    "used-pretrained": ("info", "The job started from pretrained weights."),
    "fresh-no-pretrained": (
        "warning",
        "The job trained from random initialisation (no pretrained weights, no resume).",
    ),
    "unexpected-resume": (
        "error",
        "The job resumed although a fresh/pretrained start was expected.",
    ),
    "unexpected-fresh": ("error", "The job started fresh although a resume was expected."),
    "resume-strategy-mismatch": (
        "error",
        "The resume changed batch size / accumulation / GPU count (effective batch).",
    ),
    "nan-loss": ("error", "A loss became NaN or infinite."),
    "loss-explosion": ("error", "The running loss rose far above its earlier level."),
    "loss-abnormal-first-epoch": (
        "warning",
        "Epoch 0's mean loss is outside the profile's expected range.",
    ),
    "low-first-epoch-ap": ("warning", "AP after epoch 0 is below the profile's expectation."),
    "crash-traceback": ("error", "A Python traceback ended the job (exception quoted)."),
    "cuda-oom": ("error", "The GPU ran out of memory."),
    "host-oom-killed": ("error", "SLURM / the kernel killed the job for exceeding host memory."),
    "nccl-error": ("error", "NCCL / torch.distributed failed or timed out."),
    "time-limit": ("warning", "SLURM cancelled the job at its time limit."),
    "cancelled": ("warning", "The job was cancelled (scancel or a signal)."),
    "preempted": ("warning", "The job was preempted or requeued by SLURM."),
    "node-fail": ("error", "A node failure ended the job."),
    "incomplete-log": (
        "warning",
        "The log ends without any ending (cut off, truncated, or still being written).",
    ),
    "data-error": (
        "error",
        "The data set could not be read (missing/corrupt files, bad annotations).",
    ),
    "config-error": (
        "error",
        "Bad arguments/configuration, a refused run plan, or a checkpoint that does not fit the "
        "model.",
    ),
    "banner-contradiction": (
        "warning",
        "A banner line claims one path (e.g. FRESH training) but the run took another.",
    ),
    "task-failed": (
        "error",
        "srun/torchrun reported a task that exited with an error or was killed (exit 75 only "
        "when no tbx-train save line proves the checkpoint).",
    ),
    "requeued": (
        "info",
        "tbx-train saved a resumable checkpoint on a signal and exited 75 for the job chain "
        "(srun's exit-75 lines are this planned stop).",
    ),
    # Learning quality (rules/learning.py; thresholds: `tbx-doctor codes --explain`).
    "ap-collapsed": (
        "error",
        "AP fell far below the run's own best (3-epoch trend) and stayed there.",
    ),
    "not-learning": (
        "warning",
        "AP stays near zero after enough epochs, or the loss never fell from epoch 0's.",
    ),
    "loss-diverging": (
        "warning",
        "The loss trend rose well above its own minimum while AP fell or stayed near zero.",
    ),
    "resume-regression": (
        "warning",
        "After a resume, AP fell far below (or the loss rose far above) its level before it.",
    ),
    "off-reference": (
        "warning",
        "AP fell below / the loss rose above the reference run's per-epoch band (--reference or "
        "a profile's [bands]).",
    ),
}


@dataclass(frozen=True)
class Finding:
    """One diagnosis: what (code, title), how bad, the quoted lines, the computed why, the fix."""

    code: str
    severity: str
    title: str
    evidence: tuple[Line, ...]
    explanation: str
    fix: str

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown finding code {self.code!r}")


def finding(
    code: str,
    title: str,
    evidence: list[Line | None] | tuple,
    explanation: str,
    fix: str,
    severity: str | None = None,
) -> Finding:
    """Build a Finding with the code's default severity; None evidence entries are dropped."""
    kept = tuple(dict.fromkeys(e for e in evidence if e is not None))
    return Finding(code, severity or CODES[code][0], title, kept, explanation, fix)
