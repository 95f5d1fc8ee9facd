"""Random inputs with the model contract's shapes, for the loss and post-processing tests.

These are real inputs to the real criterion (the network is not needed to produce them): logits
[B, Q, C], boxes [B, Q, 4] normalised cxcywh, the aux/interm/dn structure of `outputs`, targets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def random_boxes_cxcywh(n: int, generator: torch.Generator) -> Tensor:
    """[n, 4] well-formed normalised cxcywh boxes: centres in [0.2, 0.8], sizes in [0.05, 0.4]."""
    centres = 0.2 + 0.6 * torch.rand(n, 2, generator=generator)
    sizes = 0.05 + 0.35 * torch.rand(n, 2, generator=generator)
    return torch.cat([centres, sizes], dim=1)


def random_layer(batch: int, queries: int, num_classes: int, generator: torch.Generator) -> dict:
    """One output head: pred_logits [B, Q, C] and pred_boxes [B, Q, 4], both requiring grad."""
    logits = torch.randn(batch, queries, num_classes, generator=generator)
    boxes = random_boxes_cxcywh(batch * queries, generator).reshape(batch, queries, 4)
    return {"pred_logits": logits.requires_grad_(), "pred_boxes": boxes.requires_grad_()}


def random_outputs(
    batch: int, queries: int, num_classes: int, dec_layers: int, generator: torch.Generator
) -> dict[str, Any]:
    """Final layer, dec_layers - 1 aux layers and interm proposals; dn_meta None."""
    outputs = random_layer(batch, queries, num_classes, generator)
    outputs["aux_outputs"] = [
        random_layer(batch, queries, num_classes, generator) for _ in range(dec_layers - 1)
    ]
    outputs["interm_outputs"] = random_layer(batch, queries, num_classes, generator)
    outputs["dn_meta"] = None
    return outputs


def random_dn_meta(
    batch: int,
    max_gt: int,
    groups: int,
    num_classes: int,
    dec_layers: int,
    generator: torch.Generator,
) -> dict[str, Any]:
    """A dn_meta in the official layout: groups of 2 * max_gt slots (positives, then negatives)."""
    pad_size = 2 * max_gt * groups
    known = random_layer(batch, pad_size, num_classes, generator)
    known["aux_outputs"] = [
        random_layer(batch, pad_size, num_classes, generator) for _ in range(dec_layers - 1)
    ]
    return {"pad_size": pad_size, "num_dn_group": groups, "output_known_lbs_bboxes": known}


def random_targets(
    counts: list[int], num_classes: int, generator: torch.Generator
) -> list[dict[str, Tensor]]:
    """One target dict per image with counts[b] boxes; labels in 1..num_classes-1 (id 0 unused)."""
    return [
        {
            "labels": torch.randint(1, num_classes, (n,), generator=generator),
            "boxes": random_boxes_cxcywh(n, generator),
        }
        for n in counts
    ]


def map_tensors(tree: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """Apply fn to every tensor of a nested outputs structure (dicts, lists; other leaves kept)."""
    if isinstance(tree, Tensor):
        return fn(tree)
    if isinstance(tree, list):
        return [map_tensors(item, fn) for item in tree]
    if isinstance(tree, dict):
        return {key: map_tensors(value, fn) for key, value in tree.items()}
    return tree  # the ints of dn_meta, None
