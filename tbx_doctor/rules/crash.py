"""Tracebacks and the specific failures they usually carry (CUDA OOM, NCCL, data, config)."""

from __future__ import annotations

from tbx_doctor.facts.job import JobFacts
from tbx_doctor.findings import Finding, finding
from tbx_doctor.profile.expectations import Profile
from tbx_doctor.reading.logscan import Line
from tbx_doctor.rules.describe import progress_at_end, where

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
    "device_assert": (
        "crash-traceback",
        "A CUDA device-side assert fired",
        "Usually labels >= num_classes: check num_classes / dn_labelbook_size against the "
        "annotation category ids; rerun with CUDA_LAUNCH_BLOCKING=1 for the exact op.",
    ),
}


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
        found[code] = finding(
            code, title, lines[:3], f"{text}. The job was {progress_at_end(facts)}.", fix
        )
    return list(found.values())


def check_crashes(facts: JobFacts, profile: Profile) -> list[Finding]:
    """One finding per failure family; a bare traceback only when nothing more specific does."""
    found = _specific(facts)
    explained = {f.code for f in found} & {"cuda-oom", "nccl-error", "data-error", "config-error"}
    traces = facts.signal("traceback")
    if traces and not explained and not any(f.code == "crash-traceback" for f in found):
        trace = traces[-1]
        exc = _exception_after(facts, trace)
        what = (
            f"ending in `{exc.text.strip()[:300]}`"
            if exc
            else "with no exception line after it (the log may be cut off)"
        )
        if facts.signal("box_assert"):
            return found  # the NaN rule reports it: the box assertion is its usual symptom
        found.append(
            finding(
                "crash-traceback",
                "A Python exception ended the job",
                [trace, exc],
                f"Traceback at {where(trace)} {what}; the job was {progress_at_end(facts)}.",
                "Fix the error the exception names; the frames above it show where it was raised.",
            )
        )
    return found
