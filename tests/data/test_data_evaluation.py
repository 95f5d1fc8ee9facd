"""Evaluation: COCOeval wrapper equals pycocotools run directly; FROC on hand-made predictions."""

import contextlib
import io

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from tbx_train.evaluation import (
    FROC_FPI,
    detections_from_results,
    evaluate_coco,
    evaluate_froc,
    load_coco_gt,
)


def _gt(boxes_per_image: dict[int, list[tuple[int, list[float]]]]) -> dict:
    images = [
        {"id": i, "file_name": f"{i}.png", "width": 100, "height": 100} for i in boxes_per_image
    ]
    anns = []
    for image_id, boxes in boxes_per_image.items():
        for category_id, bbox in boxes:
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": category_id,
                         "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})  # fmt: skip
    categories = [{"id": k, "name": f"c{k}"} for k in (1, 2, 3)]
    return {"images": images, "annotations": anns, "categories": categories}


def _det(image_id, category_id, bbox, score):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score}


def test_coco_stats_equal_pycocotools_run_directly(tmp_path):
    rng = np.random.default_rng(0)
    gt = {i: [(int(rng.integers(1, 4)), [*rng.uniform(0, 50, 2), *rng.uniform(10, 45, 2)])
              for _ in range(int(rng.integers(0, 4)))] for i in range(1, 21)}  # fmt: skip
    coco_gt = load_coco_gt(_gt(gt))
    detections = []
    for image_id, boxes in gt.items():
        for category_id, (x, y, w, h) in boxes:  # jittered true boxes, some with the wrong class
            label = category_id if rng.uniform() < 0.8 else 1 + category_id % 3
            box = [x + rng.normal(0, 3), y + rng.normal(0, 3), w * rng.uniform(0.8, 1.2), h]
            detections.append(_det(image_id, label, box, float(rng.uniform(0.3, 1))))
        detections.append(_det(image_id, 2, [*rng.uniform(0, 60, 2), 20.0, 20.0], 0.5))
    printed = []
    result = evaluate_coco(coco_gt, detections, echo=printed.append)
    with contextlib.redirect_stdout(io.StringIO()):
        reference = COCOeval(coco_gt, coco_gt.loadRes(detections), iouType="bbox")
        reference.evaluate()
        reference.accumulate()
        reference.summarize()
    assert result.stats == tuple(float(s) for s in reference.stats)
    assert 0.2 < result.stats[1] < 1.0  # AP50 is neither trivial nor broken
    assert "IoU metric: bbox" in printed[0]
    assert " Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]" in printed[0]
    assert result.as_dict()["AP50"] == result.stats[1]


def test_coco_with_no_detections_and_an_image_subset():
    coco_gt = load_coco_gt(_gt({1: [(1, [10, 10, 20, 20])], 2: [(2, [5, 5, 30, 30])]}))
    assert evaluate_coco(coco_gt, [], echo=None).stats[0] == 0.0
    perfect = [_det(1, 1, [10, 10, 20, 20], 0.9)]
    assert evaluate_coco(coco_gt, perfect, echo=None).stats[1] == pytest.approx(0.5)  # 2 classes
    assert evaluate_coco(coco_gt, perfect, image_ids=[1], echo=None).stats[1] == pytest.approx(
        1.0
    )  # class 2: no GT there


def test_detections_from_results_convert_xyxy_to_xywh():
    boxes = torch.tensor([[10.0, 20.0, 40.0, 60.0], [0.0, 0.0, 1.0, 2.0]])
    results = [{"scores": torch.tensor([0.9, 0.1]), "labels": torch.tensor([3, 1]), "boxes": boxes}]
    detections = detections_from_results([7], results)
    assert detections[0] == _det(7, 3, [10.0, 20.0, 30.0, 40.0], pytest.approx(0.9))
    assert detections[1]["bbox"] == [0.0, 0.0, 1.0, 2.0] and len(detections) == 2


@pytest.fixture
def froc_case():
    """4 images: 1 has GT A, 2 has GT B and C, 3 and 4 have none.

    By score (threshold = that score), overall (4 images) / TB images (1, 2):
      0.9 A found (any class)       detected 1  FP 0 / 0
      0.8 B found, wrong class      detected 2  FP 0 / 0
      0.7 FP on image 3             detected 2  FP 1 / 0
      0.6 FP on image 2 (IoU 1/3 with B)   FP 2 / 1
      0.5 A again: not an FP        FP 2 / 1
      0.3 FP on image 1             FP 3 / 2
      0.25 FP on image 2            FP 4 / 3
      0.2 C found                   detected 3  FP 4 / 3
      0.1 FP on image 4             FP 5 / 3
    """
    coco_gt = load_coco_gt(_gt({
        1: [(1, [10, 10, 20, 20])],
        2: [(1, [50, 50, 20, 20]), (3, [5, 5, 10, 10])],
        3: [], 4: [],
    }))  # fmt: skip
    detections = [
        _det(1, 1, [11, 10, 20, 20], 0.9),
        _det(2, 2, [50, 52, 20, 20], 0.8),
        _det(3, 1, [10, 10, 20, 20], 0.7),
        _det(2, 1, [60, 50, 20, 20], 0.6),  # overlaps B: 200 / 600 < 0.5
        _det(1, 3, [10, 11, 20, 19], 0.5),
        _det(1, 1, [70, 70, 10, 10], 0.3),
        _det(2, 1, [80, 0, 10, 10], 0.25),
        _det(2, 1, [5, 5, 10, 9], 0.2),
        _det(4, 1, [0, 0, 5, 5], 0.1),
    ]
    return coco_gt, detections


