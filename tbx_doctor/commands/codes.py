"""`tbx-doctor codes`: every finding code any command can emit, with severity and meaning.

check's codes (`findings.CODES`, also emitted by `hook` and `watch`) and watch's early-warning
codes (`watch.early_warnings.WATCH_CODES`, emitted by `watch` only) live in separate tables so that
each rule set keeps its own test ("every CODES entry is triggered by check"); this listing
merges them.
"""

from __future__ import annotations

from typing import Annotated

import typer

WATCH_ONLY_MARK = "[watch only]"


def all_codes() -> dict[str, tuple[str, str, bool]]:
    """code -> (default severity, meaning, emitted by `watch` only), check's codes first."""
    from tbx_doctor.findings import CODES
    from tbx_doctor.watch.early_warnings import WATCH_CODES

    merged = {code: (severity, meaning, False) for code, (severity, meaning) in CODES.items()}
    for code, (severity, meaning) in WATCH_CODES.items():
        merged[code] = (severity, meaning, True)
    return merged


def command(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print a JSON object code -> {severity, meaning} (plus watch_only: true for "
            "watch's early warnings).",
        ),
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Also print every default expectation and threshold: value, where it comes "
            'from, how sure it is (with --json: under the key "defaults").',
        ),
    ] = False,
) -> None:
    """List every finding code (stable names, DESIGN 4.2) with default severity and meaning;
    watch's early warnings are marked \\[watch only]."""
    import json

    from tbx_doctor.profile.explain import explain_text, explained_defaults

    codes = all_codes()
    if as_json:
        data = {}
        for code, (severity, meaning, watch_only) in codes.items():
            data[code] = {"severity": severity, "meaning": meaning}
            if watch_only:
                data[code]["watch_only"] = True
        if explain:
            data["defaults"] = explained_defaults()
        typer.echo(json.dumps(data, indent=2))
        return
    width = max(map(len, codes))
    for code, (severity, meaning, watch_only) in codes.items():
        mark = f"{WATCH_ONLY_MARK} " if watch_only else ""
        typer.echo(f"{code:<{width}}  {severity:<7}  {mark}{meaning}")
    if explain:
        typer.echo("\n" + explain_text())
