"""One row per job across many logs: how each job started, what it trained, how it ended.

`build_history(paths) -> list[JobRow]` reuses the doctor's collection, facts and rules
(`reading.job_files`, `facts.build.build_facts`, `diagnosis.diagnose_facts`); nothing here parses
a log.
A job whose `.out` is missing (only SLURM's `.err` survived) is completed from its run output
directory (`outputs/*_<jobid>/log.txt`) when one lies beside the logs. (`history.render.to_frame`
turns rows into a pandas DataFrame for the CSV.)
"""

from __future__ import annotations

import glob
import math
import statistics
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from tbx_doctor.diagnosis import Report, diagnose_facts
from tbx_doctor.errors import InputNotFound
from tbx_doctor.facts.build import build_facts, parse_clock
from tbx_doctor.facts.job import JobFacts
from tbx_doctor.facts.source_run import checkpoint_job_id
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.reading.epoch_metrics import EpochMetrics, read_epoch_metrics
from tbx_doctor.reading.job_files import JobFiles, collect_jobs
from tbx_doctor.reading.run_dir import looks_like_output_dir

LOG_GLOBS = ("*.out", "*.out.gz", "*.err", "*.err.gz", "*.log", "*.log.gz")  # as `check`
CRASHES = ("crash", "cuda-oom", "host-oom", "nan-loss", "nccl-error", "config-error")
CRASHES += ("data-error", "node-fail")
ENDINGS = {"completed": "finished", "time-limit": "time limit", "zero-epochs": "zero epochs"}
KILLED = ("time limit", "cancelled", "crashed", "preempted")


@dataclass(frozen=True)
class EpochPoint:
    """One epoch a job trained: mean train loss, COCO AP/AP50 (fractions), EMA AP, and its
    training seconds (the trainer's `Total time` line: what the checklist and profiles time);
    `wall_seconds`: log.txt's epoch_time (training, evaluation and saving)."""

    epoch: int
    finished: bool
    loss: float | None
    ap: float | None
    ap50: float | None
    ema_ap: float | None
    seconds: float | None
    wall_seconds: float | None = None


