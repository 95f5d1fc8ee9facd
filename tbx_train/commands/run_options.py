"""The options `tbx-train run` (and `plan`) share, and the RunConfig they make.

Every option defaults to None = "as the preset says"; `build_run_config` applies the ones given.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from tbx_train.config import RUN_PRESETS, RunConfig, run_preset

Preset = Annotated[
    str, typer.Option(help=f"Run preset: {', '.join(sorted(RUN_PRESETS))}.", show_default=True)
]
DataRoot = Annotated[
    Path | None, typer.Option(help="Data set root in the TBX11K layout (imgs/, annotations/json/).")
]
TrainJson = Annotated[Path | None, typer.Option(help="COCO json of the training split.")]
ValJson = Annotated[Path | None, typer.Option(help="COCO json of the validation split.")]
ImageRoot = Annotated[Path | None, typer.Option(help="Folder the json file_name entries are in.")]
OutputDir = Annotated[
    Path | None, typer.Option(help="Run folder: checkpoints, log.txt (default outputs/run).")
]
Epochs = Annotated[int | None, typer.Option(help="Total epochs of the run (not 'more epochs').")]
BatchSize = Annotated[
    int | None, typer.Option(help="Images per GPU (per process) per micro-batch.")
]
GradAccum = Annotated[
    int | None, typer.Option(help="Micro-batches accumulated per optimizer step (1 = none).")
]
Lr = Annotated[float | None, typer.Option(help="Learning rate of the transformer and heads.")]
LrBackbone = Annotated[float | None, typer.Option(help="Learning rate of the ResNet backbone.")]
LrDrop = Annotated[int | None, typer.Option(help="Epochs between tenfold learning-rate drops.")]
Seed = Annotated[int | None, typer.Option(help="Seed of weights init, data order, augmentation.")]
Amp = Annotated[
    str | None,
    typer.Option(help="Mixed precision on CUDA: auto (bf16 if supported), bf16, fp16, off."),
]
Ema = Annotated[bool | None, typer.Option("--ema/--no-ema", help="Keep an EMA of the weights.")]
MaxSteps = Annotated[
    int | None,
    typer.Option(help="Stop after this many optimizer steps of this job, saving a checkpoint."),
]
PrintFreq = Annotated[int | None, typer.Option(help="Iterations between log lines.")]
Device = Annotated[str | None, typer.Option(help="auto (the local GPU if any), cpu or cuda.")]
Workers = Annotated[int | None, typer.Option(help="Data-loading worker processes per GPU.")]
Resume = Annotated[
    str | None,
    typer.Option(help="auto (newest checkpoint in --output-dir), never, or a checkpoint PATH."),
]
Pretrained = Annotated[
    Path | None, typer.Option(help="Start from these weights (official DINO or tbx-train).")
]
AllowStrategyChange = Annotated[
    bool | None,
    typer.Option(
        "--allow-strategy-change/--no-allow-strategy-change",
        help="Resume although batch size, grad-accum or GPU count differ from the checkpoint.",
    ),
]


def _given(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}


def build_run_config(
    preset: str,
    *,
    data_root: Path | None = None,
    train_json: Path | None = None,
    val_json: Path | None = None,
    image_root: Path | None = None,
    num_workers: int | None = None,
    output_dir: Path | None = None,
    pretrained: Path | None = None,
    **train_options: object,
) -> RunConfig:
    """The preset with the given options replaced (None = keep); raises ConfigError."""
    base = run_preset(preset)
    paths = _given(
        data_root=data_root, train_json=train_json, val_json=val_json, image_root=image_root
    )
    data = replace(
        base.data, **{k: str(v) for k, v in paths.items()}, **_given(num_workers=num_workers)
    )
    train_values = _given(**train_options)
    if output_dir is not None:
        train_values["output_dir"] = str(output_dir)
    if pretrained is not None:
        train_values["pretrained"] = str(pretrained)
    config = replace(base, data=data, train=replace(base.train, **train_values))
    config.validate()
    config.data.validate()
    return config
