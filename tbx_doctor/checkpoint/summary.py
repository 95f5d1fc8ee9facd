"""What a checkpoint holds, from its pickle alone: run progress, strategy, schedule and model shape.

Works on the tree that `archive.read_checkpoint` builds (tensors are `TensorInfo` metadata).
Formats: `tbx-train` (DESIGN 4.5), `official-dino` (IDEA-Research/DINO: model, optimizer,
lr_scheduler, epoch, args Namespace, optional ema_model), `detr-family` (the same layout from DETR,
Deformable DETR, DN/DAB-DETR), `unknown` (e.g. a bare state dict).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tbx_doctor.checkpoint.archive import RawCheckpoint, iter_tensors, read_checkpoint
from tbx_doctor.checkpoint.model_facts import ModelFacts, read_model_facts
from tbx_doctor.checkpoint.pickle_reader import ArgsRecord, TensorInfo
from tbx_doctor.errors import UnreadableInput

# Names forks of the official code use for gradient accumulation in args (official has none).
_ACCUM_ARG_NAMES = ("grad_accum", "accumulation_steps", "gradient_accumulation_steps", "accum_iter")


@dataclass(frozen=True)
class CheckpointSummary:
    """Facts read from one checkpoint file; None means "not recorded in this checkpoint".

    `epoch` is the last finished epoch, 0-based (-1: none finished). `unsafe_globals` non-empty
    means the pickle names code outside the allow-list and nothing else was read.
    """

    path: str
    file_size: int
    container: str  # "zip" (torch >= 1.6) | "legacy-pickle"
    format: str  # "tbx-train" | "official-dino" | "detr-family" | "unknown"
    unsafe_globals: tuple[str, ...] = ()
    top_level_keys: tuple[str, ...] = ()
    epoch: int | None = None
    epochs_planned: int | None = None
    completed: bool | None = None
    next_iteration: int | None = None  # > 0: saved mid-epoch, resume continues epoch + 1 there
    global_step: int | None = None  # recorded by tbx-train
    optimizer_steps: int | None = None  # from the optimizer state ('step' per parameter)
    steps_per_epoch: float | None = None  # optimizer_steps / finished epochs
    lr_step_size: int | None = None  # StepLR step_size (official: args.lr_drop)
    lr_milestones: tuple[int, ...] | None = None
    lr_gamma: float | None = None
    lr_last_epoch: int | None = None
    lrs: tuple[float, ...] = ()  # current lr per parameter group
    args_lr_drop: int | None = None
    batch_size: int | None = None  # per device
    world_size: int | None = None
    grad_accum: int | None = None
    effective_batch: int | None = None  # batch_size * world_size * (grad_accum or 1)
    num_classes: int | None = None  # from the class head's shape
    args_num_classes: int | None = None  # as recorded in args / config
    dn_labelbook_size: int | None = None
    num_queries: int | None = None
    model_keys: int = 0
    parameter_count: int | None = None  # unique elements in the model state dict
    trainable_parameter_count: int | None = None  # elements with optimizer moments (exp_avg)
    has_optimizer: bool = False
    has_lr_scheduler: bool = False
    has_ema: bool = False
    output_dir: str | None = None
    resume: str | None = None
    pretrained: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def is_safe(self) -> bool:
        return not self.unsafe_globals

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def summarize_checkpoint(path: Path) -> CheckpointSummary:
    """Read `path` without executing pickled code or loading tensor data.

    Raises InputNotFound / UnreadableInput (one-line reason) when it is not a readable checkpoint.
    """
    path = Path(path)
    raw = read_checkpoint(path)
    base = {"path": str(path), "file_size": path.stat().st_size, "container": raw.container}
    if raw.unsafe_globals:
        return CheckpointSummary(**base, format="unknown", unsafe_globals=tuple(raw.unsafe_globals))
    tree = raw.tree
    if not isinstance(tree, dict):
        raise UnreadableInput(f"{path}: not a checkpoint (top level is {type(tree).__name__})")
    if tree and all(isinstance(v, TensorInfo) for v in tree.values()):
        tree = {"model": tree}  # a bare state dict: weights only
    args = _args_of(tree)
    model = read_model_facts(tree.get("model"))
    fields = {
        **base,
        "format": _detect_format(tree, args, model),
        "top_level_keys": tuple(str(k) for k in raw.tree),
        **_progress(tree, args),
        **_optimizer_facts(raw, tree.get("optimizer")),
        **_schedule_facts(tree.get("lr_scheduler"), args),
        **_strategy(tree, args),
        **_model_fields(model, tree, args),
        **_provenance(args),
    }
    return _with_derived(CheckpointSummary(**fields), model)


def _args_of(tree: dict) -> dict[str, Any]:
    """Official `args` (Namespace or dict) or tbx-train's config flattened one level."""
    args = tree.get("args")
    if isinstance(args, ArgsRecord):
        return args.values
    if isinstance(args, dict):
        return args
    config = tree.get("config")
    if isinstance(config, dict):
        flat: dict[str, Any] = {}
        for section in config.values():
            if isinstance(section, dict):
                flat.update(section)
        flat.update({k: v for k, v in config.items() if not isinstance(v, dict)})
        return flat
    return {}


