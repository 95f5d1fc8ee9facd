"""A resume checks the checkpoint's config against the run's and names every difference."""

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pytest

from tbx_train.config_check import config_differences
from tbx_train.config_files import config_dict, run_preset
from tbx_train.plan import PlanRefused, decide_plan, request_from_config

from .conftest import official_payload, tbx_payload

BEST_ARGS = Path(__file__).resolve().parents[2] / "fixtures/user_best_run/config_args_all.json"


def _flat(config) -> dict:
    plain = config_dict(config)
    return {f"{s}.{f}": v for s in ("model", "data", "train") for f, v in plain[s].items()}


def _saved(config, epoch=3):
    payload = tbx_payload(epoch=epoch, model=config.model)
    payload["config"] = config_dict(config)
    return payload


def test_each_difference_is_named_with_its_consequence():
    base = run_preset("tbx11k-1gpu")
    changed = replace(
        base,
        model=replace(base.model, dropout=0.1),
        train=replace(base.train, lr=2e-4, output_dir="elsewhere", amp="bf16"),
    )
    lines = {
        d.key: (d.severity, d.line()) for d in config_differences(_saved(base), _flat(changed))
    }
    assert lines == {
        "model.dropout": ("applies", "model.dropout 0.0 -> 0.1 (applies from now on)"),
        "train.lr": (
            "no-effect",
            "train.lr 0.0001 -> 0.0002 (no effect: the optimizer and schedule continue from the "
            "checkpoint)",
        ),
        "train.amp": ("applies", "train.amp 'off' -> 'bf16' (applies from now on)"),
    }  # output_dir is run-local: not listed


def test_plan_warns_on_soft_differences_and_refuses_layout_changes(write_ckpt, tmp_path):
    base = replace(run_preset("tbx11k-1gpu"), train=replace(
        run_preset("tbx11k-1gpu").train, output_dir=str(tmp_path / "run"), epochs=12))  # fmt: skip
    write_ckpt("run/checkpoint.pth", _saved(base))
    softer = replace(base, model=replace(base.model, focal_alpha=0.75))
    plan = decide_plan(request_from_config(softer, 1))
    assert plan.mode == "resume"
    assert plan.warnings == (
        "config differs from the checkpoint's: model.focal_alpha 0.25 -> 0.75 "
        "(applies from now on)",
    )
    unfrozen = replace(base, model=replace(base.model, freeze_stem=False))
    with pytest.raises(PlanRefused, match=r"model\.freeze_stem True -> False .*--config config"):
        decide_plan(request_from_config(unfrozen, 1))


def test_checkpoints_of_earlier_versions_count_as_three_groups_and_a_frozen_stem(
    write_ckpt, tmp_path
):
    base = replace(run_preset("tbx11k-1gpu"), train=replace(
        run_preset("tbx11k-1gpu").train, output_dir=str(tmp_path / "run")))  # fmt: skip
    payload = _saved(base)
    del payload["config"]["train"]["param_dict_type"], payload["config"]["model"]["freeze_stem"]
    write_ckpt("run/checkpoint.pth", payload)
    with pytest.raises(PlanRefused) as refused:
        decide_plan(request_from_config(base, 1))
    assert "train.param_dict_type 'ddetr_in_mmdet' -> 'default'" in str(refused.value)
    assert '--set train.param_dict_type="ddetr_in_mmdet"' in str(refused.value)
    older = replace(base, train=replace(base.train, param_dict_type="ddetr_in_mmdet"))
    assert decide_plan(request_from_config(older, 1)).mode == "resume"


def test_official_checkpoint_args_are_compared_through_the_mapping():
    args = json.loads(BEST_ARGS.read_text())
    payload = official_payload(epoch=5, num_classes=4)
    payload["args"] = argparse.Namespace(**args)
    assert config_differences(payload, _flat(run_preset("tbx11k-user-best"))) == []
    official = {d.key for d in config_differences(payload, _flat(run_preset("tbx11k-1gpu")))}
    assert official == {
        "model.num_queries", "model.dropout", "model.focal_alpha", "model.dn_box_noise_scale",
        "data.train_sizes", "data.max_size", "train.epochs", "train.lr_drop", "train.ema",
        "train.ema_decay",
    }  # fmt: skip
