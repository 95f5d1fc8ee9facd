"""DINO's deformable transformer: encoder, mixed query selection ("standard" two-stage), decoder.

Mixed query selection: every encoder token gets a class score and a box from the `enc_out_*`
heads; the top `num_queries` tokens by best class logit give the decoder's initial reference
boxes (detached), while its content queries are the learned `tgt_embed`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tbx_train.model.decoder import Decoder, DecoderLayer
from tbx_train.model.deformable_attention import MSDeformAttn, SpatialShapes
from tbx_train.model.encoder import Encoder, EncoderLayer
from tbx_train.model.heads import DetectionHeads


@dataclass
class TransformerOutput:
    """hs / references: per decoder layer [B, T, C] / [B, T, 4] (see Decoder.forward);
    interm_logits [B, Q, K] and interm_boxes [B, Q, 4] (sigmoid cxcywh, with gradient): the
    selected encoder proposals."""

    hs: list[Tensor]
    references: list[Tensor]
    interm_logits: Tensor
    interm_boxes: Tensor


def valid_ratio(mask: Tensor) -> Tensor:
    """Unpadded fraction (w, h) of a padded map: mask bool [B, H, W] -> [B, 2]."""
    _, h, w = mask.shape
    valid_h = (~mask[:, :, 0]).sum(1)
    valid_w = (~mask[:, 0, :]).sum(1)
    return torch.stack([valid_w.float() / w, valid_h.float() / h], -1)


def encoder_proposals(
    memory: Tensor, padding_mask: Tensor, spatial_shapes: SpatialShapes
) -> tuple[Tensor, Tensor]:
    """One box per token: its pixel centre, size 0.05 * 2**level, in logit space.

    memory [B, S, C], padding_mask [B, S] -> (memory with padded/border tokens zeroed,
    proposals [B, S, 4] with +inf for padded tokens and boxes not inside (0.01, 0.99)).
    """
    batch = memory.shape[0]
    proposals, start = [], 0
    for level, (h, w) in enumerate(spatial_shapes):
        mask = padding_mask[:, start : start + h * w].view(batch, h, w)
        start += h * w
        valid = valid_ratio(mask) * torch.tensor([w, h], device=memory.device)  # [B, 2]
        grid_y, grid_x = torch.meshgrid(
            torch.arange(h, dtype=torch.float32, device=memory.device),
            torch.arange(w, dtype=torch.float32, device=memory.device),
            indexing="ij",
        )
        centres = (torch.stack([grid_x, grid_y], -1)[None] + 0.5) / valid[:, None, None]
        sizes = torch.full_like(centres, 0.05 * 2.0**level)
        proposals.append(torch.cat((centres, sizes), -1).view(batch, -1, 4))
    boxes = torch.cat(proposals, 1)
    inside = ((boxes > 0.01) & (boxes < 0.99)).all(-1, keepdim=True)
    unused = padding_mask[..., None] | ~inside
    boxes = torch.log(boxes / (1 - boxes)).masked_fill(unused, math.inf)
    return memory.masked_fill(unused, 0.0), boxes


class DeformableTransformer(nn.Module):
    """Encoder + query selection + decoder; names and registration order match the checkpoint."""

    def __init__(
        self,
        *,
        d_model: int,
        nheads: int,
        dim_feedforward: int,
        enc_layers: int,
        dec_layers: int,
        num_queries: int,
        num_feature_levels: int,
        enc_n_points: int,
        dec_n_points: int,
        dropout: float,
        heads: DetectionHeads,
    ) -> None:
        super().__init__()
        self.num_queries = num_queries
        common = (d_model, dim_feedforward, dropout, num_feature_levels, nheads)
        self.level_embed = nn.Parameter(torch.empty(num_feature_levels, d_model))
        self.encoder = Encoder([EncoderLayer(*common, enc_n_points) for _ in range(enc_layers)])
        decoder_layers = [DecoderLayer(*common, dec_n_points) for _ in range(dec_layers)]
        self.decoder = Decoder(decoder_layers, d_model)
        self.tgt_embed = nn.Embedding(num_queries, d_model)
        self.enc_output = nn.Linear(d_model, d_model)
        self.enc_output_norm = nn.LayerNorm(d_model)
        self._reset_parameters()
        # The heads keep their own initialisation (focal prior, zero last box layer), so they are
        # attached after the reset, where the official model attaches them.
        self.decoder.attach_heads(heads.dec_box, heads.dec_class)
        self.enc_out_bbox_embed = heads.enc_box
        self.enc_out_class_embed = heads.enc_class

    def _reset_parameters(self) -> None:
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
        for module in self.modules():
            if isinstance(module, MSDeformAttn):
                module.reset_parameters()
        nn.init.normal_(self.level_embed)

    def _flatten(
        self, srcs: list[Tensor], masks: list[Tensor], pos_embeds: list[Tensor]
    ) -> tuple[Tensor, Tensor, Tensor, SpatialShapes]:
        """Per-level maps [B, C, H, W] -> tokens [B, S, C], mask [B, S], pos + level embed."""
        shapes = [(src.shape[-2], src.shape[-1]) for src in srcs]
        tokens = torch.cat([src.flatten(2).transpose(1, 2) for src in srcs], 1)
        mask = torch.cat([m.flatten(1) for m in masks], 1)
        pos = torch.cat(
            [p.flatten(2).transpose(1, 2) + self.level_embed[i] for i, p in enumerate(pos_embeds)],
            1,
        )
        return tokens, mask, pos, shapes

    def _select_queries(
        self, memory: Tensor, padding_mask: Tensor, shapes: SpatialShapes
    ) -> tuple[Tensor, Tensor]:
        """-> (top-k reference boxes in logit space [B, Q, 4], their class logits [B, Q, K])."""
        if memory.shape[1] < self.num_queries:
            raise ValueError(
                f"the image gives {memory.shape[1]} encoder tokens, fewer than num_queries="
                f"{self.num_queries}; use larger images or fewer queries"
            )
        output_memory, proposals = encoder_proposals(memory, padding_mask, shapes)
        output_memory = self.enc_output_norm(self.enc_output(output_memory))
        logits = self.enc_out_class_embed(output_memory)  # [B, S, K]
        topk = logits.max(-1).values.topk(self.num_queries, dim=1).indices  # [B, Q]
        selected = output_memory.gather(1, topk[..., None].expand(-1, -1, output_memory.shape[-1]))
        selected_logits = logits.gather(1, topk[..., None].expand(-1, -1, logits.shape[-1]))
        # The box head is per token, so running it on the selected tokens only is the same.
        boxes_unsig = self.enc_out_bbox_embed(selected) + proposals.gather(
            1, topk[..., None].expand(-1, -1, 4)
        )
        return boxes_unsig, selected_logits

    def forward(
        self,
        srcs: list[Tensor],
        masks: list[Tensor],
        pos_embeds: list[Tensor],
        dn_queries: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> TransformerOutput:
        """srcs/pos [B, C, H_l, W_l] and masks [B, H_l, W_l] per level; dn_queries: optional
        (content [B, P, C], boxes in logit space [B, P, 4], attn_mask [P+Q, P+Q]) put before the
        Q matching queries."""
        tokens, mask, pos, shapes = self._flatten(srcs, masks, pos_embeds)
        valid_ratios = torch.stack([valid_ratio(m) for m in masks], 1)  # [B, L, 2]
        memory = self.encoder(tokens, pos, shapes, valid_ratios, mask)
        boxes_unsig, interm_logits = self._select_queries(memory, mask, shapes)
        tgt = self.tgt_embed.weight[None].expand(memory.shape[0], -1, -1)
        reference = boxes_unsig.detach()
        attn_mask = None
        if dn_queries is not None:
            dn_content, dn_boxes, attn_mask = dn_queries
            tgt = torch.cat([dn_content, tgt], 1)
            reference = torch.cat([dn_boxes, reference], 1)
        hs, references = self.decoder(tgt, reference, memory, mask, shapes, valid_ratios, attn_mask)
        return TransformerOutput(hs, references, interm_logits, boxes_unsig.sigmoid())
