"""AdamW with DINO's parameter groups, and the StepLR schedule.

Groups (names are the official state-dict keys, matched by substring):
- the backbone (`backbone.0.`): `lr_backbone`;
- the deformable attention's `reference_points` / `sampling_offsets`: `lr * lr_linear_proj_mult`
  (DINO's config names these `lr_linear_proj_names` with multiplier 0.1: they move the sampling
  points, and a full learning rate lets early noisy gradients fling them off the feature maps);
- everything else: `lr`.
Frozen parameters (stem, layer1, FrozenBatchNorm buffers) are left out.
"""

from __future__ import annotations

import torch
from torch import nn

from tbx_train.allocator import adamw_options
from tbx_train.config import TrainConfig

BACKBONE_KEY = "backbone.0."
LINEAR_PROJ_KEYS = ("reference_points", "sampling_offsets")


def group_of(name: str) -> str:
    """Which learning-rate group a parameter name belongs to: backbone, linear_proj or main."""
    if BACKBONE_KEY in name:
        return "backbone"
    if any(key in name for key in LINEAR_PROJ_KEYS):
        return "linear_proj"
    return "main"


def build_param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, object]]:
    """AdamW parameter groups with their learning rates (empty groups are dropped)."""
    lrs = {
        "main": config.lr,
        "backbone": config.lr_backbone,
        "linear_proj": config.lr * config.lr_linear_proj_mult,
    }
    params: dict[str, list[nn.Parameter]] = {name: [] for name in lrs}
    for name, param in model.named_parameters():
        if param.requires_grad:
            params[group_of(name)].append(param)
    return [{"params": params[name], "lr": lrs[name], "name": name} for name in lrs if params[name]]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over `build_param_groups` with the configured weight decay."""
    return torch.optim.AdamW(
        build_param_groups(model, config),
        lr=config.lr,
        weight_decay=config.weight_decay,
        **adamw_options(model.parameters()),  # fused where supported: see tbx_train/allocator.py
    )


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.StepLR:
    """StepLR stepped once per epoch: every `lr_drop` epochs the rates fall tenfold."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_drop, gamma=0.1)
