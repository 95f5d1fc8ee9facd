"""`tbx-doctor history PATH...`: one row per job, the resume chain, and what it cost."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from tbx_doctor.commands.usage import USAGE_EXIT, refuses_stdin
from tbx_doctor.errors import DoctorError


class Format(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    csv = "csv"


def command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Job logs (.out/.err, plain or .gz), run output directories, folders of logs, "
            "or globs.",
            metavar="PATH",
            show_default=False,
        ),
    ],
    format: Annotated[
        Format,
        typer.Option(
            "--format",
            help="text, json (schema tbx-doctor.history/1), markdown, csv (one row per job).",
        ),
    ] = Format.text,
    plot: Annotated[
        Path | None,
        typer.Option(help="Also draw loss and AP along each chain to this PNG (needs matplotlib)."),
    ] = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 on warnings too.")] = False,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="A healthy run (log, output folder or learned profile): mark where each "
            "chain's loss or AP leaves its per-epoch band."
        ),
    ] = None,
    compare: Annotated[
        list[Path] | None,
        typer.Option(
            help="Logs or folders of another chain to show beside each chain, epoch by epoch "
            "(repeatable)."
        ),
    ] = None,
) -> None:
    """The chain of jobs at a glance: how each job started and ended, what it trained, which
    job resumed from which (gaps, forks, zero-epoch jobs, strategy changes), epochs reached of
    planned, GPU hours spent and lost.

    Exit codes: 0 no job has an error-level finding, 1 at least one (warnings too with
    --strict), 2 the tool could not work (missing/unreadable input, no matplotlib for --plot).
    """
    raise typer.Exit(run(paths, format.value, plot, strict, reference, compare or []))


def run(
    paths: list[Path],
    fmt: str,
    plot: Path | None,
    strict: bool,
    reference: Path | None = None,
    compare: list[Path] = (),
) -> int:
    from tbx_doctor.history import render as history_render
    from tbx_doctor.history.curves import with_curves

    if refuses_stdin(paths):
        return USAGE_EXIT
    try:
        history = with_curves(paths, reference, list(compare))
        if plot is not None:
            from tbx_doctor.history.plot import plot_history

            plot_history(history, plot)
    except DoctorError as exc:
        print(f"tbx-doctor: error: {exc}", file=sys.stderr)
        return 2
    if fmt == "json":
        print(history_render.render_json(history))
    elif fmt == "csv":
        print(history_render.render_csv(history), end="")
    elif fmt == "markdown":
        print(history_render.render_markdown(history))
    else:
        from rich.console import Console

        history_render.render_text(history, Console(highlight=False))
        if plot is not None:
            print(f"plot written to {plot}")
    verdicts = {r.verdict for r in history.rows}
    return 1 if "failed" in verdicts or (strict and "warning" in verdicts) else 0
