"""One-to-one assignment of predictions to ground-truth boxes (Hungarian matching), as DINO does it.

The cost of giving query q the target t is

    cost_class * focal_cost(p[q, label_t]) + cost_bbox * L1(box_q, box_t) + cost_giou * -GIoU

where p = sigmoid(logits) and the focal cost is the positive focal term minus the negative one,
alpha * (1-p)^gamma * -log(p) - (1-alpha) * p^gamma * -log(1-p), as in the official DINO matcher.
Each image is solved separately with scipy's `linear_sum_assignment`.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from tbx_train.model.box_ops import box_cxcywh_to_xyxy, generalized_box_iou

# Keeps log() finite for probabilities that are exactly 0 or 1 (the official matcher's 1e-8).
_LOG_EPS = 1e-8
_NON_FINITE_COST = 1e8


class HungarianMatcher(nn.Module):
    """Match predictions to targets per image by minimising the weighted DINO cost.

    Stateless; runs under `torch.no_grad()` (matching is not differentiated).
    """

    def __init__(
        self,
        cost_class: float,
        cost_bbox: float,
        cost_giou: float,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
    ) -> None:
        super().__init__()
        if cost_class == 0 and cost_bbox == 0 and cost_giou == 0:
            raise ValueError("HungarianMatcher: all costs are 0; set at least one cost weight > 0")
        self.cost_class = cost_class
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma

    def cost_matrix(
        self, logits: Tensor, boxes_cxcywh: Tensor, target: dict[str, Tensor]
    ) -> Tensor:
        """Cost of one image: logits [Q, C], boxes [Q, 4] cxcywh, target labels [n] -> [Q, n]."""
        labels = target["labels"]
        prob = logits.float().sigmoid()[:, labels]  # [Q, n]
        alpha, gamma = self.focal_alpha, self.focal_gamma
        neg_cost = (1 - alpha) * prob.pow(gamma) * -(1 - prob + _LOG_EPS).log()
        pos_cost = alpha * (1 - prob).pow(gamma) * -(prob + _LOG_EPS).log()
        target_boxes = target["boxes"].float()
        cost_bbox = torch.cdist(boxes_cxcywh.float(), target_boxes, p=1)
        cost_giou = -generalized_box_iou(
            box_cxcywh_to_xyxy(boxes_cxcywh.float()), box_cxcywh_to_xyxy(target_boxes)
        )
        return (
            self.cost_class * (pos_cost - neg_cost)
            + self.cost_bbox * cost_bbox
            + self.cost_giou * cost_giou
        )

    @torch.no_grad()
    def forward(
        self, outputs: dict[str, Tensor], targets: list[dict[str, Tensor]]
    ) -> list[tuple[Tensor, Tensor]]:
        """Assign queries to targets.

        outputs: `pred_logits` [B, Q, C] (logits, sigmoid per class), `pred_boxes` [B, Q, 4]
        normalised cxcywh. targets: B dicts with `labels` int64 [n_b] (raw class ids < C) and
        `boxes` [n_b, 4] normalised cxcywh; n_b may be 0.
        Returns B pairs (pred_idx, tgt_idx) of int64 CPU tensors of length min(Q, n_b); pred_idx is
        sorted ascending and tgt_idx[k] is the target matched to query pred_idx[k].
        """
        pred_logits, pred_boxes = outputs["pred_logits"], outputs["pred_boxes"]
        if len(targets) != pred_logits.shape[0]:
            raise ValueError(
                f"HungarianMatcher: {len(targets)} targets for a batch of {pred_logits.shape[0]}"
            )
        indices = []
        for logits, boxes, target in zip(pred_logits, pred_boxes, targets, strict=True):
            if target["labels"].numel() == 0:
                empty = torch.empty(0, dtype=torch.int64)
                indices.append((empty, empty.clone()))
                continue
            cost = self.cost_matrix(logits, boxes, target).cpu()
            # NaN/inf predictions would make scipy raise deep inside matching; a finite stand-in
            # lets the step finish with a non-finite loss, which the engine's guard reports.
            big = _NON_FINITE_COST
            cost = torch.nan_to_num(cost, nan=big, posinf=big, neginf=-big)
            pred_idx, tgt_idx = linear_sum_assignment(cost.numpy())
            indices.append(
                (
                    torch.as_tensor(pred_idx, dtype=torch.int64),
                    torch.as_tensor(tgt_idx, dtype=torch.int64),
                )
            )
        return indices
