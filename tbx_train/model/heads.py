"""Prediction heads: a class head and a box head shared by the decoder layers, plus the encoder's.

Boxes are predicted as offsets in logit space: box = sigmoid(delta + inverse_sigmoid(reference)).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn import functional as F

# Focal-loss prior (RetinaNet): every class starts at probability 0.01, so the many background
# queries do not swamp the loss in the first iterations.
PRIOR_PROB = 0.01


class MLP(nn.Module):
    """`num_layers` Linear layers with ReLU between them (none after the last).

    Submodule names (`layers.0`, `layers.1`, ...) match the official checkpoints.
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out, strict=True))

    def forward(self, x: Tensor) -> Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == last else F.relu(layer(x))
        return x


def build_class_head(hidden_dim: int, num_classes: int) -> nn.Linear:
    """Linear(hidden_dim, num_classes) with every bias at the focal prior logit (-4.5951)."""
    head = nn.Linear(hidden_dim, num_classes)
    nn.init.constant_(head.bias, -math.log((1 - PRIOR_PROB) / PRIOR_PROB))
    return head


def build_box_head(hidden_dim: int) -> MLP:
    """3-layer MLP -> 4 box deltas; the last layer starts at zero (boxes start at the reference)."""
    head = MLP(hidden_dim, hidden_dim, 4, 3)
    nn.init.zeros_(head.layers[-1].weight)
    nn.init.zeros_(head.layers[-1].bias)
    return head


@dataclass(frozen=True)
class DetectionHeads:
    """The heads of one model: a class and a box head shared by every decoder layer, and separate
    copies (initialised identically) for the encoder proposals, as DINO-4scale configures them.

    A construction-time bundle; the modules are registered where the official model has them
    (DeformableTransformer and DINO), which the checkpoint keys depend on.
    """

    dec_class: nn.ModuleList  # the same Linear repeated dec_layers times (checkpoint aliases)
    dec_box: nn.ModuleList  # the same MLP repeated dec_layers times
    enc_class: nn.Linear
    enc_box: MLP


def build_detection_heads(hidden_dim: int, num_classes: int, dec_layers: int) -> DetectionHeads:
    """Heads with the focal prior bias and zero-initialised last box layer."""
    class_head = build_class_head(hidden_dim, num_classes)
    box_head = build_box_head(hidden_dim)
    return DetectionHeads(
        dec_class=nn.ModuleList([class_head] * dec_layers),
        dec_box=nn.ModuleList([box_head] * dec_layers),
        enc_class=copy.deepcopy(class_head),
        enc_box=copy.deepcopy(box_head),
    )
