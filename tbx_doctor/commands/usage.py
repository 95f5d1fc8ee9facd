"""One-line messages for bad option values (DESIGN 4.1: exit 2, the allowed values named).

Both CLI paths print `bad_value`: the fast argparse path (commands/fast.py) and the typer app,
whose root group (commands/group.py) turns typer's boxed usage panel into that line. This
module imports nothing heavy: the fast path must not pay for typer.
"""

from __future__ import annotations

from collections.abc import Sequence

USAGE_EXIT = 2


def bad_value(option: str, value: str | None, allowed: Sequence[str] | None, reason: str) -> str:
    """`tbx-doctor: error: invalid value 'x' for --opt (<the allowed values, else reason>)`."""
    given = f" {value!r}" if value is not None else ""
    why = f"allowed: {', '.join(allowed)}" if allowed else reason
    return f"tbx-doctor: error: invalid value{given} for {option} ({why})"
