"""Did the job train at all, and does what it claims match what it did."""

from __future__ import annotations

from tbx_doctor.facts.job import JobFacts, SourceRun
from tbx_doctor.findings import Finding, finding
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.rules.describe import job_name, minutes, progress_at_end, where

CRASH_KINDS = (
    "traceback",
    "cuda_oom",
    "nccl_error",
    "host_oom",
    "data_error",
    "config_error",
    "size_mismatch",
    "plan_refused",
    "node_fail",
    "device_assert",
    "class_assert",
    "script_failed",
    "missing_op",
    "missing_module",
    "native_crash",
)


def crashed(facts: JobFacts) -> bool:
    return any(facts.signal(k) for k in CRASH_KINDS)


def _is_zero_epoch_run(facts: JobFacts) -> bool:
    """The loop's end is printed and nothing shows training: any epoch or iteration line (any
    trainer's) or a non-zero training time rules it out."""
    if facts.eval_only or facts.training == "seen" or crashed(facts) or facts.still_growing:
        return False
    if facts.signal("tqdm_bar"):  # a loop ran: the files cannot prove it was not training
        return False
    loop_ended = facts.training_time_line is not None
    return loop_ended or (facts.start_training is not None and facts.end is not None)


def _planned(facts: JobFacts, source: SourceRun | None) -> tuple[int | None, str]:
    if facts.epochs_planned is not None:
        return facts.epochs_planned, f"this job's arguments ({where(facts.epochs_planned_line)})"
    if source is not None and source.epochs_planned is not None:
        return source.epochs_planned, (
            f"the source run's plan in {source.origin}; {job_name(facts)}'s log does not print "
            "its own"
        )
    return None, ""


def _unproved(facts: JobFacts, source: SourceRun) -> tuple[str, str]:
    """No file states the source checkpoint's epoch: say exactly what would prove it."""
    missing = "; ".join(source.missing)
    return (
        f"{job_name(facts)} resumed from {source.checkpoint}. Zero epochs ran, which happens when "
        "that checkpoint had already finished all planned epochs (start_epoch = epoch + 1 = "
        f"epochs), but no readable file states the checkpoint's epoch. Missing to prove it: "
        f"{missing}.",
        "Provide the source job's log (tbx-doctor check THIS.out SOURCE.out) or its output "
        "directory, or inspect the checkpoint (tbx-doctor inspect-ckpt); then resume with more "
        "--epochs, or start fresh.",
    )


def _root_cause(facts: JobFacts) -> tuple[str, str]:
    """Explanation + fix for a zero-epoch resume, proved from the source run when possible."""
    source = facts.source
    if source is None:
        return (
            "No resume, pretrained or fresh decision line explains why the epoch loop was empty.",
            "Check the run's --epochs / start epoch arguments; tbx-train prints a `Run plan:` "
            "line.",
        )
    if source.epoch is None:
        return _unproved(facts, source)
    planned, plan_origin = _planned(facts, source)
    start = source.epoch + 1
    text = (
        f"{job_name(facts)} resumed from {source.checkpoint}. "
        f"{source.origin[0].upper()}{source.origin[1:]} "
        f"shows that run finished epoch {source.epoch} (0-based; "
        f"{where(source.evidence[0] if source.evidence else None)})"
    )
    if planned is not None:
        text += (
            f" of {planned} planned ({plan_origin}). So start_epoch = {source.epoch} + 1 = {start}"
            f"{' = epochs' if start == planned else ''}, and the loop over range({start}, "
            f"{planned}) "
            f"ran {max(0, planned - start)} times."
        )
    else:
        text += f"; start_epoch = {start}, but the planned epoch count is not in any file read."
    loop_end = where(facts.training_time_line or facts.end)
    text += f" No iteration line was printed between {where(facts.start_training)} and {loop_end}."
    fix = (
        "Nothing was left to train: the source run had completed its plan. To train further, "
        "resume with "
        f"--epochs > {start}; to retrain, start fresh (pretrained weights, no --resume) in a new "
        "output "
        f"directory. tbx-train refuses such a plan up front (`Run plan refused`)."
    )
    return text, fix


def check_zero_epochs(facts: JobFacts, profile: Profile) -> list[Finding]:
    """A training job whose epoch loop ran zero times (incident 39581627)."""
    if not _is_zero_epoch_run(facts):
        return []
    explanation, fix = _root_cause(facts)
    source = facts.source
    evidence = [
        facts.decision.line if facts.decision else None,
        facts.start_training,
        facts.training_time_line,
        *(source.evidence if source else ()),
    ]
    return [finding("zero-epochs", "The job trained zero epochs", evidence, explanation, fix)]


