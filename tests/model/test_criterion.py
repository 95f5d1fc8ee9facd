"""SetCriterion: hand-computed loss values, normalisation, empty targets, denoising, key set."""

from __future__ import annotations

import math
from dataclasses import replace
from operator import itemgetter

import pytest
import torch
import torch.nn.functional as F
from detection_outputs import map_tensors, random_dn_meta, random_outputs, random_targets

from tbx_train.config import MODEL_PRESETS
from tbx_train.model.criterion import (
    SetCriterion,
    build_weight_dict,
    dn_positive_indices,
    sigmoid_focal_loss,
    weighted_total,
)
from tbx_train.model.matcher import HungarianMatcher

ALPHA = 0.25
LOGGING_KEYS = {"class_error", "class_error_images"}


def _criterion(num_classes: int = 4, dec_layers: int = 6) -> SetCriterion:
    config = replace(MODEL_PRESETS["tbx11k"], num_classes=num_classes, dec_layers=dec_layers)
    matcher = HungarianMatcher(2.0, 5.0, 2.0)
    return SetCriterion(num_classes, matcher, build_weight_dict(config), dec_layers=dec_layers)


def _focal_by_hand(logit: float, positive: bool) -> float:
    p = 1 / (1 + math.exp(-logit))
    if positive:
        return ALPHA * (1 - p) ** 2 * -math.log(p)
    return (1 - ALPHA) * p**2 * -math.log(1 - p)


def _one_query_case() -> tuple[dict, list[dict]]:
    """One image, one query, one target of class 1 (of 2); dec_layers 1, interm = final."""
    layer = {
        "pred_logits": torch.tensor([[[0.3, -1.2]]]),
        "pred_boxes": torch.tensor([[[0.5, 0.5, 0.2, 0.2]]]),  # xyxy 0.4 0.4 0.6 0.6
    }
    outputs = {**layer, "aux_outputs": [], "interm_outputs": dict(layer), "dn_meta": None}
    target = {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.55, 0.5, 0.2, 0.4]])}
    return outputs, [target]  # target xyxy 0.45 0.3 0.65 0.7


def test_one_query_one_target_by_hand() -> None:
    outputs, targets = _one_query_case()
    losses = _criterion(num_classes=2, dec_layers=1)(outputs, targets)
    focal = _focal_by_hand(0.3, positive=False) + _focal_by_hand(-1.2, positive=True)
    l1 = 0.05 + 0.0 + 0.0 + 0.2
    # Intersection 0.15 x 0.2 = 0.03, union 0.04 + 0.08 - 0.03 = 0.09, hull 0.25 x 0.4 = 0.1.
    giou = 0.03 / 0.09 - (0.1 - 0.09) / 0.1
    for suffix in ("", "_interm"):
        assert losses[f"loss_ce{suffix}"].item() == pytest.approx(focal, rel=1e-5)
        assert losses[f"loss_bbox{suffix}"].item() == pytest.approx(l1, rel=1e-5)
        assert losses[f"loss_giou{suffix}"].item() == pytest.approx(1 - giou, rel=1e-5)
    assert losses["class_error"].item() == 100.0  # argmax is class 0, the target is 1
    assert losses["class_error_images"].item() == 1.0
    halved = _criterion(num_classes=2, dec_layers=1)(outputs, targets, num_boxes=2.0)
    assert halved["loss_ce"].item() == pytest.approx(focal / 2, rel=1e-5)
    assert halved["loss_giou"].item() == pytest.approx((1 - giou) / 2, rel=1e-5)


def test_class_error_is_zero_when_the_matched_query_is_right() -> None:
    outputs, targets = _one_query_case()
    outputs["pred_logits"] = torch.tensor([[[-1.0, 2.0]]])
    assert _criterion(num_classes=2, dec_layers=1)(outputs, targets)["class_error"].item() == 0.0


def test_key_set_equals_weight_dict_plus_logging_values() -> None:
    generator = torch.Generator().manual_seed(0)
    criterion = _criterion()
    outputs = random_outputs(2, 6, 4, 6, generator)
    losses = criterion(outputs, random_targets([2, 1], 4, generator))
    assert set(losses) == set(criterion.weight_dict) | LOGGING_KEYS
    assert all(value.dim() == 0 for value in losses.values())


