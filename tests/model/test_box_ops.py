"""Box conversions, areas, IoU and GIoU against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tbx_train.model.box_ops import (
    box_area,
    box_cxcywh_to_xyxy,
    box_iou,
    box_xyxy_to_cxcywh,
    elementwise_generalized_box_iou,
    generalized_box_iou,
    inverse_sigmoid,
)


def test_cxcywh_xyxy_round_trip_keeps_values_and_leading_dims() -> None:
    generator = torch.Generator().manual_seed(0)
    boxes_cxcywh = torch.rand(2, 5, 4, generator=generator, dtype=torch.float64)
    boxes_xyxy = box_cxcywh_to_xyxy(boxes_cxcywh)
    assert boxes_xyxy.shape == (2, 5, 4)
    torch.testing.assert_close(box_xyxy_to_cxcywh(boxes_xyxy), boxes_cxcywh)
    torch.testing.assert_close(box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(boxes_xyxy)), boxes_xyxy)


def test_cxcywh_to_xyxy_known_box() -> None:
    boxes_xyxy = box_cxcywh_to_xyxy(torch.tensor([[0.5, 0.4, 0.2, 0.6]]))
    torch.testing.assert_close(boxes_xyxy, torch.tensor([[0.4, 0.1, 0.6, 0.7]]))


def test_box_area() -> None:
    boxes_xyxy = torch.tensor([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 1.0, 4.0]])
    torch.testing.assert_close(box_area(boxes_xyxy), torch.tensor([6.0, 0.0]))


def test_iou_and_giou_known_values() -> None:
    # a overlaps b in a 1x1 square: union 4 + 4 - 1 = 7, enclosing 3x3 = 9.
    # a and c are disjoint: union 4 + 1 = 5, enclosing [0, 4] x [0, 4] = 16.
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    others = torch.tensor([[1.0, 1.0, 3.0, 3.0], [3.0, 3.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0]])
    iou, union = box_iou(a, others)
    torch.testing.assert_close(iou, torch.tensor([[1 / 7, 0.0, 1.0]]))
    torch.testing.assert_close(union, torch.tensor([[7.0, 5.0, 4.0]]))
    giou = generalized_box_iou(a, others)
    expected = torch.tensor([[1 / 7 - 2 / 9, 0.0 - 11 / 16, 1.0]])
    torch.testing.assert_close(giou, expected)


def test_pairwise_giou_shape_range_and_diagonal() -> None:
    generator = torch.Generator().manual_seed(1)
    boxes1 = box_cxcywh_to_xyxy(torch.rand(6, 4, generator=generator))
    boxes2 = box_cxcywh_to_xyxy(torch.rand(6, 4, generator=generator))
    giou = generalized_box_iou(boxes1, boxes2)
    assert giou.shape == (6, 6)
    assert bool(((giou >= -1) & (giou <= 1)).all())
    torch.testing.assert_close(elementwise_generalized_box_iou(boxes1, boxes2), giou.diagonal())
    assert generalized_box_iou(boxes1, boxes2[:0]).shape == (6, 0)


def test_zero_area_boxes_give_finite_overlaps() -> None:
    point = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    iou, _ = box_iou(point, point)
    assert iou.item() == 0.0
    assert torch.isfinite(generalized_box_iou(point, point)).all()
    assert torch.isfinite(elementwise_generalized_box_iou(point, point)).all()


def test_inverse_sigmoid_inverts_sigmoid_and_clamps_at_eps() -> None:
    x = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    torch.testing.assert_close(inverse_sigmoid(x).sigmoid(), x)
    edges = inverse_sigmoid(torch.tensor([-0.5, 0.0, 1.0, 1.5], dtype=torch.float64))
    limit = math.log(1e-3)
    assert edges.tolist() == pytest.approx([limit, limit, -limit, -limit])


_unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, width=32)
_boxes_xyxy = st.lists(st.tuples(_unit, _unit, _unit, _unit), min_size=1, max_size=4).map(
    lambda rows: torch.tensor(
        [[min(a, c), min(b, d), max(a, c) + 1e-3, max(b, d) + 1e-3] for a, b, c, d in rows],
        dtype=torch.float64,
    )
)


@settings(max_examples=60, deadline=None)
@given(boxes1=_boxes_xyxy, boxes2=_boxes_xyxy)
def test_giou_is_symmetric_bounded_and_at_most_iou(
    boxes1: torch.Tensor, boxes2: torch.Tensor
) -> None:
    iou, _ = box_iou(boxes1, boxes2)
    giou = generalized_box_iou(boxes1, boxes2)
    torch.testing.assert_close(giou, generalized_box_iou(boxes2, boxes1).T)
    assert bool((giou <= iou + 1e-12).all())
    assert bool(((giou >= -1) & (giou <= 1)).all())
    assert bool(((iou >= 0) & (iou <= 1 + 1e-12)).all())
