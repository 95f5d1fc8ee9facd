"""What the files read could show at all: the trainer's own output, the job's start, whether
the log may still be written, and which files would tell what these do not (the facts behind
`JobFacts.training`: seen / absent / unknown)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from tbx_doctor.reading import patterns as P
from tbx_doctor.reading.job_files import JobFiles
from tbx_doctor.reading.logscan import Line, LogScan
from tbx_doctor.reading.run_dir import OutputDir

RUNNING_GRACE_SECONDS = 600.0  # a log touched this recently, with no ending, may be running
STALE_STAMP_SECONDS = 2 * 86400.0  # a last line stamped this long before the file's mtime


def still_growing(job: JobFiles, ended: bool, now: float, last: Line | None = None) -> bool:
    """Written to in the last minutes and no ending seen: the job may be running. A last line
    stamped days ago is a copy of an old log (a fresh copy has a fresh modification time)."""
    plain = [p for p in job.logs if not p.name.endswith(".gz")]  # a .gz is never written live
    if ended or not plain:
        return False
    newest = max(p.stat().st_mtime for p in plain)
    if now - newest >= RUNNING_GRACE_SECONDS:
        return False
    stamped = _stamp(last.text) if last is not None else None
    return stamped is None or newest - stamped < STALE_STAMP_SECONDS


def _stamp(text: str) -> float | None:
    """Epoch seconds of the date-time a log line starts with or holds (ISO or glog), if any."""
    match = P.LINE_STAMP.search(text[:200])
    if match is None:
        return None
    try:
        return datetime(*(int(g) for g in match.groups())).timestamp()
    except ValueError:
        return None


# Lines a job prints at its start (any trainer): a log holding one was read from the beginning.
START_KINDS = (
    "start_time",
    "job_id",
    "command",
    "namespace",
    "run_plan",
    "start_training",
    "resume",
    "pretrained",
    "scratch",
    "found_ckpt",
    "effective_batch",
    "output_dir",
    "project_root",
    "eval_banner",
    "ckpt_loading",
    "trainer_start",
)


def _is_err(path: Path) -> bool:
    return path.name.removesuffix(".gz").endswith(".err")


def coverage(job: JobFiles, scans: list[LogScan], signals: dict, output: OutputDir | None) -> dict:
    """What the files read could show: the trainer's own output, the job's start, and which
    files would tell what these do not."""
    starts = [line for kind in START_KINDS for line in signals.get(kind, ())]
    order = {str(p): i for i, p in enumerate(job.logs)}
    start = min(starts, key=lambda e: (order.get(e.file, 0), e.line)) if starts else None
    records = output.records if output else []
    if not job.logs and records:  # an output directory alone: its log.txt from its first epoch
        start = min(records, key=lambda r: r.line.line).line
    stdout_read = not job.logs or any(not _is_err(p) for p in job.logs)
    would_tell = [m.removesuffix("[.gz]") for m in job.missing if ".out" in m]
    if start is None and stdout_read and job.logs:
        would_tell.append("the whole log from the job's first line")
    if output is None or not output.records:
        would_tell.append("the run's log.txt")
    # An empty .err is the normal case; an empty .out (or a lone empty log) says nothing.
    empty = [s.path for s in scans if s.status.bytes_read == 0]
    empty = [p for p in empty if not _is_err(p) or len(job.logs) == 1]
    return {
        "stdout_read": stdout_read,
        "start_seen": start,
        "would_tell": tuple(would_tell),
        "empty_logs": tuple(str(p) for p in empty),
        "output_records": len(records),
        "nonfinite_records": tuple(
            r.line for r in records if r.train_loss is not None and not math.isfinite(r.train_loss)
        ),
    }
