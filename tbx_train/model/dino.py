"""The DINO detector: backbone -> input projections -> deformable transformer -> shared heads.

The model never computes its loss (see build.py for the criterion). Output contract:
- `pred_logits` [B, Q, K] (sigmoid/focal logits), `pred_boxes` [B, Q, 4] normalised cxcywh, from
  the last decoder layer; `aux_outputs`: the same for each earlier layer (dec_layers - 1 dicts);
- `interm_outputs`: {pred_logits, pred_boxes} of the Q encoder proposals chosen as queries;
- `dn_meta`: None (eval, no targets, or no box in the batch) or {"pad_size", "num_dn_group",
  "output_known_lbs_bboxes": {pred_logits, pred_boxes, aux_outputs}} for the denoising queries.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tbx_train.config import ModelConfig
from tbx_train.model.backbone import BackboneWithPosition, build_backbone, resize_mask
from tbx_train.model.box_ops import inverse_sigmoid
from tbx_train.model.denoising import DenoisingQueries, prepare_denoising
from tbx_train.model.heads import build_detection_heads
from tbx_train.model.transformer import DeformableTransformer

Targets = list[dict[str, Tensor]]


def build_input_proj(in_channels: list[int], hidden_dim: int, num_levels: int) -> nn.ModuleList:
    """1x1 conv + GroupNorm per backbone map; extra levels by stride-2 3x3 convs on the last."""
    projections = []
    for level in range(num_levels):
        if level < len(in_channels):
            conv = nn.Conv2d(in_channels[level], hidden_dim, kernel_size=1)
        else:
            source = in_channels[-1] if level == len(in_channels) else hidden_dim
            conv = nn.Conv2d(source, hidden_dim, kernel_size=3, stride=2, padding=1)
        nn.init.xavier_uniform_(conv.weight, gain=1)
        nn.init.zeros_(conv.bias)
        projections.append(nn.Sequential(conv, nn.GroupNorm(32, hidden_dim)))
    return nn.ModuleList(projections)


class DINO(nn.Module):
    """forward(images [B, 3, H, W], masks bool [B, H, W] (True = padding), targets=None) -> dict.

    targets (list of dicts with `labels` [n] and `boxes` [n, 4] cxcywh) feed the denoising
    queries in training mode; they are ignored in eval mode.
    """

    def __init__(
        self,
        backbone: BackboneWithPosition,
        transformer: DeformableTransformer,
        config: ModelConfig,
    ) -> None:
        super().__init__()
        self.config = config
        # Registration order (transformer, label_enc, input_proj, backbone, heads) is the
        # official checkpoint's key order.
        self.transformer = transformer
        self.label_enc = nn.Embedding(config.dn_labelbook_size + 1, config.hidden_dim)
        self.input_proj = build_input_proj(
            backbone.num_channels, config.hidden_dim, config.num_feature_levels
        )
        self.backbone = backbone
        # The decoder's shared heads again, under the names the checkpoint also uses.
        self.bbox_embed = transformer.decoder.bbox_embed
        self.class_embed = transformer.decoder.class_embed

    def _multi_scale_features(
        self, images: Tensor, masks: Tensor
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """-> per level (map [B, C, H_l, W_l], mask [B, H_l, W_l], position [B, C, H_l, W_l])."""
        features, level_masks, positions = self.backbone(images, masks)
        # input_proj has more entries than the backbone has maps: the extra levels follow.
        srcs = [proj(f) for proj, f in zip(self.input_proj, features, strict=False)]
        for level in range(len(features), self.config.num_feature_levels):
            source = features[-1] if level == len(features) else srcs[-1]
            srcs.append(self.input_proj[level](source))
            level_masks.append(resize_mask(masks, srcs[-1].shape[-2:]))
            positions.append(self.backbone[1](level_masks[-1]).to(srcs[-1].dtype))
        return srcs, level_masks, positions

    def _denoising(self, targets: Targets | None) -> DenoisingQueries | None:
        if not self.training or targets is None:
            return None
        config = self.config
        return prepare_denoising(
            targets,
            dn_number=config.dn_number,
            label_noise_ratio=config.dn_label_noise_ratio,
            box_noise_scale=config.dn_box_noise_scale,
            num_classes=config.num_classes,
            num_queries=config.num_queries,
            label_enc=self.label_enc,
        )

    def forward(self, images: Tensor, masks: Tensor, targets: Targets | None = None) -> dict:
        srcs, level_masks, positions = self._multi_scale_features(images, masks)
        dn = self._denoising(targets)
        dn_queries = None if dn is None else (dn.content, dn.boxes_unsig, dn.attn_mask)
        out = self.transformer(srcs, level_masks, positions, dn_queries)
        hs = torch.stack(out.hs)  # [L, B, T, C]
        references = torch.stack(out.references)  # [L, B, T, 4]
        # One head call for all layers: the heads are shared (the same module at every index).
        boxes = (self.bbox_embed[0](hs) + inverse_sigmoid(references)).sigmoid()
        # The zero term keeps label_enc in the graph when no denoising runs, so DDP sees every
        # parameter receive a gradient (the official code does the same).
        logits = self.class_embed[0](hs) + self.label_enc.weight[0, 0] * 0.0
        outputs: dict = {"dn_meta": None}
        if dn is not None:
            pad = dn.pad_size
            outputs["dn_meta"] = {
                "pad_size": pad,
                "num_dn_group": dn.num_groups,
                "output_known_lbs_bboxes": pack_layers(logits[:, :, :pad], boxes[:, :, :pad]),
            }
            logits, boxes = logits[:, :, pad:], boxes[:, :, pad:]
        outputs.update(pack_layers(logits, boxes))
        outputs["interm_outputs"] = {
            "pred_logits": out.interm_logits,
            "pred_boxes": out.interm_boxes,
        }
        return outputs


def pack_layers(logits: Tensor, boxes: Tensor) -> dict:
    """[L, B, T, K] logits and [L, B, T, 4] boxes -> last layer + `aux_outputs` for the others."""
    pairs = zip(logits[:-1], boxes[:-1], strict=True)
    aux = [
        {"pred_logits": layer_logits, "pred_boxes": layer_boxes}
        for layer_logits, layer_boxes in pairs
    ]
    return {"pred_logits": logits[-1], "pred_boxes": boxes[-1], "aux_outputs": aux}


def build_model(config: ModelConfig) -> DINO:
    """The DINO model for `config` (validated); weights random except a local backbone file."""
    config.validate()
    heads = build_detection_heads(config.hidden_dim, config.num_classes, config.dec_layers)
    backbone = build_backbone(
        config.backbone,
        config.hidden_dim,
        config.pe_temperature,
        config.backbone_weights,
        freeze_stem=config.freeze_stem,
    )
    transformer = DeformableTransformer(
        d_model=config.hidden_dim,
        nheads=config.nheads,
        dim_feedforward=config.dim_feedforward,
        enc_layers=config.enc_layers,
        dec_layers=config.dec_layers,
        num_queries=config.num_queries,
        num_feature_levels=config.num_feature_levels,
        enc_n_points=config.enc_n_points,
        dec_n_points=config.dec_n_points,
        dropout=config.dropout,
        heads=heads,
    )
    return DINO(backbone, transformer, config)
