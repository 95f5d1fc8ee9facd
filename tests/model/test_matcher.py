"""Hungarian matcher against an exhaustive search with a cost written out in plain Python."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from detection_outputs import random_layer, random_targets

from tbx_train.model.matcher import HungarianMatcher

COSTS = {"cost_class": 2.0, "cost_bbox": 5.0, "cost_giou": 2.0}
ALPHA, GAMMA = 0.25, 2.0


def _xyxy(box: list[float]) -> list[float]:
    cx, cy, w, h = box
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _giou(a: list[float], b: list[float]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(
        0.0, min(a[3], b[3]) - max(a[1], b[1])
    )
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union - (hull - union) / hull


def _pair_cost(logit: float, box: list[float], target_box: list[float]) -> float:
    """The DINO matching cost of one (query, target) pair, written out per scalar."""
    p = 1 / (1 + math.exp(-logit))
    positive = ALPHA * (1 - p) ** GAMMA * -math.log(p + 1e-8)
    negative = (1 - ALPHA) * p**GAMMA * -math.log(1 - p + 1e-8)
    l1 = sum(abs(u - v) for u, v in zip(box, target_box, strict=True))
    giou = _giou(_xyxy(box), _xyxy(target_box))
    return (
        COSTS["cost_class"] * (positive - negative)
        + COSTS["cost_bbox"] * l1
        - COSTS["cost_giou"] * giou
    )


def _brute_force(logits: torch.Tensor, boxes: torch.Tensor, target: dict) -> tuple[float, dict]:
    """Cheapest assignment of every target to a distinct query, by trying all of them."""
    labels, target_boxes = target["labels"].tolist(), target["boxes"].tolist()
    cost = [
        [
            _pair_cost(logits[q, lab].item(), boxes[q].tolist(), tb)
            for lab, tb in zip(labels, target_boxes, strict=True)
        ]
        for q in range(logits.shape[0])
    ]
    best = min(
        itertools.permutations(range(logits.shape[0]), len(labels)),
        key=lambda queries: sum(cost[q][t] for t, q in enumerate(queries)),
    )
    total = sum(cost[q][t] for t, q in enumerate(best))
    return total, {q: t for t, q in enumerate(best)}


@pytest.mark.parametrize("seed", range(12))
def test_matcher_equals_brute_force_on_tiny_problems(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    queries = 2 + seed % 4  # 2..5
    counts = [seed % (queries + 1), queries - 1]
    outputs = random_layer(2, queries, 3, generator)
    targets = random_targets(counts, 3, generator)
    indices = HungarianMatcher(**COSTS, focal_alpha=ALPHA, focal_gamma=GAMMA)(outputs, targets)
    for b, (pred_idx, tgt_idx) in enumerate(indices):
        assert pred_idx.dtype == tgt_idx.dtype == torch.int64
        assert len(pred_idx) == len(tgt_idx) == counts[b]
        assert pred_idx.tolist() == sorted(pred_idx.tolist())
        _, best = _brute_force(
            outputs["pred_logits"][b].detach(), outputs["pred_boxes"][b].detach(), targets[b]
        )
        assert dict(zip(pred_idx.tolist(), tgt_idx.tolist(), strict=True)) == best


def test_matcher_prefers_the_query_on_the_target() -> None:
    generator = torch.Generator().manual_seed(3)
    outputs = random_layer(1, 4, 3, generator)
    targets = random_targets([1], 3, generator)
    with torch.no_grad():
        outputs["pred_boxes"][0, 2] = targets[0]["boxes"][0]
        outputs["pred_logits"][0, 2, targets[0]["labels"][0]] = 5.0
    ((pred_idx, tgt_idx),) = HungarianMatcher(**COSTS)(outputs, targets)
    assert pred_idx.tolist() == [2] and tgt_idx.tolist() == [0]


def test_empty_targets_give_empty_int64_indices() -> None:
    generator = torch.Generator().manual_seed(4)
    outputs = random_layer(2, 5, 3, generator)
    targets = random_targets([0, 2], 3, generator)
    indices = HungarianMatcher(**COSTS)(outputs, targets)
    assert indices[0][0].shape == indices[0][1].shape == (0,)
    assert indices[0][0].dtype == indices[0][1].dtype == torch.int64
    assert len(indices[1][0]) == 2


def test_matcher_rejects_batch_mismatch_and_all_zero_costs() -> None:
    generator = torch.Generator().manual_seed(5)
    with pytest.raises(ValueError, match="targets for a batch"):
        HungarianMatcher(**COSTS)(
            random_layer(2, 3, 3, generator), random_targets([1], 3, generator)
        )
    with pytest.raises(ValueError, match="all costs are 0"):
        HungarianMatcher(0.0, 0.0, 0.0)


def test_non_finite_predictions_still_match() -> None:
    # The engine's NaN guard, not a scipy error deep in matching, must report a diverged model.
    generator = torch.Generator().manual_seed(6)
    outputs = random_layer(1, 4, 3, generator)
    with torch.no_grad():
        outputs["pred_logits"][0, 1] = float("nan")
        outputs["pred_boxes"][0, 2] = float("inf")
    ((pred_idx, tgt_idx),) = HungarianMatcher(**COSTS)(outputs, random_targets([2], 3, generator))
    assert len(pred_idx) == len(tgt_idx) == 2
    assert not {1, 2} & set(pred_idx.tolist())
