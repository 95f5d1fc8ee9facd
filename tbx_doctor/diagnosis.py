"""Diagnose jobs: paths -> facts -> findings + checklist + run summary -> `Report` (DESIGN 4.3)."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tbx_doctor.facts.build import build_facts, parse_clock
from tbx_doctor.facts.job import JobFacts
from tbx_doctor.findings import Finding
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.reading.job_files import collect_jobs
from tbx_doctor.reading.patterns import CANCELLED_AT
from tbx_doctor.report.checklist import Item, build_checklist
from tbx_doctor.rules import run_rules

SCHEMA = "tbx-doctor.check/1"
_END_REASONS = (
    ("host-oom-killed", "host-oom"),
    ("cuda-oom", "cuda-oom"),
    ("nan-loss", "nan-loss"),
    ("nccl-error", "nccl-error"),
    ("crash-traceback", "crash"),
    ("config-error", "config-error"),
    ("data-error", "data-error"),
    ("node-fail", "node-fail"),
    ("time-limit", "time-limit"),
    ("preempted", "preempted"),
    ("cancelled", "cancelled"),
    ("requeued", "requeued"),
    ("zero-epochs", "zero-epochs"),
)


@dataclass(frozen=True)
class Report:
    """One job's diagnosis; `to_dict` is the stable JSON form."""

    verdict: str
    files: tuple[str, ...]
    run: dict
    findings: tuple[Finding, ...]
    checklist: tuple[Item, ...]

    def to_dict(self) -> dict:
        return strict_json(
            {
                "schema": SCHEMA,
                "verdict": self.verdict,
                "files": list(self.files),
                "run": self.run,
                "findings": [asdict(f) for f in self.findings],
                "checklist": [asdict(i) for i in self.checklist],
            }
        )


def verdict_of(findings: list[Finding], facts: JobFacts) -> str:
    severities = {f.severity for f in findings}
    if "error" in severities:
        return "failed"
    if facts.still_growing:
        return "running"
    return "warning" if "warning" in severities else "healthy"


def _end_reason(facts: JobFacts, findings: list[Finding]) -> str:
    codes = {f.code for f in findings}
    for code, reason in _END_REASONS:
        if code in codes:
            return reason
    if facts.still_growing:
        return "running"
    if facts.training_time_line is not None or facts.end is not None or facts.signal("run_end"):
        return "completed"
    return "unknown"


def _iso(line) -> str | None:
    clock = parse_clock(line)
    return clock.isoformat() if clock else (line.text.split(":", 1)[1].strip() if line else None)


def _slurm_time(line) -> str | None:
    if line is None:
        return None
    match = CANCELLED_AT.search(line.text)
    return match.group(1) if match else None


def _last_iteration(facts: JobFacts) -> int | None:
    if facts.trained_epochs:
        return facts.trained_epochs[-1].last_iter
    return facts.iterations_only.last_iter if facts.iterations_only else None


def _first_failure(facts: JobFacts) -> dict | None:
    """The rank / task / node that failed first, with its line (None: the files do not say)."""
    first = facts.ranks.first if facts.ranks else None
    if first is None:
        return None
    return {
        "ranks": list(first.ranks),
        "tasks": list(first.tasks),
        "local_rank": first.local_rank,
        "node": first.node,
        "what": first.what,
        "source": first.source,
        "file": first.line.file,
        "line": first.line.line,
    }


def run_summary(facts: JobFacts, findings: list[Finding]) -> dict:
    """DESIGN 4.3 `run`: what was measured (None where the files do not say)."""
    trained = facts.trained_epochs
    decision, source = facts.decision, facts.source
    return {
        "job_id": facts.job_id,
        "node": facts.node,
        "start_time": _iso(facts.start),
        "end_time": _iso(facts.end) if facts.end else _slurm_time(facts.slurm_end),
        "wall_seconds": facts.wall_seconds,
        "eval_only": facts.eval_only is not None,
        "path": decision.mode if decision else None,
        "path_source": decision.source if decision else None,
        "source_job_id": source.job_id if source else None,
        "source_epoch": source.epoch if source else None,
        "source_epochs_planned": source.epochs_planned if source else None,
        "source_origin": (source.origin or None) if source else None,
        "epochs_planned": facts.epochs_planned,
        "first_epoch": trained[0].epoch if trained else None,
        "last_epoch": trained[-1].epoch if trained else None,
        "iterations_per_epoch": trained[-1].iterations if trained else None,
        "last_iteration": _last_iteration(facts),
        "epochs": [
            {
                "epoch": e.epoch,
                "finished": e.finished,
                "loss": e.loss_mean,
                "ap": e.ap,
                "seconds": e.seconds,
            }
            for e in trained
        ],
        "training_time_seconds": facts.training_time,
        "eval_ap": facts.eval_ap,
        "end_reason": _end_reason(facts, findings),
        "first_failure": _first_failure(facts),
        "output_dir": facts.output_dir,
        "missing_files": list(facts.missing),
        "training": facts.training,
        "would_tell": list(facts.would_tell) if facts.training == "unknown" else [],
    }


def strict_json(value: object) -> object:
    """NaN/inf (a NaN loss is a finding, not an error) as null: strict JSON parsers reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def diagnose_facts(facts: JobFacts, profile: Profile) -> Report:
    findings = run_rules(facts, profile)
    return Report(
        verdict_of(findings, facts),
        facts.files,
        run_summary(facts, findings),
        tuple(findings),
        tuple(build_checklist(facts, profile)),
    )


def diagnose(
    paths: list[Path],
    profile: Profile,
    now: float | None = None,
    log_complete: bool = False,
    skipped: list[str] | None = None,
) -> list[Report]:
    """One report per job found among `paths` (raises DoctorError for unreadable input); the
    paths left out (the doctor's own reports) are described in `skipped`.

    log_complete: the caller knows the job has ended (post-job hook), so a recently written
    log is not taken for a running job.
    """
    now = math.inf if log_complete else (time.time() if now is None else now)
    jobs = collect_jobs(paths, skipped)
    return [diagnose_facts(build_facts(job, paths, now), profile) for job in jobs]
