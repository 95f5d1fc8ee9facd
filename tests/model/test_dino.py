"""The DINO model: official checkpoint layout, parameter counts, output contract, training step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision

from tbx_train.config import model_preset
from tbx_train.model import build_dino
from tbx_train.model.backbone import BackboneWeightsError
from tbx_train.model.dino import build_model

REFERENCE_KEYS = Path(__file__).parent / "data" / "official_dino_4scale_r50_state_dict.txt"
SIZE = 96  # smallest convenient size giving >= 100 encoder tokens (12^2 + 6^2 + 3^2 + 2^2)


def _reference_layout() -> list[tuple[str, list[int]]]:
    rows = REFERENCE_KEYS.read_text().splitlines()[1:]  # first line: a comment
    return [(key, json.loads(shape)) for key, shape, _ in (row.split("\t") for row in rows)]


def test_tbx11k_state_dict_has_the_official_keys_and_shapes_in_order():
    model = build_model(model_preset("tbx11k"))
    layout = _reference_layout()
    state = model.state_dict()
    assert len(layout) == 626
    assert [(k, list(v.shape)) for k, v in state.items()] == layout
    official = {key: torch.randn(shape) for key, shape in layout}
    model.load_state_dict(official, strict=True)
    # Aliases are one parameter: loading the official file leaves them equal.
    assert model.transformer.decoder.bbox_embed[3] is model.bbox_embed[0]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 46_603_792


def test_coco_preset_parameter_count():
    model = build_model(model_preset("dino-4scale-r50"))
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 46_670_782


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_dino(model_preset("tiny"))


def _targets():
    return [
        {
            "labels": torch.tensor([1, 3]),
            "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.6, 0.1, 0.2]]),
        },
        {"labels": torch.tensor([2]), "boxes": torch.tensor([[0.4, 0.4, 0.3, 0.1]])},
    ]


def _batch(batch_size=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch_size, 3, SIZE, SIZE, generator=generator)
    return images, torch.zeros(batch_size, SIZE, SIZE, dtype=torch.bool)


def test_tiny_forward_backward_follows_the_contract(tiny):
    model, criterion, _ = tiny
    model.train()
    images, masks = _batch()
    masks[1, :, 80:] = True  # image 1 is narrower: padded on the right
    targets = _targets()
    outputs = model(images, masks, targets)
    assert outputs["pred_logits"].shape == (2, 100, 4) and outputs["pred_boxes"].shape == (
        2,
        100,
        4,
    )
    assert len(outputs["aux_outputs"]) == 1
    assert outputs["interm_outputs"]["pred_boxes"].shape == (2, 100, 4)
    dn_meta = outputs["dn_meta"]
    assert (dn_meta["num_dn_group"], dn_meta["pad_size"]) == (40, 160)  # dn_number 20: quirk
    assert dn_meta["output_known_lbs_bboxes"]["pred_logits"].shape == (2, 160, 4)
    assert len(dn_meta["output_known_lbs_bboxes"]["aux_outputs"]) == 1
    losses = criterion(outputs, targets)
    total = sum(losses[k] * w for k, w in criterion.weight_dict.items())
    model.zero_grad()
    total.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert all(p.grad is not None and p.grad.isfinite().all() for p in trainable.values())
    assert any(n.startswith("backbone.0.body.conv1") for n in trainable)  # tiny: freeze_stem off
    assert any(n.startswith("backbone.0.body.layer2") for n in trainable)


def test_freeze_stem_freezes_the_stem_and_layer1_only():
    model = build_model(model_preset("tiny", freeze_stem=True))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert not any(
        n.startswith(("backbone.0.body.layer1", "backbone.0.body.conv1")) for n in trainable
    )
    assert any(n.startswith("backbone.0.body.layer2") for n in trainable)


def test_without_boxes_or_in_eval_there_is_no_denoising(tiny):
    model, _, _ = tiny
    images, masks = _batch()
    empty = [{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}] * 2
    with torch.no_grad():
        model.train()
        assert model(images, masks, empty)["dn_meta"] is None
        model.eval()
        assert model(images, masks, _targets())["dn_meta"] is None


def test_batch_of_two_equals_two_batches_of_one(tiny):
    model, _, _ = tiny
    model.eval()
    images, masks = _batch()
    with torch.no_grad():
        both = model(images, masks)
        singles = [model(images[i : i + 1], masks[i : i + 1]) for i in range(2)]
    for key in ("pred_logits", "pred_boxes"):
        torch.testing.assert_close(
            both[key], torch.cat([s[key] for s in singles]), atol=1e-4, rtol=1e-4
        )
        joined = torch.cat([s["interm_outputs"][key] for s in singles])
        torch.testing.assert_close(both["interm_outputs"][key], joined, atol=1e-4, rtol=1e-4)


def test_images_too_small_for_the_queries_are_refused(tiny):
    model, _, _ = tiny
    model.eval()
    with torch.no_grad(), pytest.raises(ValueError, match="num_queries=100"):
        model(torch.zeros(1, 3, 64, 64), torch.zeros(1, 64, 64, dtype=torch.bool))


def test_local_backbone_weights_are_loaded(tmp_path):
    torch.manual_seed(1)
    resnet = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(resnet.state_dict(), path)
    model = build_model(model_preset("tiny", backbone_weights=str(path)))
    body = model.backbone[0].body
    torch.testing.assert_close(body.layer3[0].conv1.weight, resnet.layer3[0].conv1.weight)
    torch.testing.assert_close(body.bn1.running_var, resnet.bn1.running_var)
    with pytest.raises(BackboneWeightsError, match="does not exist"):
        build_model(model_preset("tiny", backbone_weights=str(tmp_path / "missing.pth")))
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(BackboneWeightsError, match="do not fit"):
        build_model(model_preset("tiny", backbone_weights=str(path)))


def test_heads_start_from_the_focal_prior_and_zero_box_deltas(tiny):
    model, _, _ = tiny
    fresh = build_model(model_preset("tiny"))
    for heads in (fresh.class_embed, [fresh.transformer.enc_out_class_embed]):
        torch.testing.assert_close(heads[0].bias, torch.full((4,), -4.59512), atol=1e-5, rtol=0)
    for head in (fresh.bbox_embed[0], fresh.transformer.enc_out_bbox_embed):
        assert head.layers[-1].weight.abs().sum() == 0 and head.layers[-1].bias.abs().sum() == 0
    # Decoder heads are one module per model; the encoder's are separate copies.
    assert model.class_embed[0] is model.class_embed[1] is model.transformer.decoder.class_embed[1]
    assert model.transformer.enc_out_bbox_embed is not model.bbox_embed[0]


def test_look_forward_twice_keeps_the_refinement_gradient_but_feeds_detached_boxes(tiny):
    model, _, _ = tiny
    decoder = model.transformer.decoder
    generator = torch.Generator().manual_seed(0)
    shapes = [(4, 4), (2, 2), (1, 1), (1, 1)]
    memory = torch.randn(1, 22, 128, generator=generator)
    inputs = (
        torch.randn(1, 5, 128, generator=generator),  # content queries
        torch.randn(1, 5, 4, generator=generator),  # reference boxes (logits)
        memory,
        torch.zeros(1, 22, dtype=torch.bool),
        shapes,
        torch.ones(1, 4, 2),
        None,
    )
    last_box_layer = decoder.bbox_embed[0].layers[-1].weight
    hs, references = decoder(*inputs)
    # Layer 1 predicts from references[1], the layer-0 refinement with its gradient ...
    (grad,) = torch.autograd.grad(references[1].sum(), last_box_layer)
    assert grad.abs().sum() > 0
    # ... while layer 1 itself was fed the detached box: its output does not depend on the head.
    (grad,) = torch.autograd.grad(hs[1].sum(), last_box_layer, allow_unused=True)
    assert grad is None or grad.abs().sum() == 0
