"""tbx-doctor: what happened to a training job, why, and what to check before resubmitting.

Each sub-command lives in `tbx_doctor/commands/<name>.py` and exposes a typer-annotated
`command`; this module only wires them up and maps DoctorError to exit code 2.
Exit codes (all commands): 0 no error-level finding, 1 at least one, 2 the tool could not work.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tbx_doctor.commands import (
    check,
    codes,
    history,
    hook,
    inspect_ckpt,
    profile_learn,
    watch,
)
from tbx_doctor.commands.group import DoctorGroup

app = typer.Typer(
    name="tbx-doctor",
    cls=DoctorGroup,
    help="Diagnose SLURM training jobs (DINO / DETR family, tbx-train) from their logs and "
    "checkpoints. Exit codes: 0 healthy, 1 error-level finding, 2 unreadable input.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from tbx_doctor import __version__

        print(f"tbx-doctor {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keep sub-command names explicit even while only one command is registered."""


app.command("check")(check.command)
app.command("codes")(codes.command)
app.command("hook")(hook.command)
app.command("inspect-ckpt")(inspect_ckpt.command)
app.command("history")(history.command)
app.command("watch")(watch.command)
app.add_typer(profile_learn.app, name="profile")


def main() -> None:
    """Console-script entry point (a closed stdout pipe is handled by DoctorGroup.invoke)."""
    app()
