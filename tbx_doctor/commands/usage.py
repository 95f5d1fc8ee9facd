"""One-line messages for bad option values (DESIGN 4.1: exit 2, the allowed values named).

The typer app's root group (commands/group.py) turns typer's boxed usage panel into these
lines; `refuse_stdin` answers `-` in place of a path, which no command reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

USAGE_EXIT = 2


def bad_value(option: str, value: str | None, allowed: Sequence[str] | None, reason: str) -> str:
    """`tbx-doctor: error: invalid value 'x' for --opt (<the allowed values, else reason>)`."""
    given = f" {value!r}" if value is not None else ""
    why = f"allowed: {', '.join(allowed)}" if allowed else reason
    return f"tbx-doctor: error: invalid value{given} for {option} ({why})"


STDIN_REFUSED = (
    "tbx-doctor: error: - (standard input) is not read: the doctor finds a job's .err, source "
    "job and run folder beside its log, so give the log's path (plain or .gz)"
)


def refuses_stdin(paths: Sequence[Path]) -> bool:
    """True (after printing STDIN_REFUSED) when one of `paths` is `-`."""
    import sys

    if any(str(p) == "-" for p in paths):
        print(STDIN_REFUSED, file=sys.stderr)
        return True
    return False
