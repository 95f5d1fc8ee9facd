"""predict_resume: epoch arithmetic, strategy and class-count verdicts (pure logic)."""

import pytest

from tbx_doctor.checkpoint import CheckpointSummary, StrategyDifference, predict_resume


def _summary(**fields: object) -> CheckpointSummary:
    base = {
        "path": "c.pth",
        "file_size": 1,
        "container": "zip",
        "format": "official-dino",
        "epoch": 49,
        "epochs_planned": 50,
        "next_iteration": 0,
        "batch_size": 1,
        "world_size": 1,
        "grad_accum": None,
        "num_classes": 4,
        "steps_per_epoch": 6888.0,
    }
    base.update(fields)
    return CheckpointSummary(**base)


def test_incident_finished_checkpoint_trains_nothing() -> None:
    p = predict_resume(_summary(), epochs=50)
    assert (p.start_epoch, p.epochs_to_run, p.trains, p.first_epoch) == (50, 0, False, None)
    assert p.arithmetic.startswith(
        "last finished epoch 49 (0-based) -> start_epoch = 49 + 1 = 50; epochs = 50 (planned); "
        "range(50, 50) is empty: 0 epochs to run."
    )
    assert p.problems


def test_more_epochs_train_the_rest() -> None:
    p = predict_resume(_summary(), epochs=60)
    assert (p.first_epoch, p.last_epoch, p.epochs_to_run, p.trains) == (50, 59, 10, True)
    assert "range(50, 60) trains epochs 50..59 (10 epochs)" in p.arithmetic
    assert not p.problems


def test_recorded_plan_is_used_without_epochs() -> None:
    p = predict_resume(_summary(epoch=11))
    assert (p.plan_given, p.epochs, p.first_epoch, p.last_epoch) == (False, 50, 12, 49)
    assert "(recorded in the checkpoint)" in p.arithmetic


def test_unknown_epochs_cannot_be_judged() -> None:
    p = predict_resume(_summary(epochs_planned=None))
    assert p.trains is None and "pass --epochs" in p.arithmetic
    assert predict_resume(_summary(epoch=None), epochs=3).trains is None


def test_mid_epoch_continues_the_unfinished_epoch() -> None:
    p = predict_resume(_summary(format="tbx-train", epoch=-1, next_iteration=700, grad_accum=2), 1)
    assert (p.start_epoch, p.start_iteration, p.first_epoch, p.last_epoch) == (0, 700, 0, 0)
    assert "continued at micro-batch 700" in p.arithmetic


def test_accumulation_vs_two_gpus_is_compatible() -> None:
    s = _summary(format="tbx-train", grad_accum=2, effective_batch=2)
    p = predict_resume(s, grad_accum=1, world_size=2)
    assert p.strategy_compatible is True
    assert p.strategy_differences == (
        StrategyDifference("world_size", 1, 2),
        StrategyDifference("grad_accum", 2, 1),
    )
    assert "same effective batch 2" in p.strategy_explanation


def test_changed_effective_batch_is_incompatible() -> None:
    p = predict_resume(_summary(), epochs=60, grad_accum=2)
    assert p.strategy_compatible is False and p.problems
    assert p.strategy_differences == (StrategyDifference("grad_accum", 1, 2),)
    assert "effective batch 1 -> 2" in p.strategy_explanation
    assert "steps per epoch change from 6888 to 3444" in p.strategy_explanation
    assert p.strategy_explanation.endswith(
        "(grad_accum not recorded: taken as 1; the official code has none)"
    )


def test_unrecorded_strategy_cannot_be_compared() -> None:
    p = predict_resume(_summary(batch_size=None), batch_size=2)
    assert p.strategy_compatible is None and "cannot compare" in p.strategy_explanation


@pytest.mark.parametrize(
    ("planned", "compatible", "text"),
    [(4, True, "same class count: 4"), (3, False, "use it as pretrained weights instead")],
)
def test_class_count(planned: int, compatible: bool, text: str) -> None:
    p = predict_resume(_summary(), epochs=60, num_classes=planned)
    assert p.classes_compatible is compatible and text in p.classes_explanation
    assert p.problems is (not compatible)