def test_weight_dict_has_39_terms_for_6_layers_with_the_config_coefficients() -> None:
    config = replace(MODEL_PRESETS["tbx11k"], cls_loss_coef=1.5, bbox_loss_coef=4.0)
    weights = build_weight_dict(config)
    assert len(weights) == 39
    suffixes = ["", "_0", "_1", "_2", "_3", "_4", "_interm", "_dn"]
    suffixes += ["_dn_0", "_dn_1", "_dn_2", "_dn_3", "_dn_4"]
    names = {"loss_ce": 1.5, "loss_bbox": 4.0, "loss_giou": 2.0}
    assert weights == {f"{name}{s}": coef for s in suffixes for name, coef in names.items()}
    assert len(build_weight_dict(MODEL_PRESETS["tiny"])) == 3 * (1 + 1 + 1 + 2)


def test_empty_targets_everywhere() -> None:
    generator = torch.Generator().manual_seed(1)
    outputs = random_outputs(2, 5, 4, 6, generator)
    criterion = _criterion()
    losses = criterion(outputs, random_targets([0, 0], 4, generator))
    assert all(torch.isfinite(value) for value in losses.values())
    assert all(losses[k].item() == 0.0 for k in losses if "bbox" in k or "giou" in k)
    assert losses["loss_ce"].item() > 0  # every query is pushed towards "no object"
    assert losses["class_error"].item() == 0.0
    assert losses["class_error_images"].item() == 0.0
    weighted_total(losses, criterion.weight_dict).backward()
    assert torch.isfinite(outputs["pred_logits"].grad).all()


def test_class_error_counts_only_images_with_targets() -> None:
    generator = torch.Generator().manual_seed(2)
    outputs = random_outputs(3, 5, 4, 6, generator)
    targets = random_targets([0, 2, 0], 4, generator)
    criterion = _criterion()
    losses = criterion(outputs, targets)
    assert losses["class_error_images"].item() == 1.0
    (pred_idx, tgt_idx) = criterion.matcher(outputs, targets)[1]
    predicted = outputs["pred_logits"][1, pred_idx].argmax(-1)
    correct = (predicted == targets[1]["labels"][tgt_idx]).sum().item()
    assert losses["class_error"].item() == pytest.approx(100.0 - 50.0 * correct)


def test_explicit_num_boxes_equal_to_the_local_count_changes_nothing() -> None:
    generator = torch.Generator().manual_seed(3)
    outputs = random_outputs(2, 6, 4, 6, generator)
    targets = random_targets([3, 1], 4, generator)
    criterion = _criterion()
    counted, explicit = criterion(outputs, targets), criterion(outputs, targets, num_boxes=4.0)
    for key in counted:
        torch.testing.assert_close(counted[key], explicit[key])


def test_micro_batch_losses_with_the_global_count_sum_to_the_batch_loss() -> None:
    # What the engine relies on for "same results at any scale": with num_boxes = the count of
    # the whole step, the losses of micro-batches add up to the loss of the concatenated batch.
    # Both micro-batches have max 2 GT, so their dn layout (2 groups of 4) is the batch's.
    generator = torch.Generator().manual_seed(4)
    outputs = random_outputs(3, 7, 4, 6, generator)
    outputs["dn_meta"] = random_dn_meta(3, 2, 2, 4, 6, generator)
    targets = random_targets([2, 2, 0], 4, generator)
    criterion = _criterion()
    whole = criterion(outputs, targets)
    parts = [
        criterion(map_tensors(outputs, itemgetter(slice(a, b))), targets[a:b], num_boxes=4.0)
        for a, b in ((0, 1), (1, 3))
    ]
    for key in criterion.weight_dict:
        torch.testing.assert_close(parts[0][key] + parts[1][key], whole[key])
    assert whole["loss_bbox_dn"].item() > 0
    # Accumulating the micro-batch gradients gives the gradient of the whole batch.
    weighted_total(whole, criterion.weight_dict).backward()
    whole_grad = outputs["pred_logits"].grad.clone()
    outputs["pred_logits"].grad = None
    for part in parts:
        weighted_total(part, criterion.weight_dict).backward()
    torch.testing.assert_close(outputs["pred_logits"].grad, whole_grad)