def _detect_format(tree: dict, args: dict, model: ModelFacts) -> str:
    if tree.get("format") == "tbx-train":
        return "tbx-train"
    if model.keys and "args" in tree:
        dino = model.has_key("label_enc.weight") or "dn_labelbook_size" in args
        return "official-dino" if dino else "detr-family"
    return "unknown"


def _int(value: object) -> int | None:
    return value if type(value) is int else None


def _number(value: object) -> float | None:
    """A finite int or float (a crafted or corrupt pickle may hold anything)."""
    if type(value) in (int, float) and math.isfinite(value):
        return float(value)
    return None


def _items(value: object) -> list:
    """Values of a dict or items of a list/tuple; [] for anything else."""
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, (list, tuple)) else []


def _progress(tree: dict, args: dict) -> dict[str, Any]:
    epoch = _int(tree.get("epoch"))
    if tree.get("format") == "tbx-train":
        completed = tree.get("completed")
        return {
            "epoch": epoch,
            "epochs_planned": _int(tree.get("epochs_planned")),
            "completed": completed if isinstance(completed, bool) else None,
            "next_iteration": _int(tree.get("next_iteration")),
            "global_step": _int(tree.get("global_step")),
        }
    planned = _int(args.get("epochs"))
    finished = epoch is not None and planned is not None and epoch >= planned - 1
    # Official code saves only at the end of an epoch, so there is no mid-epoch position.
    return {
        "epoch": epoch,
        "epochs_planned": planned,
        "completed": finished if planned is not None and epoch is not None else None,
        "next_iteration": 0 if epoch is not None else None,
    }


def _optimizer_facts(raw: RawCheckpoint, optimizer: object) -> dict[str, Any]:
    if not isinstance(optimizer, dict):
        return {"has_optimizer": False}
    groups = [g for g in _items(optimizer.get("param_groups")) if isinstance(g, dict)]
    lrs = tuple(lr for lr in (_number(g.get("lr")) for g in groups) if lr is not None)
    states = [s for s in _items(optimizer.get("state")) if isinstance(s, dict)]
    steps = [s["step"] for s in states if "step" in s]
    tensors = [s for s in steps if isinstance(s, TensorInfo)]
    values = [_number(v) for v in [*steps, *raw.read_scalars(tensors)]]
    known = [int(v) for v in values if v is not None]
    moments = [s["exp_avg"] for s in states if isinstance(s.get("exp_avg"), TensorInfo)]
    return {
        "has_optimizer": True,
        "lrs": lrs,
        "optimizer_steps": max(known) if known else None,
        "trainable_parameter_count": sum(t.numel for t in moments) if moments else None,
    }


