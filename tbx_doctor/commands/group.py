"""The typer app's root group: every usage error is one line on stderr and exit 2.

typer would print a boxed usage panel; DESIGN 4.1 wants `tbx-doctor: error: ...` naming the
problem and the fix (a bad value names the allowed values; commands/usage.py builds that line).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum

import typer
from typer._click import exceptions as click_errors
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


def _metavar(param: object) -> str:
    opts = [o for o in getattr(param, "opts", []) if o.startswith("-")]
    if getattr(param, "param_type_name", "") == "option" and opts:
        return opts[0]
    return str(getattr(param, "metavar", None) or getattr(param, "name", "argument")).upper()


def _missing(exc: click_errors.BadParameter) -> str:
    command = exc.ctx.command_path if exc.ctx else "tbx-doctor"
    return f"tbx-doctor: error: {command} needs {_metavar(exc.param)} (see `{command} --help`)"


def describe_bad_parameter(exc: typer.BadParameter) -> str:
    """The one-line message for typer's BadParameter (a bad option or argument value)."""
    param = exc.param
    if isinstance(exc, click_errors.MissingParameter) or (
        getattr(param, "param_type_name", "") == "argument" and _given_value(exc) in (None, "()")
    ):
        return _missing(exc)
    option = _metavar(param) if param is not None else (exc.param_hint or "argument")
    reason = exc.message.removeprefix("Value error, ").rstrip(".")
    reason = reason[:1].lower() + reason[1:]
    return bad_value(str(option), _given_value(exc), _allowed(param), reason)


def describe_usage_error(exc: click_errors.UsageError) -> str:
    """One line for any click usage error: bad value, missing argument, unknown option/command."""
    if isinstance(exc, click_errors.BadParameter):
        return describe_bad_parameter(exc)
    text = " ".join(exc.format_message().split()).rstrip(".")
    text = text[:1].lower() + text[1:]
    command = exc.ctx.command_path if exc.ctx else "tbx-doctor"
    return f"tbx-doctor: error: {text} (see `{command} --help`)"


@contextmanager
def one_line_usage_errors() -> Iterator[None]:
    """Turn click's usage errors into `tbx-doctor: error: ...` and exit 2."""
    try:
        yield
    except click_errors.NoArgsIsHelpError:
        raise  # `tbx-doctor` alone prints the help, as asked
    except click_errors.UsageError as exc:
        print(describe_usage_error(exc), file=sys.stderr)
        raise typer.Exit(USAGE_EXIT) from None


class DoctorGroup(TyperGroup):
    """The root command group: any usage error of any sub-command is one line, exit 2."""

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override]
        with one_line_usage_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: typer.Context) -> object:
        try:
            with one_line_usage_errors():
                return super().invoke(ctx)
        except BrokenPipeError:
            # `tbx-doctor check x.out | head`: the reader left; that is not an error of ours.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
