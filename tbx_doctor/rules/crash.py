"""Tracebacks and the specific failures they usually carry (CUDA OOM, NCCL, data, config)."""

from __future__ import annotations

from tbx_doctor.facts.job import JobFacts
from tbx_doctor.findings import Finding, finding
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.reading.logscan import Line
from tbx_doctor.rules.describe import progress_at_end, where
from tbx_doctor.rules.first_failure import (
    consequence_text,
    first_failure_text,
    node_failed,
    peer_lost,
)

_SPECIFIC = {
    "cuda_oom": (
        "cuda-oom",
        "The GPU ran out of memory",
        "Lower the batch size per GPU and use gradient accumulation to keep the effective "
        "batch, or enable AMP; check `max mem` in the iteration lines.",
    ),
    "nccl_error": (
        "nccl-error",
        "NCCL / torch.distributed failed",
        "Check that every rank reached the same collective (a rank that crashed first shows a "
        "traceback); set NCCL_DEBUG=INFO, TORCH_NCCL_ASYNC_ERROR_HANDLING=1; resubmit.",
    ),
    "data_error": (
        "data-error",
        "The data set could not be read",
        "Check --coco_path / the annotation json and that every image file it lists exists.",
    ),
    "config_error": (
        "config-error",
        "Bad arguments or configuration",
        "Fix the option named in the message (see `--help`).",
    ),
    "size_mismatch": (
        "config-error",
        "The checkpoint does not fit the model",
        "Use weights for the same architecture / num_classes, or load them as pretrained "
        "with the classifier skipped (finetune_ignore).",
    ),
    "plan_refused": (
        "config-error",
        "tbx-train refused the run plan",
        "Apply the `Fix:` the refusal names.",
    ),
    "script_failed": (
        "config-error",
        "slurmstepd could not start the job's program",
        "The program slurmstepd tried to run (the batch script, or the command srun was given) is "
        "missing or not executable on the node: check its path and `#!` line, `chmod +x` it, "
        "keep it on a file system the compute node mounts, and load the environment that "
        "provides it (module / conda) before srun.",
    ),
    "missing_op": (
        "config-error",
        "A compiled extension is not built for this environment",
        "Build the extension in the job's environment with the same torch/CUDA as at run time "
        "(DINO / Deformable-DETR: `cd models/dino/ops && python setup.py build install`; "
        "mmdetection: install the mmcv build that matches torch and CUDA), then resubmit.",
    ),
    "missing_module": (
        "config-error",
        "A Python module is missing from the job's environment",
        "Install the module named in the message into the environment the sbatch script "
        "activates (`conda activate` / `source venv/bin/activate` before the trainer).",
    ),
    "class_assert": (
        "config-error",
        "A label index is out of range for the model",
        "Make num_classes (and dn_labelbook_size) larger than the highest category id in the "
        "annotations, or remap the category ids; then retrain.",
    ),
    "native_crash": (
        "crash-traceback",
        "The process crashed on a signal in compiled code",
        "A segmentation fault or abort in native code (an extension, a driver, a library): "
        "rebuild the compiled extensions for this torch/CUDA, check library versions, and rerun "
        "with `python -X faulthandler` (or gdb) to see the failing frame.",
    ),
    "device_assert": (
        "crash-traceback",
        "A CUDA device-side assert fired",
        "Usually labels >= num_classes: check num_classes / dn_labelbook_size against the "
        "annotation category ids; rerun with CUDA_LAUNCH_BLOCKING=1 for the exact op.",
    ),
}
# Exceptions that report another failure: the launcher's summary of a failed worker, or the
# signal that SLURM / the user sent. The cause is elsewhere (the worker's traceback, SLURM's line).
_CONSEQUENCES = ("ChildFailedError", "CalledProcessError", "SignalException", "KeyboardInterrupt")
_EXPLAINED_BY = ("host_oom", "box_assert")
_SLURM_ENDINGS = ("time_limit", "cancelled", "preempted", "node_fail")


def _exception_after(facts: JobFacts, trace: Line) -> Line | None:
    """The exception line that closes a traceback: the first one after it in the same file."""
    candidates = [
        e for e in facts.signal("exception") if e.file == trace.file and e.line > trace.line
    ]
    return min(candidates, key=lambda e: e.line) if candidates else None


def _specific(facts: JobFacts) -> list[Finding]:
    found: dict[str, Finding] = {}
    for kind, (code, title, fix) in _SPECIFIC.items():
        lines = facts.signal(kind)
        if not lines or code in found:
            continue
        text = f"{where(lines[0])}: `{lines[0].text.strip()[:300]}`"
        if kind == "plan_refused" and "Fix:" in lines[0].text:
            fix = lines[0].text.split("Fix:", 1)[1].strip()
        if kind == "device_assert" and "config-error" in found:
            continue  # the label assertion beside it is the cause
        if kind == "nccl_error" and node_failed(facts):
            continue  # the ranks that lost their peers on the failed node: its consequence
        found[code] = finding(
            code, title, lines[:3], f"{text}. The job was {progress_at_end(facts)}.", fix
        )
    return list(found.values())


