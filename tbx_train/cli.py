"""tbx-train: DINO-4scale training on TBX11K (run, plan, eval, synth, config).

Each sub-command's options are typed here; the library below takes frozen dataclasses.
"""

from __future__ import annotations

import typer

from tbx_train.commands import config_show, plan, run, synth
from tbx_train.commands import eval as eval_command

app = typer.Typer(
    name="tbx-train",
    help="Train and evaluate DINO-4scale on TBX11K or any COCO-format data set.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Keep sub-command names explicit even while only one command is registered."""


app.command("run")(run.command)
app.command("plan")(plan.command)
app.command("eval")(eval_command.command)
app.command("synth")(synth.command)
app.add_typer(config_show.app, name="config")


def main() -> None:
    """Console-script entry point."""
    app()
