"""COCO-format detection data set, and the TBX11K layout on top of it.

TBX11K layout: `ROOT/imgs/<sub>/*.png` (sub-folders such as health, sick, tb, test; json
`file_name` is relative to `imgs/`) and `ROOT/annotations/json/TBX11K_train.json`,
`TBX11K_val.json`. Any COCO-format set works given (train json, val json, image root).
Images without boxes are kept (most of TBX11K) and counted in the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from tbx_train.data.annotations import ImageRecord, check_image_files, load_records
from tbx_train.data.errors import DataError
from tbx_train.data.transforms import DetectionTransform, TransformConfig, sample_generator

_HIGH_DEPTH_GRAY = frozenset({"I", "I;16", "I;16B", "I;16L", "F"})


@dataclass(frozen=True)
class CocoSource:
    """Where a COCO-format data set lives: two annotation files and the image root."""

    train_json: Path
    val_json: Path
    image_root: Path


def tbx11k_source(root: str | Path) -> CocoSource:
    """The TBX11K layout under `root` (also what `tbx-train synth` writes)."""
    root = Path(root)
    return CocoSource(
        train_json=root / "annotations" / "json" / "TBX11K_train.json",
        val_json=root / "annotations" / "json" / "TBX11K_val.json",
        image_root=root / "imgs",
    )


def _to_uint8(image: Image.Image) -> np.ndarray:
    """[H, W] for grayscale files, [H, W, 3] otherwise."""
    if image.mode == "L":
        return np.array(image)
    if image.mode in _HIGH_DEPTH_GRAY:
        raw = np.asarray(image, dtype=np.float64)
        # 16-bit X-rays use 0..65535; float images their own maximum; 8-bit values stay as they are.
        top = float(raw.max(initial=0.0))
        scale = 255.0 / (65535.0 if image.mode != "F" else top) if top > 255.0 else 1.0
        return np.clip(raw * scale, 0, 255).astype(np.uint8)
    if image.mode in ("1", "LA"):
        return np.array(image.convert("L"))
    return np.array(image.convert("RGB"))


def read_image(path: Path) -> torch.Tensor:
    """uint8 [C, H, W]: C = 1 for grayscale files (16-bit scaled to 8 bits), else 3 (RGB)."""
    with Image.open(path) as image:
        array = _to_uint8(image)
    tensor = torch.from_numpy(array)  # np.array above copied: writable
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)


class CocoDetection(Dataset):
    """`dataset[i] -> (image float [3, h, w] normalised, target)`; see the data contract.

    target: `labels` int64 [n] (raw category ids), `boxes` float32 [n, 4] normalised cxcywh
    relative to the transformed unpadded size, `image_id` int64 [], `orig_size` and `size`
    int64 [2] (h, w), `cropped_out` int64 [] (boxes the train crop removed). n may be 0.
    Augmentation is a pure function of (seed, epoch, index): call `set_epoch` at the start of
    each epoch, before iterating the DataLoader. Workers copy the dataset when an epoch's
    iteration starts, so keep `persistent_workers=False` (the default): persistent workers
    would keep the epoch they started with.
    """

    def __init__(
        self,
        ann_file: str | Path,
        image_root: str | Path,
        transform: DetectionTransform,
        *,
        split: str = "train",
        seed: int = 0,
        check_files: bool = True,
    ):
        self.ann_file, self.image_root = Path(ann_file), Path(image_root)
        self.records, self.report, self.categories = load_records(
            self.ann_file, self.image_root, split
        )
        if check_files:
            check_image_files(self.records, self.image_root, self.ann_file)
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    @property
    def category_names(self) -> list[str]:
        """Names in category-id order."""
        return list(self.categories.values())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def _load(self, record: ImageRecord) -> torch.Tensor:
        image = read_image(self.image_root / record.file_name)
        if tuple(image.shape[1:]) != (record.height, record.width):
            raise DataError(
                f"{self.image_root / record.file_name} is {image.shape[2]}x{image.shape[1]} "
                f"but {self.ann_file} says {record.width}x{record.height}; boxes would be wrong"
            )
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        record = self.records[index]
        image = self._load(record)
        generator = sample_generator(self.seed, self.epoch, index)
        boxes_xyxy_abs = torch.from_numpy(record.boxes_xyxy_abs.copy())
        out = self.transform(image, boxes_xyxy_abs, generator)
        image, hw = out.image, out.size
        target = {
            "labels": torch.from_numpy(record.labels.copy())[out.keep],
            "boxes": out.boxes,
            "image_id": torch.tensor(record.image_id, dtype=torch.int64),
            "orig_size": torch.tensor([record.height, record.width], dtype=torch.int64),
            "size": torch.tensor(hw, dtype=torch.int64),
            # boxes the train crop removed from this sample (outside its window); 0 otherwise
            "cropped_out": torch.tensor(out.cropped_out, dtype=torch.int64),
        }
        return image, target


def build_datasets(
    source: CocoSource, transforms: TransformConfig | None = None, seed: int = 0
) -> tuple[CocoDetection, CocoDetection]:
    """(train with augmentation, val without) for a source; raises DataError subclasses."""
    config = transforms or TransformConfig()
    train = CocoDetection(
        source.train_json, source.image_root, DetectionTransform(config, train=True), seed=seed
    )
    val = CocoDetection(
        source.val_json,
        source.image_root,
        DetectionTransform(config, train=False),
        split="val",
        seed=seed,
    )
    return train, val


def num_classes_for(dataset: CocoDetection) -> int:
    """The official convention: max category id + 1 (ids used raw; TBX11K ids 1..3 -> 4)."""
    return max(dataset.categories, default=0) + 1
