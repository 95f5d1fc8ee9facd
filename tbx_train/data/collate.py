"""Batch images of different sizes: pad to the batch maximum, with a mask of the padding."""

from __future__ import annotations

import torch


def collate_fn(
    batch: list[tuple[torch.Tensor, dict]],
) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """`[(image [3, H_i, W_i], target), ...] -> (images [B, 3, Hmax, Wmax], masks, targets)`.

    Images are padded with zeros at the bottom and right (their top-left corner stays at the
    origin, so normalised boxes relative to the unpadded size remain valid). `masks` is bool
    [B, Hmax, Wmax], True on padding. `targets` is the list of target dicts, unchanged.
    """
    if not batch:
        raise ValueError("collate_fn got an empty batch")
    images = [image for image, _ in batch]
    channels = images[0].shape[0]
    height = max(image.shape[1] for image in images)
    width = max(image.shape[2] for image in images)
    padded = images[0].new_zeros((len(images), channels, height, width))
    masks = torch.ones((len(images), height, width), dtype=torch.bool)
    for i, image in enumerate(images):
        h, w = image.shape[1:]
        padded[i, :, :h, :w] = image
        masks[i, :h, :w] = False
    return padded, masks, [target for _, target in batch]