def test_froc_matches_hand_computed_values(froc_case):
    coco_gt, detections = froc_case
    result = evaluate_froc(coco_gt, detections)
    assert result.fpi == FROC_FPI
    assert (result.num_images, result.num_tb_images, result.num_gt_boxes) == (4, 2, 3)
    # Overall, FP budget = FPI * 4: 0.125 -> 0.5, 0.25 -> 1, 0.5 -> 2 FPs allow thresholds down
    # to 0.8 / 0.7 / 0.5 (2 detected); 1 -> 4 FPs reaches 0.2 (all 3); more changes nothing.
    third = pytest.approx(2 / 3)
    assert result.sensitivity == (third, third, third, 1.0, 1.0, 1.0, 1.0)
    assert result.mean == pytest.approx(6 / 7)
    # TB images, FP budget = FPI * 2: 0.125..1 -> 0.25..2 FPs stop above 0.25 (2 detected);
    # 2 -> 4 FPs reaches 0.2 (3 detected).
    assert result.tb_sensitivity == (third, third, third, third, 1.0, 1.0, 1.0)
    assert result.tb_mean == pytest.approx(17 / 21)
    assert "  FPI = 2.000:  Sensitivity = 1.0000 | 1.0000" in result.render()


def test_froc_iou_threshold_is_inclusive_and_below_is_a_miss():
    coco_gt = load_coco_gt(_gt({1: [(1, [0, 0, 10, 10])]}))
    at_half = [_det(1, 1, [0, 0, 20, 10], 0.9)]  # IoU exactly 0.5: detected
    below = [_det(1, 1, [0, 0, 21, 10], 0.9)]  # IoU 0.476: a miss (and an FP)
    assert evaluate_froc(coco_gt, at_half).sensitivity[0] == 1.0
    assert evaluate_froc(coco_gt, below).sensitivity == (0.0,) * 7


def test_froc_without_gt_is_minus_one_and_without_predictions_zero():
    empty = evaluate_froc(load_coco_gt(_gt({1: [], 2: []})), [_det(1, 1, [0, 0, 5, 5], 0.5)])
    assert empty.sensitivity == (-1.0,) * 7 and empty.mean == -1.0 and empty.num_tb_images == 0
    none = evaluate_froc(load_coco_gt(_gt({1: [(1, [0, 0, 5, 5])]})), [])
    assert none.sensitivity == (0.0,) * 7


def test_load_coco_gt_reads_a_json_file(tmp_path):
    import json

    path = tmp_path / "gt.json"
    path.write_text(json.dumps(_gt({1: [(2, [1, 2, 3, 4])]})))
    coco = load_coco_gt(path)
    assert isinstance(coco, COCO) and coco.getImgIds() == [1] and len(coco.getAnnIds()) == 1


def test_targets_turned_back_into_detections_score_perfectly(tmp_path):
    """The chain's conventions agree: dataset targets (cxcywh, normalised) scaled by orig_size
    and passed through detections_from_results reproduce the json boxes (AP 1, FROC 1)."""
    from tbx_train.data import TransformConfig, build_datasets, tbx11k_source
    from tbx_train.data.synth import write_synthetic_tbx11k

    write_synthetic_tbx11k(tmp_path, images=30, seed=4, size=64)
    _, val = build_datasets(tbx11k_source(tmp_path), TransformConfig.around(64, val_size=80))
    ids, results = [], []
    for _, target in val:
        height, width = target["orig_size"].tolist()
        cx, cy, w, h = (target["boxes"] * torch.tensor([width, height, width, height])).unbind(-1)
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
        scores = torch.ones(len(boxes))
        ids.append(int(target["image_id"]))
        results.append({"scores": scores, "labels": target["labels"], "boxes": boxes})
    coco_gt = load_coco_gt(tmp_path / "annotations/json/TBX11K_val.json")
    detections = detections_from_results(ids, results)
    assert len(detections) == len(coco_gt.getAnnIds()) > 0
    stats = evaluate_coco(coco_gt, detections, echo=None).stats
    assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0)
    assert evaluate_froc(coco_gt, detections).sensitivity == (1.0,) * 7
