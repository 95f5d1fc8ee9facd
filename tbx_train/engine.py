"""One training epoch and one evaluation pass.

Gradient accumulation: an optimizer step takes K micro-batches (K = grad_accum) on each of W
ranks. The loss normaliser `num_boxes` counts the ground-truth boxes of all K micro-batches on all
ranks of the step (all-reduced, divided by W as DDP then averages the gradients over W), and each
micro-batch's loss is backpropagated as it comes. Every loss term is a sum over images divided by
num_boxes, so the K backward passes add up to the gradient of the full K x W-image batch:
1 process x K and K processes x 1 give the same update (DESIGN "same results at any scale").

A micro-batch is `(images [B,3,H,W], masks [B,H,W] bool, targets)` as `collate_fn` makes it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from tbx_train.distributed import all_reduce_sum
from tbx_train.ema import ModelEma
from tbx_train.logs import MetricLogger, SmoothedValue

MicroBatch = tuple[Tensor, Tensor, list[dict[str, Tensor]]]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops before the weights are touched."""

    def __init__(self, loss_value: float, terms: dict[str, float]) -> None:
        listing = ", ".join(f"{name}: {value:.4f}" for name, value in terms.items())
        super().__init__(f"Loss is {loss_value}, stopping training; loss terms: {listing}")
        self.loss_value = loss_value
        self.terms = terms


@dataclass
class TrainContext:
    """What an optimizer step needs. `model` may be DDP-wrapped; `ema` tracks the bare module."""

    model: nn.Module
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    amp_dtype: torch.dtype | None = None  # autocast dtype; None = full precision
    scaler: torch.amp.GradScaler | None = None  # fp16 only
    clip_max_norm: float = 0.1
    ema: ModelEma | None = None
    world_size: int = 1
    rank: int = 0
    seed: int = 0  # run seed: with the epoch and micro-batch index it seeds the step's noise


@dataclass
class EpochResult:
    """How a (possibly partial) epoch ended."""

    stats: dict[str, float]  # meter means over the iterations run (log.txt train_*)
    global_step: int  # optimizer steps done in the whole run
    next_iteration: int  # micro-batch index to continue from; == iterations when completed
    completed: bool
    stop_reason: str | None = None  # "max_steps" | "stop_requested" | None


def resolve_amp(mode: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed). AMP applies on CUDA only."""
    if device.type != "cuda" or mode == "off":
        return None, False
    if mode == "fp16" or (mode == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16, True
    return torch.bfloat16, False


def to_device(batch: MicroBatch, device: torch.device) -> MicroBatch:
    """Move images, masks and every tensor in the targets to `device`."""
    images, masks, targets = batch
    moved = [
        {k: v.to(device) if isinstance(v, Tensor) else v for k, v in t.items()} for t in targets
    ]
    return images.to(device), masks.to(device), moved


def count_boxes(
    micro_batches: Sequence[MicroBatch], device: torch.device, world_size: int
) -> float:
    """The step's loss normaliser: max(boxes over all micro-batches and ranks, 1) / world size.

    The floor applies to the step's total, before the division: flooring per rank (the official
    max(total / W, 1)) scales a step with fewer than W boxes, e.g. none, by another factor on W
    ranks than in 1 process x W micro-batches, and clipping and AdamW's eps then turn that factor
    into different updates.
    """
    local = sum(len(t["labels"]) for _, _, targets in micro_batches for t in targets)
    total = all_reduce_sum(torch.tensor([float(local)], device=device))
    return max(total.item(), 1.0) / world_size


def weighted_terms(
    loss_dict: dict[str, Tensor], weight_dict: dict[str, float]
) -> dict[str, Tensor]:
    """Each weighted loss term (keys in criterion order)."""
    return {k: v * weight_dict[k] for k, v in loss_dict.items() if k in weight_dict}


def _reduced_values(terms: dict[str, Tensor], world_size: int) -> dict[str, float]:
    """Sum of each term over ranks / world size: what DDP's averaged gradient descends."""
    if not terms:
        return {}
    stacked = torch.stack([v.detach().float() for v in terms.values()])
    stacked = all_reduce_sum(stacked) / world_size
    return dict(zip(terms, stacked.tolist(), strict=True))


