"""A run's per-epoch loss and AP, from every place a job's files hold them.

Sources, later ones filling only the epochs earlier ones lack: the run's own `log.txt` (DINO
copies the resumed run's records forward, so it often holds the whole chain), the source run's
`log.txt` (the folder of the checkpoint this job resumed from), this job's `.out` (the
running mean of an epoch's last iteration line and the pycocotools table after it), and, when
none of these shows an epoch before the resume, the source job's own `.out` beside this log.
Only finished epochs count. Each sample keeps the line it was read from, for evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tbx_doctor.facts.job import JobFacts
from tbx_doctor.reading.job_files import collect_jobs, find_sibling_logs, relocate
from tbx_doctor.reading.logscan import Line
from tbx_doctor.reading.run_dir import EpochRecord, read_output_dir


@dataclass(frozen=True)
class Sample:
    """One finished epoch: mean train loss and AP@[.5:.95] (a fraction), and where they are."""

    epoch: int
    loss: float | None
    ap: float | None
    line: Line | None


@dataclass(frozen=True)
class Trajectory:
    """Samples in epoch order; `resumes`: first epoch trained after each resume in it."""

    samples: tuple[Sample, ...]
    resumes: tuple[int, ...] = ()
    running: bool = False  # the job is still being written

    def series(self, field: str) -> list[tuple[int, float]]:
        """(epoch, value) of the samples that have `field` (finite values only)."""
        out = []
        for s in self.samples:
            value = getattr(s, field)
            if value is not None and value == value and abs(value) != float("inf"):
                out.append((s.epoch, value))
        return out

    def line_of(self, epoch: int) -> Line | None:
        return next((s.line for s in self.samples if s.epoch == epoch), None)


def _from_records(records: list[EpochRecord]) -> dict[int, Sample]:
    return {r.epoch: Sample(r.epoch, r.train_loss, r.ap, r.line) for r in records if r.epoch >= 0}


def _run_dir_samples(folder: Path) -> dict[int, Sample]:
    if not (folder / "log.txt").is_file():
        return {}
    return _from_records(read_output_dir(folder).records)


def _source_dir(facts: JobFacts) -> Path | None:
    """The local folder of the checkpoint this job resumed from, if it is here."""
    source = facts.source
    if source is None or not source.checkpoint:
        return None
    log_dir = Path(facts.files[0]).parent if facts.files else None
    for folder in relocate(str(Path(source.checkpoint).parent), log_dir, None):
        if (folder / "log.txt").is_file():
            return folder
    return None


def _own_samples(facts: JobFacts) -> dict[int, Sample]:
    """Finished epochs of this job's own log (iteration lines and the AP table)."""
    out = {}
    for e in facts.trained_epochs:
        if e.finished and (e.loss_mean is not None or e.ap is not None):
            out[e.epoch] = Sample(e.epoch, e.loss_mean, e.ap, e.ap_line or e.last)
    return out


def _source_log_samples(facts: JobFacts) -> dict[int, Sample]:
    """Finished epochs of the source job's `.out` beside this job's log (one hop back)."""
    from tbx_doctor.facts.build import build_facts  # build imports nothing of this module

    source = facts.source
    logs = [Path(f) for f in facts.files if Path(f).is_file()]
    if source is None or source.job_id is None or not logs:
        return {}
    siblings = find_sibling_logs(source.job_id, [logs[0].parent], [])
    siblings = [p for p in siblings if ".err" not in p.name]
    if not siblings:
        return {}
    return _own_samples(build_facts(collect_jobs(siblings[:1])[0], siblings[:1]))


def merge_samples(*sources: dict[int, Sample]) -> tuple[Sample, ...]:
    """Union by epoch; the first source that has an epoch wins, later ones fill its gaps."""
    merged: dict[int, Sample] = {}
    for source in sources:
        for epoch, sample in source.items():
            have = merged.get(epoch)
            if have is None:
                merged[epoch] = sample
            elif have.ap is None and sample.ap is not None:
                merged[epoch] = Sample(epoch, have.loss, sample.ap, have.line or sample.line)
    return tuple(merged[e] for e in sorted(merged))


def trajectory_of(facts: JobFacts) -> Trajectory:
    """The run's trajectory as this job's files show it (empty for evaluation-only jobs)."""
    if facts.eval_only:
        return Trajectory(())
    own_dir = _run_dir_samples(Path(facts.output_dir)) if facts.output_dir else {}
    source_dir = _source_dir(facts)
    source = _run_dir_samples(source_dir) if source_dir else {}
    samples = merge_samples(own_dir, source, _own_samples(facts))
    resumes: tuple[int, ...] = ()
    if facts.source is not None and facts.source.epoch is not None:
        boundary = facts.source.epoch + 1
        if not any(s.epoch < boundary for s in samples):
            samples = merge_samples({s.epoch: s for s in samples}, _source_log_samples(facts))
        if any(s.epoch < boundary for s in samples) and any(s.epoch >= boundary for s in samples):
            resumes = (boundary,)
    return Trajectory(samples, resumes, facts.still_growing)
