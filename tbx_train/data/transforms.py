"""Detection transforms: the official DINO/DETR train augmentation, the evaluation resize.

Train (as DETR's `make_coco_transforms`): horizontal flip, then one of two branches
(`RandomSelect`, the crop branch with probability `crop_prob`, official 0.5):
- resize: shorter side one of `train_sizes`, longer side capped at `max_size`;
- crop: shorter side one of `crop_resize_sizes` (no cap), a random crop whose width and height
  are drawn from [`crop_min`, `crop_max`] (never more than the image), then the first branch's
  resize to one of `train_sizes` (capped at `max_size`).
Evaluation: shorter side `val_size` (default max(train_sizes), as the official code), same cap.

Boxes through the crop: shifted into the crop window and clipped to it (a box cut by the crop keeps
its visible part); a box left with no area (outside the window) is removed from that sample's
targets and counted in the output's `cropped_out` (the dataset puts it in the target), as the
official code removes it. Nothing else drops boxes; the start-up report counts annotation faults.

Randomness comes only from the `torch.Generator` passed in, which the dataset derives from
(seed, epoch, sample index) (`sample_generator`), so augmentation does not depend on the number of
workers or processes. Every call draws the same `DRAWS` uniform numbers in the same order whatever
the branch, the image size or the outcome, so one sample's draws never shift another's.

Box formats: in `boxes_xyxy_abs` (pixels, [n, 4]); out `boxes_cxcywh` normalised by the
transformed, unpadded image size (DETR convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


DRAWS = 8  # flip, branch, final size, crop pre-resize size, crop width, height, left, top
OFFICIAL_BASE = 512  # the crop sizes below are the official ones, for images around 512 px


def _scales_around(base: int) -> tuple[int, ...]:
    """0.75x .. 1.25x the base size in base/16 steps (512 -> 384, 416, ..., 640)."""
    step = max(base // 16, 1)
    return tuple(range(base - 4 * step, base + 4 * step + 1, step))


def _scaled(sizes: tuple[int, ...], base: int) -> tuple[int, ...]:
    return tuple(max(round(size * base / OFFICIAL_BASE), 1) for size in sizes)


@dataclass(frozen=True)
class TransformConfig:
    """Augmentation settings. Sizes are in pixels; "size" alone means the shorter image side.

    The defaults are the official recipe at the sizes of the user's TBX11K run (512 px X-rays):
    scales 480..608 (step 32), longer side <= 640, crop branch at p 0.5 resizing to 400/500/600
    and cropping 384..600 px, evaluation at max(scales) = 608. `crop_prob=0` turns the crop
    branch off (flip + resize only).
    """

    train_sizes: tuple[int, ...] = (480, 512, 544, 576, 608)
    val_size: int | None = None  # None: max(train_sizes), as the official evaluation transform
    max_size: int = 640
    flip_prob: float = 0.5
    crop_prob: float = 0.5  # RandomSelect: the crop branch's share of samples
    crop_resize_sizes: tuple[int, ...] = (400, 500, 600)
    crop_min: int = 384
    crop_max: int = 600
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if not self.train_sizes or not self.crop_resize_sizes:
            raise ValueError("train_sizes and crop_resize_sizes need at least one size each")
        if not 1 <= self.crop_min <= self.crop_max:
            raise ValueError(
                f"crop sizes need 1 <= crop_min <= crop_max, got {self.crop_min}..{self.crop_max}"
            )
        for name in ("flip_prob", "crop_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be within [0, 1]")

    @property
    def eval_size(self) -> int:
        """The evaluation shorter side: `val_size`, or max(train_sizes) when unset."""
        return self.val_size if self.val_size is not None else max(self.train_sizes)

    @classmethod
    def around(cls, base: int, **overrides: object) -> TransformConfig:
        """Settings for images of side `base` px (e.g. 128 for the synthetic default): the
        scales 0.75x..1.25x base, evaluation at base, and the crop sizes scaled from 512 px."""
        fields = {
            "train_sizes": _scales_around(base),
            "val_size": base,
            "max_size": 2 * base,
            "crop_resize_sizes": _scaled((400, 500, 600), base),
            "crop_min": _scaled((384,), base)[0],
            "crop_max": _scaled((600,), base)[0],
        }
        fields.update(overrides)
        return cls(**fields)  # type: ignore[arg-type]


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator seeded by a hash of (seed, epoch, index): a pure function of the three."""
    # SeedSequence mixes the three well, so nearby (epoch, index) pairs give unrelated streams.
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def resized_hw(height: int, width: int, size: int, max_size: int | None) -> tuple[int, int]:
    """(h, w) with the shorter side `size`, reduced so the longer side stays <= max_size
    (None: no cap)."""
    short, long = min(height, width), max(height, width)
    if max_size is not None and long * size > max_size * short:
        size = max(round(max_size * short / long), 1)
    new_short, new_long = size, max(round(size * long / short), 1)
    return (new_short, new_long) if height <= width else (new_long, new_short)


