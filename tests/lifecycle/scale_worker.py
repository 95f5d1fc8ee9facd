"""Training pieces shared by the scale and resume tests (also the body of spawned ranks).

Two models: the real tiny DINO (`build_dino(model_preset("tiny"))`), and `StandInDetector` /
`StandInCriterion`, which follow the same contract (images, masks, targets in; `pred_logits` /
`pred_boxes` out; losses summed over boxes and divided by `num_boxes`; a `weight_dict`) and train
in milliseconds, for tests that need many steps.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tbx_train.config import TrainConfig, model_preset
from tbx_train.distributed import DistInfo, cleanup_distributed, init_distributed
from tbx_train.engine import EpochPlan, TrainContext, optimizer_step, to_device, train_one_epoch
from tbx_train.logs import MetricLogger
from tbx_train.model import build_dino
from tbx_train.optim import build_optimizer
from tbx_train.sampler import StepBatchSampler
from tbx_train.signals import StopRequest

NUM_IMAGES, NUM_CLASSES, SIZE = 16, 4, 64


class SeededByImage(nn.Module):
    """Seeds the global RNG from the micro-batch's image ids before the model runs.

    DINO draws its denoising noise from the global RNG, so without this the noise of a
    micro-batch would depend on the rank and on how many micro-batches ran before it.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor, masks: Tensor, targets=None) -> dict:
        if targets is not None:
            torch.manual_seed(sum(int(t["image_id"]) * 7919 for t in targets) + 1)
        return self.model(images, masks, targets)


class StandInDetector(nn.Module):
    """One query per image: a conv feature, masked mean pool, class and box heads."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.class_embed = nn.Linear(8, NUM_CLASSES)
        self.bbox_embed = nn.Linear(8, 4)

    def forward(self, images: Tensor, masks: Tensor, targets=None) -> dict[str, Tensor]:
        features = F.relu(self.conv(images))  # [B, 8, H, W]
        keep = (~masks).unsqueeze(1).float()
        pooled = (features * keep).sum((2, 3)) / keep.sum((2, 3)).clamp(min=1)
        return {
            "pred_logits": self.class_embed(pooled)[:, None],  # [B, 1, C]
            "pred_boxes": self.bbox_embed(pooled).sigmoid()[:, None],  # [B, 1, 4]
        }


class StandInCriterion(nn.Module):
    """Per-box losses summed over the batch and divided by num_boxes, as the contract says."""

    def __init__(self) -> None:
        super().__init__()
        self.weight_dict = {"loss_ce": 1.0, "loss_bbox": 5.0}

    def forward(self, outputs, targets, num_boxes: float | None = None) -> dict[str, Tensor]:
        total = float(num_boxes or max(1, sum(len(t["labels"]) for t in targets)))
        ce = outputs["pred_logits"].sum() * 0
        l1 = outputs["pred_boxes"].sum() * 0
        for i, target in enumerate(targets):
            for label, box in zip(target["labels"], target["boxes"], strict=True):
                ce = ce - F.log_softmax(outputs["pred_logits"][i, 0], -1)[label]
                l1 = l1 + (outputs["pred_boxes"][i, 0] - box).abs().sum()
        return {"loss_ce": ce / total, "loss_bbox": l1 / total}


def sample(index: int) -> tuple[Tensor, dict[str, Tensor]]:
    """Image `index` of a fixed synthetic set; every third image has no box (as in TBX11K)."""
    gen = torch.Generator().manual_seed(1000 + index)
    count = 0 if index % 3 == 0 else 1 + index % 2
    target = {
        "labels": torch.randint(1, NUM_CLASSES, (count,), generator=gen),
        "boxes": torch.rand(count, 4, generator=gen) * 0.5 + 0.25,
        "image_id": torch.tensor(index),
        "orig_size": torch.tensor([SIZE, SIZE]),
        "size": torch.tensor([SIZE, SIZE]),
    }
    return torch.randn(3, SIZE, SIZE, generator=gen), target


def micro_batches(sampler: StepBatchSampler):
    """Collated micro-batches (images, masks, targets) in the sampler's order."""
    for indices in sampler:
        items = [sample(i) for i in indices]
        images = torch.stack([image for image, _ in items])
        masks = torch.zeros(len(items), SIZE, SIZE, dtype=torch.bool)
        yield images, masks, [target for _, target in items]


