"""tbx-train's planned stop: a signal, a saved checkpoint, exit 75 for the job chain.

`Interrupted by SIG...: saved checkpoint P (epoch E, iteration I); exiting with code 75 for
requeue` is the proof that the stop was planned. With it, srun's `Exited with exit code 75`
lines and the step cancel that `srun --kill-on-bad-exit=1` sends after the first of them are
that planned exit, not a failure. Without it, exit code 75 claims a save that no line shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from tbx_doctor.facts.job import JobFacts
from tbx_doctor.reading import patterns as P
from tbx_doctor.reading.logscan import Line
from tbx_doctor.rules.describe import where

REQUEUE_EXIT = 75  # tbx-train: stopped by a signal after saving a resumable checkpoint


@dataclass(frozen=True)
class Requeue:
    """The interruption line and what it states (epoch E = the epoch a resume continues)."""

    line: Line
    signal: str
    checkpoint: str
    epoch: int | None
    iteration: int | None

    @property
    def position(self) -> str:
        if self.epoch is None:
            return "an unstated position"
        if self.iteration is None:
            return f"epoch {self.epoch}"
        return f"epoch {self.epoch}, iteration {self.iteration}"


def find_requeue(facts: JobFacts) -> Requeue | None:
    """The job's last `Interrupted by SIG...: saved checkpoint` line, parsed; None if absent."""
    lines = facts.signal("sigusr1")
    if not lines:
        return None
    match = P.INTERRUPTED.search(lines[-1].text)
    if match is None:  # the line was cut: the save is still stated, its details are not
        return Requeue(lines[-1], "a signal", "the checkpoint", None, None)
    epoch, iteration = match.group(3), match.group(4)
    return Requeue(
        lines[-1],
        match.group(1),
        match.group(2),
        int(epoch),
        int(iteration) if iteration is not None else None,
    )


def task_exit_code(line: Line) -> int | None:
    """The code of an srun `Exited with exit code N` line (None for Killed / Terminated)."""
    match = P.TASK_EXIT_CODE.search(line.text)
    return int(match.group(1)) if match else None


def requeue_exits(facts: JobFacts) -> tuple[Line, ...]:
    """srun lines of tasks that exited with tbx-train's requeue code 75."""
    return tuple(t for t in facts.signal("task_failed") if task_exit_code(t) == REQUEUE_EXIT)


def step_cancels(facts: JobFacts) -> tuple[Line, ...]:
    """`*** STEP j.s ... CANCELLED AT t ***` lines without a reason (srun ending its step)."""
    return tuple(c for c in facts.signal("cancelled") if "*** STEP " in c.text)


def _signal_sentence(facts: JobFacts, requeue: Requeue) -> str:
    received = facts.signal("job_signal")
    if not received:
        return ""
    match = P.JOB_SIGNAL.search(received[0].text)
    name = match.group(1) if match else requeue.signal
    when = f" at {match.group(2)}" if match and match.group(2) else ""
    text = f"{where(received[0])}: the job script received {name}{when} and forwarded it."
    if name == "SIGUSR1":
        text += (
            " SIGUSR1 is the warning the tbx sbatch scripts ask SLURM to send before the time "
            "limit (`#SBATCH --signal=B:USR1@120`; `scancel --signal=USR1` sends it too)."
        )
    return text + " "


def requeue_story(facts: JobFacts, requeue: Requeue) -> str:
    """Signal -> checkpoint saved at epoch E, iteration I -> exit 75 -> what continues it."""
    text = _signal_sentence(facts, requeue)
    text += (
        f"{where(requeue.line)}: on {requeue.signal} tbx-train saved {requeue.checkpoint} at "
        f"{requeue.position} and exited with code 75: stopped, resumable from that checkpoint."
    )
    exits, steps = requeue_exits(facts), step_cancels(facts)
    if exits:
        text += (
            f" srun's `{exits[0].text.strip()}` ({where(exits[0])}) is that planned exit, "
            "not a failure"
        )
        text += (
            f"; the step cancel at {where(steps[0])} is srun stopping the step after it."
            if steps
            else "."
        )
    chain = facts.signal("job_chain")
    if chain:
        said = chain[-1].text.strip().removeprefix("[tbx-job] ")
        text += f" {where(chain[-1])}: {said}"
    return text


def requeue_fix(facts: JobFacts, requeue: Requeue) -> str:
    """Nothing to fix when a job continues; say how to continue when the script did not."""
    by_hand = (
        f"pass `--resume {requeue.checkpoint}` to tbx-train (TBX_RESUME= for the sbatch scripts)"
    )
    chain = facts.signal("job_chain")
    if (
        chain
        and "Submitted job" not in chain[-1].text
        and "TBX_ON_STOP=requeue" not in (chain[-1].text)
    ):
        return f"No job continues this run ({where(chain[-1])}); to continue it, {by_hand}."
    return (
        "Nothing to fix: the next job of the chain (or the requeued job) resumes from "
        f"{requeue.checkpoint}; to continue by hand, {by_hand}."
    )
