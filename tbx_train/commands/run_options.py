"""The options `tbx-train run` (and `plan`) share, and the RunConfig they make.

Every option defaults to None = "as the preset (and --config file) says"; `build_run_config`
applies the ones given as overrides, then `--set key=value` (tbx_train.config_files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tbx_train.config import RunConfig
from tbx_train.config_files import DEFAULT_PRESET, preset_names, resolve_config

Preset = Annotated[
    str | None,
    typer.Option(
        help=f"Run preset: {', '.join(preset_names())} (default: the --config file's `base`, "
        f"else {DEFAULT_PRESET})."
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file (sections model/data/train) over the preset."),
]
SetValues = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override any field, KEY=VALUE (train.lr=2e-4, model.num_queries=300); repeatable. "
        "`tbx-train config show` lists the keys.",
    ),
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
LrDrop = Annotated[
    int | None, typer.Option(help="StepLR: epochs between tenfold learning-rate drops.")
]
LrDropEpochs = Annotated[
    str | None,
    typer.Option(help="Multi-step schedule: the epochs of the tenfold drops, e.g. 30,40."),
]
BackboneWeights = Annotated[
    Path | None,
    typer.Option(help="ImageNet ResNet state dict (torchvision layout) for a fresh run."),
]
Seed = Annotated[int | None, typer.Option(help="Seed of weights init, data order, augmentation.")]
Amp = Annotated[
    str | None,
    typer.Option(
        help="Training autocast on CUDA: off (fp32, default), auto (bf16 if supported), bf16, "
        "fp16. Evaluation always runs in fp32."
    ),
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


# Option name -> config key, where the two differ (the rest are `train.<name>`).
OPTION_KEYS = {
    "data_root": "data.data_root",
    "train_json": "data.train_json",
    "val_json": "data.val_json",
    "image_root": "data.image_root",
    "num_workers": "data.num_workers",
    "backbone_weights": "model.backbone_weights",
}


def build_run_config(
    preset: str | None,
    *,
    config: Path | None = None,
    set_values: list[str] | None = None,
    **options: object,
) -> RunConfig:
    """The preset, the --config file, the options given (None = keep) and the --set overrides,
    resolved and validated; raises ConfigError."""
    overrides = {
        OPTION_KEYS.get(name, f"train.{name}"): str(value) if isinstance(value, Path) else value
        for name, value in options.items()
        if value is not None
    }
    resolved = resolve_config(preset, config, overrides, set_values or ())
    resolved.data.validate()
    return resolved
