"""`tbx-train plan`: print what `tbx-train run` would do with the same options, then exit.

The command takes `run`'s signature itself (functools.wraps), so both always accept exactly the
same options (tbx_train.commands.run_options). Exit codes: 0 the plan is fine (the report, then
the `Run plan:` line), 3 refused (`Run plan refused: ... Fix: ...`), 2 bad options or input.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import typer

from tbx_train.commands import run
from tbx_train.commands import run_options as opt

EXIT_OK, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 2, 3


def plan(options: dict[str, Any]) -> int:
    """Decide and print the plan for `run`'s options; returns the exit code."""
    # Imported here: `tbx-train --help` must not pay for torch.
    from tbx_train.checkpoint import CheckpointError
    from tbx_train.config import ConfigError
    from tbx_train.distributed import launcher_world_size
    from tbx_train.plan import (
        PlanRefused,
        decide_plan,
        format_plan_line,
        format_plan_report,
        request_from_config,
    )

    try:
        config = opt.build_run_config(options.pop("preset"), **options)
        world_size = config.train.world_size or launcher_world_size(os.environ)
        run_plan = decide_plan(request_from_config(config, world_size))
    except PlanRefused as exc:
        typer.echo(exc.line())
        return EXIT_REFUSED
    except (ConfigError, CheckpointError, ValueError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        return EXIT_BAD_INPUT
    typer.echo(format_plan_report(run_plan))
    typer.echo(format_plan_line(run_plan))
    return EXIT_OK


@functools.wraps(run.command)
def command(**options: Any) -> None:
    raise typer.Exit(plan(options))


command.__doc__ = """Show what `run` would do with the same options, then exit.

Prints the decision (fresh / pretrained / resume and why), the epochs to run, both strategies,
and the `Run plan:` line. Exit 0 runnable, 3 refused, 2 bad input. World size: the preset's,
else the launcher's (WORLD_SIZE, SLURM_NTASKS), else 1.
"""
