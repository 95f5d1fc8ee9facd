"""tbx-train checkpoints: the schema, atomic saves, safe loads, and the official DINO layout.

Schema (CONTRACTS.md, DESIGN 4.5): a plain dict that `torch.load(weights_only=True)` loads, so
reading a checkpoint never runs pickled code:

    {"format": "tbx-train", "format_version": 1, "model", "optimizer", "lr_scheduler",
     "scaler" | None, "ema" | None, "epoch" (last COMPLETED epoch, 0-based, -1 = none yet),
     "global_step", "next_iteration" (0 at epoch boundaries; k > 0 = continue epoch `epoch + 1`
     at micro-batch k), "completed", "epochs_planned",
     "strategy": {"batch_size", "grad_accum", "world_size", "effective_batch"},
     "config", "dataset", "metrics", "env"}

Files in a run's output directory: `checkpoint.pth` (every epoch, and the mid-epoch save on a
stop signal), `checkpointNNNN.pth` (every `interval` epochs, NNNN = the epoch) and
`checkpoint_best.pth`. Official DINO checkpoints ({"model", "optimizer", "lr_scheduler", "epoch",
"args": argparse.Namespace, optional "ema_model"}) load with only `argparse.Namespace` allow-listed.

Saving is the caller's job on rank 0 only: every rank holds the same weights after DDP's
all-reduce, and several ranks replacing one file would race.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import os
import pickle
import re
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

FORMAT_NAME = "tbx-train"
FORMAT_VERSION = 1
LATEST_NAME = "checkpoint.pth"
BEST_NAME = "checkpoint_best.pth"
_EPOCH_NAME = re.compile(r"^checkpoint(\d{4,})\.pth$")

CheckpointKind = Literal["tbx-train", "official-dino"]


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message names the file and what to do."""


class CheckpointNotFoundError(CheckpointError):
    """The path does not exist or is not a regular file."""


class CheckpointCorruptError(CheckpointError):
    """The file exists but is truncated, empty, or not a torch checkpoint at all."""


class CheckpointFormatError(CheckpointError):
    """The file loads but is not a tbx-train or official DINO checkpoint we can use safely."""


def build_strategy(batch_size: int, grad_accum: int, world_size: int) -> dict[str, int]:
    """The `strategy` entry: images per device, micro-batches per optimizer step, processes."""
    for name, value in (("batch_size", batch_size), ("grad_accum", grad_accum)):
        if value < 1:
            raise ValueError(f"{name}={value} must be >= 1")
    if world_size < 1:
        raise ValueError(f"world_size={world_size} must be >= 1")
    return {
        "batch_size": batch_size,
        "grad_accum": grad_accum,
        "world_size": world_size,
        "effective_batch": batch_size * grad_accum * world_size,
    }


