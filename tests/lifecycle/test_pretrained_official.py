"""--pretrained from an official-layout 91-class DINO-4scale checkpoint into the 4-class model."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from tbx_train.checkpoint import save_checkpoint
from tbx_train.config import model_preset
from tbx_train.model import build_dino
from tbx_train.pretrained import PretrainedMismatchError, load_pretrained

REFERENCE = Path("/work/shared/reference/dino_4scale_r50_state_dict.txt")
CLASS_KEYS = {
    "label_enc.weight",
    "transformer.enc_out_class_embed.weight",
    "transformer.enc_out_class_embed.bias",
    *(f"class_embed.{i}.{p}" for i in range(6) for p in ("weight", "bias")),
    *(f"transformer.decoder.class_embed.{i}.{p}" for i in range(6) for p in ("weight", "bias")),
}


@pytest.fixture(scope="module")
def coco_checkpoint(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """The official layout: 91-class model state, optimizer, scheduler, epoch, args Namespace."""
    torch.set_num_threads(1)
    torch.manual_seed(91)
    model = build_dino(model_preset("dino-4scale-r50"))[0]
    state = model.state_dict()
    args = argparse.Namespace(num_classes=91, dn_labelbook_size=91, batch_size=2, world_size=8,
                              epochs=12, lr_drop=11, num_queries=900, hidden_dim=256)  # fmt: skip
    path = tmp_path_factory.mktemp("weights") / "checkpoint0011_4scale.pth"
    save_checkpoint(path, {"model": state, "optimizer": {}, "lr_scheduler": {}, "epoch": 11,
                           "args": args})  # fmt: skip
    return path, state


def test_91_class_official_weights_load_into_tbx11k_model(coco_checkpoint):
    path, coco = coco_checkpoint
    torch.manual_seed(4)
    model = build_dino(model_preset("tbx11k"))[0]
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_pretrained(model, path)

    assert (report.source_kind, report.source_num_classes, report.model_num_classes) == (
        "official-dino", 91, 4,
    )  # fmt: skip
    assert set(report.reinitialised) == CLASS_KEYS
    assert (report.skipped, report.missing, report.unexpected) == ((), (), ())
    assert len(report.loaded) + len(report.reinitialised) == 626
    if REFERENCE.exists():  # every official key name is accounted for
        names = {line.split("\t")[0] for line in REFERENCE.read_text().splitlines()[1:]}
        assert set(report.loaded) | set(report.reinitialised) == names
    state = model.state_dict()
    for name in report.loaded:
        assert torch.equal(state[name], coco[name]), name
    for name in CLASS_KEYS:  # kept at the 4-class model's own initialisation
        assert torch.equal(state[name], initial[name]), name
    assert state["class_embed.0.weight"].shape == (4, 256)
    assert "classes 91 -> 4" in "\n".join(report.summary_lines())


def test_unrelated_weights_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    save_checkpoint(path, {"model": {"encoder.weight": torch.zeros(3)}})
    model = build_dino(model_preset("tiny"))[0]
    with pytest.raises(PretrainedMismatchError, match=r"no tensor of .* fits the model"):
        load_pretrained(model, path)
