"""Fast start for `check` and `hook` (the post-job path): plain argparse, no typer app.

Why: invoking the typer app imports pydantic adapters (~0.3 s), more than the whole diagnosis
of a small log. The options mirror `commands/check.py` and `commands/hook.py` exactly and call
the same `run` functions; anything this parser does not accept (--help, typos, other commands)
returns None so that the typer app handles it with its usual messages. A bad value for
--expect/--format is answered here, with the same one line as the typer path (commands/usage.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tbx_doctor.commands.usage import USAGE_EXIT, bad_value

EXPECT = ("fresh", "pretrained", "resume", "any")
FORMATS = ("text", "json", "markdown")


class _Refused(Exception):
    """argparse wanted to exit: let typer produce the message instead."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Refused(message)


def _check_parser() -> _Parser:
    parser = _Parser(prog="tbx-doctor check", add_help=False, allow_abbrev=False)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--expect")
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--format", default="text")
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--no-strict", dest="strict", action="store_false")
    return parser


def _hook_parser() -> _Parser:
    parser = _Parser(prog="tbx-doctor hook", add_help=False, allow_abbrev=False)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--expect")
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--no-strict", dest="strict", action="store_false")
    return parser


def run(argv: list[str]) -> int | None:
    """Exit code of `check`/`hook` for argv (without the program name), or None: use typer."""
    if (
        not argv
        or argv[0] not in ("check", "hook")
        or any(a.startswith("-h") or a == "--help" for a in argv)
    ):
        return None
    try:
        if argv[0] == "check":
            ns = _check_parser().parse_args(argv[1:])
        else:
            ns = _hook_parser().parse_args(argv[1:])
    except _Refused:
        return None
    for option, allowed in (("--expect", EXPECT), ("--format", FORMATS)):
        value = getattr(ns, option[2:], None)
        if value is not None and value not in allowed:
            print(bad_value(option, value, allowed, ""), file=sys.stderr)
            return USAGE_EXIT
    if argv[0] == "check":
        from tbx_doctor.commands import check

        return check.run(ns.paths, ns.expect, ns.profile, ns.format, ns.strict)
    from tbx_doctor.commands import hook

    return hook.run(ns.log, ns.strict, ns.expect, ns.profile)
