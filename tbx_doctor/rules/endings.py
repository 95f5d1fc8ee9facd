"""How SLURM (or a signal) ended the job: time limit, cancel, preemption, node failure, OOM."""

from __future__ import annotations

from tbx_doctor.facts import JobFacts
from tbx_doctor.findings import Finding, finding
from tbx_doctor.parsing.logscan import Line
from tbx_doctor.profile import Profile
from tbx_doctor.rules.describe import epoch_range, finished_epochs, progress_at_end, where

_ENDINGS = {
    "time_limit": (
        "time-limit",
        "SLURM ended the job at its time limit",
        "Resubmit to resume from the last checkpoint; to lose no partial epoch use tbx-train "
        "with `#SBATCH --signal=USR1@300` (saves mid-epoch, exits 75 for requeue) or raise --time.",
    ),
    "cancelled": (
        "cancelled",
        "The job was cancelled",
        "If unintended, check who cancelled it (`sacct -j JOBID -o State,Reason`); resubmit to "
        "resume.",
    ),
    "preempted": (
        "preempted",
        "SLURM preempted / requeued the job",
        "Resubmit (or let the requeue run); use --signal=USR1@300 so tbx-train saves before it "
        "stops.",
    ),
    "node_fail": (
        "node-fail",
        "A node failure ended the job",
        "Resubmit (exclude the node with --exclude if it repeats); resume from the last "
        "checkpoint.",
    ),
}


def _progress(facts: JobFacts) -> str:
    done = finished_epochs(facts)
    last = facts.trained_epochs[-1] if facts.trained_epochs else None
    text = (
        f" The job was {progress_at_end(facts)}; epochs finished in this job: {epoch_range(done)}."
    )
    if last is not None and not last.finished and last.iterations:
        text += (
            f" Epoch {last.epoch} was cut after iteration {last.last_iter} of {last.iterations}"
            " (the last one printed); its progress is lost unless a mid-epoch checkpoint was saved."
        )
    return text


def _quote(line: Line) -> str:
    return f"{where(line)}: `{line.text.strip()}`."


def _slurm(facts: JobFacts) -> list[Finding]:
    last = facts.trained_epochs[-1].last if facts.trained_epochs else None
    found = []
    for kind, (code, title, fix) in _ENDINGS.items():
        lines = facts.signal(kind)
        if lines:
            explanation = _quote(lines[-1]) + _progress(facts)
            found.append(finding(code, title, [lines[-1], last], explanation, fix))
    return found


def _kills(facts: JobFacts) -> list[Finding]:
    found = []
    oom, killed = facts.signal("host_oom"), facts.signal("killed")
    if oom:
        found.append(
            finding(
                "host-oom-killed",
                "Killed for exceeding host memory",
                [*oom[:2], *killed[:1]],
                _quote(oom[0]) + _progress(facts),
                "Ask for more --mem, or lower --num_workers / cache sizes in the data loader.",
            )
        )
    # A SIGKILL without any memory message: report the kill itself, no cause is proved.
    tasks = facts.signal("task_failed") or (killed if not oom else ())
    if tasks:
        found.append(
            finding(
                "task-failed",
                "A task failed or was killed",
                tasks[:3],
                _quote(tasks[0]),
                "Read the task's traceback above the srun line (or in the .err file).",
            )
        )
    return found


def check_endings(facts: JobFacts, profile: Profile) -> list[Finding]:
    """How the job ended: SLURM cancellations, kills, and tbx-train's requeue exit."""
    found = _slurm(facts) + _kills(facts)
    requeue = facts.signal("sigusr1")
    if requeue:
        found.append(
            finding(
                "requeued",
                "Stopped on a signal after saving a resumable checkpoint",
                [requeue[-1]],
                _quote(requeue[-1]),
                "Nothing to fix: the requeued job resumes from that checkpoint.",
            )
        )
    return found
