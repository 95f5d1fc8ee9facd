"""Evaluation: COCO AP/AR (pycocotools COCOeval, bbox) and the TBX11K FROC measure.

Both take the same inputs: the ground truth as a pycocotools `COCO` object (`load_coco_gt`) and
detections in COCO result format, `{"image_id", "category_id", "bbox": [x, y, w, h] in original
image pixels, "score"}` (`detections_from_results` makes them from the post-processor's output).

FROC (as the TBX11K benchmark measures TB area detection; class-agnostic):
- A prediction at score threshold t is any detection with score >= t.
- A ground-truth box is *detected* at t when some prediction at t, of ANY category, overlaps it
  with IoU >= 0.5. Sensitivity(t) = detected GT boxes / all GT boxes.
- A prediction is a *false positive* when it overlaps no ground-truth box of its image with
  IoU >= 0.5 (any category). A second prediction on an already detected box is not a false
  positive. FPI(t) = false positives at t / number of images.
- Sensitivity at an FPI budget f is the highest Sensitivity(t) over the thresholds t (every
  distinct score, plus "no prediction") with FPI(t) <= f. Reported at f = 0.125, 0.25, 0.5, 1,
  2, 4, 8 and their mean, over all evaluated images and over the TB images only (images with at
  least one ground-truth box; then both FPs and the image count come from those images).
- With no ground-truth boxes, sensitivity is undefined and reported as -1 (pycocotools' convention
  for "no ground truth").
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

FROC_FPI: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
COCO_STAT_NAMES: tuple[str, ...] = (
    "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
    "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large",
)  # fmt: skip


@dataclass(frozen=True)
class CocoEvalResult:
    """The 12 COCOeval bbox stats in table order (`COCO_STAT_NAMES`), and the printed table."""

    stats: tuple[float, ...]
    table: str

    def as_dict(self) -> dict[str, float]:
        return dict(zip(COCO_STAT_NAMES, self.stats, strict=True))


def load_coco_gt(source: str | Path | dict) -> COCO:
    """A pycocotools COCO object from a json path or an already-parsed dict, without its chatter."""
    with contextlib.redirect_stdout(io.StringIO()):
        if isinstance(source, dict):
            coco = COCO()
            coco.dataset = source
            coco.createIndex()
        else:
            coco = COCO(str(source))
    return coco


def detections_from_results(
    image_ids: Iterable[int], results: Iterable[dict[str, torch.Tensor]]
) -> list[dict]:
    """Post-processor output -> COCO result dicts.

    `results[i]`: `scores` [K], `labels` [K] (category ids), `boxes` [K, 4] absolute xyxy in the
    original image's pixels (pass `orig_size` as the post-processor's target sizes).
    """
    detections = []
    for image_id, result in zip(image_ids, results, strict=True):
        boxes = result["boxes"].detach().float().cpu()
        xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
        scores = result["scores"].detach().float().cpu().tolist()
        labels = result["labels"].detach().cpu().tolist()
        detections.extend(
            {"image_id": int(image_id), "category_id": int(label), "bbox": box, "score": score}
            for box, score, label in zip(xywh, scores, labels, strict=True)
        )
    return detections


def _load_results(coco_gt: COCO, detections: list[dict]) -> COCO:
    """`coco_gt.loadRes`, which cannot take an empty list: then an empty result set."""
    if detections:
        return coco_gt.loadRes(detections)
    empty = COCO()
    empty.dataset = {"images": coco_gt.dataset["images"], "annotations": []}
    empty.dataset["categories"] = coco_gt.dataset.get("categories", [])
    empty.createIndex()
    return empty


def evaluate_coco(
    coco_gt: COCO,
    detections: list[dict],
    image_ids: Sequence[int] | None = None,
    echo: Callable[[str], None] | None = print,
) -> CocoEvalResult:
    """COCOeval (bbox) over `image_ids` (default: all GT images); `echo` gets the standard table.

    The table is what DINO prints: pycocotools' accumulate lines, `IoU metric: bbox`, and the 12
    AP/AR lines (-1.000 where an area range has no ground truth).
    """
    with contextlib.redirect_stdout(io.StringIO()):  # loadRes/evaluate chatter, as DINO hides it
        coco_eval = COCOeval(coco_gt, _load_results(coco_gt, detections), iouType="bbox")
        if image_ids is not None:
            coco_eval.params.imgIds = sorted(int(i) for i in image_ids)
        coco_eval.evaluate()
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        coco_eval.accumulate()
        print("IoU metric: bbox")
        coco_eval.summarize()
    if echo is not None:
        echo(table.getvalue().rstrip("\n"))
    return CocoEvalResult(stats=tuple(float(s) for s in coco_eval.stats), table=table.getvalue())


@dataclass(frozen=True)
class FrocResult:
    """Sensitivity at each FPI budget (see the module doc), overall and on TB-only images."""

    fpi: tuple[float, ...]
    sensitivity: tuple[float, ...]
    tb_sensitivity: tuple[float, ...]
    num_images: int
    num_tb_images: int
    num_gt_boxes: int

    @property
    def mean(self) -> float:
        return _mean(self.sensitivity)

    @property
    def tb_mean(self) -> float:
        return _mean(self.tb_sensitivity)

    def as_dict(self) -> dict[str, object]:
        """Plain types for the JSON epoch log."""
        return {
            "froc_fpi": list(self.fpi),
            "froc_sensitivity": list(self.sensitivity),
            "froc_mean": self.mean,
            "froc_tb_sensitivity": list(self.tb_sensitivity),
            "froc_tb_mean": self.tb_mean,
        }

    def render(self) -> list[str]:
        lines = [
            f"FROC (class-agnostic, IoU >= 0.5): {self.num_images} images, "
            f"{self.num_tb_images} with TB boxes, {self.num_gt_boxes} GT boxes",
            "Sensitivity at different FPI values (all images | TB images only):",
        ]
        for fpi, overall, tb in zip(self.fpi, self.sensitivity, self.tb_sensitivity, strict=True):
            lines.append(f"  FPI = {fpi:.3f}:  Sensitivity = {overall:.4f} | {tb:.4f}")
        lines.append(f"Mean Sensitivity: {self.mean:.4f} | {self.tb_mean:.4f}")
        return lines


def _mean(values: Sequence[float]) -> float:
    return -1.0 if any(v < 0 for v in values) else float(np.mean(values))


def _iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of boxes [x, y, w, h]."""
    a_xyxy, b_xyxy = a.copy(), b.copy()
    a_xyxy[:, 2:] += a[:, :2]
    b_xyxy[:, 2:] += b[:, :2]
    low = np.maximum(a_xyxy[:, None, :2], b_xyxy[None, :, :2])
    high = np.minimum(a_xyxy[:, None, 2:], b_xyxy[None, :, 2:])
    inter = np.clip(high - low, 0, None).prod(-1)
    union = a[:, 2:].prod(-1)[:, None] + b[:, 2:].prod(-1)[None, :] - inter
    return inter / np.maximum(union, 1e-12)


