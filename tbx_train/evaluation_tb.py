"""The TB protocol of the user's DINO_TBX11K project, and a corrected FROC beside its own.

The user reported class-agnostic TB-only numbers (AP 0.306, sensitivity 0.7735 at 2 FPI; their
`logs/eval_tbx11k_39838038`). This module computes them the same way, and FROC once more with
the errors of their FROC script removed, so both can be printed side by side (`tbx-train eval`).

TB-only, class-agnostic (their `--tb_only_eval --class_agnostic_tb`):
- images: those with at least one ground-truth box (TBX11K val: the TB X-rays);
- every category of the annotation file (all TB types) merged into one; detections whose label is
  one of those categories count as TB, others (e.g. label 0, no category) are dropped;
- COCO AP: pycocotools COCOeval over those images with the merged category.

FROC as their script (`util/froc_eval.py`) computed it:
- ground truth: the whole annotation file with its own categories (NOT merged), every image of it
  (TB or not) in the false-positive denominator;
- detections: those of the TB images only (they evaluated only those), raw labels;
- all detections sorted by score (descending, stable); each is matched to the ground-truth box of
  its image with the highest IoU; a true positive when IoU >= 0.5, the label equals that box's
  and the box was not matched before; anything else is a false positive;
- sensitivity at f FPI: the sensitivity at the first detection where FP / images >= f (the last
  one when the curve never reaches f).
So false positives found on the TB images are divided by all images (1,800 in TBX11K val, 200 of
them TB): the FPI axis is shrunk by that ratio, which inflates "sensitivity at 2 FPI".

FROC corrected: same TB images, merged categories (class-agnostic, like the AP), same greedy
matching; FP per image = false positives / number of TB images scored; sensitivity at f = the
highest sensitivity of any score threshold whose FP per image is <= f.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools.coco import COCO

from tbx_train.evaluation import FROC_FPI, CocoEvalResult, evaluate_coco, load_coco_gt

TB_CATEGORY = 1  # the one category of the merged ground truth


@dataclass(frozen=True)
class TbSubset:
    """The TB-only, class-agnostic view of a ground truth."""

    coco: COCO  # TB images only, one category (`TB_CATEGORY`)
    image_ids: tuple[int, ...]
    category_ids: frozenset[int]  # the file's categories, all merged into TB_CATEGORY
    num_all_images: int


def tb_subset(coco_gt: COCO) -> TbSubset:
    """Images with a ground-truth box, every category merged into `TB_CATEGORY`."""
    dataset = coco_gt.dataset
    categories = frozenset(int(c["id"]) for c in dataset.get("categories", []))
    annotations = [a for a in dataset.get("annotations", []) if a["category_id"] in categories]
    image_ids = tuple(sorted({int(a["image_id"]) for a in annotations}))
    keep = set(image_ids)
    merged = {
        "images": [img for img in dataset["images"] if int(img["id"]) in keep],
        "annotations": [{**a, "category_id": TB_CATEGORY} for a in annotations],
        "categories": [{"id": TB_CATEGORY, "name": "TB", "supercategory": "TB"}],
    }
    return TbSubset(load_coco_gt(merged), image_ids, categories, len(dataset["images"]))


def on_images(detections: Sequence[dict], image_ids: Sequence[int]) -> list[dict]:
    """The detections of `image_ids`, in their order."""
    wanted = set(image_ids)
    return [d for d in detections if int(d["image_id"]) in wanted]


def merged_detections(detections: Sequence[dict], subset: TbSubset) -> list[dict]:
    """Detections on the subset's images with a TB label, relabelled `TB_CATEGORY`."""
    return [
        {**d, "category_id": TB_CATEGORY}
        for d in on_images(detections, subset.image_ids)
        if int(d["category_id"]) in subset.category_ids
    ]


def evaluate_tb_ap(
    coco_gt: COCO, detections: list[dict], echo: Callable[[str], None] | None = None
) -> CocoEvalResult:
    """Class-agnostic COCO AP over the TB images (the user's AP 0.306 protocol)."""
    subset = tb_subset(coco_gt)
    return evaluate_coco(subset.coco, merged_detections(detections, subset), echo=echo)


