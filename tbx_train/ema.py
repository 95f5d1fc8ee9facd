"""Exponential moving average of the model weights (DINO's `use_ema`, decay 0.9997)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """Keeps `ema = decay * ema + (1 - decay) * model` for every floating-point tensor.

    Integer buffers are copied. The EMA copy lives on the model's device and never trains.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9997) -> None:
        self.module = copy.deepcopy(model).eval()
        self.decay = decay
        for param in self.module.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend in the current weights of `model` (the unwrapped module, not DDP)."""
        current = model.state_dict()
        for name, ema_value in self.module.state_dict().items():
            value = current[name].detach()
            if ema_value.dtype.is_floating_point:
                ema_value.mul_(self.decay).add_(value.to(ema_value.dtype), alpha=1 - self.decay)
            else:
                ema_value.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights, with the model's keys."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore averaged weights saved by `state_dict`."""
        self.module.load_state_dict(state)
