"""Real checkpoints written with torch.save, in the official DINO and the tbx-train layouts.

Model keys and shapes come from the official DINO-4scale R50 state dict (data/, copied from
../shared/reference/); `scale` divides the channel widths so tests stay small (scale=1: real size).
Shared heads are aliased like the official model (`transformer.decoder.class_embed.i` and
`class_embed.i` are one tensor), so torch.save stores them once. The optimizer, its AdamW moments
and the StepLR state come from real torch objects.
"""

from __future__ import annotations

import argparse
import re
from collections import OrderedDict
from pathlib import Path

import torch

REFERENCE = Path(__file__).parent / "data" / "dino_4scale_r50_state_dict.txt"
_WIDTHS = {64, 128, 256, 512, 1024, 2048}
_ALIAS = re.compile(r"^(transformer\.decoder\.)?(class_embed|bbox_embed)\.(\d)\.(.*)$")
_CLASS_HEAD = re.compile(r"(^|\.)class_embed(\.\d)?\.(weight|bias)$")


def reference_entries() -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) for the 626 official keys, in registration order."""
    entries = []
    for line in REFERENCE.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape, _dtype = line.split("\t")
            entries.append((key, tuple(int(d) for d in shape.strip("[]").split(", ") if d)))
    return entries


def _alias_of(key: str) -> str | None:
    """The key a shared-head entry aliases (class_embed.0 / bbox_embed.0), else None."""
    match = _ALIAS.match(key)
    if match and (match.group(1) or match.group(3) != "0"):
        return f"{match.group(2)}.0.{match.group(4)}"
    return None


def _shape(key: str, shape: tuple[int, ...], scale: int, classes: int, queries: int) -> tuple:
    if _CLASS_HEAD.search(key):
        shape = (classes, *shape[1:])
    elif key == "label_enc.weight":
        shape = (classes + 1, *shape[1:])
    elif key == "transformer.tgt_embed.weight":
        shape = (queries, *shape[1:])
    head, *rest = shape
    width = [max(1, d // scale) if d in _WIDTHS else d for d in rest]
    return ((max(1, head // scale) if head in _WIDTHS else head), *width)


def model_state(
    scale: int = 32, num_classes: int = 4, num_queries: int = 900
) -> OrderedDict[str, torch.Tensor]:
    """A DINO-4scale state dict with real key names, aliases shared like the official model."""
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    made: dict[str, torch.Tensor] = {}
    shapes = dict(reference_entries())
    for key in shapes:
        source = _alias_of(key) or key
        if source not in made:
            shape = _shape(source, shapes[source], scale, num_classes, num_queries)
            made[source] = torch.zeros(shape)
        state[key] = made[source]
    return state


def is_trainable(key: str) -> bool:
    """Official DINO: stem + layer1 frozen, FrozenBatchNorm2d everywhere in the backbone."""
    if not key.startswith("backbone."):
        return True
    frozen_bn = ".bn" in key or "downsample.1" in key
    return not (frozen_bn or ".body.conv1." in key or ".layer1." in key)


def optimizer_and_scheduler(
    state: OrderedDict[str, torch.Tensor], steps: int, epochs_done: int, lr_drop: int
) -> tuple[dict, dict]:
    """Real AdamW (backbone lr 1e-5, rest 1e-4) and StepLR states after `steps` steps."""
    seen: dict[int, torch.Tensor] = {}
    backbone, rest = [], []
    for key, tensor in state.items():
        if is_trainable(key) and id(tensor) not in seen:
            seen[id(tensor)] = tensor
            param = torch.nn.Parameter(tensor)
            param.grad = torch.ones_like(tensor)
            (backbone if key.startswith("backbone.") else rest).append(param)
    groups = [{"params": rest, "lr": 1e-4}, {"params": backbone, "lr": 1e-5}]
    optimizer = torch.optim.AdamW(groups, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_drop, gamma=0.1)
    optimizer.step()
    for _ in range(epochs_done):
        scheduler.step()
    saved = optimizer.state_dict()
    for param_state in saved["state"].values():
        param_state["step"] = torch.tensor(float(steps))
    return saved, scheduler.state_dict()


def official_args(**overrides: object) -> argparse.Namespace:
    """The options an official DINO run pickles into its checkpoint (a subset, real names)."""
    values = {
        "config_file": "config/DINO/DINO_4scale.py",
        "output_dir": "/scratch/u/outputs/tbx11k_run_1",
        "resume": "",
        "pretrain_model_path": "/scratch/u/dino_pretrained/checkpoint0011_4scale.pth",
        "finetune_ignore": ["label_enc", "class_embed"],
        "epochs": 50,
        "batch_size": 1,
        "world_size": 1,
        "lr": 0.0001,
        "lr_backbone": 1e-05,
        "lr_drop": 40,
        "num_classes": 4,
        "dn_labelbook_size": 4,
        "num_queries": 900,
        "device": "cuda",
        "seed": 42,
        "distributed": False,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


def official_checkpoint(
    path: Path,
    epoch: int,
    args: argparse.Namespace | None = None,
    steps_per_epoch: int = 6888,
    ema: bool = False,
    scale: int = 32,
) -> dict:
    """Write an official-layout checkpoint (after `epoch` finished, 0-based); return the dict."""
    args = args or official_args()
    state = model_state(scale, args.num_classes, args.num_queries)
    steps = steps_per_epoch * (epoch + 1)
    optimizer, scheduler = optimizer_and_scheduler(state, steps, epoch + 1, args.lr_drop)
    checkpoint = {
        "model": state,
        "optimizer": optimizer,
        "lr_scheduler": scheduler,
        "epoch": epoch,
        "args": args,
    }
    if ema:
        checkpoint["ema_model"] = OrderedDict((k, v.clone()) for k, v in state.items())
    torch.save(checkpoint, path)
    return checkpoint


def tbx_checkpoint(
    path: Path,
    epoch: int,
    epochs_planned: int,
    next_iteration: int = 0,
    strategy: tuple[int, int, int] = (1, 2, 1),
    num_classes: int = 4,
) -> dict:
    """Write a tbx-train checkpoint (CONTRACTS: checkpoint contract); strategy = (B, K, W)."""
    batch, accum, world = strategy
    state = model_state(32, num_classes, 900)
    steps_per_epoch = 6888 // (batch * accum * world)
    steps = steps_per_epoch * (epoch + 1) + next_iteration // accum
    optimizer, scheduler = optimizer_and_scheduler(state, steps, epoch + 1, 40)
    checkpoint = {
        "format": "tbx-train",
        "format_version": 1,
        "model": state,
        "optimizer": optimizer,
        "lr_scheduler": scheduler,
        "scaler": None,
        "ema": OrderedDict((k, v.clone()) for k, v in state.items()),
        "epoch": epoch,
        "global_step": steps,
        "next_iteration": next_iteration,
        "completed": epoch == epochs_planned - 1 and next_iteration == 0,
        "epochs_planned": epochs_planned,
        "strategy": {
            "batch_size": batch,
            "grad_accum": accum,
            "world_size": world,
            "effective_batch": batch * accum * world,
        },
        **_tbx_records(epochs_planned, num_classes),
    }
    torch.save(checkpoint, path)
    return checkpoint


def _tbx_records(epochs_planned: int, num_classes: int) -> dict:
    """The descriptive part of a tbx-train checkpoint: config, dataset, metrics, env."""
    return {
        "config": {
            "model": {"num_classes": num_classes, "num_queries": 900},
            "data": {"root": "/data/TBX11K"},
            "train": {"epochs": epochs_planned, "output_dir": "/runs/a", "resume": "/runs/a/c.pth"},
        },
        "dataset": {
            "train_json": "annotations/json/TBX11K_train.json",
            "train_json_sha256": "0" * 64,
            "num_images": 6888,
            "category_names": ["ActiveTuberculosis", "ObsoletePulmonaryTuberculosis", "PTB"],
        },
        "metrics": {"coco_ap": 0.21},
        "env": {
            "torch": str(torch.__version__),
            "git_sha": None,
            "host": "n1",
            "slurm_job_id": "7",
            "saved_at": "2026-11-25T18:00:00Z",
        },
    }
