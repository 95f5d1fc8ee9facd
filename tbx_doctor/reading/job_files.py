"""Turn command-line paths into jobs: each job's log files, companions and output directory.

A `.out` and the `.err` with the same stem are one job (SLURM's own messages go to `.err`).
Sibling logs of other jobs (same folder, or other given paths) are indexed by SLURM job id so a
resumed job can read the log of the job that wrote its checkpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tbx_doctor.errors import InputNotFound, UnreadableInput
from tbx_doctor.reading.run_dir import looks_like_output_dir

LOG_SUFFIXES = (".out", ".err", ".log", ".txt")
OWN_OUTPUT_SUFFIXES = (".doctor.json", ".doctor.md", ".doctor.txt")
# SLURM's output file names: `slurm-%j.out`, `slurm-%A_%a.out`, `%x_%j.out|.err`, `%x-%j.out`,
# `%x.%j.out`, `%j.out`. Digits elsewhere in a name (`run_6.log`, `exp2_final.out`) are no id.
_SLURM_NAME = re.compile(r"^(?:slurm-(\d+(?:_\d+)?)|(?:.*[_.-])?(\d+))\.(?:out|err)$")


@dataclass
class JobFiles:
    """The files of one job: its logs (`.out` first), an output dir, and what was missing."""

    stem: str
    logs: list[Path] = field(default_factory=list)
    output_dir: Path | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def job_id(self) -> str | None:
        """The SLURM job id its log's file name shows (None when the name is not SLURM's)."""
        for path in self.logs or [Path(self.stem + ".out")]:
            match = _SLURM_NAME.match(path.name.removesuffix(".gz"))
            if match:
                return match.group(1) or match.group(2)
        return None


def is_own_output(path: Path) -> bool:
    """A report tbx-doctor wrote (`hook`, `--format json > x.doctor.json`): never a job log."""
    return path.name.endswith(OWN_OUTPUT_SUFFIXES)


def log_stem(path: Path) -> str:
    """`logs/train_1.out.gz` -> `logs/train_1` (the part an `.out` and its `.err` share)."""
    name = path.name
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in (".out", ".err"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return str(path.parent / name)


def _companions(stem: str) -> list[Path]:
    found = []
    for suffix in (".out", ".err"):
        for candidate in (Path(stem + suffix), Path(stem + suffix + ".gz")):
            if candidate.is_file():
                found.append(candidate)
                break
    return found


def collect_jobs(paths: list[Path], skipped: list[str] | None = None) -> list[JobFiles]:
    """Group paths into jobs, adding each log's companion; raise InputNotFound for a bad path.

    The doctor's own reports among the paths (a glob like `logs/*`) are left out and named in
    `skipped`; when nothing else is left that is an error.
    """
    jobs: dict[str, JobFiles] = {}
    own = [p for p in paths if p.is_file() and is_own_output(p)]
    if skipped is not None:
        skipped.extend(f"{p}: a tbx-doctor report, not a job log (skipped)" for p in own)
    if own and len(own) == len(paths):
        raise UnreadableInput(f"{own[0]}: a tbx-doctor report, not a job log; pass the .out/.err")
    for path in paths:
        if path in own:
            continue
        if not path.exists():
            raise InputNotFound(f"{path}: no such file or directory")
        if path.is_dir():
            if not looks_like_output_dir(path):
                raise UnreadableInput(
                    f"{path}: a directory without log.txt or config_args_all.json; "
                    "pass the job's .out/.err log or the run's output directory"
                )
            jobs.setdefault(str(path), JobFiles(str(path), output_dir=path))
            continue
        stem = log_stem(path)
        job = jobs.setdefault(stem, JobFiles(stem))
        if path not in job.logs:
            job.logs.append(path)
    for job in jobs.values():
        _add_companions(job)
    return list(jobs.values())


def _add_companions(job: JobFiles) -> None:
    if not job.logs:
        return
    for companion in _companions(job.stem):
        if all(companion.resolve() != p.resolve() for p in job.logs):
            job.logs.append(companion)
    names = [p.name.removesuffix(".gz") for p in job.logs]
    if not any(n.endswith((".out", ".err")) for n in names):
        return  # a pasted or renamed log (`run.log`, `log.txt`): it has no SLURM companions
    for suffix in (".out", ".err"):
        if not any(n.endswith(suffix) for n in names):
            job.missing.append(f"{job.stem}{suffix}[.gz]")
    # The .out file (the job's own lines) first, then SLURM's .err.
    job.logs.sort(key=lambda p: p.name.removesuffix(".gz").endswith(".err"))


def find_sibling_logs(job_id: str, folders: list[Path], given: list[Path]) -> list[Path]:
    """Logs of job `job_id`: among the given paths, then `*_<id>.out[.gz]` in the folders."""
    hits = [p for p in given if p.is_file() and JobFiles(log_stem(p)).job_id == job_id]
    for folder in dict.fromkeys(folders):
        if not folder.is_dir():
            continue
        for sep in ("_", "-"):
            for suffix in (".out", ".out.gz", ".err"):
                hits.extend(
                    p for p in sorted(folder.glob(f"*{sep}{job_id}{suffix}")) if p.is_file()
                )
    unique: dict[str, Path] = {}
    for p in hits:
        unique.setdefault(str(p.resolve()), p)
    return list(unique.values())


def relocate(remote: str, log_dir: Path | None, project_root: str | None) -> list[Path]:
    """Local places where a path printed by the job (e.g. on the cluster's /scratch) may be.

    Logs are often copied off the cluster with their project layout (`<root>/logs/x.out`,
    `<root>/outputs/run/`), so the printed path is tried as is, then re-rooted at the log's
    project folder, then beside the log.
    """
    original = Path(remote)
    candidates = [original]
    if log_dir is not None:
        root = log_dir.parent
        if project_root and remote.startswith(project_root.rstrip("/") + "/"):
            candidates.append(root / remote[len(project_root.rstrip("/")) + 1 :])
        candidates += [root / original.parent.name / original.name, log_dir / original.name]
        candidates.append(root / original.name)
    unique: dict[str, Path] = {}
    for c in candidates:
        unique.setdefault(str(c), c)
    return list(unique.values())
