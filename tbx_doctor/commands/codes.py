"""`tbx-doctor codes`: every finding code with its default severity and meaning."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON object code -> {severity, meaning}.")
    ] = False,
) -> None:
    """List every finding code (stable names, DESIGN 4.2) with default severity and meaning."""
    import json

    from tbx_doctor.findings import CODES

    if as_json:
        typer.echo(
            json.dumps({c: {"severity": s, "meaning": m} for c, (s, m) in CODES.items()}, indent=2)
        )
        return
    width = max(map(len, CODES))
    for code, (severity, meaning) in CODES.items():
        typer.echo(f"{code:<{width}}  {severity:<7}  {meaning}")
