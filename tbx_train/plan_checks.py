"""The refusals of the run plan: each check names both sides and the fix.

Kept apart from `plan.py` so each rule is one small function with its own message; the checks
read `SourceFacts`, a layout-independent summary of a tbx-train or official DINO checkpoint.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tbx_train.checkpoint import checkpoint_kind, model_state
from tbx_train.pretrained import CLASS_HEAD_KEY, num_classes_of

if TYPE_CHECKING:
    from tbx_train.plan import PlanRequest

# ModelConfig fields that change tensor shapes (and the official args of the same names).
SHAPE_FIELDS = (
    "backbone",
    "hidden_dim",
    "nheads",
    "dim_feedforward",
    "enc_layers",
    "dec_layers",
    "num_queries",
    "num_feature_levels",
    "enc_n_points",
    "dec_n_points",
    "dn_labelbook_size",
)
STRATEGY_FIELDS = ("batch_size", "grad_accum", "world_size", "effective_batch")


class PlanRefused(Exception):
    """The run cannot do what was asked; `reason` names both sides, `fix` says what to do."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(f"{reason}. Fix: {fix}")
        self.reason = reason
        self.fix = fix

    def line(self) -> str:
        """The log contract's `Run plan refused: <reason>. Fix: <fix>` line."""
        return f"Run plan refused: {self}"


@dataclass(frozen=True)
class SourceFacts:
    """What the plan needs to know about a checkpoint, whichever layout it has."""

    path: Path
    kind: str  # "tbx-train" | "official-dino"
    epoch: int  # last completed epoch, 0-based (-1: none)
    next_iteration: int
    completed: bool
    epochs_planned: int | None
    strategy: Mapping[str, int]
    num_classes: int | None  # from the class head's shape
    model_fields: Mapping[str, Any]  # SHAPE_FIELDS the checkpoint records
    pretrained: str | None  # the --pretrained the checkpoint's run started from, if recorded


def read_source_facts(path: Path, payload: Mapping[str, Any]) -> SourceFacts:
    """Summarise a loaded checkpoint (tbx-train schema or official DINO with `args`)."""
    if checkpoint_kind(payload) == "tbx-train":
        return _tbx_facts(Path(path), payload)
    return _official_facts(Path(path), payload)


def _tbx_facts(path: Path, payload: Mapping[str, Any]) -> SourceFacts:
    config = payload.get("config") or {}
    model_config = config.get("model") or {}
    return SourceFacts(
        path=path,
        kind="tbx-train",
        epoch=int(payload["epoch"]),
        next_iteration=int(payload.get("next_iteration", 0)),
        completed=bool(payload.get("completed", False)),
        epochs_planned=payload.get("epochs_planned"),
        strategy=dict(payload["strategy"]),
        num_classes=num_classes_of(model_state(payload)),
        model_fields={k: v for k, v in model_config.items() if k in SHAPE_FIELDS},
        pretrained=(config.get("train") or {}).get("pretrained"),
    )


def _official_facts(path: Path, payload: Mapping[str, Any]) -> SourceFacts:
    args: argparse.Namespace = payload["args"]
    batch, world = int(getattr(args, "batch_size", 1)), int(getattr(args, "world_size", 1))
    # The official code has no gradient accumulation; the DINO_TBX11K fork records its own.
    accum = int(getattr(args, "gradient_accumulation_steps", None) or 1)
    return SourceFacts(
        path=path,
        kind="official-dino",
        epoch=int(payload["epoch"]),
        next_iteration=0,
        completed=False,  # the official code records no such flag
        epochs_planned=getattr(args, "epochs", None),
        strategy={
            "batch_size": batch,
            "grad_accum": accum,
            "world_size": world,
            "effective_batch": batch * accum * world,
        },
        num_classes=num_classes_of(model_state(payload)),
        model_fields={k: getattr(args, k) for k in SHAPE_FIELDS if hasattr(args, k)},
        pretrained=getattr(args, "pretrain_model_path", None),
    )


def _fresh_fix(path: Path) -> str:
    return f"--pretrained {path} --resume never with a new --output-dir"


