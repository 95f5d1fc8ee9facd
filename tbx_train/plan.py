"""Decide what a run will do before any GPU time is spent: fresh, pretrained, or resume.

`decide_plan(request)` reads the candidate checkpoint, checks that continuing it trains
something with the same strategy and model, and returns a frozen `RunPlan`; anything that cannot
work raises `PlanRefused` whose message names both sides and the fix. Rules:

- `--resume auto` (default): the newest usable checkpoint in the run's own `--output-dir`
  (`checkpoint.pth` first, which carries a mid-epoch save; then `checkpointNNNN.pth`, newest epoch
  first, when `checkpoint.pth` is absent or unreadable). Never a checkpoint found elsewhere.
  `--resume never`: ignore the output dir. `--resume PATH`: that file, and it must be usable.
- Nothing to resume: `--pretrained PATH` gives mode `pretrained`, otherwise `fresh`.
- Refused: a fresh run of a ResNet with a frozen stem and neither `--backbone-weights` nor
  `--pretrained` (the frozen random stem and layer1 would never learn); zero epochs left; a
  different batch size, grad-accum, world size or effective batch (unless
  `allow_strategy_change`); a different class count or model shape; an explicit
  `--resume PATH` together with a `--pretrained PATH` the resumed run did not start from.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tbx_train.checkpoint import (
    CheckpointCorruptError,
    CheckpointError,
    epoch_checkpoints,
    latest_path,
    load_checkpoint,
)
from tbx_train.config import ModelConfig, RunConfig
from tbx_train.config_check import config_differences
from tbx_train.config_files import config_dict
from tbx_train.plan_checks import (
    PlanRefused,
    SourceFacts,
    check_epochs_left,
    check_model,
    check_pretrained_agrees,
    check_strategy,
    read_source_facts,
)

Mode = Literal["fresh", "pretrained", "resume"]

__all__ = [
    "PlanRefused",
    "PlanRequest",
    "RunPlan",
    "decide_plan",
    "format_decision_line",
    "format_plan_line",
    "format_plan_report",
    "plan_log_lines",
    "request_from_config",
]


@dataclass(frozen=True)
class PlanRequest:
    """What the user asked for (CLI options resolved against presets and the launcher)."""

    output_dir: Path
    epochs: int
    batch_size: int
    grad_accum: int
    world_size: int
    model: ModelConfig
    resume: str = "auto"  # "auto" | "never" | a checkpoint path
    pretrained: Path | None = None
    allow_strategy_change: bool = False
    lr_drops: tuple[int, ...] = ()  # epochs at which the schedule divides the rates by ten
    multi_step: bool = False  # lr_drops come from --lr-drop-epochs (else StepLR(lr_drop))
    config: Mapping[str, Any] | None = None  # {section.field: value}, compared on resume

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accum * self.world_size


@dataclass(frozen=True)
class RunPlan:
    """The decision: where the weights come from and which epochs/iterations run."""

    mode: Mode
    source: Path | None
    source_kind: str | None  # "tbx-train" | "official-dino" | None
    source_epoch: int | None  # last completed epoch of the source, 0-based
    start_epoch: int
    start_iteration: int  # > 0 only when continuing a mid-epoch save
    epochs: int
    batch_size: int
    grad_accum: int
    world_size: int
    source_strategy: Mapping[str, int] | None = None
    strategy_change: str | None = None  # set when allow_strategy_change accepted a change
    notes: tuple[str, ...] = field(default=())  # why this source was chosen
    warnings: tuple[str, ...] = field(default=())  # runnable, but probably not what was meant

    @property
    def epochs_to_run(self) -> int:
        return max(0, self.epochs - self.start_epoch)

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accum * self.world_size


def request_from_config(config: RunConfig, world_size: int) -> PlanRequest:
    """The plan request of a run: its strategy and model, with the launcher's world size."""
    train = config.train
    return PlanRequest(
        output_dir=Path(train.output_dir),
        epochs=train.epochs,
        batch_size=train.batch_size,
        grad_accum=train.grad_accum,
        world_size=world_size,
        model=config.model,
        resume=train.resume,
        pretrained=Path(train.pretrained) if train.pretrained else None,
        allow_strategy_change=train.allow_strategy_change,
        lr_drops=tuple(train.lr_drops()),
        multi_step=bool(train.lr_drop_epochs),
        config={
            f"{section}.{name}": value
            for section, part in config_dict(config).items()
            if isinstance(part, dict)
            for name, value in part.items()
        },
    )


def decide_plan(request: PlanRequest) -> RunPlan:
    """Return the plan for `request`, or raise PlanRefused (message: reason. Fix: fix)."""
    _check_request(request)
    resume_path, payload, notes = _resume_candidate(request)
    if resume_path is None or payload is None:
        return _start_plan(request, notes)
    facts = read_source_facts(resume_path, payload)
    check_pretrained_agrees(request, facts)
    check_epochs_left(request, facts)
    check_model(request, facts)
    change = check_strategy(request, facts)
    differences = check_config(request, facts, payload)
    if request.pretrained is not None and request.resume == "auto":
        notes += (f"--pretrained {request.pretrained} not used: the resumed weights replace it",)
    return _resume_plan(request, facts, change, notes, differences)


