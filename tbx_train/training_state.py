"""What a run trains and saves: model, criterion, optimizer, schedule, scaler, EMA.

`build_training_state` builds them from a RunConfig; `restore_state` loads a resume checkpoint into
them; `checkpoint_payload` assembles the DESIGN 4.5 dict (through tbx_train.checkpoint).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tbx_train.checkpoint import (
    build_checkpoint,
    build_strategy,
    checkpoint_kind,
    load_checkpoint,
    model_state,
)
from tbx_train.config import RunConfig
from tbx_train.config_files import config_dict
from tbx_train.ema import ModelEma
from tbx_train.engine import resolve_amp
from tbx_train.model import build_dino
from tbx_train.optim import build_lr_scheduler, build_optimizer


@dataclass
class TrainingState:
    """The trainable objects of one run (the model is the bare module, never DDP-wrapped)."""

    model: nn.Module
    criterion: nn.Module
    postprocessor: nn.Module
    optimizer: torch.optim.Optimizer
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    ema: ModelEma | None
    amp_dtype: torch.dtype | None
    global_step: int = 0

    @property
    def n_parameters(self) -> int:
        """Trainable parameters (log.txt `n_parameters`)."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` picks the local rank's GPU when CUDA is available, else the CPU."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def build_training_state(config: RunConfig, device: torch.device) -> TrainingState:
    """Fresh model (seeded by the run seed), optimizer groups, StepLR, scaler and EMA."""
    torch.manual_seed(config.train.seed)
    model, criterion, postprocessor = build_dino(config.model)
    model.to(device)
    criterion.to(device)
    optimizer = build_optimizer(model, config.train)
    amp_dtype, needs_scaler = resolve_amp(config.train.amp, device)
    scaler = torch.amp.GradScaler(device.type) if needs_scaler else None
    ema = ModelEma(model, config.train.ema_decay) if config.train.ema else None
    return TrainingState(
        model=model,
        criterion=criterion,
        postprocessor=postprocessor,
        optimizer=optimizer,
        lr_scheduler=build_lr_scheduler(optimizer, config.train),
        scaler=scaler,
        ema=ema,
        amp_dtype=amp_dtype,
    )


def restore_state(state: TrainingState, path: Path) -> tuple[dict[str, Any], list[str]]:
    """Load a resume checkpoint into `state`; returns it and lines saying what was carried over.

    tbx-train checkpoints restore model, optimizer, schedule, scaler and EMA: the optimizer and
    schedule come back as saved (as official DINO does), so a changed lr or lr_drop does not
    apply. Official DINO checkpoints restore weights and epoch only (see `_restore_official`).
    """
    payload = load_checkpoint(path)
    state.model.load_state_dict(model_state(payload), strict=True)
    if checkpoint_kind(payload) == "official-dino":
        return payload, _restore_official(state, payload)
    state.optimizer.load_state_dict(payload["optimizer"])
    state.lr_scheduler.load_state_dict(payload["lr_scheduler"])
    if state.scaler is not None and payload.get("scaler"):
        state.scaler.load_state_dict(payload["scaler"])
    if state.ema is not None:
        ema = payload.get("ema")
        state.ema.load_state_dict(ema if ema else state.model.state_dict())
    state.global_step = int(payload.get("global_step", 0))
    return payload, []


def _restore_official(state: TrainingState, payload: Mapping[str, Any]) -> list[str]:
    """Weights (and `ema_model`) and the epoch of an official DINO main.py checkpoint.

    Its optimizer state is not loaded: its parameter order follows the official module
    registration, which nothing in the file records, so a wrong match cannot be detected.
    The schedule is recomputed for the next epoch instead.
    """
    epochs_done = int(payload["epoch"]) + 1
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": intended
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(epochs_done):
            state.lr_scheduler.step()
    carried = ["model weights", f"epoch {epochs_done - 1}"]
    ema = payload.get("ema_model")
    if state.ema is not None:
        state.ema.load_state_dict(model_state(payload, use_ema=True) if ema else
                                  state.model.state_dict())  # fmt: skip
        carried.append("EMA weights" if ema else "no EMA weights (EMA restarts from the model)")
    lr = state.optimizer.param_groups[0]["lr"]
    return [
        f"Official DINO checkpoint: carried over {', '.join(carried)}; not carried over: the "
        f"AdamW moments (restart from zero), the scheduler state (recomputed: lr {lr:g} for "
        f"epoch {epochs_done}), the global step (counts from 0 in this run)"
    ]


def checkpoint_payload(
    state: TrainingState,
    config: RunConfig,
    *,
    world_size: int,
    epoch: int,
    next_iteration: int,
    dataset: Mapping[str, Any],
    metrics: Mapping[str, float],
) -> dict[str, Any]:
    """The DESIGN 4.5 checkpoint of the current state (epoch = last completed epoch)."""
    train = config.train
    completed = next_iteration == 0 and epoch + 1 >= train.epochs
    return build_checkpoint(
        model=state.model.state_dict(),
        optimizer=state.optimizer.state_dict(),
        lr_scheduler=state.lr_scheduler.state_dict(),
        scaler=state.scaler.state_dict() if state.scaler is not None else None,
        ema=state.ema.state_dict() if state.ema is not None else None,
        epoch=epoch,
        global_step=state.global_step,
        next_iteration=next_iteration,
        completed=completed,
        epochs_planned=train.epochs,
        strategy=build_strategy(train.batch_size, train.grad_accum, world_size),
        config=config_dict(config),
        dataset=dataset,
        metrics=metrics,
    )
