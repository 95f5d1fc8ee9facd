"""How SLURM (or a signal) ended the job: time limit, cancel, preemption, node failure, OOM."""

from __future__ import annotations

from tbx_doctor.facts.job import JobFacts
from tbx_doctor.findings import Finding, finding
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.reading.logscan import Line
from tbx_doctor.rules.describe import finished_text, progress_at_end, where
from tbx_doctor.rules.first_failure import consequence_text, first_failure_text, node_failed
from tbx_doctor.rules.requeue import (
    Requeue,
    find_requeue,
    requeue_exits,
    requeue_fix,
    requeue_story,
    step_cancels,
)

_ENDINGS = {
    "time_limit": (
        "time-limit",
        "SLURM ended the job at its time limit",
        "Resubmit to resume from the last checkpoint; to lose no partial epoch use tbx-train "
        "with `#SBATCH --signal=B:USR1@120` (saves mid-epoch, exits 75 for requeue) or raise "
        "--time.",
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
        "Resubmit (or let the requeue run); use --signal=B:USR1@120 so tbx-train saves before it "
        "stops.",
    ),
    "node_fail": (
        "node-fail",
        "A node failure ended the job",
        "Resubmit (exclude the node with --exclude if it repeats); resume from the last "
        "checkpoint.",
    ),
}


def _progress(facts: JobFacts, requeue: Requeue | None = None) -> str:
    last = facts.trained_epochs[-1] if facts.trained_epochs else None
    text = f" The job was {progress_at_end(facts)}; {finished_text(facts)}."
    if last is not None and not last.finished and last.iterations:
        text += (
            f" Epoch {last.epoch} was cut after iteration {last.last_iter} of {last.iterations}"
            " (the last one printed); "
        )
        text += (
            f"tbx-train saved its progress at {requeue.position} ({where(requeue.line)})."
            if requeue is not None
            else "its progress is lost unless a mid-epoch checkpoint was saved."
        )
    return text


def _quote(line: Line) -> str:
    return f"{where(line)}: `{line.text.strip()}`."


def _slurm(facts: JobFacts, requeue: Requeue | None) -> list[Finding]:
    last = facts.trained_epochs[-1].last if facts.trained_epochs else None
    # srun --kill-on-bad-exit ends the step after a task's planned exit 75: not a cancellation.
    planned = set(step_cancels(facts)) if requeue and requeue_exits(facts) else set()
    planned |= _step_ended_by_failure(facts)
    found = []
    for kind, (code, title, fix) in _ENDINGS.items():
        lines = [line for line in facts.signal(kind) if line not in planned]
        if not lines:
            continue
        explanation = _quote(lines[-1]) + _progress(facts, requeue)
        if kind == "time_limit" and requeue is not None:
            explanation, fix = _saved_before_limit(lines[-1], requeue)
        if kind == "node_fail" and node_failed(facts):
            found.append(_failed_node(facts, lines, last))
            continue
        fix = fix.replace("JOBID", facts.job_id) if facts.job_id else fix
        found.append(finding(code, title, [lines[-1], last], explanation, fix))
    return found


def _failed_node(facts: JobFacts, lines: list[Line], last: Line | None) -> Finding:
    """srun named the node that failed: quote that line, name the node and its ranks; the
    slurmstepd line (`*** JOB n ON <surviving node> ... DUE TO NODE FAILURE`) is the ending."""
    failure = facts.ranks.node_failure
    others = [line for line in lines if line != failure.line]
    ending = (
        f" {_quote(others[-1])[:-1]} is the job's end, printed on a surviving node."
        if others
        else ""
    )
    return finding(
        "node-fail",
        f"Node {failure.node} failed and ended the job",
        [failure.line, *others[-1:], *failure.support[:2], last],
        first_failure_text(facts).lstrip() + ending + consequence_text(facts) + _progress(facts),
        f"Resubmit without that node (`--exclude={failure.node}`) and tell the cluster's admins; "
        "resume from the last checkpoint.",
    )


def _step_ended_by_failure(facts: JobFacts) -> set[Line]:
    """`*** STEP n CANCELLED AT t ***` (no reason) after a task failed or ran out of memory is
    srun ending the step because of that failure, not a user's scancel."""
    failures = [*facts.signal("host_oom"), *facts.signal("task_failed"), *facts.signal("killed")]
    return {
        line
        for line in facts.signal("cancelled")
        if "DUE " not in line.text
        and any((f.file, f.line) < (line.file, line.line) for f in failures)
    }


def _saved_before_limit(line: Line, requeue: Requeue) -> tuple[str, str]:
    """Time limit after a planned stop: the save line proves the checkpoint was written."""
    explanation = (
        _quote(line) + f" Before it ended, tbx-train saved {requeue.checkpoint} at "
        f"{requeue.position} on {requeue.signal} ({where(requeue.line)}): the job's progress up "
        "to that step is in the checkpoint."
    )
    fix = (
        "Nothing is lost. For the job to end on its own before the limit, let SLURM warn "
        "earlier than the scripts' `#SBATCH --signal=B:USR1@120` (e.g. `B:USR1@300`)."
    )
    return explanation, fix


