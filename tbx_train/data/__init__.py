"""Data: COCO/TBX11K data sets, the start-up report, transforms, collate, synthetic TBX11K.

Contract: `dataset[i] -> (image [3, H, W] normalised, target)`, `collate_fn(batch) -> (images
[B, 3, Hmax, Wmax], masks [B, Hmax, Wmax] bool (True = padding), targets)`; see coco.py.
"""

from tbx_train.data.coco import (
    CocoDetection,
    CocoSource,
    build_datasets,
    num_classes_for,
    read_image,
    tbx11k_source,
)
from tbx_train.data.collate import collate_fn
from tbx_train.data.errors import DataError, MissingImagesError
from tbx_train.data.report import DataReport
from tbx_train.data.synth import write_synthetic_tbx11k
from tbx_train.data.transforms import DetectionTransform, TransformConfig, sample_generator

__all__ = [
    "CocoDetection",
    "CocoSource",
    "DataError",
    "DataReport",
    "DetectionTransform",
    "MissingImagesError",
    "TransformConfig",
    "build_datasets",
    "collate_fn",
    "num_classes_for",
    "read_image",
    "sample_generator",
    "tbx11k_source",
    "write_synthetic_tbx11k",
]
