"""Small real checkpoints in both layouts, shaped like the official DINO state dict."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch

from tbx_train.checkpoint import build_checkpoint, build_strategy, save_checkpoint
from tbx_train.config import ModelConfig, model_preset

HIDDEN = 8  # tiny stand-in for hidden_dim 256; the plan only reads class-head rows


def small_state(num_classes: int, dn_labelbook_size: int | None = None) -> dict[str, torch.Tensor]:
    """A few official key names with their class-dependent shapes (aliases included)."""
    labelbook = num_classes if dn_labelbook_size is None else dn_labelbook_size
    gen = torch.Generator().manual_seed(num_classes)
    shapes = {
        "transformer.level_embed": [4, HIDDEN],
        "transformer.tgt_embed.weight": [900, HIDDEN],
        "label_enc.weight": [labelbook + 1, HIDDEN],
        "class_embed.0.weight": [num_classes, HIDDEN],
        "class_embed.0.bias": [num_classes],
        "transformer.decoder.class_embed.0.weight": [num_classes, HIDDEN],
        "transformer.decoder.class_embed.0.bias": [num_classes],
        "transformer.enc_out_class_embed.weight": [num_classes, HIDDEN],
        "transformer.enc_out_class_embed.bias": [num_classes],
    }
    return {k: torch.randn(v, generator=gen) for k, v in shapes.items()}


def tbx_payload(
    *,
    epoch: int,
    epochs_planned: int = 50,
    batch_size: int = 1,
    grad_accum: int = 2,
    world_size: int = 1,
    model: ModelConfig | None = None,
    completed: bool = False,
    next_iteration: int = 0,
    pretrained: str | None = None,
) -> dict[str, Any]:
    """A contract-schema checkpoint dict with a tiny model state."""
    model = model or model_preset("tbx11k")
    return build_checkpoint(
        model=small_state(model.num_classes, model.dn_labelbook_size),
        optimizer={"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]},
        lr_scheduler={"step_size": 40, "gamma": 0.1, "last_epoch": epoch + 1},
        epoch=epoch,
        global_step=(epoch + 1) * 10,
        epochs_planned=epochs_planned,
        strategy=build_strategy(batch_size, grad_accum, world_size),
        config={"model": asdict(model), "train": {"pretrained": pretrained}},
        dataset={"train_json": "x.json", "num_images": 10, "category_names": ["a", "b", "c"]},
        next_iteration=next_iteration,
        completed=completed,
        env={
            "torch": str(torch.__version__),
            "git_sha": None,
            "host": "h",
            "slurm_job_id": None,
            "saved_at": "2026-11-25T00:00:00+00:00",
        },
    )


def official_payload(*, epoch: int, num_classes: int = 91, **args: Any) -> dict[str, Any]:
    """The official DINO layout: model/optimizer/lr_scheduler/epoch plus an args Namespace."""
    defaults = {
        "batch_size": 2,
        "world_size": 8,
        "epochs": 12,
        "num_queries": 900,
        "hidden_dim": 256,
        "dn_labelbook_size": num_classes,
        "num_classes": num_classes,
        "backbone": "resnet50",
        "lr": 1e-4,
        "lr_drop": 11,
    }
    defaults.update(args)
    return {
        "model": small_state(num_classes, defaults["dn_labelbook_size"]),
        "optimizer": {"state": {}, "param_groups": []},
        "lr_scheduler": {"last_epoch": epoch + 1},
        "epoch": epoch,
        "args": argparse.Namespace(**defaults),
    }


@pytest.fixture
def write_ckpt(tmp_path: Path):
    """write_ckpt(name, payload) -> path, under tmp_path (directories created)."""

    def _write(name: str, payload: dict[str, Any]) -> Path:
        path = tmp_path / name
        save_checkpoint(path, payload)
        return path

    return _write


# The private SLURM cluster of tests/slurm, for the sbatch-script tests.
from tests.slurm.conftest import slurm_cluster  # noqa: E402, F401
