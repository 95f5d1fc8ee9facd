"""Turn DINO outputs into detections for COCO evaluation: top-k over queries x classes.

With sigmoid (focal) classification every (query, class) pair is a candidate detection, so the
k best pairs are taken jointly, as the official DINO does; one query may yield several labels.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tbx_train.model.box_ops import box_cxcywh_to_xyxy


class PostProcess(nn.Module):
    """Select the `num_select` highest-scoring (query, class) pairs of each image."""

    def __init__(self, num_select: int = 300) -> None:
        super().__init__()
        if num_select < 1:
            raise ValueError(f"num_select={num_select} must be >= 1")
        self.num_select = num_select

    @torch.no_grad()
    def forward(self, outputs: dict[str, Tensor], target_sizes: Tensor) -> list[dict[str, Tensor]]:
        """Detections per image.

        outputs: `pred_logits` [B, Q, C] logits, `pred_boxes` [B, Q, 4] normalised cxcywh.
        target_sizes: [B, 2] (height, width) of the original images, in pixels.
        Returns B dicts: `scores` [K] sigmoid probabilities in descending order, `labels` [K]
        int64 class ids (raw, as the targets), `boxes` [K, 4] absolute xyxy pixels, where
        K = min(num_select, Q * C) (one cannot select more pairs than exist).
        """
        logits, boxes_cxcywh = outputs["pred_logits"], outputs["pred_boxes"]
        batch, num_queries, num_classes = logits.shape
        if target_sizes.shape != (batch, 2):
            raise ValueError(f"target_sizes must be [{batch}, 2] (h, w), got {target_sizes.shape}")
        k = min(self.num_select, num_queries * num_classes)
        prob = logits.float().sigmoid().reshape(batch, num_queries * num_classes)
        scores, flat_idx = prob.topk(k, dim=1)  # [B, K]
        query_idx = flat_idx // num_classes
        labels = flat_idx % num_classes
        boxes_xyxy = box_cxcywh_to_xyxy(boxes_cxcywh.float())
        boxes_xyxy = boxes_xyxy.gather(1, query_idx.unsqueeze(-1).expand(-1, -1, 4))  # [B, K, 4]
        height, width = target_sizes.to(boxes_xyxy.dtype).unbind(1)
        scale = torch.stack((width, height, width, height), dim=1)  # [B, 4]
        boxes_xyxy_abs = boxes_xyxy * scale[:, None, :]
        return [
            {"scores": s, "labels": lab, "boxes": b}
            for s, lab, b in zip(scores, labels, boxes_xyxy_abs, strict=True)
        ]
