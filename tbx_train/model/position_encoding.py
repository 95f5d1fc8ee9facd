"""Sine position encodings: one for feature maps (from padding masks), one for query boxes.

Both follow the official DINO conventions, which a checkpoint trained there depends on:
- maps: cumulative count of unpadded pixels, normalised to (0, 2*pi] per image, temperature 20,
  channel layout [y-features, x-features], each as interleaved (sin, cos) pairs;
- boxes: each coordinate scaled by 2*pi, temperature 10000, layout [y, x, w, h].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _sine_features(coords: Tensor, num_feats: int, temperature: float) -> Tensor:
    """[...] coordinates (already scaled) -> [..., num_feats] as interleaved (sin, cos) pairs."""
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=coords.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    phases = coords[..., None] / dim_t
    # Even channels take sin, odd take cos, interleaved again: (sin0, cos1, sin2, cos3, ...).
    return torch.stack((phases[..., 0::2].sin(), phases[..., 1::2].cos()), dim=-1).flatten(-2)


class PositionEmbeddingSine(nn.Module):
    """Normalised 2-d sine embedding of a padded batch; no parameters.

    forward(mask: bool [B, H, W], True = padding) -> float32 [B, 2 * num_pos_feats, H, W].
    """

    def __init__(self, num_pos_feats: int, temperature: float = 20.0) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = 2 * math.pi

    def forward(self, mask: Tensor) -> Tensor:
        not_mask = ~mask
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        eps = 1e-6  # keeps an all-padding row finite
        y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
        x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale
        pos_y = _sine_features(y_embed, self.num_pos_feats, self.temperature)
        pos_x = _sine_features(x_embed, self.num_pos_feats, self.temperature)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


def sine_embed_boxes(boxes_cxcywh: Tensor, num_feats: int, temperature: float = 10000.0) -> Tensor:
    """Embed normalised boxes [..., 4] (cx, cy, w, h) -> [..., 4 * num_feats], order (y, x, w, h).

    The decoder feeds this through `ref_point_head` to get each query's positional embedding.
    """
    scaled = boxes_cxcywh * (2 * math.pi)
    feats = _sine_features(scaled, num_feats, temperature)  # [..., 4, num_feats]
    cx, cy, w, h = feats.unbind(-2)
    return torch.cat((cy, cx, w, h), dim=-1)