def _root_traceback(facts: JobFacts) -> tuple[Line, Line | None]:
    """The traceback of the cause: the first one whose exception is not a consequence (the
    launcher's summary, a signal); the last one when all are."""
    traces = [(t, _exception_after(facts, t)) for t in facts.signal("traceback")]
    causes = [
        (trace, exc)
        for trace, exc in traces
        if exc is not None and not any(c in exc.text for c in _CONSEQUENCES)
    ]
    # a rank that lost its peer (reset connection, NCCL abort) reports another rank's failure
    fallback = causes[0] if causes else traces[-1]
    return next(((t, e) for t, e in causes if not peer_lost(e)), fallback)


def _signal_ended(facts: JobFacts, trace: Line, exc: Line) -> list[Finding]:
    """A SignalException / KeyboardInterrupt: the signal is the cause; SLURM's line, when
    present, is reported by the endings rule."""
    if any(facts.signal(k) for k in _SLURM_ENDINGS):
        return []
    return [
        finding(
            "cancelled",
            "A signal stopped the job",
            [exc, trace],
            f"{where(exc)}: `{exc.text.strip()[:300]}`: the process was stopped by a signal "
            f"(scancel, a preemption or a time limit); the job was {progress_at_end(facts)}.",
            "Check `sacct -j JOBID -o State,Reason` for who sent it; resubmit to resume.",
        )
    ]


def _last_exception(facts: JobFacts) -> list[Finding]:
    """No traceback header in the files, but the log ends on an exception line (a paste of
    the last line, a cut traceback): that exception ended the job."""
    last, exceptions = facts.last_line, facts.signal("exception")
    exc = exceptions[-1] if exceptions else None
    if exc is None or last is None or exc.file != last.file or exc.line < last.line - 2:
        return []
    if any(c in exc.text for c in _CONSEQUENCES) or any(facts.signal(k) for k in _EXPLAINED_BY):
        return []
    return [
        finding(
            "crash-traceback",
            "A Python exception ended the job",
            [exc],
            f"The log ends with the exception at {where(exc)}: `{exc.text.strip()[:300]}` "
            "(its traceback is not in the files read).",
            "Fix the error the exception names; the full traceback (the .err, or the lines above "
            "it in the job's log) shows where it was raised.",
        )
    ]


def _elastic(facts: JobFacts) -> bool:
    return any(facts.signal(k) for k in ("elastic_exit", "root_cause", "killed"))


def _launcher_note(facts: JobFacts, exc: Line | None) -> str:
    if exc is None or not any(c in exc.text for c in _CONSEQUENCES[:2]):
        return ""
    root = facts.signal("root_cause")
    where_root = f" torchelastic's Root Cause block is at {where(root[0])}." if root else ""
    return (
        " This is the launcher's summary of a failed worker; the worker's own traceback is not "
        f"in these files.{where_root} Its rank's output (the .err, or its error_file) shows the "
        "cause."
    )


def _first_rank(facts: JobFacts, exc: Line | None) -> str:
    """With `[rankN]:` tags: which rank failed first, and the other ranks' lost peers."""
    first = facts.ranks.first if facts.ranks else None
    if first is None or first.source != "exception":
        return ""
    return first_failure_text(facts, exc) + consequence_text(facts, (first.line,))


def check_crashes(facts: JobFacts, profile: Profile) -> list[Finding]:
    """One finding per failure family; a bare traceback only when nothing more specific does."""
    found = _specific(facts)
    explained = {f.code for f in found} & {"cuda-oom", "nccl-error", "data-error", "config-error"}
    if explained or any(f.code == "crash-traceback" for f in found):
        return found
    if not facts.signal("traceback"):
        return found + _last_exception(facts)
    if any(facts.signal(k) for k in _EXPLAINED_BY):
        return found  # host memory / NaN rules report the cause (NaN boxes trip the box assert)
    trace, exc = _root_traceback(facts)
    if node_failed(facts) and peer_lost(exc):
        return found  # the rank lost its peer on the failed node: the node-fail rule says so
    if (exc is None or any(c in exc.text for c in _CONSEQUENCES[:2])) and _elastic(facts):
        return found  # the launcher's own traceback: the failed-task rule quotes the rank
    if exc is not None and any(c in exc.text for c in _CONSEQUENCES[2:]):
        return found + _signal_ended(facts, trace, exc)
    what = (
        f"ending in `{exc.text.strip()[:300]}`"
        if exc
        else "with no exception line after it (the log may be cut off)"
    )
    found.append(
        finding(
            "crash-traceback",
            "A Python exception ended the job",
            [trace, exc, *facts.signal("root_cause")[:1]],
            f"Traceback at {where(trace)} {what}; the job was "
            f"{progress_at_end(facts)}.{_launcher_note(facts, exc)}{_first_rank(facts, exc)}",
            "Fix the error the exception names; the frames above it show where it was raised.",
        )
    )
    return found
