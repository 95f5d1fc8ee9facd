"""The step layout: 1 process x K and K processes x 1 put the same images in each step."""

from itertools import chain

import pytest

from tbx_train.sampler import ShardSampler, StepBatchSampler


def _steps(sampler: StepBatchSampler, k: int) -> list[list[int]]:
    micro = list(sampler)
    return [list(chain(*micro[i : i + k])) for i in range(0, len(micro), k)]


@pytest.mark.parametrize(("accum", "world"), [(2, 1), (1, 2), (4, 1), (2, 2), (1, 4)])
def test_each_step_holds_the_same_images_at_any_scale(accum, world):
    per_step = accum * world
    reference = StepBatchSampler(21, batch_size=1, grad_accum=per_step, world_size=1, seed=7)
    reference.set_epoch(3)
    expected = [sorted(step) for step in _steps(reference, per_step)]
    per_rank = []
    for rank in range(world):
        sampler = StepBatchSampler(21, 1, grad_accum=accum, world_size=world, rank=rank, seed=7)
        sampler.set_epoch(3)
        per_rank.append(_steps(sampler, accum))
    merged = [sorted(chain(*parts)) for parts in zip(*per_rank, strict=True)]
    assert merged == expected
    assert len(expected) == 21 // per_step  # the incomplete last step is dropped


def test_order_depends_on_seed_and_epoch_only():
    a = StepBatchSampler(50, 2, seed=1)
    b = StepBatchSampler(50, 2, seed=1)
    a.set_epoch(0)
    b.set_epoch(0)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)


def test_resume_starts_at_the_saved_micro_batch():
    sampler = StepBatchSampler(40, 2, grad_accum=2, seed=3)
    sampler.set_epoch(5)
    full = list(sampler)
    sampler.set_epoch(5, start_iteration=6)
    assert list(sampler) == full[6:]
    assert len(sampler) == 20


def test_shards_cover_every_image_once():
    shards = [list(ShardSampler(10, world_size=3, rank=r)) for r in range(3)]
    assert sorted(chain(*shards)) == list(range(10))
