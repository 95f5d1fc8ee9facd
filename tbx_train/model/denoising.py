"""Contrastive denoising (CDN) queries: noised copies of the ground truth fed to the decoder.

Layout (the official one, relied on by the criterion): `num_groups` groups of 2 * max_gt slots,
max_gt = most boxes of any image in the batch. In group g, slot g * 2 * max_gt + j holds the
positive (lightly noised) copy of GT j of the image, and slot g * 2 * max_gt + max_gt + j its
negative (strongly noised) copy; unused slots are zero. Queries of one group cannot see other
groups, and the matching queries cannot see any denoising query.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tbx_train.model.box_ops import inverse_sigmoid


@dataclass
class DenoisingQueries:
    """content [B, pad_size, C], boxes_unsig [B, pad_size, 4] (logit space), attn_mask bool
    [pad_size + Q, pad_size + Q] (True = may not attend)."""

    content: Tensor
    boxes_unsig: Tensor
    attn_mask: Tensor
    pad_size: int
    num_groups: int


def count_dn_groups(dn_number: int, max_gt: int) -> int:
    """Number of denoising groups, reproducing the official arithmetic and its quirk.

    The official code doubles dn_number and divides by 2 * max_gt only when the doubled value is
    >= 100: dn_number 100 with 2 boxes gives 50 groups, but dn_number 10 gives 20 groups whatever
    the number of boxes.
    """
    doubled = dn_number * 2
    groups = doubled // (2 * max_gt) if doubled >= 100 else doubled
    return max(groups, 1)


def build_dn_attn_mask(pad_size: int, num_groups: int, num_queries: int, device=None) -> Tensor:
    """bool [pad_size + num_queries]^2: matching queries do not see denoising ones, and each
    group sees only itself and the matching queries."""
    size = pad_size + num_queries
    mask = torch.zeros(size, size, dtype=torch.bool, device=device)
    mask[pad_size:, :pad_size] = True
    group = torch.arange(pad_size, device=device) // (pad_size // num_groups)
    mask[:pad_size, :pad_size] = group[:, None] != group[None, :]
    return mask


def _noise_boxes(boxes_cxcywh: Tensor, is_negative: Tensor, scale: float) -> Tensor:
    """Move each corner by up to scale * half the box size: positives by [0, 1) of it, negatives
    by [1, 2); boxes stay inside the image. [n, 4] -> [n, 4] cxcywh."""
    half = boxes_cxcywh[:, 2:] / 2
    corners = torch.cat((boxes_cxcywh[:, :2] - half, boxes_cxcywh[:, :2] + half), 1)
    sign = torch.randint(0, 2, boxes_cxcywh.shape, device=boxes_cxcywh.device) * 2.0 - 1.0
    part = torch.rand_like(boxes_cxcywh) + is_negative[:, None].to(boxes_cxcywh.dtype)
    corners = (corners + part * sign * half.repeat(1, 2) * scale).clamp(0.0, 1.0)
    return torch.cat(((corners[:, :2] + corners[:, 2:]) / 2, corners[:, 2:] - corners[:, :2]), 1)


def _noise_labels(labels: Tensor, ratio: float, num_classes: int) -> Tensor:
    """Replace each label, with probability ratio / 2, by a uniform one in [0, num_classes)."""
    if ratio <= 0:
        return labels
    flip = torch.rand(labels.shape, device=labels.device) < ratio * 0.5
    return torch.where(flip, torch.randint_like(labels, 0, num_classes), labels)


def prepare_denoising(
    targets: list[dict[str, Tensor]],
    *,
    dn_number: int,
    label_noise_ratio: float,
    box_noise_scale: float,
    num_classes: int,
    num_queries: int,
    label_enc: nn.Embedding,
) -> DenoisingQueries | None:
    """Build the noised queries for a batch; None when the batch has no box (no denoising)."""
    counts = [len(t["labels"]) for t in targets]
    max_gt = max(counts, default=0)
    if max_gt == 0 or dn_number <= 0:
        return None
    device = label_enc.weight.device
    groups = count_dn_groups(dn_number, max_gt)
    copies = 2 * groups  # a positive and a negative copy per group
    labels = torch.cat([t["labels"] for t in targets]).to(device)
    boxes = torch.cat([t["boxes"] for t in targets]).to(device, torch.float32)
    num_gt = len(labels)
    copy_index = torch.arange(copies, device=device).repeat_interleave(num_gt)  # [copies * G]
    known_labels = _noise_labels(labels.repeat(copies), label_noise_ratio, num_classes)
    known_boxes = boxes.repeat(copies, 1)
    if box_noise_scale > 0:
        known_boxes = _noise_boxes(known_boxes, copy_index % 2 == 1, box_noise_scale)
    image = torch.cat([torch.full((n,), i, device=device) for i, n in enumerate(counts)])
    slot_in_image = torch.cat([torch.arange(n, device=device) for n in counts])
    slot = slot_in_image.repeat(copies) + copy_index * max_gt
    pad_size = max_gt * copies
    batch = len(targets)
    index = (image.repeat(copies), slot)
    content = label_enc.weight.new_zeros(batch, pad_size, label_enc.embedding_dim)
    content = content.index_put(index, label_enc(known_labels))
    boxes_unsig = known_boxes.new_zeros(batch, pad_size, 4).index_put(
        index, inverse_sigmoid(known_boxes)
    )
    attn_mask = build_dn_attn_mask(pad_size, groups, num_queries, device)
    return DenoisingQueries(content, boxes_unsig, attn_mask, pad_size, groups)
