"""AdamW with DINO's parameter groups, and the learning-rate schedule.

Groups (names are the official state-dict keys, matched by substring), as the official
`get_param_dict` makes them:
- `param_dict_type = "default"` (official default, and the user's runs): 2 groups, the backbone
  (`backbone.0`) at `lr_backbone` and everything else, sampling offsets included, at `lr`;
- `"ddetr_in_mmdet"`: a third group for `reference_points` / `sampling_offsets` at
  `lr * lr_linear_proj_mult` (Deformable DETR's choice: a full rate lets early noisy gradients
  fling the sampling points off the feature maps). Opt-in.
Frozen parameters (stem, layer1, FrozenBatchNorm buffers) are left out.
Schedule: StepLR(lr_drop, 0.1), or MultiStepLR(lr_drop_epochs, 0.1) when drop epochs are given.
"""

from __future__ import annotations

import torch
from torch import nn

from tbx_train.allocator import adamw_options
from tbx_train.config import TrainConfig

BACKBONE_KEY = "backbone.0"  # official lr_backbone_names
LINEAR_PROJ_KEYS = ("reference_points", "sampling_offsets")  # official lr_linear_proj_names


def group_of(name: str, param_dict_type: str = "ddetr_in_mmdet") -> str:
    """The learning-rate group of a parameter name: backbone, linear_proj or main."""
    if BACKBONE_KEY in name:
        return "backbone"
    if param_dict_type != "default" and any(key in name for key in LINEAR_PROJ_KEYS):
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
            params[group_of(name, config.param_dict_type)].append(param)
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
) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch: StepLR every `lr_drop` epochs, or MultiStepLR at the listed
    `lr_drop_epochs`; each drop divides every group's rate by ten."""
    if config.lr_drop_epochs:
        milestones = sorted(config.lr_drop_epochs)
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_drop, gamma=0.1)
