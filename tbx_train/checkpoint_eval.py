"""Evaluate a saved checkpoint on a validation split (`tbx-train eval`).

tbx-train checkpoints carry their model config and image sizes. Official DINO checkpoints carry
theirs in `args` (read without running code): the model (num_queries, classes, ...) and the
evaluation size (max of `data_aug_scales`) come from it through tbx_train.official_args. A
`--preset` replaces either with the preset's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

import torch

from tbx_train.checkpoint import checkpoint_kind, load_checkpoint, model_state
from tbx_train.config import DataConfig, ModelConfig, run_preset
from tbx_train.data import CocoDetection, DetectionTransform, collate_fn
from tbx_train.engine import EvalResult, TrainContext, evaluate
from tbx_train.logs import MetricLogger
from tbx_train.model import build_dino
from tbx_train.official_args import official_values
from tbx_train.run_data import coco_scorer, transform_config
from tbx_train.training_state import resolve_device


def _known(cls: type, values: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}


def configs_of(payload: dict, preset: str | None) -> tuple[ModelConfig, DataConfig]:
    """Model and data settings: the preset's when given, else the checkpoint's own."""
    if preset is not None:
        config = run_preset(preset)
        return config.model, config.data
    if checkpoint_kind(payload) == "tbx-train":
        saved = payload["config"]
        return ModelConfig(**_known(ModelConfig, saved["model"])), DataConfig(
            **_known(DataConfig, saved.get("data", {}))
        )
    values = official_values(vars(payload["args"]))
    model = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("model.")}
    data = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("data.")}
    model_config = ModelConfig(**_known(ModelConfig, model))
    model_config.validate()
    return model_config, DataConfig(**_known(DataConfig, data))


def evaluate_checkpoint(
    path: Path,
    data: DataConfig,
    *,
    preset: str | None = None,
    batch_size: int = 1,
    device_name: str = "auto",
    use_ema: bool = False,
    write: Callable[[str], None] = print,
) -> EvalResult:
    """`Test:` lines, the pycocotools table and FROC for the checkpoint at `path`.

    `data` gives the paths (data_root or val_json + image_root); image sizes come from the
    checkpoint when it has them.
    """
    payload = load_checkpoint(path)
    model_config, saved_data = configs_of(payload, preset)
    paths = {k: getattr(data, k) for k in ("data_root", "val_json", "image_root")}
    data = replace(saved_data, **paths)
    device = resolve_device(device_name)
    model, criterion, postprocessor = build_dino(model_config)
    model.load_state_dict(model_state(payload, use_ema=use_ema), strict=True)
    model.to(device)
    criterion.to(device)
    val_set = CocoDetection(
        data.val_json_path(),
        data.image_root_path(),
        DetectionTransform(transform_config(data), train=False),
        split="val",
    )
    for line in val_set.report.render():
        write(line)
    loader = torch.utils.data.DataLoader(
        val_set, batch_size=batch_size, collate_fn=collate_fn, num_workers=data.num_workers
    )
    ctx = TrainContext(model, criterion, optimizer=None, device=device)  # type: ignore[arg-type]
    logger = MetricLogger(10, write, device.type == "cuda", with_lr=False)
    return evaluate(
        ctx,
        postprocessor,
        loader,
        len(loader),
        logger,
        score=coco_scorer(data.val_json_path(), write),
    )
