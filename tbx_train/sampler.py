"""Which images each rank sees at each step, so that scale does not change the updates.

The global order of an epoch is a permutation drawn from (seed, epoch) alone. It is cut into
micro-batches of `batch_size` images. Optimizer step s consumes the K x W micro-batches
[s*K*W, (s+1)*K*W) (K = grad_accum, W = world size); rank r takes micro-batch s*K*W + k*W + r as
its k-th micro-batch. So 1 process x K and K processes x 1 put the same images in the same step,
and a mid-epoch resume only needs the micro-batch index. An incomplete last step is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class StepBatchSampler:
    """A batch sampler (yields lists of dataset indices) for one rank; see the module docstring."""

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        grad_accum: int = 1,
        world_size: int = 1,
        rank: int = 0,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.world_size = world_size
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start_iteration = 0

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch (incomplete last step dropped)."""
        return self.dataset_size // (self.batch_size * self.grad_accum * self.world_size)

    def set_epoch(self, epoch: int, start_iteration: int = 0) -> None:
        """Select the epoch's order, and the micro-batch (per rank) to start from."""
        self.epoch = epoch
        self.start_iteration = start_iteration

    def order(self) -> list[int]:
        """The epoch's global order of dataset indices."""
        if not self.shuffle:
            return list(range(self.dataset_size))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.dataset_size, generator=generator).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        order = self.order()
        k_w = self.grad_accum * self.world_size
        for iteration in range(self.start_iteration, len(self)):
            step, k = divmod(iteration, self.grad_accum)
            micro = step * k_w + k * self.world_size + self.rank
            yield order[micro * self.batch_size : (micro + 1) * self.batch_size]

    def __len__(self) -> int:
        """Micro-batches per epoch for this rank (the N of `[i/N]`)."""
        return self.steps_per_epoch * self.grad_accum


class ShardSampler:
    """Evaluation order: every image once, in order, image i on rank i % W."""

    def __init__(self, dataset_size: int, world_size: int = 1, rank: int = 0) -> None:
        self.indices = list(range(rank, dataset_size, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