def _kills(facts: JobFacts, requeue: Requeue | None) -> list[Finding]:
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
    exits = requeue_exits(facts)
    # Exit 75 after the save line is the planned stop (reported as `requeued`), not a failure.
    tasks = [t for t in facts.signal("task_failed") if t not in exits]
    if node_failed(facts):  # tasks elsewhere lost their peer on the failed node: consequences
        tasks = [t for t in tasks if t not in facts.ranks.consequences]
    # srun kills the other tasks after the first one fails: their "Terminated"/"Killed" lines
    # are consequences, so the first other failure (in time = in file order) leads.
    tasks.sort(key=lambda t: t.text.rstrip().endswith(("Terminated", "Killed")))
    if exits and requeue is None:
        found.append(_unproven_requeue(exits))
    if killed and not oom and not any(facts.signal(k) for k in _ENDINGS):
        found.append(_sigkill(facts, killed))
    # A SIGKILL without any memory message: report the kill itself, no cause is proved.
    tasks = tasks or ([] if oom or exits else list(killed))
    # torchrun's failure block ("exitcode : 1 (pid: N)" per rank), its Root Cause first
    tasks = tasks or ([] if oom else _elastic_exits(facts))
    if tasks:
        found.append(
            finding(
                "task-failed",
                "A task failed or was killed",
                tasks[:3],
                _quote(tasks[0])
                + _launcher_summary(facts, tasks[0])
                + _first_task(facts, tasks[0]),
                "Read the task's traceback above the srun line (or in the .err file).",
            )
        )
    return found


def _sigkill(facts: JobFacts, killed: tuple[Line, ...]) -> Finding:
    """A SIGKILL that no SLURM ending explains: what the out-of-memory killers send."""
    return finding(
        "host-oom-killed",
        "Killed by SIGKILL, the out-of-memory killer's signal",
        killed[:2],
        _quote(killed[0]) + " Nothing in these files sent it (no SLURM time limit or cancel): a "
        "SIGKILL that the process did not ask for is what the kernel's and SLURM's out-of-memory "
        "killers send. The memory message itself is not in these files; `sacct -j JOBID -o "
        "MaxRSS,ReqMem,State` or the node's `dmesg` confirms it." + _progress(facts),
        "Ask for more --mem (or use fewer / lighter data-loader workers), then resubmit.",
        severity="warning",
    )


def _launcher_summary(facts: JobFacts, line: Line) -> str:
    """torchrun's report of a failed worker names the rank and exit code, not the cause."""
    if line not in (*facts.signal("elastic_exit"), *facts.signal("root_cause")):
        return ""
    where_cause = (
        "see the traceback findings"
        if facts.signal("traceback")
        else "it is not in these files; look in the rank's output or the .err"
    )
    return (
        " This is torchrun's summary of a failed worker: the worker's own error is the cause "
        f"({where_cause})."
    )


def _first_task(facts: JobFacts, quoted: Line) -> str:
    """Which task / rank failed first (srun's order, torchrun's Root Cause), and what the
    others printed because of it."""
    first = facts.ranks.first if facts.ranks else None
    if first is None or first.source in ("node-failure", "exception"):
        return ""  # the node-fail and crash rules name those
    return first_failure_text(facts, quoted) + consequence_text(facts, (first.line,))


def _elastic_exits(facts: JobFacts) -> list[Line]:
    exits = [e for e in facts.signal("elastic_exit") if not e.text.strip().endswith(": 0 (pid")]
    root = facts.signal("root_cause")
    if not exits and root:  # the block is cut before its exitcode line: quote what is there
        return [root[0], *facts.signal("elastic_rank")[-1:]]
    if root:  # the block after "Root Cause (first observed failure):" names the first failure
        after = [e for e in exits if (e.file, e.line) > (root[0].file, root[0].line)]
        exits = after[:1] + [e for e in exits if e not in after[:1]]
    return exits


def _unproven_requeue(exits: tuple[Line, ...]) -> Finding:
    return finding(
        "task-failed",
        "A task exited 75 without a saved-checkpoint line",
        exits[:3],
        _quote(exits[0]) + " Exit code 75 is tbx-train's 'stopped by a signal after saving a "
        "resumable checkpoint', but no `Interrupted by SIG...: saved checkpoint` line is in the "
        "files read, so no save is proven (the log may be cut, or another program exited 75).",
        "Check that the run's checkpoint exists and is complete (`tbx-doctor inspect-ckpt "
        "CHECKPOINT`) before resuming; read the .err for what stopped the task.",
    )


def check_endings(facts: JobFacts, profile: Profile) -> list[Finding]:
    """How the job ended: SLURM cancellations, kills, and tbx-train's requeue exit."""
    requeue = find_requeue(facts)
    found = _slurm(facts, requeue) + _kills(facts, requeue)
    if requeue is not None:
        found.append(
            finding(
                "requeued",
                "Stopped on a signal after saving a resumable checkpoint",
                [
                    *facts.signal("job_signal")[:1],
                    requeue.line,
                    *requeue_exits(facts)[:2],
                    *step_cancels(facts)[:1],
                    *facts.signal("job_chain")[-1:],
                ],
                requeue_story(facts, requeue),
                requeue_fix(facts, requeue),
            )
        )
    return found
