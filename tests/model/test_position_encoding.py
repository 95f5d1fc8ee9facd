"""Sine position encodings and encoder proposals: the conventions official checkpoints rely on."""

from __future__ import annotations

import math

import torch

from tbx_train.model.position_encoding import PositionEmbeddingSine, sine_embed_boxes
from tbx_train.model.transformer import encoder_proposals, valid_ratio


def test_map_embedding_layout_and_temperature():
    embed = PositionEmbeddingSine(num_pos_feats=8, temperature=20.0)
    pos = embed(torch.zeros(1, 4, 5, dtype=torch.bool))  # [1, 16, 4, 5]
    assert pos.shape == (1, 16, 4, 5)
    y = torch.arange(1, 5).float() / 4 * 2 * math.pi  # cumulative count, normalised to 2*pi
    x = torch.arange(1, 6).float() / 5 * 2 * math.pi
    torch.testing.assert_close(pos[0, 0, :, 0], y.sin())  # y first: sin, cos, ...
    torch.testing.assert_close(pos[0, 1, :, 0], y.cos())
    torch.testing.assert_close(pos[0, 2, :, 0], (y / 20 ** (2 / 8)).sin())
    torch.testing.assert_close(pos[0, 8, 0, :], x.sin())  # then x


def test_map_embedding_is_normalised_by_the_unpadded_size():
    embed = PositionEmbeddingSine(num_pos_feats=4)
    mask = torch.zeros(1, 6, 8, dtype=torch.bool)
    mask[:, :, 5:] = True  # 5 valid columns
    padded = embed(mask)
    alone = embed(torch.zeros(1, 6, 5, dtype=torch.bool))
    torch.testing.assert_close(padded[..., :5], alone, atol=1e-5, rtol=1e-5)


def test_box_embedding_order_is_y_x_w_h():
    box = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    out = sine_embed_boxes(box, num_feats=4)
    assert out.shape == (1, 16)
    for slot, coord in enumerate([0.2, 0.1, 0.3, 0.4]):  # cy, cx, w, h
        phase = coord * 2 * math.pi
        torch.testing.assert_close(out[0, 4 * slot], torch.tensor(phase).sin())
        torch.testing.assert_close(
            out[0, 4 * slot + 3], torch.tensor(phase / 10000 ** (2 / 4)).cos()
        )


def test_valid_ratio_and_proposals_follow_the_unpadded_size():
    mask = torch.zeros(1, 2, 4, dtype=torch.bool)
    mask[:, :, 3] = True  # 3 of 4 columns valid
    torch.testing.assert_close(valid_ratio(mask), torch.tensor([[0.75, 1.0]]))
    memory = torch.ones(1, 8, 3)
    memory_out, proposals = encoder_proposals(memory, mask.flatten(1), [(2, 4)])
    box = torch.tensor([(1 + 0.5) / 3, (0 + 0.5) / 2, 0.05, 0.05])  # token (row 0, col 1)
    torch.testing.assert_close(proposals[0, 1], torch.log(box / (1 - box)))
    assert proposals[0, 3].isinf().all() and (memory_out[0, 3] == 0).all()  # padding
    assert proposals[0, 2].isfinite().all()


def test_proposals_too_close_to_the_border_are_dropped():
    wide = torch.zeros(1, 1, 100, dtype=torch.bool)
    memory_out, proposals = encoder_proposals(torch.ones(1, 100, 3), wide.flatten(1), [(1, 100)])
    # Column 0 has centre x = 0.5 / 100 = 0.005, outside (0.01, 0.99); column 1 (0.015) is in.
    assert proposals[0, 0].isinf().all() and (memory_out[0, 0] == 0).all()
    assert proposals[0, 1].isfinite().all() and (memory_out[0, 1] == 1).all()
