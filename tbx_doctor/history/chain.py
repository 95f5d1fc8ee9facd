"""The resume chain across jobs: which job continued which, and what went wrong along it.

A training job that resumed names a checkpoint path; the job that wrote it is found by the
SLURM job id in that path's folder (`outputs/tbx11k_run_<id>/checkpoint.pth`) or by the folder
being another job's output directory. From the links: chains (roots are jobs with no parent
in the set), gaps (the parent is not in the set), forks (two jobs continuing one parent),
epochs no file shows trained between two jobs, strategy changes, zero-epoch jobs, and totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tbx_doctor.history.rows import JobRow, proven_by_resumes


@dataclass(frozen=True)
class Link:
    """`job` resumed from `checkpoint`, written by `source_job`."""

    job: str
    source_job: str
    checkpoint: str | None
    source_last_epoch: int | None  # last epoch the source job finished
    first_epoch: int | None  # first epoch the resuming job trained


@dataclass(frozen=True)
class Problem:
    kind: str  # gap | fork | zero-epochs | missing-epochs | repeated-epochs | strategy-change
    jobs: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Chain:
    """Training jobs linked by resumes, parents before children."""

    jobs: tuple[str, ...]
    links: tuple[Link, ...]
    epochs_reached: int | None  # epochs finished, counting from 0 (last finished + 1)
    epochs_planned: int | None
    gpu_hours: float
    hours_lost: float
    jobs_without_wall_time: tuple[str, ...] = ()


@dataclass
class History:
    rows: list[JobRow]
    chains: list[Chain] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    overall: dict = field(default_factory=dict)
    curves: list = field(default_factory=list)  # history.curves.Curve per chain
    compared: list = field(default_factory=list)  # the --compare chains' Curves


def last_finished(row: JobRow) -> int | None:
    done = [p.epoch for p in row.epochs if p.finished]
    return max(done) if done else None


def row_key(row: JobRow) -> str:
    """A job's identity in the history: its SLURM id, or its file when no id is shown (two
    logs without ids are never one job)."""
    return row.job_id or (row.files[0] if row.files else "?")


_key = row_key


def _parent(row: JobRow, by_id: dict[str, JobRow], by_dir: dict[str, JobRow]) -> JobRow | None:
    if row.source_job and row.source_job in by_id and by_id[row.source_job] is not row:
        return by_id[row.source_job]
    if row.source_checkpoint:
        return by_dir.get(Path(row.source_checkpoint).parent.name)
    return None


def find_links(rows: list[JobRow]) -> tuple[list[Link], list[Problem]]:
    """Links between the given jobs, and gaps (a resume whose source job is not given)."""
    by_id = {r.job_id: r for r in rows if r.job_id}
    by_dir = {Path(r.output_dir).name: r for r in rows if r.output_dir}
    links, problems = [], []
    for row in rows:
        if row.path != "resume":
            continue
        parent = _parent(row, by_id, by_dir)
        if parent is None or parent.kind != "train":
            verb = "evaluates" if row.kind == "eval" else "resumed from"
            problems.append(
                Problem(
                    "gap",
                    (_key(row),),
                    f"job {_key(row)} {verb} {row.source_checkpoint} (job "
                    f"{row.source_job or '?'}), which is not among the given logs",
                )
            )
            continue
        if row.kind == "train":
            links.append(
                Link(
                    _key(row),
                    _key(parent),
                    row.source_checkpoint,
                    last_finished(parent),
                    row.first_epoch,
                )
            )
    return links, problems


def _epoch_problem(link: Link) -> Problem | None:
    """Epochs no file shows trained between two jobs, or epochs trained twice."""
    done, first = link.source_last_epoch, link.first_epoch
    if done is None or first is None or first == done + 1:
        return None
    pair = (link.source_job, link.job)
    if first > done + 1:
        missing = f"{done + 1}" if first == done + 2 else f"{done + 1}-{first - 1}"
        return Problem(
            "missing-epochs",
            pair,
            f"no file shows epoch {missing} trained: job {link.source_job} finished epoch "
            f"{done} last, job {link.job} started at epoch {first}",
        )
    return Problem(
        "repeated-epochs",
        pair,
        f"job {link.job} trained epoch {first} again (job {link.source_job} had finished epoch "
        f"{done}): it resumed from an older checkpoint",
    )


def _link_problems(links: list[Link], by_id: dict[str, JobRow]) -> list[Problem]:
    problems = [p for p in map(_epoch_problem, links) if p is not None]
    children: dict[str, list[str]] = {}
    for link in links:
        children.setdefault(link.source_job, []).append(link.job)
        parent, child = by_id[link.source_job], by_id[link.job]
        if parent.strategy and child.strategy and parent.strategy != child.strategy:
            problems.append(
                Problem(
                    "strategy-change",
                    (link.source_job, link.job),
                    f"strategy (batch x accumulation x GPUs) changed from {parent.strategy} "
                    f"(job {link.source_job}) to {child.strategy} (job {link.job})",
                )
            )
    problems += [
        Problem("fork", (parent, *kids), f"jobs {', '.join(kids)} all continued job {parent}")
        for parent, kids in children.items()
        if len(kids) > 1
    ]
    return problems


def _walk(root: str, children: dict[str, list[str]], by_id: dict[str, JobRow]) -> list[str]:
    order, stack = [], [root]
    while stack:
        job = stack.pop()
        if job in order:
            continue
        order.append(job)
        kids = sorted(children.get(job, []), key=lambda k: (by_id[k].start or "", k))
        stack.extend(reversed(kids))  # depth first, earliest child first
    return order


def _chain(jobs: list[str], links: list[Link], by_id: dict[str, JobRow]) -> Chain:
    rows = [by_id[j] for j in jobs]
    done = [e for e in (last_finished(r) for r in rows) if e is not None]
    planned = [r.epochs_planned for r in rows if r.epochs_planned]
    return Chain(
        jobs=tuple(jobs),
        links=tuple(link for link in links if link.job in jobs),
        epochs_reached=max(done) + 1 if done else None,
        epochs_planned=max(planned) if planned else None,
        gpu_hours=gpu_hours(rows),
        hours_lost=lost_hours(rows),
        jobs_without_wall_time=tuple(_key(r) for r in rows if r.wall_seconds is None),
    )


def gpu_hours(rows: list[JobRow]) -> float:
    """Wall time x GPUs, over the jobs whose wall time is known."""
    return sum((r.wall_seconds or 0.0) * r.gpus for r in rows) / 3600


def lost_hours(rows: list[JobRow]) -> float:
    """GPU hours whose work no checkpoint kept (zero-epoch jobs, epochs cut by a kill)."""
    return sum(r.lost_seconds * r.gpus for r in rows) / 3600


def build_chains(rows: list[JobRow]) -> History:
    """Link the rows, group them into chains, list the problems and the overall numbers."""
    rows = proven_by_resumes(rows, find_links(rows)[0])  # epochs a later resume proves
    train = [r for r in rows if r.kind == "train"]
    by_id = {_key(r): r for r in rows}
    links, problems = find_links(rows)
    problems += _link_problems(links, by_id)
    children: dict[str, list[str]] = {}
    for link in links:
        children.setdefault(link.source_job, []).append(link.job)
    linked = {link.job for link in links}
    chains = [
        _chain(_walk(_key(r), children, by_id), links, by_id)
        for r in train
        if _key(r) not in linked
    ]
    problems += [
        Problem("zero-epochs", (_key(r),), f"job {_key(r)} trained nothing (zero epochs)")
        for r in train
        if r.ending == "zero epochs"
    ]
    overall = {
        "jobs": len(rows),
        "training_jobs": len(train),
        "chains": len(chains),
        "gpu_hours": gpu_hours(rows),
        "hours_lost": lost_hours(rows),
        "jobs_without_wall_time": [_key(r) for r in rows if r.wall_seconds is None],
    }
    return History(rows, chains, problems, overall)