def micro_batch_seed(seed: int, epoch: int, micro_batch: int) -> int:
    """Seed of the random draws (denoising noise, dropout) of one global micro-batch.

    A pure function of (run seed, epoch, global micro-batch index), so that a resumed run draws
    what the uninterrupted one drew, and 1 process x K and K processes x 1 draw alike.
    """
    return ((seed * 1_000_003 + epoch) * 10_000_019 + micro_batch) % (2**63)


def global_micro_batch(iteration: int, grad_accum: int, world_size: int, rank: int) -> int:
    """The global index of this rank's micro-batch `iteration` (the sampler's layout)."""
    step, k = divmod(iteration, grad_accum)
    return step * grad_accum * world_size + k * world_size + rank


def _micro_step(
    ctx: TrainContext, batch: MicroBatch, num_boxes: float, sync: bool, seed: int | None
) -> dict:
    """Forward and backward of one micro-batch; returns its rank-reduced logged values."""
    images, masks, targets = batch
    if seed is not None:
        torch.manual_seed(seed)  # also seeds CUDA: the denoising noise is drawn in forward
    no_sync = getattr(ctx.model, "no_sync", None)
    # DDP all-reduces gradients in backward; only the last micro-batch of a step needs that.
    sync_context = contextlib.nullcontext() if sync or no_sync is None else no_sync()
    autocast = torch.autocast(
        ctx.device.type, dtype=ctx.amp_dtype, enabled=ctx.amp_dtype is not None
    )
    with sync_context:
        with autocast:
            outputs = ctx.model(images, masks, targets)
            loss_dict = ctx.criterion(outputs, targets, num_boxes=num_boxes)
            terms = weighted_terms(loss_dict, ctx.criterion.weight_dict)
            loss = sum(terms.values())
        values = _reduced_values({"loss": loss, **terms}, ctx.world_size)
        if not math.isfinite(values["loss"]):
            raise NonFiniteLossError(values["loss"], values)
        (ctx.scaler.scale(loss) if ctx.scaler else loss).backward()
    values["class_error"] = float(loss_dict.get("class_error", torch.tensor(0.0)))
    values["class_error_images"] = float(loss_dict.get("class_error_images", torch.tensor(0.0)))
    return values


def _combine(per_micro: list[dict[str, float]]) -> dict[str, float]:
    """Sum the micro-batch losses (the full-batch loss); class_error weighted by its images."""
    combined = {k: sum(v[k] for v in per_micro) for k in per_micro[0] if not k.startswith("class_")}
    images = sum(v["class_error_images"] for v in per_micro)
    if images > 0:
        errors = sum(v["class_error"] * v["class_error_images"] for v in per_micro) / images
    else:
        errors = sum(v["class_error"] for v in per_micro) / len(per_micro)
    return {"class_error": errors, **combined}


def optimizer_step(
    ctx: TrainContext,
    micro_batches: Sequence[MicroBatch],
    seeds: Sequence[int] | None = None,
) -> dict[str, float]:
    """One optimizer step over the K micro-batches of this rank; returns the logged values.

    `seeds` (one per micro-batch, see micro_batch_seed) make the step's noise reproducible.
    Raises NonFiniteLossError before any weight changes if a loss is not finite.
    """
    num_boxes = count_boxes(micro_batches, ctx.device, ctx.world_size)
    # Not zeroed in place: that keeps the gradients alive through the forward (+72 MiB peak RSS
    # with ResNet-50 at 256 px), and is no faster once tbx_train/allocator.py makes re-allocating
    # them fault-free.
    ctx.optimizer.zero_grad(set_to_none=True)
    last = len(micro_batches) - 1
    per_micro = [
        _micro_step(ctx, batch, num_boxes, k == last, seeds[k] if seeds else None)
        for k, batch in enumerate(micro_batches)
    ]
    if ctx.scaler is not None:
        ctx.scaler.unscale_(ctx.optimizer)
    if ctx.clip_max_norm > 0:
        nn.utils.clip_grad_norm_(ctx.model.parameters(), ctx.clip_max_norm)
    if ctx.scaler is not None:
        ctx.scaler.step(ctx.optimizer)
        ctx.scaler.update()
    else:
        ctx.optimizer.step()
    if ctx.ema is not None:
        ctx.ema.update(getattr(ctx.model, "module", ctx.model))
    return _combine(per_micro)


