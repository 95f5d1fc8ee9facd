"""DINO decoder: self-attention, deformable cross-attention and FFN per layer, with iterative box
refinement and look-forward-twice."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from tbx_train.model.box_ops import inverse_sigmoid
from tbx_train.model.deformable_attention import MSDeformAttn, SpatialShapes
from tbx_train.model.heads import MLP
from tbx_train.model.position_encoding import sine_embed_boxes


class DecoderLayer(nn.Module):
    """Post-norm layer run as self-attention -> cross-attention -> FFN.

    Registration order (cross_attn, norm1, self_attn, norm2, linear1, linear2, norm3) is the
    official checkpoint's, not the order of use.
    """

    def __init__(
        self, d_model: int, d_ffn: int, dropout: float, n_levels: int, n_heads: int, n_points: int
    ) -> None:
        super().__init__()
        self.cross_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points)
        self.norm1 = nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(
        self,
        tgt: Tensor,
        query_pos: Tensor,
        reference_boxes: Tensor,
        memory: Tensor,
        memory_mask: Tensor,
        spatial_shapes: SpatialShapes,
        attn_mask: Tensor | None,
    ) -> Tensor:
        """tgt, query_pos [B, T, C]; reference_boxes [B, T, L, 4]; memory [B, S, C] -> [B, T, C].

        attn_mask bool [T, T], True = may not attend (denoising groups).
        """
        q = tgt + query_pos
        attended = self.self_attn(q, q, tgt, attn_mask=attn_mask, need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout(attended))
        sampled = self.cross_attn(
            tgt + query_pos, reference_boxes, memory, spatial_shapes, memory_mask
        )
        tgt = self.norm1(tgt + self.dropout(sampled))
        hidden = self.dropout(F.relu(self.linear1(tgt)))
        return self.norm3(tgt + self.dropout(self.linear2(hidden)))


class Decoder(nn.Module):
    """Decoder stack; `bbox_embed`/`class_embed` are the model's shared heads, attached later.

    `class_embed` is registered only because the official checkpoint stores it here too.
    """

    bbox_embed: nn.ModuleList
    class_embed: nn.ModuleList

    def __init__(self, layers: list[DecoderLayer], d_model: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(d_model)
        # Query position from the 4-d sine embedding of its reference box.
        self.ref_point_head = MLP(2 * d_model, d_model, d_model, 2)
        self.d_model = d_model

    def attach_heads(self, bbox_embed: nn.ModuleList, class_embed: nn.ModuleList) -> None:
        """Register the per-layer box heads (used for refinement) and class heads (stored only)."""
        self.bbox_embed = bbox_embed
        self.class_embed = class_embed

    def forward(
        self,
        tgt: Tensor,
        reference_unsig: Tensor,
        memory: Tensor,
        memory_mask: Tensor,
        spatial_shapes: SpatialShapes,
        valid_ratios: Tensor,
        attn_mask: Tensor | None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """tgt [B, T, C], reference_unsig [B, T, 4] (logit space) -> (hs, references).

        hs: per layer the normed output [B, T, C]. references: per layer the box it refines,
        sigmoid cxcywh [B, T, 4]: the first is the input (no gradient), later ones keep the
        gradient of the previous layer's refinement (look-forward-twice), although the next layer
        itself is fed the detached box.
        """
        reference = reference_unsig.sigmoid()
        references, hs = [reference], []
        ratios = torch.cat([valid_ratios, valid_ratios], -1)[:, None]  # [B, 1, L, 4]
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            reference_input = reference[:, :, None] * ratios  # [B, T, L, 4]
            query_sine = sine_embed_boxes(reference_input[:, :, 0], self.d_model // 2)
            query_pos = self.ref_point_head(query_sine)
            tgt = layer(
                tgt, query_pos, reference_input, memory, memory_mask, spatial_shapes, attn_mask
            )
            hs.append(self.norm(tgt))
            if index < last:  # the last layer's refined box would never be used
                refined = (self.bbox_embed[index](tgt) + inverse_sigmoid(reference)).sigmoid()
                references.append(refined)
                reference = refined.detach()
        return hs, references