def test_dn_positive_indices_follow_the_official_layout() -> None:
    targets = random_targets([2, 1, 0], 4, torch.Generator().manual_seed(5))
    dn_meta = {"pad_size": 8, "num_dn_group": 2}  # single_pad 4: slots 0-1 positive, 2-3 negative
    indices = dn_positive_indices(dn_meta, targets)
    assert [(p.tolist(), t.tolist()) for p, t in indices] == [
        ([0, 1, 4, 5], [0, 1, 0, 1]),
        ([0, 4], [0, 0]),
        ([], []),
    ]
    with pytest.raises(ValueError, match="positive slots"):
        dn_positive_indices({"pad_size": 4, "num_dn_group": 2}, targets)


def _focal_sum_by_hand(logits: torch.Tensor, positives: set[tuple[int, int, int]]) -> float:
    return sum(
        _focal_by_hand(logits[b, q, c].item(), (b, q, c) in positives)
        for b in range(logits.shape[0])
        for q in range(logits.shape[1])
        for c in range(logits.shape[2])
    )


def test_dn_losses_use_the_positive_queries_and_divide_by_groups() -> None:
    generator = torch.Generator().manual_seed(6)
    targets = random_targets([2, 1], 4, generator)
    outputs = random_outputs(2, 5, 4, 2, generator)
    outputs["dn_meta"] = random_dn_meta(2, 2, 2, 4, 2, generator)
    known = outputs["dn_meta"]["output_known_lbs_bboxes"]
    positive_slots = {0: [0, 1, 4, 5], 1: [0, 4]}
    with torch.no_grad():  # positives sit exactly on their GT; negatives and padding stay random
        for b, slots in positive_slots.items():
            for slot in slots:
                known["pred_boxes"][b, slot] = targets[b]["boxes"][slot % 4]
    losses = _criterion(dec_layers=2)(outputs, targets)
    assert losses["loss_bbox_dn"].item() == 0.0
    assert losses["loss_giou_dn"].item() == pytest.approx(0.0, abs=1e-6)
    assert losses["loss_bbox_dn_0"].item() > 0  # the aux dn layer was not placed on the GT
    positives = {
        (b, slot, int(targets[b]["labels"][slot % 4]))
        for b, slots in positive_slots.items()
        for slot in slots
    }
    expected = _focal_sum_by_hand(known["pred_logits"], positives) / (3 * 2)
    assert losses["loss_ce_dn"].item() == pytest.approx(expected, rel=1e-5)


def test_without_dn_meta_the_dn_losses_are_zeros() -> None:
    generator = torch.Generator().manual_seed(7)
    losses = _criterion()(random_outputs(1, 4, 4, 6, generator), random_targets([1], 4, generator))
    dn_keys = [k for k in losses if "_dn" in k]
    assert len(dn_keys) == 18
    assert all(losses[k].item() == 0.0 for k in dn_keys)


def test_every_layer_is_matched_on_its_own() -> None:
    generator = torch.Generator().manual_seed(8)
    outputs = random_outputs(1, 4, 4, 2, generator)
    targets = random_targets([1], 4, generator)
    with torch.no_grad():
        outputs["aux_outputs"][0]["pred_boxes"][0, 3] = targets[0]["boxes"][0]
        outputs["aux_outputs"][0]["pred_logits"][0, 3, targets[0]["labels"][0]] = 8.0
    losses = _criterion(dec_layers=2)(outputs, targets)
    assert losses["loss_bbox_0"].item() == 0.0
    assert losses["loss_bbox"].item() > 0


def test_gradients_reach_every_output() -> None:
    generator = torch.Generator().manual_seed(9)
    outputs = random_outputs(2, 5, 4, 2, generator)
    outputs["dn_meta"] = random_dn_meta(2, 2, 3, 4, 2, generator)
    criterion = _criterion(dec_layers=2)
    losses = criterion(outputs, random_targets([2, 1], 4, generator))
    weighted_total(losses, criterion.weight_dict).backward()
    known = outputs["dn_meta"]["output_known_lbs_bboxes"]
    for layer in (outputs, outputs["aux_outputs"][0], outputs["interm_outputs"], known):
        assert layer["pred_logits"].grad.abs().sum() > 0
        assert layer["pred_boxes"].grad.abs().sum() > 0


def test_inconsistent_inputs_are_refused_with_a_reason() -> None:
    generator = torch.Generator().manual_seed(10)
    outputs = random_outputs(1, 4, 4, 6, generator)
    with pytest.raises(ValueError, match="max category id"):
        _criterion()(outputs, [{"labels": torch.tensor([4]), "boxes": torch.rand(1, 4)}])
    with pytest.raises(ValueError, match="aux outputs"):
        _criterion(dec_layers=3)(outputs, random_targets([1], 4, generator))
    with pytest.raises(ValueError, match="num_classes"):
        _criterion(num_classes=5)(outputs, random_targets([1], 4, generator))
    with pytest.raises(KeyError, match="weighted keys"):
        weighted_total({}, {"loss_ce": 1.0})


