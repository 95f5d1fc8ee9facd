"""The user's TB protocol on a case small enough to compute by hand (numbers in the comments).

Ground truth: image 1 (TB) boxes A (category 1) and B (category 2), image 2 (TB) box C
(category 3), images 3 and 4 without boxes. 3 GT boxes, 2 TB images out of 4.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from pycocotools.cocoeval import COCOeval

from tbx_train.evaluation import load_coco_gt
from tbx_train.evaluation_tb import (
    evaluate_tb_ap,
    evaluate_tb_protocol,
    froc_as_user_script,
    froc_corrected,
    greedy_matches,
)

FPI = (0.125, 0.25, 0.5, 0.75, 1.0, 2.0)
A, B, C = [0, 0, 10, 10], [20, 20, 10, 10], [0, 0, 20, 20]


def _gt() -> dict:
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": A, "area": 100, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": B, "area": 100, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 3, "bbox": C, "area": 400, "iscrowd": 0},
    ]
    return {
        "images": [
            {"id": i, "width": 64, "height": 64, "file_name": f"{i}.png"} for i in (1, 2, 3, 4)
        ],
        "annotations": annotations,
        "categories": [{"id": i, "name": f"tb{i}"} for i in (1, 2, 3)],
    }


def _det(image_id, bbox, score, label):
    return {"image_id": image_id, "bbox": bbox, "score": score, "category_id": label}


DETECTIONS = [
    _det(2, [1, 1, 2, 2], 0.95, 3),  # d7: IoU 0.01 with C -> FP
    _det(1, A, 0.9, 1),  # d1: A, right label -> TP
    _det(3, [5, 5, 5, 5], 0.8, 1),  # d2: healthy image 3 (outside the TB-only protocol)
    _det(2, C, 0.7, 1),  # d3: C with label 1 (C is category 3): FP class-aware, TP agnostic
    _det(1, B, 0.6, 2),  # d4: B -> TP
    _det(1, A, 0.5, 1),  # d5: A again -> FP (already matched)
    _det(2, [40, 40, 5, 5], 0.4, 3),  # d6: nothing there -> FP
    _det(1, B, 0.3, 0),  # label 0 is no category: not a TB detection
]


def test_greedy_matching_in_score_order():
    coco = load_coco_gt(_gt())
    tp, fp = greedy_matches(coco, DETECTIONS, use_labels=True)
    # score order: d7 d1 d2 d3 d4 d5 d6 (label-0 box last: B is already taken)
    assert tp.tolist() == [False, True, False, False, True, False, False, False]
    assert fp.tolist() == [not t for t in tp.tolist()]


def test_froc_as_the_user_script_divides_tb_fps_by_all_images():
    froc = froc_as_user_script(load_coco_gt(_gt()), DETECTIONS, FPI)
    # TB images only (d2 dropped), class-aware: d7 FP, d1 TP, d3 FP, d4 TP, d5 FP, d6 FP, d0 FP
    # cumulative FP / 4 images: .25 .25 .5 .5 .75 1 1.25; sensitivity 0 1/3 1/3 2/3 2/3 2/3 2/3
    # at f: the first detection with FPI >= f
    assert froc.sensitivity == pytest.approx((0.0, 0.0, 1 / 3, 2 / 3, 2 / 3, 2 / 3))
    assert (froc.fp_denominator, froc.scored_images, froc.gt_boxes) == (4, 2, 3)


def test_froc_corrected_is_class_agnostic_over_the_tb_images():
    froc = froc_corrected(load_coco_gt(_gt()), DETECTIONS, FPI)
    # merged: d7 FP, d1 TP, d3 TP, d4 TP, d5 FP, d6 FP (label 0 dropped); FPs / 2 TB images
    # prefixes: FP 0 1 1 1 1 2 3 -> FPI 0 .5 .5 .5 .5 1 1.5; TP 0 0 1 2 3 3 3
    assert froc.sensitivity == pytest.approx((0.0, 0.0, 1.0, 1.0, 1.0, 1.0))
    assert (froc.fp_denominator, froc.scored_images, froc.gt_boxes) == (2, 2, 3)
    assert "divided by 2 images" in froc.render()[0]


def test_tb_ap_by_hand_and_equal_to_pycocotools_on_merged_annotations():
    coco = load_coco_gt(_gt())
    result = evaluate_tb_ap(coco, DETECTIONS)
    # merged, TB images: d7 FP, d1 TP, d3 TP, d4 TP, d5 FP, d6 FP, all at IoU 1 or < 0.5:
    # precision 0 1/2 2/3 3/4 ... at recall 0 1/3 2/3 1 -> interpolated 3/4 everywhere
    assert result.stats[0] == pytest.approx(0.75) and result.stats[1] == pytest.approx(0.75)

    merged = _gt()
    merged["images"] = merged["images"][:2]
    for ann in merged["annotations"]:
        ann["category_id"] = 7
    merged["categories"] = [{"id": 7, "name": "TB"}]
    dets = [{**d, "category_id": 7} for d in DETECTIONS if d["image_id"] in (1, 2)]
    dets = [d for d in dets if d["score"] != 0.3]  # the label-0 box is no TB detection
    with contextlib.redirect_stdout(io.StringIO()):
        direct_gt = load_coco_gt(merged)
        direct = COCOeval(direct_gt, direct_gt.loadRes(dets), iouType="bbox")
        direct.evaluate()
        direct.accumulate()
        direct.summarize()
    assert list(result.stats) == pytest.approx(list(direct.stats))


def test_protocol_report_states_both_denominators():
    report = evaluate_tb_protocol(load_coco_gt(_gt()), DETECTIONS, FPI)
    text = "\n".join(report.render())
    assert "2 of 4 images have TB boxes" in text
    assert "FROC as the user's script: 3 GT boxes; FPs from 2 images divided by 4 images" in text
    assert "FROC corrected: 3 GT boxes; FPs from 2 images divided by 2 images" in text
    assert "TB-only class-agnostic AP 0.750  AP50 0.750" in text


def test_no_detections_and_no_tb_images_give_defined_numbers():
    coco = load_coco_gt(_gt())
    empty = evaluate_tb_protocol(coco, [], FPI)
    assert empty.froc_user.sensitivity == (0.0,) * len(FPI)
    assert empty.froc_corrected.sensitivity == (0.0,) * len(FPI)
    assert empty.coco.stats[0] == 0.0
    healthy = _gt()
    healthy["annotations"] = []
    none = froc_corrected(load_coco_gt(healthy), DETECTIONS, FPI)
    assert none.sensitivity == (-1.0,) * len(FPI) and none.fp_denominator == 0  # undefined
