"""The user's own checkpoints: the official DINO main.py layout (model, optimizer, lr_scheduler,
epoch, an argparse.Namespace `args`, ema_model) with their settings (here: the best run's args
with the tiny model's sizes), for `eval` and `--resume`."""

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from tiny_run import tiny_run_config

from tbx_train.checkpoint_eval import evaluate_checkpoint
from tbx_train.config import DataConfig
from tbx_train.data import write_synthetic_tbx11k
from tbx_train.model import build_dino
from tbx_train.runner import run_training

BEST_ARGS = Path(__file__).resolve().parents[2] / "fixtures/user_best_run/config_args_all.json"
_OFFICIAL_NAMES = {"pe_temperature": "pe_temperatureH"}


def _official_checkpoint(config, path: Path, epoch: int) -> dict:
    """The best run's args with the tiny model's values, and the tiny model's weights."""
    args = json.loads(BEST_ARGS.read_text())
    for name, value in vars(config.model).items():
        if _OFFICIAL_NAMES.get(name, name) in args:
            args[_OFFICIAL_NAMES.get(name, name)] = value
    args.update(batch_size=2, gradient_accumulation_steps=1, data_aug_scales=[64],
                data_aug_max_size=64, num_workers=0)  # fmt: skip
    torch.manual_seed(7)
    state = build_dino(config.model)[0].state_dict()
    payload = {
        "model": state,
        "ema_model": {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()},
        "optimizer": {"state": {}, "param_groups": []},
        "lr_scheduler": {"last_epoch": epoch + 1},
        "epoch": epoch,
        "args": argparse.Namespace(**args),
    }
    torch.save(payload, path)
    return payload


def test_official_checkpoint_evaluates_and_resumes(tmp_path):
    root = tmp_path / "synth"
    write_synthetic_tbx11k(root, images=8, seed=1, size=64, val_fraction=0.25)
    config = tiny_run_config(root, tmp_path / "run", epochs=2, ema=True)
    config = replace(config, model=replace(config.model, dropout=0.1, focal_alpha=0.75))
    path = tmp_path / "checkpoint0000.pth"
    _official_checkpoint(config, path, epoch=0)

    lines: list[str] = []
    result = evaluate_checkpoint(path, DataConfig(data_root=str(root)), device_name="cpu",
                                 write=lines.append)  # fmt: skip
    assert result.coco_stats is not None and len(result.coco_stats) == 12
    assert any(line.startswith("Test:  [0/2]") for line in lines)

    lines.clear()
    resumed = replace(config, train=replace(config.train, resume=str(path)))
    outcome = run_training(resumed, write=lines.append)
    assert (outcome.exit_code, outcome.epochs_trained) == (0, [1])
    assert f"Resuming from checkpoint: {path} (epoch 0)" in lines
    carried = next(line for line in lines if line.startswith("Official DINO checkpoint"))
    assert "carried over model weights, epoch 0, EMA weights" in carried
    assert "not carried over: the AdamW moments" in carried and "lr 0.0002 for epoch 1" in carried
