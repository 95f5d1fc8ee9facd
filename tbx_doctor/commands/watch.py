"""`tbx-doctor watch LOG`: follow a running job and report problems as they appear."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from tbx_doctor.errors import DoctorError


class Format(StrEnum):
    text = "text"
    json = "json"


def parse_limit(text: str | None) -> float | None:
    """ "4:00:00" / "1-00:00:00" (SLURM's forms) or minutes ("240") -> seconds."""
    if text is None:
        return None
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    try:
        numbers = [float(p) for p in parts]
        extra = float(days) * 86400 if days else 0.0
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r}: use H:MM:SS, D-HH:MM:SS or minutes", param_hint="--time-limit"
        ) from exc
    if len(numbers) == 1:
        return extra + numbers[0] * 60
    while len(numbers) < 3:
        numbers.insert(0, 0.0)
    return extra + numbers[-3] * 3600 + numbers[-2] * 60 + numbers[-1]


def _printer(fmt: str):
    def emit(event) -> None:
        if fmt == "json":
            print(json.dumps(asdict(event)), flush=True)
        else:
            where = (
                f"  [{event.evidence[0].file}:{event.evidence[0].line}]" if event.evidence else ""
            )
            print(f"[{event.at:7.1f}s] {event.kind}: {event.text}{where}", flush=True)

    return emit


_Log = Annotated[Path, typer.Argument(help="The job's .out log (it may not exist yet).")]
_Interval = Annotated[float, typer.Option(min=0.01, help="Seconds between two looks.")]
_Timeout = Annotated[
    float | None,
    typer.Option(min=0.0, help="Stop after this many seconds (default: at the job's end)."),
]
_Stall = Annotated[
    float,
    typer.Option(min=0.0, help="Warn when no iteration follows `Start training` this long (min)."),
]
_TimeLimit = Annotated[
    str | None,
    typer.Option(
        help="The job's time limit (H:MM:SS, D-HH:MM:SS or minutes), counted from its Start "
        "Time; SLURM_JOB_END_TIME in the log wins."
    ),
]
_Margin = Annotated[
    float,
    typer.Option(min=0.0, help="Warn this many minutes before the limit if the epoch is unsaved."),
]
_ZeroLoss = Annotated[
    int, typer.Option(min=1, help="Warn when the running loss is exactly 0 this many iterations.")
]
_Settle = Annotated[
    float, typer.Option(min=0.0, help="After the trainer's last line, wait this long for more.")
]
_Profile = Annotated[Path | None, typer.Option(help="TOML file of expectations.")]
_Reference = Annotated[
    Path | None,
    typer.Option(help="A healthy run (log, output folder or learned profile) to compare with."),
]
_Format = Annotated[
    Format, typer.Option("--format", help="text lines, or one JSON object per event.")
]
_Strict = Annotated[bool, typer.Option(help="Exit 1 on warnings too.")]


def command(
    log: _Log,
    interval: _Interval = 10.0,
    timeout: _Timeout = None,
    stall_minutes: _Stall = 10.0,
    time_limit: _TimeLimit = None,
    margin_minutes: _Margin = 30.0,
    zero_loss_iterations: _ZeroLoss = 500,
    settle: _Settle = 30.0,
    profile: _Profile = None,
    reference: _Reference = None,
    format: _Format = Format.text,
    strict: _Strict = False,
) -> None:
    """Follow a running job's log (and its .err), re-checking as lines arrive: each finding
    once, checklist items as they turn pass/fail, and early warnings: training-stalled (no
    iteration N minutes after `Start training`), loss-stuck-zero (running loss exactly 0 with
    class_error 100), time-limit-near (limit close, current epoch unsaved); NaN, zero epochs,
    crashes and the learning findings (AP collapsed, not learning, loss diverging, off the
    --reference band) come from the same rules as `check`. Stops at the job's end or --timeout.

    Exit codes: as `check` for what was seen (0, 1; warnings too with --strict), 2 unreadable
    input or bad option.
    """
    from tbx_doctor.profile.bands import with_reference
    from tbx_doctor.profile.expectations import load_profile
    from tbx_doctor.watch.follower import Watcher, WatchOptions

    if str(log) == "-":
        _fail("watch follows a file as it grows: give the job's log path, not - (stdin)")
    options = WatchOptions(
        interval, timeout, stall_minutes, parse_limit(time_limit), margin_minutes,
        zero_loss_iterations, strict, settle,
    )  # fmt: skip
    watcher = None
    try:
        expected = with_reference(load_profile(profile), reference)
        watcher = Watcher(log, options, expected, _printer(format.value))
        with _sigterm_as_interrupt():
            code = watcher.run()
    except DoctorError as exc:
        _fail(str(exc))
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the final event, what was seen
        if watcher is None:
            raise typer.Exit(2) from None
        code = watcher.stop(str(stop) or "Ctrl-C")
    if watcher.first_seen is None:
        _fail(f"{log} never appeared (is the path right, has the job started?)")
    raise typer.Exit(code)


def _fail(message: str) -> None:
    print(f"tbx-doctor: error: {message}", file=sys.stderr)
    raise typer.Exit(2)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (scancel, systemd, `timeout`) ends the watch like Ctrl-C: a final event, exit."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding caller): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
