"""`tbx-doctor profile learn LOGS... > profile.toml`: expectations from healthy runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tbx_doctor.errors import DoctorError

app = typer.Typer(
    name="profile",
    help="Profiles: the expectations `check --profile FILE` compares runs against.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("learn")
def command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Logs, output directories, folders or globs of healthy runs.",
            metavar="LOGS",
            show_default=False,
        ),
    ],
    margin: Annotated[
        float, typer.Option(help="Widen each observed min..max by this fraction.", min=0.0)
    ] = 0.25,
) -> None:
    """Derive expectation ranges (epoch-0 loss, minutes per epoch, AP after epoch 0, iterations
    per epoch) from runs that did not fail, and print them as TOML for `tbx-doctor check
    --profile`.

    Exit codes: 0 printed, 2 unreadable input or no healthy training run among the inputs.
    """
    from tbx_doctor.history.rows import build_history
    from tbx_doctor.profile.learn import render_profile

    try:
        text = render_profile(build_history(paths), margin)
    except DoctorError as exc:
        print(f"tbx-doctor: error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    print(text, end="")