def hflip(image: torch.Tensor, boxes_xyxy_abs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror image [C, H, W] and boxes: x -> W - x (x0 and x1 swap roles)."""
    width = image.shape[-1]
    boxes = boxes_xyxy_abs[:, [2, 1, 0, 3]] * torch.tensor([-1.0, 1.0, -1.0, 1.0])
    return image.flip(-1), boxes + torch.tensor([width, 0.0, width, 0.0])


def resize(
    image: torch.Tensor, boxes_xyxy_abs: torch.Tensor, hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear resize of float image [C, H, W] to `hw`; boxes scaled with it."""
    height, width = image.shape[-2:]
    if (height, width) == hw:
        return image, boxes_xyxy_abs
    out = F.interpolate(image[None], size=hw, mode="bilinear", align_corners=False, antialias=True)
    scale = torch.tensor([hw[1] / width, hw[0] / height, hw[1] / width, hw[0] / height])
    return out[0], boxes_xyxy_abs * scale


def normalize(
    image: torch.Tensor, boxes_xyxy_abs: torch.Tensor, mean: tuple, std: tuple
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image in [0, 255], 1 or 3 channels -> 3 normalised channels; boxes -> cxcywh in [0, 1]."""
    height, width = image.shape[-2:]
    image = image.expand(3, -1, -1) / 255.0  # grayscale X-rays: one channel repeated
    image = (image - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    x0, y0, x1, y1 = boxes_xyxy_abs.unbind(-1)
    boxes = torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)
    return image, boxes / torch.tensor([width, height, width, height], dtype=torch.float32)


def crop(
    image: torch.Tensor, boxes_xyxy_abs: torch.Tensor, window: tuple[int, int, int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop [C, H, W] to `window` = (left, top, width, height); boxes shifted and clipped to it.

    Returns (image, boxes, keep): `keep` [n] bool is False for boxes with no area left inside
    the window; those rows are still in `boxes` (degenerate), for the caller to remove and count.
    """
    left, top, width, height = window
    out = image[:, top : top + height, left : left + width]
    shifted = boxes_xyxy_abs - torch.tensor([left, top, left, top], dtype=boxes_xyxy_abs.dtype)
    low = torch.zeros(4, dtype=shifted.dtype)
    high = torch.tensor([width, height, width, height], dtype=shifted.dtype)
    clipped = torch.minimum(torch.maximum(shifted, low), high)
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return out, clipped, keep


def _pick(sizes: tuple[int, ...], draw: float) -> int:
    """One of `sizes`, uniformly, from a uniform draw in [0, 1)."""
    return sizes[min(int(draw * len(sizes)), len(sizes) - 1)]


def _draw_int(low: int, high: int, draw: float) -> int:
    """An integer uniform on [low, high] (inclusive) from a uniform draw in [0, 1)."""
    return low + min(int(draw * (high - low + 1)), high - low)


def crop_window(
    height: int, width: int, crop_min: int, crop_max: int, draws: torch.Tensor
) -> tuple[int, int, int, int]:
    """(left, top, width, height) as the official RandomSizeCrop: each side uniform on
    [crop_min, min(side, crop_max)], the position uniform; an image side below crop_min is
    kept whole (the official code would fail there). `draws`: 4 uniforms (w, h, left, top)."""
    crop_w = _draw_int(min(crop_min, width), min(width, crop_max), float(draws[0]))
    crop_h = _draw_int(min(crop_min, height), min(height, crop_max), float(draws[1]))
    left = _draw_int(0, width - crop_w, float(draws[2]))
    top = _draw_int(0, height - crop_h, float(draws[3]))
    return left, top, crop_w, crop_h


class Transformed(NamedTuple):
    """One transformed sample. `keep` [n] bool marks the input boxes still present (`boxes`
    holds only those); `cropped_out` = how many the crop removed (0 without the crop branch)."""

    image: torch.Tensor  # float [3, h, w], normalised
    boxes: torch.Tensor  # float [k, 4] cxcywh normalised by (w, h)
    size: tuple[int, int]  # (h, w) after the transform, unpadded
    keep: torch.Tensor
    cropped_out: int
    crop_window: tuple[int, int, int, int] | None = None  # (left, top, w, h) if the crop ran


class DetectionTransform:
    """Train: flip, then resize or resize-crop-resize (`TransformConfig`); eval: one resize.

    Call: `(image uint8 [C, H, W] with C in {1, 3}, boxes_xyxy_abs float [n, 4], generator)
    -> Transformed(image, boxes, size, keep, cropped_out, crop_window)`.
    """

    def __init__(self, config: TransformConfig, train: bool):
        self.config = config
        self.train = train

    def _augment(
        self, image: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, tuple | None]:
        """Flip and the RandomSelect branch; returns (image, boxes, keep, final size, window)."""
        config = self.config
        draws = torch.rand(DRAWS, generator=generator, dtype=torch.float64)
        keep, window = torch.ones(len(boxes), dtype=torch.bool), None
        if draws[0] < config.flip_prob:
            image, boxes = hflip(image, boxes)
        if draws[1] < config.crop_prob:
            height, width = image.shape[-2:]
            pre = _pick(config.crop_resize_sizes, float(draws[3]))
            hw = resized_hw(height, width, pre, max_size=None)  # official: no cap here
            image, boxes = resize(image, boxes, hw)
            window = crop_window(*hw, config.crop_min, config.crop_max, draws[4:8])
            image, boxes, keep = crop(image, boxes, window)
            boxes = boxes[keep]
        return image, boxes, keep, _pick(config.train_sizes, float(draws[2])), window

    def __call__(
        self, image: torch.Tensor, boxes_xyxy_abs: torch.Tensor, generator: torch.Generator
    ) -> Transformed:
        config = self.config
        image = image.float()
        if self.train:
            image, boxes_xyxy_abs, keep, size, window = self._augment(
                image, boxes_xyxy_abs, generator
            )
        else:
            keep = torch.ones(len(boxes_xyxy_abs), dtype=torch.bool)
            size, window = config.eval_size, None
        hw = resized_hw(image.shape[-2], image.shape[-1], size, config.max_size)
        image, boxes_xyxy_abs = resize(image, boxes_xyxy_abs, hw)
        image, boxes = normalize(image, boxes_xyxy_abs, config.mean, config.std)
        return Transformed(image.contiguous(), boxes, hw, keep, int((~keep).sum()), window)