def check_epochs_left(request: PlanRequest, facts: SourceFacts) -> None:
    """Refuse a resume that would train zero epochs (the immediate-exit incident)."""
    planned = facts.epochs_planned
    if facts.completed and (planned is None or request.epochs <= planned):
        raise PlanRefused(
            f"checkpoint {facts.path} is marked completed: its run trained all {planned} planned "
            f"epochs (last completed epoch {facts.epoch}, 0-based), and --epochs "
            f"{request.epochs} asks for no more",
            f"to train longer pass --epochs N with N > {planned} (the LR schedule continues "
            f"from the saved scheduler); to start a new run from these weights use "
            + _fresh_fix(facts.path),
        )
    start = facts.epoch + 1
    if start >= request.epochs:
        raise PlanRefused(
            f"checkpoint {facts.path} finished epoch {facts.epoch} (0-based), so start_epoch = "
            f"{facts.epoch} + 1 = {start} >= --epochs {request.epochs}: "
            f"{max(0, request.epochs - start)} epochs left to train",
            f"pass --epochs N with N > {start} to train more epochs from it, or start a new run "
            "from its weights: " + _fresh_fix(facts.path),
        )


def check_model(request: PlanRequest, facts: SourceFacts) -> None:
    """Refuse a resume into a model with another class count or any other tensor shape."""
    wanted = request.model.num_classes
    if facts.num_classes is not None and facts.num_classes != wanted:
        raise PlanRefused(
            f"checkpoint {facts.path} was trained with num_classes={facts.num_classes} "
            f"({CLASS_HEAD_KEY} has {facts.num_classes} rows); this run's model has "
            f"num_classes={wanted}, and a resume needs the same model",
            "start from its weights with re-initialised class heads instead: "
            + _fresh_fix(facts.path),
        )
    ours = asdict(request.model)
    differ = [
        f"{name}={value!r} (this run: {ours[name]!r})"
        for name, value in facts.model_fields.items()
        if name in ours and value != ours[name]
    ]
    if differ:
        raise PlanRefused(
            f"checkpoint {facts.path} ({facts.kind}) has a different model shape: "
            + ", ".join(differ),
            "resume with the checkpoint's model settings (--set model.FIELD=VALUE), or load the "
            "tensors "
            "that fit with " + _fresh_fix(facts.path),
        )


def check_strategy(request: PlanRequest, facts: SourceFacts) -> str | None:
    """None when the strategies match; the change's description when allowed; else refuse."""
    theirs = {k: int(facts.strategy[k]) for k in STRATEGY_FIELDS}
    ours = {k: int(getattr(request, k)) for k in STRATEGY_FIELDS}
    if theirs == ours:
        return None
    change = describe_strategy_change(theirs, ours)
    if request.allow_strategy_change:
        return change
    raise PlanRefused(
        f"checkpoint {facts.path} was trained with {_strategy(theirs)}; this run asks for "
        f"{_strategy(ours)}",
        f"resume with --batch-size {theirs['batch_size']} --grad-accum {theirs['grad_accum']} on "
        f"{theirs['world_size']} process(es), or pass --allow-strategy-change to accept the "
        f"change ({change}), or start a new run from its weights: " + _fresh_fix(facts.path),
    )


def _strategy(values: Mapping[str, int]) -> str:
    return (
        f"batch_size={values['batch_size']} grad_accum={values['grad_accum']} "
        f"world_size={values['world_size']} (effective batch {values['effective_batch']})"
    )


def describe_strategy_change(before: Mapping[str, int], after: Mapping[str, int]) -> str:
    """What a strategy change does to the optimizer steps and the epoch-counted LR schedule."""
    parts = ", ".join(
        f"{k} {before[k]} -> {after[k]}" for k in STRATEGY_FIELDS[:3] if before[k] != after[k]
    )
    old, new = before["effective_batch"], after["effective_batch"]
    if old == new:
        return (
            f"{parts}; effective batch unchanged ({new}): the same optimizer steps per epoch and "
            "the same LR schedule, only the split over processes and micro-batches differs"
        )
    return (
        f"{parts}; effective batch {old} -> {new}: optimizer steps per epoch scale by "
        f"{old}/{new}, StepLR counts epochs so the LR drops at the same epoch after "
        f"{old}/{new} as many steps, and the LR is not rescaled"
    )


def check_pretrained_agrees(request: PlanRequest, facts: SourceFacts) -> None:
    """An explicit --resume PATH with --pretrained P: allowed only when they are the same run."""
    if request.pretrained is None or request.resume in ("auto", "never"):
        return
    wanted = Path(request.pretrained).resolve()
    same_file = wanted == facts.path.resolve()
    started_from = facts.pretrained is not None and Path(facts.pretrained).resolve() == wanted
    if same_file or started_from:
        return
    origin = facts.pretrained or "no recorded pretrained weights"
    raise PlanRefused(
        f"--resume {facts.path} and --pretrained {request.pretrained} disagree: resuming "
        f"continues {facts.path.name}'s weights (its run started from {origin}), so the "
        "pretrained weights would be silently ignored",
        f"pass one of them: --resume {facts.path} to continue that run, or "
        f"--pretrained {request.pretrained} --resume never to start a new run",
    )
