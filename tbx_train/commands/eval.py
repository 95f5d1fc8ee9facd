"""`tbx-train eval`: COCO AP table and FROC of a checkpoint on a validation split, then the
user's TB protocol: class-agnostic TB-only AP, FROC as the DINO_TBX11K script and corrected.

Example:
    tbx-train eval --checkpoint outputs/run1/checkpoint.pth --data-root /data/TBX11K
Exit codes: 0 done, 2 unreadable checkpoint, bad option or data.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tbx_train.commands import run_options as opt


def command(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint to evaluate (.pth).")],
    data_root: opt.DataRoot = None,
    val_json: opt.ValJson = None,
    image_root: opt.ImageRoot = None,
    preset: Annotated[
        str | None,
        typer.Option(help="Model preset for official DINO checkpoints (tbx-train ones carry it)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per GPU (per process).", min=1)] = 1,
    device: Annotated[str, typer.Option(help="auto (the GPU if any), cpu or cuda.")] = "auto",
    ema: Annotated[bool, typer.Option("--ema/--no-ema", help="Use the EMA weights.")] = False,
) -> None:
    """Evaluate a checkpoint: `Test:` lines, the AP table, FROC, then the TB-only protocol."""
    from tbx_train.checkpoint import CheckpointError
    from tbx_train.checkpoint_eval import evaluate_checkpoint
    from tbx_train.config import ConfigError, DataConfig
    from tbx_train.data import DataError

    data = DataConfig(
        data_root=str(data_root or ""),
        val_json=str(val_json or ""),
        image_root=str(image_root or ""),
    )
    if not (data.data_root or (data.val_json and data.image_root)):
        print("Error: give --data-root, or --val-json and --image-root", file=sys.stderr)
        raise typer.Exit(2)
    try:
        result = evaluate_checkpoint(
            checkpoint, data, preset=preset, batch_size=batch_size, device_name=device, use_ema=ema
        )
    except (ConfigError, DataError, CheckpointError) as error:
        print(f"Error: {error}", file=sys.stderr, flush=True)
        raise typer.Exit(2) from error
    _print_tb_protocol(data.val_json_path(), result.predictions)
    if result.coco_stats:
        print(f"AP {result.coco_stats[0]:.3f}  AP50 {result.coco_stats[1]:.3f}", flush=True)


def _print_tb_protocol(val_json: str, predictions: dict) -> None:
    """The user's DINO_TBX11K numbers (class-agnostic TB-only AP, FROC as their script and
    corrected) after the standard table, from the same predictions."""
    from tbx_train.evaluation import detections_from_results, load_coco_gt
    from tbx_train.evaluation_tb import evaluate_tb_protocol

    image_ids = sorted(predictions)
    detections = detections_from_results(image_ids, [predictions[i] for i in image_ids])
    report = evaluate_tb_protocol(load_coco_gt(val_json), detections)
    print("\n".join(report.render()), flush=True)