def build_checkpoint(
    *,
    model: Mapping[str, torch.Tensor],
    optimizer: Mapping[str, Any],
    lr_scheduler: Mapping[str, Any],
    epoch: int,
    global_step: int,
    epochs_planned: int,
    strategy: Mapping[str, int],
    config: Mapping[str, Any],
    dataset: Mapping[str, Any],
    next_iteration: int = 0,
    completed: bool = False,
    scaler: Mapping[str, Any] | None = None,
    ema: Mapping[str, torch.Tensor] | None = None,
    metrics: Mapping[str, float] | None = None,
    env: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the contract's dict from explicit parts (`env` defaults to `collect_env()`).

    `epoch` is the last completed epoch (-1 before the first one ends); a mid-epoch save keeps
    that value and sets `next_iteration` to the first micro-batch of epoch `epoch + 1` not done.
    """
    if epoch < -1 or next_iteration < 0 or global_step < 0:
        raise ValueError(f"bad position: epoch={epoch} next_iteration={next_iteration}")
    if completed and next_iteration:
        raise ValueError("a completed run cannot carry a mid-epoch position")
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": dict(model),
        "optimizer": dict(optimizer),
        "lr_scheduler": dict(lr_scheduler),
        "scaler": dict(scaler) if scaler is not None else None,
        "ema": dict(ema) if ema is not None else None,
        "epoch": int(epoch),
        "global_step": int(global_step),
        "next_iteration": int(next_iteration),
        "completed": bool(completed),
        "epochs_planned": int(epochs_planned),
        "strategy": dict(strategy),
        "config": dict(config),
        "dataset": dict(dataset),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "env": dict(env) if env is not None else collect_env(),
    }


def dataset_facts(train_json: Path, num_images: int, category_names: list[str]) -> dict[str, Any]:
    """The `dataset` entry: which annotation file (path and sha256) and what it held."""
    digest = hashlib.sha256()
    with open(train_json, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {
        "train_json": str(train_json),
        "train_json_sha256": digest.hexdigest(),
        "num_images": int(num_images),
        "category_names": list(category_names),
    }


def collect_env() -> dict[str, Any]:
    """The `env` entry: torch version, git sha of the code (None outside a checkout), host, job."""
    return {
        "torch": str(torch.__version__),  # TorchVersion is a class: weights_only refuses it
        "git_sha": _git_sha(),
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "saved_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _git_sha() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def latest_path(output_dir: Path) -> Path:
    """`checkpoint.pth`: rewritten every epoch and by the mid-epoch save on a stop signal."""
    return Path(output_dir) / LATEST_NAME


def epoch_path(output_dir: Path, epoch: int) -> Path:
    """`checkpointNNNN.pth` for the interval saves (NNNN = the completed epoch, 0-based)."""
    return Path(output_dir) / f"checkpoint{epoch:04d}.pth"


def best_path(output_dir: Path) -> Path:
    """`checkpoint_best.pth`: the epoch with the best validation metric so far."""
    return Path(output_dir) / BEST_NAME


def epoch_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """The `checkpointNNNN.pth` files of a directory as (epoch, path), newest epoch first."""
    found = []
    for path in Path(output_dir).glob("checkpoint*.pth"):
        match = _EPOCH_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """Write `payload` to `path` atomically: the old file stays intact until the new one is whole.

    The bytes go to a temporary file in the same directory (same file system, so the rename is
    atomic), are flushed and fsynced, then `os.replace` swaps the name and the directory is fsynced
    so the rename survives a crash. A failed or killed save leaves at most a `.tmp` file behind.
    Call it on rank 0 only.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(dict(payload), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a tbx-train or official DINO checkpoint on the CPU without running pickled code.

    Only tensors, plain containers and `argparse.Namespace` (the official `args`) are accepted.
    Raises CheckpointNotFoundError, CheckpointCorruptError or CheckpointFormatError.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise CheckpointNotFoundError(f"checkpoint {path} {what}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's safe loader refused something (a class, or a pickle instruction it does not
        # run): that is a refusal to name, not a truncated file.
        if "Unsupported global" in str(exc) or _is_refused_pickle(path, exc):
            raise CheckpointFormatError(_unsafe_message(path, exc)) from exc
        raise _corrupt(path, exc) from exc
    except Exception as exc:  # garbage bytes make torch's unpickler raise any type
        raise _corrupt(path, exc) from exc
    if not isinstance(payload, dict) or "model" not in payload:
        raise CheckpointFormatError(
            f"checkpoint {path} holds {type(payload).__name__} without a 'model' entry; "
            "expected a tbx-train or official DINO checkpoint"
        )
    return payload


def _corrupt(path: Path, exc: Exception) -> CheckpointCorruptError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "no data"
    return CheckpointCorruptError(
        f"checkpoint {path} ({path.stat().st_size} bytes) is truncated, unreadable or not a "
        f"torch checkpoint ({type(exc).__name__}: {first_line}); "
        "use an earlier checkpointNNNN.pth or copy the file again"
    )


def _is_refused_pickle(path: Path, exc: Exception) -> bool:
    """A well-formed pickle (PROTO opcode first) that the weights-only loader refused; garbage
    bytes fail the same loader with the same words, so the header decides."""
    with path.open("rb") as handle:
        head = handle.read(2)
    refused = "Weights only load failed" in str(exc) and "Unsupported" in str(exc)
    return refused and head[:1] == b"\x80" and head[1:] in (
        b"\x02", b"\x03", b"\x04", b"\x05"
    )  # fmt: skip


def _refused_what(text: str) -> str:
    """What torch's weights-only unpickler refused: a global's name, else its own words."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return found.group(1)
    after = text.split("WeightsUnpickler error:", 1)[-1] if "WeightsUnpickler" in text else ""
    said = next((line.strip() for line in after.splitlines() if line.strip()), "")
    if said:
        return f"what the safe loader refuses ({said}: a pickle it does not read)"
    return "an object that is not a tensor or plain value"


def _unsafe_message(path: Path, exc: Exception) -> str:
    culprit = _refused_what(str(exc))
    return (
        f"checkpoint {path} contains {culprit}; tbx-train only loads tensors, plain values and "
        "argparse.Namespace (weights_only=True) so that loading never executes code. "
        "Re-save it as a plain dict of tensors"
    )


def checkpoint_kind(payload: Mapping[str, Any]) -> CheckpointKind:
    """'tbx-train' for our schema, 'official-dino' for the official layout; else FormatError."""
    if payload.get("format") == FORMAT_NAME:
        version = payload.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointFormatError(
                f"tbx-train checkpoint format_version={version} is not supported "
                f"(this tbx-train reads version {FORMAT_VERSION}); use a matching tbx-train"
            )
        return "tbx-train"
    if isinstance(payload.get("args"), argparse.Namespace) and "epoch" in payload:
        return "official-dino"
    raise CheckpointFormatError(
        f"checkpoint with keys {sorted(payload)} is neither tbx-train (format='tbx-train') "
        "nor official DINO (an 'args' Namespace and an 'epoch'); use it with --pretrained only "
        "if it holds a 'model' state dict"
    )


def model_state(payload: Mapping[str, Any], use_ema: bool = False) -> dict[str, torch.Tensor]:
    """The model state dict of either layout, without a DDP `module.` prefix."""
    key = ("ema" if payload.get("format") == FORMAT_NAME else "ema_model") if use_ema else "model"
    state = payload.get(key)
    if not isinstance(state, Mapping):
        raise CheckpointFormatError(f"checkpoint has no {key!r} state dict")
    return {_strip_ddp(name): tensor for name, tensor in state.items()}


def _strip_ddp(name: str) -> str:
    return name[len("module.") :] if name.startswith("module.") else name