@dataclass
class _ImageMatches:
    """Per image: prediction scores, which are FPs, and each GT box's best detecting score."""

    scores: np.ndarray
    is_fp: np.ndarray
    gt_best: np.ndarray  # -inf: never detected


def _match_image(gt: np.ndarray, pred: np.ndarray, scores: np.ndarray, iou: float):
    if len(gt) == 0 or len(pred) == 0:
        return _ImageMatches(scores, np.ones(len(pred), bool), np.full(len(gt), -np.inf))
    hits = _iou_xywh(pred, gt) >= iou  # [P, G]
    best = np.where(hits, scores[:, None], -np.inf).max(axis=0)
    return _ImageMatches(scores, ~hits.any(axis=1), best)


def _sensitivities(matches: list[_ImageMatches], fpi: Sequence[float]) -> tuple[float, ...]:
    gt_best = np.concatenate([m.gt_best for m in matches]) if matches else np.zeros(0)
    if len(gt_best) == 0:
        return tuple(-1.0 for _ in fpi)
    scores = np.concatenate([m.scores for m in matches])
    fp_scores = np.sort(scores[np.concatenate([m.is_fp for m in matches])])
    detected_scores = np.sort(gt_best)
    thresholds = np.concatenate([[np.inf], np.unique(scores)[::-1]])  # inf: no prediction
    fp_at = len(fp_scores) - np.searchsorted(fp_scores, thresholds, side="left")
    detected_at = len(detected_scores) - np.searchsorted(detected_scores, thresholds, side="left")
    return tuple(
        float(detected_at[fp_at <= budget * len(matches)].max() / len(gt_best)) for budget in fpi
    )


def evaluate_froc(
    coco_gt: COCO,
    detections: list[dict],
    image_ids: Sequence[int] | None = None,
    fpi: Sequence[float] = FROC_FPI,
    iou: float = 0.5,
) -> FrocResult:
    """TBX11K FROC over `image_ids` (default: all GT images); defined in the module doc."""
    ids = sorted(int(i) for i in (coco_gt.getImgIds() if image_ids is None else image_ids))
    by_image: dict[int, list[dict]] = {i: [] for i in ids}
    for det in detections:
        if int(det["image_id"]) in by_image:
            by_image[int(det["image_id"])].append(det)
    matches: dict[int, _ImageMatches] = {}
    for image_id in ids:
        anns = [a for a in coco_gt.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
        gt = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        pred = np.asarray([d["bbox"] for d in by_image[image_id]], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray([d["score"] for d in by_image[image_id]], dtype=np.float64)
        matches[image_id] = _match_image(gt, pred, scores, iou)
    tb_ids = [i for i in ids if len(matches[i].gt_best)]
    return FrocResult(
        fpi=tuple(float(f) for f in fpi),
        sensitivity=_sensitivities([matches[i] for i in ids], fpi),
        tb_sensitivity=_sensitivities([matches[i] for i in tb_ids], fpi),
        num_images=len(ids),
        num_tb_images=len(tb_ids),
        num_gt_boxes=sum(len(matches[i].gt_best) for i in ids),
    )