def build(kind: str = "stand-in") -> tuple[nn.Module, nn.Module, torch.optim.Optimizer]:
    """Identical initial weights on every rank and layout; kind: "stand-in" | "tiny-dino".

    Plain SGD (and no clipping in `context`): Adam and max-norm clipping hide a wrongly scaled
    gradient, SGD shows it in the weights.
    """
    torch.manual_seed(0)
    if kind == "tiny-dino":
        dino, criterion, _ = build_dino(model_preset("tiny", num_queries=50))
        model: nn.Module = SeededByImage(dino)
    else:
        model, criterion = StandInDetector(), StandInCriterion()
    trainable = [p for p in model.parameters() if p.requires_grad]
    return model, criterion, torch.optim.SGD(trainable, lr=1e-2)


def context(model: nn.Module, criterion: nn.Module, optimizer, world_size: int = 1) -> TrainContext:
    """The engine's step context on the CPU, full precision, clipping off (see `build`)."""
    return TrainContext(
        model, criterion, optimizer, torch.device("cpu"), clip_max_norm=0.0, world_size=world_size
    )


def train_steps(ctx: TrainContext, sampler: StepBatchSampler, steps: int) -> None:
    """`steps` optimizer steps of epoch 0 through the engine's optimizer_step."""
    batches = micro_batches(sampler)
    for _ in range(steps):
        group = [to_device(next(batches), ctx.device) for _ in range(sampler.grad_accum)]
        optimizer_step(ctx, group)


def join_group(rank: int, world_size: int, port: int) -> DistInfo:
    """One spawned rank joins the local gloo group through our init, on one thread."""
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    return init_distributed(device="cpu")


def rank_main(rank: int, world_size: int, port: int, steps: int, out: str, kind: str) -> None:
    """Body of one spawned rank: join the gloo group via our init, train, rank 0 saves weights."""
    info = join_group(rank, world_size, port)
    model, criterion, optimizer = build(kind)
    ddp = nn.parallel.DistributedDataParallel(model)
    ctx = context(ddp, criterion, optimizer, world_size)
    sampler = StepBatchSampler(NUM_IMAGES, 1, 1, world_size, rank, seed=3)
    train_steps(ctx, sampler, steps)
    with StopRequest() as stop:  # only the last rank gets SLURM's signal; all must agree
        if rank == world_size - 1:
            os.kill(os.getpid(), signal.SIGUSR1)
        agreed = stop.stop_signal()
    if info.is_main:
        torch.save({"model": model.state_dict(), "stop_signal": agreed}, Path(out))
    cleanup_distributed()


def recipe_run(epochs: int, seed: int, images: int, world_size: int = 1, rank: int = 0):
    """The real recipe's step on tiny DINO: AdamW with DINO's groups and weight decay, clipping at
    0.1, DDP with find_unused_parameters when distributed, `epochs` epochs of `images` images
    (one per micro-batch; accumulation 2 in 1 process) through the engine's train_one_epoch.

    Returns the bare model and the optimizer.
    """
    torch.manual_seed(0)
    model, criterion, _ = build_dino(model_preset("tiny", num_queries=50))
    optimizer = build_optimizer(model, TrainConfig())
    wrapped = model
    if world_size > 1:
        wrapped = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    grad_accum = 2 // world_size
    clip = TrainConfig().clip_max_norm
    ctx = TrainContext(
        wrapped, criterion, optimizer, torch.device("cpu"), clip_max_norm=clip,
        world_size=world_size, rank=rank, seed=seed,
    )  # fmt: skip
    sampler = StepBatchSampler(images, 1, grad_accum, world_size, rank, seed=seed)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        plan = EpochPlan(epoch=epoch, iterations=len(sampler), grad_accum=grad_accum)
        train_one_epoch(ctx, micro_batches(sampler), plan, MetricLogger(write=lambda _line: None))
    return model, optimizer


def recipe_rank_main(rank: int, world_size: int, port: int, args: tuple, out: str) -> None:
    """Body of one spawned rank of `recipe_run`; rank 0 saves model and optimizer state."""
    info = join_group(rank, world_size, port)
    model, optimizer = recipe_run(*args, world_size=world_size, rank=rank)
    if info.is_main:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, Path(out))
    cleanup_distributed()