def check_config(
    request: PlanRequest, facts: SourceFacts, payload: Mapping[str, Any]
) -> tuple[str, ...]:
    """Refuse differences the saved state cannot take; return the others as warning lines."""
    differences = config_differences(payload, request.config or {})
    refused = [d for d in differences if d.severity == "refuse"]
    if refused:
        sets = " ".join(f"--set {d.key}={json.dumps(d.saved)}" for d in refused)
        raise PlanRefused(
            f"checkpoint {facts.path} ({facts.kind}) was saved with another config: "
            + "; ".join(d.line() for d in refused),
            f"resume with the checkpoint's values ({sets}; or its run folder's config.toml: "
            "--config config.toml), or load the tensors that fit with " + _fresh_fix(facts.path),
        )
    return tuple(f"config differs from the checkpoint's: {d.line()}" for d in differences)


def _fresh_fix(path: Path) -> str:
    return f"--pretrained {path} --resume never with a new --output-dir"


def _check_request(request: PlanRequest) -> None:
    for name in ("epochs", "batch_size", "grad_accum", "world_size"):
        if getattr(request, name) < 1:
            raise ValueError(f"{name}={getattr(request, name)} must be >= 1")
    if request.pretrained is not None and not Path(request.pretrained).is_file():
        raise PlanRefused(
            f"--pretrained {request.pretrained} does not exist",
            "pass the path of an existing checkpoint (e.g. checkpoint0011_4scale.pth)",
        )
    weights = request.model.backbone_weights
    if weights is not None and not Path(weights).is_file():
        raise PlanRefused(
            f"--backbone-weights {weights} does not exist",
            "pass a local torchvision ImageNet ResNet state dict (e.g. resnet50-0676ba61.pth)",
        )


def _check_backbone_learns(request: PlanRequest) -> None:
    """A fresh start needs weights for the frozen part of the backbone."""
    model = request.model
    if model.freeze_stem and model.backbone_weights is None:
        raise PlanRefused(
            f"a fresh run with a randomly initialised {model.backbone} whose stem and layer1 are "
            "frozen (model.freeze_stem) would never train them: its low-level features stay noise",
            "pass --backbone-weights FILE (ImageNet ResNet state dict) or --pretrained "
            "CHECKPOINT, or --set model.freeze_stem=false to train the whole backbone from scratch",
        )


def schedule_warnings(request: PlanRequest) -> tuple[str, ...]:
    """A StepLR that drops more than once is rarely meant (`--epochs 50` with lr_drop 11)."""
    if request.multi_step or len(request.lr_drops) <= 1:
        return ()
    drops = ", ".join(str(epoch) for epoch in request.lr_drops)
    return (
        f"StepLR(lr_drop={request.lr_drops[0]}) over {request.epochs} epochs divides the learning "
        f"rate by ten {len(request.lr_drops)} times (before epochs {drops}); for one drop set "
        "--lr-drop (e.g. 30 of 50), or list the drops with --lr-drop-epochs",
    )


Candidate = tuple[Path | None, dict[str, Any] | None, tuple[str, ...]]


def _resume_candidate(request: PlanRequest) -> Candidate:
    """The checkpoint to resume from (path and payload, or None) and how it was chosen."""
    if request.resume == "never":
        return None, None, ("--resume never: checkpoints in the output dir are ignored",)
    if request.resume != "auto":
        path = Path(request.resume)
        if not path.is_file():
            raise PlanRefused(
                f"--resume {path} does not exist",
                "pass an existing checkpoint, or --resume auto to use the output dir's own",
            )
        return path, load_checkpoint(path), (f"--resume {path} given explicitly",)
    return _auto_candidate(Path(request.output_dir))


def _auto_candidate(output_dir: Path) -> Candidate:
    notes: list[str] = []
    candidates = [latest_path(output_dir)] + [p for _, p in epoch_checkpoints(output_dir)]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            payload = load_checkpoint(path)
        except CheckpointCorruptError as exc:
            notes.append(f"skipped unreadable {path}: {exc}")
            continue
        except CheckpointError as exc:
            raise PlanRefused(
                f"--resume auto found {path} in --output-dir {output_dir} but cannot use it: {exc}",
                "use a new --output-dir, or --resume never to start over in this one",
            ) from exc
        notes.append(f"--resume auto: newest usable checkpoint in {output_dir} is {path.name}")
        return path, payload, tuple(notes)
    if notes:  # checkpoints exist but none is readable: starting over would overwrite them
        raise PlanRefused(
            f"--resume auto found checkpoints in {output_dir} but none is readable: "
            + "; ".join(notes),
            "pass --resume PATH with a good copy, or --resume never to start over in this "
            "directory (its checkpoints will be overwritten)",
        )
    return None, None, (f"--resume auto: no checkpoint in {output_dir}",)


