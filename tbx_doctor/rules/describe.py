"""Small phrasing helpers shared by rules (numbers and places, never guesses)."""

from __future__ import annotations

from tbx_doctor.facts.job import EpochFacts, JobFacts
from tbx_doctor.reading.logscan import Line


def where(line: Line | None) -> str:
    """ "file:line" for a line of evidence; the file alone for line 0 (the file as a whole)."""
    if line is None:
        return "(no line)"
    return f"{line.file}:{line.line}" if line.line > 0 else line.file


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def epoch_range(epochs: tuple[EpochFacts, ...]) -> str:
    if not epochs:
        return "none"
    first, last = epochs[0].epoch, epochs[-1].epoch
    return f"{first}" if first == last else f"{first}-{last}"


def progress_at_end(facts: JobFacts) -> str:
    """What the job was doing when its log stops: epoch, iteration, training or evaluating."""
    trained = facts.trained_epochs
    counted = facts.iterations_only
    if not trained and counted is not None:
        doing = "evaluating after" if facts.last_phase == "test" else "at"
        return f"{doing} iteration {counted.last_iter}"
    if not trained and facts.signal("progress"):
        return f"training (last progress line {where(facts.signal('progress')[-1])})"
    if not trained and facts.training == "unknown":
        return f"at a point these files do not show ({facts.unseen_why})"
    if not trained:
        return "before any training iteration"
    last = trained[-1]
    if facts.last_phase == "test":
        return f"evaluating after epoch {last.epoch}"
    if last.finished:
        return f"after finishing epoch {last.epoch}"
    if last.last_iter < 0:  # the epoch's header or time line, no iteration line yet
        return f"in epoch {last.epoch}, before any iteration line of it"
    of = f"/{last.iterations}" if last.iterations else ""
    return f"in epoch {last.epoch} at iteration {last.last_iter}{of}"


def finished_epochs(facts: JobFacts) -> tuple[EpochFacts, ...]:
    return tuple(e for e in facts.trained_epochs if e.finished)


def job_name(facts: JobFacts) -> str:
    return f"job {facts.job_id}" if facts.job_id else "this job"


def finished_text(facts: JobFacts) -> str:
    """ "epochs finished in this job: ..." with unknown when the files cannot show them."""
    done = finished_epochs(facts)
    if not facts.trained_epochs and facts.training != "absent":
        return "epochs finished in this job: unknown"
    text = f"epochs finished in this job: {epoch_range(done)}"
    if facts.start_seen is None and facts.trained_epochs:
        text += " (the log starts mid-run: epochs before its first line are not in it)"
    return text
