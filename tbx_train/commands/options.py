"""The options of a training run, declared once for `tbx-train run` and `tbx-train plan`.

`plan` must accept exactly what `run` accepts (so a job script can ask "what would this do?"
with the same arguments), so both commands are built by `run_options_command(handler)`: the
handler receives a `RunOptions` and returns an exit code. Unset options (None) keep the value of
the run preset; `build_run_config` applies the rest and validates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from tbx_train.config import ConfigError, RunConfig, model_preset, run_preset

_DATA = "Data"
_RUN = "Run and lifecycle"
_OPT = "Optimisation"


@dataclass(frozen=True)
class RunOptions:
    """The command line as typed values; None means "the preset's value"."""

    preset: str
    model_preset: str | None
    data_root: Path | None
    train_json: Path | None
    val_json: Path | None
    image_root: Path | None
    num_workers: int | None
    output_dir: Path | None
    epochs: int | None
    batch_size: int | None
    grad_accum: int | None
    world_size: int | None
    lr: float | None
    lr_drop: int | None
    seed: int | None
    amp: str | None
    device: str | None
    max_steps: int | None
    checkpoint_interval: int | None
    resume: str | None
    pretrained: Path | None
    allow_strategy_change: bool


def _opt(help_text: str | None, panel: str) -> Any:
    return typer.Option(help=help_text, rich_help_panel=panel)


def collect_run_options(
    preset: Annotated[
        str, _opt("Run preset: tiny, tbx11k, tbx11k-1gpu, tbx11k-2gpu.", _RUN)
    ] = "tbx11k",
    model_preset: Annotated[
        str | None, _opt("Model preset replacing the run preset's model.", _RUN)
    ] = None,
    data_root: Annotated[Path | None, _opt("TBX11K root: imgs/, annotations/json/.", _DATA)] = None,
    train_json: Annotated[Path | None, _opt("Training COCO json.", _DATA)] = None,
    val_json: Annotated[Path | None, _opt("Validation COCO json.", _DATA)] = None,
    image_root: Annotated[Path | None, _opt("Folder json file_names are under.", _DATA)] = None,
    num_workers: Annotated[int | None, _opt("DataLoader workers per process.", _DATA)] = None,
    output_dir: Annotated[Path | None, _opt("Run directory: checkpoints, log.txt.", _RUN)] = None,
    epochs: Annotated[int | None, _opt("Total epochs (not epochs to add).", _OPT)] = None,
    batch_size: Annotated[int | None, _opt("Images per GPU (per process).", _OPT)] = None,
    grad_accum: Annotated[int | None, _opt("Micro-batches per optimizer step.", _OPT)] = None,
    world_size: Annotated[
        int | None,
        _opt(
            "Processes the run uses (plan: default WORLD_SIZE / SLURM_NTASKS, else 1; run: "
            "checked against the launcher).",
            _OPT,
        ),
    ] = None,
    lr: Annotated[float | None, _opt("Base learning rate.", _OPT)] = None,
    lr_drop: Annotated[int | None, _opt("StepLR step size in epochs.", _OPT)] = None,
    seed: Annotated[int | None, _opt("Seed of sampling and augmentation.", _OPT)] = None,
    amp: Annotated[str | None, _opt("auto | bf16 | fp16 | off.", _OPT)] = None,
    device: Annotated[str | None, _opt("auto | cpu | cuda.", _RUN)] = None,
    max_steps: Annotated[int | None, _opt("Stop after N optimizer steps.", _RUN)] = None,
    checkpoint_interval: Annotated[
        int | None, _opt("Keep checkpointNNNN.pth every N epochs.", _RUN)
    ] = None,
    resume: Annotated[
        str | None, _opt("PATH | auto | never. auto: newest checkpoint in --output-dir only.", _RUN)
    ] = None,
    pretrained: Annotated[
        Path | None, _opt("Start from these weights (official DINO or tbx-train).", _RUN)
    ] = None,
    allow_strategy_change: Annotated[
        bool,
        typer.Option(
            "--allow-strategy-change",
            help="Resume although batch size / grad-accum / world size differ.",
            rich_help_panel=_RUN,
        ),
    ] = False,
) -> RunOptions:
    """Typer reads this signature; both run and plan share it through run_options_command."""
    values = locals()
    return RunOptions(**{f.name: values[f.name] for f in fields(RunOptions)})


def run_options_command(handler: Callable[[RunOptions], int]) -> Callable[..., None]:
    """A typer command with the run options whose body is `handler`; its return is the exit code."""

    @functools.wraps(collect_run_options)
    def command(**kwargs: Any) -> None:
        raise typer.Exit(handler(collect_run_options(**kwargs)))

    command.__doc__ = handler.__doc__
    return command


_DATA_FIELDS = ("data_root", "train_json", "val_json", "image_root", "num_workers")
_TRAIN_FIELDS = (
    "output_dir", "epochs", "batch_size", "grad_accum", "world_size", "lr", "lr_drop", "seed",
    "amp", "device", "max_steps", "checkpoint_interval", "resume", "pretrained",
)  # fmt: skip


def build_run_config(options: RunOptions) -> RunConfig:
    """The preset with every given option applied; raises ConfigError on bad values."""
    base = run_preset(options.preset)
    model = model_preset(options.model_preset) if options.model_preset else base.model
    data = replace(base.data, **_given(options, _DATA_FIELDS))
    train = replace(base.train, **_given(options, _TRAIN_FIELDS))
    if options.allow_strategy_change:
        train = replace(train, allow_strategy_change=True)
    config = RunConfig(model=model, data=data, train=train, preset=options.preset)
    config.validate()
    if train.resume not in ("auto", "never") and not train.resume:
        raise ConfigError("--resume must be PATH, auto or never")
    return config


def _given(options: RunOptions, names: tuple[str, ...]) -> dict[str, Any]:
    # Paths become strings: the config holds plain types so checkpoints can record it.
    given = {name: getattr(options, name) for name in names if getattr(options, name) is not None}
    return {k: str(v) if isinstance(v, Path) else v for k, v in given.items()}
