"""`tbx-doctor check PATH...`: what happened to a job, why, and what to check next."""

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


class Expect(StrEnum):
    fresh = "fresh"
    pretrained = "pretrained"
    resume = "resume"
    any = "any"


def exit_code(reports: list, strict: bool) -> int:
    """0 no error finding, 1 at least one (with --strict: or a warning)."""
    levels = {f.severity for r in reports for f in r.findings}
    return 1 if "error" in levels or (strict and "warning" in levels) else 0


def command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Job logs (.out/.err, plain or .gz) or run output directories.",
            metavar="PATH",
            show_default=False,
        ),
    ],
    expect: Annotated[
        Expect | None,
        typer.Option(help="The path the run should have taken (overrides the profile)."),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(help="TOML file of expectations (keys: tbx_doctor/profile/expectations.py)."),
    ] = None,
    format: Annotated[
        Format,
        typer.Option(
            "--format", help="text for people, json (schema tbx-doctor.check/1), markdown."
        ),
    ] = Format.text,
    strict: Annotated[bool, typer.Option(help="Exit 1 on warnings too.")] = False,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="A healthy run to compare against, epoch by epoch (its log, its output "
            "folder, or a profile from `profile learn`): off-reference where loss or AP "
            "leaves its band.",
        ),
    ] = None,
) -> None:
    """Diagnose SLURM training jobs from their logs: findings with evidence, checklist, run facts.

    Exit codes: 0 no error-level finding, 1 at least one (warnings too with --strict),
    2 the tool could not work (missing/unreadable input, bad option). Codes: `tbx-doctor codes`.
    """
    expected = expect.value if expect else None
    raise typer.Exit(run(paths, expected, profile, format.value, strict, reference))


def run(
    paths: list[Path],
    expect: str | None,
    profile: Path | None,
    fmt: str,
    strict: bool,
    reference: Path | None = None,
) -> int:
    """Diagnose, print in `fmt`, return the exit code (shared by typer and the fast path)."""
    from tbx_doctor.diagnosis import diagnose
    from tbx_doctor.profile.bands import with_reference
    from tbx_doctor.profile.expectations import load_profile

    if refuses_stdin(paths):
        return USAGE_EXIT
    skipped: list[str] = []
    try:
        profile_used = with_reference(load_profile(profile, expect), reference)
        reports = diagnose(paths, profile_used, skipped=skipped)
    except DoctorError as exc:
        print(f"tbx-doctor: error: {exc}", file=sys.stderr)
        return 2
    for note in skipped:
        print(f"tbx-doctor: note: {note}", file=sys.stderr)
    _emit(reports, fmt)
    return exit_code(reports, strict)


def _emit(reports: list, fmt: str) -> None:
    from tbx_doctor.report import render as report

    if fmt == "json":
        print(report.render_json(reports))
    elif fmt == "markdown":
        print(report.render_markdown(reports))
    else:
        from rich.console import Console

        report.render_text(reports, Console(highlight=False))