@pytest.mark.parametrize("alpha", [0.25, -1.0])
def test_sparse_focal_loss_equals_the_dense_one_hot_formula(alpha: float) -> None:
    generator = torch.Generator().manual_seed(14)
    logits = (4 * torch.randn(2, 9, 5, generator=generator, dtype=torch.float64)).requires_grad_()
    positives = (torch.tensor([0, 0, 1]), torch.tensor([2, 7, 7]), torch.tensor([4, 0, 1]))
    onehot = torch.zeros_like(logits)
    onehot[positives] = 1.0
    # The textbook form: BCE * (1 - p_t)^gamma * alpha_t with a dense one-hot target.
    prob = logits.sigmoid()
    p_t = prob * onehot + (1 - prob) * (1 - onehot)
    alpha_t = alpha * onehot + (1 - alpha) * (1 - onehot) if alpha >= 0 else 1.0
    bce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    dense = (alpha_t * bce * (1 - p_t) ** 2).sum()
    (dense_grad,) = torch.autograd.grad(dense, logits)
    sparse = sigmoid_focal_loss(logits, positives, alpha, 2.0)
    (sparse_grad,) = torch.autograd.grad(sparse, logits)
    torch.testing.assert_close(sparse, dense)
    torch.testing.assert_close(sparse_grad, dense_grad)


def test_nan_predictions_give_a_nan_loss_not_an_exception() -> None:
    generator = torch.Generator().manual_seed(11)
    outputs = random_outputs(1, 4, 4, 2, generator)
    with torch.no_grad():
        outputs["pred_logits"][0, 0, 0] = float("nan")
    losses = _criterion(dec_layers=2)(outputs, random_targets([1], 4, generator))
    assert torch.isnan(losses["loss_ce"])


def test_half_precision_outputs_give_float32_losses_close_to_float32_inputs() -> None:
    generator = torch.Generator().manual_seed(12)
    outputs = random_outputs(2, 6, 4, 2, generator)
    targets = random_targets([2, 1], 4, generator)
    criterion = _criterion(dec_layers=2)
    reference = criterion(outputs, targets)
    halved = criterion(map_tensors(outputs, lambda x: x.detach().bfloat16()), targets)
    for key in criterion.weight_dict:
        assert halved[key].dtype == torch.float32
        torch.testing.assert_close(halved[key], reference[key], rtol=0.05, atol=0.02)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_losses_equal_cpu_losses() -> None:
    generator = torch.Generator().manual_seed(13)
    outputs = random_outputs(2, 6, 4, 2, generator)
    outputs["dn_meta"] = random_dn_meta(2, 2, 2, 4, 2, generator)
    targets = random_targets([2, 0], 4, generator)
    criterion = _criterion(dec_layers=2)
    on_cpu = criterion(outputs, targets)
    on_cuda = criterion(
        map_tensors(outputs, lambda x: x.detach().cuda()),
        [{k: v.cuda() for k, v in t.items()} for t in targets],
    )
    for key, value in on_cpu.items():
        assert on_cuda[key].device.type == "cuda"
        torch.testing.assert_close(on_cuda[key].cpu(), value, rtol=1e-4, atol=1e-5)


def test_a_given_normaliser_below_one_is_used_as_it_is() -> None:
    # The engine passes max(boxes of the step, 1) / W: 0.5 per rank for a box-less step on 2
    # ranks. Clamping it again to 1 would halve the 2 ranks' averaged gradient.
    outputs, targets = _one_query_case()
    empty = [{"labels": torch.tensor([], dtype=torch.int64), "boxes": torch.zeros(0, 4)}]
    criterion = _criterion(num_classes=2, dec_layers=1)
    counted = criterion(outputs, empty)  # counted: 0 boxes, clamped to 1
    shared = criterion(outputs, empty, num_boxes=0.5)
    assert counted["loss_ce"].item() > 0  # a box-less image still has a classification loss
    assert shared["loss_ce"].item() == 2 * counted["loss_ce"].item()
    with pytest.raises(ValueError, match="num_boxes must be > 0"):
        criterion(outputs, targets, num_boxes=0.0)
