"""`tbx-train config show`: print the resolved config of a preset, a --config file and --set.

Examples:
    tbx-train config show --preset tbx11k-user-best
    tbx-train config show --config my.toml --set train.epochs=50 --format json
    tbx-train config show --list
Exit codes: 0 printed, 2 unknown key, bad value, unknown preset or unreadable file.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from tbx_train.commands import run_options as opt

app = typer.Typer(
    help="Inspect run configs (presets, --config files, --set overrides).",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("show")
def show(
    preset: opt.Preset = None,
    config: opt.ConfigFile = None,
    set_values: opt.SetValues = None,
    output_format: Annotated[
        str, typer.Option("--format", help="toml (reusable with --config) or json.")
    ] = "toml",
    list_presets: Annotated[
        bool, typer.Option("--list", help="List the presets and their descriptions.")
    ] = False,
) -> None:
    """Print the resolved config (every field) that `run` would use with these options."""
    from tbx_train.config import ConfigError
    from tbx_train.config_files import (
        config_dict,
        preset_description,
        preset_names,
        resolve_config,
        to_toml,
    )

    if list_presets:
        for name in preset_names():
            typer.echo(f"{name:18s} {preset_description(name)}")
        return
    if output_format not in ("toml", "json"):
        print(f"Error: --format {output_format!r}; choose toml or json", file=sys.stderr)
        raise typer.Exit(2)
    try:
        resolved = resolve_config(preset, config, None, set_values or ())
    except ConfigError as error:
        print(f"Error: {error}", file=sys.stderr)
        raise typer.Exit(2) from error
    if output_format == "json":
        typer.echo(json.dumps(config_dict(resolved), indent=2))
    else:
        typer.echo(to_toml(resolved), nl=False)
