"""A resume checkpoint's config against this run's: every difference named, and sorted into
what refuses the resume and what only warns.

- refuse: the model's tensor shapes or classes (the weights cannot load), and what changes the
  optimizer's parameter layout (`model.freeze_stem`, `train.param_dict_type`: the saved AdamW
  state would belong to other tensors);
- warn, no effect: learning rates, weight decay and the schedule (the optimizer and scheduler
  continue from their saved state, as in official DINO);
- warn, applies from now on: everything else that shapes training (dropout, loss weights, noise,
  augmentation, EMA, precision, clipping, seed, epochs);
- silent: run-local settings (paths, workers, device, logging, --max-steps, the weights used at
  a fresh start) and the strategy, which `plan_checks.check_strategy` judges.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tbx_train.official_args import official_values
from tbx_train.plan_checks import SHAPE_FIELDS

Severity = Literal["refuse", "no-effect", "applies"]

REFUSE = {f"model.{name}" for name in (*SHAPE_FIELDS, "num_classes", "freeze_stem")} | {
    "train.param_dict_type"
}
NO_EFFECT = {
    f"train.{name}"
    for name in ("lr", "lr_backbone", "lr_linear_proj_mult", "weight_decay", "lr_drop")
} | {"train.lr_drop_epochs"}
SILENT = {
    "data.data_root", "data.train_json", "data.val_json", "data.image_root", "data.num_workers",
    "model.backbone_weights", "train.output_dir", "train.resume", "train.pretrained",
    "train.device", "train.print_freq", "train.max_steps", "train.allow_strategy_change",
    "train.batch_size", "train.grad_accum", "train.world_size", "train.checkpoint_interval",
    "train.eval_interval", "train.val_batch_size",
}  # fmt: skip
_WHY = {
    "refuse": "the saved weights or optimizer state do not fit",
    "no-effect": "no effect: the optimizer and schedule continue from the checkpoint",
    "applies": "applies from now on",
}


@dataclass(frozen=True)
class ConfigDifference:
    """One field whose value differs between the checkpoint and this run."""

    key: str
    saved: Any
    current: Any
    severity: Severity

    def line(self) -> str:
        return f"{self.key} {self.saved!r} -> {self.current!r} ({_WHY[self.severity]})"


def saved_values(payload: Mapping[str, Any]) -> dict[str, Any]:
    """{section.field: value} of a checkpoint's config (tbx-train) or args (official DINO)."""
    args = payload.get("args")
    if isinstance(args, argparse.Namespace):
        return official_values(vars(args))
    config = payload.get("config") or {}
    values = {
        f"{section}.{name}": value
        for section in ("model", "data", "train")
        for name, value in (config.get(section) or {}).items()
    }
    return {**_older_defaults(values), **values}


def _older_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    """What checkpoints of tbx-train before these fields existed trained with: always 3 parameter
    groups (sampling offsets at 0.1 x lr) and a frozen stem."""
    implied = {}
    if "train.lr_linear_proj_mult" in values:
        implied["train.param_dict_type"] = "ddetr_in_mmdet"
    if "model.backbone" in values:
        implied["model.freeze_stem"] = True
    return implied


def config_differences(
    payload: Mapping[str, Any], current: Mapping[str, Any]
) -> list[ConfigDifference]:
    """Every field of `current` (section.field -> value) that the checkpoint records otherwise;
    fields the checkpoint does not record are not compared."""
    saved = saved_values(payload)
    differences = []
    for key, value in current.items():
        if key in SILENT or key not in saved or _same(saved[key], value):
            continue
        severity: Severity = (
            "refuse" if key in REFUSE else "no-effect" if key in NO_EFFECT else "applies"
        )
        differences.append(ConfigDifference(key, saved[key], value, severity))
    return differences


def _same(saved: Any, current: Any) -> bool:
    if isinstance(saved, list | tuple) and isinstance(current, list | tuple):
        return list(saved) == list(current)
    return saved == current
