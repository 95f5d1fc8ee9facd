"""ResNet backbone (torchvision, never downloaded) with frozen batch norm, and its positions.

`BackboneWithPosition` is registered as `backbone` on the model, so its ResNet lives under
`backbone.0.body.*` exactly as in the official checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn
from torch.nn import functional as F

from tbx_train.config import ConfigError
from tbx_train.model.position_encoding import PositionEmbeddingSine

# Channels of layer2/3/4 (strides 8/16/32) for each supported ResNet.
_LAYER_CHANNELS = {"resnet50": [512, 1024, 2048], "resnet18": [128, 256, 512]}
# The stem and layer1 stay frozen, as in the official training.
_TRAINED_LAYERS = ("layer2", "layer3", "layer4")


class BackboneWeightsError(ConfigError):
    """A local backbone weights file is missing, unreadable or does not fit the ResNet."""


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, all stored as buffers.

    No `num_batches_tracked` buffer, as in the official checkpoints; loading an ImageNet
    state_dict that has one drops it.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


class ResNetBody(nn.Module):
    """A torchvision ResNet without its pooling head; returns the layer2, layer3, layer4 maps."""

    def __init__(self, resnet: torchvision.models.ResNet) -> None:
        super().__init__()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            self.add_module(name, getattr(resnet, name))

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        return [c2, c3, self.layer4(c3)]


class Backbone(nn.Module):
    """ResNet feature extractor; `num_channels` lists the channels of the returned maps."""

    def __init__(
        self, name: str, weights_path: str | None = None, *, freeze_stem: bool = True
    ) -> None:
        super().__init__()
        resnet = getattr(torchvision.models, name)(weights=None, norm_layer=FrozenBatchNorm2d)
        self.body = ResNetBody(resnet)
        if weights_path is not None:
            load_backbone_weights(self.body, weights_path)
        if freeze_stem:  # official: only pretrained low-level filters are worth freezing
            for param_name, param in self.body.named_parameters():
                if not param_name.startswith(_TRAINED_LAYERS):
                    param.requires_grad_(False)
        self.num_channels = _LAYER_CHANNELS[name]

    def forward(self, images: Tensor, masks: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """images [B, 3, H, W], masks bool [B, H, W] (True = padding) -> (maps, masks per map)."""
        features = self.body(images)
        return features, [resize_mask(masks, f.shape[-2:]) for f in features]


def resize_mask(mask: Tensor, size: torch.Size | tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of a bool padding mask [B, H, W] to [B, *size]."""
    return F.interpolate(mask[None].float(), size=tuple(size)).to(torch.bool)[0]


def load_backbone_weights(body: ResNetBody, path: str) -> None:
    """Load a torchvision ImageNet ResNet state_dict from a local file (its `fc.*` is ignored)."""
    file = Path(path)
    if not file.is_file():
        raise BackboneWeightsError(f"backbone weights file {path!r} does not exist")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for bad files
        raise BackboneWeightsError(f"cannot read backbone weights {path!r}: {error}") from error
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        missing, unexpected = body.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a shape mismatch
        raise BackboneWeightsError(f"backbone weights {path!r} do not fit: {error}") from error
    unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise BackboneWeightsError(
            f"backbone weights {path!r} do not fit: missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}; pass a torchvision ImageNet state_dict of the same ResNet"
        )


class BackboneWithPosition(nn.Sequential):
    """[Backbone, PositionEmbeddingSine] under indices 0 and 1 (the official `Joiner`)."""

    def __init__(self, backbone: Backbone, position_embedding: PositionEmbeddingSine) -> None:
        super().__init__(backbone, position_embedding)
        self.num_channels = backbone.num_channels

    def forward(  # type: ignore[override]
        self, images: Tensor, masks: Tensor
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """-> (feature maps [B, C_l, H_l, W_l], masks [B, H_l, W_l], positions [B, D, H_l, W_l])."""
        features, feature_masks = self[0](images, masks)
        positions = [self[1](m).to(f.dtype) for f, m in zip(features, feature_masks, strict=True)]
        return features, feature_masks, positions


def build_backbone(
    name: str,
    hidden_dim: int,
    pe_temperature: float,
    weights_path: str | None,
    *,
    freeze_stem: bool = True,
) -> BackboneWithPosition:
    """The ResNet `name` with its sine position encoding of hidden_dim channels."""
    return BackboneWithPosition(
        Backbone(name, weights_path, freeze_stem=freeze_stem),
        PositionEmbeddingSine(hidden_dim // 2, pe_temperature),
    )