def _start_plan(request: PlanRequest, notes: tuple[str, ...]) -> RunPlan:
    source_epoch = None
    kind = None
    if request.pretrained is None:
        _check_backbone_learns(request)
    else:
        facts = read_source_facts(request.pretrained, load_checkpoint(request.pretrained))
        source_epoch, kind = facts.epoch, facts.kind
    return _make_plan(
        request,
        mode="pretrained" if request.pretrained is not None else "fresh",
        source=request.pretrained,
        source_kind=kind,
        source_epoch=source_epoch,
        start_epoch=0,
        start_iteration=0,
        notes=notes,
    )


def _resume_plan(
    request: PlanRequest,
    facts: SourceFacts,
    change: str | None,
    notes: tuple[str, ...],
    differences: tuple[str, ...] = (),
) -> RunPlan:
    return _make_plan(
        request,
        mode="resume",
        source=facts.path,
        source_kind=facts.kind,
        source_epoch=facts.epoch,
        start_epoch=facts.epoch + 1,
        start_iteration=facts.next_iteration,
        source_strategy=facts.strategy,
        strategy_change=change,
        notes=notes,
        extra_warnings=differences,
    )


def _make_plan(
    request: PlanRequest, extra_warnings: tuple[str, ...] = (), **fields: Any
) -> RunPlan:
    """A RunPlan with the request's epochs and strategy (the run's side of every plan)."""
    return RunPlan(
        epochs=request.epochs,
        batch_size=request.batch_size,
        grad_accum=request.grad_accum,
        world_size=request.world_size,
        warnings=schedule_warnings(request) + extra_warnings,
        **fields,
    )


def format_plan_line(plan: RunPlan) -> str:
    """The one `Run plan:` line of the log contract (key=value, space separated)."""
    source = shlex.quote(str(plan.source)) if plan.source is not None else "-"
    source_epoch = "-" if plan.source_epoch is None else str(plan.source_epoch)
    return (
        f"Run plan: mode={plan.mode} source={source} source_epoch={source_epoch} "
        f"start_epoch={plan.start_epoch} epochs={plan.epochs} epochs_to_run={plan.epochs_to_run} "
        f"batch_size={plan.batch_size} grad_accum={plan.grad_accum} "
        f"world_size={plan.world_size} effective_batch={plan.effective_batch}"
    )


def format_decision_line(plan: RunPlan) -> str:
    """`Training from scratch` | `Using pretrained weights: PATH` | `Resuming from checkpoint: ...`.

    A mid-epoch resume names the epoch being continued and the micro-batch it continues at.
    """
    if plan.mode == "fresh":
        return "Training from scratch"
    if plan.mode == "pretrained":
        return f"Using pretrained weights: {plan.source}"
    if plan.start_iteration:
        return (
            f"Resuming from checkpoint: {plan.source} "
            f"(epoch {plan.start_epoch}, iteration {plan.start_iteration})"
        )
    return f"Resuming from checkpoint: {plan.source} (epoch {plan.source_epoch})"


def plan_log_lines(plan: RunPlan) -> list[str]:
    """What `run` prints before `Start training`: the decision, any strategy change, the plan."""
    lines = [format_decision_line(plan), *(f"Warning: {w}" for w in plan.warnings)]
    if plan.strategy_change:
        lines.append(f"Strategy change accepted (--allow-strategy-change): {plan.strategy_change}")
    lines.append(format_plan_line(plan))
    return lines


def format_plan_report(plan: RunPlan) -> str:
    """A multi-line account of the plan for people (`tbx-train plan`)."""
    lines = [f"Mode:        {plan.mode}", f"Source:      {plan.source or '-'}"]
    if plan.source is not None:
        lines.append(f"Source kind: {plan.source_kind}, last completed epoch {plan.source_epoch}")
    position = f"epoch {plan.start_epoch}"
    if plan.start_iteration:
        position += f", micro-batch {plan.start_iteration} (mid-epoch save)"
    lines += [
        f"Start at:    {position}",
        f"Epochs:      {plan.epochs} planned, {plan.epochs_to_run} to run in this job's plan",
        f"Strategy:    {_strategy_text(plan)}",
    ]
    if plan.source_strategy is not None:
        lines.append(f"Checkpoint:  {_strategy_text(plan.source_strategy)}")
    if plan.strategy_change:
        lines.append(f"Change:      {plan.strategy_change}")
    lines += [f"Note:        {note}" for note in plan.notes]
    lines += [f"Warning:     {warning}" for warning in plan.warnings]
    lines.append(f"Verdict:     OK, {format_decision_line(plan)}")
    return "\n".join(lines)


def _strategy_text(source: RunPlan | Mapping[str, Any]) -> str:
    get = source.get if isinstance(source, Mapping) else lambda k: getattr(source, k)
    return (
        f"batch_size={get('batch_size')} per process x grad_accum={get('grad_accum')} x "
        f"world_size={get('world_size')} = effective batch {get('effective_batch')}"
    )
