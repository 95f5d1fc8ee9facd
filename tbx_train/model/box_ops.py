"""Box conversions and overlap measures used by the matcher, the criterion and post-processing.

Formats, named in every argument:
- `cxcywh`: (centre x, centre y, width, height), as the model predicts and the targets hold
  (normalised to [0, 1] by the unpadded image size, DETR convention).
- `xyxy`: (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0, in any unit (normalised or pixels).

All functions work on the last dimension and keep dtype and device; none synchronises the device.
"""

from __future__ import annotations

import torch
from torch import Tensor


def box_cxcywh_to_xyxy(boxes_cxcywh: Tensor) -> Tensor:
    """Convert [..., 4] (cx, cy, w, h) to [..., 4] (x0, y0, x1, y1)."""
    cx, cy, w, h = boxes_cxcywh.unbind(-1)
    half_w, half_h = 0.5 * w, 0.5 * h
    return torch.stack((cx - half_w, cy - half_h, cx + half_w, cy + half_h), dim=-1)


def box_xyxy_to_cxcywh(boxes_xyxy: Tensor) -> Tensor:
    """Convert [..., 4] (x0, y0, x1, y1) to [..., 4] (cx, cy, w, h)."""
    x0, y0, x1, y1 = boxes_xyxy.unbind(-1)
    return torch.stack(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), dim=-1)


def box_area(boxes_xyxy: Tensor) -> Tensor:
    """Area of [..., 4] xyxy boxes -> [...]."""
    return (boxes_xyxy[..., 2] - boxes_xyxy[..., 0]) * (boxes_xyxy[..., 3] - boxes_xyxy[..., 1])


def _safe_divide(numerator: Tensor, denominator: Tensor) -> Tensor:
    # A zero-area box against another zero-area box has union 0; clamping by the smallest
    # positive float turns that 0/0 into 0 instead of NaN and changes no other value.
    return numerator / denominator.clamp(min=torch.finfo(denominator.dtype).tiny)


def box_iou(boxes1_xyxy: Tensor, boxes2_xyxy: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise IoU of [N, 4] and [M, 4] xyxy boxes -> (iou [N, M], union [N, M])."""
    area1 = box_area(boxes1_xyxy)
    area2 = box_area(boxes2_xyxy)
    top_left = torch.max(boxes1_xyxy[:, None, :2], boxes2_xyxy[None, :, :2])  # [N, M, 2]
    bottom_right = torch.min(boxes1_xyxy[:, None, 2:], boxes2_xyxy[None, :, 2:])  # [N, M, 2]
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return _safe_divide(inter, union), union


def generalized_box_iou(boxes1_xyxy: Tensor, boxes2_xyxy: Tensor) -> Tensor:
    """Pairwise generalized IoU (Rezatofighi et al. 2019) of [N, 4] and [M, 4] xyxy boxes -> [N, M].

    GIoU = IoU - (enclosing area - union) / enclosing area, in [-1, 1]. Boxes must be well formed
    (x1 >= x0, y1 >= y0); this is not checked here because checking would synchronise the device.
    """
    iou, union = box_iou(boxes1_xyxy, boxes2_xyxy)
    top_left = torch.min(boxes1_xyxy[:, None, :2], boxes2_xyxy[None, :, :2])
    bottom_right = torch.max(boxes1_xyxy[:, None, 2:], boxes2_xyxy[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)  # [N, M, 2]
    enclosing = wh[..., 0] * wh[..., 1]
    return iou - _safe_divide(enclosing - union, enclosing)


def elementwise_generalized_box_iou(boxes1_xyxy: Tensor, boxes2_xyxy: Tensor) -> Tensor:
    """Generalized IoU of matched pairs: [N, 4] and [N, 4] xyxy boxes -> [N].

    Equals the diagonal of `generalized_box_iou` without building the N x N matrix.
    """
    area1 = box_area(boxes1_xyxy)
    area2 = box_area(boxes2_xyxy)
    inter_wh = (
        torch.min(boxes1_xyxy[:, 2:], boxes2_xyxy[:, 2:])
        - torch.max(boxes1_xyxy[:, :2], boxes2_xyxy[:, :2])
    ).clamp(min=0)
    inter = inter_wh[:, 0] * inter_wh[:, 1]
    union = area1 + area2 - inter
    hull_wh = (
        torch.max(boxes1_xyxy[:, 2:], boxes2_xyxy[:, 2:])
        - torch.min(boxes1_xyxy[:, :2], boxes2_xyxy[:, :2])
    ).clamp(min=0)
    enclosing = hull_wh[:, 0] * hull_wh[:, 1]
    return _safe_divide(inter, union) - _safe_divide(enclosing - union, enclosing)


def inverse_sigmoid(x: Tensor, eps: float = 1e-3) -> Tensor:
    """Logit of probabilities `x`, clamped to [0, 1] then away from 0 and 1 by `eps`.

    eps = 1e-3 as the official DINO (reference boxes are refined in this logit space).
    """
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))
