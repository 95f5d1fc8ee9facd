"""`tbx-doctor inspect-ckpt`: what a checkpoint holds, and what resuming it with a plan would do.

Exit codes: 0 nothing wrong (or no plan given), 1 resuming with the given plan would train nothing
or crosses an incompatible strategy / class count, 2 the file cannot be read or was refused as
unsafe (its pickle names code outside the allow-list; nothing was run).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from tbx_doctor.errors import DoctorError


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


_Checkpoint = Annotated[Path, typer.Argument(help="A .pth file written by torch.save.")]
_Epochs = Annotated[
    int | None, typer.Option(min=0, help="Planned total epochs (the run's --epochs).")
]
_Batch = Annotated[int | None, typer.Option(min=1, help="Planned images per device.")]
_Accum = Annotated[
    int | None, typer.Option(min=1, help="Planned micro-batches per optimizer step.")
]
_World = Annotated[int | None, typer.Option(min=1, help="Planned number of processes (GPUs).")]
_Classes = Annotated[int | None, typer.Option(min=1, help="Planned class-head size.")]
_Format = Annotated[OutputFormat, typer.Option("--format", help="text (people) or json/markdown.")]


def command(
    checkpoint: _Checkpoint,
    epochs: _Epochs = None,
    batch_size: _Batch = None,
    grad_accum: _Accum = None,
    world_size: _World = None,
    num_classes: _Classes = None,
    output_format: _Format = OutputFormat.text,
) -> None:
    """Inspect a checkpoint without running its pickle; predict a resume with the given plan.

    Options not given keep the checkpoint's recorded values. Exit 1 when resuming with the given
    plan would train nothing or is incompatible, 2 when the file is unreadable or unsafe.
    """
    # Imported here so that `tbx-doctor --help` and other commands stay light.
    from tbx_doctor.checkpoint import predict_resume, render, summarize_checkpoint

    try:
        summary = summarize_checkpoint(checkpoint)
    except DoctorError as error:
        typer.echo(f"tbx-doctor: error: {error}", err=True)
        raise typer.Exit(2) from error
    prediction = None
    if summary.is_safe:
        prediction = predict_resume(
            summary,
            epochs=epochs,
            batch_size=batch_size,
            grad_accum=grad_accum,
            world_size=world_size,
            num_classes=num_classes,
        )
    renderers = {
        OutputFormat.text: render.render_text,
        OutputFormat.json: render.render_json,
        OutputFormat.markdown: render.render_markdown,
    }
    typer.echo(renderers[output_format](summary, prediction))
    exit_codes = {"ok": 0, "finished": 0, "problem": 1, "unsafe": 2}
    raise typer.Exit(exit_codes[render.verdict(summary, prediction)])
