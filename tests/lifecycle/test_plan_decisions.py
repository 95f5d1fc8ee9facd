"""Run-plan decisions and every refusal (tbx_train.plan)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tbx_train.config import model_preset
from tbx_train.plan import (
    PlanRefused,
    PlanRequest,
    decide_plan,
    format_decision_line,
    format_plan_line,
    format_plan_report,
)

from .conftest import official_payload, tbx_payload


def request(tmp_path: Path, **overrides) -> PlanRequest:
    """The tbx11k-1gpu strategy (batch 1 x accum 2 x 1 process), 50 epochs, in tmp_path/run.

    ImageNet weights for the backbone (an empty file: the plan checks that it exists only)."""
    weights = tmp_path / "resnet50.pth"
    weights.touch()
    values = dict(
        output_dir=tmp_path / "run", epochs=50, batch_size=1, grad_accum=2, world_size=1,
        model=model_preset("tbx11k", backbone_weights=str(weights)),
    )  # fmt: skip
    values.update(overrides)
    return PlanRequest(**values)


def refusal(req: PlanRequest) -> str:
    with pytest.raises(PlanRefused) as info:
        decide_plan(req)
    return info.value.line()


def test_fresh_when_output_dir_is_empty(tmp_path):
    plan = decide_plan(request(tmp_path))
    assert (plan.mode, plan.start_epoch, plan.epochs_to_run) == ("fresh", 0, 50)
    assert format_plan_line(plan) == (
        "Run plan: mode=fresh source=- source_epoch=- start_epoch=0 epochs=50 epochs_to_run=50 "
        "batch_size=1 grad_accum=2 world_size=1 effective_batch=2"
    )
    assert format_decision_line(plan) == "Training from scratch"


def test_pretrained_official_checkpoint(write_ckpt, tmp_path):
    coco = write_ckpt("weights/checkpoint0011_4scale.pth", official_payload(epoch=11))
    plan = decide_plan(request(tmp_path, pretrained=coco))
    assert (plan.mode, plan.source, plan.source_epoch, plan.source_kind) == (
        "pretrained", coco, 11, "official-dino",
    )  # fmt: skip
    assert format_decision_line(plan) == f"Using pretrained weights: {coco}"
    assert f"source={coco} source_epoch=11 start_epoch=0" in format_plan_line(plan)


def test_auto_resumes_checkpoint_pth_in_output_dir(write_ckpt, tmp_path):
    write_ckpt("run/checkpoint0009.pth", tbx_payload(epoch=9))
    latest = write_ckpt("run/checkpoint.pth", tbx_payload(epoch=12))
    plan = decide_plan(request(tmp_path))
    assert (plan.mode, plan.source, plan.start_epoch, plan.epochs_to_run) == (
        "resume", latest, 13, 37,
    )  # fmt: skip
    assert format_decision_line(plan) == f"Resuming from checkpoint: {latest} (epoch 12)"
    assert "Verdict:     OK" in format_plan_report(plan)


def test_auto_honours_mid_epoch_save(write_ckpt, tmp_path):
    latest = write_ckpt("run/checkpoint.pth", tbx_payload(epoch=12, next_iteration=700))
    plan = decide_plan(request(tmp_path))
    assert (plan.start_epoch, plan.start_iteration) == (13, 700)
    assert format_decision_line(plan) == (
        f"Resuming from checkpoint: {latest} (epoch 13, iteration 700)"
    )


def test_auto_falls_back_past_unreadable_latest(write_ckpt, tmp_path):
    write_ckpt("run/checkpoint0011.pth", tbx_payload(epoch=11))
    older = write_ckpt("run/checkpoint0012.pth", tbx_payload(epoch=12))
    (tmp_path / "run/checkpoint.pth").write_bytes(b"truncated")
    plan = decide_plan(request(tmp_path))
    assert plan.source == older
    assert any("skipped unreadable" in note for note in plan.notes)


def test_auto_refuses_when_every_checkpoint_is_unreadable(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run/checkpoint.pth").write_bytes(b"truncated")
    assert "none is readable" in refusal(request(tmp_path))


def test_auto_never_looks_outside_output_dir(write_ckpt, tmp_path):
    write_ckpt("tbx11k_run_39543743/checkpoint.pth", tbx_payload(epoch=12))
    (tmp_path / "run").mkdir()
    assert decide_plan(request(tmp_path)).mode == "fresh"


def test_resume_never_ignores_output_dir(write_ckpt, tmp_path):
    write_ckpt("run/checkpoint.pth", tbx_payload(epoch=12))
    assert decide_plan(request(tmp_path, resume="never")).mode == "fresh"


def test_refuses_zero_epochs_left_the_incident(write_ckpt, tmp_path):
    path = write_ckpt("run/checkpoint.pth", tbx_payload(epoch=49, batch_size=1, grad_accum=2))
    line = refusal(request(tmp_path))
    assert line.startswith(f"Run plan refused: checkpoint {path} finished epoch 49")
    assert "start_epoch = 49 + 1 = 50 >= --epochs 50: 0 epochs left" in line
    assert "Fix: pass --epochs N with N > 50" in line and "--pretrained" in line


def test_refuses_official_checkpoint_with_nothing_left(write_ckpt, tmp_path):
    path = write_ckpt("old/checkpoint.pth", official_payload(epoch=11, num_classes=4))
    line = refusal(request(tmp_path, epochs=12, resume=str(path)))
    assert "start_epoch = 11 + 1 = 12 >= --epochs 12" in line


def test_refuses_completed_run_unless_extended(write_ckpt, tmp_path):
    write_ckpt("run/checkpoint.pth", tbx_payload(epoch=19, epochs_planned=20, completed=True))
    assert "is marked completed: its run trained all 20 planned" in refusal(
        request(tmp_path, epochs=20)
    )
    plan = decide_plan(request(tmp_path, epochs=30))
    assert (plan.start_epoch, plan.epochs_to_run) == (20, 10)


def test_refuses_strategy_change_naming_both_sides(write_ckpt, tmp_path):
    write_ckpt("run/checkpoint.pth", tbx_payload(epoch=3, batch_size=1, grad_accum=1))
    line = refusal(request(tmp_path))
    assert "trained with batch_size=1 grad_accum=1 world_size=1 (effective batch 1)" in line
    assert "this run asks for batch_size=1 grad_accum=2 world_size=1 (effective batch 2)" in line
    assert "--allow-strategy-change" in line and "--grad-accum 1" in line


def test_allowed_strategy_change_states_lr_consequence(write_ckpt, tmp_path):
    write_ckpt("run/checkpoint.pth", tbx_payload(epoch=3, batch_size=1, grad_accum=1))
    plan = decide_plan(request(tmp_path, allow_strategy_change=True))
    assert plan.mode == "resume"
    assert plan.strategy_change.startswith("grad_accum 1 -> 2; effective batch 1 -> 2")
    assert "StepLR counts epochs" in plan.strategy_change
    assert "Change:" in format_plan_report(plan)


def test_same_effective_batch_other_split_still_needs_permission(write_ckpt, tmp_path):
    write_ckpt("run/checkpoint.pth", tbx_payload(epoch=3, grad_accum=1, world_size=2))
    assert "world_size=2" in refusal(request(tmp_path))
    plan = decide_plan(request(tmp_path, allow_strategy_change=True))
    assert "effective batch unchanged (2)" in plan.strategy_change


def test_refuses_other_class_count_and_suggests_pretrained(write_ckpt, tmp_path):
    coco = write_ckpt("coco.pth", official_payload(epoch=11, batch_size=1, world_size=1))
    line = refusal(request(tmp_path, epochs=20, grad_accum=1, resume=str(coco)))
    assert "num_classes=91 (class_embed.0.weight has 91 rows)" in line
    assert "this run's model has num_classes=4" in line
    assert f"--pretrained {coco} --resume never" in line


def test_refuses_other_model_shape(write_ckpt, tmp_path):
    narrow = model_preset("tbx11k", num_queries=300)
    write_ckpt("run/checkpoint.pth", tbx_payload(epoch=3, model=narrow))
    assert "num_queries=300 (this run: 900)" in refusal(request(tmp_path))


def test_refuses_official_args_that_disagree(write_ckpt, tmp_path):
    path = write_ckpt("dino.pth", official_payload(epoch=5, num_classes=4))  # 2 per GPU x 8
    line = refusal(request(tmp_path, epochs=12, resume=str(path)))
    assert "batch_size=2 grad_accum=1 world_size=8 (effective batch 16)" in line


def test_resume_and_pretrained_must_agree(write_ckpt, tmp_path):
    coco = write_ckpt("coco.pth", official_payload(epoch=11))
    other = write_ckpt("other/checkpoint.pth", tbx_payload(epoch=3))
    line = refusal(request(tmp_path, resume=str(other), pretrained=coco))
    assert f"--resume {other} and --pretrained {coco} disagree" in line
    chained = write_ckpt("chain/checkpoint.pth", tbx_payload(epoch=3, pretrained=str(coco)))
    plan = decide_plan(request(tmp_path, resume=str(chained), pretrained=coco))
    assert (plan.mode, plan.source) == ("resume", chained)


def test_auto_resume_wins_over_pretrained_with_a_note(write_ckpt, tmp_path):
    coco = write_ckpt("coco.pth", official_payload(epoch=11))
    write_ckpt("run/checkpoint.pth", tbx_payload(epoch=3))
    plan = decide_plan(request(tmp_path, pretrained=coco))
    assert plan.mode == "resume"
    assert any("not used" in note for note in plan.notes)


def test_missing_explicit_paths_are_refused(tmp_path):
    assert "--resume" in refusal(request(tmp_path, resume=str(tmp_path / "x.pth")))
    assert "--pretrained" in refusal(request(tmp_path, pretrained=tmp_path / "y.pth"))


def test_paths_with_spaces_are_quoted(write_ckpt, tmp_path):
    coco = write_ckpt("my weights/coco.pth", official_payload(epoch=11))
    assert f"source='{coco}' source_epoch=11" in format_plan_line(
        decide_plan(request(tmp_path, pretrained=coco))
    )


def test_fresh_run_with_a_frozen_random_stem_is_refused(tmp_path):
    bare = request(tmp_path, model=model_preset("tbx11k"))
    line = refusal(bare)
    assert "stem and layer1 are frozen" in line and "--backbone-weights FILE" in line
    scratch = request(tmp_path, model=model_preset("tbx11k", freeze_stem=False))
    assert decide_plan(scratch).mode == "fresh"
    missing = request(tmp_path, model=model_preset("tbx11k", backbone_weights="nope.pth"))
    assert "--backbone-weights nope.pth does not exist" in refusal(missing)


def test_step_lr_that_drops_more_than_once_warns(tmp_path):
    many = decide_plan(request(tmp_path, lr_drops=(11, 22, 33, 44)))
    assert many.warnings and "divides the learning rate by ten 4 times" in many.warnings[0]
    assert "Warning:     StepLR(lr_drop=11)" in format_plan_report(many)
    assert not decide_plan(request(tmp_path, lr_drops=(30,))).warnings
    listed = request(tmp_path, lr_drops=(30, 40), multi_step=True)
    assert not decide_plan(listed).warnings