def _grouped(batches: Iterator[MicroBatch], size: int) -> Iterator[list[MicroBatch]]:
    """Consecutive groups of `size` micro-batches (a short tail group is dropped)."""
    while True:
        group = [batch for _, batch in zip(range(size), batches, strict=False)]
        if len(group) < size:
            return
        yield group


@dataclass
class EpochPlan:
    """Where an epoch starts and when it must stop early."""

    epoch: int
    iterations: int  # micro-batches per epoch for this rank
    grad_accum: int = 1
    start_iteration: int = 0
    global_step: int = 0
    max_steps: int | None = None
    stop_requested: Callable[[], str | None] = field(default=lambda: None)  # signal name


def train_one_epoch(
    ctx: TrainContext, batches: Iterable[MicroBatch], plan: EpochPlan, logger: MetricLogger
) -> EpochResult:
    """Run optimizer steps over `batches` (this rank's micro-batches from plan.start_iteration).

    Stops after the step that reaches `max_steps` or that finds `stop_requested()` true.
    """
    ctx.model.train()
    ctx.criterion.train()
    logger.start(f"Epoch: [{plan.epoch}]", plan.iterations)
    index, step, reason = plan.start_iteration - 1, plan.global_step, None
    for group in _grouped(iter(batches), plan.grad_accum):
        logger.mark_data(len(group))
        group = [to_device(b, ctx.device) for b in group]
        seeds = [
            micro_batch_seed(
                ctx.seed,
                plan.epoch,
                global_micro_batch(index + 1 + k, plan.grad_accum, ctx.world_size, ctx.rank),
            )
            for k in range(len(group))
        ]
        try:
            values = optimizer_step(ctx, group, seeds)
        except NonFiniteLossError as error:
            # DINO's guard lines; the weights and the last checkpoint are untouched.
            logger.write(f"Loss is {error.loss_value}, stopping training")
            logger.write(str(error.terms))
            raise
        index, step = index + len(group), step + 1
        logger.update(lr=ctx.optimizer.param_groups[0]["lr"], **values)
        logger.tick(index, len(group))
        if plan.max_steps is not None and step >= plan.max_steps:
            reason = "max_steps"
        elif plan.stop_requested():
            reason = "stop_requested"
        if reason:
            break
    completed = index + 1 >= plan.iterations
    if completed:
        logger.finish()
        logger.write(logger.averaged_line())
    stats = logger.global_averages()
    return EpochResult(stats, step, index + 1, completed, None if completed else reason)


@dataclass
class EvalResult:
    """Test-pass meters, and on rank 0 the COCO table numbers and FROC."""

    stats: dict[str, float]  # meter means (log.txt test_*)
    coco_stats: list[float] | None  # the 12 numbers of the pycocotools table, in table order
    froc: dict[str, object] = field(default_factory=dict)  # evaluation.FrocResult.as_dict()
    predictions: dict[int, dict[str, Tensor]] = field(default_factory=dict)


