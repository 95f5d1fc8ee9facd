"""The typer app's root group: a bad option value is one line on stderr and exit 2.

typer would print a boxed usage panel; DESIGN 4.1 wants a message naming the allowed values,
the same line the fast path prints (commands/usage.py).
"""

from __future__ import annotations

import sys
from enum import Enum

import typer
from typer.core import TyperGroup

from tbx_doctor.commands.usage import USAGE_EXIT, bad_value


def _given_value(exc: typer.BadParameter) -> str | None:
    """The rejected input, as typer's validator recorded it (None when it did not)."""
    errors = getattr(exc.__cause__, "errors", None)
    try:
        value = errors()[0]["input"] if callable(errors) else None
    except (IndexError, KeyError, TypeError):
        return None
    return None if value is None else str(value)


def _allowed(param: object) -> list[str] | None:
    # typer with its own click copy (0.29 here) has `type_descriptor`; click-based typer `type`.
    described = getattr(param, "type_descriptor", None) or getattr(param, "type", None)
    choices = getattr(described, "choices", None)
    if not choices:
        return None
    return [str(c.value) if isinstance(c, Enum) else str(c) for c in choices]


def describe_bad_parameter(exc: typer.BadParameter) -> str:
    """The one-line message for typer's BadParameter (a bad option or argument value)."""
    param = exc.param
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    option = opts[0] if opts else (exc.param_hint or getattr(param, "name", None) or "argument")
    reason = exc.message.removeprefix("Value error, ").rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    return bad_value(str(option), _given_value(exc), _allowed(param), reason)


class DoctorGroup(TyperGroup):
    """The root command group: a bad value for any sub-command's option is one line, exit 2."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            print(describe_bad_parameter(exc), file=sys.stderr)
            raise typer.Exit(USAGE_EXIT) from None