def _schedule_facts(scheduler: object, args: dict) -> dict[str, Any]:
    facts: dict[str, Any] = {"args_lr_drop": _int(args.get("lr_drop"))}
    if not isinstance(scheduler, dict):
        return facts
    # MultiStepLR keeps milestones as a Counter {epoch: count}; keys are the epochs.
    milestones = scheduler.get("milestones")
    epochs = list(milestones) if isinstance(milestones, (dict, list, tuple)) else []
    facts.update(
        has_lr_scheduler=True,
        lr_step_size=_int(scheduler.get("step_size")),
        lr_milestones=tuple(sorted(e for e in epochs if type(e) is int)) if epochs else None,
        lr_gamma=_number(scheduler.get("gamma")),
        lr_last_epoch=_int(scheduler.get("last_epoch")),
    )
    return facts


def _strategy(tree: dict, args: dict) -> dict[str, Any]:
    recorded = tree.get("strategy") if tree.get("format") == "tbx-train" else None
    source = recorded if isinstance(recorded, dict) else args
    batch = _int(source.get("batch_size"))
    world = _int(source.get("world_size"))
    accum = next((_int(source[n]) for n in _ACCUM_ARG_NAMES if n in source), None)
    effective = _int(source.get("effective_batch"))
    if effective is None and batch is not None and world is not None:
        effective = batch * world * (accum or 1)
    return {
        "batch_size": batch,
        "world_size": world,
        "grad_accum": accum,
        "effective_batch": effective,
    }


def _model_fields(model: ModelFacts, tree: dict, args: dict) -> dict[str, Any]:
    ema = tree.get("ema") if tree.get("format") == "tbx-train" else tree.get("ema_model")
    return {
        "num_classes": model.num_classes,
        "args_num_classes": _int(args.get("num_classes")),
        "dn_labelbook_size": model.dn_labelbook_size,
        "num_queries": model.num_queries if model.num_queries else _int(args.get("num_queries")),
        "model_keys": len(model.keys),
        "parameter_count": model.parameter_count if model.keys else None,
        "has_ema": ema is not None and any(True for _ in iter_tensors(ema)),
    }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _provenance(args: dict) -> dict[str, Any]:
    pretrained = args.get("pretrain_model_path", args.get("pretrained"))
    return {
        "output_dir": _text(args.get("output_dir")),
        "resume": _text(args.get("resume")),
        "pretrained": _text(pretrained),
    }


def _with_derived(summary: CheckpointSummary, model: ModelFacts) -> CheckpointSummary:
    """Fill steps per epoch and collect notes where two records of one fact disagree."""
    notes = list(model.notes)
    steps, epoch = summary.optimizer_steps, summary.epoch
    per_epoch = None
    if summary.next_iteration and summary.grad_accum and steps is not None:
        steps -= summary.next_iteration // summary.grad_accum  # steps of the unfinished epoch
    elif summary.next_iteration:
        steps = None  # the unfinished epoch's share of the steps is unknown
    if steps is not None and epoch is not None and epoch >= 0:
        per_epoch = steps / (epoch + 1)
    if summary.args_num_classes not in (None, summary.num_classes) and summary.num_classes:
        notes.append(
            f"args say num_classes={summary.args_num_classes} but the class head has "
            f"{summary.num_classes} outputs; the head's shape is what a strict load needs"
        )
    lr_drop, step_size = summary.args_lr_drop, summary.lr_step_size
    if lr_drop is not None and step_size not in (None, lr_drop):
        notes.append(
            f"args say lr_drop={summary.args_lr_drop} but the saved StepLR has step_size="
            f"{summary.lr_step_size}; a resumed run keeps the saved scheduler"
        )
    recorded, counted = summary.global_step, summary.optimizer_steps
    if recorded is not None and counted not in (None, recorded):
        notes.append(
            f"global_step={summary.global_step} but the optimizer state counts "
            f"{summary.optimizer_steps} steps"
        )
    return replace(summary, steps_per_epoch=per_epoch, notes=tuple(notes))
