"""The optimizer step: accumulation equals the concatenated batch; the non-finite guard.

Real tiny DINO (dropout 0; denoising noise 0 so that the denoising queries are deterministic),
64 px images so that a step takes well under a second.
"""

from dataclasses import replace

import pytest
import torch

from tbx_train.config import MODEL_PRESETS, TrainConfig
from tbx_train.engine import (
    EpochPlan,
    NonFiniteLossError,
    TrainContext,
    count_boxes,
    optimizer_step,
    train_one_epoch,
)
from tbx_train.logs import MetricLogger
from tbx_train.model import build_dino
from tbx_train.optim import build_optimizer

SIZE = 64


def _target(image_id: int, boxes: list[list[float]], labels: list[int]) -> dict:
    return {
        "labels": torch.tensor(labels, dtype=torch.int64),
        "boxes": torch.tensor(boxes, dtype=torch.float32),
        "image_id": torch.tensor(image_id),
        "orig_size": torch.tensor([SIZE, SIZE]),
        "size": torch.tensor([SIZE, SIZE]),
    }


def _images(count: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _state(clip: float = 0.0):
    config = replace(
        MODEL_PRESETS["tiny"],
        num_queries=50,  # a 64 px image gives 85 encoder tokens
        num_select=50,
        dn_label_noise_ratio=0.0,
        dn_box_noise_scale=0.0,
    )
    torch.manual_seed(0)
    model, criterion, _ = build_dino(config)
    optimizer = build_optimizer(model, TrainConfig(lr=1e-4, lr_backbone=1e-5))
    for group in optimizer.param_groups:
        # Adam's first step is lr * g / (|g| + eps): with eps 1e-8 an entry whose gradient is as
        # small as the float noise of the sum moves by a random fraction of lr (measured up to
        # 0.3 lr). eps 1e-6 keeps the weight comparison about the gradients (measured 0.01 lr).
        group["eps"] = 1e-6
    ctx = TrainContext(model, criterion, optimizer, torch.device("cpu"), clip_max_norm=clip)
    return ctx


# Same number of boxes per image: the denoising groups pad to the batch's largest GT count, so
# only then does a concatenated batch see exactly the queries its halves see.
TARGETS = [
    _target(1, [[0.3, 0.3, 0.2, 0.25], [0.7, 0.6, 0.15, 0.1]], [1, 3]),
    _target(2, [[0.5, 0.4, 0.3, 0.2], [0.2, 0.8, 0.1, 0.1]], [2, 2]),
]


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_two_micro_batches_equal_their_concatenation():
    images = _images(2)
    masks = torch.zeros(2, SIZE, SIZE, dtype=torch.bool)
    whole = _state()
    whole_values = optimizer_step(whole, [(images, masks, TARGETS)])
    split = _state()
    initial = _params(split.model)
    split_values = optimizer_step(
        split, [(images[i : i + 1], masks[i : i + 1], TARGETS[i : i + 1]) for i in range(2)]
    )
    # Gradients unclipped, so a wrong normaliser (e.g. per micro-batch) would show as a 2x scale.
    whole_grads, split_grads = _grads(whole.model), _grads(split.model)
    assert whole_grads.keys() == split_grads.keys() and len(whole_grads) > 100
    for name, grad in whole_grads.items():
        # Float summation order differs; measured worst case ~5e-6 of the tensor's largest entry.
        error = (split_grads[name] - grad).abs().max().item()
        assert error <= 1e-4 * grad.abs().max().item() + 1e-10, name
    split_params = _params(split.model)
    for name, value in _params(whole.model).items():
        torch.testing.assert_close(split_params[name], value, rtol=0, atol=1e-5)  # 0.1 lr
    moved = [n for n, v in initial.items() if not torch.equal(v, split_params[n])]
    assert len(moved) > 100  # the step really changed the weights
    assert split_values["loss"] == pytest.approx(whole_values["loss"], rel=1e-5)


def test_non_finite_loss_stops_before_touching_the_weights():
    ctx = _state(clip=0.1)
    before = _params(ctx.model)
    images = _images(1)
    images[0, :, :8, :8] = float("nan")
    lines: list[str] = []
    batches = [(images, torch.zeros(1, SIZE, SIZE, dtype=torch.bool), TARGETS[:1])]
    with pytest.raises(NonFiniteLossError) as raised:
        train_one_epoch(
            ctx, batches, EpochPlan(epoch=0, iterations=1), MetricLogger(write=lines.append)
        )
    assert lines[0] == "Loss is nan, stopping training"
    assert "loss_ce" in lines[1] and "loss_ce" in raised.value.terms
    after = _params(ctx.model)
    assert all(torch.equal(before[n], after[n]) for n in before)


def test_step_normaliser_is_floored_before_it_is_shared_over_ranks() -> None:
    # max(total, 1) / W: a box-less step gives 1 in 1 process and 0.5 on each of 2 ranks, so
    # DDP's average of the 2 ranks' gradients is the 1-process gradient (official max(total / W,
    # 1) gives 1 on each rank: half of it).
    empty = (_images(1), torch.zeros(1, SIZE, SIZE, dtype=torch.bool), [_target(0, [], [])])
    boxed = (_images(1), empty[1], [_target(1, [[0.5, 0.5, 0.2, 0.2]] * 3, [1, 2, 1])])
    cpu = torch.device("cpu")
    assert count_boxes([empty, empty], cpu, world_size=1) == 1.0
    assert count_boxes([empty], cpu, world_size=2) == 0.5
    assert count_boxes([boxed, empty], cpu, world_size=1) == 3.0
    assert count_boxes([boxed], cpu, world_size=2) == 1.5  # as if the other rank had none