@dataclass(frozen=True)
class JobRow:
    """What one job did. Times are local ISO strings as the cluster printed them; None where
    the files do not say. `wall_estimated`: start inferred from log.txt (a lower bound)."""

    job_id: str | None
    kind: str  # "train" or "eval"
    start: str | None
    end: str | None
    wall_seconds: float | None
    wall_estimated: bool
    gpus: int
    ending: str  # finished | time limit | cancelled | crashed | zero epochs | running | ...
    ending_detail: str | None
    path: str | None  # fresh | pretrained | resume
    source_checkpoint: str | None
    source_job: str | None
    source_epoch: int | None
    epochs_planned: int | None
    first_epoch: int | None
    last_epoch: int | None
    last_epoch_finished: bool
    iterations_per_epoch: int | None
    iterations: int | None  # iterations this job ran (from its iteration lines)
    seconds_per_epoch: float | None  # median training seconds (`Total time`), finished epochs
    last_loss: float | None
    last_ap: float | None
    last_ap50: float | None
    last_ema_ap: float | None
    effective_batch: int | None
    strategy: str | None  # "batch x accumulation x GPUs"
    lost_seconds: float  # GPU time whose work no checkpoint kept
    verdict: str
    findings: tuple[str, ...]
    files: tuple[str, ...]
    output_dir: str | None
    epochs: tuple[EpochPoint, ...] = ()

    @property
    def trained(self) -> int:
        """Epochs this job finished."""
        return sum(1 for e in self.epochs if e.finished)


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; globs expanded; a folder -> its run output dir, or the logs and run
    output dirs inside it (`history logs/ outputs/`)."""
    found: list[Path] = []
    for path in paths:
        if not path.exists() and any(c in str(path) for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(path)))
            if not matches:
                raise InputNotFound(f"{path}: the pattern matches no file")
            found.extend(expand_paths(matches))
        elif path.is_dir() and not looks_like_output_dir(path):
            logs = [
                p for folder in (path, path / "logs") for g in LOG_GLOBS for p in folder.glob(g)
            ]
            runs = [p for p in sorted(path.iterdir()) if looks_like_output_dir(p)]
            if not logs and not runs:
                raise InputNotFound(
                    f"{path}: no .out/.err/.log logs and no run folders (log.txt, "
                    "config_args_all.json) in this folder or its logs/"
                )
            found.extend(sorted(logs) + runs)
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def find_run_dir(job: JobFiles) -> Path | None:
    """`*_<jobid>` output directory beside the logs (`../outputs/`, `../`, the log folder)."""
    if job.job_id is None or not job.logs:
        return None
    folder = job.logs[0].parent
    for place in (folder.parent / "outputs", folder.parent, folder):
        for candidate in sorted(place.glob(f"*_{job.job_id}")):
            if looks_like_output_dir(candidate):
                return candidate
    return None


def _ending(report: Report, facts: JobFacts) -> tuple[str, str | None]:
    reason = report.run["end_reason"]
    ending = "crashed" if reason in CRASHES else ENDINGS.get(reason, reason)
    detail = reason if ending == "crashed" else None
    trained = facts.trained_epochs
    if ending in KILLED and facts.last_phase == "test":
        detail = f"during evaluation of epoch {trained[-1].epoch}" if trained else "evaluating"
    elif ending in KILLED and trained and not trained[-1].finished:
        last = trained[-1]
        detail = f"in epoch {last.epoch} at {last.last_iter}/{last.iterations}"
    return ending, detail


def _training_seconds(epoch) -> float | None:
    """The epoch's `Total time` (training only); None when only log.txt's epoch_time (which
    includes evaluation) timed it: one meaning for min/epoch in every row."""
    line = epoch.time_line
    return epoch.seconds if line is not None and "Total time" in line.text else None


def _points(facts: JobFacts, metrics: dict[int, EpochMetrics]) -> tuple[EpochPoint, ...]:
    points = []
    for e in facts.trained_epochs:
        m = metrics.get(e.epoch)
        points.append(
            EpochPoint(
                e.epoch,
                e.finished,
                e.loss_mean,
                # log.txt keeps full precision; the printed table has three decimals.
                m.ap if m and m.ap is not None else e.ap,
                m.ap50 if m else None,
                m.ema_ap if m else None,
                _training_seconds(e),
                m.seconds if m else None,
            )
        )
    return tuple(points)


def _estimated_start(points: tuple[EpochPoint, ...], metrics: dict) -> datetime | None:
    """Start of the first epoch this job trained: its log.txt stamp minus its duration."""
    for p in points:
        m = metrics.get(p.epoch)
        if m is not None and m.stamp is not None and m.seconds is not None:
            return m.stamp - timedelta(seconds=m.seconds)
    return None


def _times(facts, report, points, metrics) -> tuple[str | None, float | None, bool]:
    start = parse_clock(facts.start)
    end_text = report.run.get("end_time")
    if start is not None:
        return start.isoformat(), facts.wall_seconds, False
    estimated = _estimated_start(points, metrics)
    end = datetime.fromisoformat(end_text) if end_text else None
    if estimated is None or end is None:
        return None, facts.wall_seconds, False
    return estimated.isoformat(timespec="seconds"), (end - estimated).total_seconds(), True


def _lost_seconds(row: JobRow, facts: JobFacts) -> float:
    """Zero-epoch job: all of it. Killed mid-epoch: the part of the epoch no checkpoint kept
    (all of the job's time when it finished no epoch); nothing when tbx-train saved on its
    signal (`requeued`: the checkpoint holds the partial epoch)."""
    if row.kind == "train" and row.ending == "zero epochs":
        return row.wall_seconds or 0.0
    trained = facts.trained_epochs
    if (
        row.ending not in KILLED
        or not trained
        or trained[-1].finished
        or "requeued" in row.findings
    ):
        return 0.0
    if not any(e.finished for e in trained):
        return row.wall_seconds or 0.0  # no epoch ended: no checkpoint of this job exists
    last = trained[-1]
    if not last.iterations or row.seconds_per_epoch is None:
        return 0.0
    done = last.last_iter - max(last.first_iter, 0) + 1
    return row.seconds_per_epoch * done / last.iterations


def _iterations(facts: JobFacts) -> int | None:
    trained = [e for e in facts.trained_epochs if e.first_iter >= 0]
    if not trained:
        return None
    return sum(e.last_iter - e.first_iter + 1 for e in trained)


def _last(points: tuple[EpochPoint, ...], field: str) -> float | None:
    values = [getattr(p, field) for p in points if getattr(p, field) is not None]
    return values[-1] if values else None


def _source_fields(facts: JobFacts) -> dict:
    """The checkpoint a resumed job named, the job that wrote it, and that job's epoch."""
    decision = facts.decision
    checkpoint = decision.source if decision and decision.mode == "resume" else None
    return {
        "source_checkpoint": checkpoint,
        "source_job": checkpoint_job_id(checkpoint) if checkpoint else None,
        "source_epoch": facts.source.epoch if facts.source else None,
    }


def _progress_fields(facts: JobFacts, points: tuple[EpochPoint, ...]) -> dict:
    """Epochs and iterations trained, seconds per epoch, and the last loss / AP values."""
    trained = facts.trained_epochs
    seconds = [p.seconds for p in points if p.finished and p.seconds is not None]
    return {
        "first_epoch": trained[0].epoch if trained else None,
        "last_epoch": trained[-1].epoch if trained else None,
        "last_epoch_finished": bool(trained and trained[-1].finished),
        "iterations_per_epoch": next((e.iterations for e in trained if e.iterations), None),
        "iterations": _iterations(facts),
        "seconds_per_epoch": statistics.median(seconds) if seconds else None,
        "last_loss": _last(points, "loss"),
        "last_ap": _last(points, "ap"),
        "last_ap50": _last(points, "ap50"),
        "last_ema_ap": _last(points, "ema_ap"),
    }


def make_row(facts: JobFacts, report: Report, run_dir: Path | None) -> JobRow:
    """The row of one job (facts from its logs, or from its output directory alone)."""
    metrics = read_epoch_metrics(run_dir or (Path(facts.output_dir) if facts.output_dir else None))
    points = _points(facts, metrics)
    start, wall, estimated = _times(facts, report, points, metrics)
    ending, detail = _ending(report, facts)
    decision, s = facts.decision, facts.strategy
    row = JobRow(
        job_id=facts.job_id,
        kind="eval" if facts.eval_only else "train",
        start=start,
        end=report.run.get("end_time"),
        wall_seconds=wall,
        wall_estimated=estimated,
        gpus=(s.world_size if s and s.world_size else 1),
        ending=ending,
        ending_detail=detail,
        path=decision.mode if decision else None,
        **_source_fields(facts),
        epochs_planned=facts.epochs_planned,
        **_progress_fields(facts, points),
        effective_batch=s.effective_batch if s else None,
        strategy=f"{s.batch_size}x{s.grad_accum or 1}x{s.world_size or 1}" if s else None,
        lost_seconds=0.0,
        verdict=report.verdict,
        findings=tuple(f.code for f in report.findings),
        files=facts.files
        + ((str(run_dir),) if run_dir and str(run_dir) not in facts.files else ()),
        output_dir=facts.output_dir or (str(run_dir) if run_dir else None),
        epochs=points,
    )
    if facts.eval_only and row.last_ap is None:
        row = replace(row, last_ap=facts.eval_ap)  # an evaluation job's result is its AP
    return replace(row, lost_seconds=_lost_seconds(row, facts))


def proven_by_resumes(rows: list[JobRow], links: list) -> list[JobRow]:
    """A killed job whose files stop after epoch E-1, but whose checkpoint the next job resumed
    at epoch E+1, trained epoch E: DINO saves the checkpoint before evaluating and writes
    log.txt's line after, so the kill came during the evaluation of E. `links`:
    history.chain.Link (job resumed from source_job, starting at first_epoch)."""
    by_id = {r.job_id: r for r in rows if r.job_id}
    proven: dict[str, JobRow] = {}
    for link in links:
        parent, done, first = by_id.get(link.source_job), link.source_last_epoch, link.first_epoch
        if parent is None or done is None or first != done + 2 or parent.ending not in KILLED:
            continue
        epoch = first - 1
        if any(p.epoch == epoch for p in parent.epochs):
            continue
        point = EpochPoint(epoch, True, None, None, None, None, None)
        proven[link.source_job] = replace(
            parent,
            epochs=(*parent.epochs, point),
            last_epoch=epoch,
            last_epoch_finished=True,
            ending_detail=f"during evaluation of epoch {epoch}",  # job link.job resumed at E+1
        )
    return [proven.get(r.job_id or "", r) for r in rows]


def _merge(log_facts: JobFacts, dir_facts: JobFacts) -> JobFacts:
    """A job known only by its .err: its ending from the .err, the rest from its output dir."""
    return replace(
        log_facts,
        epochs=dir_facts.epochs,
        decisions=log_facts.decisions or dir_facts.decisions,
        epochs_planned=log_facts.epochs_planned or dir_facts.epochs_planned,
        strategy=log_facts.strategy or dir_facts.strategy,
        source=log_facts.source or dir_facts.source,
        output_dir=dir_facts.output_dir,
        eval_only=log_facts.eval_only or dir_facts.eval_only,
    )


def _has_out(job: JobFiles) -> bool:
    return any(p.name.removesuffix(".gz").endswith(".out") for p in job.logs)


def _job_row(job: JobFiles, given: list[Path], profile: Profile, now: float | None) -> JobRow:
    facts = build_facts(job, given, now)
    report = diagnose_facts(facts, profile)
    run_dir = job.output_dir
    if job.logs and not _has_out(job) and (run_dir := find_run_dir(job)) is not None:
        dir_facts = build_facts(JobFiles(str(run_dir), output_dir=run_dir), given, now)
        facts = _merge(facts, dir_facts)
    return make_row(facts, report, run_dir)


def build_history(
    paths: list[Path], profile: Profile | None = None, now: float | None = None
) -> list[JobRow]:
    """One row per job among `paths` (files, folders, globs), ordered by start then job id.

    A job given both as logs and as an output directory is one row (the logs' row).
    """
    given = expand_paths(paths)
    rows: dict[str, tuple[bool, JobRow]] = {}  # key -> (row built from logs, row)
    for job in collect_jobs(given):
        row = _job_row(job, given, profile or Profile(), now)
        key = row.job_id or job.stem
        from_logs = bool(job.logs)
        if key not in rows or (from_logs and not rows[key][0]):
            rows[key] = (from_logs, row)
    return sorted((row for _, row in rows.values()), key=_order)


def _order(row: JobRow) -> tuple:
    """By start; a job whose start is unknown (only its .err kept) by its end time; then by
    first epoch and job id (SLURM numbers jobs in submission order)."""
    first = row.first_epoch if row.first_epoch is not None else math.inf
    number = int(row.job_id) if row.job_id and row.job_id.isdigit() else math.inf
    return (row.start or row.end or "9999", first, number, row.job_id or "")
