"""Checkpoint schema, atomic saves and safe loads (tbx_train.checkpoint)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from tbx_train.checkpoint import (
    CheckpointCorruptError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    build_strategy,
    checkpoint_kind,
    epoch_checkpoints,
    epoch_path,
    latest_path,
    load_checkpoint,
    model_state,
    save_checkpoint,
)

from .conftest import official_payload, tbx_payload

CONTRACT_KEYS = {
    "format", "format_version", "model", "optimizer", "lr_scheduler", "scaler", "ema", "epoch",
    "global_step", "next_iteration", "completed", "epochs_planned", "strategy", "config",
    "dataset", "metrics", "env",
}  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def test_schema_round_trips_through_weights_only_load(write_ckpt):
    path = write_ckpt("run/checkpoint.pth", tbx_payload(epoch=3, next_iteration=5))
    raw = torch.load(path, weights_only=True)  # the contract: no allow-list needed
    assert set(raw) == CONTRACT_KEYS
    assert raw["strategy"] == {
        "batch_size": 1, "grad_accum": 2, "world_size": 1, "effective_batch": 2,
    }  # fmt: skip
    assert (raw["epoch"], raw["next_iteration"], raw["format"]) == (3, 5, "tbx-train")
    assert checkpoint_kind(load_checkpoint(path)) == "tbx-train"


def test_build_rejects_inconsistent_positions():
    with pytest.raises(ValueError, match="mid-epoch"):
        tbx_payload(epoch=3, completed=True, next_iteration=2)
    with pytest.raises(ValueError, match="grad_accum=0"):
        build_strategy(1, 0, 1)


def test_file_names():
    assert latest_path(Path("o")) == Path("o/checkpoint.pth")
    assert epoch_path(Path("o"), 11) == Path("o/checkpoint0011.pth")


def test_epoch_checkpoints_newest_first(write_ckpt, tmp_path):
    for epoch in (3, 11, 7):
        write_ckpt(f"checkpoint{epoch:04d}.pth", tbx_payload(epoch=epoch))
    write_ckpt("checkpoint_best.pth", tbx_payload(epoch=1))
    assert [e for e, _ in epoch_checkpoints(tmp_path)] == [11, 7, 3]


def test_official_checkpoint_loads_with_namespace_only(write_ckpt):
    path = write_ckpt("checkpoint0011_4scale.pth", official_payload(epoch=11))
    payload = load_checkpoint(path)
    assert checkpoint_kind(payload) == "official-dino"
    assert payload["args"].num_classes == 91
    state = {"module." + k: v for k, v in payload["model"].items()}
    assert set(model_state({"model": state})) == set(payload["model"])  # DDP prefix stripped


def test_missing_and_directory_raise_not_found(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(CheckpointNotFoundError, match="is a directory"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("cut", ["half", "empty", "garbage"])
def test_truncated_or_garbage_raises_corrupt(write_ckpt, cut):
    path = write_ckpt("checkpoint.pth", tbx_payload(epoch=0))
    data = path.read_bytes()
    path.write_bytes({"half": data[: len(data) // 2], "empty": b"", "garbage": b"not torch"}[cut])
    with pytest.raises(CheckpointCorruptError, match=r"truncated, unreadable or not a"):
        load_checkpoint(path)


class _Custom:
    """A class no allow-list knows: loading must refuse rather than run its pickle code."""


def test_pickled_objects_are_refused_by_name(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "extra": _Custom()}, path)
    with pytest.raises(CheckpointFormatError, match="_Custom"):
        load_checkpoint(path)


def test_unknown_layout_and_version_are_refused():
    with pytest.raises(CheckpointFormatError, match="neither tbx-train"):
        checkpoint_kind({"model": {}})
    with pytest.raises(CheckpointFormatError, match="format_version=2"):
        checkpoint_kind({"format": "tbx-train", "format_version": 2, "model": {}})


class _ExplodingTensorList(list):
    """Pickling it raises part-way through the payload, like a disk error mid-write."""

    def __reduce__(self):
        raise OSError("injected write failure")


def test_failed_save_keeps_previous_checkpoint(write_ckpt, tmp_path):
    path = write_ckpt("checkpoint.pth", tbx_payload(epoch=4))
    broken = tbx_payload(epoch=5)
    broken["metrics"] = _ExplodingTensorList([torch.zeros(1000)])
    with pytest.raises(OSError, match="injected"):
        save_checkpoint(path, broken)
    assert load_checkpoint(path)["epoch"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth"]  # temp removed


_CHILD = textwrap.dedent(
    """
    import os, sys, time, torch
    from tbx_train.checkpoint import save_checkpoint
    torch.set_num_threads(1)
    def hang(fd):  # the bytes are in the temp file; die before the rename
        print("written", flush=True)
        time.sleep(60)
    os.fsync = hang
    save_checkpoint(sys.argv[1], {"model": {"w": torch.ones(4_000_000)}, "epoch": 5})
    """
)


def test_save_killed_mid_write_leaves_previous_loadable(write_ckpt, tmp_path):
    path = write_ckpt("checkpoint.pth", tbx_payload(epoch=4))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "written"
        temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(temps) == 1 and temps[0].stat().st_size > 16_000_000  # the big write happened
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert load_checkpoint(path)["epoch"] == 4  # the old file, whole
    time.sleep(0)  # the leftover is a dot-file, never named checkpoint.pth
    assert temps[0].name.startswith(".checkpoint.pth.")


def test_a_pickle_the_safe_loader_refuses_is_named_not_called_truncated(tmp_path):
    """A plain pickle (protocol 4, not torch.save) of a numpy scalar: torch's weights-only
    loader refuses an instruction of it; the message says what was refused."""
    import pickle

    import numpy as np

    path = tmp_path / "plain.pth"
    path.write_bytes(pickle.dumps({"model": {}, "x": np.float64(1.5)}, protocol=4))
    with pytest.raises(CheckpointFormatError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert "truncated" not in message and "Unsupported operand" in message, message
