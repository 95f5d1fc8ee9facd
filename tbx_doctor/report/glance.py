"""A job at a glance: how it ended, in one phrase, and its SLURM-style state.

Shared by `check`'s summary table (many jobs) and the hook's summary (one job's `.out`). Both
work on the report's dict form (`Report.to_dict()`, the JSON schema), so a test can rebuild the
hook's lines from the `.doctor.json` it wrote.
"""

from __future__ import annotations

import re

from tbx_doctor.reading.patterns import INTERRUPTED

# end_reason (diagnosis._end_reason) -> what `sacct`'s State column would say.
STATE = {
    "completed": "COMPLETED",
    "zero-epochs": "COMPLETED",
    "time-limit": "TIMEOUT",
    "cancelled": "CANCELLED",
    "preempted": "PREEMPTED",
    "requeued": "REQUEUED",
    "node-fail": "NODE_FAIL",
    "host-oom": "OUT_OF_MEMORY",
    "running": "RUNNING",
}
CRASHES = {"cuda-oom", "nan-loss", "nccl-error", "crash", "config-error", "data-error"}
# Findings that tell how a job ended: the hook lists them first and never cuts them.
ENDING_CODES = (
    "time-limit",
    "cancelled",
    "preempted",
    "requeued",
    "node-fail",
    "host-oom-killed",
    "cuda-oom",
    "nan-loss",
    "nccl-error",
    "crash-traceback",
    "config-error",
    "data-error",
    "task-failed",
    "zero-epochs",
    "immediate-exit",
    "incomplete-log",
)
_CONTINUED = re.compile(r"Submitted job (\d+) to continue")
_EVALUATING = re.compile(r"was evaluating after epoch (\d+)")
_REQUEUED_AS = re.compile(r"TBX_ON_STOP=requeue: job (\d+) is requeued")


def state(report: dict) -> str:
    """COMPLETED, TIMEOUT, CANCELLED, FAILED, ... from the report's end_reason."""
    reason = report["run"].get("end_reason") or "unknown"
    if reason in CRASHES:
        return "FAILED"
    return STATE.get(reason, "UNKNOWN")


def epochs(report: dict) -> str:
    """ "25-37/50", "eval", "none/50" or "?" (the files do not say)."""
    run = report["run"]
    if run.get("eval_only"):
        return "eval"
    first, last, planned = run.get("first_epoch"), run.get("last_epoch"), run.get("epochs_planned")
    of = f"/{planned}" if planned is not None else ""
    if first is None:
        trained_none = run.get("end_reason") == "zero-epochs"
        return f"none{of}" if trained_none else "?"
    span = f"{first}" if first == last else f"{first}-{last}"
    return span + of


def _position(run: dict, short: bool = False) -> str:
    """Where training stood at the end, from the run facts ("" where the files do not say)."""
    done = run.get("epochs") or []
    if not done:
        if run.get("missing_files") or run.get("first_epoch") is not None:
            return ""  # the log that would show it is missing: unknown, not "no iteration"
        if run.get("training") == "unknown":
            return ""  # a fragment or an .err alone: the files cannot show it
        return "before training" if short else "before any training iteration"
    last = done[-1]
    if last.get("finished"):
        return f"after epoch {last['epoch']}"
    total = run.get("iterations_per_epoch")
    at = run.get("last_iteration")
    if at is None:
        return f"in epoch {last['epoch']}"
    of = f"/{total}" if total else ""
    if short:
        return f"in epoch {last['epoch']} ({at}{of})"
    return f"in epoch {last['epoch']} at iteration {at}{of}"


def _saved(report: dict) -> tuple[str | None, str | None]:
    """(where tbx-train saved on its signal, the job that continues it) from `requeued`."""
    found = next((f for f in report["findings"] if f["code"] == "requeued"), None)
    if found is None:
        return None, None
    saved = continued = None
    for line in found["evidence"]:
        match = INTERRUPTED.search(line["text"])
        if match:
            saved = f"epoch {match.group(3)}"
            saved += f", iteration {match.group(4)}" if match.group(4) is not None else ""
    for text in [found["explanation"], *(e["text"] for e in found["evidence"])]:
        if (match := _CONTINUED.search(text)) is not None:
            continued = f"continued by job {match.group(1)}"
        elif (match := _REQUEUED_AS.search(text)) is not None:
            continued = f"requeued as job {match.group(1)}"
    return saved or "a checkpoint", continued


def _signal(report: dict) -> str:
    """The signal tbx-train names in its `Interrupted by SIG...` line (`a signal` if cut)."""
    for f in report["findings"]:
        for line in f["evidence"] if f["code"] == "requeued" else ():
            if (match := INTERRUPTED.search(line["text"])) is not None:
                return match.group(1)
    return "a signal"


def _evaluating(report: dict) -> str | None:
    """ "during evaluation after epoch E" when the ending finding says the job was evaluating
    (rules/describe.progress_at_end wrote it from the log's last phase)."""
    for f in report["findings"]:
        match = _EVALUATING.search(f["explanation"]) if f["code"] in ENDING_CODES else None
        if match:
            return f"during evaluation after epoch {match.group(1)}"
    return None


def _killed(report: dict, what: str, short: bool) -> str:
    saved, continued = _saved(report)
    if saved is not None:
        parts = [what, f"{'saved' if short else 'progress saved'} at {saved}"]
        return "; ".join([*parts, continued] if continued else parts)
    where = _evaluating(report) or _position(report["run"], short)
    lost = " (the unsaved part is lost)" if where.startswith("in epoch") and not short else ""
    return f"{what} {where}{lost}".strip()


def how_it_ended(report: dict, short: bool = False) -> str:
    """One phrase: finished / time limit reached ... / cancelled ... / crashed: ... / ...

    short: for a table cell (no consequences spelled out, no finding title)."""
    run = report["run"]
    reason = run.get("end_reason") or "unknown"
    top = report["findings"][0]["title"] if report["findings"] else ""
    eval_only = run.get("eval_only")
    phrases = {
        "completed": "finished" + (" (evaluation only)" if eval_only and not short else ""),
        "zero-epochs": "no epoch trained" if short else "exited without training an epoch",
        "running": f"running {_position(run, short)}".strip(),
        "unknown": "?" if short else "unknown: no line says how it ended",
    }
    failure = next(
        (f for f in report["findings"] if f["severity"] == "error" and f["code"] in ENDING_CODES),
        None,
    )
    if reason in ("completed", "unknown") and failure is not None:
        # The trainer's ending line is there, but a task failed (srun) or the log is cut.
        return f"failed ({failure['code']})" if short else f"failed: {failure['title']}"
    if reason in phrases:
        return phrases[reason]
    if reason in CRASHES:
        where = _position(run, short)
        return f"crashed {where}".strip() if short else f"crashed {where}: {top}".replace(" :", ":")
    verbs = {
        "time-limit": "time limit" if short else "time limit reached",
        "requeued": f"stopped on {_signal(report)}",
        "node-fail": "node failure",
        "host-oom": "host out of memory" if short else "killed for host memory",
    }
    return _killed(report, verbs.get(reason, reason.replace("-", " ")), short)


def main_finding(report: dict) -> str:
    """The top finding's code, or `-`."""
    return report["findings"][0]["code"] if report["findings"] else "-"


def ending_first(findings: list[dict]) -> list[dict]:
    """Findings that tell how the job ended first (in ENDING_CODES order), then the rest."""
    rank = {code: i for i, code in enumerate(ENDING_CODES)}
    ending = sorted((f for f in findings if f["code"] in rank), key=lambda f: rank[f["code"]])
    return ending + [f for f in findings if f["code"] not in rank]
