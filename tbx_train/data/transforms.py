"""Detection transforms: random horizontal flip, multi-scale resize, normalisation.

Randomness comes only from the `torch.Generator` passed in, which the dataset derives from
(seed, epoch, sample index) (`sample_generator`), so augmentation does not depend on the number of
workers or processes. Every call draws the same random numbers in the same order whatever their
outcome, so one sample's draws never shift another's.

Box formats: in `boxes_xyxy_abs` (pixels, [n, 4]); out `boxes_cxcywh` normalised by the
transformed, unpadded image size (DETR convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _scales_around(base: int) -> tuple[int, ...]:
    """0.75x .. 1.25x the base size in base/16 steps (512 -> 384, 416, ..., 640)."""
    step = max(base // 16, 1)
    return tuple(range(base - 4 * step, base + 4 * step + 1, step))


@dataclass(frozen=True)
class TransformConfig:
    """Augmentation settings. Sizes are the shorter image side in pixels after resizing.

    The defaults suit TBX11K's 512x512 X-rays: training picks one of 384..640 (step 32) per
    sample, evaluation uses 512, and the longer side never exceeds `max_size`.
    """

    train_sizes: tuple[int, ...] = _scales_around(512)
    val_size: int = 512
    max_size: int = 1024
    flip_prob: float = 0.5
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def around(cls, base: int, **overrides: object) -> TransformConfig:
        """Settings for images of side `base` px (e.g. 128 for the synthetic default)."""
        fields = {"train_sizes": _scales_around(base), "val_size": base, "max_size": 2 * base}
        fields.update(overrides)
        return cls(**fields)  # type: ignore[arg-type]


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A generator seeded by a hash of (seed, epoch, index): a pure function of the three."""
    # SeedSequence mixes the three well, so nearby (epoch, index) pairs give unrelated streams.
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def resized_hw(height: int, width: int, size: int, max_size: int) -> tuple[int, int]:
    """(h, w) with the shorter side `size`, reduced so the longer side stays <= max_size."""
    short, long = min(height, width), max(height, width)
    if long * size > max_size * short:
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


class DetectionTransform:
    """Flip (train only), resize, normalise.

    Call: `(image uint8 [C, H, W] with C in {1, 3}, boxes_xyxy_abs float [n, 4], generator)
    -> (image float [3, h, w], boxes_cxcywh float [n, 4] normalised by (w, h), (h, w))`.
    """

    def __init__(self, config: TransformConfig, train: bool):
        self.config = config
        self.train = train

    def __call__(
        self, image: torch.Tensor, boxes_xyxy_abs: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        config = self.config
        image = image.float()
        if self.train:
            flip_draw = torch.rand((), generator=generator).item()
            size_draw = int(torch.randint(len(config.train_sizes), (), generator=generator))
            if flip_draw < config.flip_prob:
                image, boxes_xyxy_abs = hflip(image, boxes_xyxy_abs)
            size = config.train_sizes[size_draw]
        else:
            size = config.val_size
        hw = resized_hw(image.shape[-2], image.shape[-1], size, config.max_size)
        image, boxes_xyxy_abs = resize(image, boxes_xyxy_abs, hw)
        image, boxes = normalize(image, boxes_xyxy_abs, config.mean, config.std)
        return image.contiguous(), boxes, hw
