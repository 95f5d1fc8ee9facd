"""`tbx-train plan`: print what `tbx-train run` would do with the same options, then exit.

Exit codes: 0 the plan is fine (the report, then the `Run plan:` line), 3 refused (the
`Run plan refused: ... Fix: ...` line), 2 bad options or unreadable input.
"""

from __future__ import annotations

import os

import typer

from tbx_train.commands.options import RunOptions, build_run_config, run_options_command

EXIT_OK, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 2, 3


def plan(options: RunOptions) -> int:
    """Show the run plan (fresh / pretrained / resume, epochs to run, strategies) and exit.

    Takes exactly the options of `tbx-train run`. World size: --world-size, else the launcher's
    (WORLD_SIZE, SLURM_NTASKS), else 1. Exit 0 = runnable, 3 = refused, 2 = bad input.
    """
    # Heavy imports here: `tbx-train --help` must stay fast.
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
        config = build_run_config(options)
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


command = run_options_command(plan)
