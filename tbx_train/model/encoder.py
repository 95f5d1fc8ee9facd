"""Deformable transformer encoder: each token attends to sampled points of every level."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from tbx_train.model.deformable_attention import MSDeformAttn, SpatialShapes


class EncoderLayer(nn.Module):
    """Post-norm layer: deformable self-attention, then a ReLU FFN. Dropout 0 is skipped."""

    def __init__(
        self, d_model: int, d_ffn: int, dropout: float, n_levels: int, n_heads: int, n_points: int
    ) -> None:
        super().__init__()
        # Registration order matches the official checkpoint: self_attn, norm1, linear1, ...
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(
        self,
        src: Tensor,
        pos: Tensor,
        reference_points: Tensor,
        spatial_shapes: SpatialShapes,
        padding_mask: Tensor,
    ) -> Tensor:
        """src, pos [B, S, C]; reference_points [B, S, L, 2]; padding_mask [B, S] -> [B, S, C]."""
        attended = self.self_attn(src + pos, reference_points, src, spatial_shapes, padding_mask)
        src = self.norm1(src + self.dropout(attended))
        hidden = self.dropout(F.relu(self.linear1(src)))
        return self.norm2(src + self.dropout(self.linear2(hidden)))


def encoder_reference_points(spatial_shapes: SpatialShapes, valid_ratios: Tensor) -> Tensor:
    """Pixel centres of every level as normalised (x, y) per level -> [B, S, L, 2].

    valid_ratios [B, L, 2] is the unpadded fraction (w, h) of each level: a centre is normalised by
    the unpadded size of its own level, then mapped into every level's padded frame.
    """
    device, dtype = valid_ratios.device, valid_ratios.dtype
    points = []
    for level, (h, w) in enumerate(spatial_shapes):
        ref_y, ref_x = torch.meshgrid(
            torch.linspace(0.5, h - 0.5, h, dtype=dtype, device=device),
            torch.linspace(0.5, w - 0.5, w, dtype=dtype, device=device),
            indexing="ij",
        )
        ref_y = ref_y.reshape(-1)[None] / (valid_ratios[:, None, level, 1] * h)
        ref_x = ref_x.reshape(-1)[None] / (valid_ratios[:, None, level, 0] * w)
        points.append(torch.stack((ref_x, ref_y), -1))
    return torch.cat(points, 1)[:, :, None] * valid_ratios[:, None]


class Encoder(nn.Module):
    """A stack of EncoderLayer (`layers.i` in the checkpoint)."""

    def __init__(self, layers: list[EncoderLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(
        self,
        src: Tensor,
        pos: Tensor,
        spatial_shapes: SpatialShapes,
        valid_ratios: Tensor,
        padding_mask: Tensor,
    ) -> Tensor:
        """Flattened tokens src, pos [B, S, C] -> memory [B, S, C]."""
        reference_points = encoder_reference_points(spatial_shapes, valid_ratios)
        for layer in self.layers:
            src = layer(src, pos, reference_points, spatial_shapes, padding_mask)
        return src
