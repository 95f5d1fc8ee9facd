"""What resuming a checkpoint with a given plan would do: epochs, strategy, class count.

The epoch arithmetic is the official loop's: `start_epoch = epoch + 1`, then
`range(start_epoch, epochs)`; a checkpoint saved mid-epoch (tbx-train, `next_iteration` k > 0)
continues epoch `epoch + 1` at micro-batch k. Strategies are compatible when the effective batch
(images per optimizer step = batch_size x world_size x grad_accum) is the same: 1 GPU x
accumulation k and k GPUs x 1 give the same updates (DESIGN 5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tbx_doctor.checkpoint.summary import CheckpointSummary

_PRETRAINED_FIX = (
    "use it as pretrained weights instead (official DINO: --pretrain_model_path CKPT "
    "--finetune_ignore label_enc.weight class_embed), not as a resume"
)


@dataclass(frozen=True)
class StrategyDifference:
    """One strategy field whose planned value differs from the checkpoint's."""

    field: str
    checkpoint: int | None
    planned: int


@dataclass(frozen=True)
class ResumePrediction:
    """The verdict facts; `None` in a *_compatible / trains field means "cannot tell"."""

    plan_given: bool
    epochs: int | None
    start_epoch: int | None
    start_iteration: int
    first_epoch: int | None  # first epoch trained (0-based), None when nothing would train
    last_epoch: int | None
    epochs_to_run: int | None
    trains: bool | None
    arithmetic: str
    strategy_compatible: bool | None
    strategy_differences: tuple[StrategyDifference, ...]
    strategy_explanation: str
    classes_compatible: bool | None
    classes_explanation: str

    @property
    def problems(self) -> bool:
        """Resuming would train nothing, or cross an incompatible strategy or class count."""
        verdicts = (self.trains, self.strategy_compatible, self.classes_compatible)
        return any(v is False for v in verdicts)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["strategy_differences"] = [asdict(d) for d in self.strategy_differences]
        return data


def predict_resume(
    summary: CheckpointSummary,
    epochs: int | None = None,
    batch_size: int | None = None,
    grad_accum: int | None = None,
    world_size: int | None = None,
    num_classes: int | None = None,
) -> ResumePrediction:
    """Predict a resume of `summary` with the planned values; None = keep the checkpoint's."""
    given = any(v is not None for v in (epochs, batch_size, grad_accum, world_size, num_classes))
    planned_epochs = epochs if epochs is not None else summary.epochs_planned
    epoch_facts = _epochs(summary, planned_epochs, from_plan=epochs is not None)
    strategy = _strategy(summary, batch_size, grad_accum, world_size)
    classes = _classes(summary, num_classes)
    return ResumePrediction(given, planned_epochs, *epoch_facts, *strategy, *classes)


_EpochFacts = tuple[int | None, int, int | None, int | None, int | None, bool | None, str]


def _epochs(summary: CheckpointSummary, epochs: int | None, from_plan: bool) -> _EpochFacts:
    """(start_epoch, start_iteration, first, last, to_run, trains, arithmetic)."""
    iteration = summary.next_iteration or 0
    if summary.epoch is None:
        return None, iteration, None, None, None, None, "the checkpoint records no epoch"
    start = summary.epoch + 1
    source = "planned" if from_plan else "recorded in the checkpoint"
    if epochs is None:
        text = f"start_epoch = {summary.epoch} + 1 = {start}; epochs not recorded: pass --epochs"
        return start, iteration, None, None, None, None, text
    to_run = max(0, epochs - start)
    head = f"last finished epoch {summary.epoch} (0-based) -> start_epoch = {summary.epoch} + 1"
    head += f" = {start}" + (f", continued at micro-batch {iteration}" if iteration else "")
    if to_run == 0:
        text = (
            f"{head}; epochs = {epochs} ({source}); range({start}, {epochs}) is empty: "
            f"0 epochs to run. To train more pass --epochs greater than {start} "
            f"(e.g. --epochs {start + 10} trains epochs {start}..{start + 9}), or {_PRETRAINED_FIX}"
        )
        return start, iteration, None, None, 0, False, text
    text = (
        f"{head}; epochs = {epochs} ({source}); range({start}, {epochs}) trains epochs "
        f"{start}..{epochs - 1} ({to_run} epoch{'s' if to_run > 1 else ''})"
    )
    return start, iteration, start, epochs - 1, to_run, True, text


def _strategy(
    summary: CheckpointSummary, batch: int | None, accum: int | None, world: int | None
) -> tuple[bool | None, tuple[StrategyDifference, ...], str]:
    saved_accum = summary.grad_accum
    accum_note = ""
    if saved_accum is None:
        # The official code has no gradient accumulation, so an unrecorded value means 1 there.
        saved_accum = 1
        accum_note = " (grad_accum not recorded: taken as 1; the official code has none)"
    saved = {"batch_size": summary.batch_size, "world_size": summary.world_size}
    saved["grad_accum"] = saved_accum
    if summary.batch_size is None or summary.world_size is None:
        return None, (), "the checkpoint does not record batch size and world size: cannot compare"
    planned = {
        "batch_size": batch if batch is not None else saved["batch_size"],
        "world_size": world if world is not None else saved["world_size"],
        "grad_accum": accum if accum is not None else saved_accum,
    }
    differences = tuple(
        StrategyDifference(name, saved[name], planned[name])
        for name in ("batch_size", "world_size", "grad_accum")
        if planned[name] != saved[name]
    )
    old_eff = saved["batch_size"] * saved["world_size"] * saved_accum
    new_eff = planned["batch_size"] * planned["world_size"] * planned["grad_accum"]
    if old_eff != new_eff:
        text = _mismatch_text(summary, differences, old_eff, new_eff) + accum_note
        return False, differences, text
    if differences:
        changed = ", ".join(f"{d.field} {d.checkpoint} -> {d.planned}" for d in differences)
        text = f"{changed}: same effective batch {new_eff}, so updates are equivalent{accum_note}"
        return True, differences, text
    return True, (), f"same strategy: effective batch {new_eff}{accum_note}"


def _mismatch_text(
    summary: CheckpointSummary, differences: tuple[StrategyDifference, ...], old: int, new: int
) -> str:
    changed = ", ".join(f"{d.field} {d.checkpoint} -> {d.planned}" for d in differences)
    text = (
        f"{changed}: effective batch {old} -> {new} images per optimizer step; the saved AdamW "
        f"moments and lr schedule were built for {old}"
    )
    if summary.steps_per_epoch:
        new_steps = summary.steps_per_epoch * old / new
        text += f", and optimizer steps per epoch change from {summary.steps_per_epoch:g} to "
        text += f"{new_steps:g}"
    return text + ". Resume with the saved strategy, or start anew with it as pretrained weights."


def _classes(summary: CheckpointSummary, planned: int | None) -> tuple[bool | None, str]:
    saved = summary.num_classes if summary.num_classes is not None else summary.args_num_classes
    if planned is None:
        return None, "no class count planned" if saved is None else f"{saved} classes (kept)"
    if saved is None:
        return None, f"the checkpoint records no class count; planned {planned}"
    if saved == planned:
        return True, f"same class count: {saved}"
    return False, (
        f"the checkpoint's class head has {saved} outputs, the plan has {planned}: a strict "
        f"resume fails on class_embed.*; {_PRETRAINED_FIX}"
    )
