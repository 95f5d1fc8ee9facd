"""summarize_checkpoint on real torch.save files, cross-checked against torch.load(weights_only)."""

import argparse
from pathlib import Path

import pytest
import torch

from doctor_ckpt.factory import is_trainable, official_args, official_checkpoint
from tbx_doctor.checkpoint import summarize_checkpoint
from tbx_doctor.checkpoint.archive import read_checkpoint
from tbx_doctor.checkpoint.pickle_reader import ArgsRecord, TensorInfo


def _ours(obj: object) -> object:
    """Our tree in comparable form: tensors as (dtype, shape), Namespace as a dict."""
    if isinstance(obj, TensorInfo):
        return ("tensor", obj.dtype, obj.shape)
    if isinstance(obj, ArgsRecord):
        return {k: _ours(v) for k, v in obj.values.items()}
    if isinstance(obj, dict):
        return {k: _ours(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_ours(v) for v in obj)
    return obj


def _torch(obj: object) -> object:
    """torch.load's tree in the same form."""
    if isinstance(obj, torch.Tensor):
        return ("tensor", str(obj.dtype).removeprefix("torch."), tuple(obj.shape))
    if isinstance(obj, argparse.Namespace):
        return {k: _torch(v) for k, v in vars(obj).items()}
    if isinstance(obj, dict):
        return {k: _torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_torch(v) for v in obj)
    return obj


def _torch_load(path: Path) -> dict:
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, weights_only=True)


def test_tree_matches_torch_load(unfinished_official: Path, mid_epoch_tbx: Path) -> None:
    for path in (unfinished_official, mid_epoch_tbx):
        assert _ours(read_checkpoint(path).tree) == _torch(_torch_load(path))


def test_counts_match_torch_load(unfinished_official: Path) -> None:
    loaded = _torch_load(unfinished_official)
    model = loaded["model"]
    unique = {t.untyped_storage().data_ptr(): t.numel() for t in model.values()}
    trainable = {
        t.untyped_storage().data_ptr(): t.numel() for k, t in model.items() if is_trainable(k)
    }
    steps = {int(s["step"].item()) for s in loaded["optimizer"]["state"].values()}
    summary = summarize_checkpoint(unfinished_official)
    assert summary.model_keys == len(model) == 626
    assert summary.parameter_count == sum(unique.values())
    # Shared heads (decoder.class_embed.i / class_embed.i) must count once, as in the model.
    assert summary.parameter_count < sum(t.numel() for t in model.values())
    assert summary.trainable_parameter_count == sum(trainable.values())
    assert {summary.optimizer_steps} == steps == {6888 * 12}
    assert summary.lrs == tuple(g["lr"] for g in loaded["optimizer"]["param_groups"])


def test_official_unfinished(unfinished_official: Path) -> None:
    s = summarize_checkpoint(unfinished_official)
    assert (s.format, s.container, s.unsafe_globals) == ("official-dino", "zip", ())
    assert (s.epoch, s.epochs_planned, s.completed, s.next_iteration) == (11, 50, False, 0)
    assert (s.lr_step_size, s.lr_gamma, s.lr_last_epoch, s.args_lr_drop) == (40, 0.1, 12, 40)
    assert (s.batch_size, s.world_size, s.grad_accum, s.effective_batch) == (1, 1, None, 1)
    assert s.steps_per_epoch == 6888
    assert (s.num_classes, s.args_num_classes, s.dn_labelbook_size, s.num_queries) == (4, 4, 4, 900)
    assert s.has_ema and s.has_optimizer and s.has_lr_scheduler
    assert s.output_dir == "/scratch/u/outputs/tbx11k_run_1"
    assert s.resume == "/scratch/u/outputs/run_0/checkpoint.pth"
    assert s.pretrained is None
    assert s.file_size == unfinished_official.stat().st_size
    assert s.notes == ()


def test_official_finished(finished_official: Path) -> None:
    s = summarize_checkpoint(finished_official)
    assert (s.epoch, s.epochs_planned, s.completed, s.has_ema) == (49, 50, True, False)
    assert s.pretrained == "/scratch/u/dino_pretrained/checkpoint0011_4scale.pth"
    assert s.lrs == pytest.approx((1e-5, 1e-6))  # after the StepLR drop at epoch 40: x 0.1


def test_tbx_train_mid_epoch(mid_epoch_tbx: Path) -> None:
    s = summarize_checkpoint(mid_epoch_tbx)
    assert s.format == "tbx-train"
    assert (s.epoch, s.epochs_planned, s.completed, s.next_iteration) == (11, 50, False, 1000)
    assert (s.batch_size, s.world_size, s.grad_accum, s.effective_batch) == (1, 1, 2, 2)
    assert s.global_step == s.optimizer_steps == 3444 * 12 + 500
    assert s.steps_per_epoch == 3444  # the unfinished epoch's 500 steps are not counted
    assert (s.num_classes, s.has_ema, s.output_dir, s.resume) == (
        4,
        True,
        "/runs/a",
        "/runs/a/c.pth",
    )


def test_detr_family_and_disagreeing_records(tmp_path: Path) -> None:
    """A DINO-layout model without dn args is official-dino by its label_enc; a DETR-style head
    (num_classes + 1 rows) is read as such, and args that disagree with the head are noted."""
    path = tmp_path / "detr.pth"
    head = {"class_embed.weight": torch.zeros(92, 4), "query_embed.weight": torch.zeros(100, 8)}
    args = argparse.Namespace(epochs=500, lr_drop=400, batch_size=2, world_size=8, num_classes=3)
    torch.save({"model": head, "optimizer": {}, "epoch": 10, "args": args}, path)
    s = summarize_checkpoint(path)
    assert (s.format, s.num_classes, s.num_queries, s.effective_batch) == (
        "detr-family",
        91,
        100,
        16,
    )
    assert any("92 outputs" in n for n in s.notes)
    assert any("num_classes=3" in n and "91 outputs" in n for n in s.notes)


def test_bare_state_dict_and_accumulation_arg(tmp_path: Path) -> None:
    bare = tmp_path / "weights.pth"
    weights = {"label_enc.weight": torch.zeros(5, 2), "class_embed.0.weight": torch.zeros(4, 2)}
    torch.save(weights, bare)
    s = summarize_checkpoint(bare)
    assert (s.format, s.model_keys, s.parameter_count, s.num_classes) == ("unknown", 2, 18, 4)
    assert s.epoch is None
    forked = tmp_path / "fork.pth"
    official_checkpoint(forked, epoch=0, args=official_args(accumulation_steps=2), scale=64)
    assert summarize_checkpoint(forked).grad_accum == 2
    assert summarize_checkpoint(forked).effective_batch == 2
