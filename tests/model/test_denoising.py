"""Contrastive denoising: the official group-count quirk, the slot layout and the attention mask."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tbx_train.model.box_ops import inverse_sigmoid
from tbx_train.model.denoising import build_dn_attn_mask, count_dn_groups, prepare_denoising


@pytest.mark.parametrize(
    ("dn_number", "max_gt", "groups"),
    [
        (100, 2, 50),  # 200 // (2 * 2): the documented DINO case
        (100, 1, 100),
        (100, 3, 33),
        (100, 150, 1),  # the division gives 0: at least one group
        (10, 2, 20),  # below 100 after doubling, no division: the quirk
        (10, 7, 20),
        (20, 3, 40),  # the tiny preset
        (50, 4, 12),  # exactly 100 after doubling: divided
    ],
)
def test_group_count_reproduces_the_official_quirk(dn_number, max_gt, groups):
    assert count_dn_groups(dn_number, max_gt) == groups


def test_attention_mask_structure():
    pad, groups, queries = 6, 3, 2  # single group size 2
    mask = build_dn_attn_mask(pad, groups, queries)
    assert mask.shape == (8, 8) and mask.dtype == torch.bool
    for i in range(8):
        for j in range(8):
            if i >= pad:  # matching query: sees matching queries only
                expected = j < pad
            elif j >= pad:  # denoising query: sees every matching query
                expected = False
            else:  # denoising query: sees its own group only
                expected = i // 2 != j // 2
            assert mask[i, j].item() == expected, (i, j)


def _targets():
    return [
        {
            "labels": torch.tensor([1, 3]),
            "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.6, 0.1, 0.2]]),
        },
        {"labels": torch.tensor([2]), "boxes": torch.tensor([[0.4, 0.4, 0.3, 0.1]])},
    ]


def _prepare(targets, label_noise=0.0, box_noise=0.0, dn_number=3):
    torch.manual_seed(0)
    label_enc = nn.Embedding(5, 8)
    dn = prepare_denoising(
        targets,
        dn_number=dn_number,
        label_noise_ratio=label_noise,
        box_noise_scale=box_noise,
        num_classes=4,
        num_queries=5,
        label_enc=label_enc,
    )
    return dn, label_enc


def test_noise_free_queries_follow_the_official_layout():
    targets = _targets()
    dn, label_enc = _prepare(targets)
    max_gt, groups = 2, 6  # dn_number 3 -> 6 groups (the quirk), 2 * max_gt slots each
    assert (dn.num_groups, dn.pad_size) == (groups, 2 * max_gt * groups)
    assert dn.content.shape == (2, dn.pad_size, 8) and dn.boxes_unsig.shape == (2, dn.pad_size, 4)
    assert dn.attn_mask.shape == (dn.pad_size + 5, dn.pad_size + 5)
    for g in range(groups):
        for image, target in enumerate(targets):
            for j, (label, box) in enumerate(zip(target["labels"], target["boxes"], strict=True)):
                for slot in (g * 2 * max_gt + j, g * 2 * max_gt + max_gt + j):  # pos, neg
                    torch.testing.assert_close(dn.content[image, slot], label_enc.weight[label])
                    torch.testing.assert_close(dn.boxes_unsig[image, slot], inverse_sigmoid(box))
        # image 1 has a single box: its second positive and negative slots stay empty
        for slot in (g * 2 * max_gt + 1, g * 2 * max_gt + max_gt + 1):
            assert dn.content[1, slot].abs().sum() == 0 and dn.boxes_unsig[1, slot].abs().sum() == 0


def test_positive_copies_stay_closer_than_negative_ones():
    target = [{"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]])}]
    dn, _ = _prepare(target, box_noise=0.4, dn_number=50)  # 100 groups of [positive, negative]
    boxes = dn.boxes_unsig[0].sigmoid().view(-1, 2, 4)  # [group, pos/neg, cxcywh]
    corners = torch.cat(
        (boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2), -1
    )
    shift = (corners - torch.tensor([0.4, 0.4, 0.6, 0.6])).abs()  # half size 0.1, scale 0.4
    assert (shift[:, 0] <= 0.04 + 1e-3).all()  # positives move each corner by < 0.4 * 0.1
    assert (shift[:, 1] >= 0.04 - 1e-3).all() and (shift[:, 1] <= 0.08 + 1e-3).all()


def test_label_noise_flips_about_half_the_ratio():
    target = [{"labels": torch.full((10,), 2), "boxes": torch.full((10, 4), 0.5)}]
    dn, label_enc = _prepare(target, label_noise=0.5, dn_number=100)  # 10 groups x 20 copies
    kept = (dn.content[0] == label_enc.weight[2]).all(-1).float().mean().item()
    # 25% are redrawn uniformly over 4 classes, a quarter of which land on the same label.
    assert 0.72 < kept < 0.86


def test_no_box_in_the_batch_means_no_denoising():
    empty = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}] * 2
    assert _prepare(empty)[0] is None