def _xyxy(boxes_xywh: Sequence[Sequence[float]]) -> np.ndarray:
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4).copy()
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def _iou_row(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of `others` [n, 4]."""
    low = np.maximum(box[:2], others[:, :2])
    high = np.minimum(box[2:], others[:, 2:])
    inter = np.clip(high - low, 0, None).prod(-1)
    areas = (others[:, 2:] - others[:, :2]).prod(-1)
    union = (box[2:] - box[:2]).prod() + areas - inter
    return inter / np.maximum(union, 1e-10)


def greedy_matches(
    coco_gt: COCO, detections: Sequence[dict], iou: float = 0.5, use_labels: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(is_tp, is_fp) [D] bool in descending score order (stable in image-id order, then the
    order given): each detection takes the highest-IoU ground-truth box of its image (first on
    ties); TP if IoU >= `iou`, labels agree (when `use_labels`) and the box is still free."""
    ordered = sorted(detections, key=lambda d: int(d["image_id"]))  # stable: keeps given order
    ordered.sort(key=lambda d: -float(d["score"]))  # stable: ties keep image order
    gt: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for image_id in {int(d["image_id"]) for d in ordered}:
        anns = coco_gt.imgToAnns.get(image_id, [])
        labels = np.asarray([a["category_id"] for a in anns], dtype=np.int64)
        gt[image_id] = (_xyxy([a["bbox"] for a in anns]), labels, np.zeros(len(anns), bool))
    is_tp = np.zeros(len(ordered), bool)
    for index, det in enumerate(ordered):
        boxes, labels, taken = gt[int(det["image_id"])]
        if len(boxes) == 0:
            continue
        ious = _iou_row(_xyxy([det["bbox"]])[0], boxes)
        best = int(ious.argmax())
        label_ok = not use_labels or int(det["category_id"]) == int(labels[best])
        if ious[best] >= iou and label_ok and not taken[best]:
            is_tp[index] = taken[best] = True
    return is_tp, ~is_tp


@dataclass(frozen=True)
class FrocCurve:
    """Sensitivity at FPI budgets, with what was counted and what the FPs were divided by."""

    title: str
    fpi: tuple[float, ...]
    sensitivity: tuple[float, ...]
    fp_denominator: int  # images the false positives are divided by
    scored_images: int  # images whose detections were scored
    gt_boxes: int
    note: str

    def at(self, budget: float) -> float:
        return self.sensitivity[self.fpi.index(budget)]

    def as_dict(self) -> dict[str, object]:
        return {
            "fpi": list(self.fpi),
            "sensitivity": list(self.sensitivity),
            "fp_denominator": self.fp_denominator,
            "scored_images": self.scored_images,
            "gt_boxes": self.gt_boxes,
        }

    def render(self) -> list[str]:
        lines = [
            f"{self.title}: {self.gt_boxes} GT boxes; FPs from {self.scored_images} images "
            f"divided by {self.fp_denominator} images ({self.note})"
        ]
        for fpi, sensitivity in zip(self.fpi, self.sensitivity, strict=True):
            lines.append(f"  FPI = {fpi:.3f}:  Sensitivity = {sensitivity:.4f}")
        return lines


def froc_as_user_script(
    coco_gt: COCO, detections: Sequence[dict], fpi: Sequence[float] = FROC_FPI, iou: float = 0.5
) -> FrocCurve:
    """Their `compute_froc_from_coco_results`, fed as their TB-only run fed it (module doc)."""
    subset = tb_subset(coco_gt)
    scored = on_images(detections, subset.image_ids)
    is_tp, is_fp = greedy_matches(coco_gt, scored, iou, use_labels=True)
    num_gt = len(coco_gt.dataset.get("annotations", []))
    sensitivity = np.cumsum(is_tp) / max(num_gt, 1)
    fp_per_image = np.cumsum(is_fp) / subset.num_all_images
    picked = []
    for budget in fpi:
        index = int(np.searchsorted(fp_per_image, budget, side="left"))
        last = float(sensitivity[-1]) if len(sensitivity) else 0.0
        picked.append(float(sensitivity[index]) if index < len(sensitivity) else last)
    return FrocCurve(
        "FROC as the user's script", tuple(float(f) for f in fpi), tuple(picked),
        subset.num_all_images, len(subset.image_ids), num_gt,
        "all images of the file, while only the TB images' detections are scored; "
        "class-aware, ground truth not merged",
    )  # fmt: skip


def froc_corrected(
    coco_gt: COCO, detections: Sequence[dict], fpi: Sequence[float] = FROC_FPI, iou: float = 0.5
) -> FrocCurve:
    """Class-agnostic FROC on the TB images, FPs divided by the TB images scored."""
    subset = tb_subset(coco_gt)
    is_tp, is_fp = greedy_matches(subset.coco, merged_detections(detections, subset), iou)
    num_gt = len(subset.coco.dataset["annotations"])
    found = np.concatenate([[0], np.cumsum(is_tp)])  # [0]: no detection kept
    false = np.concatenate([[0], np.cumsum(is_fp)])
    images = max(len(subset.image_ids), 1)
    picked = tuple(
        float(found[false <= budget * images + 1e-9].max() / num_gt) if num_gt else -1.0
        for budget in fpi
    )
    return FrocCurve(
        "FROC corrected", tuple(float(f) for f in fpi), picked, len(subset.image_ids),
        len(subset.image_ids), num_gt, "the TB images scored; class-agnostic",
    )  # fmt: skip


@dataclass(frozen=True)
class TbProtocolResult:
    """The user's TB-only protocol: class-agnostic AP, FROC as their script and corrected."""

    coco: CocoEvalResult
    tb_images: int
    all_images: int
    froc_user: FrocCurve
    froc_corrected: FrocCurve

    def render(self) -> list[str]:
        return [
            f"TB protocol (DINO_TBX11K --tb_only_eval --class_agnostic_tb): {self.tb_images} of "
            f"{self.all_images} images have TB boxes; all TB categories merged into one",
            self.coco.table.rstrip("\n"),
            f"TB-only class-agnostic AP {self.coco.stats[0]:.3f}  AP50 {self.coco.stats[1]:.3f}",
            *self.froc_user.render(),
            *self.froc_corrected.render(),
        ]


def evaluate_tb_protocol(
    coco_gt: COCO, detections: list[dict], fpi: Sequence[float] = FROC_FPI
) -> TbProtocolResult:
    """All of the user's TB-only numbers for one set of detections (COCO result dicts)."""
    subset = tb_subset(coco_gt)
    return TbProtocolResult(
        coco=evaluate_tb_ap(coco_gt, detections),
        tb_images=len(subset.image_ids),
        all_images=subset.num_all_images,
        froc_user=froc_as_user_script(coco_gt, detections, fpi),
        froc_corrected=froc_corrected(coco_gt, detections, fpi),
    )