def _gather_predictions(local: dict[int, dict[str, Tensor]]) -> dict[int, dict[str, Tensor]]:
    """Every rank's predictions merged (all ranks get them; only rank 0 scores them)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return local
    gathered: list[dict[int, dict[str, Tensor]] | None] = [
        None
    ] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, local)
    merged: dict[int, dict[str, Tensor]] = {}
    for part in gathered:
        merged.update(part or {})
    return merged


def _reduce_meters(logger: MetricLogger) -> None:
    """Turn each meter's global mean into the mean over every rank's batches (one collective).

    Validation shards may differ in length by one batch (or be empty), so the ranks cannot meet
    in a collective per batch; they exchange (total, count) per meter once, after the pass.
    The windowed medians of the printed lines stay this rank's own, as in DINO.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    local = {name: (m.total, m.count) for name, m in logger.meters.items()}
    gathered: list[dict[str, tuple[float, int]] | None] = [
        None
    ] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, local)
    for name in sorted({name for part in gathered for name in part or {}}):
        meter = logger.meters.setdefault(name, SmoothedValue())
        parts = [part[name] for part in gathered if part and name in part]
        meter.total, meter.count = sum(t for t, _ in parts), sum(c for _, c in parts)


def _eval_batch(
    ctx: TrainContext, model: nn.Module, postprocessor: nn.Module, batch: MicroBatch
) -> tuple[dict[str, float], dict[int, dict[str, Tensor]]]:
    """Losses (no denoising: no targets go into the model) and detections of one batch.

    The values are this rank's own: no collective per batch (see _reduce_meters).
    """
    images, masks, targets = to_device(batch, ctx.device)
    # Always fp32, whatever training's autocast: AP must not depend on the training precision.
    outputs = model(images, masks)
    loss_dict = ctx.criterion(outputs, targets)
    terms = weighted_terms(loss_dict, ctx.criterion.weight_dict)
    values = {name: float(v) for name, v in {"loss": sum(terms.values()), **terms}.items()}
    class_error = float(loss_dict.get("class_error", torch.tensor(0.0)))
    orig_sizes = torch.stack([t["orig_size"] for t in targets])
    results = postprocessor(outputs, orig_sizes)
    detections = {
        int(t["image_id"]): {k: v.float().cpu() for k, v in r.items()}
        for t, r in zip(targets, results, strict=True)
    }
    return {"class_error": class_error, **values}, detections


@torch.no_grad()
def evaluate(
    ctx: TrainContext,
    postprocessor: nn.Module,
    batches: Iterable[MicroBatch],
    iterations: int,
    logger: MetricLogger,
    score: Callable[[dict[int, dict[str, Tensor]]], tuple[list[float], dict[str, object]]]
    | None = None,
    is_main: bool = True,
    module: nn.Module | None = None,
) -> EvalResult:
    """The `Test:` pass over this rank's share of the validation set, in fp32.

    `score(predictions) -> (12 COCO stats, FROC)` runs on the main rank only (it prints the
    pycocotools table); predictions are {image_id: {scores [K], labels [K], boxes [K,4] abs xyxy}}.
    `module` evaluates other weights than the trained model's (the EMA copy).
    """
    # The bare module: DDP's forward may broadcast buffers, a collective that a rank with
    # fewer (or no) validation batches would never join. No gradients, so no DDP needed.
    model = module if module is not None else getattr(ctx.model, "module", ctx.model)
    model.eval()
    ctx.model.eval()
    ctx.criterion.eval()
    logger.start("Test:", iterations)
    predictions: dict[int, dict[str, Tensor]] = {}
    for index, batch in enumerate(batches):
        logger.mark_data()
        values, detections = _eval_batch(ctx, model, postprocessor, batch)
        predictions.update(detections)
        logger.update(**values)
        logger.tick(index)
    logger.finish()
    _reduce_meters(logger)
    logger.write(logger.averaged_line())
    predictions = _gather_predictions(predictions)
    coco_stats, froc = (None, {})
    if is_main and score is not None:
        coco_stats, froc = score(predictions)
    return EvalResult(logger.global_averages(), coco_stats, froc, predictions)
