"""PostProcess: top-k over queries x classes, absolute xyxy boxes."""

from __future__ import annotations

import pytest
import torch
from detection_outputs import random_layer

from tbx_train.model.postprocess import PostProcess


def test_top_pairs_by_hand() -> None:
    outputs = {
        "pred_logits": torch.tensor([[[0.0, 3.0], [2.0, -1.0], [1.0, 2.5]]]),  # Q 3, C 2
        "pred_boxes": torch.tensor(
            [[[0.5, 0.5, 0.2, 0.4], [0.1, 0.1, 0.1, 0.1], [0.3, 0.6, 0.2, 0.2]]]
        ),
    }
    (result,) = PostProcess(num_select=3)(outputs, torch.tensor([[100, 200]]))  # h 100, w 200
    # Best pairs: (q0, c1) 3.0, (q2, c1) 2.5, (q1, c0) 2.0.
    torch.testing.assert_close(result["scores"], torch.tensor([3.0, 2.5, 2.0]).sigmoid())
    assert result["labels"].tolist() == [1, 1, 0]
    expected_boxes = torch.tensor(
        [[80.0, 30.0, 120.0, 70.0], [40.0, 50.0, 80.0, 70.0], [10.0, 5.0, 30.0, 15.0]]
    )
    torch.testing.assert_close(result["boxes"], expected_boxes)
    assert result["labels"].dtype == torch.int64


@pytest.mark.parametrize(("num_select", "expected_k"), [(5, 5), (12, 12), (50, 12)])
def test_k_is_num_select_capped_at_queries_times_classes(num_select: int, expected_k: int) -> None:
    outputs = random_layer(2, 4, 3, torch.Generator().manual_seed(0))
    results = PostProcess(num_select)(outputs, torch.tensor([[512, 512], [400, 300]]))
    for result in results:
        assert result["scores"].shape == result["labels"].shape == (expected_k,)
        assert result["boxes"].shape == (expected_k, 4)
        assert bool((result["scores"][:-1] >= result["scores"][1:]).all())


def test_batch_equals_single_images() -> None:
    outputs = random_layer(2, 6, 3, torch.Generator().manual_seed(1))
    sizes = torch.tensor([[512, 512], [400, 300]])
    batched = PostProcess(7)(outputs, sizes)
    for b in range(2):
        single = {k: v[b : b + 1] for k, v in outputs.items()}
        (alone,) = PostProcess(7)(single, sizes[b : b + 1])
        for key in ("scores", "labels", "boxes"):
            torch.testing.assert_close(batched[b][key], alone[key])


def test_bad_arguments_are_refused() -> None:
    outputs = random_layer(2, 4, 3, torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="target_sizes"):
        PostProcess(5)(outputs, torch.tensor([[512, 512]]))
    with pytest.raises(ValueError, match="num_select"):
        PostProcess(0)
