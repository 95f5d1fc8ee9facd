"""`tbx-train synth DIR`: write the synthetic TBX11K data set (the demo's and tests' default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def command(
    directory: Annotated[Path, typer.Argument(help="Output folder (gets imgs/ and annotations/).")],
    images: Annotated[
        int, typer.Option(help="Total images (train + val; 1/6 go to val).", min=2)
    ] = 360,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed writes identical files.")
    ] = 0,
    size: Annotated[
        int, typer.Option(help="Image side in pixels (real TBX11K: 512).", min=32)
    ] = 128,
) -> None:
    """Write a synthetic TBX11K (X-ray-like images, TB-like boxes) in the real TBX11K layout."""
    from tbx_train.data.synth import write_synthetic_tbx11k  # numpy/PIL only when used

    summary = write_synthetic_tbx11k(directory, images=images, seed=seed, size=size)
    typer.echo(
        f"Wrote synthetic TBX11K to {summary.root}: train {summary.train_images} images "
        f"({summary.train_boxes} boxes), val {summary.val_images} images "
        f"({summary.val_boxes} boxes), {size}x{size} px, seed {seed}"
    )
    typer.echo(f"Train with: --data-root {summary.root}")
