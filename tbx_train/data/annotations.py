"""Read a COCO-format annotation file into per-image records, counting every box fix-up.

Boxes are COCO `[x, y, w, h]` in pixels. Each is converted to xyxy, clipped to the image
(counted as clipped when that changes it), and excluded when its area is zero after clipping
(counted as degenerate) or when `iscrowd` is 1 (counted as crowd). See `report.DataReport`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tbx_train.data.errors import DataError, MissingImagesError
from tbx_train.data.report import DataReport


@dataclass(frozen=True)
class ImageRecord:
    """One image: `boxes_xyxy_abs` float32 [n, 4] in pixels, `labels` int64 [n] raw category ids."""

    image_id: int
    file_name: str
    width: int
    height: int
    boxes_xyxy_abs: np.ndarray
    labels: np.ndarray


@dataclass
class _Counts:
    clipped: int = 0
    degenerate: int = 0
    crowd: int = 0


def read_coco_json(ann_file: Path) -> dict:
    """Parse the json, with a DataError naming the file when it is absent or malformed."""
    try:
        data = json.loads(Path(ann_file).read_text())
    except FileNotFoundError as error:
        raise DataError(f"annotation file not found: {ann_file}") from error
    except json.JSONDecodeError as error:
        raise DataError(f"annotation file {ann_file} is not valid JSON: {error}") from error
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"annotation file {ann_file} has no '{key}' list (not COCO format)")
    return data


def _sanitize_box(bbox: object, width: int, height: int, counts: _Counts) -> list[float] | None:
    """xyxy clipped to the image, or None when degenerate; updates `counts`."""
    if not (isinstance(bbox, list) and len(bbox) == 4):
        raise DataError(f"bbox {bbox!r} is not [x, y, w, h]")
    x, y, w, h = (float(v) for v in bbox)
    raw = [x, y, x + w, y + h]
    box = [min(max(raw[0], 0.0), width), min(max(raw[1], 0.0), height)]
    box += [min(max(raw[2], 0.0), width), min(max(raw[3], 0.0), height)]
    if box[2] <= box[0] or box[3] <= box[1]:
        counts.degenerate += 1
        return None
    if box != raw:
        counts.clipped += 1
    return box


def _group_annotations(data: dict, ann_file: Path) -> dict[int, list[dict]]:
    category_ids = {int(c["id"]) for c in data["categories"]}
    grouped: dict[int, list[dict]] = {}
    unknown = set()
    for ann in data.get("annotations", []):
        if int(ann["category_id"]) not in category_ids:
            unknown.add(int(ann["category_id"]))
        grouped.setdefault(int(ann["image_id"]), []).append(ann)
    if unknown:
        raise DataError(
            f"{ann_file}: annotations use category ids {sorted(unknown)} that are not in "
            f"'categories' (ids {sorted(category_ids)}); fix the file"
        )
    return grouped


def _build_record(image: dict, anns: list[dict], counts: _Counts) -> ImageRecord:
    width, height = int(image["width"]), int(image["height"])
    boxes, labels = [], []
    for ann in anns:
        if ann.get("iscrowd", 0):
            counts.crowd += 1
            continue
        box = _sanitize_box(ann["bbox"], width, height, counts)
        if box is not None:
            boxes.append(box)
            labels.append(int(ann["category_id"]))
    return ImageRecord(
        image_id=int(image["id"]),
        file_name=str(image["file_name"]),
        width=width,
        height=height,
        boxes_xyxy_abs=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(labels, dtype=np.int64),
    )


def load_records(
    ann_file: str | Path, image_root: str | Path, split: str
) -> tuple[list[ImageRecord], DataReport, dict[int, str]]:
    """Records in file order, the report, and the categories {id: name} in id order."""
    ann_file, image_root = Path(ann_file), Path(image_root)
    data = read_coco_json(ann_file)
    grouped = _group_annotations(data, ann_file)
    counts = _Counts()
    try:
        records = [
            _build_record(im, grouped.get(int(im["id"]), []), counts) for im in data["images"]
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{ann_file}: malformed image or annotation entry ({error!r})") from error
    categories = sorted(data["categories"], key=lambda c: int(c["id"]))
    names = {int(c["id"]): str(c["name"]) for c in categories}
    per_class = dict.fromkeys(names.values(), 0)
    for record in records:
        for label in record.labels.tolist():
            per_class[names[label]] += 1
    report = DataReport(
        split=split,
        ann_file=str(ann_file),
        image_root=str(image_root),
        images=len(records),
        images_with_boxes=sum(1 for r in records if len(r.labels)),
        boxes=sum(per_class.values()),
        boxes_per_class=per_class,
        clipped=counts.clipped,
        degenerate=counts.degenerate,
        crowd=counts.crowd,
    )
    return records, report, names


def check_image_files(records: list[ImageRecord], image_root: Path, ann_file: Path) -> None:
    """Raise MissingImagesError (first few paths and the count) unless every image exists."""
    missing = [
        image_root / r.file_name for r in records if not (image_root / r.file_name).is_file()
    ]
    if missing:
        raise MissingImagesError(missing, len(records), image_root, ann_file)