def check_immediate_exit(facts: JobFacts, profile: Profile) -> list[Finding]:
    """The job ended within `min_job_minutes` having run no training iteration."""
    if facts.signal("script_failed"):
        return _script_not_started(facts.signal("script_failed")[0])
    if facts.eval_only or facts.training != "absent" or facts.still_growing:
        return []
    short = facts.wall_seconds is not None and facts.wall_seconds < profile.min_job_minutes * 60
    zero_time = facts.training_time == 0
    if not (short or zero_time):
        return []
    parts = []
    if facts.wall_seconds is not None:
        parts.append(
            f"Start ({where(facts.start)}) to End ({where(facts.end)}) is "
            f"{minutes(facts.wall_seconds)}"
        )
    if facts.training_time_line is not None:
        parts.append(f"the trainer reports `{facts.training_time_line.text}`")
    explanation = (
        "; ".join(parts)
        + "; no iteration line in the log (profile: jobs shorter than "
        + f"{profile.min_job_minutes:g} min with no training are immediate exits)."
    )
    return [
        finding(
            "immediate-exit",
            f"The job exited after {minutes(facts.wall_seconds)} without training"
            if facts.wall_seconds is not None
            else "The job exited without training",
            [facts.start, facts.training_time_line, facts.end],
            explanation,
            "See the root-cause finding (zero-epochs / crash) above; fix it before resubmitting.",
        )
    ]


def _program(line) -> str:
    """The path execve() was given: the batch script (`.../slurm_script`) or srun's command."""
    path = line.text.split("execve(): ", 1)[-1].split(": ", 1)[0]
    return "the batch script" if path.endswith("slurm_script") else path


def _script_not_started(line) -> list[Finding]:
    return [
        finding(
            "immediate-exit",
            "The job ended at once: slurmstepd could not start its program",
            [line],
            f"{where(line)}: `{line.text.strip()[:300]}`: slurmstepd could not execute "
            f"`{_program(line)}`, so nothing of it ran.",
            "Fix what the config-error finding names (the script's path or permissions), then "
            "resubmit.",
        )
    ]


def check_false_success(facts: JobFacts, profile: Profile) -> list[Finding]:
    """A success line printed although nothing trained or the job failed."""
    claims = facts.success_claims
    if not claims or facts.eval_only:
        return []
    reasons = []
    if facts.training == "absent" and not facts.still_growing:
        reasons.append("zero training iterations ran")
    if crashed(facts) or facts.signal("nonfinite"):
        reasons.append("the log also shows a failure (see the error findings)")
    if not reasons:
        return []
    return [
        finding(
            "false-success",
            f"`{claims[-1].text.strip()}` is false",
            [claims[-1]],
            f"{where(claims[-1])} claims success, but " + " and ".join(reasons) + ". The wrapper "
            "printed it because the trainer exited with code 0.",
            "Make the wrapper check what ran (e.g. run `tbx-doctor hook --strict` after the "
            "trainer) "
            "instead of trusting the exit code.",
        )
    ]


def check_incomplete(facts: JobFacts, profile: Profile) -> list[Finding]:
    """The log stops without any ending, or a compressed log is cut off."""
    found = []
    for problem in facts.truncated:
        found.append(
            finding(
                "incomplete-log",
                "A compressed log is truncated",
                [facts.last_line],
                f"{problem}; everything before the cut was read (last line "
                f"{where(facts.last_line)}).",
                "Copy the log again from the cluster; findings below may miss the end of the job.",
            )
        )
    found += _empty_logs(facts) + _starts_mid_run(facts)
    in_log = facts.iterations_seen or facts.signal("progress") or facts.trained_epochs
    if facts.ended or facts.still_growing or not _log_read(facts):
        return found  # a log written to minutes ago may be running: its end is still to come
    if in_log or facts.start_training:
        found.append(_no_ending(facts))
    return found


def _log_read(facts: JobFacts) -> bool:
    """A log was read (an output directory alone has no ending to miss)."""
    return facts.output_dir is None or len(facts.files) > 1


def _no_ending(facts: JobFacts) -> Finding:
    missing = f" Companion files not found: {', '.join(facts.missing)}." if facts.missing else ""
    return finding(
        "incomplete-log",
        "The log ends without saying how the job ended",
        [facts.last_line],
        f"The last line ({where(facts.last_line)}) is {progress_at_end(facts)}; no "
        f"`Training time`, end banner, SLURM message or traceback follows.{missing}",
        f"Look at the job's .err file and `sacct -j {facts.job_id or 'JOBID'}` for how it ended.",
    )


def _empty_logs(facts: JobFacts) -> list[Finding]:
    """An empty log says nothing: that is a finding, never a healthy job."""
    return [
        finding(
            "incomplete-log",
            "The log is empty",
            [],
            f"{path} holds no line at all: the job wrote nothing to it (it may not have started, "
            "or its output went elsewhere).",
            "Check the job's other log (.out/.err), `sacct -j JOBID` for its state, and the "
            "#SBATCH --output/--error paths.",
        )
        for path in facts.empty_logs
    ]


def _starts_mid_run(facts: JobFacts) -> list[Finding]:
    """A fragment that starts after the job started: what came before is not in it."""
    if facts.start_seen is not None or facts.training != "seen" or not facts.stdout_read:
        return []
    first = facts.trained_epochs[0].first if facts.trained_epochs else None
    first = first or next(iter(facts.signal("progress")), None)
    return [
        finding(
            "incomplete-log",
            "The log starts mid-run",
            [first],
            "No line from the job's start (banner, arguments, `Start training`) is in the files "
            f"read; the first training line is {where(first)}. How the job started and the "
            "epochs before that line are unknown.",
            "Read the whole log (the job's .out from its first line) for the start and the path "
            "taken.",
            severity="info",  # it limits what is known, it is not a problem of the job
        )
    ]
