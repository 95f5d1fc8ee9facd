"""How SLURM (or a signal) ended the job: time limit, cancel, preemption, node failure, OOM."""

from __future__ import annotations

from tbx_doctor.facts import JobFacts
from tbx_doctor.findings import Finding, finding
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
            f" Epoch {last.epoch} was cut at {last.last_iter + 1} of {last.iterations} iterations."
        )
    return text


def check_endings(facts: JobFacts, profile: Profile) -> list[Finding]:
    found = []
    last = facts.trained_epochs[-1].last if facts.trained_epochs else None
    for kind, (code, title, fix) in _ENDINGS.items():
        lines = facts.signal(kind)
        if lines:
            found.append(
                finding(
                    code,
                    title,
                    [lines[-1], last],
                    f"{where(lines[-1])}: `{lines[-1].text.strip()}`." + _progress(facts),
                    fix,
                )
            )
    oom = facts.signal("host_oom")
    if oom:
        killed = facts.signal("killed")
        found.append(
            finding(
                "host-oom-killed",
                "Killed for exceeding host memory",
                [*oom[:2], *killed[:1]],
                f"{where(oom[0])}: `{oom[0].text.strip()}`." + _progress(facts),
                "Ask for more --mem, or lower --num_workers / cache sizes in the data loader.",
            )
        )
    tasks = facts.signal("task_failed")
    if tasks:
        found.append(
            finding(
                "task-failed",
                "srun reported a failed task",
                tasks[:3],
                f"{where(tasks[0])}: `{tasks[0].text.strip()}`.",
                "Read the task's traceback above the srun line (or in the .err file).",
            )
        )
    requeue = facts.signal("sigusr1")
    if requeue:
        found.append(
            finding(
                "requeued",
                "Stopped on a signal after saving a resumable checkpoint",
                [requeue[-1]],
                f"{where(requeue[-1])}: `{requeue[-1].text.strip()}`.",
                "Nothing to fix: the requeued job resumes from that checkpoint.",
            )
        )
    return found
